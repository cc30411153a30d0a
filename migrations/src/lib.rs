//! Herald's database schema as sea-orm migrations.
//!
//! One change per file, named `m<date>_<n>_<verb_noun>.rs`, each with `up` and `down`.
//! Column types are the portable ones sea-orm maps on every backend it supports
//! (JSON for arrays, text for enums), so the embedded SQLite mode can reuse them.

pub use sea_orm_migration::prelude::*;

pub use m20261204_000012_enable_row_level_security::{API_ROLE, WORKER_ROLE};

mod m20261128_000001_create_social_posts;
mod m20261128_000002_create_social_connections;
mod m20261128_000003_create_post_targets;
mod m20261128_000004_create_social_account_tokens;
mod m20261128_000005_create_publish_attempts;
mod m20261128_000006_create_post_metrics;
mod m20261128_000007_add_target_queue_columns;
mod m20261128_000008_drop_target_platform_status_index;
mod m20261129_000009_add_media_details_and_target_options;
mod m20261204_000010_namespace_tenant_ids;
mod m20261204_000011_add_default_connection;
mod m20261204_000012_enable_row_level_security;
mod m20261205_000013_create_oauth_states;
mod m20261205_000014_add_connection_expiry;
mod m20261205_000015_add_connection_reconnect_by;
mod m20261205_000016_add_oauth_state_extra;
mod m20261205_000017_grant_migration_table_read;
mod m20261205_000018_create_media;
mod m20261205_000020_create_posting_schedules;
mod m20261205_000021_create_publish_checkpoints;

/// The ordered list of Herald's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_social_posts::Migration),
            Box::new(m20261128_000002_create_social_connections::Migration),
            Box::new(m20261128_000003_create_post_targets::Migration),
            Box::new(m20261128_000004_create_social_account_tokens::Migration),
            Box::new(m20261128_000005_create_publish_attempts::Migration),
            Box::new(m20261128_000006_create_post_metrics::Migration),
            Box::new(m20261128_000007_add_target_queue_columns::Migration),
            Box::new(m20261128_000008_drop_target_platform_status_index::Migration),
            Box::new(m20261129_000009_add_media_details_and_target_options::Migration),
            Box::new(m20261204_000010_namespace_tenant_ids::Migration),
            Box::new(m20261204_000011_add_default_connection::Migration),
            Box::new(m20261204_000012_enable_row_level_security::Migration),
            Box::new(m20261205_000013_create_oauth_states::Migration),
            Box::new(m20261205_000014_add_connection_expiry::Migration),
            Box::new(m20261205_000015_add_connection_reconnect_by::Migration),
            Box::new(m20261205_000016_add_oauth_state_extra::Migration),
            Box::new(m20261205_000017_grant_migration_table_read::Migration),
            Box::new(m20261205_000018_create_media::Migration),
            Box::new(m20261205_000020_create_posting_schedules::Migration),
            Box::new(m20261205_000021_create_publish_checkpoints::Migration),
        ]
    }
}
