//! The targets of a page of posts are loaded in one batch: the number of SQL statements
//! of `posts { edges { node { targets } } }` does not grow with the page size.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn targets_of_a_page_cost_the_same_statements_for_5_and_50_posts() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    for n in 0..50 {
        app.create_post(
            &token,
            json!({"content": format!("post {n}"), "platforms": ["x", "bluesky"]}),
        )
        .await;
    }
    let mut counts = Vec::new();
    for first in [5, 50] {
        let before = app.statements();
        let data = app
            .ok(
                &token,
                "query($first: Int) { posts(first: $first) { edges { node { targets { platform } } } } }",
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
        counts.push(app.statements() - before);
    }
    assert_eq!(
        counts[0], counts[1],
        "statements for 5 and 50 posts: {counts:?}"
    );
    // The page itself and one batch of targets.
    assert!(
        (2..=3).contains(&counts[0]),
        "statements per page: {}",
        counts[0]
    );
}
