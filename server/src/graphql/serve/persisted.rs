//! Automatic persisted queries (Apollo's APQ protocol) kept in Redis, so every replica
//! knows every registered query.
//!
//! A client first sends only `extensions.persistedQuery = {version: 1, sha256Hash}`; an
//! unknown hash answers `PERSISTED_QUERY_NOT_FOUND` (message `PersistedQueryNotFound`),
//! and the client retries with the query, which is checked against the hash and stored.
//!
//! Redis also holds the publishing queue, which stops when Redis is full, so what
//! anyone can store is bounded: only an authenticated caller's query is registered, only
//! up to a size, and each tenant registers at most a quota of new queries per TTL window
//! (`{namespace}:apq-quota:<tenant>`). A query that is not registered still runs; its
//! client just keeps sending it whole.

use std::time::Duration;

use async_graphql::{ErrorExtensionValues, ServerError, Value};
use fred::prelude::*;
use fred::types::Expiration;
use sha2::{Digest, Sha256};

use crate::config::GraphqlConfig;
use crate::domain::actor::Actor;

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
    quota_prefix: String,
    ttl_secs: i64,
    max_query_bytes: usize,
    tenant_quota: u64,
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
    /// `config.apq_ttl` after their last registration, within the size and tenant quota
    /// of `config`.
    pub async fn connect(
        url: &str,
        namespace: &str,
        config: &GraphqlConfig,
    ) -> Result<Self, PersistedQueryError> {
        let client = Builder::from_config(Config::from_url(url)?)
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build()?;
        client.init().await?;
        Ok(Self {
            client,
            prefix: format!("{{{namespace}}}:apq:"),
            quota_prefix: format!("{{{namespace}}}:apq-quota:"),
            ttl_secs: i64::try_from(config.apq_ttl.as_secs().max(1)).unwrap_or(i64::MAX),
            max_query_bytes: config.apq_max_query_bytes,
            tenant_quota: config.apq_tenant_quota,
        })
    }

    async fn get(&self, hash: &str) -> Result<Option<String>, PersistedQueryError> {
        Ok(self.client.get(format!("{}{hash}", self.prefix)).await?)
    }

    /// Registers `query` under `hash` for `tenant`, when the limits allow: a query
    /// already registered has its TTL renewed; a new one counts against the tenant's
    /// quota. Returns whether the query is registered.
    async fn put(
        &self,
        tenant: &str,
        hash: &str,
        query: &str,
    ) -> Result<bool, PersistedQueryError> {
        if query.len() > self.max_query_bytes {
            return Ok(false);
        }
        let key = format!("{}{hash}", self.prefix);
        let renewed: bool = self.client.expire(&key, self.ttl_secs, None).await?;
        if renewed {
            return Ok(true);
        }
        let quota_key = format!("{}{tenant}", self.quota_prefix);
        let used: u64 = self.client.incr(&quota_key).await?;
        if used == 1 {
            let _: bool = self.client.expire(&quota_key, self.ttl_secs, None).await?;
        }
        if used > self.tenant_quota {
            return Ok(false);
        }
        let () = self
            .client
            .set(key, query, Some(Expiration::EX(self.ttl_secs)), None, false)
            .await?;
        Ok(true)
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
/// known hash, or registers the query sent with its hash (for an authenticated `caller`
/// only). A request without the extension is left alone; the error is the client's
/// answer.
pub(crate) async fn apply(
    store: Option<&PersistedQueries>,
    request: &mut async_graphql::Request,
    caller: Option<&Actor>,
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
    let Some(caller) = caller else {
        // Anonymous callers register nothing; the query still runs (and is refused
        // field by field as any anonymous request).
        return Ok(());
    };
    match store.put(&caller.tenant_id, &hash, &request.query).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(tenant = %caller.tenant_id, bytes = request.query.len(), "persisted query not registered: over the size cap or the tenant's quota");
        }
        // The query still runs; the client will simply register it again next time.
        Err(err) => tracing::warn!(%err, "cannot store a persisted query"),
    }
    Ok(())
}
