//! The node conformance tests in `server/tests/conformance/` (graphql-http's audits, the
//! graphql-ws client) against a real Herald. `scripts/test` installs their packages with
//! `npm ci` first.

use std::path::PathBuf;
use std::process::Stdio;

use crate::harness::TestApp;

/// Runs `node --test FILE` in the conformance package with the server's URL and a token;
/// returns its output after asserting it passed.
pub async fn run_node_test(app: &TestApp, file: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    assert!(
        dir.join("node_modules").is_dir(),
        "run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    let output = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(file)
        .current_dir(&dir)
        .env("HERALD_URL", app.http_url())
        .env("HERALD_TOKEN", app.token("conformance", None, &[]))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node runs (Node 20+ is required)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    assert!(
        output.status.success(),
        "node --test {file} failed:\n{text}"
    );
    text
}

#[tokio::test]
async fn graphql_http_audits_pass_without_warnings() {
    let app = TestApp::spawn().await;
    let output = run_node_test(&app, "http-audits.test.js").await;
    // The node test asserts 61 of 61 ok; make sure it ran rather than skipped.
    assert!(
        output.contains(r#"graphql-http audits: {"ok":61,"notice":0,"warn":0,"error":0}"#),
        "{output}"
    );
}

#[tokio::test]
async fn the_graphql_ws_client_receives_post_transitions_in_order() {
    let app = TestApp::spawn().await;
    run_node_test(&app, "graphql-ws-client.test.js").await;
}

#[tokio::test]
async fn introspection_equals_the_committed_schema() {
    let app = TestApp::spawn().await;
    run_node_test(&app, "schema-contract.test.js").await;
}

/// GraphiQL in headless Chromium, served from Herald's own assets (there is no CDN here,
/// and the page's Content Security Policy would refuse one): a query typed with a token
/// in the headers editor runs and its result shows in the result pane.
#[tokio::test]
async fn graphiql_runs_a_query_with_a_token_in_headless_chromium() {
    assert!(
        std::env::var_os("HERALD_CHROMIUM").is_some(),
        "HERALD_CHROMIUM is not set: run the tests with scripts/test"
    );
    let app = TestApp::spawn().await;
    run_node_test(&app, "graphiql.test.js").await;
}
