//! The plugins' publish checkpoints in Postgres (`publish_checkpoints`): the store the
//! plugin host writes a publish's checkpoints through, and their purge.

use std::time::Duration;

use herald_plugin_host::checkpoint::{CheckpointError, CheckpointStore, StoreFuture};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use uuid::Uuid;

use super::tenant;

/// Saves `$5` under `$3` for the publish (`$1` target, `$2` idempotency key) of tenant `$4`
/// unless that would make more than `$6` names: a name already saved is replaced. Returns
/// a row when it saved.
const SAVE_SQL: &str = "
    INSERT INTO publish_checkpoints (target_id, idempotency_key, name, owner_id, value, saved_at)
    SELECT $1, $2, $3, $4, $5, now()
     WHERE EXISTS (SELECT 1 FROM publish_checkpoints
                    WHERE target_id = $1 AND idempotency_key = $2 AND name = $3)
        OR (SELECT count(*) FROM publish_checkpoints
             WHERE target_id = $1 AND idempotency_key = $2) < $6
    ON CONFLICT (target_id, idempotency_key, name)
    DO UPDATE SET value = EXCLUDED.value, saved_at = EXCLUDED.saved_at
    RETURNING 1 AS saved";

const LOAD_SQL: &str = "
    SELECT value FROM publish_checkpoints
     WHERE target_id = $1 AND idempotency_key = $2 AND name = $3";

/// The checkpoints of one publish: one target at one idempotency key, in its tenant.
#[derive(Clone)]
pub struct PublishCheckpoints {
    db: DatabaseConnection,
    owner_id: String,
    target_id: Uuid,
    idempotency_key: String,
}

impl PublishCheckpoints {
    /// The checkpoints of `target_id`'s publish at `idempotency_key`, owned by `owner_id`.
    pub fn new(
        db: DatabaseConnection,
        owner_id: &str,
        target_id: Uuid,
        idempotency_key: &str,
    ) -> Self {
        Self {
            db,
            owner_id: owner_id.to_owned(),
            target_id,
            idempotency_key: idempotency_key.to_owned(),
        }
    }

    fn statement(&self, sql: &str, mut values: Vec<sea_orm::Value>) -> Statement {
        let mut all: Vec<sea_orm::Value> =
            vec![self.target_id.into(), self.idempotency_key.clone().into()];
        all.append(&mut values);
        Statement::from_sql_and_values(DbBackend::Postgres, sql, all)
    }
}

/// A storage failure, logged here and worded for the plugin without its details.
fn unavailable(error: DbErr) -> CheckpointError {
    tracing::error!(%error, "publish checkpoint store failed");
    CheckpointError::Unavailable("Herald's checkpoint store failed; try again".into())
}

impl CheckpointStore for PublishCheckpoints {
    fn load<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(tenant::scope(&self.owner_id, async move {
            let row = self
                .db
                .query_one(self.statement(LOAD_SQL, vec![name.into()]))
                .await
                .map_err(unavailable)?;
            row.map(|row| row.try_get::<String>("", "value"))
                .transpose()
                .map_err(unavailable)
        }))
    }

    fn save<'a>(&'a self, name: &'a str, value: &'a str, max_names: usize) -> StoreFuture<'a, ()> {
        Box::pin(tenant::scope(&self.owner_id, async move {
            let max = i64::try_from(max_names).unwrap_or(i64::MAX);
            let saved = self
                .db
                .query_one(self.statement(
                    SAVE_SQL,
                    vec![
                        name.into(),
                        self.owner_id.clone().into(),
                        value.into(),
                        max.into(),
                    ],
                ))
                .await
                .map_err(unavailable)?;
            match saved {
                Some(_) => Ok(()),
                None => Err(CheckpointError::Refused(format!(
                    "a publish keeps at most {max_names} checkpoints"
                ))),
            }
        }))
    }
}

/// Deletes checkpoints saved more than `age` ago (their publish is long settled: media
/// containers expire after a day). Returns how many went.
pub async fn purge(db: &DatabaseConnection, age: Duration) -> Result<u64, DbErr> {
    let seconds = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
    let result = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM publish_checkpoints WHERE saved_at < now() - make_interval(secs => $1::float8)",
            [seconds.into()],
        ))
        .await?;
    Ok(result.rows_affected())
}
