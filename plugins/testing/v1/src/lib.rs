//! Minimal plugin against the first released WIT, `herald:publisher@0.1.0`, written with
//! wit-bindgen directly (the SDK builds 0.2.0 plugins): it proves that the host still
//! loads and runs plugins built before 0.2.0.

/// Bindings generated from WIT 0.1.0 (their export glue is unsafe, allowed here only).
#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../plugin-sdk/wit/v0.1.0",
        world: "plugin",
    });

    use super::V1;

    // The component's exports (unsafe glue, hence inside this module).
    export!(V1 with_types_in self);
}

use bindings::exports::herald::publisher::publisher::Guest;
use bindings::herald::publisher::types::*;

/// The fixture plugin.
struct V1;

impl Guest for V1 {
    fn info() -> PluginInfo {
        PluginInfo {
            platform: "v1".into(),
            display_name: "WIT 0.1.0 fixture".into(),
            version: "0.1.0".into(),
            limits: Limits {
                max_text_length: 10,
                counting: LengthCounting::Chars,
                max_media: 0,
                media: vec![],
            },
            idempotent_publish: true,
        }
    }
    fn validate(_post: Post) -> Vec<Violation> {
        Vec::new()
    }
    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        Ok(Receipt {
            platform_post_id: request.idempotency_key,
            url: "https://v1.example/p".into(),
        })
    }
    fn verify_credentials(_credentials: Credentials) -> Result<Account, PublishError> {
        Err(PublishError::Permanent("unsupported".into()))
    }
    fn oauth_authorize_url(
        _client: OauthClient,
        _state: String,
        _challenge: String,
    ) -> Result<String, PublishError> {
        Err(PublishError::Permanent("unsupported".into()))
    }
    fn oauth_exchange(
        _client: OauthClient,
        _code: String,
        _verifier: String,
    ) -> Result<Credentials, PublishError> {
        Err(PublishError::Permanent("unsupported".into()))
    }
    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        Ok(credentials)
    }
    fn fetch_metrics(_id: String, _credentials: Credentials) -> Result<Vec<Metric>, PublishError> {
        Ok(Vec::new())
    }
    fn lookup(_key: String, _credentials: Credentials) -> Result<Option<Receipt>, PublishError> {
        Ok(None)
    }
}
