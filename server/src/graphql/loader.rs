//! Batches the targets of many posts into one query per request tick.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::db::entities::target;
use crate::error::AppError;
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
