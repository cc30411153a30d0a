//! GraphiQL, served entirely by Herald: the page and its assets (GraphiQL and React,
//! embedded gzipped; `scripts/vendor-graphiql` refreshes them), under a Content Security
//! Policy that allows nothing but this origin, so it works without internet access.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page; its script is `init.js` (no inline script, so the policy can forbid them).
const PAGE: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Herald GraphiQL</title>
    <link rel="stylesheet" href="/graphql/assets/graphiql.css">
    <style>body { margin: 0; } #graphiql { height: 100dvh; }</style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="/graphql/assets/react.js"></script>
    <script src="/graphql/assets/react-dom.js"></script>
    <script src="/graphql/assets/graphiql.js"></script>
    <script src="/graphql/assets/init.js"></script>
  </body>
</html>
"#;

/// Same-origin only; GraphiQL needs inline styles and data: fonts and images.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The GraphiQL page.
pub fn page() -> Response {
    let mut response = (StatusCode::OK, PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// One embedded asset: its bytes, media type and whether they are gzipped.
fn lookup(name: &str) -> Option<(&'static [u8], &'static str, bool)> {
    const JS: &str = "text/javascript; charset=utf-8";
    Some(match name {
        "graphiql.js" => (
            include_bytes!("../../../assets/graphiql/graphiql.js.gz").as_slice(),
            JS,
            true,
        ),
        "graphiql.css" => (
            include_bytes!("../../../assets/graphiql/graphiql.css.gz").as_slice(),
            "text/css; charset=utf-8",
            true,
        ),
        "react.js" => (
            include_bytes!("../../../assets/graphiql/react.js.gz").as_slice(),
            JS,
            true,
        ),
        "react-dom.js" => (
            include_bytes!("../../../assets/graphiql/react-dom.js.gz").as_slice(),
            JS,
            true,
        ),
        "init.js" => (
            include_bytes!("../../../assets/graphiql/init.js").as_slice(),
            JS,
            false,
        ),
        _ => return None,
    })
}

/// `GET /graphql/assets/{name}`: an embedded asset (gzip-encoded, which every browser
/// accepts), or 404.
pub fn asset(name: &str) -> Response {
    let Some((bytes, media_type, gzipped)) = lookup(name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    response
}
