//! Reading posts: one post, which of a set are the caller's, a filtered and sorted page
//! (keyset paging; the query is `db::posts::page_query`), and the targets of a page's
//! posts in one statement.

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait};
use uuid::Uuid;

use super::PostService;
use crate::db::entities::{post, target};
use crate::db::{self, posts, rows, targets};
use crate::domain::actor::Actor;
use crate::error::AppError;

pub use crate::db::posts::{Keyset, Page, PageRequest, PostFilter, SortKey, sort_value};

impl PostService {
    /// Which of `post_ids` belong to the caller's tenant.
    pub async fn owned(&self, actor: &Actor, post_ids: &[Uuid]) -> Result<HashSet<Uuid>, AppError> {
        if post_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = post::Entity::find()
            .select_only()
            .column(post::Column::Id)
            .filter(db::one_of(post::Column::Id, post_ids))
            .filter(post::Column::OwnerId.eq(&actor.tenant_id))
            .into_tuple::<Uuid>()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// The caller's post `id`, or `None` when it does not exist or is another tenant's.
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<Option<post::Model>, AppError> {
        Ok(post::Entity::find_by_id(id)
            .filter(post::Column::OwnerId.eq(&actor.tenant_id))
            .one(&self.db)
            .await?)
    }

    /// A page of the caller's posts.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &PostFilter,
        page: PageRequest,
    ) -> Result<Page, AppError> {
        let query = posts::page_query(&actor.tenant_id, filter, page);
        let statement = query.build(self.db.get_database_backend());
        let mut posts: Vec<post::Model> = rows::fetch_all(&self.db, statement).await?;
        let has_next_page = posts.len() as u64 > page.first;
        posts.truncate(page.first as usize);
        Ok(Page {
            posts,
            has_next_page,
        })
    }

    /// The targets of each of `post_ids`, in platform order (one query).
    pub async fn targets_of(
        &self,
        post_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<target::Model>>, AppError> {
        let statement = targets::of_posts_statement(post_ids);
        let rows: Vec<target::Model> = rows::fetch_all(&self.db, statement).await?;
        let mut by_post: HashMap<Uuid, Vec<target::Model>> = HashMap::with_capacity(post_ids.len());
        for row in rows {
            by_post.entry(row.post_id).or_default().push(row);
        }
        Ok(by_post)
    }
}
