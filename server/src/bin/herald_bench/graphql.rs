//! `herald-bench graphql`: the GraphQL API under load, against a real `herald serve`
//! process. `posts(first: 50)` with targets at 50 connections (requests/s, p99) compared
//! with the same SQL through pgbench, acting as the API's role under row-level security
//! (and once as the tables' owner, to show what RLS costs): with every process free to run on every CPU, and
//! with Postgres alone on one CPU (as a database on its own host would be) while the
//! server and the load generators share the others; each with compiled reads (the
//! default) and with the stock executor. Then 10,000 authenticated graphql-transport-ws
//! subscribers: time from a change to the last subscriber receiving it, and server memory
//! per subscriber.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use async_graphql::Variables;
use herald_server::db::{posts, targets};
use herald_server::graphql::serve::compiled::CompiledReads;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryTrait, Statement};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::procs::{children, cpu_ms, postgres_cpu_ms, postmaster_pid, taskset};
use crate::subscribers::fan_out;

/// The benchmark's organisation (the tokens' `org` claim)…
const ORG: &str = "bench";
/// …and the tenant id its posts are stored under.
const TENANT: &str = "org:bench";
const POSTS: usize = 200;
const HTTP_CONNECTIONS: usize = 50;
/// The server's database pool, and pgbench's clients: the same SQL through the same
/// number of database connections.
const DB_CONNECTIONS: usize = 20;
const HTTP_SECONDS: u64 = 10;
const SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";
const QUERY: &str = "{ posts(first: 50) { edges { node { id content status scheduledAt targets { platform status attempts } } } } }";

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub(crate) fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

/// Seeds `POSTS` posts with three targets each; returns the post ids, newest first.
async fn seed(db: &DatabaseConnection) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(POSTS);
    for i in 0..POSTS {
        let id = Uuid::now_v7();
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO social_posts (id, content, platforms, status, timezone, media_urls,
               approval_required, approval_status, owner_id, created_by, created_at,
               updated_at, version)
             VALUES ($1, $2, '[\"x\",\"bluesky\",\"mastodon\"]', 'draft', 'UTC', '[]', false,
               'not_required', $3, $3, now() + $4 * interval '1 millisecond', now(), 1)",
            [
                id.into(),
                format!("post {i}").into(),
                TENANT.into(),
                (i as i64).into(),
            ],
        ))
        .await?;
        for platform in ["x", "bluesky", "mastodon"] {
            db.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO post_targets (id, post_id, platform, status, attempts, created_at,
                   updated_at, queue_version)
                 VALUES ($1, $2, $3, 'draft', 0, now(), now(), 1)",
                [Uuid::now_v7().into(), id.into(), platform.into()],
            ))
            .await?;
        }
        ids.push(id);
    }
    ids.reverse();
    Ok(ids)
}

fn token() -> anyhow::Result<String> {
    let config = herald_server::config::JwtConfig {
        key: herald_server::config::JwtKey::Secret(SECRET.as_bytes().to_vec()),
        issuer: None,
        audience: None,
        operators: Vec::new(),
    };
    Ok(herald_server::auth::mint(
        &config,
        "bench-user",
        Some(ORG),
        &[],
        24,
    )?)
}

/// Starts `herald serve` on `cpus` (its runtime sizes itself to them, as in a container
/// with that many CPUs).
async fn start_server(
    herald: &Path,
    url: &str,
    redis_url: &str,
    port: u16,
    cpus: &str,
    reads: Reads,
) -> anyhow::Result<Child> {
    let child = Command::new("taskset")
        .args(["-c", cpus])
        .arg(herald)
        .args(["serve", "--no-migrate", "--no-worker"])
        .env("DATABASE_URL", url)
        .env("REDIS_URL", redis_url)
        .env(
            "HERALD_QUEUE_NAMESPACE",
            format!("bench-{}", Uuid::new_v4().simple()),
        )
        .env("HERALD_BIND", format!("127.0.0.1:{port}"))
        .env("HERALD_JWT_SECRET", SECRET)
        .env(
            "HERALD_TOKEN_KEY",
            "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmU=",
        )
        .env("HERALD_DB_MAX_CONNECTIONS", DB_CONNECTIONS.to_string())
        .env(
            "HERALD_GRAPHQL_COMPILED_READS",
            (reads == Reads::Compiled).to_string(),
        )
        // One tenant sends thousands of requests a second: the rate limit would measure
        // itself, not the server.
        .env("HERALD_RATE_LIMIT_PER_MINUTE", "0")
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", herald.display()))?;
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("herald serve did not become healthy")
}

/// What one HTTP load run measured.
struct Load {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
}

