//! The wasmtime engine (component model, async, epochs, optional pooling), its epoch
//! ticker, and the compiled-component cache.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::{HostConfig, PluginError};

/// How often the epoch advances: a plugin call busy computing yields its thread this often.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine for `config`.
pub(crate) fn engine(config: &HostConfig) -> Result<Engine, PluginError> {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    if config.pooling {
        // Both lanes' slots can be busy at once.
        let n = config
            .concurrency
            .max(1)
            .saturating_add(config.api_concurrency.max(1));
        let mut pool = PoolingAllocationConfig::default();
        // A Rust wasip2 component has one memory and a few core instances (its module and
        // the shims that adapt its imports).
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .total_stacks(n)
            .max_memory_size(config.memory_limit_bytes);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&wasm).map_err(|error| PluginError::Engine(format!("{error:#}")))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> Result<Self, PluginError> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let stopping = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("herald-plugin-epoch".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|error| PluginError::Engine(format!("epoch thread: {error}")))?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Compiles `bytes`, or loads the `.cwasm` compiled earlier for the same bytes by a
/// compatible engine (the key combines both hashes), writing it on a miss.
pub(crate) fn component(
    engine: &Engine,
    cache_dir: Option<&Path>,
    wasm_path: &Path,
    bytes: &[u8],
) -> Result<Component, PluginError> {
    let compile = || {
        Component::new(engine, bytes).map_err(|error| PluginError::Invalid {
            path: wasm_path.to_owned(),
            reason: format!("not a valid component: {error:#}"),
        })
    };
    let Some(dir) = cache_dir else {
        return compile();
    };
    let cached = dir.join(cache_name(engine, bytes));
    if cached.exists() {
        match load_cached(engine, &cached) {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %cached.display(), %error, "unusable cached plugin, recompiling")
            }
        }
    }
    let component = compile()?;
    if let Err(error) = store(&component, dir, &cached) {
        tracing::warn!(path = %cached.display(), %error, "cannot cache compiled plugin");
    }
    Ok(component)
}

/// `<sha256 of the wasm>-<engine compatibility hash>.cwasm`.
pub(crate) fn cache_name(engine: &Engine, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let wasm: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{wasm}-{:016x}.cwasm", hasher.finish())
}

// SAFETY: `Component::deserialize` trusts its input to be wasmtime's own output. The
// cache directory is Herald's (the operator must not let others write to it), files are
// only ever written by `store` below from `Component::serialize`, named after the engine's
// compatibility hash, and written atomically (temporary file, then rename), so a reader
// never sees a partial file. The file is read into memory rather than mapped
// (`deserialize_file`), so truncating it later cannot fault a running host.
#[allow(unsafe_code)]
fn load_cached(engine: &Engine, path: &Path) -> Result<Component, String> {
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    unsafe { Component::deserialize(engine, &bytes) }.map_err(|error| format!("{error:#}"))
}

fn store(component: &Component, dir: &Path, path: &PathBuf) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| error.to_string())?;
    let bytes = component
        .serialize()
        .map_err(|error| format!("{error:#}"))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes).map_err(|error| error.to_string())?;
    std::fs::rename(&temporary, path).map_err(|error| error.to_string())
}
