//! One `bindgen!` per supported WIT version, and the glue between each version's generated
//! types and the host's own ([`crate::types`]). The glue is the same code for every version
//! (a macro), so a new version adds a module here, not a copy of the host.
//!
//! A component is routed to a version by the name of its export
//! (`herald:publisher/publisher@<version>`).

use crate::types::{
    Account, Credentials, Metric, OauthClient, PluginInfo, Post, PublishFailure, PublishRequest,
    Receipt, Violation,
};

/// A call into a plugin, independent of its WIT version.
#[derive(Debug)]
pub(crate) enum Call {
    Info,
    Validate(Post),
    Publish(PublishRequest),
    VerifyCredentials(Credentials),
    OauthAuthorizeUrl {
        client: OauthClient,
        state: String,
        pkce_challenge: String,
    },
    OauthExchange {
        client: OauthClient,
        code: String,
        verifier: String,
    },
    RefreshToken(Credentials),
    FetchMetrics {
        platform_post_id: String,
        credentials: Credentials,
    },
    Lookup {
        idempotency_key: String,
        credentials: Credentials,
    },
}

impl Call {
    /// The account credentials the call is made with, if any.
    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        match self {
            Call::Publish(request) => Some(&request.credentials),
            Call::VerifyCredentials(credentials) | Call::RefreshToken(credentials) => {
                Some(credentials)
            }
            Call::FetchMetrics { credentials, .. } | Call::Lookup { credentials, .. } => {
                Some(credentials)
            }
            Call::Info
            | Call::Validate(_)
            | Call::OauthAuthorizeUrl { .. }
            | Call::OauthExchange { .. } => None,
        }
    }
}

/// What a [`Call`] returned (the variant matches the call's).
#[derive(Debug)]
pub(crate) enum Outcome {
    Info(PluginInfo),
    Validate(Vec<Violation>),
    Publish(Result<Receipt, PublishFailure>),
    VerifyCredentials(Result<Account, PublishFailure>),
    OauthAuthorizeUrl(Result<String, PublishFailure>),
    OauthExchange(Result<Credentials, PublishFailure>),
    RefreshToken(Result<Credentials, PublishFailure>),
    FetchMetrics(Result<Vec<Metric>, PublishFailure>),
    Lookup(Result<Option<Receipt>, PublishFailure>),
}

