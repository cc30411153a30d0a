//! Tenant isolation: another tenant's post is NOT_FOUND for every operation; teammates in
//! the same org share posts; only approvers approve.

use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error, days_from_now};

#[tokio::test]
async fn another_tenant_sees_nothing_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &["approver", "admin"]);
    let post = app
        .create_post(
            &alice,
            json!({"content": "mine", "platforms": ["x"], "approvalRequired": true}),
        )
        .await;
    let id = post["id"].as_str().expect("id");

    let read = app
        .ok(
            &bob,
            "query($id: ID!) { post(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(read["post"], Value::Null);
    let listed = app
        .ok(&bob, "query { posts { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(listed["posts"]["edges"], json!([]));

    let attempts = [
        (
            "mutation($id: ID!) { updatePost(id: $id, input: {content: \"hijack\"}) { id } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!) { deletePost(id: $id) }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }",
            json!({"id": id, "at": days_from_now(1)}),
        ),
        (
            "mutation($id: ID!) { unschedulePost(id: $id) { id } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!) { approvePost(id: $id) { id } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!) { rejectPost(id: $id, reason: \"no\") { id } }",
            json!({"id": id}),
        ),
    ];
    for (query, vars) in attempts {
        let body = app.gql(Some(&bob), query, vars).await;
        assert_error(&body, "NOT_FOUND", None);
        assert!(
            !body.to_string().contains("alice"),
            "no details leak: {body}"
        );
    }
    let archived = app
        .ok(
            &bob,
            "mutation($t: DateTime!) { archivePosts(olderThan: $t) }",
            json!({"t": days_from_now(1)}),
        )
        .await;
    assert_eq!(archived["archivePosts"], 0);

    let unchanged = app
        .ok(
            &alice,
            "query($id: ID!) { post(id: $id) { content version approvalStatus } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        unchanged["post"],
        json!({"content": "mine", "version": 1, "approvalStatus": "PENDING"})
    );
}

#[tokio::test]
async fn teammates_share_posts_and_only_approvers_approve() {
    let app = TestApp::spawn().await;
    let author = app.token("ann", Some("acme"), &[]);
    let teammate = app.token("tom", Some("acme"), &[]);
    let approver = app.token("ada", Some("acme"), &["approver"]);
    let post = app
        .create_post(
            &author,
            json!({"content": "team post", "platforms": ["linkedin"], "approvalRequired": true}),
        )
        .await;
    let id = post["id"].as_str().expect("id");
    assert_eq!(post["ownerId"], "org:acme");
    assert_eq!(post["createdBy"], "ann");

    let seen = app
        .ok(
            &teammate,
            "query($id: ID!) { post(id: $id) { content } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(seen["post"]["content"], "team post");
    let me = app
        .ok(
            &teammate,
            "query { me { userId tenantId roles } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["me"],
        json!({"userId": "tom", "tenantId": "org:acme", "roles": []})
    );

    let denied = app
        .gql(
            Some(&teammate),
            "mutation($id: ID!) { approvePost(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_error(&denied, "FORBIDDEN", None);
    let denied = app
        .gql(
            Some(&author),
            "mutation($id: ID!) { rejectPost(id: $id, reason: \"x\") { id } }",
            json!({"id": id}),
        )
        .await;
    assert_error(&denied, "FORBIDDEN", None);

    let approved = app
        .ok(
            &approver,
            "mutation($id: ID!) { approvePost(id: $id) { approvalStatus version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        approved["approvePost"],
        json!({"approvalStatus": "APPROVED", "version": 2})
    );
}

/// Every column of a post's row and its targets' rows, to show nothing changed.
async fn rows_of(app: &TestApp, id: &str) -> Value {
    use sea_orm::{ConnectionTrait, Statement};
    app.db
        .query_one(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT json_build_object(
                'post', (SELECT row_to_json(p) FROM social_posts p WHERE p.id = $1::uuid),
                'targets', (SELECT json_agg(t ORDER BY t.platform) FROM post_targets t
                             WHERE t.post_id = $1::uuid),
                'attempts', (SELECT count(*) FROM publish_attempts a JOIN post_targets t
                              ON t.id = a.target_id WHERE t.post_id = $1::uuid),
                'metrics', (SELECT count(*) FROM post_metrics m JOIN post_targets t
                             ON t.id = m.target_id WHERE t.post_id = $1::uuid)) AS j",
            [id.into()],
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get("", "j")
        .expect("json")
}

/// The queue and publishing operations (`retryPost`, `markPublished`, `refreshPostMetrics`,
/// `postQueueStatus`) on another tenant's post answer NOT_FOUND, with no data and nothing
/// about the post, and change nothing; its owner gets answers from the same calls.
#[tokio::test]
async fn another_tenant_cannot_retry_mark_refresh_or_inspect_a_post() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &["approver", "admin"]);
    let carol = app.token("carol", Some("acme"), &["admin"]);
    let post = app
        .create_post(
            &alice,
            json!({"content": "secret plans", "platforms": ["x", "mastodon"]}),
        )
        .await;
    let id = post["id"].as_str().expect("id").to_owned();
    let target = |platform: &str| {
        post["targets"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["platform"] == platform))
            .and_then(|t| t["id"].as_str())
            .expect("target")
            .to_owned()
    };
    let (x, mastodon) = (target("x"), target("mastodon"));
    // One target failed, the other needs review: both retryable and markable by alice.
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared(&format!(
            "UPDATE post_targets SET status = 'failed', attempts = 3,
                    last_error = 'secret failure detail' WHERE id = '{x}';
             UPDATE post_targets SET status = 'needs_review', attempts = 1,
                    last_error = 'secret review detail' WHERE id = '{mastodon}';
             UPDATE social_posts SET status = 'failed' WHERE id = '{id}'"
        ))
        .await
        .expect("seed statuses");
    let before = rows_of(&app, &id).await;

    let attempts = [
        (
            "mutation($id: ID!) { retryPost(id: $id) { id content status } }",
            json!({"id": id}),
        ),
        (
            "mutation($t: ID!) { markPublished(targetId: $t, url: \"https://evil.example/1\") { id content } }",
            json!({"t": mastodon}),
        ),
        (
            "mutation($t: ID!) { markPublished(targetId: $t, url: \"https://evil.example/2\") { id content } }",
            json!({"t": x}),
        ),
        (
            "mutation($id: ID!) { refreshPostMetrics(postId: $id) { target { id platform } error } }",
            json!({"id": id}),
        ),
        (
            "query($id: ID!) { postQueueStatus(postId: $id) { targetId platform status } }",
            json!({"id": id}),
        ),
    ];
    for token in [&bob, &carol] {
        for (query, variables) in &attempts {
            let body = app.gql(Some(token), query, variables.clone()).await;
            assert_error(&body, "NOT_FOUND", None);
            assert!(
                body.get("data").is_none_or(Value::is_null),
                "no data: {body}"
            );
            let text = body.to_string();
            for secret in ["alice", "secret"] {
                assert!(!text.contains(secret), "{secret} leaked: {body}");
            }
        }
    }
    assert_eq!(rows_of(&app, &id).await, before, "nothing changed");

    // The owner gets answers from the same operations.
    let status = app.ok(&alice, attempts[4].0, attempts[4].1.clone()).await;
    assert_eq!(
        status["postQueueStatus"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
    let marked = app
        .ok(
            &alice,
            "mutation($t: ID!) { markPublished(targetId: $t, url: \"https://m.example/1\") { targets { status } } }",
            json!({"t": mastodon}),
        )
        .await;
    let mut statuses: Vec<&str> = marked["markPublished"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["status"].as_str())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["FAILED", "PUBLISHED"], "{marked}");
    assert_ne!(rows_of(&app, &id).await, before);
}

#[tokio::test]
async fn a_user_named_like_an_org_shares_nothing_with_it() {
    let app = TestApp::spawn().await;
    // `sub: "acme"` without `org` is the user acme, not the organisation acme.
    let user = app.token("acme", None, &["admin", "approver"]);
    let member = app.token("ann", Some("acme"), &[]);
    let theirs = app
        .create_post(&member, json!({"content": "the org's", "platforms": ["x"]}))
        .await;
    assert_eq!(theirs["ownerId"], "org:acme");
    let mine = app
        .create_post(&user, json!({"content": "the user's", "platforms": ["x"]}))
        .await;
    assert_eq!(mine["ownerId"], "user:acme");
    for (token, only) in [(&user, "the user's"), (&member, "the org's")] {
        let listed = app
            .ok(token, "{ posts { edges { node { content } } } }", json!({}))
            .await;
        assert_eq!(
            listed["posts"]["edges"],
            json!([{"node": {"content": only}}]),
            "{listed}"
        );
    }
    let read = app
        .ok(
            &user,
            "query($id: ID!) { post(id: $id) { id } }",
            json!({"id": theirs["id"]}),
        )
        .await;
    assert_eq!(read["post"], Value::Null);
}

#[tokio::test]
async fn the_migration_namespaces_existing_tenants_by_kind() {
    use herald_migrations::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;

    let app = TestApp::spawn().await;
    // Back to the schema before tenant ids had kinds, with data written then: every
    // migration from the namespacing one on is rolled back.
    let since_namespacing = Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name() == "m20261204_000010_namespace_tenant_ids")
        .expect("the namespacing migration")
        + 1;
    Migrator::down(&app.db, Some(since_namespacing as u32))
        .await
        .expect("down");
    app.db
        .execute_unprepared(
            "INSERT INTO social_posts (id, content, platforms, status, media_urls,
               approval_required, approval_status, owner_id, created_by, created_at,
               updated_at, version, timezone)
             VALUES (gen_random_uuid(), 'solo', '[\"x\"]', 'draft', '[]', false,
                     'not_required', 'alice', 'alice', now(), now(), 1, 'UTC'),
                    (gen_random_uuid(), 'team', '[\"x\"]', 'draft', '[]', false,
                     'not_required', 'acme', 'ann', now(), now(), 1, 'UTC'),
                    (gen_random_uuid(), 'team too', '[\"x\"]', 'draft', '[]', false,
                     'not_required', 'acme', 'acme', now(), now(), 1, 'UTC');
             INSERT INTO social_connections (id, owner_id, platform, external_account_id,
               display_name, status, created_at, updated_at)
             VALUES (gen_random_uuid(), 'acme', 'x', 'a1', 'Acme', 'active', now(), now()),
                    (gen_random_uuid(), 'acme', 'x', 'a2', 'Acme 2', 'active',
                     now(), now() + interval '1 minute'),
                    (gen_random_uuid(), 'ann', 'x', 'a3', 'Ann', 'active', now(), now()),
                    (gen_random_uuid(), 'initech', 'x', 'a4', 'Initech', 'active', now(), now());",
        )
        .await
        .expect("legacy rows");
    Migrator::up(&app.db, None).await.expect("up");

    let rows = app
        .db
        .query_all(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT content AS name, owner_id, NULL::boolean AS is_default FROM social_posts
             UNION ALL
             SELECT external_account_id, owner_id, is_default FROM social_connections
             ORDER BY 1",
        ))
        .await
        .expect("rows");
    let seen: Vec<(String, String, Option<bool>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "name").expect("name"),
                r.try_get("", "owner_id").expect("owner"),
                r.try_get("", "is_default").expect("default"),
            )
        })
        .collect();
    let expected = [
        ("a1", "org:acme", Some(false)),
        // The most recently updated active account was the one publishing: the default.
        ("a2", "org:acme", Some(true)),
        // No posts of its own, but ann created posts: a user.
        ("a3", "user:ann", Some(true)),
        ("a4", "org:initech", Some(true)),
        ("solo", "user:alice", None),
        ("team", "org:acme", None),
        ("team too", "org:acme", None),
    ];
    assert_eq!(
        seen,
        expected
            .iter()
            .map(|(n, o, d)| (n.to_string(), o.to_string(), *d))
            .collect::<Vec<_>>()
    );
    // And the user alice still sees her post.
    let alice = app.token("alice", None, &[]);
    let listed = app
        .ok(
            &alice,
            "{ posts { edges { node { content } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["posts"]["edges"],
        json!([{"node": {"content": "solo"}}])
    );
}

