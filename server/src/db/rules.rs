//! The domain's publishing rules as SQL, for the statements written by hand (the worker's
//! batches, the reconciler). Each fragment is generated from its rule in
//! `domain::status`, so a rule changes in one place; the due time, which SQL computes
//! itself, is checked against [`crate::domain::status::due_at`] by the API tests.

use std::sync::LazyLock;

use crate::domain::post::ApprovalStatus;
use crate::domain::status::TargetStatus;

/// `('scheduled', 'retrying')`: the pending target statuses as an SQL list.
pub static PENDING: LazyLock<String> =
    LazyLock::new(|| sql_list(TargetStatus::PENDING.iter().map(|s| s.as_str())));

/// The approval states that let a post go out, as an SQL list.
static PUBLISHABLE_APPROVALS: LazyLock<String> =
    LazyLock::new(|| sql_list(ApprovalStatus::PUBLISHABLE.iter().map(|s| s.as_str())));

/// `{post}.archived_at IS NULL AND {post}.approval_status IN (…)`: whether the post with
/// alias `post` is publishable (`domain::status::is_publishable`).
pub fn publishable(post: &str) -> String {
    format!(
        "({post}.archived_at IS NULL AND {post}.approval_status IN {})",
        *PUBLISHABLE_APPROVALS
    )
}

/// When the target with alias `target` of the post with alias `post` is due
/// (`domain::status::due_at`): the post's time, or a planned retry after it.
pub fn due_at(post: &str, target: &str) -> String {
    format!(
        "GREATEST({post}.scheduled_at, COALESCE({target}.next_attempt_at, {post}.scheduled_at))"
    )
}

/// `('a', 'b')` from stored names (which never contain quotes).
fn sql_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.map(|name| format!("'{name}'")).collect();
    format!("({})", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_come_from_the_domain_sets() {
        for status in TargetStatus::ALL {
            let quoted = format!("'{}'", status.as_str());
            assert_eq!(PENDING.contains(&quoted), status.is_pending(), "{status:?}");
        }
        let publishable = publishable("p");
        for approval in ApprovalStatus::ALL {
            let quoted = format!("'{}'", approval.as_str());
            assert_eq!(
                publishable.contains(&quoted),
                approval.allows_publishing(),
                "{approval:?}"
            );
        }
        assert!(publishable.starts_with("(p.archived_at IS NULL AND p.approval_status IN ("));
    }
}
