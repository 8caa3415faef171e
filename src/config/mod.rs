//! Typed settings: `config/default.toml` (compiled in), an optional overlay file
//! named by `FEEDGATE_CONFIG`, then environment variables.

mod redis;
mod secret;
mod values;

use std::net::SocketAddr;
use std::path::Path;

use axum::http::{HeaderValue, Uri};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use ipnet::IpNet;
use serde::Deserialize;

pub use secret::Secret;
pub use values::CorsOrigins;

use crate::domain::Role;

/// The compiled-in defaults, so the binary runs from any directory.
const DEFAULTS: &str = include_str!("../../config/default.toml");

/// Short environment names that tools and deployment scripts rely on.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("DATABASE_REPLICA_URLS", "database.replica_urls"),
    ("REDIS_URL", "redis.url"),
    ("FEEDGATE_LISTEN", "server.listen"),
    ("FEEDGATE_JWT_SECRET", "auth.jwt_secret"),
];

/// Secrets shorter than this are refused outside the embedded default.
const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub cache: CacheSettings,
    pub log: LogSettings,
    pub rate_limit: RateLimitSettings,
}

/// Request rates per client and per user; see `[rate_limit]` in
/// `config/default.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Networks (IPs or CIDRs in the settings) whose `X-Forwarded-For` and
    /// `Forwarded` headers are believed.
    #[serde(deserialize_with = "values::networks")]
    pub trusted_proxies: Vec<IpNet>,
    pub read: LimitSettings,
    pub write: LimitSettings,
    pub token_client: LimitSettings,
    pub token_username: LimitSettings,
    pub token_username_client: LimitSettings,
    pub signup: LimitSettings,
}

/// At most `limit` requests at once, refilled evenly over `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct LimitSettings {
    pub limit: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    pub l1_max_bytes: u64,
    pub ttl_secs: u64,
    pub stale_if_error_secs: u64,
    pub negative_ttl_secs: u64,
    pub degraded_ttl_ms: u64,
    pub redis_prefix: String,
    pub redis_timeout_ms: u64,
    /// The CDN's purge endpoint (empty in the settings: none).
    #[serde(deserialize_with = "values::optional_url")]
    pub purge_url: Option<Uri>,
    pub control: CacheControlSettings,
}

/// `Cache-Control` of public responses, per route family, ready to send.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheControlSettings {
    #[serde(deserialize_with = "values::header_value")]
    pub article: HeaderValue,
    #[serde(deserialize_with = "values::header_value")]
    pub articles: HeaderValue,
    #[serde(deserialize_with = "values::header_value")]
    pub comments: HeaderValue,
    #[serde(deserialize_with = "values::header_value")]
    pub tags: HeaderValue,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// A second address for `/metrics`, `/healthz` and `/readyz` only; when
    /// set, the public address stops serving `/metrics`. Empty: none.
    #[serde(deserialize_with = "empty_as_none")]
    pub ops_listen: Option<SocketAddr>,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub header_read_timeout_secs: u64,
    /// A connection whose response makes no progress (the client reads
    /// nothing) for this long is closed.
    pub send_timeout_secs: u64,
    pub keep_alive: bool,
    pub shutdown_timeout_secs: u64,
    pub cors_origins: CorsOrigins,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: Secret,
    /// Connections to the primary for cache fills and other reads.
    pub max_connections: u32,
    /// Connections to the primary kept for writes and the reads that must
    /// be current (sign-in, a write's own read), so misses never hold them
    /// up (MySQL only: SQLite takes one writer at a time).
    pub write_connections: u32,
    pub acquire_timeout_ms: u64,
    /// Read replicas of `url`, for cache misses and other reads that may
    /// be served by a replica that has applied what they must see.
    #[serde(deserialize_with = "secret::comma_separated")]
    pub replica_urls: Vec<Secret>,
    /// How long a read waits for a replica to apply a write it must see
    /// before it reads the primary instead.
    pub replica_wait_ms: u64,
    /// How long a read waits for a replica's connection before it reads
    /// the primary instead.
    pub replica_acquire_timeout_ms: u64,
    /// A replica further behind its primary than this is out of rotation.
    pub replica_max_lag_secs: u64,
    /// How often each replica's health is checked.
    pub replica_check_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// One URL; for a cluster, seed nodes; for Sentinel, the sentinels
    /// (comma-separated).
    pub url: Secret,
    pub mode: RedisMode,
    /// With Sentinel: the name of the monitored master.
    pub sentinel_master: String,
    /// A PEM file of the CA that signed Redis' certificate (`rediss://`
    /// URLs); empty: the system's roots.
    pub ca_file: String,
}

