//! Pending connect flows in Postgres (`oauth_states`), so the callback may reach any
//! replica. A row is found by the SHA-256 of its `state` and consumed by deleting it:
//! one `DELETE … RETURNING`, so two callbacks with one state cannot both get it.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::error::AppError;
use crate::secrets::TokenCipher;

/// A connect flow begun and not yet completed.
pub struct Pending {
    /// The tenant the account will belong to.
    pub owner_id: String,
    /// The user who began the flow.
    pub user_id: String,
    /// Platform id.
    pub platform: String,
    /// The redirect URI sent to the platform (the exchange must name it again).
    pub redirect_uri: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// Begun by the browser flow: only the server's callback completes it, with the
    /// browser's cookie.
    pub browser_bound: bool,
    /// Credential extras the user chose when beginning (added to the account's).
    pub extra: Vec<(String, String)>,
    /// When the flow stops being accepted.
    pub expires_at: DateTime<Utc>,
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::Internal(Box::new(err))
}

/// Stores `pending` under `state_hash`, its verifier sealed (bound to the hash).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    cipher: &TokenCipher,
    state_hash: &[u8],
    pending: &Pending,
) -> Result<(), AppError> {
    let extra = if pending.extra.is_empty() {
        None
    } else {
        let json = serde_json::to_vec(&pending.extra).map_err(internal)?;
        Some(cipher.seal(&json, state_hash))
    };
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO oauth_states (state_hash, owner_id, user_id, platform, redirect_uri,
                                   key_id, verifier_ciphertext, browser_bound, created_at,
                                   expires_at, extra_ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9, $10)",
        [
            state_hash.to_vec().into(),
            pending.owner_id.clone().into(),
            pending.user_id.clone().into(),
            pending.platform.clone().into(),
            pending.redirect_uri.clone().into(),
            cipher.key_id().to_owned().into(),
            cipher.seal(pending.verifier.as_bytes(), state_hash).into(),
            pending.browser_bound.into(),
            pending.expires_at.into(),
            extra.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Removes the flows of `owner_id` that expired more than an hour ago (what nobody
/// completed).
pub async fn purge_expired<C: ConnectionTrait>(db: &C, owner_id: &str) -> Result<(), AppError> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM oauth_states
          WHERE owner_id = $1 AND expires_at < now() - interval '1 hour'",
        [owner_id.into()],
    ))
    .await?;
    Ok(())
}

/// Which flows a completion may consume.
pub enum Completer<'a> {
    /// The tenant and user who began it (through the API).
    User {
        /// Tenant id.
        owner_id: &'a str,
        /// User id.
        user_id: &'a str,
    },
    /// The server's callback for `platform`: browser flows only.
    Callback {
        /// Platform id of the callback's route.
        platform: &'a str,
    },
}

/// Consumes the flow of `state_hash` if `completer` may complete it: it is gone
/// afterwards, whatever the caller does with it. `None` when there is no such flow
/// (unknown, already used, or not the completer's).
pub async fn take<C: ConnectionTrait>(
    db: &C,
    cipher: &TokenCipher,
    state_hash: &[u8],
    completer: Completer<'_>,
) -> Result<Option<Pending>, AppError> {
    let none = || Value::from(Option::<String>::None);
    let (owner, user, platform) = match completer {
        Completer::User { owner_id, user_id } => (owner_id.into(), user_id.into(), none()),
        Completer::Callback { platform } => (none(), none(), platform.into()),
    };
    let Some(row) = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM oauth_states
              WHERE state_hash = $1
                AND ($2::text IS NULL OR owner_id = $2)
                AND ($3::text IS NULL OR user_id = $3)
                AND ($4::text IS NULL OR (browser_bound AND platform = $4))
              RETURNING owner_id, user_id, platform, redirect_uri, key_id,
                        verifier_ciphertext, browser_bound, expires_at, extra_ciphertext",
            [state_hash.to_vec().into(), owner, user, platform],
        ))
        .await?
    else {
        return Ok(None);
    };
    let key_id: String = row.try_get("", "key_id")?;
    let sealed: Vec<u8> = row.try_get("", "verifier_ciphertext")?;
    let verifier = cipher
        .open(&key_id, &sealed, state_hash)
        .map_err(internal)?;
    let extra = match row.try_get::<Option<Vec<u8>>>("", "extra_ciphertext")? {
        Some(sealed) => {
            let json = cipher
                .open(&key_id, &sealed, state_hash)
                .map_err(internal)?;
            serde_json::from_slice(&json).map_err(internal)?
        }
        None => Vec::new(),
    };
    Ok(Some(Pending {
        owner_id: row.try_get("", "owner_id")?,
        user_id: row.try_get("", "user_id")?,
        platform: row.try_get("", "platform")?,
        redirect_uri: row.try_get("", "redirect_uri")?,
        verifier: String::from_utf8(verifier).map_err(internal)?,
        browser_bound: row.try_get("", "browser_bound")?,
        expires_at: row.try_get("", "expires_at")?,
        extra,
    }))
}
