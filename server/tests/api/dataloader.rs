//! Reading pages of posts: the targets of a page and their metrics cost the same SQL
//! statements whatever the page size, and pages decode their rows as sea-orm does.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn targets_and_their_metrics_cost_the_same_statements_for_5_and_50_posts() {
    use sea_orm::ConnectionTrait;

    // The stock executor's batching (compiled reads answer the second run in one statement).
    let app = TestApp::spawn_with_stock_reads().await;
    let token = app.token("alice", None, &[]);
    for n in 0..50 {
        app.create_post(
            &token,
            json!({"content": format!("post {n}"), "platforms": ["x", "bluesky"]}),
        )
        .await;
    }
    // Two snapshots of the newest post's x target: the later one is the latest.
    app.db
        .execute_unprepared(
            "INSERT INTO post_metrics (id, target_id, fetched_at, likes)
             SELECT gen_random_uuid(), t.id, now() - s.age * interval '1 hour', s.likes
             FROM post_targets t JOIN social_posts p ON p.id = t.post_id
             CROSS JOIN (VALUES (2, 1), (1, 5)) AS s(age, likes)
             WHERE p.content = 'post 49' AND t.platform = 'x'",
        )
        .await
        .expect("metrics");
    let mut counts = Vec::new();
    for first in [5, 50] {
        let before = app.statements();
        let data = app
            .ok(
                &token,
                "query($first: Int) { posts(first: $first) { edges { node { content
                   targets { platform metrics { likes } } } } } }",
                json!({"first": first}),
            )
            .await;
        let edges = data["posts"]["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), first);
        assert!(
            edges.iter().all(|e| e["node"]["targets"]
                .as_array()
                .is_some_and(|t| t.len() == 2)),
            "{data}"
        );
        let newest = &edges[0]["node"];
        assert_eq!(newest["content"], "post 49");
        let likes: Vec<_> = newest["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .map(|t| (t["platform"].clone(), t["metrics"]["likes"].clone()))
            .collect();
        assert!(likes.contains(&(json!("x"), json!(5))), "{likes:?}");
        assert!(
            likes.contains(&(json!("bluesky"), json!(null))),
            "{likes:?}"
        );
        counts.push(app.statements() - before);
    }
    assert_eq!(
        counts[0], counts[1],
        "statements for 5 and 50 posts: {counts:?}"
    );
    // The page, its targets, and one batch of metrics.
    assert_eq!(counts[0], 3, "statements per page: {counts:?}");
}

/// Pages are decoded straight from the Postgres rows (`db::rows`); every column, set or
/// NULL, reads back as sea-orm's own decoding reads it.
#[tokio::test]
async fn pages_decode_every_column_as_sea_orm_does() {
    use herald_server::db::entities::{metric, post, target};
    use sea_orm::ConnectionTrait;

    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    app.create_post(&token, json!({"content": "bare draft", "platforms": ["x"]}))
        .await;
    app.create_post(
        &token,
        json!({
            "content": "everything set",
            "targets": [{"platform": "x", "options": [{"key": "reply_to", "value": "1"}]},
                        {"platform": "bluesky"}],
            "media": [{"url": "https://example.com/a.png", "altText": "a cat", "mimeType": "image/png"}],
            "campaign": "launch",
            "notes": "internal",
            "scheduledAt": "2031-05-01T10:00:00Z",
            "timeZone": "Europe/Paris"
        }),
    )
    .await;
    app.db
        .execute_unprepared(
            "UPDATE social_posts SET posted_at = now(), rejection_reason = 'r', failure_reason = 'f',
               archived_at = now() WHERE content = 'everything set';
             UPDATE post_targets SET platform_post_id = 'p1', platform_url = 'https://x/p1',
               last_error = 'e', last_response_code = 429, published_at = now(),
               attempt_id = gen_random_uuid(), next_attempt_at = now()
             WHERE platform = 'bluesky'",
        )
        .await
        .expect("update");

    let decoded = decoded_as_sea_orm_does(&app, post::Entity, post::Column::Id).await;
    assert_eq!(decoded.len(), 2);
    assert!(
        decoded
            .iter()
            .any(|p| p.archived_at.is_some() && p.campaign.is_some())
    );
    assert!(
        decoded
            .iter()
            .any(|p| p.archived_at.is_none() && p.scheduled_at.is_none())
    );

    let decoded = decoded_as_sea_orm_does(&app, target::Entity, target::Column::Id).await;
    assert_eq!(decoded.len(), 3);
    assert!(decoded.iter().any(|t| t.last_response_code == Some(429)));
    assert!(decoded.iter().any(|t| t.last_response_code.is_none()));

    app.db
        .execute_unprepared(
            r#"INSERT INTO post_metrics (id, target_id, fetched_at, likes, shares, comments,
                 impressions, raw)
               SELECT gen_random_uuid(), id, now(), 1, 2, 3, 4, '{"favourites": 1}'
               FROM post_targets WHERE platform = 'bluesky';
               INSERT INTO post_metrics (id, target_id, fetched_at)
               SELECT gen_random_uuid(), id, now() FROM post_targets WHERE platform = 'x'"#,
        )
        .await
        .expect("metrics");
    let decoded = decoded_as_sea_orm_does(&app, metric::Entity, metric::Column::Id).await;
    assert_eq!(decoded.len(), 3);
    assert!(
        decoded
            .iter()
            .any(|m| m.raw.is_some() && m.impressions == Some(4))
    );
    assert!(decoded.iter().any(|m| m.raw.is_none() && m.likes.is_none()));
}

/// Every row of `entity`, in `order`, decoded by [`herald_server::db::rows`]; asserts that
/// sea-orm's own decoding gives the same models.
async fn decoded_as_sea_orm_does<E>(app: &TestApp, entity: E, order: E::Column) -> Vec<E::Model>
where
    E: sea_orm::EntityTrait,
    E::Model: herald_server::db::rows::FromPgRow + PartialEq + std::fmt::Debug,
{
    use sea_orm::{ConnectionTrait, QueryOrder, QueryTrait};

    let query = E::find().order_by_asc(order);
    let by_sea_orm = query.clone().all(&app.db).await.expect("sea-orm rows");
    let statement = query.build(app.db.get_database_backend());
    let decoded: Vec<E::Model> = herald_server::db::rows::fetch_all(&app.db, statement)
        .await
        .expect("decoded rows");
    assert_eq!(decoded, by_sea_orm, "{entity:?}");
    decoded
}
