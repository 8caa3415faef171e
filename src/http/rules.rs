//! Field rules for `validator`, shared by the request bodies.

use std::borrow::Cow;

use validator::ValidationError;

use crate::domain::{MAX_TAGS, Username, UsernameError, normalize_tag};

fn error(code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(code).with_message(Cow::Borrowed(message))
}

pub fn not_blank(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(error("blank", "must not be blank"));
    }
    Ok(())
}

/// Lower-case ASCII letters and digits in hyphen-separated words.
pub fn slug(value: &str) -> Result<(), ValidationError> {
    let valid = !value.is_empty()
        && value.len() <= 120
        && value.split('-').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !valid {
        return Err(error(
            "slug",
            "must be 1 to 120 lower-case letters and digits in words joined by single hyphens",
        ));
    }
    Ok(())
}

pub fn tags(values: &[String]) -> Result<(), ValidationError> {
    if values.len() > MAX_TAGS {
        return Err(error("too_many", "at most 10 tags"));
    }
    if values.iter().any(|tag| normalize_tag(tag).is_none()) {
        return Err(error(
            "tag",
            "each tag must be 1 to 32 letters, digits or -_.+# with no spaces",
        ));
    }
    Ok(())
}

/// What sign-up takes ([`Username::parse`]); the length is the `length`
/// rule's to report.
pub fn username(value: &str) -> Result<(), ValidationError> {
    match Username::parse(value) {
        Err(UsernameError::Characters) => Err(error(
            "username",
            "may contain only letters, digits, _ and -",
        )),
        Ok(_) | Err(UsernameError::Length) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_hyphenated_lowercase_words() {
        assert!(slug("hello-world-2").is_ok());
        for bad in ["", "Hello", "a--b", "-a", "a-", "a b", "a/b", "é"] {
            assert!(slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_reject_sql_and_markup() {
        assert!(username("ada_lovelace-1").is_ok());
        assert!(username("x' OR '1'='1").is_err());
        assert!(username("<script>").is_err());
    }
}
