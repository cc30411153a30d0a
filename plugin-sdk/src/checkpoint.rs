//! Durable checkpoints of the publish in progress: save what a multi-step publish has done
//! (a media container created, an upload finished) so that a later attempt of the same
//! publish (a retry, or another worker after a crash) resumes instead of repeating a step
//! that cannot be repeated safely.
//!
//! ```ignore
//! let container = match checkpoint::load("container")? {
//!     Some(id) => id,                                   // an earlier attempt made it
//!     None => {
//!         let id = create_container(&request)?;
//!         checkpoint::save("container", &id)?;          // durable before going on
//!         id
//!     }
//! };
//! publish_container(&container)
//! ```
//!
//! Checkpoints belong to one target's publish (its idempotency key): an edited post starts
//! afresh. Names have 1 to 64 characters, values at most 4096 bytes, 16 names per publish.
//! Outside `publish` nothing is kept (`save` fails, `load` finds nothing).

use crate::__bindings::herald::publisher::checkpoint::{self, CheckpointError};
use crate::PublishError;

/// Saves `value` under `name` for this publish, returning once Herald stored it durably.
/// A refusal (a limit passed) is permanent; a storage failure is retryable.
pub fn save(name: &str, value: &str) -> Result<(), PublishError> {
    checkpoint::save(name, value).map_err(|error| failure(name, error))
}

/// The value saved under `name` by this publish or an earlier attempt of it. When Herald
/// cannot tell (its store failed) the error is retryable: never act as if nothing was saved.
pub fn load(name: &str) -> Result<Option<String>, PublishError> {
    checkpoint::load(name).map_err(|error| failure(name, error))
}

/// A refusal (a limit passed) is permanent; a storage failure is retryable.
fn failure(name: &str, error: CheckpointError) -> PublishError {
    match error {
        CheckpointError::Refused(reason) => {
            PublishError::Permanent(format!("checkpoint `{name}`: {reason}"))
        }
        CheckpointError::Unavailable(reason) => {
            PublishError::Retryable(format!("checkpoint `{name}` is unavailable: {reason}"))
        }
    }
}
