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
