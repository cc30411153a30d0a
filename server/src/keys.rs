//! Rotation of the keys that seal connected accounts' tokens: which key ids the stored
//! rows need ([`status`]), refusing to start without one of them ([`require_keys`]), and
//! re-sealing every row with the current key ([`rotate`]) in short transactions that
//! pass over rows a running server holds, so servers keep reading and refreshing tokens
//! meanwhile. Rotation is idempotent: a row already under the current key is never read,
//! so an interrupted run is resumed by running it again.

use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::db::tokens::{self, KeyRows, Resealed, SealedRow};
use crate::secrets::{SecretError, TokenCipher};

/// What went wrong with the keys or their rows.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database could not be read or written.
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// Rows are sealed with keys the ring does not hold.
    #[error(
        "connected accounts' tokens are sealed with keys this process does not have: {}. Add \
         each to HERALD_TOKEN_KEYS as `<id>:<base64 key>` after the current key (see README, \
         Key rotation)",
        describe(.0)
    )]
    Missing(Vec<KeyRows>),
}

fn describe(missing: &[KeyRows]) -> String {
    missing
        .iter()
        .map(|k| format!("`{}` ({} rows)", k.key_id, k.rows))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows per key id and what the ring lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key that seals.
    pub current: String,
    /// Rows per key id, sorted by id (ids of the ring without rows are absent).
    pub rows: Vec<KeyRows>,
    /// Key ids that rows need but the ring does not hold, with their row counts.
    pub missing: Vec<KeyRows>,
}

impl KeyStatus {
    /// Rows sealed with a key other than the current one.
    pub fn not_current(&self) -> u64 {
        self.rows
            .iter()
            .filter(|k| k.key_id != self.current)
            .map(|k| k.rows)
            .sum()
    }
}

/// Counts the rows per key id and names the ids the ring lacks.
pub async fn status(db: &DatabaseConnection, cipher: &TokenCipher) -> Result<KeyStatus, DbErr> {
    let rows = tokens::rows_per_key(db).await?;
    let missing = rows
        .iter()
        .filter(|k| !cipher.has_key(&k.key_id))
        .cloned()
        .collect();
    Ok(KeyStatus {
        current: cipher.key_id().to_owned(),
        rows,
        missing,
    })
}

/// Refuses (with the ids and their row counts) when rows are sealed with a key the ring
/// does not hold: a process without it could publish none of those accounts.
pub async fn require_keys(db: &DatabaseConnection, cipher: &TokenCipher) -> Result<(), KeyError> {
    let status = status(db, cipher).await?;
    if status.missing.is_empty() {
        Ok(())
    } else {
        Err(KeyError::Missing(status.missing))
    }
}

/// How a rotation is going, after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Rows re-sealed so far.
    pub resealed: u64,
    /// Rows under another key (of the ring) when the rotation started.
    pub total: u64,
    /// Time since it started.
    pub elapsed: Duration,
}

impl Progress {
    /// Rows re-sealed per second so far.
    pub fn rate(&self) -> f64 {
        self.resealed as f64 / self.elapsed.as_secs_f64().max(1e-6)
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    /// The last progress report.
    pub progress: Progress,
    /// Rows whose ciphertext did not open with their key (left as they are).
    pub corrupt: Vec<Uuid>,
    /// Rows still under another key of the ring (held by others the whole time).
    pub locked: u64,
    /// Rows under keys the ring does not hold (left as they are).
    pub missing: Vec<KeyRows>,
}

impl Rotation {
    /// Whether every row is now sealed with the current key.
    pub fn complete(&self) -> bool {
        self.corrupt.is_empty() && self.locked == 0 && self.missing.is_empty()
    }
}

/// How long rotation waits for rows others hold before giving up on them for this run.
const LOCKED_PATIENCE: Duration = Duration::from_secs(5);
/// Pause between looks at rows others hold.
const LOCKED_PAUSE: Duration = Duration::from_millis(100);

/// Re-seals with the current key every row sealed with another key of the ring, `batch`
/// rows per transaction, calling `report` after each batch.
pub async fn rotate(
    db: &DatabaseConnection,
    cipher: &TokenCipher,
    batch: u32,
    mut report: impl FnMut(&Progress),
) -> Result<Rotation, KeyError> {
    let started = Instant::now();
    let current = cipher.key_id().to_owned();
    let from: Vec<String> = cipher
        .key_ids()
        .filter(|id| *id != current)
        .map(str::to_owned)
        .collect();
    let mut corrupt: Vec<Uuid> = Vec::new();
    let total = tokens::left_to_reseal(db, &current, &from, &corrupt).await?;
    let mut progress = Progress {
        resealed: 0,
        total,
        elapsed: Duration::ZERO,
    };
    let mut idle_since: Option<Instant> = None;
    // The last id of the previous batch: each pass walks the table once in id order.
    let mut after: Option<Uuid> = None;
    let locked = loop {
        let (txn, rows) = tokens::lock_batch(db, &current, &from, &corrupt, after, batch).await?;
        if rows.is_empty() {
            drop(txn);
            if after.take().is_some() {
                // The end of a pass: walk again from the start for rows passed over
                // while others held them.
                continue;
            }
            let left = tokens::left_to_reseal(db, &current, &from, &corrupt).await?;
            let waited = idle_since.get_or_insert_with(Instant::now).elapsed();
            if left == 0 || waited >= LOCKED_PATIENCE {
                break left;
            }
            tokio::time::sleep(LOCKED_PAUSE).await;
            continue;
        }
        idle_since = None;
        after = rows.last().map(|row| row.id);
        let mut resealed = Vec::with_capacity(rows.len());
        for row in &rows {
            match reseal(cipher, row) {
                Ok(done) => resealed.push(done),
                Err(error) => {
                    tracing::warn!(row = %row.id, key = %row.key_id, %error, "token row left as it is");
                    corrupt.push(row.id);
                }
            }
        }
        tokens::write_batch(txn, &current, &resealed).await?;
        progress.resealed += resealed.len() as u64;
        progress.elapsed = started.elapsed();
        report(&progress);
    };
    progress.elapsed = started.elapsed();
    let missing = status(db, cipher).await?.missing;
    Ok(Rotation {
        progress,
        corrupt,
        locked,
        missing,
    })
}

/// `row` opened with its key and sealed with the current one, bound to the same
/// connection.
fn reseal(cipher: &TokenCipher, row: &SealedRow) -> Result<Resealed, SecretError> {
    let context = row.connection_id.as_bytes();
    let token = cipher.open(&row.key_id, &row.token, context)?;
    let refresh = row
        .refresh
        .as_deref()
        .map(|r| cipher.open(&row.key_id, r, context))
        .transpose()?;
    Ok(Resealed {
        id: row.id,
        token: cipher.seal(&token, context),
        refresh: refresh.map(|r| cipher.seal(&r, context)),
    })
}