/// `posts(first: 50)` at 50 connections for 10 s, by wrk (one thread) on `cpus`, after
/// checking the answer once.
async fn http_load(port: u16, token: &str, cpus: &str) -> anyhow::Result<Load> {
    let body = json!({ "query": QUERY }).to_string();
    let url = format!("http://127.0.0.1:{port}/graphql");
    let check: Value = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await?
        .json()
        .await?;
    let edges = check["data"]["posts"]["edges"].as_array().map(Vec::len);
    if edges != Some(50) {
        bail!("unexpected answer: {check}");
    }
    // wrk reports through its `done` hook: requests, duration (µs), p50 and p99 (µs),
    // non-2xx answers and socket errors.
    let script = format!(
        r#"wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("herald-bench %d %d %d %d %d %d\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"#,
        body = serde_json::to_string(&body)?,
    );
    let file = std::env::temp_dir().join(format!("herald-bench-{}.lua", Uuid::new_v4().simple()));
    std::fs::write(&file, script)?;
    let output = Command::new("taskset")
        .args(["-c", cpus, "wrk", "-t1"])
        .arg(format!("-c{HTTP_CONNECTIONS}"))
        .arg(format!("-d{HTTP_SECONDS}s"))
        .arg("-s")
        .arg(&file)
        .arg(&url)
        .output()
        .await
        .context("running wrk (scripts/bench installs it)")?;
    std::fs::remove_file(&file).ok();
    let text = String::from_utf8_lossy(&output.stdout);
    let figures: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("herald-bench "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [
        requests,
        duration_us,
        p50_us,
        p99_us,
        non_2xx,
        socket_errors,
    ] = figures[..]
    else {
        bail!(
            "wrk output: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    if non_2xx > 0.0 || socket_errors > 0.0 {
        bail!("wrk saw {non_2xx} non-2xx answers and {socket_errors} socket errors: {text}");
    }
    Ok(Load {
        requests_per_s: requests / (duration_us / 1e6),
        p50_ms: p50_us / 1000.0,
        p99_ms: p99_us / 1000.0,
        requests: requests as u64,
    })
}

/// A statement as a pgbench script line: `$n` placeholders become `:pn` variables, whose
/// values go to pgbench as `-D pn=value`, so pgbench sends the same parameterised statement
/// the server sends.
fn pgbench_statement(statement: &Statement, defines: &mut Vec<String>) -> anyhow::Result<String> {
    let mut sql = statement.sql.clone();
    let values = statement
        .values
        .as_ref()
        .map(|v| v.0.clone())
        .unwrap_or_default();
    let offset = defines.len();
    // Highest first, so `$1` does not rewrite the start of `$10`.
    for (index, value) in values.iter().enumerate().rev() {
        let name = format!("p{}", offset + index + 1);
        sql = sql.replace(&format!("${}", index + 1), &format!(":{name}"));
        let text = match value {
            sea_orm::Value::String(Some(s)) => s.to_string(),
            sea_orm::Value::Uuid(Some(u)) => u.to_string(),
            sea_orm::Value::BigUnsigned(Some(n)) => n.to_string(),
            sea_orm::Value::BigInt(Some(n)) => n.to_string(),
            sea_orm::Value::Array(_, Some(items)) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|item| match item {
                        sea_orm::Value::Uuid(Some(u)) => Ok(u.to_string()),
                        other => Err(anyhow::anyhow!("no pgbench text for {other:?}")),
                    })
                    .collect::<anyhow::Result<_>>()?;
                format!("{{{}}}", items.join(","))
            }
            other => bail!("no pgbench text for {other:?}"),
        };
        defines.push(format!("{name}={text}"));
    }
    Ok(format!("{sql};\n"))
}

/// How the server answers `posts` pages (`HERALD_GRAPHQL_COMPILED_READS`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// One compiled statement that writes the page's JSON.
    Compiled,
    /// The stock executor: the page, then its targets, decoded and serialised.
    Stock,
}

impl Reads {
    fn name(self) -> &'static str {
        match self {
            Self::Compiled => "compiled",
            Self::Stock => "stock",
        }
    }

    /// The SQL the server runs for one `QUERY` request, as a pgbench script and its
    /// `-D` definitions: built by the server's own functions, with the same parameters.
    fn pgbench_script(self, ids: &[Uuid]) -> anyhow::Result<(String, Vec<String>)> {
        let mut defines = Vec::new();
        let script = match self {
            Self::Compiled => {
                let statement = CompiledReads::statement_of(QUERY, &Variables::default(), TENANT)?;
                pgbench_statement(&statement, &mut defines)?
            }
            Self::Stock => {
                let page = posts::page_query(
                    TENANT,
                    &posts::PostFilter::default(),
                    posts::PageRequest {
                        key: posts::SortKey::CreatedAt,
                        ascending: false,
                        first: 50,
                        after: None,
                    },
                )
                .build(DbBackend::Postgres);
                let page_ids: Vec<Uuid> = ids.iter().take(50).copied().collect();
                let targets = targets::of_posts_statement(&page_ids);
                pgbench_statement(&page, &mut defines)?
                    + &pgbench_statement(&targets, &mut defines)?
            }
        };
        Ok((script, defines))
    }
}

