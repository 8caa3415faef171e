//! Time is stored as UTC milliseconds since the epoch and shown as ISO 8601.

use chrono::{DateTime, SecondsFormat, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now()
}

/// Reads a stored time; out-of-range values (never written by us) become the epoch.
pub fn from_millis(millis: i64) -> Timestamp {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// `2024-05-20T12:34:56Z`: second precision, always UTC, always `Z`.
pub fn iso8601(time: &Timestamp) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `serde(with = "...")` helpers rendering [`iso8601`].
pub mod serde_iso8601 {
    use super::Timestamp;

    pub fn serialize<S: serde::Serializer>(time: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::iso8601(time))
    }

    pub mod option {
        use super::Timestamp;

        pub fn serialize<S: serde::Serializer>(
            time: &Option<Timestamp>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match time {
                Some(time) => super::serialize(time, s),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_utc_with_seconds_and_z() {
        assert_eq!(
            iso8601(&from_millis(1_716_208_496_789)),
            "2024-05-20T12:34:56Z"
        );
    }
}
