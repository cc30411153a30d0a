//! Herald publisher plugin for Bluesky: posts (`app.bsky.feed.post` records) with link,
//! mention and hashtag facets and up to four images with alt text, written to the account's
//! PDS over XRPC.
//!
//! Credentials: `access_token` is the app password when an account is connected (with
//! `extra` `identifier` = handle or email, and `service` = the PDS's base URL, default
//! `https://bsky.social`). Publishing needs a session, so the first publish answers
//! auth-expired and Herald calls `refresh-token`, which signs in (`createSession`) and
//! returns the session's tokens, keeping the app password in `extra.app_password`; later
//! refreshes use `refreshSession` and fall back to signing in again.
//!
//! Each post's record key is derived from Herald's idempotency key, so a retry after a lost
//! answer finds the record already written and reads it back instead of posting twice.

mod facets;
mod record_key;
mod xrpc;

use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, Media, MediaLimit, PluginInfo, Post,
    PublishError, PublishRequest, Publisher, Receipt, Violation, log, media, register_publisher,
    time, validate_limits,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::facets::{SpanKind, is_handle};
use crate::record_key::rkey_for;
use crate::xrpc::{Pds, Session, error, error_name, parse};

/// The PDS of accounts that do not name one.
const DEFAULT_SERVICE: &str = "https://bsky.social";
/// The collection posts are written to.
const POSTS: &str = "app.bsky.feed.post";
/// Largest image the app view accepts in a post.
const MAX_IMAGE_BYTES: u64 = 1_000_000;
/// Most languages a post may declare.
const MAX_LANGS: usize = 3;

/// The Bluesky platform.
pub struct Bluesky;

#[derive(Deserialize)]
struct Created {
    uri: String,
}

#[derive(Deserialize)]
struct Found {
    uri: String,
}

#[derive(Deserialize)]
struct Uploaded {
    blob: Value,
}

#[derive(Deserialize)]
struct Resolved {
    did: String,
}

#[derive(Deserialize)]
struct Me {
    did: String,
    handle: String,
}

/// The account's PDS base URL, without a trailing slash.
fn service(credentials: &Credentials) -> Result<String, PublishError> {
    let service = credentials
        .extra_value("service")
        .unwrap_or(DEFAULT_SERVICE)
        .trim_end_matches('/');
    if !service.starts_with("https://") {
        return Err(PublishError::Permanent(format!(
            "the account's service must be an https:// URL, not {service}"
        )));
    }
    Ok(service.to_owned())
}

/// Whether `token` is a session JWT rather than an app password.
fn is_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.matches('.').count() == 2
}

/// The repository to write to: the account's DID when known, else its handle or email.
fn repo(credentials: &Credentials) -> Result<String, PublishError> {
    credentials
        .extra_value("did")
        .or_else(|| credentials.extra_value("identifier"))
        .map(str::to_owned)
        .ok_or_else(|| {
            PublishError::Permanent(
                "the credentials name no account: add `identifier` (handle) to extra".into(),
            )
        })
}

