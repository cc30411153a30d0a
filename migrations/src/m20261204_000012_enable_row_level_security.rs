//! Row-level security as a second wall between tenants, behind the API's own filters.

use sea_orm_migration::prelude::*;

/// The role the API's connections act as (`SET ROLE`): it sees and changes the rows of the
/// tenant named by the `herald.tenant` setting only. Not the tables' owner.
pub const API_ROLE: &str = "herald_api";
/// The role the publishing workers and the reconciler act as: they cross tenants, on the
/// tables they must, and own nothing.
pub const WORKER_ROLE: &str = "herald_worker";

/// The condition that puts a row with an `owner_id` column in the current tenant.
pub const OWNED_BY_TENANT: &str = "owner_id = current_setting('herald.tenant', true)";

/// The statements that open `table` to both roles under row-level security: the API's
/// role sees the rows `condition` puts in the current tenant, the workers' role all.
pub fn tenant_table_security(table: &str, condition: &str) -> String {
    format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {API_ROLE}, {WORKER_ROLE};
         ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
         CREATE POLICY tenant_rows ON {table} TO {API_ROLE}
           USING ({condition}) WITH CHECK ({condition});
         CREATE POLICY worker_rows ON {table} TO {WORKER_ROLE}
           USING (true) WITH CHECK (true);"
    )
}

/// The tenant tables and the condition that puts a row in the current tenant.
const POLICIES: &[(&str, &str)] = &[
    ("social_posts", OWNED_BY_TENANT),
    ("social_connections", OWNED_BY_TENANT),
    (
        "post_targets",
        "EXISTS (SELECT 1 FROM social_posts p WHERE p.id = post_targets.post_id
                   AND p.owner_id = current_setting('herald.tenant', true))",
    ),
    (
        "social_account_tokens",
        "EXISTS (SELECT 1 FROM social_connections c
                  WHERE c.id = social_account_tokens.connection_id
                    AND c.owner_id = current_setting('herald.tenant', true))",
    ),
    (
        "publish_attempts",
        "EXISTS (SELECT 1 FROM post_targets t JOIN social_posts p ON p.id = t.post_id
                  WHERE t.id = publish_attempts.target_id
                    AND p.owner_id = current_setting('herald.tenant', true))",
    ),
    (
        "post_metrics",
        "EXISTS (SELECT 1 FROM post_targets t JOIN social_posts p ON p.id = t.post_id
                  WHERE t.id = post_metrics.target_id
                    AND p.owner_id = current_setting('herald.tenant', true))",
    ),
];

/// Creates the API and worker roles (once per cluster; the migrating user needs
/// CREATEROLE, or an administrator creates them first — README says how), grants them the
/// tenant tables, makes the migrating user a member of both (so the server can
/// `SET ROLE`), and enables row-level security with one policy per role and table.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for role in [API_ROLE, WORKER_ROLE] {
            // Roles are cluster-wide: another database's migration may create the same
            // one at the same moment.
            db.execute_unprepared(&format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                     CREATE ROLE {role} NOLOGIN;
                   END IF;
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                 END $$;
                 DO $$ BEGIN
                   IF NOT pg_has_role(current_user, '{role}', 'MEMBER') THEN
                     EXECUTE format('GRANT {role} TO %I', current_user);
                   END IF;
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                 END $$;"
            ))
            .await?;
        }
        for (table, condition) in POLICIES {
            db.execute_unprepared(&tenant_table_security(table, condition))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (table, _) in POLICIES {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_rows ON {table};
                 DROP POLICY IF EXISTS worker_rows ON {table};
                 ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
                 REVOKE ALL ON {table} FROM {API_ROLE}, {WORKER_ROLE};"
            ))
            .await?;
        }
        // The roles stay: other databases of the cluster may use them.
        Ok(())
    }
}
