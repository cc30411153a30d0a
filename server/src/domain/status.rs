//! Statuses of a post's per-platform targets, the post status derived from them, and
//! when a target may go out: the pending set, publishability and the due time. Each rule
//! is defined here once; the SQL that needs one is generated from it in `db::rules`.

use chrono::{DateTime, Utc};

use super::post::ApprovalStatus;

/// Whether a post's targets may be published: the post is not archived and its approval
/// allows it (not required, or approved). The one definition of "publishable".
pub fn is_publishable(approval: ApprovalStatus, archived: bool) -> bool {
    !archived && approval.allows_publishing()
}

/// When a pending target is due: its post's time, or a planned retry after it.
pub fn due_at(
    scheduled_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    next_attempt_at.map_or(scheduled_at, |next| next.max(scheduled_at))
}

/// Where one post × platform target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetStatus {
    /// Not scheduled.
    Draft,
    /// Waiting for its due time (its queue job may already be enqueued).
    Scheduled,
    /// A worker is calling the platform.
    Publishing,
    /// A previous attempt failed and another is planned.
    Retrying,
    /// The platform accepted it.
    Published,
    /// Gave up; `lastError` says why.
    Failed,
    /// A publish may or may not have reached the platform; a person must decide.
    NeedsReview,
    /// The platform refused the account's credentials: the target waits, without a queue
    /// job and without spending attempts, until the account is reconnected.
    WaitingForAccount,
}

impl TargetStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 8] = [
        Self::Draft,
        Self::Scheduled,
        Self::Publishing,
        Self::Retrying,
        Self::Published,
        Self::Failed,
        Self::NeedsReview,
        Self::WaitingForAccount,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Publishing => "publishing",
            Self::Retrying => "retrying",
            Self::Published => "published",
            Self::Failed => "failed",
            Self::NeedsReview => "needs_review",
            Self::WaitingForAccount => "waiting_for_account",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the target has reached, or may be reaching, the platform: such a post can no
    /// longer be edited, rescheduled or deleted.
    pub fn is_locked(self) -> bool {
        matches!(self, Self::Publishing | Self::Published | Self::NeedsReview)
    }

    /// The statuses of a target that still waits to be published: it has (or will get)
    /// a queue job, and a worker may move it to `publishing`. The one definition of the
    /// pending set; SQL reads it through `db::rules`.
    pub const PENDING: [Self; 2] = [Self::Scheduled, Self::Retrying];

    /// Whether the target still waits to be published (one of [`Self::PENDING`]).
    pub fn is_pending(self) -> bool {
        Self::PENDING.contains(&self)
    }

    /// Whether a person may send the target out again (`retryPost`) or record it as
    /// published by hand (`markPublished`).
    pub fn is_settled_unsuccessfully(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::NeedsReview | Self::WaitingForAccount
        )
    }
}

/// A post's overall status, derived from its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostStatus {
    /// Not scheduled.
    Draft,
    /// Waiting for its due time.
    Scheduled,
    /// A target failed and waits to be retried (or for its account to be reconnected);
    /// none is published yet.
    Queued,
    /// At least one target is being published, or some are done and others still pending.
    Publishing,
    /// Every target was published.
    Published,
    /// Some targets were published, the others failed for good.
    PartiallyPublished,
    /// Every target failed.
    Failed,
    /// A target needs a person to decide whether it was published.
    NeedsReview,
}

