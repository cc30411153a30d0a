//! Checkpoints: small named values a plugin saves during a publish (WIT 0.2.0's
//! `checkpoint` interface) so that a later attempt of the same publish resumes where an
//! earlier one stopped (a media container created, not yet published) instead of repeating
//! a step that cannot be repeated safely.
//!
//! The host checks names, sizes and counts; where values live is the embedder's
//! [`CheckpointStore`] (Herald's server keeps them in Postgres, keyed by tenant and
//! idempotency key). A publish made without a store (`herald plugin run`, the host's own
//! tests) keeps them for that call only, and calls other than `publish` keep none.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Longest checkpoint name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Largest checkpoint value, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most names one publish keeps.
pub const MAX_NAMES: usize = 16;

/// A boxed future returned by a [`CheckpointStore`].
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CheckpointError>> + Send + 'a>>;

/// Why a checkpoint was not saved or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// A limit was passed, or no publish is in progress: trying again will not help.
    #[error("{0}")]
    Refused(String),
    /// The store failed; a later attempt may succeed.
    #[error("{0}")]
    Unavailable(String),
}

/// Where one publish's checkpoints are kept, durably. One store serves one publish (the
/// embedder creates it for the target's tenant and idempotency key).
pub trait CheckpointStore: Send + Sync {
    /// The value saved under `name`, if any.
    fn load<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<String>>;
    /// Saves `value` under `name` (replacing an earlier one), returning once it is durable.
    /// A new name beyond `max_names` for this publish is refused with an error saying so.
    fn save<'a>(&'a self, name: &'a str, value: &'a str, max_names: usize) -> StoreFuture<'a, ()>;
}

/// The checkpoints one call may use.
#[derive(Clone, Default)]
pub(crate) enum Checkpoints {
    /// Not a publish: nothing is kept.
    #[default]
    None,
    /// A publish without a store: kept for this call only.
    CallOnly(HashMap<String, String>),
    /// A publish with the embedder's store.
    Store(Arc<dyn CheckpointStore>),
}

impl Checkpoints {
    /// The value saved under `name`; an error when the store cannot tell.
    pub(crate) async fn load(&self, name: &str) -> Result<Option<String>, CheckpointError> {
        match self {
            Checkpoints::None => Ok(None),
            Checkpoints::CallOnly(values) => Ok(values.get(name).cloned()),
            Checkpoints::Store(store) => store.load(name).await,
        }
    }

    /// Saves `value` under `name` after checking the limits.
    pub(crate) async fn save(&mut self, name: &str, value: &str) -> Result<(), CheckpointError> {
        check(name, value).map_err(CheckpointError::Refused)?;
        match self {
            Checkpoints::None => Err(CheckpointError::Refused(
                "checkpoints are kept during a publish only".into(),
            )),
            Checkpoints::CallOnly(values) => {
                if !values.contains_key(name) && values.len() >= MAX_NAMES {
                    return Err(CheckpointError::Refused(format!(
                        "a publish keeps at most {MAX_NAMES} checkpoints"
                    )));
                }
                values.insert(name.to_owned(), value.to_owned());
                Ok(())
            }
            Checkpoints::Store(store) => store.save(name, value, MAX_NAMES).await,
        }
    }
}

/// Why `name` and `value` cannot be saved, if they cannot.
fn check(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "a checkpoint name has 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "a checkpoint value has at most {MAX_VALUE_BYTES} bytes (this one has {})",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn call_only_checkpoints_enforce_the_limits() {
        let mut kept = Checkpoints::CallOnly(HashMap::new());
        kept.save("container", "17841").await.expect("saved");
        assert_eq!(kept.load("container").await, Ok(Some("17841".into())));
        assert!(kept.save("", "x").await.is_err());
        assert!(kept.save(&"n".repeat(65), "x").await.is_err());
        assert!(kept.save("big", &"v".repeat(4097)).await.is_err());
        for index in 1..MAX_NAMES {
            kept.save(&format!("n{index}"), "x")
                .await
                .expect("within the count");
        }
        let over = kept
            .save("one-too-many", "x")
            .await
            .expect_err("over the count");
        assert!(over.to_string().contains("at most 16"), "{over}");
        kept.save("container", "replaced")
            .await
            .expect("an existing name");
        let mut none = Checkpoints::None;
        assert!(none.save("container", "x").await.is_err());
        assert_eq!(none.load("container").await, Ok(None));
    }
}
