//! The Matrix plugin end to end against a real Synapse (started by scripts/test, see
//! scripts/lib/synapse.sh): GraphQL connectAccount and createPost → queue → plugin →
//! Synapse, read back through Synapse's client API. Herald reaches Synapse as
//! `https://matrix.test` through a small recording proxy in this file, which also loses
//! one answer on purpose for the crash test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::header;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{
    self, TestApp, app_publishing, assert_asks_to_reconnect, assert_error, assert_retried_after,
    in_ms, plugin_host, watch_retry,
};

/// A 3×2 PNG (made with Pillow), served as `https://media.test/chart.png`.
const PNG: [u8; 78] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0,
    0, 0, 18, 22, 241, 77, 0, 0, 0, 21, 73, 68, 65, 84, 120, 156, 99, 60, 33, 167, 193, 192, 192,
    192, 192, 192, 192, 196, 0, 3, 0, 19, 216, 1, 18, 88, 236, 170, 127, 0, 0, 0, 0, 73, 69, 78,
    68, 174, 66, 96, 130,
];

/// Percent-encodes a path segment (room and event ids carry `!`, `:`, `$`, `/`, `+`).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A registered Synapse user.
struct User {
    id: String,
    token: String,
}

/// The test run's Synapse, through its client and admin APIs.
struct Synapse {
    url: String,
    admin_token: String,
    http: reqwest::Client,
}

impl Synapse {
    fn from_env() -> Self {
        Self {
            url: std::env::var("HERALD_TEST_SYNAPSE_URL")
                .expect("HERALD_TEST_SYNAPSE_URL is not set: run the tests with scripts/test"),
            admin_token: std::env::var("HERALD_TEST_SYNAPSE_ADMIN_TOKEN").expect(
                "HERALD_TEST_SYNAPSE_ADMIN_TOKEN is not set: run the tests with scripts/test",
            ),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("Synapse answers");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON from Synapse");
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    /// Registers a fresh user whose messages are not rate-limited.
    async fn register(&self, name: &str) -> User {
        let user = self.register_rate_limited(name).await;
        self.call(
            reqwest::Method::POST,
            &format!(
                "/_synapse/admin/v1/users/{}/override_ratelimit",
                encode(&user.id)
            ),
            &self.admin_token,
            Some(json!({"messages_per_second": 0, "burst_count": 0})),
        )
        .await;
        user
    }

    /// Registers a fresh user (registration without verification) under the homeserver's
    /// message rate limit: one message per 5 s (scripts/lib/synapse.sh).
    async fn register_rate_limited(&self, name: &str) -> User {
        let username = format!(
            "{name}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let response = self
            .http
            .post(format!("{}/_matrix/client/v3/register", self.url))
            .json(&json!({
                "username": username,
                "password": "herald-test-password",
                "auth": {"type": "m.login.dummy"},
            }))
            .send()
            .await
            .expect("register");
        let body: Value = response.json().await.expect("JSON");
        User {
            id: body["user_id"].as_str().expect("user_id").to_owned(),
            token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
        }
    }

    async fn create_room(&self, owner: &User) -> String {
        let body = self
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                &owner.token,
                Some(json!({"preset": "private_chat", "name": "Herald announcements"})),
            )
            .await;
        body["room_id"].as_str().expect("room_id").to_owned()
    }

    async fn event(&self, user: &User, room: &str, event_id: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!(
                "/_matrix/client/v3/rooms/{}/event/{}",
                encode(room),
                encode(event_id)
            ),
            &user.token,
            None,
        )
        .await
    }

    /// The room's `m.room.message` events, oldest first.
    async fn messages(&self, user: &User, room: &str) -> Vec<Value> {
        let body = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100",
                    encode(room)
                ),
                &user.token,
                None,
            )
            .await;
        let mut events: Vec<Value> = body["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .filter(|event| event["type"] == "m.room.message")
            .cloned()
            .collect();
        events.reverse();
        events
    }