/// Conversions and host imports for one version's generated module.
macro_rules! glue {
    ($wit_version:literal) => {
        use std::time::Duration;

        use wasmtime::Store;

        use self::herald::publisher::types as w;
        use self::herald::publisher::{http as whttp, log as wlog, media as wmedia};
        use crate::bindings::{Call, Outcome};
        use crate::net;
        use crate::state::{HostState, MediaError};
        use crate::types as h;

        /// The WIT version of this module.
        pub(crate) const VERSION: &str = $wit_version;

        /// The export a component built against this version has.
        pub(crate) const EXPORT: &str = concat!("herald:publisher/publisher@", $wit_version);

        /// Adds this version's imports (and WASI) to `linker`.
        pub(crate) fn add_to_linker(
            linker: &mut wasmtime::component::Linker<HostState>,
        ) -> wasmtime::Result<()> {
            Plugin::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
                linker,
                |state| state,
            )
        }

        /// Instantiates the plugin in `store` and performs `call`.
        pub(crate) async fn call(
            pre: &PluginPre<HostState>,
            store: &mut Store<HostState>,
            call: Call,
        ) -> wasmtime::Result<Outcome> {
            let plugin = pre.instantiate_async(&mut *store).await?;
            let guest = plugin.herald_publisher_publisher();
            Ok(match call {
                Call::Info => Outcome::Info(info(guest.call_info(&mut *store).await?)),
                Call::Validate(post) => Outcome::Validate(
                    guest
                        .call_validate(&mut *store, &to_post(&post))
                        .await?
                        .into_iter()
                        .map(violation)
                        .collect(),
                ),
                Call::Publish(request) => {
                    let request = w::PublishRequest {
                        post: to_post(&request.post),
                        credentials: to_credentials(&request.credentials),
                        idempotency_key: request.idempotency_key,
                    };
                    Outcome::Publish(
                        guest
                            .call_publish(&mut *store, &request)
                            .await?
                            .map(receipt)
                            .map_err(failure),
                    )
                }
                Call::VerifyCredentials(credentials) => Outcome::VerifyCredentials(
                    guest
                        .call_verify_credentials(&mut *store, &to_credentials(&credentials))
                        .await?
                        .map(|account| h::Account {
                            id: account.id,
                            handle: account.handle,
                            display_name: account.display_name,
                        })
                        .map_err(failure),
                ),
                Call::OauthAuthorizeUrl {
                    client,
                    state,
                    pkce_challenge,
                } => Outcome::OauthAuthorizeUrl(
                    guest
                        .call_oauth_authorize_url(
                            &mut *store,
                            &to_client(&client),
                            &state,
                            &pkce_challenge,
                        )
                        .await?
                        .map_err(failure),
                ),
                Call::OauthExchange {
                    client,
                    code,
                    verifier,
                } => Outcome::OauthExchange(
                    guest
                        .call_oauth_exchange(&mut *store, &to_client(&client), &code, &verifier)
                        .await?
                        .map(credentials)
                        .map_err(failure),
                ),
                Call::RefreshToken(credentials_in) => Outcome::RefreshToken(
                    guest
                        .call_refresh_token(&mut *store, &to_credentials(&credentials_in))
                        .await?
                        .map(credentials)
                        .map_err(failure),
                ),
                Call::FetchMetrics {
                    platform_post_id,
                    credentials,
                } => Outcome::FetchMetrics(
                    guest
                        .call_fetch_metrics(
                            &mut *store,
                            &platform_post_id,
                            &to_credentials(&credentials),
                        )
                        .await?
                        .map(|metrics| {
                            metrics
                                .into_iter()
                                .map(|m| h::Metric {
                                    name: m.name,
                                    value: m.value,
                                })
                                .collect()
                        })
                        .map_err(failure),
                ),
                Call::Lookup {
                    idempotency_key,
                    credentials,
                } => Outcome::Lookup(
                    guest
                        .call_lookup(&mut *store, &idempotency_key, &to_credentials(&credentials))
                        .await?
                        .map(|found| found.map(receipt))
                        .map_err(failure),
                ),
            })
        }

        fn info(info: w::PluginInfo) -> h::PluginInfo {
            h::PluginInfo {
                platform: info.platform,
                display_name: info.display_name,
                version: info.version,
                wit_version: VERSION.to_owned(),
                limits: h::Limits {
                    max_text_length: info.limits.max_text_length,
                    counting: match info.limits.counting {
                        w::LengthCounting::Graphemes => h::LengthCounting::Graphemes,
                        w::LengthCounting::Chars => h::LengthCounting::Chars,
                        w::LengthCounting::WeightedX => h::LengthCounting::WeightedX,
                    },
                    max_media: info.limits.max_media,
                    media: info
                        .limits
                        .media
                        .into_iter()
                        .map(|m| h::MediaLimit {
                            mime_type: m.mime_type,
                            max_bytes: m.max_bytes,
                        })
                        .collect(),
                },
                idempotent_publish: info.idempotent_publish,
            }
        }

        fn to_post(post: &h::Post) -> w::Post {
            w::Post {
                text: post.text.clone(),
                media: post.media.iter().map(to_media).collect(),
                options: post.options.clone(),
            }
        }

        fn to_credentials(c: &h::Credentials) -> w::Credentials {
            w::Credentials {
                access_token: c.access_token.clone(),
                refresh_token: c.refresh_token.clone(),
                expires_at: c.expires_at,
                extra: c.extra.clone(),
            }
        }

        fn credentials(c: w::Credentials) -> h::Credentials {
            h::Credentials {
                access_token: c.access_token,
                refresh_token: c.refresh_token,
                expires_at: c.expires_at,
                extra: c.extra,
            }
        }

        fn to_client(c: &h::OauthClient) -> w::OauthClient {
            w::OauthClient {
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.clone(),
                redirect_uri: c.redirect_uri.clone(),
            }
        }

        fn receipt(r: w::Receipt) -> h::Receipt {
            h::Receipt {
                platform_post_id: r.platform_post_id,
                url: r.url,
            }
        }

        fn violation(v: w::Violation) -> h::Violation {
            h::Violation {
                field: v.field,
                code: v.code,
                message: v.message,
            }
        }

        fn failure(error: w::PublishError) -> h::PublishFailure {
            match error {
                w::PublishError::Retryable(message) => h::PublishFailure::Retryable { message },
                w::PublishError::Permanent(message) => h::PublishFailure::Permanent { message },
                w::PublishError::RateLimited(limit) => h::PublishFailure::RateLimited {
                    retry_after: Duration::from_secs(u64::from(limit.retry_after_seconds)),
                    message: limit.message,
                },
                w::PublishError::AuthExpired(message) => h::PublishFailure::AuthExpired { message },
                w::PublishError::Validation(violations) => h::PublishFailure::Validation {
                    violations: violations.into_iter().map(violation).collect(),
                },
            }
        }

        impl w::Host for HostState {}

        impl whttp::Host for HostState {
            async fn fetch(
                &mut self,
                request: whttp::Request,
            ) -> Result<whttp::Response, whttp::HttpError> {
                let body = match request.body {
                    whttp::Body::Empty => bytes::Bytes::new(),
                    whttp::Body::Bytes(bytes) => bytes::Bytes::from(bytes),
                    whttp::Body::MediaRef(index) => match self.media(index).await {
                        Ok(bytes) => bytes,
                        Err(MediaError::NotFound) => {
                            return Err(whttp::HttpError::InvalidRequest(format!(
                                "no media at index {index}"
                            )));
                        }
                        Err(MediaError::Fetch(net::MediaFetchError::Transport(message))) => {
                            return Err(whttp::HttpError::Transport(format!(
                                "media {index}: {message}"
                            )));
                        }
                        Err(MediaError::Fetch(net::MediaFetchError::Denied(message))) => {
                            return Err(whttp::HttpError::Denied(format!(
                                "media {index}: {message}"
                            )));
                        }
                        Err(MediaError::Fetch(net::MediaFetchError::TooLarge(size))) => {
                            return Err(whttp::HttpError::InvalidRequest(format!(
                                "media {index} is larger than the host's cap ({size} bytes)"
                            )));
                        }
                        Err(MediaError::Fetch(net::MediaFetchError::UnsupportedType(message))) => {
                            return Err(whttp::HttpError::InvalidRequest(format!(
                                "media {index}: {message}"
                            )));
                        }
                    },
                };
                let method = match request.method {
                    whttp::Method::Get => net::Method::Get,
                    whttp::Method::Head => net::Method::Head,
                    whttp::Method::Post => net::Method::Post,
                    whttp::Method::Put => net::Method::Put,
                    whttp::Method::Patch => net::Method::Patch,
                    whttp::Method::Delete => net::Method::Delete,
                };
                let request = net::Request {
                    method,
                    url: request.url,
                    headers: request.headers,
                    body,
                };
                match HostState::fetch(self, request).await {
                    Ok(response) => Ok(whttp::Response {
                        status: response.status,
                        headers: response.headers,
                        body: response.body,
                    }),
                    Err(error) => Err(match error {
                        net::FetchError::Denied(message) => whttp::HttpError::Denied(message),
                        net::FetchError::Timeout => whttp::HttpError::Timeout,
                        net::FetchError::TooLarge(size) => whttp::HttpError::TooLarge(size),
                        net::FetchError::InvalidRequest(message) => {
                            whttp::HttpError::InvalidRequest(message)
                        }
                        net::FetchError::Transport(message)
                        | net::FetchError::Unreachable(message) => {
                            whttp::HttpError::Transport(message)
                        }
                    }),
                }
            }
        }

        fn media_error(error: MediaError) -> wmedia::MediaError {
            match error {
                MediaError::NotFound => wmedia::MediaError::NotFound,
                MediaError::Fetch(net::MediaFetchError::Denied(message)) => {
                    wmedia::MediaError::Denied(message)
                }
                MediaError::Fetch(net::MediaFetchError::TooLarge(size)) => {
                    wmedia::MediaError::TooLarge(size)
                }
                MediaError::Fetch(net::MediaFetchError::UnsupportedType(message)) => {
                    wmedia::MediaError::UnsupportedType(message)
                }
                MediaError::Fetch(net::MediaFetchError::Transport(message)) => {
                    wmedia::MediaError::Transport(message)
                }
            }
        }

        /// Largest chunk handed to a plugin by one `read`.
        const MAX_CHUNK: u32 = 1 << 20;

        impl wmedia::Host for HostState {
            async fn open(&mut self, index: u32) -> Result<wmedia::MediaInfo, wmedia::MediaError> {
                let bytes = self.media(index).await.map_err(media_error)?;
                Ok(wmedia::MediaInfo {
                    mime_type: self.media_type(index).unwrap_or_default(),
                    size: bytes.len() as u64,
                })
            }

            async fn read(
                &mut self,
                index: u32,
                offset: u64,
                max: u32,
            ) -> Result<Vec<u8>, wmedia::MediaError> {
                let bytes = self.media(index).await.map_err(media_error)?;
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start
                    .saturating_add(max.min(MAX_CHUNK) as usize)
                    .min(bytes.len());
                Ok(bytes.slice(start..end).to_vec())
            }
        }

        impl wlog::Host for HostState {
            async fn log(&mut self, level: wlog::Level, message: String) {
                let level = match level {
                    wlog::Level::Trace => tracing::Level::TRACE,
                    wlog::Level::Debug => tracing::Level::DEBUG,
                    wlog::Level::Info => tracing::Level::INFO,
                    wlog::Level::Warn => tracing::Level::WARN,
                    wlog::Level::Error => tracing::Level::ERROR,
                };
                HostState::log(self, level, &message);
            }
        }
    };
}

