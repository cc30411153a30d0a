//! Batches related rows of many objects into one query per request tick: the targets of
//! posts, the latest engagement figures of targets.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::db::entities::{metric, target};
use crate::error::AppError;
use crate::metrics::MetricsService;
use crate::posts::PostService;

/// Loads the targets of posts by post id.
pub(crate) struct TargetLoader {
    posts: PostService,
}

impl TargetLoader {
    pub(crate) fn new(posts: PostService) -> Self {
        Self { posts }
    }
}

impl Loader<Uuid> for TargetLoader {
    type Value = Vec<target::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.posts.targets_of(keys).await.map_err(Arc::new)
    }
}

/// Loads the latest engagement snapshot of targets by target id.
pub(crate) struct MetricsLoader {
    metrics: MetricsService,
}

impl MetricsLoader {
    pub(crate) fn new(metrics: MetricsService) -> Self {
        Self { metrics }
    }
}

impl Loader<Uuid> for MetricsLoader {
    type Value = metric::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.metrics.latest(keys).await.map_err(Arc::new)
    }
}
