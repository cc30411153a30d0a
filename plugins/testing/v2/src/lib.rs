//! Minimal plugin against `herald:publisher@0.2.0` (draft WIT with `delete`), written with
//! wit-bindgen directly since the SDK targets 0.1.0.

/// Bindings generated from the draft WIT (their export glue is unsafe, allowed here only).
#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../plugin-sdk/wit/v0.2.0",
        world: "plugin",
    });

    use super::V2;

    // The component's exports (unsafe glue, hence inside this module).
    export!(V2 with_types_in self);
}

use bindings::exports::herald::publisher::publisher::Guest;
use bindings::herald::publisher::types::*;

/// The fixture plugin.
struct V2;

impl Guest for V2 {
    fn info() -> PluginInfo {
        PluginInfo {
            platform: "v2".into(),
            display_name: "WIT 0.2.0 fixture".into(),
            version: "0.2.0".into(),
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
            url: "https://v2.example/p".into(),
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
    fn delete(_id: String, _credentials: Credentials) -> Result<(), PublishError> {
        Ok(())
    }
}
