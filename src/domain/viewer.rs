//! Who is asking, and what they may see and change. Every read, list,
//! extractor and write asks the [`Viewer`]; nothing else spells the rule.

use super::article::ArticleStatus;
use super::user::Role;

/// The reader or writer of a request: anonymous, or a signed-in user with
/// their role as their record has it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Viewer {
    #[default]
    Anonymous,
    User {
        id: i64,
        role: Role,
    },
}

/// Whose drafts a viewer may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DraftScope {
    None,
    OwnedBy(i64),
    All,
}

impl DraftScope {
    /// Whether drafts written by `author` are within the scope.
    pub fn covers(self, author: i64) -> bool {
        match self {
            DraftScope::None => false,
            DraftScope::OwnedBy(owner) => owner == author,
            DraftScope::All => true,
        }
    }
}

impl Viewer {
    pub fn user(id: i64, role: Role) -> Self {
        Viewer::User { id, role }
    }

    /// The signed-in user's id.
    pub fn id(self) -> Option<i64> {
        match self {
            Viewer::Anonymous => None,
            Viewer::User { id, .. } => Some(id),
        }
    }

    /// Editors and admins see and change what anyone wrote.
    pub fn moderates(self) -> bool {
        matches!(self, Viewer::User { role, .. } if role.moderates())
    }

    /// Drafts are seen by their author, editors and admins; published
    /// articles by everyone.
    pub fn draft_scope(self) -> DraftScope {
        match self {
            Viewer::Anonymous => DraftScope::None,
            Viewer::User { role, .. } if role.moderates() => DraftScope::All,
            Viewer::User { id, .. } => DraftScope::OwnedBy(id),
        }
    }

    /// Whether they may see an article in `status` written by `author`
    /// (and what hangs off it: its comments).
    pub fn may_see(self, status: ArticleStatus, author: i64) -> bool {
        status == ArticleStatus::Published || self.draft_scope().covers(author)
    }

    /// Whether they may write articles at all.
    pub fn may_write(self) -> bool {
        matches!(self, Viewer::User { role, .. } if role.can_write())
    }

    /// Whether they may change or delete an article written by `author`:
    /// its author (if they may still write), editors and admins.
    pub fn may_edit_article(self, author: i64) -> bool {
        self.may_write() && self.owns_or_moderates(author)
    }

    /// Whether they may delete a comment written by `author`.
    pub fn may_delete_comment(self, author: i64) -> bool {
        self.owns_or_moderates(author)
    }

    fn owns_or_moderates(self, owner: i64) -> bool {
        self.id() == Some(owner) || self.moderates()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_are_seen_by_their_author_and_moderators_only() {
        let draft = ArticleStatus::Draft;
        assert!(Viewer::user(7, Role::Author).may_see(draft, 7));
        assert!(Viewer::user(8, Role::Editor).may_see(draft, 7));
        assert!(!Viewer::user(8, Role::Author).may_see(draft, 7));
        assert!(!Viewer::Anonymous.may_see(draft, 7));
        assert!(Viewer::Anonymous.may_see(ArticleStatus::Published, 7));
    }

    #[test]
    fn only_writers_edit_and_only_their_own_unless_they_moderate() {
        assert!(Viewer::user(7, Role::Author).may_edit_article(7));
        assert!(!Viewer::user(7, Role::Reader).may_edit_article(7));
        assert!(!Viewer::user(8, Role::Author).may_edit_article(7));
        assert!(Viewer::user(8, Role::Editor).may_edit_article(7));
        assert!(Viewer::user(7, Role::Reader).may_delete_comment(7));
        assert!(!Viewer::Anonymous.may_delete_comment(7));
    }

    #[test]
    fn draft_scopes_follow_the_role() {
        assert_eq!(Viewer::Anonymous.draft_scope(), DraftScope::None);
        assert_eq!(
            Viewer::user(3, Role::Author).draft_scope(),
            DraftScope::OwnedBy(3)
        );
        assert_eq!(Viewer::user(3, Role::Admin).draft_scope(), DraftScope::All);
        assert!(DraftScope::OwnedBy(3).covers(3) && !DraftScope::OwnedBy(3).covers(4));
    }
}