/// The post's receipt: its at:// URI and its page on bsky.app (by handle when known).
fn receipt(credentials: &Credentials, uri: String) -> Receipt {
    let rkey = uri.rsplit('/').next().unwrap_or_default().to_owned();
    let did = uri
        .strip_prefix("at://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let profile = credentials
        .extra_value("handle")
        .or_else(|| {
            credentials
                .extra_value("identifier")
                .filter(|id| is_handle(id))
        })
        .unwrap_or(did);
    Receipt {
        url: format!("https://bsky.app/profile/{profile}/post/{rkey}"),
        platform_post_id: uri,
    }
}

/// The record at `rkey` in the account's posts, if there is one: its at:// URI.
fn find_post(pds: &Pds<'_>, repo: &str, rkey: &str) -> Result<Option<String>, PublishError> {
    let response = pds.query(
        "com.atproto.repo.getRecord",
        &[("repo", repo), ("collection", POSTS), ("rkey", rkey)],
        None,
    )?;
    if response.status == 400 && error_name(&response) == "RecordNotFound" {
        return Ok(None);
    }
    parse::<Found>(response).map(|found| Some(found.uri))
}

/// `app.bsky.richtext.facet`s of `text`; mentions of handles the PDS cannot resolve stay
/// plain text.
fn facets(pds: &Pds<'_>, text: &str) -> Result<Vec<Value>, PublishError> {
    let mut facets = Vec::new();
    for span in facets::detect(text) {
        let feature = match span.kind {
            SpanKind::Link(uri) => json!({"$type": "app.bsky.richtext.facet#link", "uri": uri}),
            SpanKind::Tag(tag) => json!({"$type": "app.bsky.richtext.facet#tag", "tag": tag}),
            SpanKind::Mention(handle) => {
                let response = pds.query(
                    "com.atproto.identity.resolveHandle",
                    &[("handle", &handle)],
                    None,
                )?;
                if response.status == 400 {
                    log::info(&format!("@{handle} does not resolve; left as text"));
                    continue;
                }
                let resolved: Resolved = parse(response)?;
                json!({"$type": "app.bsky.richtext.facet#mention", "did": resolved.did})
            }
        };
        facets.push(json!({
            "index": {"byteStart": span.start, "byteEnd": span.end},
            "features": [feature],
        }));
    }
    Ok(facets)
}

fn too_large(index: usize, size: u64) -> Violation {
    Violation {
        field: format!("media[{index}]"),
        code: "media_too_large".into(),
        message: format!("{size} bytes, the limit for an image is {MAX_IMAGE_BYTES}"),
    }
}

/// Uploads the post's images and returns their `app.bsky.embed.images` embed.
fn images(pds: &Pds<'_>, post_media: &[Media], token: &str) -> Result<Option<Value>, PublishError> {
    if post_media.is_empty() {
        return Ok(None);
    }
    let mut images = Vec::new();
    for (index, item) in post_media.iter().enumerate() {
        let at =
            u32::try_from(index).map_err(|_| PublishError::Permanent("too many media".into()))?;
        let info = media::open(at)?;
        if info.size > MAX_IMAGE_BYTES {
            return Err(PublishError::Validation(vec![too_large(index, info.size)]));
        }
        let uploaded: Uploaded =
            parse(pds.upload("com.atproto.repo.uploadBlob", at, &info.mime_type, token)?)?;
        images.push(json!({
            "alt": item.alt.clone().unwrap_or_default(),
            "image": uploaded.blob,
        }));
    }
    Ok(Some(
        json!({"$type": "app.bsky.embed.images", "images": images}),
    ))
}

/// The `langs` option: comma-separated BCP-47 tags (`en`, `pt-BR`).
fn langs(post: &Post) -> Vec<String> {
    post.options
        .iter()
        .filter(|(key, _)| key == "langs")
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|lang| !lang.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn sign_in(pds: &Pds<'_>, identifier: &str, password: &str) -> Result<Session, PublishError> {
    parse(pds.procedure(
        "com.atproto.server.createSession",
        &json!({"identifier": identifier, "password": password}),
        None,
    )?)
}

fn identifier(credentials: &Credentials) -> Result<&str, PublishError> {
    credentials
        .extra_value("identifier")
        .or_else(|| credentials.extra_value("handle"))
        .ok_or_else(|| {
            PublishError::Permanent(
                "the credentials need an `identifier` (handle or email) in extra".into(),
            )
        })
}

/// The `exp` claim (Unix seconds) of a JWT, when it has one; the signature is the PDS's
/// business, the expiry only tells Herald when the token stops working.
fn jwt_expiry(token: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<i64>,
    }
    let payload = token.split('.').nth(1)?;
    let claims: Claims = serde_json::from_slice(&base64url_decode(payload)?).ok()?;
    claims.exp
}

/// Decodes unpadded base64url; `None` on a character outside its alphabet.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0_u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(bytes)
}