impl PostStatus {
    /// Every status.
    pub const ALL: [Self; 8] = [
        Self::Draft,
        Self::Scheduled,
        Self::Queued,
        Self::Publishing,
        Self::Published,
        Self::PartiallyPublished,
        Self::Failed,
        Self::NeedsReview,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Publishing => "publishing",
            Self::Published => "published",
            Self::PartiallyPublished => "partially_published",
            Self::Failed => "failed",
            Self::NeedsReview => "needs_review",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Derives a post's status from its targets' statuses. A post without targets is a
    /// draft, or scheduled when it has a time (`scheduled`).
    pub fn derive(targets: &[TargetStatus], scheduled: bool) -> Self {
        let any = |wanted: TargetStatus| targets.contains(&wanted);
        let published = targets
            .iter()
            .filter(|s| **s == TargetStatus::Published)
            .count();
        // A target waiting for its account goes out once it is reconnected: still to come.
        let pending = targets
            .iter()
            .filter(|s| s.is_pending() || **s == TargetStatus::WaitingForAccount)
            .count();
        if targets.is_empty() {
            return if scheduled {
                Self::Scheduled
            } else {
                Self::Draft
            };
        }
        if any(TargetStatus::Publishing) {
            return Self::Publishing;
        }
        if any(TargetStatus::NeedsReview) {
            return Self::NeedsReview;
        }
        if published == targets.len() {
            return Self::Published;
        }
        if pending > 0 {
            return if published > 0 {
                Self::Publishing
            } else if any(TargetStatus::Retrying) || any(TargetStatus::WaitingForAccount) {
                Self::Queued
            } else {
                Self::Scheduled
            };
        }
        if published > 0 {
            return Self::PartiallyPublished;
        }
        if targets.iter().all(|s| *s == TargetStatus::Failed) {
            return Self::Failed;
        }
        // Only drafts and failures remain: nothing is due to go out.
        Self::Draft
    }
}

#[cfg(test)]
mod tests {
    use super::{PostStatus as P, TargetStatus as T};

    #[test]
    fn derivation() {
        let cases: &[(&[T], bool, P)] = &[
            (&[], false, P::Draft),
            (&[], true, P::Scheduled),
            (&[T::Draft, T::Draft], false, P::Draft),
            (&[T::Scheduled, T::Scheduled], true, P::Scheduled),
            (&[T::Scheduled, T::Retrying], true, P::Queued),
            (&[T::Retrying], true, P::Queued),
            (&[T::Published, T::Publishing], true, P::Publishing),
            (&[T::Published, T::Retrying], true, P::Publishing),
            (&[T::Published, T::Published], true, P::Published),
            (
                &[T::Published, T::Published, T::Failed],
                true,
                P::PartiallyPublished,
            ),
            (&[T::Failed, T::Failed], true, P::Failed),
            (&[T::Published, T::NeedsReview], true, P::NeedsReview),
            (&[T::WaitingForAccount], true, P::Queued),
            (&[T::WaitingForAccount, T::Scheduled], true, P::Queued),
            (&[T::Published, T::WaitingForAccount], true, P::Publishing),
        ];
        for (targets, scheduled, expected) in cases {
            assert_eq!(P::derive(targets, *scheduled), *expected, "{targets:?}");
        }
    }

    #[test]
    fn pending_and_due() {
        assert!(T::PENDING.iter().all(|s| s.is_pending()));
        assert!(!T::Publishing.is_pending() && !T::Draft.is_pending());
        // A target waiting for its account has no queue job, and may be retried by hand.
        assert!(!T::WaitingForAccount.is_pending() && !T::WaitingForAccount.is_locked());
        assert!(T::WaitingForAccount.is_settled_unsuccessfully());
        let at = chrono::DateTime::from_timestamp(1_000, 0).expect("valid");
        let later = chrono::DateTime::from_timestamp(2_000, 0).expect("valid");
        assert_eq!(super::due_at(at, None), at);
        assert_eq!(super::due_at(at, Some(later)), later);
        assert_eq!(super::due_at(later, Some(at)), later);
    }

    #[test]
    fn publishable() {
        use crate::domain::post::ApprovalStatus as A;
        assert!(super::is_publishable(A::NotRequired, false));
        assert!(super::is_publishable(A::Approved, false));
        assert!(!super::is_publishable(A::Approved, true));
        assert!(!super::is_publishable(A::Pending, false));
        assert!(!super::is_publishable(A::Rejected, false));
    }

    #[test]
    fn names_round_trip() {
        for s in T::ALL {
            assert_eq!(T::parse(s.as_str()), Some(s));
        }
        for s in P::ALL {
            assert_eq!(P::parse(s.as_str()), Some(s));
        }
    }
}
