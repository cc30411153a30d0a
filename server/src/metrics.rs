//! Engagement figures of published posts: asked from each platform's plugin
//! (`fetch-metrics`) as the target's account, and kept as snapshots in `post_metrics`.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use herald_plugin_host::{Metric, PluginHost};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use crate::connections::ConnectionService;
use crate::db::entities::{metric, post, target};
use crate::db::{self, rows};
use crate::domain::actor::Actor;
use crate::domain::status::TargetStatus;
use crate::error::AppError;

/// What refreshing one target's figures gave.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The target.
    pub target: target::Model,
    /// The stored snapshot, when the platform reported figures.
    pub snapshot: Option<metric::Model>,
    /// Why there are none, phrased for the user.
    pub error: Option<String>,
}

/// Fetches and reads engagement figures.
#[derive(Clone)]
pub struct MetricsService {
    db: DatabaseConnection,
    connections: ConnectionService,
    plugins: Option<PluginHost>,
}

impl std::fmt::Debug for MetricsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsService").finish_non_exhaustive()
    }
}

impl MetricsService {
    /// A service asking the plugins in `plugins` as the accounts in `connections`.
    pub fn new(
        db: DatabaseConnection,
        connections: ConnectionService,
        plugins: Option<PluginHost>,
    ) -> Self {
        Self {
            db,
            connections,
            plugins,
        }
    }

    /// Asks each platform for the current figures of the caller's post `post_id`'s
    /// published targets and stores them; a target whose platform cannot answer gets an
    /// error instead (the others are still refreshed).
    pub async fn refresh(&self, actor: &Actor, post_id: Uuid) -> Result<Vec<Refreshed>, AppError> {
        post::Entity::find_by_id(post_id)
            .filter(post::Column::OwnerId.eq(&actor.tenant_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound("post"))?;
        let targets = target::Entity::find()
            .filter(target::Column::PostId.eq(post_id))
            .filter(target::Column::Status.eq(TargetStatus::Published.as_str()))
            .order_by_asc(target::Column::Platform)
            .all(&self.db)
            .await?;
        let mut refreshed = Vec::with_capacity(targets.len());
        for target in targets {
            let outcome = self.fetch(actor, &target).await?;
            refreshed.push(match outcome {
                Ok(snapshot) => Refreshed {
                    target,
                    snapshot: Some(snapshot),
                    error: None,
                },
                Err(error) => Refreshed {
                    target,
                    snapshot: None,
                    error: Some(error),
                },
            });
        }
        Ok(refreshed)
    }

    /// The latest snapshot of each of `target_ids` that has one (the last fetched; of
    /// two fetched at the same time, the higher id), in one statement (`DISTINCT ON`, one
    /// row per target by the `(target_id, fetched_at)` index).
    pub async fn latest(
        &self,
        target_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, metric::Model>, AppError> {
        let backend = self.db.get_database_backend();
        let statement = metric::Entity::find()
            .distinct_on([metric::Column::TargetId])
            .filter(db::one_of(
                (metric::Entity, metric::Column::TargetId),
                target_ids,
            ))
            .order_by_asc(metric::Column::TargetId)
            .order_by_desc(metric::Column::FetchedAt)
            .order_by_desc(metric::Column::Id)
            .build(backend);
        let rows: Vec<metric::Model> = rows::fetch_all(&self.db, statement).await?;
        Ok(rows.into_iter().map(|row| (row.target_id, row)).collect())
    }

    /// One target's figures, stored; `Err(message)` when the platform gave none.
    async fn fetch(
        &self,
        actor: &Actor,
        target: &target::Model,
    ) -> Result<Result<metric::Model, String>, AppError> {
        let platform = target.platform.as_str();
        let unsupported = || {
            Ok(Err(format!(
                "{platform} does not report engagement figures"
            )))
        };
        let (Some(host), Some(platform_post_id)) = (&self.plugins, &target.platform_post_id) else {
            return unsupported();
        };
        if host.platform(platform).is_none() {
            return unsupported();
        }
        let Some((_, credentials)) = self
            .connections
            .credentials(&actor.tenant_id, platform, target.connection_id)
            .await?
        else {
            return Ok(Err(format!("no connected {platform} account to ask")));
        };
        let figures = match host
            .fetch_metrics(platform, platform_post_id, credentials)
            .await
        {
            Ok(figures) if figures.is_empty() => return unsupported(),
            Ok(figures) => figures,
            Err(failure) => {
                tracing::warn!(platform, target = %target.id, %failure, "fetching metrics failed");
                return Ok(Err(format!("{platform} did not answer: {failure}")));
            }
        };
        let snapshot = snapshot_of(target.id, &figures).insert(&self.db).await?;
        Ok(Ok(snapshot))
    }
}

/// The row for `figures`: the common ones in their columns, all of them in `raw`.
fn snapshot_of(target_id: Uuid, figures: &[Metric]) -> metric::ActiveModel {
    let find = |names: &[&str]| {
        figures
            .iter()
            .find(|m| names.contains(&m.name.as_str()))
            .map(|m| m.value)
    };
    let raw: BTreeMap<&str, i64> = figures.iter().map(|m| (m.name.as_str(), m.value)).collect();
    metric::ActiveModel {
        id: Set(Uuid::now_v7()),
        target_id: Set(target_id),
        fetched_at: Set(Utc::now()),
        likes: Set(find(&["likes", "favourites", "favorites", "reactions"])),
        shares: Set(find(&[
            "shares", "reposts", "reblogs", "boosts", "retweets",
        ])),
        comments: Set(find(&["comments", "replies"])),
        impressions: Set(find(&["impressions", "views"])),
        raw: Set(Some(serde_json::json!(raw))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_names_map_to_common_figures() {
        let figures = [
            Metric {
                name: "favourites".into(),
                value: 7,
            },
            Metric {
                name: "reblogs".into(),
                value: 2,
            },
            Metric {
                name: "replies".into(),
                value: 1,
            },
            Metric {
                name: "bookmarks".into(),
                value: 4,
            },
        ];
        let row = snapshot_of(Uuid::nil(), &figures);
        assert_eq!(row.likes, Set(Some(7)));
        assert_eq!(row.shares, Set(Some(2)));
        assert_eq!(row.comments, Set(Some(1)));
        assert_eq!(row.impressions, Set(None));
        assert_eq!(
            row.raw,
            Set(Some(
                serde_json::json!({"bookmarks": 4, "favourites": 7, "reblogs": 2, "replies": 1})
            ))
        );
    }
}
