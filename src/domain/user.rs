use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time::Timestamp;

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
}
