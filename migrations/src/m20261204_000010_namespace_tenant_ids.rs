//! Tenant ids namespaced by kind: `org:<org>` for organisations, `user:<sub>` for users
//! acting alone, so a user named like an organisation never shares its data.

use sea_orm_migration::prelude::*;

/// Prefixes every stored `owner_id`. Existing ids carry no kind, so it is inferred per
/// owner: an owner whose posts were all created by a user of the same name, or (with no
/// posts) whose name is a user that created posts, was a single-user tenant (`user:`);
/// every other owner an organisation (`org:`). README's upgrade note says how to correct
/// an owner inferred wrongly.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Connections first: their kind is read from the posts before those change.
        db.execute_unprepared(
            "UPDATE social_connections c
                SET owner_id = (
                  SELECT CASE
                           WHEN count(p.id) > 0 AND bool_and(p.created_by = p.owner_id) THEN 'user:'
                           WHEN count(p.id) > 0 THEN 'org:'
                           WHEN EXISTS (SELECT 1 FROM social_posts q
                                         WHERE q.created_by = c.owner_id) THEN 'user:'
                           ELSE 'org:'
                         END
                    FROM social_posts p WHERE p.owner_id = c.owner_id) || c.owner_id",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE social_posts p
                SET owner_id = k.prefix || p.owner_id
               FROM (SELECT owner_id,
                            CASE WHEN bool_and(created_by = owner_id) THEN 'user:'
                                 ELSE 'org:' END AS prefix
                       FROM social_posts GROUP BY owner_id) k
              WHERE k.owner_id = p.owner_id",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in ["social_posts", "social_connections"] {
            db.execute_unprepared(&format!(
                "UPDATE {table} SET owner_id = regexp_replace(owner_id, '^(user|org):', '')"
            ))
            .await?;
        }
        Ok(())
    }
}
