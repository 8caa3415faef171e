//! A finished response: encoded JSON, its compressed variants, validators and
//! CDN tags. Serving one does no encoding, no compression and no database work.

use std::cell::RefCell;

use axum::body::Bytes;
use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::{Compress, Compression, FlushCompress, Status};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::time::{Timestamp, from_millis};

/// Bodies smaller than this are not worth compressing.
const COMPRESS_MIN_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub body: Bytes,
    /// gzip of `body`, if it is worth it.
    pub gzip: Option<Bytes>,
    /// brotli of `body`, if it is worth it.
    pub brotli: Option<Bytes>,
    /// Strong, quoted: `"<base64url of the body's SHA-256, 16 bytes>"`.
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
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
        Self {
            headers: EntryHeaders::new(&etag, last_modified),
            etag,
            body: exact(body),
            gzip: None,
            brotli: None,
            last_modified,
            draft_of: None,
            of_article: None,
            tags: String::new(),
        }
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

    /// Adds the compressed variants (done once, when the entry is cached).
    pub fn compressed(mut self) -> Self {
        if self.body.len() >= COMPRESS_MIN_BYTES {
            self.gzip = gzip(&self.body).filter(|z| z.len() < self.body.len());
            self.brotli = Some(brotli(&self.body)).filter(|z| z.len() < self.body.len());
        }
        self
    }

    /// The best variant the client accepts, and its bytes.
    pub fn variant(&self, coding: Coding) -> (Coding, &Bytes) {
        match (coding, &self.brotli, &self.gzip) {
            (Coding::Brotli, Some(brotli), _) => (Coding::Brotli, brotli),
            (Coding::Brotli | Coding::Gzip, _, Some(gzip)) => (Coding::Gzip, gzip),
            _ => (Coding::Identity, &self.body),
        }
    }

    /// Bytes in memory, for the cache's byte budget: the variants, and what
    /// each entry costs beside them (its headers, stamp, and the cache's own
    /// bookkeeping and the allocator's: about 2 KiB, measured with
    /// `bench/l1-memory.sh`).
    pub fn weight(&self) -> usize {
        const PER_ENTRY: usize = 2048;
        self.body.len()
            + self.gzip.as_ref().map_or(0, Bytes::len)
            + self.brotli.as_ref().map_or(0, Bytes::len)
            + 4 * self.etag.len()
            + 2 * self.tags.len()
            + PER_ENTRY
    }

    /// A compact binary form for Redis: length-prefixed fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.weight() + 32);
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
        put(&mut out, self.gzip.as_deref().unwrap_or_default());
        put(&mut out, self.brotli.as_deref().unwrap_or_default());
        out
    }

    /// The inverse of [`Entry::encode`]; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader(bytes);
        if reader.take(1)? != [FORMAT] {
            return None;
        }
        let etag = String::from_utf8(reader.field()?.to_vec()).ok()?;
        let tags = String::from_utf8(reader.field()?.to_vec()).ok()?;
        let last_modified = reader.i64()?;
        let draft_of = reader.i64()?;
        let of_article = reader.i64()?;
        let body = Bytes::copy_from_slice(reader.field()?);
        let gzip = reader.field()?;
        let brotli = reader.field()?;
        let optional = |b: &[u8]| (!b.is_empty()).then(|| Bytes::copy_from_slice(b));
        let last_modified = (last_modified != i64::MIN).then(|| from_millis(last_modified));
        let mut headers = EntryHeaders::new(&etag, last_modified);
        headers.set_tags(&tags);
        Some(Self {
            headers,
            gzip: optional(gzip),
            brotli: optional(brotli),
            body,
            etag,
            last_modified,
            draft_of: (draft_of != i64::MIN).then_some(draft_of),
            of_article: (of_article != i64::MIN).then_some(of_article),
            tags,
        })
    }
}

const FORMAT: u8 = 2;

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
/// length; `None` if deflate fails (the entry then has no gzip variant).
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
        quality: 6,
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

    #[test]
    fn compressed_variants_decompress_to_the_body() {
        let text = "feedgate serves bytes ".repeat(100);
        let entry = Entry::json(&text, None).compressed();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&entry.gzip.as_ref().unwrap()[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, entry.body);
        let mut unbrotlied = Vec::new();
        brotli::BrotliDecompress(&mut &entry.brotli.as_ref().unwrap()[..], &mut unbrotlied)
            .unwrap();
        assert_eq!(unbrotlied, entry.body);
        assert_eq!(entry.variant(Coding::Brotli).0, Coding::Brotli);
        assert_eq!(
            Entry::json(&1, None).compressed().variant(Coding::Gzip).0,
            Coding::Identity
        );
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
                .compressed()
        };
        assert_eq!(Entry::decode(&entry.encode()), Some(entry.clone()));
        let bare = Entry::json(&1, None);
        assert_eq!(Entry::decode(&bare.encode()), Some(bare));
        assert_eq!(Entry::decode(b""), None);
        assert_eq!(Entry::decode(&entry.encode()[..20]), None);
    }
}
