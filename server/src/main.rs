//! The `herald` binary: parses the command line and runs the chosen subcommand.

use anyhow::Context;
use clap::Parser;
use herald_server::config::{Cli, Command, KeysCommand, LogFormat, PluginCommand};
use herald_server::{app, auth, db, graphql, keys, plugins};
use tracing_subscriber::EnvFilter;

/// jemalloc rather than the system allocator. A GraphQL response is built from thousands
/// of short-lived allocations (a boxed future and a map entry per field); under glibc's
/// malloc they took about 30% of the server's CPU (`perf` on `scripts/bench graphql`), and
/// jemalloc more than doubled `posts(first: 50)` throughput while keeping a WebSocket
/// subscriber under 5 KB.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            app::serve(config).await?;
        }
        Command::Worker(args) => {
            let config = args.config()?;
            app::run_worker(config).await?;
        }
        Command::Migrate(args) => {
            let url = args.url()?;
            db::migrate(&url).await.context("applying migrations")?;
            tracing::info!("migrations applied");
        }
        Command::PrintSchema => print!("{}", graphql::sdl()),
        Command::Token(args) => {
            let config = args.jwt.config()?;
            let token = auth::mint(
                &config,
                &args.sub,
                args.org.as_deref(),
                &args.roles,
                args.ttl_hours,
            )?;
            println!("{token}");
        }
        Command::Plugin(PluginCommand::Check { file, sandbox }) => {
            let report = plugins::check(&file, &sandbox).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Plugin(PluginCommand::Run {
            file,
            post,
            credentials,
            idempotency_key,
            sandbox,
        }) => {
            let report = plugins::run(
                &file,
                &post,
                credentials.as_deref(),
                &idempotency_key,
                &sandbox,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report["ok"] != true {
                std::process::exit(1);
            }
        }
        Command::Keys(command) => {
            if !run_keys(command).await? {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// Runs `herald keys status|rotate`; `false` when a key is missing or rows are left.
async fn run_keys(command: KeysCommand) -> anyhow::Result<bool> {
    match command {
        KeysCommand::Status(args) => {
            let cipher = args.token_key.cipher()?;
            let db = db::connect_worker(&args.database.url()?, 2).await?;
            let status = keys::status(&db, &cipher).await?;
            println!("current key: {}", status.current);
            for key in &status.rows {
                let note = if key.key_id == status.current {
                    "current"
                } else if cipher.has_key(&key.key_id) {
                    "old: run `herald keys rotate`"
                } else {
                    "MISSING"
                };
                println!("{:>10} rows  {}  ({note})", key.rows, key.key_id);
            }
            println!("rows under other keys: {}", status.not_current());
            if !status.missing.is_empty() {
                let ids: Vec<&str> = status.missing.iter().map(|k| k.key_id.as_str()).collect();
                println!("missing keys: {}", ids.join(", "));
            }
            Ok(status.missing.is_empty())
        }
        KeysCommand::Rotate(args) => {
            let batch = args.batch_size()?;
            let cipher = args.keys.token_key.cipher()?;
            let db = db::connect_worker(&args.keys.database.url()?, 2).await?;
            let rotation = keys::rotate(&db, &cipher, batch, |p| {
                println!(
                    "re-sealed {} of {} rows ({:.0} rows/s)",
                    p.resealed,
                    p.total,
                    p.rate()
                );
            })
            .await?;
            let p = rotation.progress;
            println!(
                "done: {} rows re-sealed with `{}` in {:.2} s ({:.0} rows/s)",
                p.resealed,
                cipher.key_id(),
                p.elapsed.as_secs_f64(),
                p.rate()
            );
            if rotation.locked > 0 {
                println!(
                    "{} rows stayed locked by other transactions: run again",
                    rotation.locked
                );
            }
            for id in &rotation.corrupt {
                println!("row {id} does not open with its key: left as it is");
            }
            for key in &rotation.missing {
                println!(
                    "{} rows are sealed with `{}`, which is not configured: add it to \
                     HERALD_TOKEN_KEYS and run again",
                    key.rows, key.key_id
                );
            }
            Ok(rotation.complete())
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
