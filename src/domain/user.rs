use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
use utoipa::ToSchema;

use super::time::Timestamp;

/// Shortest and longest username that can be registered, in characters.
pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=32;

/// The one form of a username that sign-up, sign-in, the per-username
/// sign-in limits, the store's unique key and the author's cache family
/// compare: Unicode NFKC (fullwidth `ｂｆ３` is `bf3`, a no-break space a
/// space), without control, format and other invisible characters
/// (`bf3` + NUL is `bf3`), trimmed, and lower-cased. Any string has one,
/// so every spelling that could reach an account is counted as that
/// account; the database then compares keys byte for byte, never under a
/// collation of its own.
pub fn canonical_username(raw: &str) -> String {
    let visible: String = raw.nfkc().filter(|c| !is_invisible(*c)).collect();
    visible
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .nfkc()
        .collect()
}

/// Characters that show as nothing: controls, format characters (zero
/// width spaces and joiners, bidi marks), surrogates, private-use and
/// unassigned code points, and the other default-ignorable ones.
fn is_invisible(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Other
        || matches!(
            c,
            '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// A name that can be registered: 3 to 32 ASCII letters, digits, `_` and
/// `-` (safe in URLs, logs and filters; nothing invisible, nothing that
/// looks like another name), with its canonical key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    name: String,
    key: String,
}

/// Why a name cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("must be 3 to 32 characters long")]
    Length,
    #[error("may contain only letters, digits, _ and -")]
    Characters,
}

impl UsernameError {
    /// The rule broken, as problem JSON names it.
    pub fn code(self) -> &'static str {
        match self {
            UsernameError::Length => "length",
            UsernameError::Characters => "username",
        }
    }
}

impl Username {
    /// The name as given (its case is kept for display), if it may be
    /// registered.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(UsernameError::Characters);
        }
        if !USERNAME_CHARS.contains(&raw.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self {
            name: raw.to_owned(),
            key: canonical_username(raw),
        })
    }

    /// As registered, for display.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The canonical form: see [`canonical_username`].
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// What a user may do. Ordered: each role can do what the ones before it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and comments.
    Reader,
    /// Also writes, edits and deletes their own articles.
    Author,
    /// Also edits and deletes anyone's articles and comments.
    Editor,
    /// Also manages users' roles.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Author => "author",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "reader" => Some(Role::Reader),
            "author" => Some(Role::Author),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn can_write(self) -> bool {
        self >= Role::Author
    }

    /// Editors and admins act on anyone's articles and comments.
    pub fn moderates(self) -> bool {
        self >= Role::Editor
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// A user as authorization sees them now. Requests are authorized from this,
/// read afresh (through the cache) on each one, never from what a token
/// claimed when it was issued: a role change applies to tokens already out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// The version the user's tokens must carry. A password reset raises
    /// it, so every token issued before stops working.
    pub token_version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order_by_power() {
        for role in [Role::Reader, Role::Author, Role::Editor, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(!Role::Reader.can_write());
        assert!(Role::Author.can_write() && !Role::Author.moderates());
        assert!(Role::Editor.moderates() && Role::Admin.moderates());
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn look_alike_spellings_have_one_canonical_form() {
        for spelling in [
            "bf3",
            "BF3",
            "bf3 ",
            "  bf3\t",
            "\u{FF42}\u{FF46}\u{FF13}",
            "bf3\u{00A0}",
            "bf3\u{0000}",
            "b\u{200B}f3",
            "\u{FEFF}bf3\u{202E}",
            "\u{FF22}F3\u{3000}",
        ] {
            assert_eq!(canonical_username(spelling), "bf3", "{spelling:?}");
        }
        assert_ne!(canonical_username("bf 3"), "bf3");
        assert_ne!(canonical_username("bf4"), "bf3");
    }

    #[test]
    fn registered_names_are_plain_ascii_and_keep_their_case() {
        let ada = Username::parse("Ada_Lovelace-1").unwrap();
        assert_eq!(ada.as_str(), "Ada_Lovelace-1");
        assert_eq!(ada.key(), "ada_lovelace-1");
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
        for odd in [
            "bf3 ",
            "bf3\u{0000}",
            "\u{FF42}\u{FF46}\u{FF13}",
            "b\u{200B}f3",
            "ada lovelace",
            "x' OR '1'='1",
            "<script>",
        ] {
            assert_eq!(
                Username::parse(odd),
                Err(UsernameError::Characters),
                "{odd:?}"
            );
        }
    }
}
