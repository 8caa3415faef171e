//! serde's messages, retold without the client's values.
//!
//! serde writes what it rejected into its messages (``invalid type: integer
//! `98765432` ``, ``unknown variant `<img ...>` ``). A problem document must
//! not carry them back (they end up in logs, pages and caches), so each
//! message is reduced to the field's path, a code and what the field must
//! be. The "expected" half of serde's messages comes from our own types and
//! is safe to keep; everything the client wrote is dropped.

use serde_path_to_error::Segment;

use crate::error::FieldError;

/// The field error for a serde message at `path`.
pub fn field_error<'a>(path: impl IntoIterator<Item = &'a Segment>, message: &str) -> FieldError {
    let path = &path_of(path);
    let message = without_location(message);
    let expected = message
        .split_once(", expected ")
        .map(|(_, expected)| expected);
    let (field, code, explanation) = if message.starts_with("invalid type:") {
        (path.to_owned(), "type", must_be(expected))
    } else if message.starts_with("invalid value:") {
        (path.to_owned(), "value", must_be(expected))
    } else if message.starts_with("invalid length") {
        (path.to_owned(), "length", must_be(expected))
    } else if message.starts_with("unknown variant") {
        (path.to_owned(), "one_of", must_be(expected))
    } else if let Some(name) = named(message, "unknown field") {
        (
            join(path, name),
            "unknown_field",
            "is not a field of this resource".to_owned(),
        )
    } else if let Some(name) = named(message, "missing field") {
        (join(path, name), "required", "is required".to_owned())
    } else if let Some(name) = named(message, "duplicate field") {
        (
            join(path, name),
            "duplicate",
            "is given more than once".to_owned(),
        )
    } else if is_integer_parse_error(message) {
        (
            path.to_owned(),
            "type",
            "must be a whole number within range".to_owned(),
        )
    } else {
        (path.to_owned(), "invalid", "is invalid".to_owned())
    };
    FieldError::new(field, code, explanation)
}

/// The path as `tags[1]` or `author.id`; keys that are not plain names are
/// the client's text and become `?`.
fn path_of<'a>(path: impl IntoIterator<Item = &'a Segment>) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(if is_plain(key) { key } else { "?" });
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// serde_json ends its messages with ` at line L column C`.
fn without_location(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((head, tail))
            if tail
                .bytes()
                .all(|b| b.is_ascii_digit() || b" column".contains(&b)) =>
        {
            head
        }
        _ => message,
    }
}

fn must_be(expected: Option<&str>) -> String {
    match expected {
        Some("variant identifier" | "internally tagged enum") | None => {
            "is not one of the allowed values".to_owned()
        }
        Some(expected) => format!("must be {expected}"),
    }
}

/// The field named in backticks after `prefix` (``unknown field `x` ...``),
/// if it is a plain identifier; any other name is the client's text and is
/// not repeated.
fn named<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.trim_start();
    let name = rest
        .strip_prefix('`')
        .and_then(|rest| rest.split_once('`'))
        .map_or("", |(name, _)| name);
    Some(if is_plain(name) { name } else { "" })
}

/// `path.name`, unless serde already put the name at the end of the path.
fn join(path: &str, name: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or_default();
    match (path.is_empty(), name.is_empty()) {
        (_, true) => path.to_owned(),
        _ if last == name => path.to_owned(),
        (true, false) => name.to_owned(),
        (false, false) => format!("{path}.{name}"),
    }
}

/// `ParseIntError`'s messages, which serde_urlencoded passes on.
fn is_integer_parse_error(message: &str) -> bool {
    [
        "invalid digit found in string",
        "number too large to fit in target type",
        "number too small to fit in target type",
        "cannot parse integer from empty string",
    ]
    .contains(&message)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        title: String,
        tags: Option<Vec<String>>,
        status: Option<Status>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Status {
        Draft,
        Published,
    }

    fn error_for(json: &str) -> FieldError {
        let err = serde_path_to_error::deserialize::<_, Input>(
            &mut serde_json::Deserializer::from_str(json),
        )
        .unwrap_err();
        field_error(err.path(), &err.inner().to_string())
    }

    fn check(json: &str, field: &str, code: &str) -> String {
        let error = error_for(json);
        assert_eq!(
            (error.field.as_str(), error.code.as_str()),
            (field, code),
            "{json}"
        );
        assert!(!error.message.contains("98765432") && !error.message.contains('<'));
        error.message
    }

    #[test]
    fn values_are_dropped_and_expectations_kept() {
        let message = check(r#"{"title": 98765432}"#, "title", "type");
        assert_eq!(message, "must be a string");
        let message = check(
            r#"{"title": "t", "status": "<img src=x>"}"#,
            "status",
            "one_of",
        );
        assert_eq!(message, "must be `draft` or `published`");
        check(
            r#"{"title": "t", "tags": ["a", 98765432]}"#,
            "tags[1]",
            "type",
        );
    }

    #[test]
    fn field_names_are_kept_only_when_plain() {
        check(r#"{"title": "t", "Title": 1}"#, "Title", "unknown_field");
        check(r#"{"title": "t", "<b>": 98765432}"#, "?", "unknown_field");
        check(r#"{"tags": []}"#, "title", "required");
        check(r#"{"title": "t", "title": "u"}"#, "title", "duplicate");
    }

    #[test]
    fn other_messages_are_merely_invalid_or_a_number_rule() {
        let error = field_error([], "secret value 98765432 is wrong");
        assert_eq!(error.code, "invalid");
        assert!(!error.message.contains("98765432"));
        let error = field_error([], "invalid digit found in string");
        assert_eq!(error.code, "type");
    }
}
