//! Calls to the Threads API (`https://graph.threads.net/v1.0`): the token in an
//! `Authorization: Bearer` header (never in a URL, where logs would keep it), failed
//! answers mapped by `herald-meta-graph`.

use herald_plugin_sdk::PublishError;
use herald_plugin_sdk::http::{Request, Response};
use herald_plugin_sdk::scrub::Secrets;

/// The Threads API host.
pub const HOST: &str = "https://graph.threads.net";
/// The Threads API version (Threads has its own, apart from the Graph API's).
pub const VERSION: &str = "v1.0";
/// How the platform is named in messages.
pub const PLATFORM: &str = "Threads";

/// The Threads API as one account calls it.
pub struct Api<'a> {
    /// The long-lived access token.
    pub token: &'a str,
    /// Tokens to keep out of messages.
    pub secrets: &'a Secrets,
}

impl Api<'_> {
    /// `https://graph.threads.net/v1.0<path>`.
    pub fn url(path: &str) -> String {
        format!("{HOST}/{VERSION}{path}")
    }

    /// Sends `request` with the token; any answer is returned, a transport failure is
    /// retryable (scrubbed).
    pub fn send(&self, request: Request) -> Result<Response, PublishError> {
        request
            .bearer(self.token)
            .send()
            .map_err(|error| PublishError::from(error).scrubbed(self.secrets))
    }

    /// Sends `request` and keeps a 2xx answer; any other is mapped by
    /// [`herald_meta_graph::failure`].
    pub fn call(&self, request: Request) -> Result<Response, PublishError> {
        let response = self.send(request)?;
        self.check(response)
    }

    /// Keeps a 2xx answer; maps any other.
    pub fn check(&self, response: Response) -> Result<Response, PublishError> {
        if response.is_success() {
            Ok(response)
        } else {
            Err(self.failure(&response))
        }
    }

    /// What a failed answer means ([`herald_meta_graph::failure`]), scrubbed.
    pub fn failure(&self, response: &Response) -> PublishError {
        herald_meta_graph::failure(response, PLATFORM).scrubbed(self.secrets)
    }
}
