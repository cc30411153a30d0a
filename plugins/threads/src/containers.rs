//! Threads' two-step publishing: a media container (`POST /{user}/threads`), its
//! processing read until `FINISHED` (`GET /{container}?fields=status,error_message`), then
//! `POST /{user}/threads_publish` with its id as `creation_id`.

use std::time::Duration;

use herald_meta_graph::{ContainerStatus, Meaning, graph_error};
use herald_plugin_sdk::http::{Request, percent_encode};
use herald_plugin_sdk::{PublishError, log};
use serde::Deserialize;

use crate::api::{Api, PLATFORM};

/// Status reads of a container before the publish is retried later.
pub const STATUS_READS: u32 = 10;
/// Time between two status reads.
const STATUS_WAIT: Duration = Duration::from_secs(1);
/// `threads_publish` calls answered "not ready yet" (24 / 4279009) before the publish is
/// retried later.
pub const PUBLISH_TRIES: u32 = 3;
/// How many of the user's latest threads are searched for one published already.
pub const RECENT: u32 = 10;

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// `POST /{user}/threads` with `fields`: the container's id.
pub fn create(api: &Api<'_>, user: &str, fields: &[(&str, &str)]) -> Result<String, PublishError> {
    let url = Api::url(&format!("/{}/threads", percent_encode(user)));
    Ok(api
        .call(Request::post(url).form(fields))?
        .json::<Created>()?
        .id)
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error_message: Option<String>,
}

/// The container's status and, for `ERROR`, why.
pub fn status(
    api: &Api<'_>,
    container: &str,
) -> Result<(ContainerStatus, Option<String>), PublishError> {
    let url = Api::url(&format!(
        "/{}?fields=status,error_message",
        percent_encode(container)
    ));
    let read = api.call(Request::get(url))?.json::<Status>()?;
    let status = ContainerStatus::parse(&read.status).ok_or_else(|| {
        PublishError::Permanent(format!(
            "{PLATFORM} answered an unknown container status {:?}",
            read.status
        ))
    })?;
    Ok((status, read.error_message))
}

/// Reads the container's status until it is `FINISHED` or `PUBLISHED` (returned), at
/// most [`STATUS_READS`] times: `ERROR` is permanent with Threads' reason, `EXPIRED` and
/// still `IN_PROGRESS` after the last read are retryable (the publish is tried again
/// later). `what` names the container in messages.
pub fn wait(api: &Api<'_>, container: &str, what: &str) -> Result<ContainerStatus, PublishError> {
    for read in 0..STATUS_READS {
        if read > 0 {
            std::thread::sleep(STATUS_WAIT);
        }
        match status(api, container)? {
            (done @ (ContainerStatus::Finished | ContainerStatus::Published), _) => {
                return Ok(done);
            }
            (ContainerStatus::Error, reason) => {
                return Err(PublishError::Permanent(format!(
                    "{PLATFORM} could not process {what}: {}",
                    reason.unwrap_or_else(|| "ERROR".into())
                )));
            }
            (ContainerStatus::Expired, _) => {
                return Err(PublishError::Retryable(format!(
                    "{PLATFORM}'s container for {what} expired before it was published"
                )));
            }
            (ContainerStatus::InProgress, _) => {}
        }
    }
    Err(PublishError::Retryable(format!(
        "{PLATFORM} was still processing {what} after {STATUS_READS} status reads"
    )))
}

/// What publishing a container came to.
pub enum Published {
    /// The new thread's id.
    Thread(String),
    /// Threads answered an unknown error: the thread may exist (the caller looks).
    Unknown(PublishError),
}

/// `POST /{user}/threads_publish` with `creation_id`: "not ready yet" (24 / 4279009) is
/// tried again after a pause, at most [`PUBLISH_TRIES`] times, then retryable.
pub fn publish(api: &Api<'_>, user: &str, container: &str) -> Result<Published, PublishError> {
    let url = Api::url(&format!("/{}/threads_publish", percent_encode(user)));
    let mut tries = 0;
    loop {
        tries += 1;
        let answer = api.send(Request::post(url.clone()).form(&[("creation_id", container)]))?;
        if answer.is_success() {
            return Ok(Published::Thread(answer.json::<Created>()?.id));
        }
        let meaning = graph_error(&answer).map(|error| error.meaning());
        match meaning {
            Some(Meaning::NotReady) if tries < PUBLISH_TRIES => {
                log::info(&format!(
                    "{PLATFORM} says container {container} is not ready to publish yet; \
                     trying again"
                ));
                std::thread::sleep(STATUS_WAIT);
            }
            Some(Meaning::Transient) => return Ok(Published::Unknown(api.failure(&answer))),
            _ => return Err(api.failure(&answer)),
        }
    }
}

#[derive(Deserialize)]
struct Listed {
    #[serde(default)]
    data: Vec<Thread>,
}

/// A published thread.
#[derive(Deserialize)]
pub struct Thread {
    /// Its id.
    pub id: String,
    /// Its text.
    #[serde(default)]
    pub text: Option<String>,
    /// Its public URL.
    #[serde(default)]
    pub permalink: Option<String>,
}

/// The user's recent thread with `text`, if any (after an unknown error, or a container
/// found already published).
pub fn find(api: &Api<'_>, user: &str, text: &str) -> Result<Option<Thread>, PublishError> {
    let url = Api::url(&format!(
        "/{}/threads?fields=id,text,timestamp,permalink&limit={RECENT}",
        percent_encode(user)
    ));
    let listed = api.call(Request::get(url))?.json::<Listed>()?;
    let wanted = text.trim();
    Ok(listed
        .data
        .into_iter()
        .find(|thread| thread.text.as_deref().unwrap_or_default().trim() == wanted))
}

/// `GET /{thread}?fields=permalink`: the thread's public URL.
pub fn permalink(api: &Api<'_>, thread: &str) -> Result<String, PublishError> {
    let url = Api::url(&format!("/{}?fields=permalink", percent_encode(thread)));
    api.call(Request::get(url))?
        .json::<Thread>()?
        .permalink
        .filter(|link| !link.is_empty())
        .ok_or_else(|| {
            PublishError::Permanent(format!(
                "{PLATFORM} published thread {thread} but gave no permalink"
            ))
        })
}