/// `count(*)` of `sql` through `db`.
async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    db.query_one(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .expect("count")
    .expect("row")
    .try_get_by_index(0)
    .expect("count value")
}

#[tokio::test]
async fn row_level_security_shows_an_unscoped_query_nothing() {
    use herald_server::db::tenant;
    use sea_orm::ConnectionTrait;

    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &[]);
    app.create_post(&alice, json!({"content": "alice's", "platforms": ["x"]}))
        .await;
    app.create_post(&bob, json!({"content": "bob's", "platforms": ["x"]}))
        .await;
    let api = &app.services.db;
    let everything = "SELECT count(*) FROM social_posts";

    // A query that forgot its tenant, through the API's own pool: no tenant's rows.
    assert_eq!(count(&app.db, everything).await, 2, "the owner sees both");
    assert_eq!(count(api, everything).await, 0);
    assert_eq!(count(api, "SELECT count(*) FROM post_targets").await, 0);
    // In a tenant's scope, the same unfiltered query sees that tenant's rows only.
    assert_eq!(tenant::scope("user:alice", count(api, everything)).await, 1);
    assert_eq!(
        tenant::scope(
            "user:alice",
            count(api, "SELECT count(*) FROM post_targets")
        )
        .await,
        1
    );
    // An unfiltered write reaches the tenant's rows only, and a row for another tenant
    // cannot be written at all.
    let touched = tenant::scope(
        "user:alice",
        api.execute_unprepared("UPDATE social_posts SET notes = 'touched'"),
    )
    .await
    .expect("update");
    assert_eq!(touched.rows_affected(), 1);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) FROM social_posts WHERE notes = 'touched'"
        )
        .await,
        1
    );
    let forged = tenant::scope(
        "user:alice",
        api.execute_unprepared("UPDATE social_posts SET owner_id = 'user:bob'"),
    )
    .await;
    assert!(forged.is_err(), "a row moved to another tenant: {forged:?}");
    // The workers' pool crosses tenants, as publishing must.
    assert_eq!(count(&app.services.worker_db, everything).await, 2);
}
