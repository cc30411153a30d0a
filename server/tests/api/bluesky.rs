//! The Bluesky plugin end to end against a real PDS (`@atproto/pds` with an in-memory PLC
//! directory, started by `scripts/test` at `HERALD_TEST_PDS_URL`): GraphQL connectAccount
//! and createPost → queue → plugin → PDS, and the records read back from the PDS with
//! com.atproto.repo.getRecord. The plugin addresses the account's PDS as
//! `https://pds.test`; the host routes that to a small proxy in front of the real PDS, which
//! forwards everything and, when a test asks, answers the first createRecord with the PDS's
//! rate-limit answer or forwards it and then drops the connection without answering.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::{IncomingStream, Listener};
use base64::Engine;
use herald_plugin_host::PluginHost;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{
    self, TestApp, app_publishing, assert_asks_to_reconnect, assert_error, assert_retried_after,
    in_ms, plugin_host, watch_retry,
};

/// The PDS as the plugin knows it (routed to the proxy by the host).
const SERVICE: &str = "https://pds.test";
/// A 1×1 PNG.
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"bluesky\", credentials: $c) { id platform externalAccountId displayName status } }";

fn pds_url() -> String {
    std::env::var("HERALD_TEST_PDS_URL")
        .expect("HERALD_TEST_PDS_URL is not set: run the tests with scripts/test")
}

fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(PNG_B64)
        .expect("PNG")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// An account on the real PDS, with an app password for Herald.
struct Account {
    handle: String,
    did: String,
    access_jwt: String,
    app_password: String,
}

/// Talks to the real PDS directly (not through the proxy), as a test's own client.
#[derive(Clone)]
struct Pds {
    url: String,
    client: reqwest::Client,
}

