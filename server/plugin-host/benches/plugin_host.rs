//! Plugin host figures (printed, not asserted): store + instantiate + `publish` + drop with
//! no I/O, p50/p99 over 10,000 calls with the pooling allocator on and off; loading a
//! plugin cold (compiling) versus from the `.cwasm` cache; how soon after its deadline a
//! spinning call is cut off; and the latency of ordinary calls while another call spins
//! (the sandbox tests assert only the order of these events, not their times).
//!
//! ```sh
//! ./scripts/build-plugins          # prints the plugin directory (target/plugins)
//! cargo bench -p herald-plugin-host --bench plugin_host
//! ```
//! `HERALD_TEST_PLUGIN_DIR` overrides where the built plugins are.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use herald_plugin_host::{Credentials, HostConfig, PluginHost, Post, PublishRequest};

const CALLS: usize = 10_000;
const WARM_UP: usize = 500;

fn plugin_dir() -> PathBuf {
    std::env::var_os("HERALD_TEST_PLUGIN_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("plugins")))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"))
}

/// A directory with only the hostile test plugin, whose `publish` of ordinary text does
/// no I/O.
fn bench_dir(name: &str) -> PathBuf {
    let source = plugin_dir();
    let dir = std::env::temp_dir().join(format!("herald-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(error) = std::fs::create_dir_all(&dir).and_then(|()| {
        for ext in ["wasm", "toml"] {
            std::fs::copy(
                source.join(format!("hostile.{ext}")),
                dir.join(format!("hostile.{ext}")),
            )?;
        }
        Ok(())
    }) {
        eprintln!(
            "cannot use the built plugins in {} ({error}): run ./scripts/build-plugins first",
            source.display()
        );
        std::process::exit(2);
    }
    dir
}

fn request() -> PublishRequest {
    request_of("Hello from the benchmark")
}

fn request_of(text: &str) -> PublishRequest {
    PublishRequest {
        post: Post {
            text: text.into(),
            ..Post::default()
        },
        credentials: Credentials {
            access_token: "bench-token".into(),
            ..Credentials::default()
        },
        idempotency_key: "bench".into(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

async fn calls(pooling: bool) {
    let mut config = HostConfig::new(bench_dir(if pooling { "pool" } else { "nopool" }));
    config.pooling = pooling;
    config.concurrency = 16;
    let host = match PluginHost::load(config).await {
        Ok(host) if !host.platforms().is_empty() => host,
        other => {
            eprintln!("plugin did not load: {other:?}");
            std::process::exit(2);
        }
    };
    for _ in 0..WARM_UP {
        if let Err(error) = host.publish("hostile", request()).await {
            eprintln!("publish failed: {error}");
            std::process::exit(2);
        }
    }
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let receipt = host.publish("hostile", request()).await;
        times.push(started.elapsed());
        std::hint::black_box(receipt).ok();
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / CALLS as u32;
    println!(
        "publish (store + instantiate + call + drop), pooling {:>3}: p50 {:>7.1} µs  p99 {:>7.1} µs  mean {:>7.1} µs  ({CALLS} calls)",
        if pooling { "on" } else { "off" },
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6,
    );
}

async fn loads() {
    let dir = bench_dir("load");
    let cache = dir.join(".cache");
    let mut config = HostConfig::new(&dir);
    config.cache_dir = Some(cache);
    let started = Instant::now();
    let cold = PluginHost::load(config.clone()).await;
    let compile = started.elapsed();
    let mut cached = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let host = PluginHost::load(config.clone()).await;
        cached.push(started.elapsed());
        std::hint::black_box(host).ok();
    }
    cached.sort();
    println!(
        "load hostile.wasm (engine + link + info() call): compiling {:>7.1} ms, from .cwasm cache p50 {:>6.2} ms  (ok: {})",
        compile.as_secs_f64() * 1e3,
        percentile(&cached, 0.5).as_secs_f64() * 1e3,
        cold.is_ok()
    );
}

/// A host of the hostile plugin whose calls are cut off after `deadline`.
async fn spinning_host(name: &str, deadline: Duration) -> PluginHost {
    let mut config = HostConfig::new(bench_dir(name));
    config.call_timeout = deadline;
    config.concurrency = 4;
    // Five spins in a row would quarantine it; these figures need it called again.
    config.quarantine_after = u32::MAX;
    match PluginHost::load(config).await {
        Ok(host) if !host.platforms().is_empty() => host,
        other => {
            eprintln!("plugin did not load: {other:?}");
            std::process::exit(2);
        }
    }
}

/// How long after its deadline a call that spins forever returns `Timeout`.
async fn deadlines() {
    let deadline = Duration::from_millis(500);
    let host = spinning_host("deadline", deadline).await;
    let mut overshoot = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let result = host.publish("hostile", request_of("loop")).await;
        let took = started.elapsed();
        std::hint::black_box(result).ok();
        overshoot.push(took.saturating_sub(deadline));
    }
    overshoot.sort();
    println!(
        "spinning call cut off after its {} ms deadline: overshoot p50 {:>6.1} ms, max {:>6.1} ms (5 calls)",
        deadline.as_millis(),
        percentile(&overshoot, 0.5).as_secs_f64() * 1e3,
        overshoot.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// Latency of ordinary calls while another call of the same plugin spins.
async fn beside_a_spinner() {
    let host = spinning_host("spinner", Duration::from_secs(2)).await;
    let spinner = tokio::spawn({
        let host = host.clone();
        async move { host.publish("hostile", request_of("loop")).await }
    });
    let mut times = Vec::new();
    while !spinner.is_finished() && times.len() < 1_000 {
        let started = Instant::now();
        let receipt = host.publish("hostile", request()).await;
        times.push(started.elapsed());
        std::hint::black_box(receipt).ok();
    }
    let _ = spinner.await;
    times.sort();
    println!(
        "publish while another call spins: p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>7.1} ms  ({} calls)",
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        times.len(),
    );
}

fn main() {
    let runtime = |multi: bool| {
        let mut builder = if multi {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        if multi {
            builder.worker_threads(2);
        }
        builder.enable_all().build().unwrap_or_else(|error| {
            eprintln!("no tokio runtime: {error}");
            std::process::exit(2);
        })
    };
    runtime(false).block_on(async {
        calls(true).await;
        calls(false).await;
        loads().await;
    });
    // As the server runs plugins: on a multi-threaded runtime.
    runtime(true).block_on(async {
        deadlines().await;
        beside_a_spinner().await;
    });
}
