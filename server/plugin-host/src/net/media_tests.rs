//! Media fetches read in chunks under the cap: a file over the cap is refused as soon as
//! the cap is passed (an endless body is not read to its end), or at once when its
//! declared length says so.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::routing::get;

use super::*;

const CAP: u64 = 1 << 20;

async fn fake() -> String {
    let endless = || async {
        let chunk = Bytes::from(vec![7_u8; 16 << 10]);
        let stream = futures_util::stream::repeat(chunk).map(Ok::<_, std::convert::Infallible>);
        (
            [(header::CONTENT_TYPE, "image/png")],
            Body::from_stream(stream),
        )
    };
    let declared = || async {
        (
            [
                (header::CONTENT_TYPE, "image/png".to_owned()),
                (header::CONTENT_LENGTH, (CAP + 1).to_string()),
            ],
            // A stream that never ends, so the declared length stands and only the
            // headers can tell.
            Body::from_stream(
                futures_util::stream::once(async {
                    Ok::<_, std::convert::Infallible>(Bytes::from_static(&[1; 16]))
                })
                .chain(futures_util::stream::pending()),
            ),
        )
    };
    let fits = || async {
        (
            [(header::CONTENT_TYPE, "image/png")],
            vec![3_u8; CAP as usize],
        )
    };
    let app = Router::new()
        .route("/endless", get(endless))
        .route("/declared", get(declared))
        .route("/fits", get(fits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn media_over_the_cap_is_refused_while_it_streams_in() {
    let base = fake().await;
    let overrides = HashMap::from([("media.test".to_owned(), base)]);
    let net = Net::new(
        Duration::from_secs(10),
        CAP,
        CAP,
        3,
        &overrides,
        AddressPolicy::public_only(),
    )
    .expect("client");
    let endless = net
        .fetch_media("https://media.test/endless", "image/png")
        .await;
    assert_eq!(endless.map(|_| ()), Err(MediaFetchError::TooLarge(CAP)));
    let declared = net
        .fetch_media("https://media.test/declared", "image/png")
        .await;
    assert_eq!(
        declared.map(|_| ()),
        Err(MediaFetchError::TooLarge(CAP + 1))
    );
    let (bytes, _) = net
        .fetch_media("https://media.test/fits", "image/png")
        .await
        .expect("a file of the cap's size");
    assert_eq!(bytes.len() as u64, CAP);
}
