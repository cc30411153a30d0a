//! The worker's Postgres statements. Each takes a whole batch in one round trip, and each
//! is fenced: a target moves to `publishing` only from a publishable state at the job's
//! version (compare-and-set), and an attempt's outcome is recorded only while that attempt
//! still holds the target.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement, TransactionTrait, Value,
};
use uuid::Uuid;

use crate::db::entities::post;
use crate::db::{self, json, rules};
use crate::domain::post::MediaItem;
use crate::domain::status::{self, PostStatus, TargetStatus};
use crate::error::AppError;

/// A target won by this worker: it is now `publishing` under `attempt_id`.
#[derive(Debug, Clone)]
pub struct WonTarget {
    /// The target.
    pub target_id: Uuid,
    /// Its post.
    pub post_id: Uuid,
    /// The post's tenant.
    pub owner_id: String,
    /// Platform id.
    pub platform: String,
    /// The attempt now holding the target.
    pub attempt_id: Uuid,
    /// Its number among the target's attempts.
    pub attempt_number: i32,
    /// Whether the post has other targets (whose outcomes may be recorded concurrently).
    pub shared_post: bool,
    /// The post's text.
    pub content: String,
    /// Media attachments.
    pub media: Vec<MediaItem>,
    /// The connected account the target names.
    pub connection_id: Option<Uuid>,
    /// The target's platform options.
    pub options: BTreeMap<String, String>,
}

impl WonTarget {
    fn from_row(row: &sea_orm::QueryResult) -> Result<Self, sea_orm::DbErr> {
        Ok(Self {
            target_id: row.try_get("", "id")?,
            post_id: row.try_get("", "post_id")?,
            owner_id: row.try_get("", "owner_id")?,
            platform: row.try_get("", "platform")?,
            attempt_id: row.try_get("", "attempt_id")?,
            attempt_number: row.try_get("", "attempts")?,
            shared_post: row.try_get::<i32>("", "target_count")? > 1,
            content: row.try_get("", "content")?,
            media: json::media(
                &row.try_get::<serde_json::Value>("", "media")?,
                &row.try_get::<serde_json::Value>("", "media_urls")?,
            ),
            connection_id: row.try_get("", "connection_id")?,
            options: json::options(&row.try_get::<serde_json::Value>("", "options")?),
        })
    }
}

/// A target as the recovery path sees it.
#[derive(Debug, Clone)]
pub struct TargetSnapshot {
    /// Its post.
    pub post_id: Uuid,
    /// Current status.
    pub status: TargetStatus,
    /// Version of the queued work it accepts.
    pub queue_version: i32,
    /// The attempt holding it, if any.
    pub attempt_id: Option<Uuid>,
    /// Whether its post may be published (approved or approval not required, not archived).
    pub publishable: bool,
}

/// How one attempt ended, as recorded.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The target.
    pub target_id: Uuid,
    /// Its post.
    pub post_id: Uuid,
    /// Whether the post has other targets.
    pub shared_post: bool,
    /// The target's platform.
    pub platform: String,
    /// The attempt.
    pub attempt_id: Uuid,
    /// Its number among the target's attempts.
    pub attempt_number: i32,
    /// When the platform call started.
    pub started_at: DateTime<Utc>,
    /// The target's new status: published, retrying or failed.
    pub status: TargetStatus,
    /// The platform's post id, on success.
    pub platform_post_id: Option<String>,
    /// The post's URL, on success.
    pub url: Option<String>,
    /// The error, on failure.
    pub error: Option<String>,
    /// The platform's HTTP status.
    pub response_code: Option<i32>,
    /// When the retry is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Outcome name for `publish_attempts`.
    pub outcome: &'static str,
}

