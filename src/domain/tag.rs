/// Most tags one article may carry.
pub const MAX_TAGS: usize = 10;
const MAX_TAG_CHARS: usize = 32;

/// A tag with the number of published articles that carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    pub name: String,
    pub articles: i64,
}

/// Lower-cases and trims a tag; `None` if it is empty, too long or has
/// characters other than letters, digits and `-_.+#` (so `c++` and `c#` work).
pub fn normalize_tag(raw: &str) -> Option<String> {
    let tag = raw.trim().to_lowercase();
    let valid = !tag.is_empty()
        && tag.chars().count() <= MAX_TAG_CHARS
        && tag
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.+#".contains(c));
    valid.then_some(tag)
}

/// Normalises and de-duplicates, keeping the order given.
pub fn normalize_tags(raw: &[String]) -> Option<Vec<String>> {
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let tag = normalize_tag(tag)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Some(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_lowercased_and_deduplicated() {
        let raw = vec![
            " Rust ".to_string(),
            "rust".into(),
            "C++".into(),
            "数据库".into(),
        ];
        assert_eq!(normalize_tags(&raw).unwrap(), ["rust", "c++", "数据库"]);
    }

    #[test]
    fn tags_with_spaces_quotes_or_excess_length_are_refused() {
        assert_eq!(normalize_tag("two words"), None);
        assert_eq!(normalize_tag("x' OR 1=1 --"), None);
        assert_eq!(normalize_tag(""), None);
        assert_eq!(normalize_tag(&"a".repeat(33)), None);
    }
}
