//! The media library over HTTP: GraphQL multipart uploads and streamed `PUT`s (size caps,
//! sniffed types, checksums, one stored file per tenant and content), tenant isolation,
//! signed URLs (signature, expiry, ranges, headers), deletion while a post uses a file,
//! garbage collection, and a post's library image published through the real Mastodon
//! plugin, which fetches it from Herald's signed URL.

mod s3;
pub mod video;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::fakes::mastodon::FakeMastodon;
use crate::fakes::media::PNG;
use crate::harness::{
    MEDIA_HOST, MEDIA_MAX_BYTES, TestApp, app_publishing, assert_error, days_from_now, in_ms,
    plugin_host,
};
use herald_server::media::store::Storage;

const UPLOAD: &str = "mutation($file: Upload!, $alt: String) { uploadMedia(file: $file, altText: $alt) { id contentType size width height altText fileName sha256 url } }";
const CREATE_UPLOAD: &str = "mutation($name: String!, $size: Int!) { createMediaUpload(fileName: $name, contentType: \"text/plain\", size: $size) { id uploadUrl expiresAt } }";
const ITEM: &str = "query($id: ID!) { mediaItem(id: $id) { id contentType size url } }";
const LIST: &str = "query($after: String) { media(first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
const DELETE: &str = "mutation($id: ID!) { deleteMedia(id: $id) }";

/// A distinct valid PNG: [`PNG`] with `tag` after its end.
fn png(tag: &str) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    bytes.extend_from_slice(tag.as_bytes());
    bytes
}

/// A multipart request (GraphQL multipart request spec) uploading `bytes` as `file`
/// (the Meta platforms' tests upload their library files with it).
pub async fn multipart(
    app: &TestApp,
    token: Option<&str>,
    bytes: &[u8],
    file_name: &str,
    declared_type: &str,
    alt: Option<&str>,
) -> (StatusCode, Value) {
    let boundary = "herald-test-boundary-7d3f";
    let operations = json!({"query": UPLOAD, "variables": {"file": null, "alt": alt}});
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.file\"]}}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"{file_name}\"\r\n\
             Content-Type: {declared_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", app.http_url()))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("multipart request");
    let status = response.status();
    (status, response.json().await.expect("JSON answer"))
}

