//! The media library on an S3-compatible bucket: moto's S3 server (`moto_server`, from
//! PyPI's `moto[server]`, which `scripts/test` installs: a pure-Python package that
//! installs from the registry alone and speaks S3's multipart uploads and ranged reads)
//! runs on a loopback port for the test. Files go up in parts, are deduplicated, served
//! with ranges from Herald's signed URLs, and leave nothing behind when refused or deleted.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use herald_server::domain::actor::Actor;
use herald_server::error::AppError;
use herald_server::media::store::{S3Storage, Storage};
use herald_server::media::{MediaConfig, MediaLibrary, http};
use object_store::ObjectStore;

use super::png;
use crate::harness::{MEDIA_HOST, TestApp};

const BUCKET: &str = "herald-media";

/// A moto S3 server on a loopback port, stopped when dropped.
struct Moto {
    _child: tokio::process::Child,
    endpoint: String,
}

async fn start_moto() -> Moto {
    let program = std::env::var("HERALD_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let child = tokio::process::Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot run {program} ({err}): run the tests with scripts/test, which installs moto[server]")
        });
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if client.get(&endpoint).send().await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "moto_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created = client
        .put(format!("{endpoint}/{BUCKET}"))
        .send()
        .await
        .expect("create the bucket");
    assert!(created.status().is_success(), "{}", created.status());
    Moto {
        _child: child,
        endpoint,
    }
}

async fn objects(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    store
        .list(None)
        .map(|meta| meta.expect("list").location.to_string())
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_live_in_an_s3_bucket_in_parts_deduplicated_and_ranged() {
    let moto = start_moto().await;
    let app = TestApp::spawn().await;
    let config = MediaConfig {
        storage: Storage::S3(S3Storage {
            bucket: BUCKET.into(),
            endpoint: Some(moto.endpoint.clone()),
            region: "us-east-1".into(),
            access_key_id: Some("herald-test".into()),
            secret_access_key: Some("herald-test-secret".into()),
            path_style: true,
        }),
        max_bytes: 16 * 1024 * 1024,
        public_url: Some(MEDIA_HOST.into()),
        ..MediaConfig::default()
    };
    let store = herald_server::media::store::open(&config.storage).expect("S3 store");
    let library = MediaLibrary::new(
        app.services.db.clone(),
        app.services.worker_db.clone(),
        config,
        store.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = http::router(
        library.clone(),
        Arc::new(|_| Err(AppError::Unauthenticated("no uploads here".into()))),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let actor = Actor {
        user_id: "alice".into(),
        tenant_id: "user:alice".into(),
        roles: vec![],
        operator: false,
    };
    let upload = |bytes: Vec<u8>| {
        let library = library.clone();
        let actor = actor.clone();
        async move {
            let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = bytes
                .chunks(1024 * 1024)
                .map(|c| Ok(axum::body::Bytes::copy_from_slice(c)))
                .collect();
            herald_server::db::tenant::scope(
                "user:alice",
                library.upload(
                    &actor,
                    Some("big.png"),
                    None,
                    futures_util::stream::iter(chunks),
                ),
            )
            .await
        }
    };

    // Seven MiB: two parts of an S3 multipart upload.
    let mut bytes = png("s3");
    bytes.resize(7 * 1024 * 1024, 3);
    let stored = upload(bytes.clone()).await.expect("stored");
    assert!(!stored.deduplicated);
    assert_eq!(stored.file.content_type, "image/png");
    assert_eq!(stored.file.size, 7 * 1024 * 1024);
    assert_eq!(objects(&store).await.len(), 1);
    let again = upload(bytes.clone()).await.expect("stored");
    assert!(again.deduplicated);
    assert_eq!(again.file.id, stored.file.id);
    assert_eq!(objects(&store).await.len(), 1);

    // Refused bytes leave no object (the multipart upload is aborted).
    let refused = upload(vec![0x42; 2 * 1024 * 1024]).await;
    assert!(
        matches!(refused, Err(AppError::BadUserInput { ref field, .. }) if field == "file"),
        "{refused:?}"
    );
    assert_eq!(objects(&store).await.len(), 1);

    // Served from the bucket at the signed URL, whole and in ranges.
    let url = library
        .urls()
        .url(stored.file.id, chrono::Utc::now())
        .replacen(MEDIA_HOST, &base, 1);
    let client = reqwest::Client::new();
    let whole = client.get(&url).send().await.expect("get");
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(
        whole.headers()["content-length"],
        (7 * 1024 * 1024).to_string().as_str()
    );
    assert_eq!(
        whole.bytes().await.expect("body").as_ref(),
        bytes.as_slice()
    );
    let range = client
        .get(&url)
        .header("range", "bytes=5242870-5242889")
        .send()
        .await
        .expect("get");
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        range.bytes().await.expect("body").as_ref(),
        &bytes[5_242_870..5_242_890],
        "a range across the parts' boundary"
    );

    // Deleting the file deletes the object.
    herald_server::db::tenant::scope("user:alice", library.delete(&actor, stored.file.id))
        .await
        .expect("delete");
    assert!(objects(&store).await.is_empty());
    drop(moto);
}