impl Pds {
    fn new() -> Self {
        Self {
            url: pds_url(),
            client: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}/xrpc/{method}", self.url))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("PDS answers");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON")
        };
        (StatusCode::from_u16(status.as_u16()).expect("status"), body)
    }

    async fn query(&self, method: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}/xrpc/{method}", self.url))
            .query(params)
            .send()
            .await
            .expect("PDS answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        (status, response.json().await.expect("JSON"))
    }

    /// A new account with a unique `.test` handle and an app password named `herald`.
    async fn account(&self) -> Account {
        let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let handle = format!("{name}.test");
        let (status, created) = self
            .call(
                "com.atproto.server.createAccount",
                None,
                json!({"handle": handle, "email": format!("{name}@mail.test"), "password": format!("pw-{name}")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let access_jwt = created["accessJwt"].as_str().expect("accessJwt").to_owned();
        let (status, app) = self
            .call(
                "com.atproto.server.createAppPassword",
                Some(&access_jwt),
                json!({"name": "herald"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{app}");
        Account {
            handle,
            did: created["did"].as_str().expect("did").to_owned(),
            access_jwt,
            app_password: app["password"].as_str().expect("password").to_owned(),
        }
    }

    async fn post_record(&self, did: &str, rkey: &str) -> Value {
        let (status, record) = self
            .query(
                "com.atproto.repo.getRecord",
                &[
                    ("repo", did),
                    ("collection", "app.bsky.feed.post"),
                    ("rkey", rkey),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{record}");
        record
    }

    async fn posts(&self, did: &str) -> Vec<Value> {
        let (status, listed) = self
            .query(
                "com.atproto.repo.listRecords",
                &[("repo", did), ("collection", "app.bsky.feed.post")],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        listed["records"].as_array().expect("records").clone()
    }
}

/// What the proxy does with the first createRecord.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FirstCreate {
    Forward,
    /// Answer with the PDS's 429 (`RateLimitExceeded`) and a reset two seconds ahead.
    RateLimit,
    /// Forward it, then drop the connection without answering.
    LoseAnswer,
}

#[derive(Default)]
struct ProxyLog {
    /// Paths of every call, in order.
    calls: Vec<String>,
    /// Arrival times (Unix seconds) of createRecord calls.
    creates: Vec<f64>,
    /// The `ratelimit-reset` the proxy stated (Unix seconds).
    reset: Option<u64>,
    /// Connections whose answer is to be lost.
    killed: HashSet<SocketAddr>,
}

#[derive(Clone)]
struct Proxy {
    pds: String,
    client: reqwest::Client,
    first: FirstCreate,
    log: Arc<Mutex<ProxyLog>>,
}

/// The peer of a proxied connection, for handlers to name the connection to drop.
#[derive(Clone, Copy)]
struct Peer(SocketAddr);

/// A TCP listener whose connections can be cut from a handler: once a connection's peer is
/// in `killed`, writing its answer fails, so the client gets no response.
struct CuttableListener {
    inner: TcpListener,
    log: Arc<Mutex<ProxyLog>>,
}

struct CuttableStream {
    inner: TcpStream,
    peer: SocketAddr,
    log: Arc<Mutex<ProxyLog>>,
}

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((inner, peer)) = self.inner.accept().await {
                let log = self.log.clone();
                return (CuttableStream { inner, peer, log }, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, CuttableListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.log.lock().expect("lock").killed.contains(&self.peer) {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn forward(
    proxy: &Proxy,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method");
    let mut request = proxy
        .client
        .request(method, format!("{}{path}", proxy.pds))
        .body(body.to_vec());
    for (name, value) in headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = request.send().await.expect("PDS answers the proxy");
    let status = StatusCode::from_u16(answer.status().as_u16()).expect("status");
    let mut out = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding" | "keep-alive"
        ) {
            out.insert(
                header::HeaderName::from_bytes(name.as_str().as_bytes()).expect("name"),
                header::HeaderValue::from_bytes(value.as_bytes()).expect("value"),
            );
        }
    }
    let body = answer.bytes().await.expect("PDS body");
    (status, out, body).into_response()
}

async fn proxied(
    State(proxy): State<Proxy>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    proxy
        .log
        .lock()
        .expect("lock")
        .calls
        .push(uri.path().to_owned());
    if uri.path() != "/xrpc/com.atproto.repo.createRecord" {
        return forward(&proxy, method, &uri, &headers, body).await;
    }
    let first = {
        let mut log = proxy.log.lock().expect("lock");
        log.creates.push(unix_now());
        log.creates.len() == 1
    };
    match (first, proxy.first) {
        (true, FirstCreate::RateLimit) => {
            let reset = unix_now().ceil() as u64 + 2;
            proxy.log.lock().expect("lock").reset = Some(reset);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("ratelimit-limit", "5000".to_owned()),
                    ("ratelimit-remaining", "0".to_owned()),
                    ("ratelimit-reset", reset.to_string()),
                    ("ratelimit-policy", "5000;w=3600".to_owned()),
                ],
                axum::Json(json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})),
            )
                .into_response()
        }
        (true, FirstCreate::LoseAnswer) => {
            let answer = forward(&proxy, method, &uri, &headers, body).await;
            assert_eq!(answer.status(), StatusCode::OK, "the PDS took the post");
            proxy.log.lock().expect("lock").killed.insert(peer);
            answer
        }
        _ => forward(&proxy, method, &uri, &headers, body).await,
    }
}

async fn media() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/png")], png())
}

struct Setup {
    app: TestApp,
    token: String,
    pds: Pds,
    log: Arc<Mutex<ProxyLog>>,
    host: PluginHost,
}

async fn setup(first: FirstCreate) -> Setup {
    let log: Arc<Mutex<ProxyLog>> = Arc::default();
    let proxy = Proxy {
        pds: pds_url(),
        client: reqwest::Client::new(),
        first,
        log: log.clone(),
    };
    let listener = CuttableListener {
        inner: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        log: log.clone(),
    };
    let proxy_addr = listener.local_addr().expect("addr");
    let router = axum::Router::new()
        .route("/media/cat.png", get(media))
        .fallback(proxied)
        .with_state(proxy);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<Peer>(),
        )
        .await
        .expect("serve")
    });

    let proxied = format!("http://{proxy_addr}");
    let host = plugin_host(&[
        ("pds.test", proxied.clone()),
        ("media.herald.test", proxied),
    ])
    .await;
    let app = app_publishing("bluesky", host.clone()).await;
    let token = app.token("alice", None, &["admin"]);
    Setup {
        app,
        token,
        pds: Pds::new(),
        log,
        host,
    }
}

/// Connects `account` the way a user would: its handle and app password, and its PDS.
async fn connect(app: &TestApp, token: &str, account: &Account) -> Value {
    app.ok(
        token,
        CONNECT,
        json!({"c": {
            "accessToken": account.app_password,
            "extra": [
                {"key": "identifier", "value": account.handle},
                {"key": "service", "value": SERVICE},
            ],
        }}),
    )
    .await["connectAccount"]
        .clone()
}

