//! How the cache names the orders, neighbourhoods and anchors of article
//! lists. The read side depends on them and the write side bumps them, so
//! both spell them here.

use crate::cache::{Family, FeedName, Order};
use crate::domain::{ArticleStatus, Feed, FeedOrder, SortKey};

/// The numbered pages of `order` (and every page of a list that filters it).
pub fn order(order: &FeedOrder) -> Family {
    Family::Order(cache_order(order))
}

/// The pages by cursor of `order` that show `article`.
pub fn gap(order: &FeedOrder, article: i64) -> Family {
    Family::Gap(cache_order(order), article)
}

/// The pages by cursor that seek from `article` in `key`'s orders.
pub fn anchor(article: i64, key: SortKey) -> Family {
    Family::Anchor(article, key_index(key))
}

fn cache_order(order: &FeedOrder) -> Order {
    Order {
        feed: match &order.feed {
            Feed::All => FeedName::All,
            Feed::Author(name) => FeedName::Author(name.clone()),
            Feed::Tag(tag) => FeedName::Tag(tag.clone()),
        },
        status: match order.status {
            ArticleStatus::Draft => 0,
            ArticleStatus::Published => 1,
        },
        key: key_index(order.key),
    }
}

fn key_index(key: SortKey) -> u8 {
    match key {
        SortKey::CreatedAt => 0,
        SortKey::UpdatedAt => 1,
        SortKey::PublishedAt => 2,
        SortKey::Title => 3,
    }
}
