use super::article::Author;
use super::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: i64,
    pub article_id: i64,
    pub author: Author,
    pub body: String,
    pub created_at: Timestamp,
}
