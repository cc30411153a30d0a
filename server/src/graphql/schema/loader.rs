//! Batches related rows of many objects into one query per request tick: the targets of
//! posts, the latest engagement figures of targets. A batch may hold several tenants'
//! keys (the loaders serve every request); each tenant's keys are loaded in that tenant's
//! scope, as row-level security requires.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::db::entities::{metric, target};
use crate::db::tenant;
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

/// A loader key: the tenant that reads, and the id of what it reads.
pub(crate) type TenantKey = (Arc<str>, Uuid);

/// `keys` grouped by tenant.
fn by_tenant(keys: &[TenantKey]) -> HashMap<Arc<str>, Vec<Uuid>> {
    let mut groups: HashMap<Arc<str>, Vec<Uuid>> = HashMap::new();
    for (tenant, id) in keys {
        groups.entry(tenant.clone()).or_default().push(*id);
    }
    groups
}

impl Loader<TenantKey> for TargetLoader {
    type Value = Vec<target::Model>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[TenantKey],
    ) -> Result<HashMap<TenantKey, Self::Value>, Self::Error> {
        let mut loaded = HashMap::with_capacity(keys.len());
        for (tenant, ids) in by_tenant(keys) {
            let rows = tenant::scope(&tenant, self.posts.targets_of(&ids))
                .await
                .map_err(Arc::new)?;
            loaded.extend(rows.into_iter().map(|(id, v)| ((tenant.clone(), id), v)));
        }
        Ok(loaded)
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

impl Loader<TenantKey> for MetricsLoader {
    type Value = metric::Model;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[TenantKey],
    ) -> Result<HashMap<TenantKey, Self::Value>, Self::Error> {
        let mut loaded = HashMap::with_capacity(keys.len());
        for (tenant, ids) in by_tenant(keys) {
            let rows = tenant::scope(&tenant, self.metrics.latest(&ids))
                .await
                .map_err(Arc::new)?;
            loaded.extend(rows.into_iter().map(|(id, v)| ((tenant.clone(), id), v)));
        }
        Ok(loaded)
    }
}
