//! The `feedgate` binary: its subcommands against real databases, and the
//! configuration errors it refuses to start with (exit code 2, naming the
//! variable to fix). Each run gets a fresh directory and a clean environment.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::distr::{Alphanumeric, SampleString};
use sqlx::{Connection, MySqlConnection, SqliteConnection};

const SECRET: &str = "cli-test-key-0123456789abcdef0123456789";

/// A fresh working directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("feedgate-cli-{}", random_suffix()));
        std::fs::create_dir_all(&path).expect("the temp dir is created");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn sqlite_url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_suffix() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), 12)
        .to_lowercase()
}

/// Runs the binary in `dir` with only the given environment variables.
fn feedgate(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feedgate"))
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Asserts a zero exit and returns stdout.
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts the exit code and returns stderr.
fn failed_with(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime starts")
        .block_on(future)
}

fn sqlite_count(url: &str, table: &str) -> i64 {
    block_on(async {
        let mut conn = SqliteConnection::connect(url)
            .await
            .expect("the file opens");
        let sql = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .expect("the table exists")
    })
}

#[test]
fn help_lists_every_subcommand() {
    let dir = TempDir::new();
    let stdout = succeeded(&feedgate(dir.path(), &[], &["--help"]));
    for command in ["serve", "migrate", "seed", "user"] {
        assert!(
            stdout
                .lines()
                .any(|line| line.trim_start().starts_with(command)),
            "{command} missing from:\n{stdout}"
        );
    }
    let seed = succeeded(&feedgate(dir.path(), &[], &["seed", "--help"]));
    assert!(seed.contains("--articles"), "{seed}");
    let user = succeeded(&feedgate(dir.path(), &[], &["user", "create", "--help"]));
    for flag in ["--username", "--password", "--role"] {
        assert!(user.contains(flag), "{flag} missing from:\n{user}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "--help touches no database"
    );
}

#[test]
fn migrate_creates_the_sqlite_file_and_is_idempotent() {
    let dir = TempDir::new();
    let url = dir.sqlite_url("nested/dir/x.db");
    let env = [("DATABASE_URL", url.as_str())];
    let stdout = succeeded(&feedgate(dir.path(), &env, &["migrate"]));
    assert!(stdout.contains("migrations applied"), "{stdout}");
    assert!(dir.path().join("nested/dir/x.db").is_file());
    assert_eq!(sqlite_count(&url, "articles"), 0);
    assert_eq!(sqlite_count(&url, "users"), 0);
    let applied = sqlite_count(&url, "_sqlx_migrations");
    assert!(applied >= 1);

    succeeded(&feedgate(dir.path(), &env, &["migrate"]));
    assert_eq!(sqlite_count(&url, "_sqlx_migrations"), applied);
}

#[test]
fn without_database_url_the_database_is_a_sqlite_file_under_data() {
    let dir = TempDir::new();
    succeeded(&feedgate(dir.path(), &[], &["migrate"]));
    assert!(dir.path().join("data/feedgate.db").is_file());
}

#[test]
fn seed_writes_the_requested_number_of_articles() {
    let dir = TempDir::new();
    let url = dir.sqlite_url("x.db");
    let env = [("DATABASE_URL", url.as_str())];
    let stdout = succeeded(&feedgate(dir.path(), &env, &["seed", "--articles", "50"]));
    assert!(stdout.contains("seeded 50 articles"), "{stdout}");
    assert_eq!(sqlite_count(&url, "articles"), 50);
    assert_eq!(sqlite_count(&url, "users"), 20);
    assert_eq!(
        sqlite_count(&url, "articles WHERE tag_list = ''"),
        0,
        "every article is tagged"
    );
    assert!(
        sqlite_count(&url, "feed_entries WHERE feed_kind = 2") >= 50,
        "every article is in its tags' feeds"
    );
    assert_eq!(
        sqlite_count(&url, "feed_entries WHERE feed_kind = 0"),
        50,
        "every article is in the feed of all articles"
    );

    succeeded(&feedgate(dir.path(), &env, &["seed", "--articles", "50"]));
    assert_eq!(
        sqlite_count(&url, "articles"),
        100,
        "a second run adds more"
    );
}

#[test]
fn user_create_saves_the_user_with_its_role() {
    let dir = TempDir::new();
    let url = dir.sqlite_url("x.db");
    let env = [("DATABASE_URL", url.as_str())];
    let args = [
        "user",
        "create",
        "--username",
        "boss",
        "--password",
        "long enough pw",
        "--role",
    ];
    let stdout = succeeded(&feedgate(
        dir.path(),
        &env,
        &[&args[..], &["admin"]].concat(),
    ));
    assert!(stdout.contains("boss"), "{stdout}");
    assert!(stdout.contains("admin"), "{stdout}");

    let (role, hash): (String, String) = block_on(async {
        let mut conn = SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_as("SELECT role, password_hash FROM users WHERE username = 'boss'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(role, "admin");
    assert!(hash.starts_with("$argon2"), "the password is hashed");
    assert!(!hash.contains("long enough pw"));

    let stdout = succeeded(&feedgate(
        dir.path(),
        &env,
        &[&args[..], &["editor"]].concat(),
    ));
    assert!(stdout.contains("editor"), "{stdout}");
    assert_eq!(
        sqlite_count(&url, "users"),
        1,
        "an existing user is updated"
    );
}

#[test]
fn user_create_refuses_an_unknown_role() {
    let dir = TempDir::new();
    let url = dir.sqlite_url("x.db");
    let output = feedgate(
        dir.path(),
        &[("DATABASE_URL", url.as_str())],
        &[
            "user",
            "create",
            "--username",
            "boss",
            "--password",
            "long enough pw",
            "--role",
            "root",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reader, author, editor, admin"), "{stderr}");
    assert!(!dir.path().join("x.db").exists(), "nothing is written");
}

#[test]
fn mysql_without_a_jwt_secret_exits_2_naming_the_variable() {
    let dir = TempDir::new();
    let output = feedgate(
        dir.path(),
        &[("DATABASE_URL", "mysql://root@127.0.0.1:3306/test")],
        &["migrate"],
    );
    let stderr = failed_with(&output, 2);
    assert!(stderr.contains("FEEDGATE_JWT_SECRET"), "{stderr}");
}

#[test]
fn short_or_published_jwt_secrets_are_refused() {
    let dir = TempDir::new();
    let url = dir.sqlite_url("x.db");
    for secret in ["short", "change-me-change-me-change-me-change-me"] {
        let output = feedgate(
            dir.path(),
            &[
                ("DATABASE_URL", url.as_str()),
                ("FEEDGATE_JWT_SECRET", secret),
            ],
            &["migrate"],
        );
        let stderr = failed_with(&output, 2);
        assert!(stderr.contains("FEEDGATE_JWT_SECRET"), "{stderr}");
        assert!(
            !stderr.contains(secret),
            "the secret is not echoed: {stderr}"
        );
    }
    assert!(!dir.path().join("x.db").exists());
}

#[test]
fn a_database_url_of_another_kind_is_refused_naming_it() {
    let dir = TempDir::new();
    let output = feedgate(
        dir.path(),
        &[("DATABASE_URL", "postgres://x")],
        &["migrate"],
    );
    let stderr = failed_with(&output, 2);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_refused_naming_it() {
    let dir = TempDir::new();
    let output = feedgate(
        dir.path(),
        &[("FEEDGATE_CONFIG", "no-such-file.toml")],
        &["migrate"],
    );
    let stderr = failed_with(&output, 2);
    assert!(stderr.contains("FEEDGATE_CONFIG"), "{stderr}");
}

#[test]
fn an_unreachable_database_fails_naming_database_url() {
    let dir = TempDir::new();
    let output = feedgate(
        dir.path(),
        &[
            ("DATABASE_URL", "mysql://root@127.0.0.1:1/feedgate"),
            ("FEEDGATE_JWT_SECRET", SECRET),
            ("FEEDGATE_DATABASE__ACQUIRE_TIMEOUT_MS", "500"),
        ],
        &["migrate"],
    );
    let stderr = failed_with(&output, 1);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn seed_fills_a_fresh_mariadb_database() {
    let server = std::env::var("FEEDGATE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let name = format!("feedgate_cli_{}", random_suffix());
    let run = |sql: String| {
        let server = server.clone();
        block_on(async move {
            let mut conn = MySqlConnection::connect(&server)
                .await
                .unwrap_or_else(|err| panic!("MariaDB at {server} must be running: {err}"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("the statement runs");
        });
    };
    run(format!("CREATE DATABASE {name}"));

    let dir = TempDir::new();
    let url = format!("{server}/{name}");
    let output = feedgate(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("FEEDGATE_JWT_SECRET", SECRET),
        ],
        &["seed", "--articles", "200"],
    );
    let counts = output.status.success().then(|| {
        block_on(async {
            let mut conn = MySqlConnection::connect(&url).await.unwrap();
            let mut counts = Vec::new();
            for sql in [
                "SELECT COUNT(*) FROM articles",
                "SELECT COUNT(DISTINCT slug) FROM articles",
                "SELECT COUNT(*) FROM users",
            ] {
                let count: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
                counts.push(count);
            }
            counts
        })
    });
    run(format!("DROP DATABASE IF EXISTS {name}"));

    let stdout = succeeded(&output);
    assert!(stdout.contains("seeded 200 articles"), "{stdout}");
    assert_eq!(counts, Some(vec![200, 200, 20]), "articles, slugs, authors");
}