/// `herald:publisher@0.1.0`.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub(crate) mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit/v0.1.0",
        world: "plugin",
        imports: { default: async },
        exports: { default: async },
    });
    glue!("0.1.0");

    fn to_media(m: &crate::types::Media) -> herald::publisher::types::Media {
        herald::publisher::types::Media {
            url: m.url.clone(),
            mime_type: m.mime_type.clone(),
            alt: m.alt.clone(),
            size: m.size,
        }
    }
}

/// `herald:publisher@0.2.0` (draft: adds `delete`, which the host does not call yet, and
/// the `checkpoint` import).
#[allow(missing_docs, unsafe_code, clippy::all)]
pub(crate) mod v0_2_0 {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit/v0.2.0",
        world: "plugin",
        imports: { default: async },
        exports: { default: async },
    });
    glue!("0.2.0");

    /// 0.2.0 adds the frame and duration Herald knows of a library file.
    fn to_media(m: &crate::types::Media) -> herald::publisher::types::Media {
        herald::publisher::types::Media {
            url: m.url.clone(),
            mime_type: m.mime_type.clone(),
            alt: m.alt.clone(),
            size: m.size,
            width: m.width,
            height: m.height,
            duration_ms: m.duration_ms,
        }
    }

    impl herald::publisher::checkpoint::Host for HostState {
        async fn save(
            &mut self,
            name: String,
            value: String,
        ) -> Result<(), herald::publisher::checkpoint::CheckpointError> {
            self.checkpoints.save(&name, &value).await.map_err(|error| {
                tracing::info!(plugin = %self.plugin, %name, %error, "checkpoint not saved");
                checkpoint_error(error)
            })
        }

        async fn load(
            &mut self,
            name: String,
        ) -> Result<Option<String>, herald::publisher::checkpoint::CheckpointError> {
            self.checkpoints.load(&name).await.map_err(|error| {
                tracing::warn!(plugin = %self.plugin, %name, %error, "checkpoint not read");
                checkpoint_error(error)
            })
        }
    }

    fn checkpoint_error(
        error: crate::checkpoint::CheckpointError,
    ) -> herald::publisher::checkpoint::CheckpointError {
        use crate::checkpoint::CheckpointError as Host;
        use herald::publisher::checkpoint::CheckpointError as Wit;
        match error {
            Host::Refused(reason) => Wit::Refused(reason),
            Host::Unavailable(reason) => Wit::Unavailable(reason),
        }
    }
}