/// The session as credentials Herald stores: tokens, and in `extra` everything needed to
/// sign in again (service, identifier, app password) plus the account's DID and handle.
fn session_credentials(
    old: &Credentials,
    session: Session,
    app_password: Option<&str>,
) -> Credentials {
    let mut extra: Vec<(String, String)> = old
        .extra
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "did" | "handle" | "app_password"))
        .cloned()
        .collect();
    extra.push(("did".into(), session.did));
    extra.push(("handle".into(), session.handle));
    if let Some(password) = app_password {
        extra.push(("app_password".into(), password.to_owned()));
    }
    Credentials {
        expires_at: jwt_expiry(&session.access_jwt),
        access_token: session.access_jwt,
        refresh_token: Some(session.refresh_jwt),
        extra,
    }
}

impl Publisher for Bluesky {
    fn info() -> PluginInfo {
        let image = |mime: &str| MediaLimit {
            mime_type: mime.into(),
            max_bytes: MAX_IMAGE_BYTES,
        };
        PluginInfo {
            platform: "bluesky".into(),
            display_name: "Bluesky".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: 300,
                counting: LengthCounting::Graphemes,
                max_media: 4,
                media: vec![
                    image("image/jpeg"),
                    image("image/png"),
                    image("image/webp"),
                    image("image/gif"),
                ],
            },
            idempotent_publish: true,
        }
    }

    fn validate(post: Post) -> Vec<Violation> {
        let mut violations = validate_limits(&Self::info().limits, &post);
        let langs = langs(&post);
        if langs.len() > MAX_LANGS {
            violations.push(Violation {
                field: "options.langs".into(),
                code: "too_many_langs".into(),
                message: format!("{} languages, a post may declare {MAX_LANGS}", langs.len()),
            });
        }
        if let Some(bad) = langs.iter().find(|lang| !is_language_tag(lang)) {
            violations.push(Violation {
                field: "options.langs".into(),
                code: "invalid_lang".into(),
                message: format!("{bad} is not a language tag (e.g. en, pt-BR)"),
            });
        }
        violations
    }

    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        let violations = Self::validate(request.post.clone());
        if !violations.is_empty() {
            return Err(PublishError::Validation(violations));
        }
        let credentials = &request.credentials;
        let token = credentials.access_token.as_str();
        if !is_jwt(token) {
            return Err(PublishError::AuthExpired(
                "no session with the PDS yet: sign in with the app password".into(),
            ));
        }
        let service = service(credentials)?;
        let pds = Pds { service: &service };
        let repo = repo(credentials)?;
        let rkey = rkey_for(&request.idempotency_key);
        let post = &request.post;

        let mut record = json!({
            "$type": POSTS,
            "text": post.text,
            "createdAt": time::now_rfc3339(),
        });
        let facets = facets(&pds, &post.text)?;
        if !facets.is_empty() {
            record["facets"] = Value::from(facets);
        }
        if let Some(embed) = images(&pds, &post.media, token)? {
            record["embed"] = embed;
        }
        let langs = langs(post);
        if !langs.is_empty() {
            record["langs"] = json!(langs);
        }

        let response = pds.procedure(
            "com.atproto.repo.createRecord",
            &json!({"repo": repo, "collection": POSTS, "rkey": rkey, "record": record}),
            Some(token),
        )?;
        if response.is_success() {
            let created: Created = response.json()?;
            return Ok(receipt(credentials, created.uri));
        }
        let failure = error(&response);
        // A retry after a lost answer writes to a key that is taken: the PDS refuses
        // (InvalidSwap, or a 500 from its tree), and the record there is this post.
        if (matches!(failure, PublishError::Retryable(_)) || error_name(&response) == "InvalidSwap")
            && let Some(uri) = find_post(&pds, &repo, &rkey).unwrap_or_else(|lookup| {
                // The write's own failure is the answer; the lookup's is only logged.
                log::warn(&format!(
                    "looking for {rkey} after a failed write: {lookup:?}"
                ));
                None
            })
        {
            log::info(&format!("{uri} was already written by an earlier attempt"));
            return Ok(receipt(credentials, uri));
        }
        Err(failure)
    }

    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let service = service(&credentials)?;
        let pds = Pds { service: &service };
        let (did, handle) = if is_jwt(&credentials.access_token) {
            let me: Me = parse(pds.query(
                "com.atproto.server.getSession",
                &[],
                Some(&credentials.access_token),
            )?)?;
            (me.did, me.handle)
        } else {
            let session = sign_in(&pds, identifier(&credentials)?, &credentials.access_token)?;
            (session.did, session.handle)
        };
        Ok(Account {
            id: did,
            handle,
            display_name: None,
        })
    }

    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        let service = service(&credentials)?;
        let pds = Pds { service: &service };
        let app_password = credentials
            .extra_value("app_password")
            .or_else(|| Some(credentials.access_token.as_str()).filter(|token| !is_jwt(token)))
            .map(str::to_owned);
        if let Some(refresh) = credentials.refresh_token.as_deref().filter(|t| is_jwt(t)) {
            match parse::<Session>(
                pds.procedure_without_input("com.atproto.server.refreshSession", Some(refresh))?,
            ) {
                Ok(session) => {
                    return Ok(session_credentials(
                        &credentials,
                        session,
                        app_password.as_deref(),
                    ));
                }
                Err(PublishError::AuthExpired(message) | PublishError::Permanent(message)) => {
                    log::info(&format!(
                        "refreshing the session failed ({message}); signing in again"
                    ));
                }
                Err(other) => return Err(other),
            }
        }
        let Some(password) = app_password else {
            return Err(PublishError::AuthExpired(
                "the session expired and no app password is stored: reconnect the account".into(),
            ));
        };
        let session =
            sign_in(&pds, identifier(&credentials)?, &password).map_err(
                |failure| match failure {
                    PublishError::AuthExpired(message) => PublishError::AuthExpired(format!(
                        "the PDS refused the app password ({message}): reconnect the account"
                    )),
                    other => other,
                },
            )?;
        Ok(session_credentials(&credentials, session, Some(&password)))
    }

    fn lookup(
        idempotency_key: String,
        credentials: Credentials,
    ) -> Result<Option<Receipt>, PublishError> {
        let service = service(&credentials)?;
        let pds = Pds { service: &service };
        let found = find_post(&pds, &repo(&credentials)?, &rkey_for(&idempotency_key))?;
        Ok(found.map(|uri| receipt(&credentials, uri)))
    }
}