impl RedisSettings {
    /// The configured URLs; empty when Redis is not used.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// How Redis is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server (or a managed endpoint that fails over behind one address).
    Single,
    /// A Redis Cluster; the URLs are seed nodes.
    Cluster,
    /// A master watched by Redis Sentinel; the URLs are the sentinels.
    Sentinel,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub registration_role: Role,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub hash_concurrency: usize,
    pub hash_queue: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A setting that cannot be used, named the way the operator would set it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(Box<figment::Error>),
    #[error("{variable}: {problem}")]
    Invalid { variable: String, problem: String },
}

impl ConfigError {
    fn invalid(variable: &str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            variable: variable.to_owned(),
            problem: problem.into(),
        }
    }
}

impl From<figment::Error> for ConfigError {
    /// A value that does not parse is named as its environment variable
    /// (`FEEDGATE_SECTION__KEY`), whichever layer it came from.
    fn from(err: figment::Error) -> Self {
        if err.path.is_empty() {
            return ConfigError::Parse(Box::new(err));
        }
        let variable = format!("FEEDGATE_{}", err.path.join("__").to_uppercase());
        ConfigError::Invalid {
            variable,
            problem: err.kind.to_string(),
        }
    }
}

/// Reads an optional address where an empty string means "not set", so the
/// setting can be left empty in TOML and in the environment.
fn empty_as_none<'de, D>(deserializer: D) -> Result<Option<SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

impl Settings {
    /// Defaults, then `FEEDGATE_CONFIG` (or `overlay`), then the environment.
    pub fn load(overlay: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new().merge(Toml::string(DEFAULTS));
        let overlay = overlay
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("FEEDGATE_CONFIG").map(Into::into));
        if let Some(path) = overlay {
            if !path.exists() {
                return Err(ConfigError::Invalid {
                    variable: "FEEDGATE_CONFIG".into(),
                    problem: format!("{} does not exist", path.display()),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("FEEDGATE_").split("__"));
        for &(name, key) in SHORT_NAMES {
            figment = figment.merge(Env::raw().only(&[name]).map(move |_| key.into()));
        }
        let settings: Settings = figment.extract()?;
        settings.check()?;
        Ok(settings)
    }

    /// The compiled-in defaults alone, ignoring the environment (for tests and tools).
    pub fn defaults() -> Self {
        Figment::new()
            .merge(Toml::string(DEFAULTS))
            .extract()
            .expect("config/default.toml is valid")
    }

    pub fn uses_mysql(&self) -> bool {
        self.database.url.expose().starts_with("mysql:")
    }

    /// Refuses settings that would run insecurely or cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose();
        if !(url.starts_with("mysql:") || url.starts_with("sqlite:")) {
            return Err(ConfigError::Invalid {
                variable: "DATABASE_URL".into(),
                problem: "must start with mysql:// or sqlite://".into(),
            });
        }
        let secret = self.auth.jwt_secret.expose();
        if self.uses_mysql() && secret.is_empty() {
            return Err(ConfigError::Invalid {
                variable: "FEEDGATE_JWT_SECRET".into(),
                problem: "is required when DATABASE_URL is MySQL; generate one with \
                          `openssl rand -base64 48`"
                    .into(),
            });
        }
        if !secret.is_empty() && secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                variable: "FEEDGATE_JWT_SECRET".into(),
                problem: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes long"),
            });
        }
        if secret::is_well_known(secret) {
            return Err(ConfigError::Invalid {
                variable: "FEEDGATE_JWT_SECRET".into(),
                problem: "is a published example value; generate your own".into(),
            });
        }
        if !matches!(self.auth.registration_role, Role::Reader | Role::Author) {
            return Err(ConfigError::Invalid {
                variable: "FEEDGATE_AUTH__REGISTRATION_ROLE".into(),
                problem: "must be \"reader\" or \"author\"".into(),
            });
        }
        if self.server.ops_listen == Some(self.server.listen) {
            return Err(ConfigError::Invalid {
                variable: "FEEDGATE_SERVER__OPS_LISTEN".into(),
                problem: "must differ from FEEDGATE_LISTEN".into(),
            });
        }
        if self.auth.hash_concurrency == 0 {
            return Err(ConfigError::Invalid {
                variable: "FEEDGATE_AUTH__HASH_CONCURRENCY".into(),
                problem: "must be at least 1".into(),
            });
        }
        self.check_rate_limits()?;
        self.check_replicas()?;
        self.check_redis_tls()?;
        for (variable, value) in [
            (
                "FEEDGATE_DATABASE__MAX_CONNECTIONS",
                self.database.max_connections,
            ),
            (
                "FEEDGATE_DATABASE__WRITE_CONNECTIONS",
                self.database.write_connections,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(variable, "must be at least 1"));
            }
        }
        Ok(())
    }
}

