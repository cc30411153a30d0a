//! GraphQL over HTTP, as the GraphQL-over-HTTP specification describes it.
//!
//! - Responses are `application/graphql-response+json` or `application/json`, chosen from
//!   `Accept` (absent or `*/*`: `application/json`); anything else is 406.
//! - A request that cannot run (unparsable document, validation or variable errors) has no
//!   `data`; it is 400 under `application/graphql-response+json` and 200 under
//!   `application/json`, as the specification asks.
//! - GET runs queries only (a mutation is 405 with `Allow: POST`); POST needs
//!   `Content-Type: application/json` (415 otherwise), so a cross-site form cannot mutate,
//!   or `multipart/form-data` with a bearer token (file uploads, [`super::multipart`]).
//! - Bodies are capped, batches are refused unless enabled, each request has a deadline.
//! - A caller over its rate limit ([`super::limits`]) gets 429 with `Retry-After`.
//!
//! Every error carries `extensions.code`.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{ServerError, Variables};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::compiled::{self, CompiledReads, Lookup};
use super::documents::DocumentCache;
use super::introspection;
use super::limits::{Caller, Limited, RateLimits};
use super::persisted::{self, PersistedQueries};
use crate::auth::JwtVerifier;
use crate::config::GraphqlConfig;
use crate::graphql::schema::{Auth, HeraldSchema};

/// The GraphQL-over-HTTP media type.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// The legacy JSON media type.
const APPLICATION_JSON: &str = "application/json";
/// Most requests accepted in one batch.
const MAX_BATCH: usize = 20;
/// Initial size of a response body's buffer.
pub(super) const RESPONSE_BUFFER_BYTES: usize = 16 * 1024;

/// What the GraphQL endpoints share: the schema, token verification and limits.
#[derive(Clone)]
pub struct Endpoint {
    /// The executable schema.
    pub schema: HeraldSchema,
    /// Verifies bearer tokens.
    pub verifier: Arc<JwtVerifier>,
    /// Registered persisted queries (APQ), when available.
    pub persisted: Option<PersistedQueries>,
    /// Limits and switches.
    pub config: GraphqlConfig,
    /// The running subscription executions, shared between WebSocket subscribers.
    pub subscriptions: super::fanout::Registry,
    /// Parsed documents by query text.
    pub documents: DocumentCache,
    /// Plans of `posts` pages answered by one SQL statement.
    pub reads: CompiledReads,
    /// Requests and expensive mutations per caller.
    pub limits: RateLimits,
    /// Largest file of a multipart request (the media library's cap).
    pub max_upload_bytes: u64,
}

/// The media type of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MediaType {
    GraphqlResponse,
    Json,
}

impl MediaType {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }
}

/// Picks the response media type from `Accept`: the highest `q` among the two JSON types
/// (`application/*` and `*/*` mean `application/json`); on a tie the GraphQL one.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Some(MediaType::Json);
    };
    let accept = accept.to_str().ok()?;
    if accept.trim().is_empty() {
        return Some(MediaType::Json);
    }
    let mut best: Option<(f32, MediaType)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            .next_back()
            .unwrap_or(1.0);
        if quality <= 0.0 {
            continue;
        }
        let candidate = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => MediaType::GraphqlResponse,
            APPLICATION_JSON | "application/*" | "*/*" => MediaType::Json,
            _ => continue,
        };
        let better = match best {
            None => true,
            Some((q, chosen)) => {
                quality > q
                    || (quality == q
                        && candidate == MediaType::GraphqlResponse
                        && chosen != MediaType::GraphqlResponse)
            }
        };
        if better {
            best = Some((quality, candidate));
        }
    }
    best.map(|(_, media)| media)
}

/// A JSON response with the negotiated content type.
fn json_response(status: StatusCode, media: MediaType, body: &Value) -> Response {
    serialized_response(status, media, body.to_string().into_bytes())
}

/// A response whose body is JSON already serialised.
fn serialized_response(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    response
}

/// A request refused before execution: `{"errors": [{message, extensions.code}]}`.
pub(super) fn refuse(status: StatusCode, media: MediaType, code: &str, message: &str) -> Response {
    json_response(
        status,
        media,
        &json!({"errors": [{"message": message, "extensions": {"code": code}}]}),
    )
}

fn method_not_allowed(media: MediaType, allow: &'static str, message: &str) -> Response {
    let mut response = refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        media,
        "METHOD_NOT_ALLOWED",
        message,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// 429 with `Retry-After`, and the error that says which limit refused the request.
fn rate_limited(media: MediaType, limited: Limited) -> Response {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        media,
        &json!({ "errors": [limited.error()] }),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(limited.retry_after_secs),
    );
    response
}

/// The client's address, when the server was started with it (`ConnectInfo`).
pub(super) fn peer(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address)
}