    /// Downloads `mxc://server/id` (authenticated media).
    async fn download(&self, user: &User, mxc: &str) -> Vec<u8> {
        let (server, id) = mxc
            .strip_prefix("mxc://")
            .and_then(|rest| rest.split_once('/'))
            .expect("an mxc:// URI");
        let response = self
            .http
            .get(format!(
                "{}/_matrix/client/v1/media/download/{server}/{id}",
                self.url
            ))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("download");
        assert!(response.status().is_success(), "{}", response.status());
        response.bytes().await.expect("bytes").to_vec()
    }

    async fn leave(&self, user: &User, room: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/_matrix/client/v3/rooms/{}/leave", encode(room)),
            &user.token,
            Some(json!({})),
        )
        .await;
    }

    async fn logout(&self, user: &User) {
        self.call(
            reqwest::Method::POST,
            "/_matrix/client/v3/logout",
            &user.token,
            Some(json!({})),
        )
        .await;
    }
}

/// One request the proxy forwarded.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    method: String,
    path: String,
    status: u16,
    body: Value,
    /// Synapse answered but the proxy closed the connection instead of passing it on.
    answer_lost: bool,
}

#[derive(Default)]
struct ProxyState {
    seen: Vec<Seen>,
    /// Lose Synapse's answer to the next `PUT …/send/…`.
    lose_next_send_answer: bool,
}

/// An HTTP/1.1 proxy in front of Synapse that records every request and can lose an answer:
/// it forwards the request, then closes the client's connection without a byte of response.
struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state: Arc<Mutex<ProxyState>> = Arc::default();
        let shared = state.clone();
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(proxy_connection(
                    stream,
                    upstream.clone(),
                    shared.clone(),
                    client.clone(),
                ));
            }
        });
        Self { addr, state }
    }

    fn sends(&self) -> Vec<Seen> {
        self.state
            .lock()
            .expect("lock")
            .seen
            .iter()
            .filter(|seen| seen.method == "PUT" && seen.path.contains("/send/m.room.message/"))
            .cloned()
            .collect()
    }
}

/// Reads one request (head and `content-length` body) from `buf` + `stream`.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                if stream.read_buf(buf).await.ok()? == 0 {
                    return None;
                }
            }
            let body = buf[end + 4..end + 4 + length].to_vec();
            buf.drain(..end + 4 + length);
            return Some((head, body));
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

