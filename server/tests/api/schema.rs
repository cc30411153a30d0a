//! The committed GraphQL contract: `schema.graphql` must equal the server's SDL.

#[test]
fn committed_schema_matches_the_code() {
    let committed = include_str!("../../../schema.graphql");
    let current = herald_server::graphql::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date: regenerate it with\n  \
         cargo run -p herald-server --bin herald -- print-schema > schema.graphql\n\
         and review the diff"
    );
}

/// Every migration's `down` undoes its `up`: roll all back, then forward again.
#[tokio::test]
async fn migrations_roll_back_and_forward() {
    use herald_migrations::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Statement};

    let app = crate::harness::TestApp::spawn().await;
    let tables = |db: sea_orm::DatabaseConnection| async move {
        db.query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name IN ('social_posts', 'post_targets', 'social_connections', \
             'social_account_tokens', 'publish_attempts', 'post_metrics')",
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get::<i32>("", "n")
        .expect("count")
    };
    assert_eq!(tables(app.db.clone()).await, 6);
    Migrator::down(&app.db, None).await.expect("down");
    assert_eq!(tables(app.db.clone()).await, 0);
    Migrator::up(&app.db, None).await.expect("up");
    assert_eq!(tables(app.db.clone()).await, 6);
}