/// A publishable job a worker asks to start.
#[derive(Debug, Clone, Copy)]
pub struct StartRequest {
    /// The target.
    pub target_id: Uuid,
    /// Its post.
    pub post_id: Uuid,
    /// The job's version.
    pub version: i32,
    /// A fresh attempt id.
    pub attempt_id: Uuid,
}

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Locks the rows of `post_ids` in id order until the end of the transaction. Every writer
/// of a post's targets takes its post's lock first (the API does too), so writers never
/// deadlock and a post's derived status is computed from its targets' latest state.
async fn lock_posts<C: ConnectionTrait>(db: &C, post_ids: &[Uuid]) -> Result<(), AppError> {
    let mut ids = post_ids.to_vec();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    db.query_all(stmt(
        "SELECT id FROM social_posts WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        vec![db::ids_value(&ids)],
    ))
    .await?;
    Ok(())
}

/// `($1, $2, …), (…)` placeholders for `rows` rows of `casts`.
fn values_list(rows: usize, casts: &[&str]) -> String {
    let mut out = String::new();
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for (col, cast) in casts.iter().enumerate() {
            if col > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}::{cast}", row * casts.len() + col + 1));
        }
        out.push(')');
    }
    out
}

/// The worker's view of Postgres.
#[derive(Debug, Clone)]
pub struct PublishStore {
    db: DatabaseConnection,
}

