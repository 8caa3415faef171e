//! Request lines, formatted by hand: appended to the writer's buffer with no
//! allocation, the date and time of day formatted once a second.
//!
//! JSON lines keep the shape the `tracing` formatter gave them (the same keys
//! in the same order), so log pipelines read them as before. Every string a
//! client may have chosen is escaped: JSON-escaped in JSON lines, anything
//! but printable ASCII as `\xNN` in pretty ones (so no value can end a line
//! or split a field).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::MatchedPath;
use axum::http::Method;
use chrono::{Datelike, Timelike};

use crate::labels::Tier;

/// Route of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// The longest request id logged (the longest a client's own may be);
/// longer ones are cut.
pub const MAX_ID_BYTES: usize = 64;

/// `2026-12-05T10:11:12.123456Z`
const TIMESTAMP_LEN: usize = 27;

/// A request's id, held inline: carrying it costs no allocation and no
/// count shared between threads.
#[derive(Clone, Copy)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_ID_BYTES],
}

impl RequestId {
    /// The first [`MAX_ID_BYTES`] of `id`.
    pub fn new(id: &[u8]) -> Self {
        let id = &id[..id.len().min(MAX_ID_BYTES)];
        let mut bytes = [0; MAX_ID_BYTES];
        bytes[..id.len()].copy_from_slice(id);
        Self {
            len: id.len() as u8,
            bytes,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What the log knows of a request while it runs; lines logged meanwhile
/// carry it.
pub struct RequestContext {
    pub id: RequestId,
    pub method: Method,
    /// The matched route template; `None` when no route matched.
    pub route: Option<MatchedPath>,
}

impl RequestContext {
    /// The route template, or `unmatched`: never the raw path.
    pub fn route(&self) -> &str {
        self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
}

/// One request's line, as handed to the writer thread.
pub struct RequestLine {
    /// When the response head was ready (its wall-clock time is worked out
    /// by the writer, which reads the clock once for many lines).
    pub finished: Instant,
    pub request: RequestContext,
    pub status: u16,
    pub latency_us: u64,
    /// The cache tier that answered; `None` for routes with no cache.
    pub tier: Option<Tier>,
}

/// How lines are written: `pretty` (coloured or not) or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Pretty { colour: bool },
    Json,
}

impl RequestLine {
    /// Appends the line, dated `at` (microseconds since the Unix epoch),
    /// newline included, to `out`.
    pub fn write(&self, style: Style, at: u64, clock: &mut Clock, out: &mut Vec<u8>) {
        let at = clock.format(at);
        match style {
            Style::Pretty { colour } => self.write_pretty(colour, at, out),
            Style::Json => self.write_json(at, out),
        }
    }

    /// `2026-12-05T10:11:12.123456Z  INFO feedgate::request: GET
    /// /api/v1/articles/{id} 200 91us l1 <request id>`
    fn write_pretty(&self, colour: bool, at: &[u8], out: &mut Vec<u8>) {
        let mut number = itoa::Buffer::new();
        if colour {
            out.extend_from_slice(b"\x1b[2m");
            out.extend_from_slice(at);
            out.extend_from_slice(
                b"\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mfeedgate::request\x1b[0m\x1b[2m:\x1b[0m ",
            );
        } else {
            out.extend_from_slice(at);
            out.extend_from_slice(b"  INFO feedgate::request: ");
        }
        pretty_text(out, self.request.method.as_str().as_bytes());
        out.push(b' ');
        pretty_text(out, self.request.route().as_bytes());
        out.push(b' ');
        out.extend_from_slice(number.format(self.status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(number.format(self.latency_us).as_bytes());
        out.extend_from_slice(b"us ");
        out.extend_from_slice(self.tier.map_or("-", Tier::as_str).as_bytes());
        out.push(b' ');
        pretty_text(out, self.request.id.as_bytes());
        out.push(b'\n');
    }

    /// The object the `tracing` JSON formatter made of the line, key for key.
    fn write_json(&self, at: &[u8], out: &mut Vec<u8>) {
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(at);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"response\",\"status\":");
        out.extend_from_slice(number.format(self.status).as_bytes());
        out.extend_from_slice(b",\"latency_us\":");
        out.extend_from_slice(number.format(self.latency_us).as_bytes());
        if let Some(tier) = self.tier {
            out.extend_from_slice(b",\"tier\":\"");
            out.extend_from_slice(tier.as_str().as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"target\":\"feedgate::request\",");
        write_json_span(&self.request, out);
        out.extend_from_slice(b"}\n");
    }
}

/// `"span":{"method":…,"request_id":…,"route":…,"name":"request"}`: the
/// request's fields as JSON lines have always carried them.
pub fn write_json_span(request: &RequestContext, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"span\":{\"method\":");
    json_string(out, request.method.as_str().as_bytes());
    out.extend_from_slice(b",\"request_id\":");
    json_string(out, request.id.as_bytes());
    out.extend_from_slice(b",\"route\":");
    json_string(out, request.route().as_bytes());
    out.extend_from_slice(b",\"name\":\"request\"}");
}

/// `request{request_id=… method=… route=…}: `, the prefix of pretty lines
/// logged while a request runs (bold, with `colour`).
pub fn write_pretty_span(request: &RequestContext, colour: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(if colour {
        b"\x1b[1mrequest\x1b[0m\x1b[1m{\x1b[0mrequest_id="
    } else {
        b"request{request_id="
    });
    pretty_text(out, request.id.as_bytes());
    out.extend_from_slice(b" method=");
    pretty_text(out, request.method.as_str().as_bytes());
    out.extend_from_slice(b" route=");
    pretty_text(out, request.route().as_bytes());
    out.extend_from_slice(if colour {
        b"\x1b[1m}\x1b[0m\x1b[2m:\x1b[0m "
    } else {
        b"}: "
    });
}

/// `text` as a JSON string: quotes, backslashes and control characters
/// escaped, bytes that are not UTF-8 replaced by U+FFFD.
pub fn json_string(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    if json_plain(text) {
        // The usual case (ids, methods, routes): nothing to escape.
        out.extend_from_slice(text);
        out.push(b'"');
        return;
    }
    for chunk in text.utf8_chunks() {
        json_escaped(out, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    out.push(b'"');
}

fn json_escaped(out: &mut Vec<u8>, text: &[u8]) {
    let mut plain = 0;
    for (at, &byte) in text.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&text[plain..at]);
        out.extend_from_slice(escape);
        plain = at + 1;
    }
    out.extend_from_slice(&text[plain..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Printable ASCII as it is, any other byte (space and controls included)
/// as `\xNN`.
fn pretty_text(out: &mut Vec<u8>, text: &[u8]) {
    if pretty_plain(text) {
        out.extend_from_slice(text);
        return;
    }
    for &byte in text {
        if byte.is_ascii_graphic() {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        }
    }
}

/// No byte needs escaping in JSON: none is a control character, a quote, a
/// backslash, or outside ASCII (which might not be UTF-8).
fn json_plain(text: &[u8]) -> bool {
    no_byte(text, |word| {
        below(word, 0x20) | equal(word, b'"') | equal(word, b'\\') | (word & HIGH)
    })
}

/// Every byte is printable ASCII (`!` to `~`).
fn pretty_plain(text: &[u8]) -> bool {
    no_byte(text, |word| below(word, b'!') | from_7f(word))
}

/// Whether no byte of `text` is special, eight bytes at a time: `special`
/// sets the high bit of (at least) one byte of its result if a byte of the
/// word it is given is special, and no bit outside the high bits otherwise.
#[inline(always)]
fn no_byte(text: &[u8], special: impl Fn(u64) -> u64) -> bool {
    let (words, rest) = text.as_chunks::<8>();
    let mut found = words
        .iter()
        .fold(0, |found, word| found | special(u64::from_le_bytes(*word)));
    if !rest.is_empty() {
        // The rest, padded with a byte that is never special.
        let mut last = [b'a'; 8];
        last[..rest.len()].copy_from_slice(rest);
        found |= special(u64::from_le_bytes(last));
    }
    found & HIGH == 0
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);

/// Some byte of `word` is below `limit` (at most 0x80) if any high bit is set.
#[inline(always)]
fn below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGH
}

/// Some byte of `word` is `byte` if any high bit is set.
#[inline(always)]
fn equal(word: u64, byte: u8) -> u64 {
    below(word ^ (ONES * u64::from(byte)), 1)
}

/// Some byte of `word` is 0x7f or above if any high bit is set.
#[inline(always)]
fn from_7f(word: u64) -> u64 {
    (((word & !HIGH) + ONES) | word) & HIGH
}

/// RFC 3339 timestamps in UTC to the microsecond
/// (`2026-12-05T10:11:12.123456Z`); the date and time of day are formatted
/// again only when the second changes (nginx caches its time the same way).
pub struct Clock {
    second: Option<u64>,
    text: [u8; TIMESTAMP_LEN],
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            second: None,
            text: *b"1970-01-01T00:00:00.000000Z",
        }
    }
}

impl Clock {
    /// The timestamp of `micros` since the Unix epoch.
    pub fn format(&mut self, micros: u64) -> &[u8] {
        let second = micros / 1_000_000;
        if self.second != Some(second) {
            self.second = Some(second);
            let time = i64::try_from(second)
                .ok()
                .and_then(|second| chrono::DateTime::from_timestamp(second, 0))
                .unwrap_or_default();
            let year = u32::try_from(time.year()).unwrap_or(0);
            digits(&mut self.text[0..4], year);
            digits(&mut self.text[5..7], time.month());
            digits(&mut self.text[8..10], time.day());
            digits(&mut self.text[11..13], time.hour());
            digits(&mut self.text[14..16], time.minute());
            digits(&mut self.text[17..19], time.second());
        }
        digits(&mut self.text[20..26], (micros % 1_000_000) as u32);
        &self.text
    }
}

/// Microseconds since the Unix epoch (0 before it).
pub fn micros(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// `at` as [`Clock`] writes it, for the odd line that is not a request's.
pub fn timestamp(at: SystemTime) -> String {
    String::from_utf8_lossy(Clock::default().format(micros(at))).into_owned()
}

/// `value`'s last `out.len()` decimal digits, zero-padded.
fn digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn line(id: &[u8], tier: Option<Tier>) -> RequestLine {
        RequestLine {
            finished: Instant::now(),
            request: RequestContext {
                id: RequestId::new(id),
                method: Method::GET,
                route: None,
            },
            status: 404,
            latency_us: 91,
            tier,
        }
    }

    fn written(line: &RequestLine, style: Style) -> String {
        let mut out = Vec::new();
        line.write(
            style,
            1_764_930_672_000_042,
            &mut Clock::default(),
            &mut out,
        );
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn timestamps_are_rfc_3339_utc_to_the_microsecond() {
        let mut clock = Clock::default();
        let at = 951_782_400_000_001;
        assert_eq!(clock.format(at), b"2000-02-29T00:00:00.000001Z");
        let later = at + 86_399_999_998;
        assert_eq!(clock.format(later), b"2000-02-29T23:59:59.999999Z");
        assert_eq!(clock.format(0), b"1970-01-01T00:00:00.000000Z");
        let at = UNIX_EPOCH + Duration::from_micros(at);
        assert_eq!(timestamp(at), "2000-02-29T00:00:00.000001Z");
    }

    #[test]
    fn the_word_checks_find_every_special_byte_wherever_it_is() {
        for len in 1..=19 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    let json = byte >= 0x20 && byte != b'"' && byte != b'\\' && byte < 0x80;
                    assert_eq!(json_plain(&text), json, "{text:?}");
                    assert_eq!(pretty_plain(&text), byte.is_ascii_graphic(), "{text:?}");
                }
            }
        }
        assert!(json_plain(b"") && pretty_plain(b""));
    }

    #[test]
    fn json_lines_have_the_keys_and_order_of_the_tracing_formatter() {
        assert_eq!(
            written(&line(b"abc-1", Some(Tier::L1)), Style::Json),
            "{\"timestamp\":\"2025-12-05T10:31:12.000042Z\",\"level\":\"INFO\",\
             \"message\":\"response\",\"status\":404,\"latency_us\":91,\"tier\":\"l1\",\
             \"target\":\"feedgate::request\",\"span\":{\"method\":\"GET\",\
             \"request_id\":\"abc-1\",\"route\":\"unmatched\",\"name\":\"request\"}}\n"
        );
    }

    #[test]
    fn any_request_id_stays_inside_its_json_string() {
        let id = b"a\"b\\c\nd\re\tf\x01g\x7f\xffh\xe2\x82";
        let text = written(&line(id, None), Style::Json);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).expect(&text);
        assert_eq!(
            value["span"]["request_id"],
            "a\"b\\c\nd\re\tf\u{1}g\u{7f}\u{fffd}h\u{fffd}"
        );
        assert!(value.get("tier").is_none(), "{text}");
    }

    #[test]
    fn pretty_lines_escape_what_could_split_them() {
        assert_eq!(
            written(&line(b"id 1\n2\xff", None), Style::Pretty { colour: false }),
            "2025-12-05T10:31:12.000042Z  INFO feedgate::request: GET unmatched 404 91us - \
             id\\x201\\x0a2\\xff\n"
        );
    }

    #[test]
    fn long_request_ids_are_cut() {
        assert_eq!(RequestId::new(&[b'x'; 200]).as_bytes(), &[b'x'; 64]);
    }
}
