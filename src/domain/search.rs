//! Words of titles, as `q` searches them: the same rules for what is
//! indexed and what is asked, on every backend.
//!
//! A word is a run of letters, digits and underscores, lower-cased, with
//! accents removed (`Émile` is `emile`). Scripts written without spaces
//! (Chinese, Japanese) make one word of each run between punctuation.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest word kept (longer ones are cut): a key, not a text.
pub const MAX_WORD_CHARS: usize = 64;
/// Words of a search beyond this many are ignored.
pub const MAX_WORDS: usize = 8;

/// The distinct words of `text`, in order.
pub fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .nfd()
        .flat_map(char::to_lowercase)
        .filter(|c| !is_combining_mark(*c))
        .collect();
    let mut words: Vec<String> = Vec::new();
    for word in folded.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let word: String = word.chars().take(MAX_WORD_CHARS).collect();
        if !word.is_empty() && !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// What `q` asks for: titles that have every one of these words. Text with
/// no word at all (only punctuation) matches no title.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchTerms {
    words: Vec<String>,
    /// The canonical spelling: the words, or the text itself if it has none.
    query: String,
}

impl SearchTerms {
    /// `None` for empty text (no search).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let mut words = words(text);
        words.truncate(MAX_WORDS);
        let query = if words.is_empty() {
            text.to_owned()
        } else {
            words.join(" ")
        };
        Some(Self { words, query })
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The canonical spelling, for links and cache keys.
    pub fn to_query(&self) -> &str {
        &self.query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_runs_without_accents_or_repeats() {
        assert_eq!(
            words("  Émile's  async-IO, in 2024; café À Émile"),
            ["emile", "s", "async", "io", "in", "2024", "cafe", "a"]
        );
        assert_eq!(words("snake_case _wild_"), ["snake_case", "_wild_"]);
        assert_eq!(words("日本語の記事 ok"), ["日本語の記事", "ok"]);
        assert_eq!(words("ÉMILE"), words("emile"));
    }

    #[test]
    fn long_words_are_cut() {
        let long = "x".repeat(500);
        assert_eq!(words(&long)[0].chars().count(), MAX_WORD_CHARS);
    }

    #[test]
    fn text_without_words_searches_for_nothing_and_at_most_eight_words_count() {
        let punctuation = SearchTerms::parse(" % ' ").unwrap();
        assert!(punctuation.words().is_empty());
        assert_eq!(
            punctuation.to_query(),
            "% '",
            "still told apart in keys and links"
        );
        assert_eq!(SearchTerms::parse("  "), None);
        let many = SearchTerms::parse("a b c d e f g h i j").unwrap();
        assert_eq!(many.words().len(), MAX_WORDS);
        assert_eq!(SearchTerms::parse("Go, go!").unwrap().to_query(), "go");
    }

    #[test]
    fn sql_and_search_syntax_are_just_words() {
        let terms = SearchTerms::parse("x' OR 1=1; DROP -- +rust* \"ada\"").unwrap();
        assert_eq!(terms.words(), ["x", "or", "1", "drop", "rust", "ada"]);
    }
}