impl PublishStore {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Compare-and-set for a batch: each target still `scheduled`/`queued`/`retrying` at the
    /// job's version, whose post is publishable, becomes `publishing` under the given
    /// attempt. Returns the winners and, when `want_posts` (someone listens for changes),
    /// the posts whose status changed.
    pub async fn start(
        &self,
        requests: &[StartRequest],
        want_posts: bool,
    ) -> Result<(Vec<WonTarget>, Vec<post::Model>), AppError> {
        // (See `lock_posts` for why posts are locked first.)
        if requests.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut values = Vec::with_capacity(requests.len() * 3);
        for r in requests {
            values.extend([r.target_id.into(), r.version.into(), r.attempt_id.into()]);
        }
        let sql = format!(
            "WITH claimed(target_id, version, attempt_id) AS (VALUES {})
             UPDATE post_targets t
                SET status = 'publishing', attempt_id = c.attempt_id,
                    attempts = t.attempts + 1, next_attempt_at = NULL, updated_at = now()
               FROM claimed c, social_posts p
              WHERE t.id = c.target_id AND t.queue_version = c.version
                AND t.status IN {pending}
                AND p.id = t.post_id AND {publishable}
          RETURNING t.id, t.post_id, t.platform, t.attempt_id, t.attempts, p.content,
                    p.media_urls, p.media, t.connection_id, t.options, p.owner_id,
                    json_array_length(p.platforms) AS target_count",
            values_list(requests.len(), &["uuid", "int", "uuid"]),
            pending = *rules::PENDING,
            publishable = rules::publishable("p"),
        );
        let txn = self.db.begin().await?;
        lock_posts(
            &txn,
            &requests.iter().map(|r| r.post_id).collect::<Vec<_>>(),
        )
        .await?;
        let rows = txn.query_all(stmt(&sql, values)).await?;
        let won = rows
            .iter()
            .map(WonTarget::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut post_ids: Vec<Uuid> = won.iter().map(|w| w.post_id).collect();
        post_ids.sort();
        post_ids.dedup();
        // A post with a target being published is `publishing`, whatever its other targets.
        let sql = "UPDATE social_posts SET status = 'publishing', updated_at = now()
                    WHERE id = ANY($1) AND status <> 'publishing'";
        let values = vec![db::ids_value(&post_ids)];
        let posts = if post_ids.is_empty() {
            Vec::new()
        } else if want_posts {
            post::Entity::find()
                .from_raw_sql(stmt(&format!("{sql} RETURNING *"), values))
                .all(&txn)
                .await?
        } else {
            txn.execute(stmt(sql, values)).await?;
            Vec::new()
        };
        txn.commit().await?;
        Ok((won, posts))
    }

    /// Records outcomes for a batch of attempts: each attempt in `publish_attempts`, and on
    /// its target while that attempt still holds it (a target another worker took over is
    /// left alone). Returns, when `want_posts`, the posts whose state changed.
    pub async fn finish(
        &self,
        results: &[AttemptResult],
        want_posts: bool,
    ) -> Result<Vec<post::Model>, AppError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let mut values = Vec::with_capacity(results.len() * 11);
        for r in results {
            values.extend([
                r.target_id.into(),
                r.attempt_id.into(),
                r.status.as_str().into(),
                r.platform_post_id.clone().into(),
                r.url.clone().into(),
                r.error.clone().into(),
                r.response_code.into(),
                r.next_attempt_at.into(),
                r.outcome.into(),
                r.attempt_number.into(),
                r.started_at.into(),
            ]);
        }
        let sql = format!(
            "WITH r(target_id, attempt_id, status, post_ref, url, err, code, next_at, outcome,
                    attempt_number, started_at)
               AS (VALUES {}),
             done AS (
               UPDATE post_targets t
                  SET status = r.status,
                      platform_post_id = COALESCE(r.post_ref, t.platform_post_id),
                      platform_url = COALESCE(r.url, t.platform_url),
                      last_error = r.err, last_response_code = r.code,
                      next_attempt_at = r.next_at,
                      published_at = CASE WHEN r.status = 'published' THEN now()
                                          ELSE t.published_at END,
                      updated_at = now()
                 FROM r
                WHERE t.id = r.target_id AND t.attempt_id = r.attempt_id
                  AND t.status IN ('publishing', 'needs_review')
            RETURNING t.id),
             attempts AS (
               INSERT INTO publish_attempts (id, target_id, attempt_number, started_at,
                                             finished_at, outcome, response_code, error)
               SELECT attempt_id, target_id, attempt_number, started_at, now(), outcome, code,
                      err
                 FROM r
               ON CONFLICT DO NOTHING)
             SELECT id FROM done",
            values_list(
                results.len(),
                &[
                    "uuid",
                    "uuid",
                    "text",
                    "text",
                    "text",
                    "text",
                    "int",
                    "timestamptz",
                    "text",
                    "int",
                    "timestamptz"
                ]
            )
        );
        let txn = self.db.begin().await?;
        // Only a post with several targets can have outcomes recorded concurrently.
        let shared: Vec<Uuid> = results
            .iter()
            .filter(|r| r.shared_post)
            .map(|r| r.post_id)
            .collect();
        lock_posts(&txn, &shared).await?;
        let rows = txn.query_all(stmt(&sql, values)).await?;
        let recorded = rows
            .iter()
            .map(|row| row.try_get::<Uuid>("", "id"))
            .collect::<Result<HashSet<_>, _>>()?;
        // A post whose only target this is takes its status straight from the outcome; a
        // post with several targets is derived from all of them, as they are now.
        let mut shared_posts = Vec::new();
        let mut derived = Vec::new();
        let now = Utc::now();
        for r in results.iter().filter(|r| recorded.contains(&r.target_id)) {
            if r.shared_post {
                shared_posts.push(r.post_id);
            } else {
                derived.push((
                    r.post_id,
                    Derived {
                        status: PostStatus::derive(&[r.status], true),
                        posted_at: (r.status == TargetStatus::Published).then_some(now),
                        failure_reason: (r.status == TargetStatus::Failed).then(|| {
                            format!("{}: {}", r.platform, r.error.clone().unwrap_or_default())
                        }),
                    },
                ));
            }
        }
        derived.extend(derive_post_statuses(&txn, &shared_posts).await?);
        let posts = write_post_statuses(&txn, derived, want_posts).await?;
        txn.commit().await?;
        Ok(posts)
    }

    /// The state of one target, for a job whose compare-and-set failed.
    pub async fn snapshot(&self, target_id: Uuid) -> Result<Option<TargetSnapshot>, AppError> {
        let row = self
            .db
            .query_one(stmt(
                "SELECT t.post_id, t.status, t.queue_version, t.attempt_id,
                        p.approval_status, p.archived_at IS NOT NULL AS archived
                   FROM post_targets t JOIN social_posts p ON p.id = t.post_id
                  WHERE t.id = $1",
                vec![target_id.into()],
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TargetSnapshot {
            post_id: row.try_get("", "post_id")?,
            status: row.try_get("", "status")?,
            queue_version: row.try_get("", "queue_version")?,
            attempt_id: row.try_get("", "attempt_id")?,
            publishable: status::is_publishable(
                row.try_get("", "approval_status")?,
                row.try_get("", "archived")?,
            ),
        }))
    }

    /// Takes over a target left `publishing` by a worker that died: the new attempt holds it
    /// from now on (the old one can no longer record an outcome). For idempotent platforms,
    /// where retrying with the same key cannot post twice.
    pub async fn take_over(
        &self,
        post_id: Uuid,
        target_id: Uuid,
        previous: Uuid,
        attempt_id: Uuid,
    ) -> Result<Option<WonTarget>, AppError> {
        let txn = self.db.begin().await?;
        lock_posts(&txn, &[post_id]).await?;
        let row = txn
            .query_one(stmt(
                "WITH old AS (
                   SELECT id, attempts, updated_at FROM post_targets
                    WHERE id = $1 AND attempt_id = $2 AND status = 'publishing'),
                 won AS (
                   UPDATE post_targets t
                      SET attempt_id = $3, attempts = t.attempts + 1, updated_at = now()
                     FROM social_posts p
                    WHERE t.id = $1 AND t.attempt_id = $2 AND t.status = 'publishing'
                      AND p.id = t.post_id
                RETURNING t.id, t.post_id, t.platform, t.attempt_id, t.attempts, p.content,
                          p.media_urls, p.media, t.connection_id, t.options, p.owner_id,
                          json_array_length(p.platforms) AS target_count),
                 interrupted AS (
                   INSERT INTO publish_attempts (id, target_id, attempt_number, started_at,
                                                 finished_at, outcome, error)
                   SELECT $2, id, attempts, updated_at, now(), 'interrupted',
                          'the worker stopped before recording the result'
                     FROM old
                   ON CONFLICT DO NOTHING)
                 SELECT * FROM won",
                vec![target_id.into(), previous.into(), attempt_id.into()],
            ))
            .await?;
        let won = row.as_ref().map(WonTarget::from_row).transpose()?;
        txn.commit().await?;
        Ok(won)
    }

    /// Marks a target left `publishing` by a dead worker as `needs_review`: it may or may not
    /// have reached a platform that cannot deduplicate, so a person decides. The dead
    /// attempt keeps its hold, so if its worker was only slow, its outcome still counts.
    pub async fn mark_needs_review(
        &self,
        post_id: Uuid,
        target_id: Uuid,
        previous: Uuid,
        reason: &str,
    ) -> Result<Vec<post::Model>, AppError> {
        let txn = self.db.begin().await?;
        lock_posts(&txn, &[post_id]).await?;
        let rows = txn
            .query_all(stmt(
                "WITH marked AS (
                   UPDATE post_targets SET status = 'needs_review', last_error = $3,
                          updated_at = now()
                    WHERE id = $1 AND attempt_id = $2 AND status = 'publishing'
                RETURNING post_id, id, attempts),
                 interrupted AS (
                   INSERT INTO publish_attempts (id, target_id, attempt_number, started_at,
                                                 finished_at, outcome, error)
                   SELECT $2, id, attempts, now(), now(), 'interrupted',
                          'the worker stopped before recording the result'
                     FROM marked
                   ON CONFLICT DO NOTHING)
                 SELECT post_id FROM marked",
                vec![target_id.into(), previous.into(), reason.into()],
            ))
            .await?;
        let post_ids = rows
            .iter()
            .map(|row| row.try_get::<Uuid>("", "post_id"))
            .collect::<Result<Vec<_>, _>>()?;
        let derived = derive_post_statuses(&txn, &post_ids).await?;
        let posts = write_post_statuses(&txn, derived, true).await?;
        txn.commit().await?;
        Ok(posts)
    }
}

