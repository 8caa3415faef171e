//! What each article write makes stale, as typed families (see
//! `crate::cache::Family` and `crate::reads::families`).
//!
//! Before it may commit, a write names what it knows from the request: the
//! article (its own response and every list page that shows it), the
//! shared tier's lists of every feed it was or will be in, and the tag list
//! if its published tags change. Once it committed it adds what the store
//! saw move in the write's transaction: the orders it entered, left or
//! moved in (their numbered pages), the pages by cursor that seek from it
//! in a sort whose key changed, and the articles next to each place it
//! entered or left (the pages by cursor that show them). Nothing else: an
//! edit that leaves an article's place alone makes stale only the pages
//! that show it.

use crate::cache::Family;
use crate::domain::{ArticleStatus, Feed, FeedChanges};
use crate::reads::families;

/// An article's state as far as its lists are concerned.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    pub status: ArticleStatus,
    pub tags: &'a [String],
}

/// What a write of article `id` (`None` for one not created yet) by
/// `author` makes stale before it may commit, from its state `before` to
/// `after` (`None`: not there).
pub fn before_commit(
    id: Option<i64>,
    author: &str,
    before: Option<Listed<'_>>,
    after: Option<Listed<'_>>,
) -> Vec<Family> {
    let mut families = vec![Family::Articles, Family::author(author)];
    families.extend(id.map(Family::Article));
    for listed in before.iter().chain(&after) {
        for tag in listed.tags {
            push_new(&mut families, Family::Tag(tag.clone()));
        }
    }
    if published_tags(before) != published_tags(after) {
        families.push(Family::Tags);
    }
    families
}

/// The tags an article counts for in the tag list, in order.
fn published_tags(listed: Option<Listed<'_>>) -> Vec<&String> {
    let mut tags: Vec<&String> = listed
        .filter(|l| l.status == ArticleStatus::Published)
        .map(|l| l.tags.iter().collect())
        .unwrap_or_default();
    tags.sort_unstable();
    tags
}

/// What the write of article `id` makes stale once it committed: what it
/// named before, and what the store saw move.
pub fn after_commit(id: i64, before: &[Family], moved: &FeedChanges) -> Vec<Family> {
    let mut families = before.to_vec();
    push_new(&mut families, Family::Article(id));
    for order in &moved.orders {
        families.push(families::order(order));
        // Every article is in the feed of every article: its changes there
        // are the changes of the article's own place and keys.
        if order.feed == Feed::All {
            push_new(&mut families, families::anchor(id, order.key));
        }
    }
    for (order, neighbour) in &moved.neighbours {
        families.push(families::gap(order, *neighbour));
    }
    families
}

fn push_new(families: &mut Vec<Family>, family: Family) {
    if !families.contains(&family) {
        families.push(family);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FeedOrder, SortKey};

    #[test]
    fn an_article_write_names_every_list_it_was_or_is_in() {
        let (old, new) = (
            vec!["rust".to_owned()],
            vec!["rust".to_owned(), "web".to_owned()],
        );
        let draft = |tags| Listed {
            status: ArticleStatus::Draft,
            tags,
        };
        let families = before_commit(Some(7), "Ada", Some(draft(&old)), Some(draft(&new)));
        assert_eq!(
            families,
            [
                Family::Articles,
                Family::Author("ada".into()),
                Family::Article(7),
                Family::Tag("rust".into()),
                Family::Tag("web".into()),
            ],
            "drafts' tags are not counted in the tag list"
        );
    }

    #[test]
    fn the_tag_list_is_stale_only_when_published_tags_change() {
        let tags = vec!["rust".to_owned()];
        let listed = |status| Listed {
            status,
            tags: &tags,
        };
        let published = Some(listed(ArticleStatus::Published));
        let edit = before_commit(Some(1), "a", published, published);
        assert!(!edit.contains(&Family::Tags));
        let unpublish = before_commit(Some(1), "a", published, Some(listed(ArticleStatus::Draft)));
        assert!(unpublish.contains(&Family::Tags));
        assert!(before_commit(None, "a", None, published).contains(&Family::Tags));
    }

    #[test]
    fn after_commit_adds_the_orders_anchors_and_neighbours_that_moved() {
        let order = |feed, key| FeedOrder {
            feed,
            status: ArticleStatus::Published,
            key,
        };
        let all = order(Feed::All, SortKey::UpdatedAt);
        let tag = order(Feed::Tag("rust".into()), SortKey::UpdatedAt);
        let moved = FeedChanges {
            orders: vec![all.clone(), tag.clone()],
            neighbours: vec![(all.clone(), 3), (tag.clone(), 4)],
        };
        let families = after_commit(7, &[Family::Article(7)], &moved);
        assert_eq!(
            families,
            [
                Family::Article(7),
                families::order(&all),
                families::anchor(7, SortKey::UpdatedAt),
                families::order(&tag),
                families::gap(&all, 3),
                families::gap(&tag, 4),
            ]
        );
    }
}
