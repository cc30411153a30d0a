//! Bearer-token authentication: missing, expired, not-yet-valid, forged, `alg: none`,
//! algorithm confusion, issuer and audience, and RS256 and EdDSA public keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_server::auth::Claims;
use herald_server::config::{JwtConfig, JwtKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::harness::{OPERATOR, SECRET, TestApp, assert_error};

const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIL9qQiWE1eVU1AFfLuXKuD8q7TsTvSmIQyLF0WNFj9Ia
-----END PRIVATE KEY-----
";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAYlZceclQ2/fQ1h9hDgjMuquKw/W05oGbzy6SPkHcpzk=
-----END PUBLIC KEY-----
";

fn claims(sub: &str, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: sub.into(),
        org: None,
        roles: vec![],
        exp: now + exp_offset,
        nbf: None,
        iat: Some(now),
        iss: None,
        aud: None,
    }
}

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("sign")
}

fn hs256(secret: &[u8], claims: &Claims) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(secret), claims)
}

async fn me_with_header(app: &TestApp, header: Option<&str>) -> serde_json::Value {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/graphql", app.base))
        .json(&json!({"query": "{ me { userId } }"}));
    if let Some(header) = header {
        request = request.header("authorization", header);
    }
    request
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

async fn me(app: &TestApp, token: &str) -> serde_json::Value {
    me_with_header(app, Some(&format!("Bearer {token}"))).await
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let body = me_with_header(&app, None).await;
    assert_error(&body, "UNAUTHENTICATED", None);
    let body = me_with_header(&app, Some("Token abc")).await;
    assert_error(&body, "UNAUTHENTICATED", None);

    let expired = hs256(SECRET.as_bytes(), &claims("alice", -3600));
    let body = me(&app, &expired).await;
    assert_error(&body, "UNAUTHENTICATED", None);
    assert_eq!(body["errors"][0]["message"], "token expired");

    let mut early = claims("alice", 3600);
    early.nbf = Some(chrono::Utc::now().timestamp() + 600);
    assert_error(
        &me(&app, &hs256(SECRET.as_bytes(), &early)).await,
        "UNAUTHENTICATED",
        None,
    );

    let forged = hs256(
        b"another-secret-another-secret-another-secret",
        &claims("alice", 3600),
    );
    let body = me(&app, &forged).await;
    assert_error(&body, "UNAUTHENTICATED", None);
    assert_eq!(body["errors"][0]["message"], "invalid token");

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("alice", 3600)).expect("json"));
    assert_error(
        &me(&app, &format!("{header}.{payload}.")).await,
        "UNAUTHENTICATED",
        None,
    );

    // Mutations are refused the same way, and nothing is written.
    let body = app
        .gql(
            None,
            "mutation { createPost(input: {content: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_error(&body, "UNAUTHENTICATED", None);
    let valid = app.token("alice", None, &[]);
    let listed = app
        .ok(&valid, "{ posts { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(listed["posts"]["edges"], json!([]));

    let body = me(&app, &valid).await;
    assert_eq!(body["data"]["me"]["userId"], "alice");
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_configured() {
    let app = TestApp::spawn_with(JwtConfig {
        key: JwtKey::Secret(SECRET.as_bytes().to_vec()),
        issuer: Some("https://auth.example.com".into()),
        audience: Some("herald".into()),
        operators: vec![OPERATOR.into()],
    })
    .await;
    let good = app.token("alice", None, &[]);
    assert_eq!(me(&app, &good).await["data"]["me"]["userId"], "alice");

    let mut wrong_aud = claims("alice", 3600);
    wrong_aud.iss = Some("https://auth.example.com".into());
    wrong_aud.aud = Some("someone-else".into());
    assert_error(
        &me(&app, &hs256(SECRET.as_bytes(), &wrong_aud)).await,
        "UNAUTHENTICATED",
        None,
    );

    let mut wrong_iss = claims("alice", 3600);
    wrong_iss.iss = Some("https://evil.example.com".into());
    wrong_iss.aud = Some("herald".into());
    assert_error(
        &me(&app, &hs256(SECRET.as_bytes(), &wrong_iss)).await,
        "UNAUTHENTICATED",
        None,
    );

    let missing = claims("alice", 3600);
    assert_error(
        &me(&app, &hs256(SECRET.as_bytes(), &missing)).await,
        "UNAUTHENTICATED",
        None,
    );
}

#[tokio::test]
async fn eddsa_public_key_and_no_algorithm_confusion() {
    let app = TestApp::spawn_with(JwtConfig {
        key: JwtKey::PublicKeyPem(ED_PUBLIC.into()),
        issuer: None,
        audience: None,
        operators: vec![OPERATOR.into()],
    })
    .await;
    let key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("ed key");
    let good = sign(Algorithm::EdDSA, &key, &claims("erin", 3600));
    assert_eq!(me(&app, &good).await["data"]["me"]["userId"], "erin");

    // HS256 signed with the public key as the secret must not pass.
    let confused = hs256(ED_PUBLIC.as_bytes(), &claims("erin", 3600));
    assert_error(&me(&app, &confused).await, "UNAUTHENTICATED", None);
}

/// Test-only RSA keys (server/tests/keys/README.md).
const RS_PRIVATE: &str = include_str!("../keys/rs256-test.key.pem");
const RS_PUBLIC: &str = include_str!("../keys/rs256-test.pub.pem");
const RS_OTHER_PRIVATE: &str = include_str!("../keys/rs256-other.key.pem");

#[tokio::test]
async fn rs256_public_key_and_no_algorithm_confusion() {
    let app = TestApp::spawn_with(JwtConfig {
        key: JwtKey::PublicKeyPem(RS_PUBLIC.into()),
        issuer: None,
        audience: None,
        operators: vec![OPERATOR.into()],
    })
    .await;
    let key = EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).expect("rsa key");
    let good = sign(Algorithm::RS256, &key, &claims("rosa", 3600));
    assert_eq!(me(&app, &good).await["data"]["me"]["userId"], "rosa");

    // Expired, signed by another RSA key, or with the signature of another token: refused.
    let expired = sign(Algorithm::RS256, &key, &claims("rosa", -3600));
    assert_error(&me(&app, &expired).await, "UNAUTHENTICATED", None);
    let other = EncodingKey::from_rsa_pem(RS_OTHER_PRIVATE.as_bytes()).expect("other key");
    let forged = sign(Algorithm::RS256, &other, &claims("rosa", 3600));
    assert_error(&me(&app, &forged).await, "UNAUTHENTICATED", None);
    let mallory = sign(Algorithm::RS256, &key, &claims("mallory", 3600));
    let (head_and_claims, _) = mallory.rsplit_once('.').expect("jwt");
    let (_, signature) = good.rsplit_once('.').expect("jwt");
    let spliced = format!("{head_and_claims}.{signature}");
    assert_error(&me(&app, &spliced).await, "UNAUTHENTICATED", None);

    // HS256 signed with the public key as the secret must not pass.
    let confused = hs256(RS_PUBLIC.as_bytes(), &claims("rosa", 3600));
    assert_error(&me(&app, &confused).await, "UNAUTHENTICATED", None);
}