async fn proxy_connection(
    mut stream: TcpStream,
    upstream: String,
    state: Arc<Mutex<ProxyState>>,
    client: reqwest::Client,
) {
    let mut buf = Vec::new();
    while let Some((head, body)) = read_request(&mut stream, &mut buf).await {
        let mut lines = head.lines();
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_owned();
        let path = request_line.next().unwrap_or_default().to_owned();
        let mut request = client.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{upstream}{path}"),
        );
        for (name, value) in lines.filter_map(|line| line.split_once(':')) {
            let name = name.trim();
            if !["host", "content-length", "connection"]
                .iter()
                .any(|skip| name.eq_ignore_ascii_case(skip))
            {
                request = request.header(name, value.trim());
            }
        }
        let response = request.body(body).send().await.expect("Synapse answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("Synapse's body");
        let lose = {
            let mut state = state.lock().expect("lock");
            let lose = state.lose_next_send_answer
                && method == "PUT"
                && path.contains("/send/m.room.message/");
            if lose {
                state.lose_next_send_answer = false;
            }
            state.seen.push(Seen {
                at: Instant::now(),
                method: method.clone(),
                path: path.clone(),
                status: status.as_u16(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                answer_lost: lose,
            });
            lose
        };
        if lose {
            return; // dropping the stream closes the connection unanswered
        }
        let mut answer = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (name, value) in &headers {
            if name != header::CONTENT_LENGTH
                && name != header::TRANSFER_ENCODING
                && name != header::CONNECTION
            {
                answer.push_str(&format!(
                    "{name}: {}\r\n",
                    value.to_str().unwrap_or_default()
                ));
            }
        }
        answer.push_str(&format!("content-length: {}\r\n\r\n", bytes.len()));
        let mut out = answer.into_bytes();
        out.extend_from_slice(&bytes);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

struct Setup {
    app: TestApp,
    synapse: Synapse,
    proxy: Proxy,
    token: String,
}

async fn setup() -> Setup {
    let synapse = Synapse::from_env();
    let proxy = Proxy::start(synapse.url.clone()).await;
    let media = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let media_addr = media.local_addr().expect("addr");
    let router = axum::Router::new().route(
        "/chart.png",
        get(|| async { ([(header::CONTENT_TYPE, "image/png")], PNG.to_vec()) }),
    );
    tokio::spawn(async move { axum::serve(media, router).await.expect("serve") });

    let host = plugin_host(&[
        ("matrix.test", format!("http://{}", proxy.addr)),
        ("media.test", format!("http://{media_addr}")),
    ])
    .await;
    let app = app_publishing("matrix", host.clone()).await;
    let token = app.token("alice", None, &["admin"]);
    Setup {
        app,
        synapse,
        proxy,
        token,
    }
}

const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"matrix\", credentials: $c) { id externalAccountId displayName status } }";

/// Connects `user` (posting in `room`) as alice's Matrix account.
async fn connect(setup: &Setup, user: &User, room: &str) -> Value {
    setup
        .app
        .ok(
            &setup.token,
            CONNECT,
            json!({"c": {
                "accessToken": user.token,
                "extra": [
                    {"key": "homeserver", "value": "https://matrix.test"},
                    {"key": "room_id", "value": room},
                ],
            }}),
        )
        .await["connectAccount"]
        .clone()
}

/// Publishes `input` (plus `platforms: ["matrix"]`, due now) and waits for `status`.
async fn publish(setup: &Setup, mut input: Value, status: &str) -> Value {
    input["platforms"] = json!(["matrix"]);
    input["scheduledAt"] = json!(in_ms(200));
    harness::publish(&setup.app, &setup.token, input, |p| p["status"] == status).await
}

/// The event id of a published target, from its matrix.to URL (`…/#/<room>/<event>`).
fn event_id_of(post: &Value, room: &str) -> String {
    let url = post["targets"][0]["platformUrl"].as_str().expect("url");
    let prefix = format!("https://matrix.to/#/{}/", encode(room));
    let encoded = url.strip_prefix(&prefix).expect("a matrix.to event URL");
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(&bytes[at + 1..at + 3]).expect("hex");
            decoded.push(u8::from_str_radix(hex, 16).expect("hex"));
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).expect("UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_a_link_is_published_as_html_and_read_back_from_synapse() {
    let setup = setup().await;
    let user = setup.synapse.register("herald-text").await;
    let room = setup.synapse.create_room(&user).await;
    let connected = connect(&setup, &user, &room).await;
    assert_eq!(connected["externalAccountId"], user.id.as_str());
    assert_eq!(connected["status"], "active");

    let text = "Release notes: https://herald.test/notes?a=1&b=2 are **out** <3";
    let published = publish(&setup, json!({"content": text}), "PUBLISHED").await;
    let event_id = event_id_of(&published, &room);
    let event = setup.synapse.event(&user, &room, &event_id).await;
    assert_eq!(event["sender"], user.id.as_str());
    assert_eq!(event["type"], "m.room.message");
    assert_eq!(
        event["content"],
        json!({
            "msgtype": "m.text",
            "body": text,
            "format": "org.matrix.custom.html",
            "formatted_body": "Release notes: <a href=\"https://herald.test/notes?a=1&amp;b=2\">https://herald.test/notes?a=1&amp;b=2</a> are <strong>out</strong> &lt;3",
        })
    );
    assert_eq!(setup.synapse.messages(&user, &room).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_with_alt_text_is_an_m_image_event_whose_mxc_downloads_back() {
    let setup = setup().await;
    let user = setup.synapse.register("herald-image").await;
    let room = setup.synapse.create_room(&user).await;
    connect(&setup, &user, &room).await;

    let published = publish(
        &setup,
        json!({
            "content": "This week's chart",
            "media": [{
                "url": "https://media.test/chart.png",
                "altText": "Bar chart: 3 posts on Monday, 2 on Tuesday",
                "mimeType": "image/png",
            }],
        }),
        "PUBLISHED",
    )
    .await;
    let text_event = event_id_of(&published, &room);
    let messages = setup.synapse.messages(&user, &room).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        messages[0]["event_id"],
        text_event.as_str(),
        "the receipt is the text"
    );
    assert_eq!(messages[0]["content"]["body"], "This week's chart");
    let image = &messages[1]["content"];
    assert_eq!(image["msgtype"], "m.image");
    assert_eq!(image["body"], "Bar chart: 3 posts on Monday, 2 on Tuesday");
    assert_eq!(
        image["info"],
        json!({"mimetype": "image/png", "size": PNG.len(), "w": 3, "h": 2})
    );
    let mxc = image["url"].as_str().expect("url");
    assert!(mxc.starts_with("mxc://localhost/"), "{mxc}");
    assert_eq!(setup.synapse.download(&user, mxc).await, PNG.to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_rate_limit_is_retried_after_its_retry_after_ms() {
    let setup = setup().await;
    let user = setup.synapse.register_rate_limited("herald-limited").await;
    // Creating the room uses up the user's one message per 5 s, so Herald's meets a 429.
    let room = setup.synapse.create_room(&user).await;
    connect(&setup, &user, &room).await;

    let retry = watch_retry(&setup.app);
    let published = publish(&setup, json!({"content": "after the limit"}), "PUBLISHED").await;
    assert_eq!(published["targets"][0]["attempts"], 2);
    let sends = setup.proxy.sends();
    assert_eq!(sends.len(), 2, "{sends:?}");
    let (limited, accepted) = (&sends[0], &sends[1]);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["errcode"], "M_LIMIT_EXCEEDED");
    let retry_after_ms = limited.body["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!(retry_after_ms > 1_000, "{retry_after_ms}");
    assert_eq!(accepted.status, 200);
    assert_eq!(accepted.path, limited.path, "retried with the same txn id");
    let waited = accepted.at.duration_since(limited.at);
    assert_retried_after(
        &setup.app,
        retry,
        waited,
        Duration::from_millis(retry_after_ms),
    )
    .await;
    let event_id = event_id_of(&published, &room);
    assert_eq!(accepted.body["event_id"], event_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_waits_asking_to_reconnect() {
    let setup = setup().await;
    let user = setup.synapse.register("herald-revoked").await;
    let room = setup.synapse.create_room(&user).await;
    connect(&setup, &user, &room).await;
    setup.synapse.logout(&user).await;

    let failed = publish(&setup, json!({"content": "too late"}), "QUEUED").await;
    let error = assert_asks_to_reconnect(&setup.app, &setup.token, &failed).await;
    assert!(error.contains("M_UNKNOWN_TOKEN"), "{error}");
    let sends = setup.proxy.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_over_the_event_size_is_refused_at_scheduling() {
    let setup = setup().await;
    let user = setup.synapse.register("herald-big").await;
    let room = setup.synapse.create_room(&user).await;
    connect(&setup, &user, &room).await;

    // 35,000 characters (under any character limit) but 70,000 bytes of UTF-8.
    let body = setup
        .app
        .gql(
            Some(&setup.token),
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            json!({"i": {
                "content": "é".repeat(35_000),
                "platforms": ["matrix"],
                "scheduledAt": in_ms(60_000),
            }}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", Some("content"));
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("matrix"), "{message}");
    assert!(message.contains("bytes"), "{message}");
    assert!(setup.proxy.sends().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_is_retried_with_the_same_txn_id_and_sends_one_event() {
    let setup = setup().await;
    let user = setup.synapse.register("herald-crash").await;
    let room = setup.synapse.create_room(&user).await;
    connect(&setup, &user, &room).await;
    setup
        .proxy
        .state
        .lock()
        .expect("lock")
        .lose_next_send_answer = true;

    let published = publish(&setup, json!({"content": "exactly once"}), "PUBLISHED").await;
    let sends = setup.proxy.sends();
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert!(
        sends[0].answer_lost && sends[0].status == 200,
        "Synapse took the first one"
    );
    assert_eq!(sends[1].path, sends[0].path, "the retry reused the txn id");
    assert_eq!(sends[1].body["event_id"], sends[0].body["event_id"]);

    let messages = setup.synapse.messages(&user, &room).await;
    assert_eq!(messages.len(), 1, "one event in the room: {messages:?}");
    assert_eq!(messages[0]["content"]["body"], "exactly once");
    assert_eq!(
        messages[0]["event_id"],
        event_id_of(&published, &room).as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_the_account_left_fails_permanently_without_reconnect() {
    let setup = setup().await;
    let user = setup.synapse.register("herald-left").await;
    let other = setup.synapse.register("herald-other").await;
    let foreign = setup.synapse.create_room(&other).await;
    let refused = setup
        .app
        .gql(
            Some(&setup.token),
            CONNECT,
            json!({"c": {
                "accessToken": user.token,
                "extra": [
                    {"key": "homeserver", "value": "https://matrix.test"},
                    {"key": "room_id", "value": foreign},
                ],
            }}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("credentials"));

    let room = setup.synapse.create_room(&user).await;
    connect(&setup, &user, &room).await;
    setup.synapse.leave(&user, &room).await;
    let failed = publish(&setup, json!({"content": "nobody listens"}), "FAILED").await;
    let error = failed["targets"][0]["lastError"].as_str().expect("error");
    assert!(error.contains("M_FORBIDDEN"), "{error}");
    assert!(error.contains("may not post in its room"), "{error}");
    assert_eq!(failed["targets"][0]["attempts"], 1, "not retried");
    let listed = setup
        .app
        .ok(&setup.token, "{ connections { status } }", json!({}))
        .await;
    assert_eq!(
        listed["connections"][0]["status"], "active",
        "the token still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_room_option_sends_to_another_room() {
    let setup = setup().await;
    let user = setup.synapse.register("herald-rooms").await;
    let default_room = setup.synapse.create_room(&user).await;
    let other_room = setup.synapse.create_room(&user).await;
    connect(&setup, &user, &default_room).await;

    let post = setup
        .app
        .create_post(
            &setup.token,
            json!({
                "content": "to the other room",
                "targets": [{
                    "platform": "matrix",
                    "options": [{"key": "room_id", "value": other_room}],
                }],
                "scheduledAt": in_ms(200),
            }),
        )
        .await;
    let published = setup
        .app
        .wait_for_post(
            &setup.token,
            post["id"].as_str().expect("id"),
            Duration::from_secs(40),
            |p| p["status"] == "PUBLISHED",
        )
        .await;
    let event_id = event_id_of(&published, &other_room);
    let event = setup.synapse.event(&user, &other_room, &event_id).await;
    assert_eq!(event["content"]["body"], "to the other room");
    assert!(
        setup
            .synapse
            .messages(&user, &default_room)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_without_text_are_one_event_each_and_the_first_is_the_receipt() {
    let setup = setup().await;
    let user = setup.synapse.register("herald-gallery").await;
    let room = setup.synapse.create_room(&user).await;
    connect(&setup, &user, &room).await;

    let published = publish(
        &setup,
        json!({
            "content": "",
            "media": [
                {"url": "https://media.test/chart.png", "altText": "first", "mimeType": "image/png"},
                {"url": "https://media.test/chart.png", "mimeType": "image/png"},
            ],
        }),
        "PUBLISHED",
    )
    .await;
    let messages = setup.synapse.messages(&user, &room).await;
    let bodies: Vec<&Value> = messages.iter().map(|m| &m["content"]["body"]).collect();
    assert_eq!(
        bodies,
        [&json!("first"), &json!("chart.png")],
        "no alt: the file name"
    );
    assert!(
        messages
            .iter()
            .all(|m| m["content"]["msgtype"] == "m.image")
    );
    assert_eq!(
        messages[0]["event_id"],
        event_id_of(&published, &room).as_str()
    );
    let sends = setup.proxy.sends();
    assert_eq!(sends.len(), 2);
    assert_ne!(sends[0].path, sends[1].path, "one transaction id per image");
}