impl Settings {
    fn check_replicas(&self) -> Result<(), ConfigError> {
        let replicas = &self.database.replica_urls;
        if replicas
            .iter()
            .any(|url| !url.expose().starts_with("mysql:"))
        {
            return Err(ConfigError::Invalid {
                variable: "DATABASE_REPLICA_URLS".into(),
                problem: "each replica URL must start with mysql://".into(),
            });
        }
        if !replicas.is_empty() && !self.uses_mysql() {
            return Err(ConfigError::Invalid {
                variable: "DATABASE_REPLICA_URLS".into(),
                problem: "replicas need DATABASE_URL to be MySQL/MariaDB".into(),
            });
        }
        if self.database.replica_check_ms == 0 {
            return Err(ConfigError::Invalid {
                variable: "FEEDGATE_DATABASE__REPLICA_CHECK_MS".into(),
                problem: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    fn check_redis_tls(&self) -> Result<(), ConfigError> {
        let redis = &self.redis;
        if redis.ca_file.is_empty() {
            return Ok(());
        }
        let problem = if redis.mode != RedisMode::Single {
            "works with FEEDGATE_REDIS__MODE=single; for a cluster or sentinels, \
             name the CA in SSL_CERT_FILE instead"
                .to_owned()
        } else if !redis.urls().iter().all(|url| url.starts_with("rediss://")) {
            "needs a rediss:// REDIS_URL".to_owned()
        } else if let Err(err) = std::fs::metadata(&redis.ca_file) {
            format!("cannot read {}: {err}", redis.ca_file)
        } else {
            return Ok(());
        };
        Err(ConfigError::Invalid {
            variable: "FEEDGATE_REDIS__CA_FILE".into(),
            problem,
        })
    }

    fn check_rate_limits(&self) -> Result<(), ConfigError> {
        let limits = &self.rate_limit;
        let named = [
            ("FEEDGATE_RATE_LIMIT__READ__*", limits.read),
            ("FEEDGATE_RATE_LIMIT__WRITE__*", limits.write),
            ("FEEDGATE_RATE_LIMIT__TOKEN_CLIENT__*", limits.token_client),
            (
                "FEEDGATE_RATE_LIMIT__TOKEN_USERNAME__*",
                limits.token_username,
            ),
            (
                "FEEDGATE_RATE_LIMIT__TOKEN_USERNAME_CLIENT__*",
                limits.token_username_client,
            ),
            ("FEEDGATE_RATE_LIMIT__SIGNUP__*", limits.signup),
        ];
        for (variable, limit) in named {
            if limit.limit == 0 || limit.window_secs == 0 {
                return Err(ConfigError::invalid(
                    variable,
                    "limit and window_secs must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_pass_their_own_checks() {
        let settings = Settings::defaults();
        assert!(!settings.uses_mysql());
        settings.check().unwrap();
    }

    #[test]
    fn mysql_without_a_secret_is_refused_naming_the_variable() {
        let mut settings = Settings::defaults();
        settings.database.url = Secret::new("mysql://root@127.0.0.1/test");
        let err = settings.check().unwrap_err().to_string();
        assert!(err.starts_with("FEEDGATE_JWT_SECRET"), "{err}");
    }

    #[test]
    fn an_empty_ops_address_is_none_and_a_set_one_must_differ_from_listen() {
        assert_eq!(Settings::defaults().server.ops_listen, None);
        let with = |ops: &str| {
            Figment::new()
                .merge(Toml::string(DEFAULTS))
                .merge(Toml::string(&format!("[server]\nops_listen = \"{ops}\"")))
                .extract::<Settings>()
                .map_err(|err| err.to_string())
        };
        let settings = with("127.0.0.1:9090").unwrap();
        assert_eq!(
            settings.server.ops_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
        settings.check().unwrap();
        assert!(with("not an address").is_err());
        let same = with("127.0.0.1:8080").unwrap().check().unwrap_err();
        assert!(
            same.to_string().starts_with("FEEDGATE_SERVER__OPS_LISTEN"),
            "{same}"
        );
    }

    #[test]
    fn short_or_example_secrets_are_refused() {
        let mut settings = Settings::defaults();
        settings.auth.jwt_secret = Secret::new("short");
        assert!(settings.check().is_err());
        settings.auth.jwt_secret = Secret::new("change-me-change-me-change-me-change-me");
        assert!(settings.check().is_err());
        settings.auth.jwt_secret = Secret::new("4rWq9vJz0yq1m7d3x8Ns2Lk5pT6bHc0aEe9uRf3gVi");
        settings.check().unwrap();
    }

    /// The defaults with a TOML layer on top, as `Settings::load` reads
    /// them (errors as an operator sees them).
    fn layered(layer: &str) -> Result<Settings, String> {
        Figment::new()
            .merge(Toml::string(DEFAULTS))
            .merge(Toml::string(layer))
            .extract::<Settings>()
            .map_err(|err| ConfigError::from(err).to_string())
    }

    #[test]
    fn trusted_proxies_take_addresses_and_cidrs_and_refuse_names() {
        let settings =
            layered("[rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]").unwrap();
        assert_eq!(
            settings.rate_limit.trusted_proxies,
            [
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        let err = layered("[rate_limit]\ntrusted_proxies = [\"proxy.internal\"]").unwrap_err();
        assert!(
            err.starts_with("FEEDGATE_RATE_LIMIT__TRUSTED_PROXIES: ")
                && err.contains("proxy.internal"),
            "{err}"
        );
    }

    #[test]
    fn cors_origins_are_any_or_exact_origins_and_junk_is_refused_by_name() {
        assert_eq!(
            layered("").unwrap().server.cors_origins,
            CorsOrigins::Any,
            "the default"
        );
        let listed = layered("[server]\ncors_origins = [\"https://app.example\"]").unwrap();
        assert_eq!(
            listed.server.cors_origins,
            CorsOrigins::Listed(vec![HeaderValue::from_static("https://app.example")])
        );
        let err = layered("[server]\ncors_origins = [\"app.example/path\"]").unwrap_err();
        assert!(err.starts_with("FEEDGATE_SERVER__CORS_ORIGINS: "), "{err}");
    }

    #[test]
    fn cache_control_and_the_purge_url_are_checked_when_read() {
        let defaults = layered("").unwrap();
        assert_eq!(defaults.cache.purge_url, None);
        let err = layered("[cache.control]\narticle = \"max-age=1\\u0001\"").unwrap_err();
        assert!(
            err.starts_with("FEEDGATE_CACHE__CONTROL__ARTICLE: "),
            "{err}"
        );
        let purged = layered("[cache]\npurge_url = \"http://varnish/purge\"").unwrap();
        assert_eq!(
            purged.cache.purge_url.unwrap().to_string(),
            "http://varnish/purge"
        );
        let err = layered("[cache]\npurge_url = \"varnish\"").unwrap_err();
        assert!(err.starts_with("FEEDGATE_CACHE__PURGE_URL: "), "{err}");
    }

    #[test]
    fn replica_urls_come_comma_separated_from_the_environment_or_as_a_list() {
        let with = |layer: &str| {
            Figment::new()
                .merge(Toml::string(DEFAULTS))
                .merge(Toml::string(layer))
                .extract::<Settings>()
                .map(|s| {
                    s.database
                        .replica_urls
                        .iter()
                        .map(|url| url.expose().to_owned())
                        .collect::<Vec<_>>()
                })
                .map_err(|err| err.to_string())
        };
        assert_eq!(with("").unwrap(), Vec::<String>::new());
        assert_eq!(
            with("[database]\nreplica_urls = \"mysql://a/db, mysql://b/db,\"").unwrap(),
            ["mysql://a/db", "mysql://b/db"]
        );
        assert_eq!(
            with("[database]\nreplica_urls = [\"mysql://a/db\"]").unwrap(),
            ["mysql://a/db"]
        );
        assert_eq!(
            with("[database]\nreplica_urls = \"\"").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn replicas_must_be_mysql_and_need_a_mysql_primary() {
        let mut settings = Settings::defaults();
        settings.database.replica_urls = vec![Secret::new("mysql://replica/db")];
        let err = settings.check().unwrap_err().to_string();
        assert!(err.starts_with("DATABASE_REPLICA_URLS"), "{err}");
        settings.database.url = Secret::new("mysql://primary/db");
        settings.auth.jwt_secret = Secret::new("4rWq9vJz0yq1m7d3x8Ns2Lk5pT6bHc0aEe9uRf3gVi");
        settings.check().unwrap();
        settings.database.replica_urls = vec![Secret::new("sqlite://x.db")];
        let err = settings.check().unwrap_err().to_string();
        assert!(err.starts_with("DATABASE_REPLICA_URLS"), "{err}");
    }

    #[test]
    fn a_redis_ca_needs_a_tls_url_in_single_mode_and_a_readable_file() {
        let mut settings = Settings::defaults();
        settings.redis.url = Secret::new("redis://127.0.0.1:6379");
        settings.redis.ca_file = "Cargo.toml".into();
        let err = settings.check().unwrap_err().to_string();
        assert!(err.contains("rediss://"), "{err}");
        settings.redis.url = Secret::new("rediss://127.0.0.1:6390");
        settings.check().unwrap();
        settings.redis.ca_file = "/no/such/ca.pem".into();
        let err = settings.check().unwrap_err().to_string();
        assert!(
            err.starts_with("FEEDGATE_REDIS__CA_FILE: cannot read"),
            "{err}"
        );
        settings.redis.ca_file = "Cargo.toml".into();
        settings.redis.mode = RedisMode::Cluster;
        let err = settings.check().unwrap_err().to_string();
        assert!(err.contains("SSL_CERT_FILE"), "{err}");
    }

    #[test]
    fn a_zero_limit_is_refused_naming_it() {
        let mut settings = Settings::defaults();
        settings.rate_limit.signup.limit = 0;
        let err = settings.check().unwrap_err().to_string();
        assert!(err.starts_with("FEEDGATE_RATE_LIMIT__SIGNUP"), "{err}");
    }
}
