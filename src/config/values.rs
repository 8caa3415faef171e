//! Settings parsed into the values their users need, once, when the
//! configuration is read: a value that does not parse stops the start with
//! the variable named, and nothing downstream parses or defaults again.

use axum::http::{HeaderValue, Uri};
use ipnet::IpNet;
use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// Which origins may read responses across origins (CORS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin.
    Any,
    /// Exactly these (`https://app.example`), ready to send.
    Listed(Vec<HeaderValue>),
}

impl<'de> Deserialize<'de> for CorsOrigins {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let origins = Vec::<String>::deserialize(deserializer)?;
        if origins.iter().any(|origin| origin.trim() == "*") {
            return Ok(CorsOrigins::Any);
        }
        origins
            .iter()
            .map(|origin| origin_value(origin.trim()).map_err(D::Error::custom))
            .collect::<Result<_, _>>()
            .map(CorsOrigins::Listed)
    }
}

/// An origin is a scheme, a host and maybe a port: no path, no spaces.
fn origin_value(origin: &str) -> Result<HeaderValue, String> {
    let uri: Uri = origin
        .parse()
        .map_err(|_| format!("{origin:?} is not an origin"))?;
    let bare = uri.scheme().is_some()
        && uri.authority().is_some()
        && uri
            .path_and_query()
            .is_none_or(|p| p.as_str() == "/" && !origin.ends_with('/'));
    if !bare {
        return Err(format!(
            "{origin:?} is not an origin (scheme://host[:port], no path)"
        ));
    }
    HeaderValue::from_str(origin).map_err(|_| format!("{origin:?} is not an origin"))
}

/// Networks from IPs or CIDRs (a bare address is a /32 or /128).
pub fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| D::Error::custom(format!("{entry:?} is not an IP address or CIDR")))
        })
        .collect()
}

/// A header value, checked as one.
pub fn header_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<HeaderValue, D::Error> {
    let text = String::deserialize(deserializer)?;
    HeaderValue::from_str(text.trim())
        .map_err(|_| D::Error::custom(format!("{text:?} is not a valid header value")))
}

/// An absolute `http://` or `https://` URL, or nothing for an empty string.
pub fn optional_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Uri>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let uri: Uri = text
        .parse()
        .map_err(|_| D::Error::custom(format!("{text:?} is not a URL")))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(Some(uri)),
        _ => Err(D::Error::custom(format!(
            "{text:?} is not an http:// or https:// URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_bare_scheme_host_and_port() {
        assert!(origin_value("https://app.example").is_ok());
        assert!(origin_value("http://localhost:3000").is_ok());
        for bad in [
            "app.example",
            "https://app.example/path",
            "https://app.example/",
            "not an origin",
        ] {
            assert!(origin_value(bad).is_err(), "{bad}");
        }
    }
}
