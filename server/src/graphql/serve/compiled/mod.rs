//! Compiled reads: a `posts` page answered by one SQL statement that writes each post's
//! JSON, the way Hasura and PostGraphile answer lists.
//!
//! A page of 50 posts with their targets is the API's hottest read. Through the stock
//! executor it costs two statements (the page, then its targets) that read every column,
//! a decoded row per post and per target, a `Value` tree and its serialisation. Here the
//! selection is compiled once per document into SQL that selects only the fields asked
//! for and concatenates them as JSON text (targets in a correlated subquery, in the same
//! order as the stock path); the server splices the posts' JSON into the response and
//! writes the cursors and `pageInfo` itself.
//!
//! A plan is used only where it answers exactly as the stock executor does:
//! - it is learned from a document that has run once through the stock executor without
//!   errors (so it passed validation and the depth and complexity limits; of these only
//!   the argument checks depend on variable values, and the plan makes the same checks on
//!   every request);
//! - it covers a query whose only root field is `posts`, with fields, aliases and
//!   fragments but no directives or repeated response keys, and every field below
//!   `posts` in the descriptor tables of `schema::columns` (posts, media, targets, their
//!   options and latest metrics);
//! - anything a request brings that the plan cannot answer in the same words (no token,
//!   a variable value of the wrong type, a page size out of range, a bad cursor, a stored
//!   value the schema does not know or that would not deserialise, a year chrono writes
//!   differently, a database error) makes it step aside, and the stock executor answers,
//!   errors included.
//!
//! By concern: [`plan`] (which documents compile), [`arguments`] (a request's arguments,
//! checked as the stock executor checks them), [`sql`] (the statement, from the descriptor
//! tables of `schema::columns` that the stock resolvers are declared with) and [`write`]
//! (the response body); this module keeps the plans and answers. An answer runs in the
//! same span as an execution by the stock executor (`schema::span`).

mod arguments;
mod plan;
mod sql;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::Variables;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use tracing::Instrument;
use uuid::Uuid;

pub use plan::{Plan, compile};

use crate::graphql::schema::Auth;
use crate::graphql::schema::columns::UNKNOWN;
use crate::graphql::schema::span::{self, AnsweredBy};
use crate::posts::{Keyset, SortKey};

/// Most query texts known (with their plans, or that they do not compile); when full the
/// cache starts over.
const MAX_PLANS: usize = 1_000;
/// Most operations known of one query text; when full its list starts over.
const MAX_OPERATIONS: usize = 16;
/// Longest query text whose plan is kept.
const MAX_QUERY_BYTES: usize = 16 * 1024;

/// Plans of compiled reads, by query text and operation name.
#[derive(Clone)]
pub struct CompiledReads {
    db: DatabaseConnection,
    plans: Arc<RwLock<HashMap<String, Vec<Known>>>>,
    enabled: bool,
}

/// What is known of one operation of a query text: its name, and its plan (`None`: it
/// does not compile).
type Known = (Option<String>, Option<Arc<Plan>>);

/// What the cache knows of a document.
pub enum Lookup {
    /// It compiles: answer with this plan.
    Plan(Arc<Plan>),
    /// It does not compile: the stock executor answers.
    Stock,
    /// Not seen yet: compile it, and keep the plan once the stock executor has run the
    /// document without errors.
    Unknown,
}

impl CompiledReads {
    /// Compiled reads on `db` (Postgres only; on other backends, and when not `enabled`,
    /// every document goes to the stock executor).
    pub fn new(db: DatabaseConnection, enabled: bool) -> Self {
        let enabled = enabled && db.get_database_backend() == DatabaseBackend::Postgres;
        Self {
            db,
            plans: Arc::default(),
            enabled,
        }
    }

    /// What is known of the document `query` with operation `operation`.
    pub fn lookup(&self, query: &str, operation: Option<&str>) -> Lookup {
        if !self.enabled || query.len() > MAX_QUERY_BYTES {
            return Lookup::Stock;
        }
        let Ok(plans) = self.plans.read() else {
            return Lookup::Stock;
        };
        let known = plans
            .get(query)
            .and_then(|known| known.iter().find(|(name, _)| name.as_deref() == operation));
        match known {
            Some((_, Some(plan))) => Lookup::Plan(plan.clone()),
            Some((_, None)) => Lookup::Stock,
            None => Lookup::Unknown,
        }
    }

