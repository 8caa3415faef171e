use std::fmt;

use serde::Deserialize;

/// A string that never shows up in logs or `Debug` output (URLs carry passwords).
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "[redacted]"
        })
    }
}

/// A list of secrets (URLs) given either as a list or as one
/// comma-separated string (as environment variables give them).
pub(super) fn comma_separated<'de, D>(deserializer: D) -> Result<Vec<Secret>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        One(String),
        Many(Vec<String>),
    }
    let items = match Given::deserialize(deserializer)? {
        Given::One(text) => text.split(',').map(str::to_owned).collect(),
        Given::Many(items) => items,
    };
    Ok(items
        .iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty())
        .map(Secret::new)
        .collect())
}

/// Placeholder values copied from examples, which must not guard production.
pub(super) fn is_well_known(secret: &str) -> bool {
    let lowered = secret.to_ascii_lowercase();
    ["change-me", "changeme", "secret", "example", "your-256-bit"]
        .iter()
        .any(|marker| lowered.starts_with(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_value() {
        let secret = Secret::new("mysql://root:hunter2@db/app");
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }
}