/// Uploads `bytes` by multipart; the file.
async fn upload(app: &TestApp, token: &str, bytes: &[u8]) -> Value {
    let (status, body) = multipart(app, Some(token), bytes, "cat.png", "image/png", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["uploadMedia"].clone()
}

/// The files under the app's media directory (the store's objects and any staging file).
fn stored_files(app: &TestApp) -> Vec<(PathBuf, u64)> {
    let Storage::Local(dir) = &app.services.media.config().storage else {
        panic!("test servers store media on disk");
    };
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(meta) = entry.metadata() {
                out.push((path, meta.len()));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
}

/// GET of a signed URL (rewritten to the server's own address), with `range` if given.
async fn fetch(app: &TestApp, url: &str, range: Option<&str>) -> reqwest::Response {
    assert!(url.starts_with(MEDIA_HOST), "{url}");
    let mut request = reqwest::Client::new().get(app.local_media_url(url));
    if let Some(range) = range {
        request = request.header("range", range);
    }
    request.send().await.expect("media request")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_sniffs_the_type_and_stores_each_content_once() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let bytes = png("one");
    // Declared text/plain: the bytes say PNG.
    let (status, body) = multipart(
        &app,
        Some(&token),
        &bytes,
        "cat.txt",
        "text/plain",
        Some("A cat"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let file = &body["data"]["uploadMedia"];
    assert_eq!(file["contentType"], "image/png");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["width"], 1);
    assert_eq!(file["height"], 1);
    assert_eq!(file["altText"], "A cat");
    assert_eq!(file["fileName"], "cat.txt");
    assert_eq!(file["sha256"].as_str().map(str::len), Some(64));
    let url = file["url"].as_str().expect("url");
    let fetched = fetch(&app, url, None).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(
        fetched.bytes().await.expect("body").as_ref(),
        bytes.as_slice()
    );

    // The same bytes again: the same file, still one stored object.
    let again = upload(&app, &token, &bytes).await;
    assert_eq!(again["id"], file["id"]);
    assert_eq!(stored_files(&app).len(), 1, "{:?}", stored_files(&app));
    // Another tenant uploading the same bytes gets a file of its own.
    let bob = app.token("bob", None, &[]);
    let bobs = upload(&app, &bob, &bytes).await;
    assert_ne!(bobs["id"], file["id"]);
    assert_eq!(stored_files(&app).len(), 2);

    // Bytes of no accepted type are refused, naming the field, and leave nothing behind.
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (_, refused) = multipart(&app, Some(&token), &random, "x.png", "image/png", None).await;
    assert_error(&refused, "BAD_USER_INPUT", Some("file"));
    let (_, text) = multipart(
        &app,
        Some(&token),
        b"hello, world",
        "x.png",
        "image/png",
        None,
    )
    .await;
    assert_error(&text, "BAD_USER_INPUT", Some("file"));
    assert_eq!(stored_files(&app).len(), 2);
    let listed = app.ok(&token, LIST, json!({})).await;
    assert_eq!(listed["media"]["edges"].as_array().map(Vec::len), Some(1));

    // Larger than HERALD_MEDIA_MAX_BYTES: refused while it streams in.
    let mut huge = png("huge");
    huge.resize(usize::try_from(MEDIA_MAX_BYTES).expect("cap") + 1, 0);
    let (status, body) = multipart(&app, Some(&token), &huge, "big.png", "image/png", None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(stored_files(&app).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_media_refuses_anonymous_callers_and_stores_into_the_callers_tenant() {
    let app = TestApp::spawn().await;
    // Without a token (as a cross-site form would send it): not even read.
    let (status, body) = multipart(&app, None, &png("anon"), "a.png", "image/png", None).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "UNSUPPORTED_MEDIA_TYPE"
    );
    let (status, body) = multipart(
        &app,
        Some("not-a-token"),
        &png("anon"),
        "a.png",
        "image/png",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(stored_files(&app).is_empty());
    // A member of another tenant, or without any role, uploads into its own tenant only.
    let acme = app.token("mia", Some("acme"), &[]);
    let rival = app.token("oscar", Some("rival"), &[]);
    let mine = upload(&app, &rival, &png("rival")).await;
    let none = app.ok(&acme, ITEM, json!({"id": mine["id"]})).await;
    assert_eq!(none["mediaItem"], Value::Null);
    let listed = app.ok(&acme, LIST, json!({})).await;
    assert_eq!(listed["media"]["edges"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_uploads_are_capped_and_written_before_the_body_ends() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let too_big = app
        .gql(
            Some(&token),
            CREATE_UPLOAD,
            json!({"name": "big.mp4", "size": MEDIA_MAX_BYTES + 1}),
        )
        .await;
    assert_error(&too_big, "BAD_USER_INPUT", Some("size"));

    // A body longer than announced is refused.
    let small = app
        .ok(&token, CREATE_UPLOAD, json!({"name": "a.png", "size": 10}))
        .await["createMediaUpload"]
        .clone();
    let upload_url = small["uploadUrl"].as_str().expect("url");
    assert!(upload_url.starts_with(&format!("{MEDIA_HOST}/media/uploads/")));
    let put = |url: &str| {
        reqwest::Client::new()
            .put(app.local_media_url(url))
            .bearer_auth(&token)
    };
    let refused = put(upload_url).body(png("long")).send().await.expect("put");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // Larger than the cap without Content-Length (chunked): refused as it streams.
    let capped = app
        .ok(
            &token,
            CREATE_UPLOAD,
            json!({"name": "cap.png", "size": MEDIA_MAX_BYTES}),
        )
        .await["createMediaUpload"]
        .clone();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(png("cap")))
        .chain((0..(MEDIA_MAX_BYTES / 65_536 + 2)).map(|_| Ok(vec![0u8; 65_536])))
        .collect();
    let refused = put(capped["uploadUrl"].as_str().expect("url"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("put");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        stored_files(&app).is_empty(),
        "a refused upload leaves nothing: {:?}",
        stored_files(&app)
    );

    // A large file within the cap: parts reach the store while the body still streams.
    let size = MEDIA_MAX_BYTES - 1_000;
    let pending = app
        .ok(
            &token,
            CREATE_UPLOAD,
            json!({"name": "big.png", "size": size}),
        )
        .await["createMediaUpload"]
        .clone();
    let mut bytes = png("big");
    bytes.resize(usize::try_from(size).expect("size"), 7);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let url = pending["uploadUrl"].as_str().expect("url").to_owned();
    let request = put(&url).body(reqwest::Body::wrap_stream(
        tokio_stream::wrappers::ReceiverStream::new(receiver),
    ));
    let sending = tokio::spawn(async move { request.send().await.expect("put") });
    let (head, tail) = bytes.split_at(bytes.len() - 100_000);
    for chunk in head.chunks(256 * 1024) {
        sender.send(Ok(chunk.to_vec())).await.expect("send");
    }
    // Before the last bytes are sent, a 5 MiB part is already on disk (the server holds
    // at most a part or two of a file in memory).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !stored_files(&app)
        .iter()
        .any(|(_, len)| *len >= 5 * 1024 * 1024)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing written while the body streams: {:?}",
            stored_files(&app)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!sending.is_finished());
    sender.send(Ok(tail.to_vec())).await.expect("send");
    drop(sender);
    let response = sending.await.expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.expect("json");
    assert_eq!(file["id"], pending["id"]);
    assert_eq!(file["contentType"], "image/png");
    assert_eq!(file["size"], size);
    let item = app.ok(&token, ITEM, json!({"id": file["id"]})).await;
    let fetched = fetch(&app, item["mediaItem"]["url"].as_str().expect("url"), None).await;
    assert_eq!(
        fetched.bytes().await.expect("body").as_ref(),
        bytes.as_slice()
    );
    // The upload is done: its URL takes nothing more.
    let again = put(&url).body(png("again")).send().await.expect("put");
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_list_read_delete_or_upload_into_a_file() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", Some("rival"), &["admin"]);
    let file = upload(&app, &alice, &png("alice")).await;
    let id = file["id"].clone();

    let listed = app.ok(&bob, LIST, json!({})).await;
    assert_eq!(listed["media"]["edges"], json!([]));
    let read = app.ok(&bob, ITEM, json!({"id": id})).await;
    assert_eq!(read["mediaItem"], Value::Null);
    let deleted = app.gql(Some(&bob), DELETE, json!({"id": id})).await;
    assert_error(&deleted, "NOT_FOUND", None);
    // Naming it in a post is refused like an unknown file.
    let post = app
        .gql(
            Some(&bob),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
            json!({"input": {"content": "x", "platforms": ["x"], "media": [{"mediaId": id}]}}),
        )
        .await;
    assert_error(&post, "BAD_USER_INPUT", Some("media[0]"));
    // Alice's pending upload cannot take Bob's bytes.
    let pending = app
        .ok(
            &alice,
            CREATE_UPLOAD,
            json!({"name": "a.png", "size": PNG.len()}),
        )
        .await["createMediaUpload"]
        .clone();
    let put = reqwest::Client::new()
        .put(app.local_media_url(pending["uploadUrl"].as_str().expect("url")))
        .bearer_auth(&bob)
        .body(PNG.to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::NOT_FOUND);
    let anonymous = reqwest::Client::new()
        .put(app.local_media_url(pending["uploadUrl"].as_str().expect("url")))
        .body(PNG.to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The file is still Alice's, and its signed URL is the one public way to it.
    let mine = app.ok(&alice, ITEM, json!({"id": id})).await;
    assert_eq!(mine["mediaItem"]["id"], id);
    let url = mine["mediaItem"]["url"].as_str().expect("url");
    assert_eq!(fetch(&app, url, None).await.status(), StatusCode::OK);
    let unsigned = reqwest::Client::new()
        .get(format!(
            "{}/media/{}",
            app.http_url(),
            id.as_str().expect("id")
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(unsigned.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_check_signature_and_expiry_and_serve_ranges() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let mut bytes = png("ranges");
    bytes.extend((0..1_000u32).map(|i| (i % 251) as u8));
    let file = upload(&app, &token, &bytes).await;
    let url = file["url"].as_str().expect("url").to_owned();
    let size = bytes.len();

    let whole = fetch(&app, &url, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(header(&whole, "content-type"), Some("image/png"));
    assert_eq!(
        header(&whole, "content-length"),
        Some(size.to_string().as_str())
    );
    assert_eq!(header(&whole, "accept-ranges"), Some("bytes"));
    assert_eq!(
        whole.bytes().await.expect("body").as_ref(),
        bytes.as_slice()
    );

    let first = fetch(&app, &url, Some("bytes=0-99")).await;
    assert_eq!(first.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&first, "content-range"),
        Some(format!("bytes 0-99/{size}").as_str())
    );
    assert_eq!(header(&first, "content-length"), Some("100"));
    assert_eq!(header(&first, "content-type"), Some("image/png"));
    assert_eq!(first.bytes().await.expect("body").as_ref(), &bytes[..100]);

    let suffix = fetch(&app, &url, Some("bytes=-50")).await;
    assert_eq!(suffix.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&suffix, "content-range"),
        Some(format!("bytes {}-{}/{size}", size - 50, size - 1).as_str())
    );
    assert_eq!(
        suffix.bytes().await.expect("body").as_ref(),
        &bytes[size - 50..]
    );

    let open = fetch(&app, &url, Some(&format!("bytes={}-", size - 10))).await;
    assert_eq!(open.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        open.bytes().await.expect("body").as_ref(),
        &bytes[size - 10..]
    );

    let beyond = fetch(&app, &url, Some(&format!("bytes={size}-"))).await;
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(&beyond, "content-range"),
        Some(format!("bytes */{size}").as_str())
    );

    // A wrong signature, another file's signature, a later expiry: refused.
    let (path, query) = url.split_once('?').expect("query");
    let (base, signature) = path.rsplit_once('/').expect("signature");
    let mut wrong = signature.to_owned();
    let last = if wrong.ends_with('A') { "B" } else { "A" };
    wrong.replace_range(wrong.len() - 1.., last);
    let tampered = fetch(&app, &format!("{base}/{wrong}?{query}"), None).await;
    assert_eq!(tampered.status(), StatusCode::FORBIDDEN);
    let expires: i64 = query
        .strip_prefix("expires=")
        .and_then(|e| e.parse().ok())
        .expect("expires");
    let later = fetch(&app, &format!("{path}?expires={}", expires + 3_600), None).await;
    assert_eq!(later.status(), StatusCode::FORBIDDEN);
    let missing = fetch(&app, path, None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Expired, though correctly signed.
    let id: uuid::Uuid = file["id"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .expect("id");
    let past = chrono::Utc::now().timestamp() - 1;
    let signer = app.services.media.urls().signer();
    let expired = fetch(
        &app,
        &format!("{MEDIA_HOST}{}", signer.path(id, past)),
        None,
    )
    .await;
    assert_eq!(expired.status(), StatusCode::GONE);
    // A validly signed URL of a file that does not exist.
    let unknown = uuid::Uuid::new_v4();
    let future = chrono::Utc::now().timestamp() + 60;
    let nothing = fetch(
        &app,
        &format!("{MEDIA_HOST}{}", signer.path(unknown, future)),
        None,
    )
    .await;
    assert_eq!(nothing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_not_deleted_while_an_unpublished_post_uses_it() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let file = upload(&app, &token, &png("used")).await;
    let id = file["id"].clone();
    let post = app
        .create_post(
            &token,
            json!({"content": "With a cat", "platforms": ["x"], "scheduledAt": days_from_now(1),
                   "media": [{"mediaId": id}]}),
        )
        .await;
    let read = app
        .ok(
            &token,
            "query($id: ID!) { post(id: $id) { media { url mediaId mimeType altText } } }",
            json!({"id": post["id"]}),
        )
        .await;
    assert_eq!(
        read["post"]["media"],
        json!([{"url": format!("herald-media:{}", id.as_str().expect("id")),
                "mediaId": id, "mimeType": "image/png", "altText": null}])
    );
    let refused = app.gql(Some(&token), DELETE, json!({"id": id})).await;
    assert_error(&refused, "CONFLICT", None);
    assert_eq!(stored_files(&app).len(), 1);

    // Once the post no longer uses it, it goes, bytes and all.
    app.ok(
        &token,
        "mutation($id: ID!) { updatePost(id: $id, input: {mediaUrls: [\"https://cdn.example.com/a.png\"]}) { id } }",
        json!({"id": post["id"]}),
    )
    .await;
    let deleted = app.ok(&token, DELETE, json!({"id": id})).await;
    assert_eq!(deleted["deleteMedia"], id);
    assert!(stored_files(&app).is_empty());
    let gone = app.ok(&token, ITEM, json!({"id": id})).await;
    assert_eq!(gone["mediaItem"], Value::Null);
    let again = app.gql(Some(&token), DELETE, json!({"id": id})).await;
    assert_error(&again, "NOT_FOUND", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_pages_newest_first() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let mut ids = Vec::new();
    for tag in ["a", "b", "c"] {
        ids.push(upload(&app, &token, &png(tag)).await["id"].clone());
    }
    let first = app.ok(&token, LIST, json!({})).await;
    let page = &first["media"];
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let seen: Vec<Value> = page["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].clone())
        .collect();
    assert_eq!(seen, [ids[2].clone(), ids[1].clone()]);
    let second = app
        .ok(
            &token,
            LIST,
            json!({"after": page["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(second["media"]["edges"][0]["node"]["id"], ids[0]);
    assert_eq!(second["media"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_removes_old_unreferenced_files_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let old = upload(&app, &token, &png("old")).await;
    let used = upload(&app, &token, &png("used")).await;
    let fresh = upload(&app, &token, &png("fresh")).await;
    app.create_post(
        &token,
        json!({"content": "draft", "platforms": ["x"], "media": [{"mediaId": used["id"]}]}),
    )
    .await;
    let abandoned = app
        .ok(
            &token,
            CREATE_UPLOAD,
            json!({"name": "gone.png", "size": 10}),
        )
        .await["createMediaUpload"]
        .clone();
    let ids = |v: &Value| v["id"].as_str().expect("id").to_owned();
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared(&format!(
            "UPDATE media SET created_at = now() - interval '30 days' WHERE id IN ('{}', '{}');
             UPDATE media SET upload_expires_at = now() - interval '1 minute' WHERE id = '{}'",
            ids(&old),
            ids(&used),
            ids(&abandoned)
        ))
        .await
        .expect("age the files");
    assert_eq!(stored_files(&app).len(), 3);

    let deleted = herald_server::media::gc::collect(&app.services.media)
        .await
        .expect("collect");
    assert_eq!(
        deleted, 2,
        "the old unreferenced file and the abandoned upload"
    );
    for (file, kept) in [(&old, false), (&used, true), (&fresh, true)] {
        let read = app.ok(&token, ITEM, json!({"id": file["id"]})).await;
        assert_eq!(read["mediaItem"].is_null(), !kept, "{file}");
    }
    assert_eq!(stored_files(&app).len(), 2);
    let put = reqwest::Client::new()
        .put(app.local_media_url(abandoned["uploadUrl"].as_str().expect("url")))
        .bearer_auth(&token)
        .body(png("late"))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_image_is_published_to_mastodon_from_the_signed_url() {
    const TOKEN: &str = "tok-alice-mastodon";
    let fake = FakeMastodon::start().await;
    fake.add_token(TOKEN, "109876543210987654");
    // The app's plugins route `media.herald.test` nowhere yet: the app's address is known
    // once it runs; the publishing worker's host routes it to the app itself.
    let host = plugin_host(&[("mastodon.test:443", fake.base.clone())]).await;
    let app = app_publishing("mastodon", host).await;
    let publishing = plugin_host(&[
        ("mastodon.test:443", fake.base.clone()),
        ("media.herald.test:443", app.http_url()),
    ])
    .await;
    let mut publishers = herald_server::publish::PublisherRegistry::new();
    publishers.register(
        "mastodon",
        std::sync::Arc::new(herald_server::publish::plugin::PluginPublisher::new(
            publishing,
            app.connections.clone(),
        )),
    );
    let app = app.with_worker(publishers).await;
    let token = app.token("alice", None, &["admin"]);
    app.ok(
        &token,
        "mutation($c: CredentialsInput!) { connectAccount(platform: \"mastodon\", credentials: $c) { id } }",
        json!({"c": {"accessToken": TOKEN, "extra": [{"key": "instance", "value": "https://mastodon.test"}]}}),
    )
    .await;
    let bytes = png("published");
    let (_, uploaded) = multipart(
        &app,
        Some(&token),
        &bytes,
        "cat.png",
        "application/octet-stream",
        Some("A cat from the library"),
    )
    .await;
    let file = &uploaded["data"]["uploadMedia"];
    let post = app
        .create_post(
            &token,
            json!({"content": "From the library", "targets": [{"platform": "mastodon"}],
                   "scheduledAt": in_ms(300), "media": [{"mediaId": file["id"]}]}),
        )
        .await;
    let done = app
        .wait_for_post(
            &token,
            post["id"].as_str().expect("id"),
            Duration::from_secs(20),
            |p| p["status"] == "PUBLISHED" || p["status"] == "FAILED",
        )
        .await;
    assert_eq!(done["status"], "PUBLISHED", "{done}");
    let state = fake.state();
    assert_eq!(state.media.len(), 1);
    assert_eq!(state.media[0].file.as_ref(), bytes.as_slice());
    assert_eq!(state.media[0].file_type, "image/png");
    assert_eq!(
        state.media[0].json["description"], "A cat from the library",
        "the library's alt text goes with the image"
    );
    assert_eq!(state.statuses.len(), 1);
}