register_publisher!(Bluesky);

#[cfg(test)]
mod tests {
    use super::*;

    fn post(text: &str, media: Vec<Media>, options: &[(&str, &str)]) -> Post {
        Post {
            text: text.into(),
            media,
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn image(size: u64) -> Media {
        Media {
            url: "https://media.test/a.png".into(),
            mime_type: "image/png".into(),
            alt: Some("a cat".into()),
            size: Some(size),
            width: None,
            height: None,
            duration_ms: None,
        }
    }

    fn fields(violations: Vec<Violation>) -> Vec<(String, String)> {
        violations.into_iter().map(|v| (v.field, v.code)).collect()
    }

    #[test]
    fn validate_counts_graphemes_images_and_their_size() {
        let family = "👨‍👩‍👧";
        assert_eq!(
            fields(Bluesky::validate(post(&family.repeat(300), vec![], &[]))),
            vec![]
        );
        assert_eq!(
            fields(Bluesky::validate(post(&family.repeat(301), vec![], &[]))),
            vec![("text".into(), "too_long".into())]
        );
        assert_eq!(
            fields(Bluesky::validate(post(
                "hi",
                vec![image(1_000_000); 4],
                &[]
            ))),
            vec![]
        );
        assert_eq!(
            fields(Bluesky::validate(post("hi", vec![image(1_000_001)], &[]))),
            vec![("media[0]".into(), "media_too_large".into())]
        );
        assert_eq!(
            fields(Bluesky::validate(post("hi", vec![image(10); 5], &[]))),
            vec![("media".into(), "too_many_media".into())]
        );
    }

    #[test]
    fn validate_checks_the_langs_option() {
        assert_eq!(
            fields(Bluesky::validate(post(
                "hi",
                vec![],
                &[("langs", "en, pt-BR")]
            ))),
            vec![]
        );
        assert_eq!(
            fields(Bluesky::validate(post(
                "hi",
                vec![],
                &[("langs", "en,de,fr,it")]
            ))),
            vec![("options.langs".into(), "too_many_langs".into())]
        );
        assert_eq!(
            fields(Bluesky::validate(post(
                "hi",
                vec![],
                &[("langs", "english!")]
            ))),
            vec![("options.langs".into(), "invalid_lang".into())]
        );
    }

    fn credentials(extra: &[(&str, &str)]) -> Credentials {
        Credentials {
            access_token: "eyJ0.eyJ1.sig".into(),
            refresh_token: None,
            expires_at: None,
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn receipts_link_to_the_post_on_bsky_app() {
        let uri = "at://did:plc:abc/app.bsky.feed.post/3kabcdefghij2".to_owned();
        let by_handle = receipt(&credentials(&[("handle", "alice.test")]), uri.clone());
        assert_eq!(by_handle.platform_post_id, uri);
        assert_eq!(
            by_handle.url,
            "https://bsky.app/profile/alice.test/post/3kabcdefghij2"
        );
        let by_did = receipt(&credentials(&[("identifier", "alice@mail.test")]), uri);
        assert_eq!(
            by_did.url,
            "https://bsky.app/profile/did:plc:abc/post/3kabcdefghij2"
        );
    }

    #[test]
    fn jwt_expiry_reads_the_exp_claim() {
        // {"alg":"HS256"} . {"scope":"com.atproto.appPass","exp":1795919400} . signature
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6ImNvbS5hdHByb3RvLmFwcFBhc3MiLCJleHAiOjE3OTU5MTk0MDB9.c2ln";
        assert_eq!(jwt_expiry(token), Some(1_795_919_400));
        assert_eq!(jwt_expiry("eyJhbGciOiJIUzI1NiJ9.e30.c2ln"), None);
        assert_eq!(jwt_expiry("eyJ.!!.x"), None);
        assert_eq!(
            base64url_decode("aGk_-w"),
            Some(vec![b'h', b'i', 0x3f, 0xfb])
        );
    }

    #[test]
    fn session_credentials_keep_what_signing_in_again_needs() {
        let old = credentials(&[
            ("service", "https://pds.test"),
            ("identifier", "alice.test"),
            ("did", "stale"),
        ]);
        let session = Session {
            access_jwt: "eyJa.b.c".into(),
            refresh_jwt: "eyJr.b.c".into(),
            did: "did:plc:abc".into(),
            handle: "alice.test".into(),
        };
        let fresh = session_credentials(&old, session, Some("abcd-efgh-ijkl-mnop"));
        assert_eq!(fresh.access_token, "eyJa.b.c");
        assert_eq!(fresh.refresh_token.as_deref(), Some("eyJr.b.c"));
        assert_eq!(fresh.extra_value("service"), Some("https://pds.test"));
        assert_eq!(fresh.extra_value("identifier"), Some("alice.test"));
        assert_eq!(fresh.extra_value("did"), Some("did:plc:abc"));
        assert_eq!(
            fresh.extra_value("app_password"),
            Some("abcd-efgh-ijkl-mnop")
        );
        assert!(!is_jwt("abcd-efgh-ijkl-mnop"));
        assert!(is_jwt(&fresh.access_token));
    }
}
