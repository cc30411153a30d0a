//! The authorization table: every root field of `schema.graphql`, classified by who may
//! call it and what everyone else gets, with a minimal valid call of it. A field may have
//! several cases (e.g. `updatePost` edits for any member, but lifting `approvalRequired`
//! is for approvers; queue operations in `TENANT` and in `INSTANCE` scope).
//!
//! Order matters where cases share the victim's state: pauses are resumed by the next
//! case, and `archivePosts` (which archives every settled post of the victim) comes last.

use serde_json::{Value, json};

/// A root operation type of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Query,
    Mutation,
    Subscription,
}

/// What a caller outside the victim's tenant gets from a read by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// `data.<field>` is null, without error.
    Null,
    /// `NOT_FOUND`, with `data` null.
    NotFound,
    /// (Subscriptions) accepted, and nothing of the victim's is ever delivered.
    Silent,
}

/// Which check comes first for an operation gated by a role and acting on one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The role: `FORBIDDEN` for whoever lacks it, before the item is looked up.
    RoleFirst,
    /// The item: `NOT_FOUND` for another tenant's, then the role (`FORBIDDEN`).
    TenantFirst,
}

/// Who may call an operation, and what everyone else gets. Anonymous callers always get
/// `UNAUTHENTICATED` (over WebSocket: the socket closes 4401 at the first `subscribe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Any authenticated caller; shows no tenant's data.
    Authenticated,
    /// Reads the caller's tenant's data (no id): another tenant sees its own, none of the
    /// victim's.
    TenantRead,
    /// Reads one of the tenant's items by id.
    TenantReadById(Missing),
    /// Changes one of the tenant's items by id, any member: `NOT_FOUND` for other tenants.
    TenantMutationById,
    /// Acts on the caller's tenant's state (no id), any member: another tenant acts on its
    /// own and sees none of the victim's.
    TenantSharedState,
    /// Names another tenant's item (a connection) in its input: it reads as unknown
    /// (`BAD_USER_INPUT`, the same answer as for an id that exists nowhere).
    ForeignReference,
    /// Needs `role` and acts on one item by id.
    RoleGatedById(&'static str, Order),
    /// Needs `role` and acts on the caller's tenant (no id): `FORBIDDEN` without the role;
    /// another tenant's holder of the role acts on its own tenant.
    RoleGatedShared(&'static str),
    /// Acts on the whole instance: the operators (`HERALD_OPERATORS`) only; `FORBIDDEN`
    /// for everyone else, whatever roles they hold in their tenant.
    OperatorOnly,
}

/// Fresh state of the victim's tenant made for one case before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Nothing beyond the shared fixtures.
    Nothing,
    /// A draft on `x`.
    Draft,
    /// A post scheduled tomorrow.
    Scheduled,
    /// A draft that requires approval (pending).
    PendingApproval,
    /// A draft that requires approval, rejected by an approver.
    Rejected,
    /// A post, due an hour ago, whose targets failed (retryable, markable).
    Failed,
    /// A post whose publishing failed for good: a dead-lettered job.
    Dead,
    /// A second account on `example`, not the default.
    Connection,
    /// A file in the media library.
    Media,
}

/// The victim's items a call names.
#[derive(Debug, Clone, Default)]
pub struct Victim {
    /// The post made by the case's [`Setup`].
    pub post: String,
    /// Its first target.
    pub target: String,
    /// The connection made by [`Setup::Connection`], else the tenant's default one.
    pub connection: String,
    /// The media library file made by [`Setup::Media`].
    pub media: String,
}

/// One row of the table.
pub struct Case {
    pub root: Root,
    pub field: &'static str,
    pub class: Class,
    pub setup: Setup,
    /// A minimal valid document calling the field.
    pub document: &'static str,
    /// Its variables.
    pub variables: fn(&Victim) -> Value,
    /// For [`Class::RoleGatedShared`]: the exact `data` an empty tenant's caller with the
    /// role gets (the victim's owner must get something else).
    pub foreign: Option<fn() -> Value>,
    /// Whether the rightful caller's call changes the victim's state (proves that the
    /// state snapshot sees what this operation changes).
    pub changes: bool,
    /// Whether the rightful call starts publishing: wait until it settles.
    pub settles: bool,
    /// Whether the call acts on a draft of the caller's own, passed as `$own` (made for
    /// each caller before it calls).
    pub own_draft: bool,
}

fn none(_: &Victim) -> Value {
    json!({})
}

fn post_id(v: &Victim) -> Value {
    json!({"id": v.post})
}

fn connection_id(v: &Victim) -> Value {
    json!({"id": v.connection})
}

fn media_id(v: &Victim) -> Value {
    json!({"id": v.media})
}

