//! A finished response: encoded JSON, its compressed variants, validators and
//! CDN tags. Serving one does no encoding and no database work.
//!
//! A miss makes the JSON, its ETag and its headers, nothing more: each
//! compressed variant is made by the first request that asks for that
//! coding, once per entry, and then shared by every later request (a made
//! variant is one atomic load away; no lock on the hit path). Clients that
//! never ask for brotli, or entries read once, cost no compression at all.

use std::cell::RefCell;
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::{Compress, Compression, FlushCompress, Status};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::domain::time::{Timestamp, from_millis};

/// Bodies smaller than this are served as they are. Larger ones are always
/// served compressed to a client that accepts it: JSON of this size always
/// shrinks, and knowing the coding without compressing lets a 304 name its
/// variant's ETag without making the variant.
const COMPRESS_MIN_BYTES: usize = 512;

/// brotli quality: 5 gives our JSON the size 6 gives (1% larger list
/// pages) in two thirds of the time (`bench/RESULTS.md`).
const BROTLI_QUALITY: i32 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub body: Bytes,
    /// gzip and brotli of `body`, each made when first asked for.
    variants: Variants,
    /// Strong, quoted: `"<base64url of the body's XXH3-128>"`.
    pub etag: String,
    pub last_modified: Option<Timestamp>,
    /// For a draft article, its author: whoever reads it must be allowed to
    /// see their drafts (the read side asks `domain::Viewer`).
    pub draft_of: Option<i64>,
    /// For a comment, its article, whose visibility it shares.
    pub of_article: Option<i64>,
    /// Space-separated surrogate keys (CDN purge tags).
    pub tags: String,
    /// The above, rendered as response headers once, so a hit only clones them.
    pub headers: EntryHeaders,
}

/// The content codings an entry can be served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity = 0,
    Gzip = 1,
    Brotli = 2,
}

impl Coding {
    pub const ALL: [Coding; 3] = [Coding::Identity, Coding::Gzip, Coding::Brotli];

    /// The `Content-Encoding` token; `None` for identity.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
        }
    }
}

/// Header values of an entry, ready to clone into a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeaders {
    /// Each coding is its own representation, so its own strong ETag:
    /// `"abc"`, `"abc-gzip"`, `"abc-br"`; indexed by [`Coding`].
    pub etags: [HeaderValue; 3],
    pub last_modified: Option<HeaderValue>,
    /// `Surrogate-Key` (space-separated) and `Cache-Tag` (comma-separated).
    pub surrogate_key: Option<HeaderValue>,
    pub cache_tag: Option<HeaderValue>,
}

impl EntryHeaders {
    fn new(etag: &str, last_modified: Option<Timestamp>) -> Self {
        let etag_for = |coding: Coding| {
            let text = match coding.name() {
                None => etag.to_owned(),
                Some(name) => format!("{}-{name}\"", etag.trim_end_matches('"')),
            };
            HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("\"\""))
        };
        let http_date = |t: Timestamp| httpdate::fmt_http_date(t.into());
        Self {
            etags: Coding::ALL.map(etag_for),
            last_modified: last_modified.and_then(|t| HeaderValue::from_str(&http_date(t)).ok()),
            surrogate_key: None,
            cache_tag: None,
        }
    }

    fn set_tags(&mut self, tags: &str) {
        let value = |text: &str| {
            Some(text)
                .filter(|t| !t.is_empty())
                .and_then(|t| HeaderValue::from_str(t).ok())
        };
        self.surrogate_key = value(tags);
        self.cache_tag = value(&tags.replace(' ', ","));
    }

    pub fn etag(&self, coding: Coding) -> &HeaderValue {
        &self.etags[coding as usize]
    }
}

/// The compressed forms of a body, each made at most once, by the first
/// request for it; `None` inside if compressing failed.
#[derive(Debug, Clone, Default)]
struct Variants {
    gzip: OnceLock<Option<Bytes>>,
    brotli: OnceLock<Option<Bytes>>,
}

