//! The address policy end to end: a loopback fake stands for an allowed platform (reached
//! through a test override, as the API tests do) and redirects to private addresses.

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::*;

/// Serves `/to?location=…` (a 302 there) and `/ok`; returns its base URL and a port
/// that is open on loopback.
async fn redirecting_fake() -> (String, u16) {
    async fn to(Query(query): Query<HashMap<String, String>>) -> impl IntoResponse {
        let location = query.get("location").cloned().unwrap_or_default();
        (StatusCode::FOUND, [(header::LOCATION, location)])
    }
    let app = Router::new().route("/to", get(to)).route(
        "/ok",
        get(|| async { ([(header::CONTENT_TYPE, "image/png")], "ok") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{port}"), port)
}

fn net(overrides: &[(&str, &str)]) -> Net {
    let overrides = overrides
        .iter()
        .map(|(host, base)| ((*host).to_owned(), (*base).to_owned()))
        .collect();
    Net::new(
        Duration::from_secs(5),
        1 << 20,
        1 << 20,
        3,
        &overrides,
        AddressPolicy::public_only(),
    )
    .expect("client")
}

fn get_request(url: &str) -> Request {
    Request {
        method: Method::Get,
        url: url.to_owned(),
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

fn denied<T: std::fmt::Debug>(what: &str, result: Result<T, FetchError>) {
    match result {
        Err(FetchError::Denied(message)) => assert_eq!(message, address::DENIED, "{what}"),
        other => panic!("{what}: {other:?}"),
    }
}

/// Each destination is refused with the same words, an open loopback port included.
#[tokio::test]
async fn private_destinations_are_refused_alike() {
    let (_, open_port) = redirecting_fake().await;
    let net = net(&[]);
    for url in [
        "https://10.0.0.5/".to_owned(),
        "https://127.0.0.1:22/".to_owned(),
        format!("https://127.0.0.1:{open_port}/ok"),
        "https://[::ffff:127.0.0.1]/".to_owned(),
        "https://localhost/".to_owned(),
        format!("https://localhost:{open_port}/ok"),
    ] {
        let parsed = Url::parse(&url).expect("url");
        let allowed = [authority(&parsed).expect("authority")];
        denied(&url, net.fetch("p", &allowed, get_request(&url)).await);
    }
    for url in [
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "https://10.0.0.5/".to_owned(),
        format!("http://127.0.0.1:{open_port}/ok"),
        format!("http://localhost:{open_port}/ok"),
    ] {
        let fetched = net.fetch_media(&url, "").await;
        assert_eq!(
            fetched.map(|_| ()),
            Err(MediaFetchError::Denied(address::DENIED.into())),
            "{url}"
        );
    }
}

/// A redirect is checked like the first hop: an allowed platform cannot send the host
/// to a private address, neither for a plugin request nor for a media fetch.
#[tokio::test]
async fn redirects_to_private_addresses_are_refused() {
    let (base, open_port) = redirecting_fake().await;
    let net = net(&[("platform.test", &base), ("media.test", &base)]);
    let allowed = ["platform.test:443".to_owned()];
    let fine = net
        .fetch("p", &allowed, get_request("https://platform.test/ok"))
        .await
        .expect("the fake itself is reachable");
    assert_eq!(fine.body, b"ok");
    for location in [
        "https://10.0.0.5/".to_owned(),
        "https://127.0.0.1:22/".to_owned(),
        format!("https://127.0.0.1:{open_port}/ok"),
        "https://[::ffff:127.0.0.1]/".to_owned(),
        "https://[64:ff9b::a00:5]/".to_owned(),
    ] {
        let url = format!("https://platform.test/to?location={location}");
        let parsed = Url::parse(&location).expect("url");
        // Even with the target in the allow-list: the policy holds regardless.
        let allowed = [
            "platform.test:443".to_owned(),
            authority(&parsed).expect("authority"),
        ];
        denied(&location, net.fetch("p", &allowed, get_request(&url)).await);
        let media = format!("https://media.test/to?location={location}");
        assert_eq!(
            net.fetch_media(&media, "").await.map(|_| ()),
            Err(MediaFetchError::Denied(address::DENIED.into())),
            "{location}"
        );
    }
    let (bytes, mime) = net
        .fetch_media("https://media.test/to?location=/ok", "")
        .await
        .expect("a redirect within the allowed fake is followed");
    assert_eq!((&bytes[..], mime.as_str()), (&b"ok"[..], "image/png"));
}
