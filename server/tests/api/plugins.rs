//! Publisher plugins seen from the API (`platforms`, `validatePost`) and from the command
//! line (`herald plugin check|run`), with the real plugins built by `scripts/test`.

use std::path::PathBuf;
use std::process::Command;

use axum::Router;
use axum::routing::post;
use herald_plugin_host::{HostConfig, PluginHost};
use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error};

fn built_plugins() -> PathBuf {
    std::env::var_os("HERALD_TEST_PLUGIN_DIR")
        .map(PathBuf::from)
        .expect("HERALD_TEST_PLUGIN_DIR is not set: run the tests with scripts/test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_and_validate_post_use_the_loaded_plugins() {
    let host = PluginHost::load(HostConfig::new(built_plugins()))
        .await
        .expect("load plugins");
    let app = TestApp::spawn_with_plugins(host).await;
    let token = app.token("alice", None, &[]);

    let data = app
        .ok(
            &token,
            "{ platforms { id displayName witVersion idempotentPublish limits { maxTextLength textCounting maxMedia media { mimeType maxBytes } } } }",
            json!({}),
        )
        .await;
    let example = data["platforms"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "example"))
        .cloned();
    assert_eq!(
        example,
        Some(json!({
            "id": "example", "displayName": "Example", "witVersion": "0.1.0", "idempotentPublish": true,
            "limits": { "maxTextLength": 500, "textCounting": "GRAPHEMES", "maxMedia": 4, "media": [
                { "mimeType": "image/png", "maxBytes": 5000000 },
                { "mimeType": "image/jpeg", "maxBytes": 5000000 }
            ] }
        }))
    );

    let query = "query($input: ValidatePostInput!) { validatePost(input: $input) { platform valid violations { field code } } }";
    let data = app
        .ok(
            &token,
            query,
            json!({ "input": { "content": "x".repeat(501), "platforms": ["example", "v2"] } }),
        )
        .await;
    assert_eq!(
        data["validatePost"],
        json!([
            { "platform": "example", "valid": false, "violations": [{ "field": "text", "code": "too_long" }] },
            { "platform": "v2", "valid": true, "violations": [] }
        ])
    );
    let body = app
        .gql(
            Some(&token),
            query,
            json!({ "input": { "content": "hi", "platforms": ["myspace"] } }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", Some("platforms"));
    let body = app.gql(None, "{ platforms { id } }", json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", None);
}

fn herald(args: &[&str]) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("HERALD_PLUGIN_DIR")
        .output()
        .expect("run herald");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(
        |_| json!({ "stdout": stdout, "stderr": String::from_utf8_lossy(&output.stderr) }),
    );
    (output.status.success(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_and_run_work_without_a_server() {
    let plugins = built_plugins();
    let example = plugins.join("example.wasm");
    let example = example.to_str().expect("UTF-8 path");

    let (ok, report) = herald(&["plugin", "check", example]);
    assert!(ok, "{report}");
    assert_eq!(report["plugin"]["platform"], "example");
    assert_eq!(report["allowed_hosts"], json!(["api.example.com:443"]));

    let app = Router::new().route(
        "/v1/posts",
        post(|| async { axum::Json(json!({ "id": "9", "url": "https://example.social/p/9" })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });

    let dir = std::env::temp_dir().join(format!("herald-plugin-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let post = dir.join("post.json");
    std::fs::write(&post, r#"{"text": "hello"}"#).expect("post");
    let long = dir.join("long.json");
    std::fs::write(&long, json!({ "text": "x".repeat(501) }).to_string()).expect("post");
    let creds = dir.join("creds.json");
    std::fs::write(&creds, r#"{"access_token": "t0k3n-abc"}"#).expect("creds");
    let route = format!("api.example.com=http://{address}");
    let run = |post: &PathBuf| {
        herald(&[
            "plugin",
            "run",
            example,
            "--post",
            post.to_str().expect("UTF-8"),
            "--credentials",
            creds.to_str().expect("UTF-8"),
            "--plugin-host-overrides",
            &route,
        ])
    };

    let (ok, report) = run(&post);
    assert!(ok, "{report}");
    assert_eq!(
        report["receipt"],
        json!({ "platform_post_id": "9", "url": "https://example.social/p/9" })
    );
    let (ok, report) = run(&long);
    assert!(!ok);
    assert_eq!(report["violations"][0]["code"], "too_long", "{report}");
}
