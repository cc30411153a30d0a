//! Hostile documents over HTTP: each is answered, and the server stays up for the next.

use serde_json::json;

use crate::harness::TestApp;

/// `{root}` and a chain of `length` fragments on `on`, each spreading the next, the last
/// selecting `field`.
fn chain(root: &str, on: &str, field: &str, length: usize) -> String {
    let mut text = format!("{root}\n");
    for n in 0..length {
        let next = if n + 1 < length {
            format!("...F{}", n + 1)
        } else {
            field.to_owned()
        };
        text.push_str(&format!("fragment F{n} on {on} {{ {next} }}\n"));
    }
    text
}

#[tokio::test]
async fn a_fragment_chain_as_long_as_the_body_cap_is_answered() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    // 25 000 fragments fill the 1 MiB body: the guard once followed them one stack frame
    // each and overflowed a worker's stack, aborting the server.
    for (root, on, field) in [
        ("{ ...F0 }", "Query", "__typename"),
        ("{ posts { edges { node { ...F0 } } } }", "Post", "id"),
    ] {
        let query = chain(root, on, field, 25_000);
        assert!(query.len() < 1 << 20, "{}", query.len());
        let body = app.gql(Some(&token), &query, json!({})).await;
        assert!(
            body.get("data").is_some() || body.get("errors").is_some(),
            "{body}"
        );
    }
    let body = app.ok(&token, "{ me { userId } }", json!({})).await;
    assert_eq!(body["me"]["userId"], "alice");
}
