//! Automatic persisted queries (Apollo's APQ protocol) kept in Redis, so every replica
//! knows every registered query.
//!
//! A client first sends only `extensions.persistedQuery = {version: 1, sha256Hash}`; an
//! unknown hash answers `PERSISTED_QUERY_NOT_FOUND` (message `PersistedQueryNotFound`),
//! and the client retries with the query, which is checked against the hash and stored.

use std::time::Duration;

use async_graphql::{ErrorExtensionValues, ServerError, Value};
use fred::prelude::*;
use fred::types::Expiration;
use sha2::{Digest, Sha256};

/// The persisted-query store could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("persisted query store: {0}")]
pub struct PersistedQueryError(String);

impl From<fred::error::Error> for PersistedQueryError {
    fn from(err: fred::error::Error) -> Self {
        Self(err.to_string())
    }
}

/// Registered queries by SHA-256, in Redis.
#[derive(Clone)]
pub struct PersistedQueries {
    client: Client,
    prefix: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for PersistedQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistedQueries")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl PersistedQueries {
    /// Connects to the Redis at `url`; keys are `{namespace}:apq:<sha256>` and expire
    /// `ttl` after their last registration.
    pub async fn connect(
        url: &str,
        namespace: &str,
        ttl: Duration,
    ) -> Result<Self, PersistedQueryError> {
        let config = Config::from_url(url)?;
        let client = Builder::from_config(config)
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build()?;
        client.init().await?;
        Ok(Self {
            client,
            prefix: format!("{{{namespace}}}:apq:"),
            ttl_secs: i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX),
        })
    }

    async fn get(&self, hash: &str) -> Result<Option<String>, PersistedQueryError> {
        Ok(self.client.get(format!("{}{hash}", self.prefix)).await?)
    }

    async fn put(&self, hash: &str, query: &str) -> Result<(), PersistedQueryError> {
        let () = self
            .client
            .set(
                format!("{}{hash}", self.prefix),
                query,
                Some(Expiration::EX(self.ttl_secs)),
                None,
                false,
            )
            .await?;
        Ok(())
    }
}

fn error(message: &str, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// Applies (and removes) `extensions.persistedQuery` of `request`: fills in the query of a
/// known hash, or registers the query sent with its hash. A request without the extension
/// is left alone; the error is the client's answer.
pub(crate) async fn apply(
    store: Option<&PersistedQueries>,
    request: &mut async_graphql::Request,
) -> Result<(), ServerError> {
    let Some(extension) = request.extensions.remove("persistedQuery") else {
        return Ok(());
    };
    let Some(store) = store else {
        return Err(error(
            "PersistedQueryNotSupported",
            "PERSISTED_QUERY_NOT_SUPPORTED",
        ));
    };
    let hash = match &extension {
        Value::Object(fields) if fields.get("version") == Some(&Value::from(1)) => {
            match fields.get("sha256Hash") {
                Some(Value::String(hash))
                    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    hash.to_ascii_lowercase()
                }
                _ => {
                    return Err(error(
                        "persistedQuery.sha256Hash must be a SHA-256 in hex",
                        "BAD_REQUEST",
                    ));
                }
            }
        }
        _ => {
            return Err(error(
                "persistedQuery must be {version: 1, sha256Hash}",
                "BAD_REQUEST",
            ));
        }
    };
    if request.query.is_empty() {
        return match store.get(&hash).await {
            Ok(Some(query)) => {
                request.query = query;
                Ok(())
            }
            Ok(None) => Err(error("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")),
            Err(err) => {
                tracing::error!(%err, "cannot read a persisted query");
                Err(error("internal error", "INTERNAL"))
            }
        };
    }
    if format!("{:x}", Sha256::digest(request.query.as_bytes())) != hash {
        return Err(error(
            "provided sha256Hash does not match the query",
            "PERSISTED_QUERY_HASH_MISMATCH",
        ));
    }
    if let Err(err) = store.put(&hash, &request.query).await {
        // The query still runs; the client will simply register it again next time.
        tracing::warn!(%err, "cannot store a persisted query");
    }
    Ok(())
}
