//! The `herald` binary: parses the command line and runs the chosen subcommand.

use anyhow::Context;
use clap::Parser;
use herald_server::config::{Cli, Command, LogFormat, PluginCommand};
use herald_server::{app, auth, db, graphql, plugins};
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
    }
    Ok(())
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
