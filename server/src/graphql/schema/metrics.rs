//! Engagement figures in GraphQL: a target's latest snapshot (`Target.metrics`) and a
//! mutation that asks the platforms again.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ErrorExtensions, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::columns::object_with_columns;
use super::loader::MetricsLoader;
use super::types::Target;
use super::{actor, parse_id};
use crate::db::entities::metric;
use crate::metrics::MetricsService;

/// One figure as the platform named it.
#[derive(SimpleObject)]
pub struct MetricValue {
    /// The platform's name, e.g. `favourites`.
    pub name: String,
    /// Its value.
    pub value: i64,
}

/// A target's engagement figures at one time (null where the platform has no such figure).
pub struct TargetMetrics(metric::Model);

impl From<metric::Model> for TargetMetrics {
    fn from(row: metric::Model) -> Self {
        Self(row)
    }
}

impl TargetMetrics {
    /// The stored row.
    fn row(&self) -> &metric::Model {
        &self.0
    }
}

object_with_columns! {
    /// A target's engagement figures at one time (null where the platform has no such figure).
    impl TargetMetrics, row: metric::Model, columns: METRICS_COLUMNS {
        /// When the platform was asked.
        column "fetchedAt" fetched_at: DateTime<Utc> = "fetched_at", |row| row.fetched_at;
        /// Likes (favourites).
        column "likes" likes: Option<i64> = "likes", |row| row.likes;
        /// Shares (reposts, boosts).
        column "shares" shares: Option<i64> = "shares", |row| row.shares;
        /// Comments (replies).
        column "comments" comments: Option<i64> = "comments", |row| row.comments;
        /// Impressions (views).
        column "impressions" impressions: Option<i64> = "impressions", |row| row.impressions;
        /// Every figure the platform reported, by its own name.
        async fn raw(&self) -> Vec<MetricValue> {
            self.0
                .raw
                .as_ref()
                .and_then(|raw| raw.as_object())
                .map(|object| {
                    object
                        .iter()
                        .filter_map(|(name, value)| {
                            Some(MetricValue {
                                name: name.clone(),
                                value: value.as_i64()?,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    }
}

/// What refreshing one published target gave.
#[derive(SimpleObject)]
pub struct MetricsRefresh {
    /// The target.
    pub target: Target,
    /// The new figures, when the platform reported some.
    pub metrics: Option<TargetMetrics>,
    /// Why there are none (the platform has no metrics API, did not answer, …).
    pub error: Option<String>,
}

/// Mutations on engagement figures.
#[derive(Default)]
pub struct MetricsMutation;

#[Object]
impl MetricsMutation {
    /// Asks each platform for the current figures of the post's published targets and
    /// keeps them (`Target.metrics` then shows them).
    async fn refresh_post_metrics(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
    ) -> async_graphql::Result<Vec<MetricsRefresh>> {
        let actor = actor(ctx)?;
        let post_id = parse_id(&post_id, "postId")?;
        let refreshed = ctx
            .data::<MetricsService>()?
            .refresh(actor, post_id)
            .await
            .map_err(|e| e.extend())?;
        Ok(refreshed
            .into_iter()
            .map(|r| MetricsRefresh {
                target: Target(r.target),
                metrics: r.snapshot.map(Into::into),
                error: r.error,
            })
            .collect())
    }
}

/// The latest figures of target `id`, for `Target.metrics`.
pub(super) async fn latest_of(
    ctx: &Context<'_>,
    id: uuid::Uuid,
) -> async_graphql::Result<Option<TargetMetrics>> {
    let tenant = super::actor(ctx)?.tenant_id.as_str().into();
    let latest = ctx
        .data::<DataLoader<MetricsLoader>>()?
        .load_one((tenant, id))
        .await
        .map_err(|e| e.as_ref().extend())?;
    Ok(latest.map(Into::into))
}
