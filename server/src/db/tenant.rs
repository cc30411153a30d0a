//! Row-level security's view of the caller: the tenant a database session acts for.
//!
//! The API's pool ([`connect_api`](super::connect_api)) acts as the `herald_api` role,
//! which Postgres lets see and change only the rows of the tenant in the session setting
//! `herald.tenant`. The pool sets it from [`scope`] each time a connection is handed out,
//! so a query run outside a tenant's scope (a missing filter, a forgotten scope) sees no
//! tenant's rows at all. The workers' pool ([`connect_worker`](super::connect_worker))
//! acts as `herald_worker`, which crosses tenants.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static TENANT: Arc<str>;
}

/// Runs `work` on behalf of `tenant`: the API pool's connections it uses see that
/// tenant's rows only.
pub async fn scope<F: Future>(tenant: &str, work: F) -> F::Output {
    TENANT.scope(Arc::from(tenant), work).await
}

/// Runs the synchronous `work` on behalf of `tenant` (what it spawns with
/// [`spawn_in_scope`] keeps the scope).
pub fn sync_scope<R>(tenant: &str, work: impl FnOnce() -> R) -> R {
    TENANT.sync_scope(Arc::from(tenant), work)
}

/// The tenant of the current scope, if any.
pub fn current() -> Option<Arc<str>> {
    TENANT.try_with(Arc::clone).ok()
}

/// Spawns `work` in the current tenant's scope (for work that outlives the caller's
/// task, e.g. a data loader's batch).
pub fn spawn_in_scope<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match current() {
        Some(tenant) => tokio::spawn(TENANT.scope(tenant, work)),
        None => tokio::spawn(work),
    }
}

/// The statement that names the session's tenant (`$1`; empty outside any scope).
pub(super) const SET_TENANT: &str = "SELECT set_config('herald.tenant', $1, false)";

/// The current tenant as [`SET_TENANT`]'s parameter.
pub(super) fn setting() -> String {
    current().map(|t| t.to_string()).unwrap_or_default()
}