fn not_acceptable() -> Response {
    refuse(
        StatusCode::NOT_ACCEPTABLE,
        MediaType::Json,
        "NOT_ACCEPTABLE",
        "Accept must allow application/graphql-response+json or application/json",
    )
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

pub(super) fn authenticate(verifier: &JwtVerifier, headers: &HeaderMap) -> Auth {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Auth(verifier.verify_header(header))
}

/// `GET /graphql`: GraphiQL for a browser without a query, otherwise a query from the URL.
pub async fn get(endpoint: &Endpoint, request: Request) -> Response {
    let query_string = request.uri().query().unwrap_or_default();
    let headers = request.headers();
    if wants_html(headers) && !query_string.split('&').any(|p| p.starts_with("query=")) {
        return super::graphiql::page();
    }
    let Some(media) = negotiate(headers) else {
        return not_acceptable();
    };
    let graphql = match async_graphql::http::parse_query_string(query_string) {
        Ok(request) => request,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                media,
                "BAD_REQUEST",
                &format!("malformed query string: {err}"),
            );
        }
    };
    let auth = authenticate(&endpoint.verifier, headers);
    let caller = endpoint
        .limits
        .caller(auth.0.as_ref().ok(), headers, peer(request.extensions()));
    execute(endpoint, media, graphql, auth, caller, QueriesOnly(true)).await
}

/// `POST /graphql`: a JSON request (or a batch, when enabled).
pub async fn post(endpoint: &Endpoint, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(media) = negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if super::multipart::is_multipart(&content_type) {
        return super::multipart::post(endpoint, media, parts, Body::new(body), &content_type)
            .await;
    }
    if !is_json_content(&parts.headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json (or multipart/form-data for uploads)",
        );
    }
    let bytes = match axum::body::to_bytes(Body::new(body), endpoint.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                media,
                "PAYLOAD_TOO_LARGE",
                &format!(
                    "the request body exceeds {} bytes",
                    endpoint.config.max_body_bytes
                ),
            );
        }
    };
    if bytes.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            media,
            "BAD_REQUEST",
            "the request body is empty",
        );
    }
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                media,
                "BAD_REQUEST",
                &format!("the request body is not JSON: {err}"),
            );
        }
    };
    match body {
        Value::Array(items) => {
            if !endpoint.config.batching {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    "batched requests are disabled",
                );
            }
            if items.is_empty() || items.len() > MAX_BATCH {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    &format!("a batch holds 1 to {MAX_BATCH} requests"),
                );
            }
            let mut requests = Vec::with_capacity(items.len());
            for item in items {
                match parameters(item) {
                    Ok(request) => requests.push(request),
                    Err(message) => {
                        return refuse(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", &message);
                    }
                }
            }
            execute_batch(endpoint, media, requests, &parts).await
        }
        other => match parameters(other) {
            Ok(request) => {
                let auth = authenticate(&endpoint.verifier, &parts.headers);
                let caller = endpoint.limits.caller(
                    auth.0.as_ref().ok(),
                    &parts.headers,
                    peer(&parts.extensions),
                );
                execute(endpoint, media, request, auth, caller, QueriesOnly(false)).await
            }
            Err(message) => refuse(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", &message),
        },
    }
}

/// Whether `Content-Type` is `application/json` (in UTF-8, the only charset allowed).
fn is_json_content(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case(APPLICATION_JSON)
        && parts.all(|p| {
            p.trim()
                .strip_prefix("charset=")
                .is_none_or(|charset| charset.trim_matches('"').eq_ignore_ascii_case("utf-8"))
        })
}

/// The request parameters of a JSON body: `query` (string, required), `operationName`
/// (string), `variables` and `extensions` (objects); absent and null are the same.
pub(crate) fn parameters(body: Value) -> Result<async_graphql::Request, String> {
    let Value::Object(mut body) = body else {
        return Err("the request body must be a JSON object".into());
    };
    let persisted_query = body
        .get("extensions")
        .and_then(|e| e.get("persistedQuery"))
        .is_some();
    let query = match body.remove("query") {
        Some(Value::String(query)) => query,
        // An APQ request may name its query by hash only.
        Some(Value::Null) | None if persisted_query => String::new(),
        Some(Value::Null) | None => return Err("the `query` parameter is missing".into()),
        Some(_) => return Err("the `query` parameter must be a string".into()),
    };
    let mut request = async_graphql::Request::new(query);
    match body.remove("operationName") {
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(Value::Null) | None => {}
        Some(_) => return Err("the `operationName` parameter must be a string".into()),
    }
    if let Some(variables) = object_parameter(&mut body, "variables")? {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    if let Some(extensions) = object_parameter(&mut body, "extensions")? {
        request.extensions = serde_json::from_value(Value::Object(extensions))
            .map_err(|e| format!("the `extensions` parameter is malformed: {e}"))?;
    }
    Ok(request)
}

fn object_parameter(
    body: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<Map<String, Value>>, String> {
    match body.remove(name) {
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err(format!("the `{name}` parameter must be an object")),
    }
}

/// The type of the operation that will run, when the document names it unambiguously.
fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    super::operation(document, name).map(|operation| operation.ty)
}

/// Whether a response is a request error: nothing executed, so no `data`.
pub(crate) fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Errors of a request that did not run, each with a code (`default_code` when it has
/// none); 400 under `application/graphql-response+json`, 200 under `application/json`.
fn request_errors(media: MediaType, errors: Vec<ServerError>, default_code: &str) -> Response {
    let status = match media {
        MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
        MediaType::Json => StatusCode::OK,
    };
    json_response(
        status,
        media,
        &json!({ "errors": with_codes(errors, default_code) }),
    )
}

pub(crate) fn with_codes(mut errors: Vec<ServerError>, default_code: &str) -> Vec<ServerError> {
    for error in &mut errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", default_code);
        }
    }
    errors
}

