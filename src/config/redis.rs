//! Redis clients as the settings describe them: the one place where a
//! connection to Redis is configured, TLS included.

use super::RedisSettings;

impl RedisSettings {
    /// A client for `url` (one of [`RedisSettings::urls`]) that trusts
    /// `ca_file` when it is set: the shared tier's pool, the invalidation
    /// channel and the shared rate limits all connect through one of these.
    pub fn client(&self, url: &str) -> redis::RedisResult<redis::Client> {
        if self.ca_file.is_empty() {
            return redis::Client::open(url);
        }
        let root_cert = std::fs::read(&self.ca_file).map_err(|err| {
            redis::RedisError::from(std::io::Error::new(
                err.kind(),
                format!("FEEDGATE_REDIS__CA_FILE {}: {err}", self.ca_file),
            ))
        })?;
        redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        )
    }
}
