//! Per-publish checkpoints: values this publish records for a later attempt of the same
//! publish (same target and idempotency key) to read back, also after a crash.
//!
//! The SDK's durable checkpoint store is not available to this build yet: until it is,
//! nothing is recorded ([`DURABLE`] is false, so the plugin is not declared idempotent and
//! Herald sends a publish interrupted by a crash to review instead of repeating it).

use herald_plugin_sdk::PublishError;

/// Whether checkpoints survive the call (and a crash).
pub const DURABLE: bool = false;

/// Records `value` under `name` for later attempts of this publish.
pub fn save(name: &str, value: &str) -> Result<(), PublishError> {
    let _ = (name, value);
    Ok(())
}

/// The value an earlier attempt of this publish recorded under `name`.
pub fn load(name: &str) -> Option<String> {
    let _ = name;
    None
}