/// The body of an executed (or refused) request, serialised once (serde_json writes
/// UTF-8, so the bytes go out as they are).
fn response_body(response: async_graphql::Response) -> (bool, Vec<u8>) {
    if is_request_error(&response) {
        let errors = with_codes(response.errors, "GRAPHQL_VALIDATION_FAILED");
        return (true, json!({ "errors": errors }).to_string().into_bytes());
    }
    // Pages of posts run to tens of kilobytes: start big rather than grow by doubling.
    let mut body = Vec::with_capacity(RESPONSE_BUFFER_BYTES);
    match serde_json::to_writer(&mut body, &response) {
        Ok(()) => (false, body),
        Err(err) => {
            tracing::error!(%err, "cannot serialise a GraphQL response");
            let internal = json!({"errors": [{"message": "internal error",
                                               "extensions": {"code": "INTERNAL"}}]});
            (false, internal.to_string().into_bytes())
        }
    }
}

fn timed_out(media: MediaType, timeout: std::time::Duration) -> Response {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        media,
        "TIMEOUT",
        &format!("the request took longer than {} ms", timeout.as_millis()),
    )
}

/// Whether only queries may run (GET): mutations and subscriptions are then 405.
#[derive(Clone, Copy)]
pub(super) struct QueriesOnly(pub(super) bool);

pub(super) async fn execute(
    endpoint: &Endpoint,
    media: MediaType,
    request: async_graphql::Request,
    auth: Auth,
    caller: Caller,
    queries_only: QueriesOnly,
) -> Response {
    if let Err(limited) = endpoint.limits.requests(&caller, 1) {
        return rate_limited(media, limited);
    }
    // Row-level security: the database sees the caller's tenant's rows only.
    let tenant = auth.0.as_ref().ok().map(|actor| actor.tenant_id.clone());
    let work = execute_as_caller(endpoint, media, request, auth, &caller, queries_only);
    match tenant {
        Some(tenant) => crate::db::tenant::scope(&tenant, work).await,
        None => work.await,
    }
}

async fn execute_as_caller(
    endpoint: &Endpoint,
    media: MediaType,
    mut request: async_graphql::Request,
    auth: Auth,
    caller: &Caller,
    queries_only: QueriesOnly,
) -> Response {
    if let Err(err) = persisted::apply(
        endpoint.persisted.as_ref(),
        &mut request,
        auth.0.as_ref().ok(),
    )
    .await
    {
        return request_errors(media, vec![err], "BAD_REQUEST");
    }
    if request.query.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            media,
            "BAD_REQUEST",
            "the `query` parameter is missing",
        );
    }
    let name = request.operation_name.clone();
    let timeout = endpoint.config.request_timeout;
    // One deadline, whether a plan or the stock executor (or both) answer.
    let deadline = tokio::time::Instant::now() + timeout;
    let lookup = endpoint.reads.lookup(&request.query, name.as_deref());
    if let Lookup::Plan(plan) = &lookup {
        // A plan's document is a query that has passed every check below: it needs no parse.
        let answer = endpoint.reads.answer(plan, &request.variables, &auth);
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Some(body)) => return serialized_response(StatusCode::OK, media, body),
            Ok(None) => {}
            Err(_) => return timed_out(media, timeout),
        }
    }
    let document = match endpoint.documents.parse(&mut request) {
        Err(err) => return request_errors(media, vec![err], "GRAPHQL_PARSE_FAILED"),
        Ok(document) => document,
    };
    if queries_only.0
        && matches!(
            operation_type(document, name.as_deref()),
            Some(OperationType::Mutation | OperationType::Subscription)
        )
    {
        return method_not_allowed(
            media,
            "POST",
            "only queries run over GET: send mutations with POST (subscriptions over WebSocket)",
        );
    }
    if !endpoint.config.introspection && introspection::requested(document) {
        return request_errors(media, vec![introspection::refused()], "");
    }
    if let Err(limited) = endpoint.limits.mutations(caller, document, name.as_deref()) {
        return rate_limited(media, limited);
    }
    // Only an operation that exists is remembered (a client picks the name).
    let candidate = (matches!(lookup, Lookup::Unknown)
        && super::operation(document, name.as_deref()).is_some())
    .then(|| compiled::compile(document, name.as_deref()));
    let query = candidate.as_ref().map(|_| request.query.clone());
    let Ok(response) =
        tokio::time::timeout_at(deadline, endpoint.schema.execute(request.data(auth))).await
    else {
        return timed_out(media, timeout);
    };
    if let (Some(plan), Some(query)) = (candidate, query) {
        // A plan is kept only for a document the stock executor ran without errors (a
        // document that does not compile is remembered as such at once).
        if plan.is_none() || response.errors.is_empty() {
            endpoint.reads.remember(query, name, plan);
        }
    }
    let (refused, body) = response_body(response);
    let status = if refused && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    serialized_response(status, media, body)
}