/// Whom pgbench's sessions act as.
#[derive(Clone, Copy)]
enum Session {
    /// As the server's API pool does: role `herald_api`, the bench's tenant named in
    /// `herald.tenant`, so row-level security filters every row read.
    Api,
    /// As the tables' owner, which row-level security does not apply to: the same SQL
    /// without RLS, to show what RLS costs.
    Owner,
}

/// The server's SQL for one request (see [`Reads::pgbench_script`]), through pgbench with
/// as many clients as the server has database connections, acting as `session`; returns
/// transactions per second and the number of transactions. pgbench runs on `cpus`.
async fn pgbench(
    url: &str,
    ids: &[Uuid],
    cpus: &str,
    reads: Reads,
    session: Session,
) -> anyhow::Result<(f64, u64)> {
    let pg_bin = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(Result::ok)
        .map(|d| d.path().join("bin/pgbench"))
        .find(|p| p.exists())
        .context("pgbench not found")?;
    let (script, defines) = reads.pgbench_script(ids)?;
    let file = std::env::temp_dir().join(format!("herald-bench-{}.sql", Uuid::new_v4().simple()));
    std::fs::write(&file, script)?;
    let mut command = Command::new("taskset");
    if let Session::Api = session {
        command.env(
            "PGOPTIONS",
            format!(
                "-c role={} -c herald.tenant={TENANT}",
                herald_migrations::API_ROLE
            ),
        );
    }
    let output = command
        .args(["-c", cpus])
        .arg(pg_bin)
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &DB_CONNECTIONS.to_string(),
            "-j",
            "2",
            "-T",
        ])
        .arg(HTTP_SECONDS.to_string())
        .args(defines.iter().flat_map(|d| ["-D", d.as_str()]))
        .arg("-f")
        .arg(&file)
        .arg(url)
        .output()
        .await?;
    std::fs::remove_file(&file).ok();
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    match (
        field("tps = "),
        field("number of transactions actually processed: "),
    ) {
        (Some(tps), Some(transactions)) => Ok((tps, transactions as u64)),
        _ => bail!(
            "pgbench output: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// What the HTTP scenario runs against.
struct Target<'a> {
    herald: &'a Path,
    db_url: &'a str,
    redis_url: &'a str,
    ids: &'a [Uuid],
    postmaster: u32,
    token: &'a str,
    /// CPUs of the machine (counted before any pinning narrows this process's view).
    cpus: usize,
}

/// How the processes share the machine's CPUs during the HTTP scenario.
#[derive(Clone, Copy)]
enum Layout {
    /// Every process may run on every CPU.
    Shared,
    /// Postgres alone on CPU 0; the server and the load generators (the HTTP client, or
    /// pgbench's client threads) on the others, as with a database on its own host.
    DatabaseOnItsOwnCore,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::DatabaseOnItsOwnCore => "database_on_its_own_core",
        }
    }

    /// CPU lists (`taskset -c`) of Postgres and of everything else, on `count` CPUs.
    fn cpus(self, count: usize) -> (String, String) {
        let last = count.max(1) - 1;
        match self {
            Self::Shared => (format!("0-{last}"), format!("0-{last}")),
            Self::DatabaseOnItsOwnCore => ("0".into(), format!("1-{last}")),
        }
    }

    /// Sets the CPU affinity of Postgres (the postmaster, which new backends inherit, and
    /// its live processes) and of this process.
    fn apply(self, target: &Target<'_>) -> anyhow::Result<()> {
        let (database, others) = self.cpus(target.cpus);
        let mut postgres = vec![target.postmaster];
        postgres.extend(children(target.postmaster));
        for pid in postgres {
            taskset(&database, pid)?;
        }
        taskset(&others, std::process::id())
    }
}

/// A `herald serve` process of the benchmark.
struct Server {
    /// The process, killed when the server is dropped.
    _process: Child,
    pid: u32,
    port: u16,
    reads: Reads,
}

impl Server {
    /// Starts a server answering with `reads` on the CPUs that `layout` leaves to
    /// everything but Postgres.
    async fn start(target: &Target<'_>, layout: Layout, reads: Reads) -> anyhow::Result<Self> {
        let (_, cpus) = layout.cpus(target.cpus);
        let port = free_port()?;
        let process = start_server(
            target.herald,
            target.db_url,
            target.redis_url,
            port,
            &cpus,
            reads,
        )
        .await?;
        let pid = process.id().context("server pid")?;
        Ok(Self {
            _process: process,
            pid,
            port,
            reads,
        })
    }
}

