//! The `feedgate` command line: serve (the default), migrate, seed, user.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{App, AppState};
use crate::config::Settings;
use crate::domain::Role;
use crate::store::Store;

/// Password of the authors `feedgate seed` creates.
pub const SEED_PASSWORD: &str = "feedgate-seed";

/// How long `feedgate user create` waits for Redis before writing anyway.
const CHANNEL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Parser)]
#[command(name = "feedgate", version, about = "A cached article API")]
struct Cli {
    /// A TOML file layered over the defaults (also FEEDGATE_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the database and serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write sample articles, authors, tags and comments.
    Seed {
        #[arg(long, default_value_t = 1000)]
        articles: usize,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user, or reset the password and role of an existing one.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "author", value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(value: &str) -> Result<Role, String> {
    Role::parse(value).ok_or_else(|| "one of: reader, author, editor, admin".to_owned())
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("feedgate: {err}");
            return ExitCode::from(2);
        }
    };
    let request_log = crate::telemetry::init(&settings.log);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let result = runtime.block_on(run(cli.command.unwrap_or(Command::Serve), settings));
    // The last requests' lines, still queued after the shutdown, go out.
    request_log.finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("feedgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let store = connect(&settings).await?;
            store.migrate().await.context("migrating")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed { articles } => {
            let state = App::start(settings).await.context("starting")?;
            let hash = state.auth.passwords.hash(SEED_PASSWORD).await?;
            let report = state.store.seed(articles, &hash).await.context("seeding")?;
            println!(
                "seeded {} articles, {} comments and {} authors (password {SEED_PASSWORD:?}) in {:.1?}",
                report.articles, report.comments, report.authors, report.elapsed
            );
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    password,
                    role,
                },
        } => {
            let state = App::start(settings).await.context("starting")?;
            let hash = state.auth.passwords.hash(&password).await?;
            let announced = await_invalidation_channel(&state).await;
            let user = state
                .writer
                .upsert_user(&username, &hash, role)
                .await
                .context("saving the user")?;
            println!(
                "user {} (id {}) is {}",
                user.username,
                user.id,
                user.role.as_str()
            );
            if !(announced && state.cache.is_subscribed()) {
                eprintln!(
                    "feedgate: warning: Redis was unreachable, so running instances were not told: \
                     they may accept the user's old access tokens for up to cache.ttl_secs \
                     (refresh tokens are ended regardless)"
                );
            }
            Ok(())
        }
    }
}

/// Waits (briefly) until this process hears the cache's invalidation
/// channel: a write made before would not reach running instances, whose
/// cached copy of the user would then outlive a password reset. True at
/// once without Redis (no other instance shares a cache with this one).
async fn await_invalidation_channel(state: &AppState) -> bool {
    let deadline = Instant::now() + CHANNEL_WAIT;
    while !state.cache.is_subscribed() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    Store::connect(&settings.database)
        .await
        .context("connecting to DATABASE_URL")
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.server.listen;
    let state = App::start(settings).await.context("starting")?;
    let router = crate::http::router(state.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding FEEDGATE_LISTEN={listen}"))?;
    tracing::info!(address = %listener.local_addr()?, "feedgate listening");
    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops = match state.settings.server.ops_listen {
        Some(address) => Some(start_ops(address, &state, ops_stopped).await?),
        None => None,
    };
    crate::server::serve(listener, router, &state.settings.server, shutdown_signal()).await;
    // The ops address stays up while the public one drains.
    drop(stop_ops);
    if let Some(ops) = ops {
        ops.await
            .context("the ops server")?
            .context("serving ops")?;
    }
    state.store.close().await;
    tracing::info!("feedgate stopped");
    Ok(())
}

/// Binds `server.ops_listen` and serves the ops endpoints there until
/// `stopped` resolves.
async fn start_ops(
    address: std::net::SocketAddr,
    state: &AppState,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding FEEDGATE_SERVER__OPS_LISTEN={address}"))?;
    tracing::info!(address = %listener.local_addr()?, "ops endpoints listening");
    let router = crate::http::ops_router(state.clone());
    Ok(tokio::spawn(crate::http::serve_ops(
        listener,
        router,
        async move {
            let _ = stopped.await;
        },
    )))
}

/// Resolves on Ctrl-C or SIGTERM; in-flight requests then get
/// `server.shutdown_timeout_secs` to finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