async fn execute_batch(
    endpoint: &Endpoint,
    media: MediaType,
    requests: Vec<async_graphql::Request>,
    parts: &axum::http::request::Parts,
) -> Response {
    let headers = &parts.headers;
    let auth = authenticate(&endpoint.verifier, headers);
    let caller = endpoint
        .limits
        .caller(auth.0.as_ref().ok(), headers, peer(&parts.extensions));
    // Each request of a batch counts as one.
    if let Err(limited) = endpoint.limits.requests(&caller, requests.len()) {
        return rate_limited(media, limited);
    }
    let timeout = endpoint.config.request_timeout;
    let run = async {
        let mut bodies = Vec::with_capacity(requests.len());
        for request in requests {
            let mut request = request;
            let auth = authenticate(&endpoint.verifier, headers);
            if let Err(err) = persisted::apply(
                endpoint.persisted.as_ref(),
                &mut request,
                auth.0.as_ref().ok(),
            )
            .await
            {
                bodies.push(json!({ "errors": [err] }).to_string().into_bytes());
                continue;
            }
            let name = request.operation_name.clone();
            let refused = match endpoint.documents.parse(&mut request) {
                Err(err) => Some(with_codes(vec![err], "GRAPHQL_PARSE_FAILED")),
                Ok(document)
                    if !endpoint.config.introspection && introspection::requested(document) =>
                {
                    Some(vec![introspection::refused()])
                }
                Ok(document) => endpoint
                    .limits
                    .mutations(&caller, document, name.as_deref())
                    .err()
                    .map(|limited| vec![limited.error()]),
            };
            if let Some(errors) = refused {
                bodies.push(json!({ "errors": errors }).to_string().into_bytes());
                continue;
            }
            let tenant = auth.0.as_ref().ok().map(|actor| actor.tenant_id.clone());
            let run = endpoint.schema.execute(request.data(auth));
            let response = match tenant {
                Some(tenant) => crate::db::tenant::scope(&tenant, run).await,
                None => run.await,
            };
            let (_, body) = response_body(response);
            bodies.push(body);
        }
        bodies
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(bodies) => {
            let body = [b"[".as_slice(), &bodies.join(b",".as_slice()), b"]"].concat();
            serialized_response(StatusCode::OK, media, body)
        }
        Err(_) => timed_out(media, timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<MediaType> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("header"),
        );
        negotiate(&headers)
    }

    #[test]
    fn negotiation_follows_accept() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(accept("*/*"), Some(MediaType::Json));
        assert_eq!(accept("application/json"), Some(MediaType::Json));
        assert_eq!(
            accept("application/graphql-response+json, application/json"),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            accept("application/graphql-response+json;q=0.5, application/json"),
            Some(MediaType::Json)
        );
        assert_eq!(
            accept("application/graphql-response+json,application/json;q=0.9"),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(accept("text/plain"), None);
        assert_eq!(accept("application/json;q=0"), None);
    }

    #[test]
    fn parameters_are_type_checked() {
        assert!(parameters(json!({"query": "{ a }", "variables": null})).is_ok());
        assert!(parameters(json!({"qeury": "{ a }"})).is_err());
        assert!(parameters(json!({"query": 1})).is_err());
        assert!(parameters(json!({"query": "{ a }", "variables": "x"})).is_err());
        assert!(parameters(json!({"query": "{ a }", "operationName": []})).is_err());
        assert!(parameters(json!({"query": "{ a }", "extensions": 0})).is_err());
        assert!(parameters(json!("{ a }")).is_err());
    }
}