    /// Keeps what `compile` made of a document's operation (one that exists): its plan
    /// once the stock executor ran it without errors, or that it does not compile.
    pub fn remember(&self, query: String, operation: Option<String>, plan: Option<Plan>) {
        if let Ok(mut plans) = self.plans.write() {
            if plans.len() >= MAX_PLANS {
                plans.clear();
            }
            let known = plans.entry(query).or_default();
            known.retain(|(name, _)| *name != operation);
            if known.len() >= MAX_OPERATIONS {
                known.clear();
            }
            known.push((operation, plan.map(Arc::new)));
        }
    }

    /// The response body `plan` gives for this request, or `None` when the stock executor
    /// must answer it.
    pub async fn answer(&self, plan: &Plan, variables: &Variables, auth: &Auth) -> Option<Vec<u8>> {
        let span = span::operation(plan.operation.as_deref(), AnsweredBy::Compiled);
        self.answer_in_span(plan, variables, auth)
            .instrument(span)
            .await
    }

    /// [`Self::answer`], in its span.
    async fn answer_in_span(
        &self,
        plan: &Plan,
        variables: &Variables,
        auth: &Auth,
    ) -> Option<Vec<u8>> {
        let Auth(Ok(actor)) = auth else {
            return None;
        };
        let arguments = plan.arguments(variables)?;
        let statement = plan.statement(&actor.tenant_id, &arguments);
        let rows = match self.db.query_all(statement).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::debug!(%err, "compiled read failed; the stock executor answers");
                return None;
            }
        };
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let decoded = (|| -> Result<_, sea_orm::DbErr> {
                Ok((
                    row.try_get_by_index::<Uuid>(0)?,
                    row.try_get_by_index::<DateTime<Utc>>(1)?,
                    row.try_get_by_index::<Option<DateTime<Utc>>>(2)?,
                    row.try_get_by_index::<Option<String>>(3)?,
                ))
            })();
            let (id, created_at, scheduled_at, node) = match decoded {
                Ok(decoded) => decoded,
                Err(err) => {
                    // The statement is ours: this is a bug, but the stock executor can answer.
                    tracing::warn!(%err, "cannot decode a compiled read's row");
                    return None;
                }
            };
            if node
                .as_deref()
                .is_some_and(|n| n.as_bytes().contains(&UNKNOWN))
            {
                tracing::debug!(
                    post = %id,
                    "a value the plan cannot write (a stored value the schema does not know, \
                     or a bug); the stock executor answers"
                );
                return None;
            }
            let value = match arguments.page.key {
                SortKey::CreatedAt => Some(created_at),
                SortKey::ScheduledAt => scheduled_at,
            };
            page.push((Keyset { value, id }, node));
        }
        let has_next_page = page.len() as u64 > arguments.page.first;
        page.truncate(arguments.page.first as usize);
        plan.write(&arguments, &page, has_next_page)
    }

    /// The statement `query` (with `variables`) runs for `tenant`, when it compiles: what
    /// the benchmark gives pgbench.
    pub fn statement_of(
        query: &str,
        variables: &Variables,
        tenant: &str,
    ) -> Result<Statement, CompileError> {
        let document = async_graphql::parser::parse_query(query)
            .map_err(|err| CompileError(err.to_string()))?;
        let plan = compile(&document, None).ok_or_else(|| CompileError("not compiled".into()))?;
        let arguments = plan
            .arguments(variables)
            .ok_or_else(|| CompileError("arguments do not apply".into()))?;
        Ok(plan.statement(tenant, &arguments))
    }
}

/// Why a document has no plan (see [`CompiledReads::statement_of`]).
#[derive(Debug, thiserror::Error)]
#[error("no compiled read: {0}")]
pub struct CompileError(String);