const fn case(
    root: Root,
    field: &'static str,
    class: Class,
    setup: Setup,
    document: &'static str,
    variables: fn(&Victim) -> Value,
) -> Case {
    Case {
        root,
        field,
        class,
        setup,
        document,
        variables,
        foreign: None,
        changes: matches!(root, Root::Mutation),
        settles: false,
        own_draft: false,
    }
}

impl Case {
    const fn foreign(mut self, data: fn() -> Value) -> Self {
        self.foreign = Some(data);
        self
    }

    const fn unchanging(mut self) -> Self {
        self.changes = false;
        self
    }

    const fn settling(mut self) -> Self {
        self.settles = true;
        self
    }

    const fn on_own_draft(mut self) -> Self {
        self.own_draft = true;
        self
    }
}

/// Every case, in the order they run.
/// Root fields whose refusals are checked by a dedicated test instead of the matrix,
/// because their rightful calls need a platform's OAuth app and a fake authorisation
/// server (or, for `shareNext`, an account with a posting schedule): `(root, field, test
/// file under tests/api, test function)`. Each named test
/// calls the field as anonymous, as another tenant and as a member without the role.
pub const CHECKED_ELSEWHERE: &[(Root, &str, &str, &str)] = &[
    (
        Root::Mutation,
        "shareNext",
        "slots.rs",
        "another_tenants_account_reads_as_unknown",
    ),
    (
        Root::Mutation,
        "beginConnect",
        "oauth.rs",
        "spa_flow_refuses_replay_expiry_other_tenants_pkce_mismatch_and_unlisted_redirects",
    ),
    (
        Root::Mutation,
        "completeConnect",
        "oauth.rs",
        "spa_flow_refuses_replay_expiry_other_tenants_pkce_mismatch_and_unlisted_redirects",
    ),
    (
        Root::Mutation,
        "beginConnect",
        "oauth.rs",
        "connect_operations_refuse_anonymous_callers",
    ),
    (
        Root::Mutation,
        "completeConnect",
        "oauth.rs",
        "connect_operations_refuse_anonymous_callers",
    ),
    (
        Root::Mutation,
        "uploadMedia",
        "media.rs",
        "upload_media_refuses_anonymous_callers_and_stores_into_the_callers_tenant",
    ),
    (
        Root::Subscription,
        "connectionUpdated",
        "token_refresh.rs",
        "a_refused_grant_asks_to_reconnect_on_the_subscription",
    ),
];

