//! # Herald plugin SDK
//!
//! Write a Herald publisher plugin in Rust: implement [`Publisher`] for a type, register it
//! with [`register_publisher!`], and build with `cargo build --release --target
//! wasm32-wasip2`. The result is a WebAssembly component that Herald's sandboxed host
//! loads from its plugin directory next to a manifest. See `README.md` for the whole
//! workflow and `plugins/example` for a template.
//!
//! The interface is the WIT in `wit/v0.2.0/` (package `herald:publisher@0.2.0`; the host
//! still loads plugins built against `wit/v0.1.0/` with an older SDK). The types in this
//! crate are generated from it; the helpers ([`http`], [`media`], [`text`], [`log`],
//! [`time`], [`checkpoint`]) wrap what the host grants a plugin: outbound HTTP to declared
//! hosts, the current post's media, logging, the wall clock and a publish's durable
//! checkpoints; [`settings`] reads a post's options and an account's extra credentials. A plugin has no filesystem,
//! sockets, clock-based sleeping or environment.
//!
//! What every platform needs the same way is here once: [`failure`] maps a failed answer
//! (status, `Retry-After` and rate-limit headers) to the [`PublishError`] Herald acts on,
//! with a hook for the platform's own cases; [`scrub`] removes secrets from messages;
//! [`time::ServerClock`] counts a platform's absolute reset times on its own clock.
//!
//! ```ignore
//! use herald_plugin_sdk::{Publisher, PluginInfo, PublishRequest, Receipt, PublishError};
//!
//! struct MyPlatform;
//!
//! impl Publisher for MyPlatform {
//!     fn info() -> PluginInfo { /* … */ }
//!     fn publish(request: PublishRequest) -> Result<Receipt, PublishError> { /* … */ }
//!     fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> { /* … */ }
//! }
//!
//! herald_plugin_sdk::register_publisher!(MyPlatform);
//! ```

pub mod checkpoint;
pub mod failure;
pub mod http;
pub mod log;
pub mod media;
pub mod scrub;
pub mod settings;
pub mod text;
pub mod time;
mod validate;

pub use validate::{AspectRange, DurationRange, FrameRules, validate_frames, validate_limits};

/// Bindings generated from `wit/v0.2.0` (used by [`register_publisher!`]; not a stable API).
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "wit/v0.2.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "herald_plugin_sdk::__bindings",
        additional_derives: [PartialEq, Eq],
    });
}

pub use __bindings::herald::publisher::types::{
    Account, Credentials, LengthCounting, Limits, Media, MediaLimit, Metric, OauthClient,
    PluginInfo, Post, PublishError, PublishRequest, RateLimit, Receipt, Violation,
};

/// The WIT version this SDK builds plugins for.
pub const WIT_VERSION: &str = "0.2.0";

/// A publisher for one platform. Only [`info`](Publisher::info),
/// [`publish`](Publisher::publish) and [`verify_credentials`](Publisher::verify_credentials)
/// are required; the others have defaults that suit a platform without the feature.
///
/// Methods are associated functions: the host instantiates a fresh plugin for every call,
/// so there is no state to keep between calls.
pub trait Publisher {
    /// Describes the plugin and the platform's limits.
    fn info() -> PluginInfo;

    /// Lists why `post` cannot be published as it is. The default checks the limits that
    /// [`info`](Publisher::info) declares (text length, media count, types and sizes).
    fn validate(post: Post) -> Vec<Violation> {
        validate_limits(&Self::info().limits, &post)
    }

    /// Publishes a post. Return [`PublishError::Retryable`] or
    /// [`PublishError::RateLimited`] for failures that may pass later, so Herald retries.
    fn publish(request: PublishRequest) -> Result<Receipt, PublishError>;

    /// Checks credentials and returns the account they belong to.
    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError>;

    /// The URL to send a user to for OAuth authorisation. Default: unsupported.
    fn oauth_authorize_url(
        client: OauthClient,
        state: String,
        pkce_challenge: String,
    ) -> Result<String, PublishError> {
        let _ = (client, state, pkce_challenge);
        Err(unsupported("OAuth"))
    }

    /// Exchanges an OAuth authorisation code for credentials. Default: unsupported.
    fn oauth_exchange(
        client: OauthClient,
        code: String,
        verifier: String,
    ) -> Result<Credentials, PublishError> {
        let _ = (client, code, verifier);
        Err(unsupported("OAuth"))
    }

    /// Refreshes credentials. Default: the credentials do not expire, so they are returned
    /// unchanged.
    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        Ok(credentials)
    }

    /// Engagement figures of a published post. Default: none.
    fn fetch_metrics(
        platform_post_id: String,
        credentials: Credentials,
    ) -> Result<Vec<Metric>, PublishError> {
        let _ = (platform_post_id, credentials);
        Ok(Vec::new())
    }

    /// Finds a post published earlier with `idempotency_key`, so Herald can recover after a
    /// crash between publishing and recording. Default: the platform cannot tell (`None`).
    fn lookup(
        idempotency_key: String,
        credentials: Credentials,
    ) -> Result<Option<Receipt>, PublishError> {
        let _ = (idempotency_key, credentials);
        Ok(None)
    }

    /// Deletes a published post. Default: unsupported.
    fn delete(platform_post_id: String, credentials: Credentials) -> Result<(), PublishError> {
        let _ = (platform_post_id, credentials);
        Err(unsupported("deleting posts"))
    }
}

fn unsupported(feature: &str) -> PublishError {
    PublishError::Permanent(format!("{feature} is not supported by this plugin"))
}

impl<T: Publisher> __bindings::exports::herald::publisher::publisher::Guest for T {
    fn info() -> PluginInfo {
        <T as Publisher>::info()
    }
    fn validate(post: Post) -> Vec<Violation> {
        <T as Publisher>::validate(post)
    }
    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        <T as Publisher>::publish(request)
    }
    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        <T as Publisher>::verify_credentials(credentials)
    }
    fn oauth_authorize_url(
        client: OauthClient,
        state: String,
        pkce_challenge: String,
    ) -> Result<String, PublishError> {
        <T as Publisher>::oauth_authorize_url(client, state, pkce_challenge)
    }
    fn oauth_exchange(
        client: OauthClient,
        code: String,
        verifier: String,
    ) -> Result<Credentials, PublishError> {
        <T as Publisher>::oauth_exchange(client, code, verifier)
    }
    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        <T as Publisher>::refresh_token(credentials)
    }
    fn fetch_metrics(
        platform_post_id: String,
        credentials: Credentials,
    ) -> Result<Vec<Metric>, PublishError> {
        <T as Publisher>::fetch_metrics(platform_post_id, credentials)
    }
    fn lookup(
        idempotency_key: String,
        credentials: Credentials,
    ) -> Result<Option<Receipt>, PublishError> {
        <T as Publisher>::lookup(idempotency_key, credentials)
    }
    fn delete(platform_post_id: String, credentials: Credentials) -> Result<(), PublishError> {
        <T as Publisher>::delete(platform_post_id, credentials)
    }
}

/// Exports a [`Publisher`] implementation as the plugin's `herald:publisher/publisher@0.2.0`
/// interface. Call it once, at the crate root of a `cdylib` crate, with the type's name.
#[macro_export]
macro_rules! register_publisher {
    ($publisher:ident) => {
        $crate::__bindings::__export_plugin!($publisher with_types_in $crate::__bindings);
    };
}