/// A post's state as derived from its targets.
#[derive(Debug, Clone)]
struct Derived {
    status: PostStatus,
    posted_at: Option<DateTime<Utc>>,
    failure_reason: Option<String>,
}

/// Derives the status (and first publication time, failure summary) of `post_ids` from
/// all their targets as they are now.
async fn derive_post_statuses<C: ConnectionTrait>(
    db: &C,
    post_ids: &[Uuid],
) -> Result<Vec<(Uuid, Derived)>, AppError> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all(stmt(
            "SELECT t.post_id, t.status, t.platform, t.last_error, t.published_at,
                    p.scheduled_at IS NOT NULL AS scheduled
               FROM post_targets t JOIN social_posts p ON p.id = t.post_id
              WHERE t.post_id = ANY($1)",
            vec![db::ids_value(post_ids)],
        ))
        .await?;
    #[derive(Default)]
    struct Acc {
        statuses: Vec<TargetStatus>,
        scheduled: bool,
        first_published: Option<DateTime<Utc>>,
        errors: Vec<String>,
    }
    let mut by_post: HashMap<Uuid, Acc> = HashMap::new();
    for row in rows {
        let post_id: Uuid = row.try_get("", "post_id")?;
        let status: TargetStatus = row.try_get("", "status")?;
        let acc = by_post.entry(post_id).or_default();
        acc.scheduled = row.try_get("", "scheduled")?;
        acc.statuses.push(status);
        if let Some(at) = row.try_get::<Option<DateTime<Utc>>>("", "published_at")? {
            acc.first_published = Some(acc.first_published.map_or(at, |f| f.min(at)));
        }
        if status == TargetStatus::Failed
            && let Some(err) = row.try_get::<Option<String>>("", "last_error")?
        {
            let platform: String = row.try_get("", "platform")?;
            acc.errors.push(format!("{platform}: {err}"));
        }
    }
    Ok(by_post
        .into_iter()
        .map(|(id, acc)| {
            let status = PostStatus::derive(&acc.statuses, acc.scheduled);
            let failure_reason =
                matches!(status, PostStatus::Failed | PostStatus::PartiallyPublished)
                    .then(|| acc.errors.join("; "));
            (
                id,
                Derived {
                    status,
                    posted_at: acc.first_published,
                    failure_reason,
                },
            )
        })
        .collect())
}