/// `posts(first: 50)` over HTTP between two pgbench runs of the same SQL, in `layout`,
/// against `server` (started for that layout).
async fn http_scenario(
    target: &Target<'_>,
    layout: Layout,
    server: &Server,
) -> anyhow::Result<Value> {
    layout.apply(target)?;
    let (_, client_cpus) = layout.cpus(target.cpus);
    let (pid, port) = (server.pid, server.port);
    // pgbench before and after the HTTP load: the machine's other load drifts. It acts as
    // the API does (row-level security on); once more as the owner, without RLS.
    let (tps_before, _) = pgbench(
        target.db_url,
        target.ids,
        &client_cpus,
        server.reads,
        Session::Api,
    )
    .await?;
    let (tps_owner, _) = pgbench(
        target.db_url,
        target.ids,
        &client_cpus,
        server.reads,
        Session::Owner,
    )
    .await?;
    let (server_cpu, postgres_cpu) = (cpu_ms(pid, false), postgres_cpu_ms(target.postmaster));
    let load = http_load(port, target.token, &client_cpus).await?;
    let server_cpu = cpu_ms(pid, false).saturating_sub(server_cpu);
    let postgres_cpu_after_http = postgres_cpu_ms(target.postmaster);
    let postgres_http_cpu = postgres_cpu_after_http.saturating_sub(postgres_cpu);
    let postgres_cpu = postgres_cpu_after_http;
    let (tps_after, transactions) = pgbench(
        target.db_url,
        target.ids,
        &client_cpus,
        server.reads,
        Session::Api,
    )
    .await?;
    let postgres_pgbench_cpu = postgres_cpu_ms(target.postmaster).saturating_sub(postgres_cpu);
    let tps = (tps_before + tps_after) / 2.0;
    let per = |ms: u64, n: u64| round(ms as f64 / n.max(1) as f64);
    Ok(json!({
        "scenario": "graphql_posts_first_50",
        "cpus": layout.name(),
        "reads": server.reads.name(),
        "connections": HTTP_CONNECTIONS,
        "requests_per_s": load.requests_per_s.round(),
        "latency_ms": {"p50": round(load.p50_ms), "p99": round(load.p99_ms)},
        "pgbench_tps": tps.round(),
        "pgbench_tps_before_after": [tps_before.round(), tps_after.round()],
        "ratio": round(load.requests_per_s / tps),
        // The same SQL as the tables' owner, without row-level security, between the two
        // runs above: how much of pgbench's rate RLS keeps.
        "pgbench_tps_without_rls": tps_owner.round(),
        "rls_kept": round(tps / tps_owner),
        // CPU per request is what the machine's other load does not change.
        "cpu_ms_per_request": {
            "server": per(server_cpu, load.requests),
            "postgres": per(postgres_http_cpu, load.requests),
            "postgres_under_pgbench": per(postgres_pgbench_cpu, transactions),
        },
    }))
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}

/// Runs both scenarios against a fresh database, printing one JSON line per scenario.
pub async fn run(db_url: &str, redis_url: &str, herald: &Path) -> anyhow::Result<()> {
    herald_server::db::migrate(db_url).await?;
    let db = herald_server::db::connect(db_url, 5).await?;
    let ids = seed(&db).await?;
    db.execute_unprepared("ANALYZE").await?;
    let token = token()?;
    let target = Target {
        herald,
        db_url,
        redis_url,
        ids: &ids,
        postmaster: postmaster_pid(&db).await?,
        token: &token,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
    };
    let shared = Server::start(&target, Layout::Shared, Reads::Compiled).await?;
    println!("{}", http_scenario(&target, Layout::Shared, &shared).await?);
    let fan = fan_out(shared.port, shared.pid, &token, ids[0])
        .await
        .context("subscriptions scenario")?;
    println!("{fan}");
    drop(shared);
    let stock = Server::start(&target, Layout::Shared, Reads::Stock).await?;
    println!("{}", http_scenario(&target, Layout::Shared, &stock).await?);
    drop(stock);
    if target.cpus >= 2 {
        let layout = Layout::DatabaseOnItsOwnCore;
        for reads in [Reads::Compiled, Reads::Stock] {
            let pinned = match Server::start(&target, layout, reads).await {
                Ok(server) => http_scenario(&target, layout, &server).await,
                Err(err) => Err(err),
            };
            Layout::Shared.apply(&target)?;
            println!("{}", pinned?);
        }
    }
    db.close().await?;
    Ok(())
}
