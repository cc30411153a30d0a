//! The checks a post must pass before it is scheduled (text or media, an account for each
//! target, each platform plugin's validation), and the protocol that lets `update` and
//! `schedule` run them with the post's row released: [`Checked`] remembers the post as
//! the last check saw it, and the write goes ahead only while the locked post is still
//! that one.

use uuid::Uuid;

use super::PostService;
use crate::db::entities::{post, target};
use crate::domain::actor::Actor;
use crate::domain::post::{self as rules, MediaItem};
use crate::domain::target::{TargetSpec, platforms_of};
use crate::error::AppError;
use crate::publish::plugin::plugin_post;

impl PostService {
    /// Checks that the accounts `targets` name are the caller's tenant's and on the
    /// target's platform (what even a draft must respect: another tenant's account reads
    /// as unknown, as one that does not exist).
    pub(super) async fn require_owned_accounts(
        &self,
        actor: &Actor,
        targets: &[TargetSpec],
    ) -> Result<(), AppError> {
        self.connections
            .require_owned(actor, &named_accounts(targets))
            .await
    }

    /// Checks that every target can be published as an account of the caller's tenant:
    /// a named connection must be theirs, active and on the target's platform; otherwise
    /// a plugin platform or `webhook` needs a connected account. `BAD_USER_INPUT` names the
    /// platform.
    async fn require_accounts(
        &self,
        actor: &Actor,
        targets: &[TargetSpec],
    ) -> Result<(), AppError> {
        self.connections
            .require_usable(actor, &named_accounts(targets))
            .await?;
        let needed: Vec<String> = targets
            .iter()
            .filter(|t| t.connection_id.is_none() && self.account_platforms.contains(&t.platform))
            .map(|t| t.platform.clone())
            .collect();
        let missing = self.connections.missing(&actor.tenant_id, &needed).await?;
        match missing.first() {
            Some(platform) => Err(AppError::bad_input(
                "platforms",
                format!(
                    "no connected {platform} account: connect one with connectAccount before \
                     scheduling"
                ),
            )),
            None => Ok(()),
        }
    }

    /// Everything a post needs before it is scheduled: text or media and a target, an
    /// account for each target, and each platform plugin's validation (so content over a
    /// platform's limits is refused now, not when it is due).
    pub(super) async fn require_schedulable(
        &self,
        actor: &Actor,
        content: &str,
        media: &[MediaItem],
        targets: &[TargetSpec],
    ) -> Result<(), AppError> {
        rules::require_publishable(content, media, &platforms_of(targets))?;
        self.require_accounts(actor, targets).await?;
        let Some(host) = &self.plugins else {
            return Ok(());
        };
        for target in targets {
            if host.platform(&target.platform).is_none() {
                continue;
            }
            let post = plugin_post(content, media, &target.options);
            let violations = host
                .validate(&target.platform, &post)
                .await
                .map_err(|error| {
                    tracing::warn!(platform = %target.platform, %error, "plugin validation failed");
                    AppError::bad_input(
                        "platforms",
                        format!(
                            "the {} plugin could not check the post: {error}",
                            target.platform
                        ),
                    )
                })?;
            if let Some(first) = violations.first() {
                let all: Vec<String> = violations
                    .iter()
                    .map(|v| format!("{} ({})", v.message, v.code))
                    .collect();
                let field = match first.field.as_str() {
                    "text" | "content" => "content".to_owned(),
                    other => other.to_owned(),
                };
                return Err(AppError::bad_input(
                    field,
                    format!("{}: {}", target.platform, all.join("; ")),
                ));
            }
        }
        Ok(())
    }
}

/// The accounts `targets` name: id, platform and the input field naming it.
fn named_accounts(targets: &[TargetSpec]) -> Vec<(Uuid, &str, String)> {
    targets
        .iter()
        .enumerate()
        .filter_map(|(index, target)| {
            target.connection_id.map(|id| {
                (
                    id,
                    target.platform.as_str(),
                    format!("targets[{index}].connectionId"),
                )
            })
        })
        .collect()
}

/// How many times `update` and `schedule` check a post that keeps changing while it is
/// checked before giving up with `CONFLICT`.
const CHECK_ATTEMPTS: usize = 3;

/// The plugin and account checks of a post, which `update` and `schedule` run with the
/// post's row released: the post as the last check saw it, and how many checks ran.
#[derive(Default)]
pub(super) struct Checked {
    /// The version of the post the last check passed, and its targets' settings.
    seen: Option<(i32, Vec<TargetSpec>)>,
    checks: usize,
}

impl Checked {
    /// Whether the locked post (`current` with its `targets`) is still the one the last
    /// check passed. Edits bump the version; disconnecting a named account clears its
    /// targets' connection without one, so the targets' settings are compared too.
    /// (Status changes by workers are checked again under the lock; an account that goes
    /// away meanwhile is found by the worker when the post is due.)
    /// (`db::posts::lock` loads targets in one order, so their settings compare as lists.)
    pub(super) fn covers(&self, current: &post::Model, targets: &[target::Model]) -> bool {
        self.seen.as_ref().is_some_and(|(version, specs)| {
            *version == current.version
                && specs.len() == targets.len()
                && specs
                    .iter()
                    .zip(targets)
                    .all(|(seen, target)| *seen == target.spec())
        })
    }

    /// Counts one more check; `CONFLICT` once the post has changed under every check.
    pub(super) fn count(&mut self) -> Result<(), AppError> {
        if self.checks == CHECK_ATTEMPTS {
            return Err(AppError::Conflict(
                "the post kept changing while it was checked; try again".into(),
            ));
        }
        self.checks += 1;
        Ok(())
    }

    /// Records the post a check has just passed.
    pub(super) fn saw(&mut self, post: &post::Model, targets: &[target::Model]) {
        self.seen = Some((
            post.version,
            targets.iter().map(target::Model::spec).collect(),
        ));
    }
}