/// Variants are a function of the body: entries are equal whatever they
/// have compressed so far.
impl PartialEq for Variants {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Variants {}

/// The entity an ETag names: without `W/` and without the coding suffix that
/// [`EntryHeaders`] adds, so `W/"abc-gzip"` names `"abc"`.
pub fn entity_tag(tag: &str) -> String {
    let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
    let entity = Coding::ALL
        .iter()
        .filter_map(|coding| tag.strip_suffix(coding.name()?)?.strip_suffix('-'))
        .next()
        .unwrap_or(tag);
    format!("\"{entity}\"")
}

impl Entry {
    pub fn json<T: Serialize>(value: &T, last_modified: Option<Timestamp>) -> Self {
        let body = serde_json::to_vec(value).expect("views serialise infallibly");
        let etag = etag_of(&body);
        Self {
            headers: EntryHeaders::new(&etag, last_modified),
            etag,
            body: exact(body),
            variants: Variants::default(),
            last_modified,
            draft_of: None,
            of_article: None,
            tags: String::new(),
        }
    }

    /// Marks a draft's entry with its author (`None`: not a draft).
    pub fn draft_by(mut self, author: Option<i64>) -> Self {
        self.draft_of = author;
        self
    }

    /// Marks a comment's entry with its article.
    pub fn of_article(mut self, article_id: i64) -> Self {
        self.of_article = Some(article_id);
        self
    }

    pub fn with_tags(mut self, tags: String) -> Self {
        self.headers.set_tags(&tags);
        self.tags = tags;
        self
    }

    /// The coding a client that accepts `accepted` is served in, decided
    /// without compressing anything.
    pub fn coding_for(&self, accepted: Coding) -> Coding {
        if self.body.len() < COMPRESS_MIN_BYTES {
            Coding::Identity
        } else {
            accepted
        }
    }

    /// The variant a client that accepts `accepted` is served, and its
    /// bytes: made now if no request has made it before (a request that
    /// finds it being made waits for it rather than making it too).
    pub fn variant(&self, accepted: Coding) -> (Coding, &Bytes) {
        let coding = self.coding_for(accepted);
        match self
            .cell(coding)
            .map(|cell| cell.get_or_init(|| compress(coding, &self.body)))
        {
            Some(Some(bytes)) => (coding, bytes),
            // Identity, or compressing failed.
            _ => (Coding::Identity, &self.body),
        }
    }

    /// `coding`'s variant if a request has made it.
    pub fn made(&self, coding: Coding) -> Option<&Bytes> {
        self.cell(coding)?.get()?.as_ref()
    }

    fn cell(&self, coding: Coding) -> Option<&OnceLock<Option<Bytes>>> {
        match coding {
            Coding::Identity => None,
            Coding::Gzip => Some(&self.variants.gzip),
            Coding::Brotli => Some(&self.variants.brotli),
        }
    }

    /// Bytes in memory, for the cache's byte budget: the body, room for
    /// the variants requests may make after the entry is weighed, and what
    /// each entry costs beside them (its headers, stamp, and the cache's own
    /// bookkeeping and the allocator's: about 2 KiB, measured with
    /// `bench/l1-memory.sh`).
    pub fn weight(&self) -> usize {
        const PER_ENTRY: usize = 2048;
        self.body.len()
            + self.variants_allowance()
            + 4 * self.etag.len()
            + 2 * self.tags.len()
            + PER_ENTRY
    }

    /// gzip and brotli of our JSON together take about 0.7 of an
    /// article's body and 0.45 of a list page's; 3/4 of the body covers
    /// both whichever are made.
    fn variants_allowance(&self) -> usize {
        if self.body.len() < COMPRESS_MIN_BYTES {
            0
        } else {
            self.body.len() / 4 * 3
        }
    }

    /// A compact binary form for Redis: length-prefixed fields, the body
    /// but no variant. Each instance makes the variants its own clients
    /// ask for: a fill has made none yet, and Redis holds about half as
    /// much (`bench/RESULTS.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + self.tags.len() + 64);
        out.push(FORMAT);
        put(&mut out, self.etag.as_bytes());
        put(&mut out, self.tags.as_bytes());
        out.extend_from_slice(
            &self
                .last_modified
                .map_or(i64::MIN, |t| t.timestamp_millis())
                .to_le_bytes(),
        );
        out.extend_from_slice(&self.draft_of.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(&self.of_article.unwrap_or(i64::MIN).to_le_bytes());
        put(&mut out, &self.body);
        out
    }

