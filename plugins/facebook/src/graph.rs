//! Calls to the Graph API: the base URL of the account's version, the token in an
//! `Authorization: Bearer` header (never in a URL, where logs would keep it), and failed
//! answers mapped by `herald-meta-graph`.

use herald_meta_graph::graph_version;
use herald_plugin_sdk::http::{Request, Response};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{Credentials, PublishError};

/// The Graph API host.
pub const GRAPH: &str = "https://graph.facebook.com";
/// The host Facebook takes video uploads on.
pub const GRAPH_VIDEO: &str = "https://graph-video.facebook.com";
/// How the platform is named in messages.
pub const PLATFORM: &str = "Facebook";

/// The Graph API of one account: its version and the secrets to scrub.
pub struct Graph<'a> {
    /// `v25.0`.
    pub version: String,
    /// Tokens to keep out of messages.
    pub secrets: &'a Secrets,
}

impl<'a> Graph<'a> {
    /// The Graph API as `credentials` name its version.
    pub fn new(credentials: &Credentials, secrets: &'a Secrets) -> Self {
        Self {
            version: graph_version(credentials),
            secrets,
        }
    }

    /// `https://graph.facebook.com/<version><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{GRAPH}/{}{path}", self.version)
    }

    /// `https://graph-video.facebook.com/<version><path>`.
    pub fn video_url(&self, path: &str) -> String {
        format!("{GRAPH_VIDEO}/{}{path}", self.version)
    }

    /// Sends `request` with `token`; any answer is returned, a transport failure is
    /// retryable (scrubbed).
    pub fn send(&self, request: Request, token: &str) -> Result<Response, PublishError> {
        request
            .bearer(token)
            .send()
            .map_err(|error| PublishError::from(error).scrubbed(self.secrets))
    }

    /// Sends `request` with `token` and keeps a 2xx answer; any other is mapped by
    /// [`herald_meta_graph::failure`].
    pub fn call(&self, request: Request, token: &str) -> Result<Response, PublishError> {
        let response = self.send(request, token)?;
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