/// Publishes `input` and waits until it is published or failed.
async fn publish(app: &TestApp, token: &str, input: Value) -> Value {
    harness::publish(app, token, input, |p| {
        p["status"] == "PUBLISHED" || p["status"] == "FAILED"
    })
    .await
}

/// The record key at the end of a published target's bsky.app URL, after checking the URL.
fn rkey_of(post: &Value, account: &Account) -> String {
    assert_eq!(post["status"], "PUBLISHED", "{post}");
    let url = post["targets"][0]["platformUrl"].as_str().expect("url");
    let prefix = format!("https://bsky.app/profile/{}/post/", account.handle);
    let rkey = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    assert_eq!(rkey.len(), 13, "{url}");
    rkey.to_owned()
}

fn byte_range(text: &str, part: &str) -> Value {
    let start = text.find(part).expect("part of the text");
    json!({"byteStart": start, "byteEnd": start + part.len()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_post_is_stored_with_langs_and_link_mention_and_tag_facets_at_utf8_byte_offsets() {
    let Setup {
        app, token, pds, ..
    } = setup(FirstCreate::Forward).await;
    let alice = pds.account().await;
    let bob = pds.account().await;
    let connected = connect(&app, &token, &alice).await;
    assert_eq!(connected["externalAccountId"], alice.did.as_str());
    assert_eq!(connected["displayName"], alice.handle.as_str());
    assert_eq!(connected["status"], "active");

    let mention = format!("@{}", bob.handle);
    let text = format!(
        "Grüße 👋🏽 from Herald — read https://example.com/ça?x=1, ask {mention} #herald日本 ✨"
    );
    let post = publish(
        &app,
        &token,
        json!({
            "content": text,
            "targets": [{"platform": "bluesky", "options": [{"key": "langs", "value": "de,en"}]}],
            "scheduledAt": in_ms(200),
        }),
    )
    .await;
    let rkey = rkey_of(&post, &alice);

    let record = pds.post_record(&alice.did, &rkey).await;
    assert_eq!(
        record["uri"],
        format!("at://{}/app.bsky.feed.post/{rkey}", alice.did)
    );
    let value = &record["value"];
    assert_eq!(value["$type"], "app.bsky.feed.post");
    assert_eq!(value["text"], text.as_str());
    assert!(
        value["createdAt"]
            .as_str()
            .expect("createdAt")
            .ends_with('Z')
    );
    assert_eq!(
        value["langs"],
        json!(["de", "en"]),
        "the target's langs option"
    );
    assert_eq!(
        value["facets"],
        json!([
            {"index": byte_range(&text, "https://example.com/ça?x=1"),
             "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/ça?x=1"}]},
            {"index": byte_range(&text, &mention),
             "features": [{"$type": "app.bsky.richtext.facet#mention", "did": bob.did}]},
            {"index": byte_range(&text, "#herald日本"),
             "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "herald日本"}]},
        ])
    );
    // Byte offsets, not character offsets: the emoji and accents before the link count.
    let link_start = text.find("https://").expect("link");
    assert_ne!(link_start, text[..link_start].chars().count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_post_uploads_the_blob_and_stores_its_alt_text() {
    let Setup {
        app, token, pds, ..
    } = setup(FirstCreate::Forward).await;
    let alice = pds.account().await;
    connect(&app, &token, &alice).await;

    let post = publish(
        &app,
        &token,
        json!({
            "content": "a very small cat",
            "media": [{"url": "https://media.herald.test/media/cat.png", "altText": "A one-pixel cat", "mimeType": "image/png"}],
            "platforms": ["bluesky"],
            "scheduledAt": in_ms(200),
        }),
    )
    .await;
    let rkey = rkey_of(&post, &alice);

    let record = pds.post_record(&alice.did, &rkey).await;
    let embed = &record["value"]["embed"];
    assert_eq!(embed["$type"], "app.bsky.embed.images");
    let images = embed["images"].as_array().expect("images");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["alt"], "A one-pixel cat");
    let blob = &images[0]["image"];
    assert_eq!(blob["$type"], "blob");
    assert_eq!(blob["mimeType"], "image/png");
    assert_eq!(blob["size"], png().len());
    let cid = blob["ref"]["$link"].as_str().expect("blob CID");
    let stored = pds
        .client
        .get(format!("{}/xrpc/com.atproto.sync.getBlob", pds.url))
        .query(&[("did", alice.did.as_str()), ("cid", cid)])
        .send()
        .await
        .expect("getBlob");
    assert_eq!(stored.status().as_u16(), 200);
    assert_eq!(stored.bytes().await.expect("blob").to_vec(), png());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_create_is_retried_after_the_stated_reset() {
    let Setup {
        app,
        token,
        pds,
        log,
        ..
    } = setup(FirstCreate::RateLimit).await;
    let alice = pds.account().await;
    connect(&app, &token, &alice).await;

    let retry = watch_retry(&app);
    let post = publish(
        &app,
        &token,
        json!({"content": "patience", "platforms": ["bluesky"], "scheduledAt": in_ms(200)}),
    )
    .await;
    let rkey = rkey_of(&post, &alice);
    assert_eq!(post["targets"][0]["attempts"], 2, "{post}");

    let (creates, reset) = {
        let log = log.lock().expect("lock");
        (
            log.creates.clone(),
            log.reset.expect("the proxy rate-limited") as f64,
        )
    };
    assert_eq!(creates.len(), 2, "one refused, one accepted");
    assert_retried_after(
        &app,
        retry,
        Duration::from_secs_f64(creates[1] - creates[0]),
        Duration::from_secs_f64(reset - creates[0]),
    )
    .await;
    assert_eq!(pds.posts(&alice.did).await.len(), 1);
    assert_eq!(
        pds.post_record(&alice.did, &rkey).await["value"]["text"],
        "patience"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_is_refreshed_and_a_revoked_app_password_asks_to_reconnect() {
    let Setup {
        app,
        token,
        pds,
        log,
        ..
    } = setup(FirstCreate::Forward).await;
    let alice = pds.account().await;
    connect(&app, &token, &alice).await;
    let calls_to = |method: &str| {
        let path = format!("/xrpc/{method}");
        log.lock()
            .expect("lock")
            .calls
            .iter()
            .filter(|c| **c == path)
            .count()
    };

    // The first publish signs in with the app password; the session is stored.
    let first = publish(
        &app,
        &token,
        json!({"content": "first", "platforms": ["bluesky"], "scheduledAt": in_ms(200)}),
    )
    .await;
    rkey_of(&first, &alice);
    let (connection_id, session) = herald_server::db::tenant::scope(
        "user:alice",
        app.connections.credentials("user:alice", "bluesky", None),
    )
    .await
    .expect("read")
    .expect("connected");
    assert_ne!(
        session.access_token, alice.app_password,
        "a session was stored"
    );
    let refresh_jwt = session.refresh_token.clone().expect("refresh token");
    assert!(
        session
            .expires_at
            .is_some_and(|at| at > chrono::Utc::now().timestamp()),
        "the access token's expiry is stored: {:?}",
        session.expires_at
    );
    let extra = |key: &str| {
        session
            .extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(extra("did"), Some(alice.did.clone()));
    assert_eq!(extra("app_password"), Some(alice.app_password.clone()));

    // An access token the PDS no longer accepts (InvalidToken): refreshSession renews it.
    let mut expired = session.clone();
    expired.access_token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.bm9wZQ".into();
    herald_server::db::tenant::scope(
        "user:alice",
        app.connections.refreshed(connection_id, &expired),
    )
    .await
    .expect("store");
    let sessions_before = calls_to("com.atproto.server.createSession");
    let second = publish(
        &app,
        &token,
        json!({"content": "second", "platforms": ["bluesky"], "scheduledAt": in_ms(200)}),
    )
    .await;
    rkey_of(&second, &alice);
    // Renewed by refreshSession, not by signing in again.
    assert_eq!(calls_to("com.atproto.server.refreshSession"), 1);
    assert_eq!(
        calls_to("com.atproto.server.createSession"),
        sessions_before,
        "{:?}",
        log.lock().expect("lock").calls
    );
    let (_, renewed) = herald_server::db::tenant::scope(
        "user:alice",
        app.connections.credentials("user:alice", "bluesky", None),
    )
    .await
    .expect("read")
    .expect("connected");
    assert_ne!(
        renewed.refresh_token.as_deref(),
        Some(refresh_jwt.as_str()),
        "rotated"
    );

    // The user revokes Herald's app password: neither refreshing nor signing in works.
    let (status, revoked) = pds
        .call(
            "com.atproto.server.revokeAppPassword",
            Some(&alice.access_jwt),
            json!({"name": "herald"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let mut stale = renewed.clone();
    stale.access_token = expired.access_token.clone();
    herald_server::db::tenant::scope(
        "user:alice",
        app.connections.refreshed(connection_id, &stale),
    )
    .await
    .expect("store");
    let third = harness::publish(
        &app,
        &token,
        json!({"content": "third", "platforms": ["bluesky"], "scheduledAt": in_ms(200)}),
        harness::waits_for_account,
    )
    .await;
    assert_asks_to_reconnect(&app, &token, &third).await;
    assert_eq!(pds.posts(&alice.did).await.len(), 2, "only the first two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_300_graphemes_five_images_or_four_langs_are_rejected_when_scheduling() {
    let Setup {
        app, token, pds, ..
    } = setup(FirstCreate::Forward).await;
    let alice = pds.account().await;
    connect(&app, &token, &alice).await;
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";

    // 300 family emoji are 300 graphemes (and 1500 chars): accepted.
    let family = "👨‍👩‍👧";
    let fits = app
        .gql(
            Some(&token),
            create,
            json!({"i": {"content": family.repeat(300), "platforms": ["bluesky"], "scheduledAt": in_ms(60_000)}}),
        )
        .await;
    assert!(fits.get("errors").is_none(), "{fits}");

    let over = app
        .gql(
            Some(&token),
            create,
            json!({"i": {"content": family.repeat(301), "platforms": ["bluesky"], "scheduledAt": in_ms(60_000)}}),
        )
        .await;
    assert_error(&over, "BAD_USER_INPUT", Some("content"));
    let message = over["errors"][0]["message"].as_str().expect("message");
    assert!(message.to_lowercase().contains("bluesky"), "{message}");

    let image = json!({"url": "https://media.herald.test/media/cat.png", "altText": "cat", "mimeType": "image/png"});
    let five = app
        .gql(
            Some(&token),
            create,
            json!({"i": {"content": "five cats", "media": vec![image; 5], "platforms": ["bluesky"], "scheduledAt": in_ms(60_000)}}),
        )
        .await;
    assert_error(&five, "BAD_USER_INPUT", Some("media"));

    let langs = app
        .gql(
            Some(&token),
            create,
            json!({"i": {"content": "hi", "targets": [{"platform": "bluesky", "options": [{"key": "langs", "value": "en,de,fr,it"}]}], "scheduledAt": in_ms(60_000)}}),
        )
        .await;
    assert_error(&langs, "BAD_USER_INPUT", Some("options.langs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_create_answer_is_retried_into_exactly_one_record_that_lookup_finds() {
    let Setup {
        app,
        token,
        pds,
        log,
        host,
    } = setup(FirstCreate::LoseAnswer).await;
    let alice = pds.account().await;
    connect(&app, &token, &alice).await;

    let post = publish(
        &app,
        &token,
        json!({"content": "exactly once", "platforms": ["bluesky"], "scheduledAt": in_ms(200)}),
    )
    .await;
    let rkey = rkey_of(&post, &alice);
    assert_eq!(post["targets"][0]["attempts"], 2, "{post}");
    assert_eq!(
        log.lock().expect("lock").creates.len(),
        2,
        "the retry wrote again, to the same record key"
    );
    let records = pds.posts(&alice.did).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0]["uri"],
        format!("at://{}/app.bsky.feed.post/{rkey}", alice.did)
    );
    assert_eq!(records[0]["value"]["text"], "exactly once");

    // The plugin's lookup finds the post by the target's idempotency key.
    let target_id = post["targets"][0]["id"].as_str().expect("target id");
    let version = post["version"].as_i64().expect("version");
    let key = herald_server::worker::idempotency_key(target_id.parse().expect("uuid"), version);
    let (_, credentials) = herald_server::db::tenant::scope(
        "user:alice",
        app.connections.credentials("user:alice", "bluesky", None),
    )
    .await
    .expect("read")
    .expect("connected");
    let found = host
        .lookup("bluesky", &key, credentials.clone())
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(
        found.platform_post_id,
        records[0]["uri"].as_str().expect("uri")
    );
    assert_eq!(
        found.url,
        post["targets"][0]["platformUrl"].as_str().expect("url")
    );
    let missing = host
        .lookup("bluesky", "herald-never-published-v1", credentials)
        .await
        .expect("lookup");
    assert_eq!(missing, None);
}