/// Writes derived post states that differ from the stored ones; returns the changed posts
/// when `want_posts`.
async fn write_post_statuses<C: ConnectionTrait>(
    db: &C,
    derived: Vec<(Uuid, Derived)>,
    want_posts: bool,
) -> Result<Vec<post::Model>, AppError> {
    if derived.is_empty() {
        return Ok(Vec::new());
    }
    let mut values: Vec<Value> = Vec::with_capacity(derived.len() * 4);
    let rows = derived.len();
    for (id, d) in derived {
        values.extend([
            id.into(),
            d.status.as_str().into(),
            d.posted_at.into(),
            d.failure_reason.into(),
        ]);
    }
    let sql = format!(
        "UPDATE social_posts p
            SET status = v.status, posted_at = COALESCE(p.posted_at, v.posted_at),
                failure_reason = v.reason, updated_at = now()
           FROM (VALUES {}) AS v(id, status, posted_at, reason)
          WHERE p.id = v.id
            AND (p.status IS DISTINCT FROM v.status
                 OR p.posted_at IS DISTINCT FROM COALESCE(p.posted_at, v.posted_at)
                 OR p.failure_reason IS DISTINCT FROM v.reason)",
        values_list(rows, &["uuid", "text", "timestamptz", "text"])
    );
    if !want_posts {
        db.execute(stmt(&sql, values)).await?;
        return Ok(Vec::new());
    }
    Ok(post::Entity::find()
        .from_raw_sql(stmt(&format!("{sql} RETURNING p.*"), values))
        .all(db)
        .await?)
}