    /// The inverse of [`Entry::encode`], also reading the previous format
    /// (which carried both variants), so that instances of this version
    /// use what older ones stored; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader(bytes);
        let format = reader.take(1)?[0];
        if format != FORMAT && format != FORMAT_WITH_VARIANTS {
            return None;
        }
        let etag = String::from_utf8(reader.field()?.to_vec()).ok()?;
        let tags = String::from_utf8(reader.field()?.to_vec()).ok()?;
        let last_modified = reader.i64()?;
        let draft_of = reader.i64()?;
        let of_article = reader.i64()?;
        let body = Bytes::copy_from_slice(reader.field()?);
        let variants = Variants::default();
        if format == FORMAT_WITH_VARIANTS {
            for cell in [&variants.gzip, &variants.brotli] {
                let stored = reader.field()?;
                if !stored.is_empty() {
                    let _ = cell.set(Some(Bytes::copy_from_slice(stored)));
                }
            }
        }
        let last_modified = (last_modified != i64::MIN).then(|| from_millis(last_modified));
        let mut headers = EntryHeaders::new(&etag, last_modified);
        headers.set_tags(&tags);
        Some(Self {
            headers,
            variants,
            body,
            etag,
            last_modified,
            draft_of: (draft_of != i64::MIN).then_some(draft_of),
            of_article: (of_article != i64::MIN).then_some(of_article),
            tags,
        })
    }
}

const FORMAT: u8 = 3;
/// The previous format: the body, then its gzip and brotli (empty if none).
const FORMAT_WITH_VARIANTS: u8 = 2;

/// A strong validator: the body's XXH3-128, base64url. A content hash, so
/// equal bodies get equal ETags on every instance and across versions; a
/// non-cryptographic one, as nothing here needs a preimage-resistant one
/// and it costs a twentieth of SHA-256 (`bench/RESULTS.md`).
fn etag_of(body: &[u8]) -> String {
    format!(
        "\"{}\"",
        URL_SAFE_NO_PAD.encode(xxh3_128(body).to_le_bytes())
    )
}

/// `coding`'s variant of `body`, counted in the metrics; `None` for
/// identity or if compressing failed.
fn compress(coding: Coding, body: &[u8]) -> Option<Bytes> {
    let compressed = match coding {
        Coding::Identity => return None,
        Coding::Gzip => gzip(body),
        Coding::Brotli => Some(brotli(body)),
    };
    crate::metrics::variant_made(coding.name().unwrap_or("identity"));
    compressed
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_le_bytes());
    out.extend_from_slice(field);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        self.take(len as usize)
    }
}

thread_local! {
    /// One deflate state per thread, reset for each body: a fresh one is
    /// large and zeroed, and making it took five times as long as
    /// compressing a typical article (`bench/RESULTS.md`).
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(6), false));
}

/// gzip (RFC 1952): a fixed header, the raw deflate stream, CRC-32 and
/// length; `None` if deflate fails (the entry is then served as it is).
fn gzip(body: &[u8]) -> Option<Bytes> {
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut out = Vec::with_capacity(HEADER.len() + body.len() / 2 + 64);
    out.extend_from_slice(&HEADER);
    DEFLATE.with_borrow_mut(|deflate| {
        deflate.reset();
        loop {
            let consumed = usize::try_from(deflate.total_in()).ok()?;
            out.reserve(body.len() / 4 + 64);
            let input = body.get(consumed..)?;
            match deflate.compress_vec(input, &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return Some(()),
                Ok(Status::Ok | Status::BufError) => {}
                Err(_) => return None,
            }
        }
    })?;
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    // ISIZE is the length modulo 2^32.
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    Some(exact(out))
}

