//! `q`: the words a title must contain, parsed the same way for every
//! backend's full-text index.

/// Shortest word that counts (MariaDB's full-text index skips shorter ones).
pub const MIN_WORD_CHARS: usize = 3;
/// Words beyond this many are ignored.
pub const MAX_WORDS: usize = 8;

/// Lower-cased words of letters, digits and underscores (as full-text
/// indexes see words), in the order given, without repeats. A title matches when it has every word, the last one also as
/// the start of a longer word (so a search box can query as one types).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    /// `None` if `text` has no word of at least [`MIN_WORD_CHARS`].
    pub fn parse(text: &str) -> Option<Self> {
        let mut words: Vec<String> = Vec::new();
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            let word = word.to_lowercase();
            if word.chars().count() >= MIN_WORD_CHARS && !words.contains(&word) {
                words.push(word);
            }
        }
        words.truncate(MAX_WORDS);
        (!words.is_empty()).then_some(Self(words))
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }

    /// The canonical spelling, for links and cache keys.
    pub fn to_query(&self) -> String {
        self.0.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_letters_and_digits_lowercased_without_short_ones() {
        let terms = SearchTerms::parse("  Rust's  async-IO, in 2024; café Rust").unwrap();
        assert_eq!(terms.words(), ["rust", "async", "2024", "café"]);
        assert_eq!(terms.to_query(), "rust async 2024 café");
    }

    #[test]
    fn underscores_belong_to_words() {
        let terms = SearchTerms::parse("snake_case _wild_").unwrap();
        assert_eq!(terms.words(), ["snake_case", "_wild_"]);
    }

    #[test]
    fn text_without_a_long_enough_word_is_no_search() {
        assert_eq!(SearchTerms::parse("a b c% ' _ go"), None);
        assert_eq!(SearchTerms::parse(""), None);
    }

    #[test]
    fn sql_and_search_syntax_are_just_words() {
        let terms = SearchTerms::parse("x' OR 1=1; DROP TABLE articles -- +rust* \"ada\"").unwrap();
        assert_eq!(terms.words(), ["drop", "table", "articles", "rust", "ada"]);
    }
}