pub fn cases() -> Vec<Case> {
    use Class::*;
    use Root::*;
    vec![
        // Queries.
        case(
            Query,
            "me",
            Authenticated,
            Setup::Nothing,
            "{ me { userId tenantId roles } }",
            none,
        ),
        case(
            Query,
            "platforms",
            Authenticated,
            Setup::Nothing,
            "{ platforms { id } }",
            none,
        ),
        case(
            Query,
            "validatePost",
            Authenticated,
            Setup::Nothing,
            "{ validatePost(input: {content: \"hi\", platforms: [\"example\"]}) { platform valid } }",
            none,
        ),
        case(
            Query,
            "post",
            TenantReadById(Missing::Null),
            Setup::Draft,
            "query($id: ID!) { post(id: $id) { id content ownerId } }",
            post_id,
        ),
        case(
            Query,
            "posts",
            TenantRead,
            Setup::Draft,
            "{ posts { edges { node { id content } } } }",
            none,
        ),
        case(
            Query,
            "postQueueStatus",
            TenantReadById(Missing::NotFound),
            Setup::Scheduled,
            "query($id: ID!) { postQueueStatus(postId: $id) { targetId status job { postId } } }",
            post_id,
        ),
        case(
            Query,
            "connections",
            TenantRead,
            Setup::Nothing,
            "{ connections { id displayName } }",
            none,
        ),
        case(
            Query,
            "media",
            TenantRead,
            Setup::Media,
            "{ media { edges { node { id fileName url } } } }",
            none,
        ),
        case(
            Query,
            "mediaItem",
            TenantReadById(Missing::Null),
            Setup::Media,
            "query($id: ID!) { mediaItem(id: $id) { id fileName url } }",
            media_id,
        ),
        case(
            Query,
            "queueStats",
            RoleGatedShared("admin"),
            Setup::Nothing,
            "{ queueStats { scope scheduled dead } }",
            none,
        )
        .foreign(|| json!({"queueStats": {"scope": "TENANT", "scheduled": 0, "dead": 0}})),
        case(
            Query,
            "queueStats",
            OperatorOnly,
            Setup::Nothing,
            "{ queueStats(scope: INSTANCE) { scope scheduled dead } }",
            none,
        ),
        case(
            Query,
            "queueJobs",
            RoleGatedShared("admin"),
            Setup::Nothing,
            "{ queueJobs(state: SCHEDULED) { nodes { postId } } }",
            none,
        )
        .foreign(|| json!({"queueJobs": {"nodes": []}})),
        case(
            Query,
            "queueJobs",
            OperatorOnly,
            Setup::Nothing,
            "{ queueJobs(state: SCHEDULED, scope: INSTANCE) { nodes { postId } } }",
            none,
        ),
        // Mutations on posts.
        case(
            Mutation,
            "createPost",
            TenantSharedState,
            Setup::Nothing,
            "mutation { createPost(input: {content: \"new\", platforms: [\"x\"]}) { id ownerId } }",
            none,
        ),
        case(
            Mutation,
            "createPost",
            ForeignReference,
            Setup::Nothing,
            "mutation($id: ID!) { createPost(input: {content: \"mine\", \
             targets: [{platform: \"example\", connectionId: $id}]}) { id } }",
            connection_id,
        ),
        case(
            Mutation,
            "updatePost",
            TenantMutationById,
            Setup::Draft,
            "mutation($id: ID!) { updatePost(id: $id, input: {content: \"edited\"}) { id content } }",
            post_id,
        ),
        case(
            Mutation,
            "updatePost",
            ForeignReference,
            Setup::Nothing,
            "mutation($own: ID!, $id: ID!) { updatePost(id: $own, input: {targets: \
             [{platform: \"example\", connectionId: $id}]}) { id } }",
            connection_id,
        )
        .on_own_draft(),
        case(
            Mutation,
            "updatePost",
            RoleGatedById("approver", Order::TenantFirst),
            Setup::PendingApproval,
            "mutation($id: ID!) { updatePost(id: $id, input: {approvalRequired: false}) \
             { id approvalStatus } }",
            post_id,
        ),
        // Undoing a rejection by lifting the requirement is the approvers' too.
        case(
            Mutation,
            "updatePost",
            RoleGatedById("approver", Order::TenantFirst),
            Setup::Rejected,
            "mutation($id: ID!) { updatePost(id: $id, input: {approvalRequired: false}) \
             { id approvalStatus } }",
            post_id,
        ),
        case(
            Mutation,
            "deletePost",
            TenantMutationById,
            Setup::Draft,
            "mutation($id: ID!) { deletePost(id: $id) }",
            post_id,
        ),
        case(
            Mutation,
            "schedulePost",
            TenantMutationById,
            Setup::Draft,
            "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id status } }",
            |v| json!({"id": v.post, "at": crate::harness::days_from_now(2)}),
        ),
        case(
            Mutation,
            "unschedulePost",
            TenantMutationById,
            Setup::Scheduled,
            "mutation($id: ID!) { unschedulePost(id: $id) { id status } }",
            post_id,
        ),
        case(
            Mutation,
            "approvePost",
            RoleGatedById("approver", Order::RoleFirst),
            Setup::PendingApproval,
            "mutation($id: ID!) { approvePost(id: $id) { id approvalStatus } }",
            post_id,
        ),
        case(
            Mutation,
            "rejectPost",
            RoleGatedById("approver", Order::RoleFirst),
            Setup::PendingApproval,
            "mutation($id: ID!) { rejectPost(id: $id, reason: \"no\") { id approvalStatus } }",
            post_id,
        ),
        case(
            Mutation,
            "retryPost",
            TenantMutationById,
            Setup::Failed,
            "mutation($id: ID!) { retryPost(id: $id) { id status } }",
            post_id,
        )
        .settling(),
        case(
            Mutation,
            "markPublished",
            TenantMutationById,
            Setup::Failed,
            "mutation($id: ID!) { markPublished(targetId: $id, url: \"https://x.example/1\") { id status } }",
            |v| json!({"id": v.target}),
        ),
        case(
            Mutation,
            "refreshPostMetrics",
            TenantMutationById,
            Setup::Draft,
            "mutation($id: ID!) { refreshPostMetrics(postId: $id) { target { id } error } }",
            post_id,
        )
        // A draft has no published target to refresh: the call answers, nothing changes.
        .unchanging(),
        // The queue.
        case(
            Mutation,
            "pauseQueue",
            RoleGatedShared("admin"),
            Setup::Nothing,
            "mutation { pauseQueue { scope scheduled dead } }",
            none,
        )
        .foreign(|| json!({"pauseQueue": {"scope": "TENANT", "scheduled": 0, "dead": 0}})),
        case(
            Mutation,
            "resumeQueue",
            RoleGatedShared("admin"),
            Setup::Nothing,
            "mutation { resumeQueue { scope scheduled dead } }",
            none,
        )
        .foreign(|| json!({"resumeQueue": {"scope": "TENANT", "scheduled": 0, "dead": 0}})),
        case(
            Mutation,
            "pauseQueue",
            OperatorOnly,
            Setup::Nothing,
            "mutation { pauseQueue(scope: INSTANCE) { scope globallyPaused } }",
            none,
        ),
        case(
            Mutation,
            "resumeQueue",
            OperatorOnly,
            Setup::Nothing,
            "mutation { resumeQueue(scope: INSTANCE) { scope globallyPaused } }",
            none,
        ),
        case(
            Mutation,
            "clearFailedJobs",
            RoleGatedShared("admin"),
            Setup::Dead,
            "mutation { clearFailedJobs }",
            none,
        )
        .foreign(|| json!({"clearFailedJobs": 0})),
        case(
            Mutation,
            "clearFailedJobs",
            OperatorOnly,
            Setup::Dead,
            "mutation { clearFailedJobs(scope: INSTANCE) }",
            none,
        ),
        // Accounts.
        case(
            Mutation,
            "connectAccount",
            RoleGatedShared("admin"),
            Setup::Nothing,
            "mutation { connectAccount(platform: \"example\", credentials: {accessToken: \"tok-new\"}) \
             { id externalAccountId } }",
            none,
        ),
        case(
            Mutation,
            "setDefaultConnection",
            RoleGatedById("admin", Order::RoleFirst),
            Setup::Connection,
            "mutation($id: ID!) { setDefaultConnection(id: $id) { id isDefault } }",
            connection_id,
        ),
        case(
            Mutation,
            "disconnectAccount",
            RoleGatedById("admin", Order::RoleFirst),
            Setup::Connection,
            "mutation($id: ID!) { disconnectAccount(id: $id) }",
            connection_id,
        ),
        case(
            Mutation,
            "createMediaUpload",
            TenantSharedState,
            Setup::Nothing,
            "mutation { createMediaUpload(fileName: \"new.png\", size: 10) { id uploadUrl } }",
            none,
        ),
        case(
            Mutation,
            "deleteMedia",
            TenantMutationById,
            Setup::Media,
            "mutation($id: ID!) { deleteMedia(id: $id) }",
            media_id,
        ),
        // Posting schedules.
        case(
            Query,
            "postingSchedule",
            TenantReadById(Missing::NotFound),
            Setup::Connection,
            "query($id: ID!) { postingSchedule(connectionId: $id) { connectionId timeZone } }",
            connection_id,
        ),
        case(
            Query,
            "queueSlots",
            TenantReadById(Missing::NotFound),
            Setup::Connection,
            "query($id: ID!) { queueSlots(connectionId: $id, from: \"2030-01-07T00:00:00Z\", \
             to: \"2030-01-14T00:00:00Z\") { connectionId slots { at free } } }",
            connection_id,
        ),
        case(
            Mutation,
            "setPostingSchedule",
            RoleGatedById("admin", Order::RoleFirst),
            Setup::Connection,
            "mutation($id: ID!) { setPostingSchedule(connectionId: $id, \
             slots: [{day: MONDAY, time: \"09:00\"}]) { connectionId } }",
            connection_id,
        ),
        // Nothing is queued on the victim's account: compacting moves nothing.
        case(
            Mutation,
            "compactQueue",
            TenantMutationById,
            Setup::Connection,
            "mutation($id: ID!) { compactQueue(connectionId: $id) { id } }",
            connection_id,
        )
        .unchanging(),
        // Subscriptions.
        case(
            Subscription,
            "postUpdated",
            TenantReadById(Missing::Silent),
            Setup::Draft,
            "subscription($id: ID) { postUpdated(id: $id) { id content } }",
            post_id,
        ),
        case(
            Subscription,
            "queueStatsUpdated",
            RoleGatedShared("admin"),
            Setup::Nothing,
            "subscription { queueStatsUpdated { scope scheduled dead } }",
            none,
        )
        .foreign(|| json!({"queueStatsUpdated": {"scope": "TENANT", "scheduled": 0, "dead": 0}})),
        case(
            Subscription,
            "queueStatsUpdated",
            OperatorOnly,
            Setup::Nothing,
            "subscription { queueStatsUpdated(scope: INSTANCE) { scope scheduled dead } }",
            none,
        ),
        // Last: archives every settled post of the victim's tenant.
        case(
            Mutation,
            "archivePosts",
            TenantSharedState,
            Setup::Draft,
            "mutation($t: DateTime!) { archivePosts(olderThan: $t) }",
            |_| json!({"t": crate::harness::days_from_now(1)}),
        ),
    ]
}