fn brotli(body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(body.len() / 3);
    let params = brotli::enc::BrotliEncoderParams {
        quality: BROTLI_QUALITY,
        ..Default::default()
    };
    let _ = brotli::BrotliCompress(&mut &body[..], &mut out, &params);
    exact(out)
}

/// Bytes that hold no spare capacity: L1 is bounded by the lengths it
/// weighs, and a grown buffer can be twice its length.
fn exact(mut bytes: Vec<u8>) -> Bytes {
    bytes.shrink_to_fit();
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn equal_bodies_share_an_etag_and_different_ones_do_not() {
        let a = Entry::json(&serde_json::json!({"a": 1}), None);
        let b = Entry::json(&serde_json::json!({"a": 1}), None);
        let c = Entry::json(&serde_json::json!({"a": 2}), None);
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag);
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
    }

    #[test]
    fn gzip_reuses_its_state_and_holds_bodies_of_any_size() {
        // Incompressible bytes need more room than the first guess, and one
        // thread's state serves body after body.
        let mut noise = Vec::with_capacity(300_000);
        let mut x: u32 = 1;
        for _ in 0..300_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            noise.push((x >> 16) as u8);
        }
        for body in [&noise[..], b"short", &noise[..1000], b""] {
            let zipped = gzip(body).expect("deflate works");
            let mut unzipped = Vec::new();
            flate2::read::GzDecoder::new(&zipped[..])
                .read_to_end(&mut unzipped)
                .unwrap();
            assert_eq!(unzipped, body);
        }
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn unbrotli(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &bytes[..], &mut out).unwrap();
        out
    }

    fn long() -> Entry {
        Entry::json(&"feedgate serves bytes ".repeat(100), None)
    }

    #[test]
    fn no_variant_is_made_until_a_request_asks_for_its_coding() {
        let entry = long();
        assert_eq!(entry.made(Coding::Gzip), None);
        assert_eq!(entry.made(Coding::Brotli), None);
        let (coding, gzip) = entry.variant(Coding::Gzip);
        assert_eq!(coding, Coding::Gzip);
        assert_eq!(gunzip(gzip), entry.body);
        assert_eq!(entry.made(Coding::Gzip), Some(gzip));
        assert_eq!(entry.made(Coding::Brotli), None, "gzip made brotli");
        let (coding, brotli) = entry.variant(Coding::Brotli);
        assert_eq!(coding, Coding::Brotli);
        assert_eq!(unbrotli(brotli), entry.body);
        assert!(brotli.len() < entry.body.len() / 4);
        assert_eq!(
            entry.variant(Coding::Identity),
            (Coding::Identity, &entry.body)
        );
    }

    #[test]
    fn each_variant_is_made_once_however_many_ask_at_the_same_time() {
        let entry = std::sync::Arc::new(long());
        for coding in [Coding::Brotli, Coding::Gzip] {
            let made: Vec<usize> = std::thread::scope(|scope| {
                let askers: Vec<_> = (0..8)
                    .map(|_| scope.spawn(|| entry.variant(coding).1.as_ptr() as usize))
                    .collect();
                askers.into_iter().map(|a| a.join().unwrap()).collect()
            });
            assert!(made.iter().all(|&p| p == made[0]), "{coding:?} made twice");
            assert_eq!(entry.made(coding).unwrap().as_ptr() as usize, made[0]);
        }
    }

    #[test]
    fn small_bodies_are_served_as_they_are_in_every_coding() {
        let entry = Entry::json(&1, None);
        for coding in Coding::ALL {
            assert_eq!(entry.coding_for(coding), Coding::Identity);
            assert_eq!(entry.variant(coding), (Coding::Identity, &entry.body));
        }
        assert_eq!(entry.made(Coding::Gzip), None);
    }

    #[test]
    fn the_coding_is_known_without_compressing() {
        let entry = long();
        for coding in Coding::ALL {
            assert_eq!(entry.coding_for(coding), coding);
        }
        assert_eq!(entry.made(Coding::Gzip), None);
        assert_eq!(entry.made(Coding::Brotli), None);
    }

    #[test]
    fn the_etag_is_the_bodys_xxh3_128() {
        let entry = long();
        let expected = URL_SAFE_NO_PAD.encode(xxh3_128(&entry.body).to_le_bytes());
        assert_eq!(entry.etag, format!("\"{expected}\""));
        assert_eq!(entry.etag.len(), 24);
    }

    #[test]
    fn the_weight_has_room_for_variants_made_after_the_entry_is_weighed() {
        let entry = long();
        let before = entry.weight();
        let (_, gzip) = entry.variant(Coding::Gzip);
        let (_, brotli) = entry.variant(Coding::Brotli);
        assert!(before >= entry.body.len() + gzip.len() + brotli.len() + 2048);
        assert_eq!(entry.weight(), before);
    }

    #[test]
    fn headers_are_rendered_once_per_coding() {
        let entry = Entry::json(&1, Some(from_millis(0))).with_tags("articles article-1".into());
        let etag = entry.etag.trim_end_matches('"');
        assert_eq!(entry.headers.etag(Coding::Gzip), &format!("{etag}-gzip\""));
        assert_eq!(entry.headers.etag(Coding::Brotli), &format!("{etag}-br\""));
        for coding in Coding::ALL {
            let tag = entry.headers.etag(coding).to_str().unwrap();
            assert_eq!(entity_tag(tag), entry.etag);
            assert_eq!(entity_tag(&format!("W/{tag}")), entry.etag);
        }
        assert_eq!(
            entry.headers.last_modified.as_ref().unwrap(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            entry.headers.cache_tag.as_ref().unwrap(),
            "articles,article-1"
        );
    }

    #[test]
    fn the_binary_form_round_trips_and_rejects_junk() {
        let entry = Entry {
            draft_of: Some(3),
            of_article: Some(9),
            ..Entry::json(&"x".repeat(2000), Some(from_millis(1_700_000_000_000)))
                .with_tags("article-1 author-ada".into())
        };
        assert_eq!(Entry::decode(&entry.encode()), Some(entry.clone()));
        let bare = Entry::json(&1, None);
        assert_eq!(Entry::decode(&bare.encode()), Some(bare));
        assert_eq!(Entry::decode(b""), None);
        assert_eq!(Entry::decode(&entry.encode()[..20]), None);
    }

    #[test]
    fn the_binary_form_carries_the_body_but_no_variant() {
        let entry = long().with_tags("article-1".into());
        let plain = entry.encode();
        entry.variant(Coding::Gzip);
        entry.variant(Coding::Brotli);
        assert_eq!(entry.encode(), plain);
        assert!(plain.len() < entry.body.len() + entry.etag.len() + 64);
        let decoded = Entry::decode(&plain).unwrap();
        assert_eq!(decoded.made(Coding::Gzip), None);
        assert_eq!(decoded.made(Coding::Brotli), None);
        assert_eq!(
            decoded.variant(Coding::Brotli),
            entry.variant(Coding::Brotli)
        );
    }

    #[test]
    fn the_previous_binary_form_is_read_with_its_variants() {
        let entry = long().with_tags("article-1".into());
        let (_, gzip) = entry.variant(Coding::Gzip);
        let (_, brotli) = entry.variant(Coding::Brotli);
        // Format 2: the fields of format 3, then gzip and brotli.
        let mut previous = entry.encode();
        previous[0] = FORMAT_WITH_VARIANTS;
        put(&mut previous, gzip);
        put(&mut previous, brotli);
        let decoded = Entry::decode(&previous).unwrap();
        assert_eq!(decoded, entry);
        assert_eq!(decoded.made(Coding::Gzip), Some(gzip));
        assert_eq!(decoded.made(Coding::Brotli), Some(brotli));
        // A stored form without variants (a small body) makes none up.
        let small = Entry::json(&1, None);
        let mut previous = small.encode();
        previous[0] = FORMAT_WITH_VARIANTS;
        put(&mut previous, b"");
        put(&mut previous, b"");
        assert_eq!(Entry::decode(&previous).unwrap().made(Coding::Gzip), None);
    }
}
