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
//!   `posts` (posts, media, targets, their options and latest metrics);
//! - anything a request brings that the plan cannot answer in the same words (no token,
//!   a variable value of the wrong type, a page size out of range, a bad cursor, a stored
//!   value the schema does not know or that would not deserialise, a year chrono writes
//!   differently, a database error) makes it step aside, and the stock executor answers,
//!   errors included.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::resolver_utils::EnumType;
use async_graphql::{InputType, Name, Variables};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, QuerySelect, QueryTrait, Statement,
};
use uuid::Uuid;

use super::types::{ApprovalStatus, PostFilter, PostOrder, PostStatus, TargetStatus};
use super::{Auth, cursor};
use crate::db::entities::post;
use crate::domain;
use crate::posts::{self, Keyset, PageRequest, SortKey};

/// Most query texts known (with their plans, or that they do not compile); when full the
/// cache starts over.
const MAX_PLANS: usize = 1_000;
/// Most operations known of one query text; when full its list starts over.
const MAX_OPERATIONS: usize = 16;
/// Longest query text whose plan is kept.
const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Deepest fragment nesting followed (validation refuses cycles; this bounds the walk).
const MAX_FRAGMENT_DEPTH: usize = 16;
/// Most fields a plan writes per object (a selection spreading a fragment twice repeats a
/// response key and is refused at once, so the walk stays within the document's size).
const MAX_FIELDS: usize = 256;
/// Written by the SQL in place of a value the schema does not know (an unknown stored
/// status). JSON text never holds it raw (`to_json` escapes control characters), so
/// finding it means the stock executor must answer (and report the error).
const UNKNOWN: u8 = 1;

/// The table of posts, as the page statement names it.
const POSTS: &str = "\"social_posts\"";

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

/// A compiled `posts` query.
pub struct Plan {
    /// The response key of `posts`.
    key: Name,
    /// `posts`'s arguments as written (literals, or values with variables).
    arguments: Vec<(Name, async_graphql_value::Value)>,
    /// Variables of the operation: name, whether null is refused, default.
    variables: Vec<(Name, bool, Option<async_graphql::Value>)>,
    /// The connection's fields, in selection order.
    connection: Vec<(Name, ConnectionField)>,
    /// The SQL expression that writes one post's JSON (`NULL` when no edge asks for it).
    node_sql: String,
}

enum ConnectionField {
    Typename,
    Edges(Vec<(Name, EdgeField)>),
    PageInfo(Vec<(Name, PageInfoField)>),
}

enum EdgeField {
    Typename,
    Cursor,
    Node,
}

enum PageInfoField {
    Typename,
    HasNextPage,
    HasPreviousPage,
    StartCursor,
    EndCursor,
}

/// The arguments of one request, checked.
struct Arguments {
    filter: posts::PostFilter,
    page: PageRequest,
}

impl Plan {
    /// `posts`'s arguments for this request, or `None` when they are not what the stock
    /// executor would accept as they are.
    fn arguments(&self, variables: &Variables) -> Option<Arguments> {
        for (name, non_null, default) in &self.variables {
            match variables.get(name) {
                Some(async_graphql::Value::Null) if *non_null => return None,
                None if *non_null && default.is_none() => return None,
                _ => {}
            }
        }
        let default_of = |variable: &Name| {
            self.variables
                .iter()
                .find(|(name, _, _)| name == variable)
                .and_then(|(_, _, default)| default.clone())
        };
        // `None`: the stock executor must answer; `Some(None)`: the argument is absent.
        let value_of = |argument: &str| -> Option<Option<async_graphql::Value>> {
            let Some((_, value)) = self.arguments.iter().find(|(n, _)| n.as_str() == argument)
            else {
                return Some(None);
            };
            if let async_graphql_value::Value::Variable(variable) = value
                && !variables.contains_key(variable)
                && default_of(variable).is_none()
            {
                // An argument given as an absent variable is absent.
                return Some(None);
            }
            // An absent variable deeper in (an input object's field) is left to the stock
            // executor.
            value
                .clone()
                .into_const_with(|variable| {
                    variables
                        .get(&variable)
                        .cloned()
                        .or_else(|| default_of(&variable))
                        .ok_or(())
                })
                .ok()
                .map(Some)
        };
        let filter: Option<PostFilter> = parse(value_of("filter")?)?;
        let order_by: Option<PostOrder> = parse(value_of("orderBy")?)?;
        let first: Option<i32> = parse(value_of("first")?)?;
        let after: Option<String> = parse(value_of("after")?)?;
        let page = super::query::page_request(first, order_by, after.as_deref()).ok()?;
        Some(Arguments {
            filter: filter.unwrap_or_default().into(),
            page,
        })
    }

    /// The page statement with the compiled select list: id and sort values (for cursors)
    /// and each post's JSON.
    fn statement(&self, tenant: &str, arguments: &Arguments) -> Statement {
        crate::db::posts::page_query(tenant, &arguments.filter, arguments.page)
            .select_only()
            .column(post::Column::Id)
            .column(post::Column::CreatedAt)
            .column(post::Column::ScheduledAt)
            .expr(Expr::cust(self.node_sql.as_str()))
            .build(DatabaseBackend::Postgres)
    }

    /// The response body for a page.
    fn write(
        &self,
        arguments: &Arguments,
        page: &[(Keyset, Option<String>)],
        has_next_page: bool,
    ) -> Option<Vec<u8>> {
        let key = arguments.page.key;
        let cursor = |out: &mut String, keyset: Option<&Keyset>| match keyset {
            Some(keyset) => {
                out.push('"');
                out.push_str(&cursor::encode(key, *keyset));
                out.push('"');
            }
            None => out.push_str("null"),
        };
        let mut out = String::with_capacity(super::http::RESPONSE_BUFFER_BYTES);
        let _ = write!(out, "{{\"data\":{{\"{}\":", self.key);
        write_object(&mut out, &self.connection, |out, field| {
            match field {
                ConnectionField::Typename => out.push_str("\"PostConnection\""),
                ConnectionField::Edges(fields) => {
                    out.push('[');
                    for (n, (keyset, node)) in page.iter().enumerate() {
                        if n > 0 {
                            out.push(',');
                        }
                        write_object(out, fields, |out, field| {
                            match field {
                                EdgeField::Typename => out.push_str("\"PostEdge\""),
                                EdgeField::Cursor => cursor(out, Some(keyset)),
                                EdgeField::Node => out.push_str(node.as_deref()?),
                            }
                            Some(())
                        })?;
                    }
                    out.push(']');
                }
                ConnectionField::PageInfo(fields) => write_object(out, fields, |out, field| {
                    match field {
                        PageInfoField::Typename => out.push_str("\"PageInfo\""),
                        PageInfoField::HasNextPage => out.push_str(bool_json(has_next_page)),
                        PageInfoField::HasPreviousPage => {
                            out.push_str(bool_json(arguments.page.after.is_some()))
                        }
                        PageInfoField::StartCursor => cursor(out, page.first().map(|(k, _)| k)),
                        PageInfoField::EndCursor => cursor(out, page.last().map(|(k, _)| k)),
                    }
                    Some(())
                })?,
            }
            Some(())
        })?;
        out.push_str("}}");
        Some(out.into_bytes())
    }
}

/// Writes `{"key":value,…}` for `fields` in order, each value by `value` (`None` from it
/// stops the writing).
fn write_object<T>(
    out: &mut String,
    fields: &[(Name, T)],
    mut value: impl FnMut(&mut String, &T) -> Option<()>,
) -> Option<()> {
    out.push('{');
    for (index, (name, field)) in fields.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{name}\":");
        value(out, field)?;
    }
    out.push('}');
    Some(())
}

/// An argument as the stock executor reads it, or `None` when it would refuse it: input
/// coercion (`InputType::parse`) ignores fields an input object does not have, which
/// validation refuses.
fn parse<T: InputType>(value: Option<async_graphql::Value>) -> Option<T> {
    let object = matches!(value, Some(async_graphql::Value::Object(_)));
    let given = object.then(|| value.clone()).flatten();
    let parsed = T::parse(value).ok()?;
    match given {
        Some(given) if !known_fields(&given, &parsed.to_value()) => None,
        _ => Some(parsed),
    }
}

/// Whether every input-object field in `given`, at any depth, is in `parsed` (the value
/// parsed and written back, which has every field of its type).
fn known_fields(given: &async_graphql::Value, parsed: &async_graphql::Value) -> bool {
    use async_graphql::Value;
    match (given, parsed) {
        (Value::Object(given), Value::Object(parsed)) => given
            .iter()
            .all(|(key, value)| parsed.get(key).is_some_and(|p| known_fields(value, p))),
        (Value::List(given), Value::List(parsed)) => {
            given.len() == parsed.len() && given.iter().zip(parsed).all(|(g, p)| known_fields(g, p))
        }
        (Value::Object(_), _) => false,
        _ => true,
    }
}

fn bool_json(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// The plan of `document`'s operation `name`, when it is a `posts` query the plans cover.
pub fn compile(document: &ExecutableDocument, name: Option<&str>) -> Option<Plan> {
    let operation = super::operation(document, name)?;
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return None;
    }
    let root = fields(document, &operation.selection_set.node, "Query")?;
    let [posts] = root.as_slice() else {
        return None;
    };
    if posts.name.node.as_str() != "posts" {
        return None;
    }
    let mut node_sql = None;
    let mut connection = Vec::new();
    for field in fields(document, &posts.selection_set.node, "PostConnection")? {
        let compiled = match field.name.node.as_str() {
            "__typename" => ConnectionField::Typename,
            "edges" => {
                let mut edge = Vec::new();
                for field in fields(document, &field.selection_set.node, "PostEdge")? {
                    let compiled = match field.name.node.as_str() {
                        "__typename" => EdgeField::Typename,
                        "cursor" => EdgeField::Cursor,
                        "node" if node_sql.is_none() => {
                            node_sql = Some(post_sql(document, &field.selection_set.node)?);
                            EdgeField::Node
                        }
                        _ => return None,
                    };
                    edge.push((response_key(field), compiled));
                }
                ConnectionField::Edges(edge)
            }
            "pageInfo" => {
                let mut info = Vec::new();
                for field in fields(document, &field.selection_set.node, "PageInfo")? {
                    let compiled = match field.name.node.as_str() {
                        "__typename" => PageInfoField::Typename,
                        "hasNextPage" => PageInfoField::HasNextPage,
                        "hasPreviousPage" => PageInfoField::HasPreviousPage,
                        "startCursor" => PageInfoField::StartCursor,
                        "endCursor" => PageInfoField::EndCursor,
                        _ => return None,
                    };
                    info.push((response_key(field), compiled));
                }
                ConnectionField::PageInfo(info)
            }
            _ => return None,
        };
        connection.push((response_key(field), compiled));
    }
    let variables = operation
        .variable_definitions
        .iter()
        .map(|definition| {
            let definition = &definition.node;
            (
                definition.name.node.clone(),
                !definition.var_type.node.nullable,
                definition.default_value.as_ref().map(|v| v.node.clone()),
            )
        })
        .collect();
    Some(Plan {
        key: response_key(posts),
        arguments: posts
            .arguments
            .iter()
            .map(|(name, value)| (name.node.clone(), value.node.clone()))
            .collect(),
        variables,
        connection,
        node_sql: node_sql.unwrap_or_else(|| "NULL".to_owned()),
    })
}

fn response_key(field: &Field) -> Name {
    field.alias.as_ref().unwrap_or(&field.name).node.clone()
}

/// The fields of `set` on an object of type `on`, fragments spread; `None` when the
/// selection uses what plans do not cover (directives, arguments below the root, a
/// repeated response key).
fn fields<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    on: &str,
) -> Option<Vec<&'d Field>> {
    let mut out = Vec::new();
    collect(document, set, on, &mut out, &mut HashSet::new(), 0)?;
    Some(out)
}

fn collect<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    on: &str,
    out: &mut Vec<&'d Field>,
    keys: &mut HashSet<&'d Name>,
    depth: usize,
) -> Option<()> {
    if depth > MAX_FRAGMENT_DEPTH {
        return None;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                let arguments_allowed = on == "Query";
                if !field.directives.is_empty()
                    || (!arguments_allowed && !field.arguments.is_empty())
                    || !keys.insert(&field.alias.as_ref().unwrap_or(&field.name).node)
                    || keys.len() > MAX_FIELDS
                {
                    return None;
                }
                out.push(field);
            }
            Selection::InlineFragment(fragment) => {
                let fragment = &fragment.node;
                let matches = fragment
                    .type_condition
                    .as_ref()
                    .is_none_or(|condition| condition.node.on.node.as_str() == on);
                if !fragment.directives.is_empty() || !matches {
                    return None;
                }
                collect(
                    document,
                    &fragment.selection_set.node,
                    on,
                    out,
                    keys,
                    depth + 1,
                )?;
            }
            Selection::FragmentSpread(spread) => {
                let spread = &spread.node;
                let fragment = &document.fragments.get(&spread.fragment_name.node)?.node;
                if !spread.directives.is_empty()
                    || !fragment.directives.is_empty()
                    || fragment.type_condition.node.on.node.as_str() != on
                {
                    return None;
                }
                collect(
                    document,
                    &fragment.selection_set.node,
                    on,
                    out,
                    keys,
                    depth + 1,
                )?;
            }
        }
    }
    Some(())
}

/// How a column that a field copies is written as JSON.
#[derive(Clone, Copy)]
enum Scalar {
    Id,
    Text,
    Int,
    Bool,
    /// `timestamptz`, as `DateTime<Utc>`.
    Timestamp,
    /// `timestamp`, as `NaiveDateTime`.
    LocalTimestamp,
}

/// A field that copies a column: its name, the column, how it is written, whether it is
/// nullable.
type Copied = (&'static str, &'static str, Scalar, bool);

/// The fields of `Post` that copy a column.
const POST_COLUMNS: &[Copied] = &[
    ("id", "id", Scalar::Id, false),
    ("content", "content", Scalar::Text, false),
    ("scheduledAt", "scheduled_at", Scalar::Timestamp, true),
    (
        "localScheduledAt",
        "local_scheduled_at",
        Scalar::LocalTimestamp,
        true,
    ),
    ("timeZone", "timezone", Scalar::Text, false),
    ("postedAt", "posted_at", Scalar::Timestamp, true),
    ("campaign", "campaign", Scalar::Text, true),
    ("notes", "notes", Scalar::Text, true),
    ("approvalRequired", "approval_required", Scalar::Bool, false),
    ("rejectionReason", "rejection_reason", Scalar::Text, true),
    ("failureReason", "failure_reason", Scalar::Text, true),
    ("ownerId", "owner_id", Scalar::Text, false),
    ("createdBy", "created_by", Scalar::Text, false),
    ("createdAt", "created_at", Scalar::Timestamp, false),
    ("updatedAt", "updated_at", Scalar::Timestamp, false),
    ("archivedAt", "archived_at", Scalar::Timestamp, true),
    ("version", "version", Scalar::Int, false),
];

/// The fields of `Target` that copy a column.
const TARGET_COLUMNS: &[Copied] = &[
    ("id", "id", Scalar::Id, false),
    ("platform", "platform", Scalar::Text, false),
    ("connectionId", "connection_id", Scalar::Id, true),
    ("attempts", "attempts", Scalar::Int, false),
    ("platformPostId", "platform_post_id", Scalar::Text, true),
    ("platformUrl", "platform_url", Scalar::Text, true),
    ("lastError", "last_error", Scalar::Text, true),
    ("lastResponseCode", "last_response_code", Scalar::Int, true),
    ("publishedAt", "published_at", Scalar::Timestamp, true),
    ("updatedAt", "updated_at", Scalar::Timestamp, false),
];

/// The fields of `TargetMetrics` that copy a column.
const METRICS_COLUMNS: &[Copied] = &[
    ("fetchedAt", "fetched_at", Scalar::Timestamp, false),
    ("likes", "likes", Scalar::Int, true),
    ("shares", "shares", Scalar::Int, true),
    ("comments", "comments", Scalar::Int, true),
    ("impressions", "impressions", Scalar::Int, true),
];

/// The SQL writing `field` of `table` when it copies one of `columns`.
fn copied(table: &str, columns: &[Copied], field: &str) -> Option<String> {
    let &(_, column, scalar, nullable) = columns.iter().find(|(name, ..)| *name == field)?;
    let column = format!("{table}.\"{column}\"");
    Some(match scalar {
        Scalar::Id => uuid_json(&column, nullable),
        Scalar::Text => string_json(&column, nullable),
        Scalar::Int => int_json(&column, nullable),
        Scalar::Bool => bool_json_sql(&column, nullable),
        Scalar::Timestamp => timestamp_json(&column, true, nullable),
        Scalar::LocalTimestamp => timestamp_json(&column, false, nullable),
    })
}

/// Each field `set` selects on the object type `on`: its response key and the SQL that
/// `write` gives for it (`__typename` is written here); `None` when `write` does not
/// cover a field.
fn members<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    on: &str,
    mut write: impl FnMut(&'d Field) -> Option<String>,
) -> Option<Vec<(Name, String)>> {
    fields(document, set, on)?
        .into_iter()
        .map(|field| {
            let sql = match field.name.node.as_str() {
                "__typename" => format!("'\"{on}\"'"),
                _ => write(field)?,
            };
            Some((response_key(field), sql))
        })
        .collect()
}

/// The SQL expression writing a post's JSON for `set`.
fn post_sql(document: &ExecutableDocument, set: &SelectionSet) -> Option<String> {
    let column = |name: &str| format!("{POSTS}.\"{name}\"");
    let members = members(document, set, "Post", |field| {
        let name = field.name.node.as_str();
        copied(POSTS, POST_COLUMNS, name).or_else(|| match name {
            "status" => Some(enum_json::<PostStatus, _>(&column("status"), |s| {
                domain::status::PostStatus::from(s).as_str()
            })),
            "approvalStatus" => Some(enum_json::<ApprovalStatus, _>(
                &column("approval_status"),
                |s| domain::post::ApprovalStatus::from(s).as_str(),
            )),
            "platforms" => Some(strings_json(&column("platforms"))),
            "mediaUrls" => Some(strings_json(&column("media_urls"))),
            "media" => media_sql(document, &field.selection_set.node),
            "targets" => targets_sql(document, &field.selection_set.node),
            _ => None,
        })
    })?;
    Some(object_sql(&members))
}

/// The SQL expression writing a post's `media` for `set`, as `db::json::media` reads
/// them: the `media` column's items, or (when it is empty) its bare `media_urls`. Items
/// that would not deserialise (which Herald does not write) give [`UNKNOWN`], and the
/// stock executor answers.
fn media_sql(document: &ExecutableDocument, set: &SelectionSet) -> Option<String> {
    let media = format!("{POSTS}.\"media\"");
    let urls = format!("{POSTS}.\"media_urls\"");
    let items = members(document, set, "Media", |field| {
        match field.name.node.as_str() {
            "url" => Some(string_json("(e ->> 'url')", false)),
            "altText" => Some(string_json("(e ->> 'alt')", true)),
            "mimeType" => Some(string_json("(e ->> 'mime_type')", true)),
            _ => None,
        }
    })?;
    // Posts from before media details: the URL alone.
    let bare = members(document, set, "Media", |field| {
        match field.name.node.as_str() {
            "url" => Some(string_json("(e #>> '{}')", false)),
            "altText" | "mimeType" => Some("'null'".to_owned()),
            _ => None,
        }
    })?;
    let optional_string =
        |name: &str| format!("coalesce(jsonb_typeof(e -> '{name}'), 'null') IN ('string', 'null')");
    // Items are read as `jsonb`: of a key given twice the last counts, as in serde_json.
    Some(format!(
        "CASE WHEN json_typeof({media}) <> 'array' THEN chr({UNKNOWN}) \
         WHEN json_array_length({media}) = 0 THEN {bare} \
         ELSE (SELECT CASE WHEN bool_and(coalesce(jsonb_typeof(e) = 'object' \
           AND jsonb_typeof(e -> 'url') = 'string' AND {alt} AND {mime}, false)) \
           THEN '[' || string_agg({item}, ',' ORDER BY n) || ']' ELSE chr({UNKNOWN}) END \
           FROM jsonb_array_elements({media}::jsonb) WITH ORDINALITY AS a(e, n)) END",
        bare = string_elements(&urls, &object_sql(&bare)),
        alt = optional_string("alt"),
        mime = optional_string("mime_type"),
        item = object_sql(&items),
    ))
}

/// The SQL expression writing the JSON array of a post's targets for `set`, in the order
/// of the stock path (creation, then platform).
fn targets_sql(document: &ExecutableDocument, set: &SelectionSet) -> Option<String> {
    let members = members(document, set, "Target", |field| {
        let name = field.name.node.as_str();
        copied("t", TARGET_COLUMNS, name).or_else(|| match name {
            "status" => Some(enum_json::<TargetStatus, _>("t.\"status\"", |s| {
                domain::status::TargetStatus::from(s).as_str()
            })),
            "options" => options_sql(document, &field.selection_set.node),
            "metrics" => metrics_sql(document, &field.selection_set.node),
            _ => None,
        })
    })?;
    Some(format!(
        "'[' || coalesce((SELECT string_agg({}, ',' ORDER BY t.\"created_at\", t.\"platform\") \
         FROM \"post_targets\" t WHERE t.\"post_id\" = {POSTS}.\"id\"), '') || ']'",
        object_sql(&members)
    ))
}

/// The SQL expression writing a target's `options` for `set`, as `db::json::options`
/// reads them: sorted by key (byte order, as a `BTreeMap`), a key given twice counting
/// once with its last value (read as `jsonb`, as serde_json reads it); options that would
/// not deserialise (which Herald does not write) give [`UNKNOWN`].
fn options_sql(document: &ExecutableDocument, set: &SelectionSet) -> Option<String> {
    let members = members(document, set, "TargetOption", |field| {
        match field.name.node.as_str() {
            "key" => Some(string_json("o.k", false)),
            "value" => Some(string_json("(o.v #>> '{}')", false)),
            _ => None,
        }
    })?;
    Some(format!(
        "CASE WHEN json_typeof(t.\"options\") <> 'object' THEN chr({UNKNOWN}) \
         ELSE (SELECT CASE WHEN count(*) = 0 THEN '[]' \
           WHEN bool_and(coalesce(jsonb_typeof(o.v) = 'string', false)) \
           THEN '[' || string_agg({item}, ',' ORDER BY o.k COLLATE \"C\") || ']' \
           ELSE chr({UNKNOWN}) END FROM jsonb_each(t.\"options\"::jsonb) AS o(k, v)) END",
        item = object_sql(&members),
    ))
}

/// The SQL expression writing a target's latest `metrics` for `set` (null when it has
/// none), as the `MetricsLoader` picks them: the last fetched (then the highest id).
fn metrics_sql(document: &ExecutableDocument, set: &SelectionSet) -> Option<String> {
    let members = members(document, set, "TargetMetrics", |field| {
        let name = field.name.node.as_str();
        copied("m", METRICS_COLUMNS, name).or_else(|| match name {
            "raw" => raw_metrics_sql(document, &field.selection_set.node),
            _ => None,
        })
    })?;
    Some(format!(
        "coalesce((SELECT {} FROM \"post_metrics\" m WHERE m.\"target_id\" = t.\"id\" \
         ORDER BY m.\"fetched_at\" DESC, m.\"id\" DESC LIMIT 1), 'null')",
        object_sql(&members)
    ))
}

/// The SQL expression writing `TargetMetrics.raw` for `set`: the figures of the `raw`
/// object that serde_json reads as integers that fit an `i64` (so not `1e3`, `1.0` or
/// `-0`), sorted by name (byte order, as serde_json's map), a name given twice counting
/// once with its last value. The column is read as `json`, which keeps each number as
/// written (`jsonb` would turn `1e3` into `1000`).
fn raw_metrics_sql(document: &ExecutableDocument, set: &SelectionSet) -> Option<String> {
    let members = members(document, set, "MetricValue", |field| {
        match field.name.node.as_str() {
            "name" => Some(string_json("r.k", false)),
            "value" => Some("r.v::text".to_owned()),
            _ => None,
        }
    })?;
    Some(format!(
        "CASE WHEN json_typeof(m.\"raw\") = 'object' THEN '[' || coalesce((SELECT \
         string_agg({item}, ',' ORDER BY r.k COLLATE \"C\") FROM (SELECT DISTINCT ON (k) k, v \
         FROM json_each(m.\"raw\") WITH ORDINALITY AS f(k, v, n) ORDER BY k, n DESC) AS r \
         WHERE json_typeof(r.v) = 'number' AND r.v::text ~ '^(0|-?[1-9][0-9]*)$' \
         AND (r.v::text)::numeric BETWEEN {min} AND {max}), '') || ']' ELSE '[]' END",
        item = object_sql(&members),
        min = i64::MIN,
        max = i64::MAX,
    ))
}

/// `'{"a":' || a || ',"b":' || b || '}'`; a NULL member (which no member should give)
/// writes the [`UNKNOWN`] marker rather than dropping the object.
fn object_sql(members: &[(Name, String)]) -> String {
    let mut sql = String::from("coalesce('{");
    for (index, (key, value)) in members.iter().enumerate() {
        let separator = if index > 0 { "," } else { "" };
        // Response keys are GraphQL names: letters, digits and `_` only.
        let _ = write!(sql, "{separator}\"{key}\":' || ({value}) || '");
    }
    let _ = write!(sql, "}}', chr({UNKNOWN}))");
    sql
}

/// `sql`, with a NULL written as [`null_sql`] says.
fn or_null(sql: String, nullable: bool) -> String {
    format!("coalesce({sql}, {})", null_sql(nullable))
}

fn string_json(column: &str, nullable: bool) -> String {
    or_null(format!("to_json({column})::text"), nullable)
}

/// A JSON column as `db::json::strings` reads it: the array's string items (anything
/// else is skipped), `[]` when it is not an array.
fn strings_json(column: &str) -> String {
    string_elements(column, "to_json(e #>> '{}')::text")
}

/// `[item, …]` over the string items `e` of the JSON array `column`, in order; `[]` when
/// it is not an array.
fn string_elements(column: &str, item: &str) -> String {
    format!(
        "CASE WHEN json_typeof({column}) = 'array' THEN '[' || coalesce((SELECT \
         string_agg({item}, ',' ORDER BY n) FROM json_array_elements({column}) \
         WITH ORDINALITY AS a(e, n) WHERE json_typeof(e) = 'string'), '') || ']' \
         ELSE '[]' END"
    )
}

fn uuid_json(column: &str, nullable: bool) -> String {
    or_null(format!("'\"' || {column} || '\"'"), nullable)
}

fn int_json(column: &str, nullable: bool) -> String {
    or_null(format!("{column}::text"), nullable)
}

fn bool_json_sql(column: &str, nullable: bool) -> String {
    format!(
        "CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' ELSE {} END",
        null_sql(nullable)
    )
}

/// What a NULL writes: `null` for a nullable field, else [`UNKNOWN`] (the stock executor
/// then reports it).
fn null_sql(nullable: bool) -> String {
    if nullable {
        "'null'".to_owned()
    } else {
        format!("chr({UNKNOWN})")
    }
}

/// A stored enum as its GraphQL name; a stored value the schema does not know writes
/// [`UNKNOWN`].
fn enum_json<E, F>(column: &str, stored: F) -> String
where
    E: EnumType + Copy,
    F: Fn(E) -> &'static str,
{
    let mut sql = format!("CASE {column}");
    for item in E::items() {
        let _ = write!(
            sql,
            " WHEN '{}' THEN '\"{}\"'",
            stored(item.value),
            item.name
        );
    }
    let _ = write!(sql, " ELSE chr({UNKNOWN}) END");
    sql
}

/// A timestamp as async-graphql writes chrono's: RFC 3339 with 0, 3 or 6 fraction digits
/// (whichever shows the value exactly), and `+00:00` for a `timestamptz`. Years outside
/// 1–9999, which chrono writes with a sign, give [`UNKNOWN`]; so does a NULL for a field
/// that is not `nullable`. The text keeps
/// `:` away from letters and digits, so that pgbench (which reads `:name` as a variable)
/// runs the same SQL.
fn timestamp_json(column: &str, with_zone: bool, nullable: bool) -> String {
    let utc = if with_zone {
        format!("({column} AT TIME ZONE 'UTC')")
    } else {
        column.to_owned()
    };
    let offset = if with_zone {
        "'+00' || ':' || '00'"
    } else {
        "''"
    };
    format!(
        "CASE WHEN {column} IS NULL THEN {null} \
         WHEN {utc} < '0001-01-01' OR {utc} >= '10000-01-01' THEN chr({UNKNOWN}) ELSE '\"' \
         || to_char({utc}, 'YYYY-MM-DD\"T\"HH24\":\"MI\":\"SS') \
         || CASE WHEN to_char({utc}, 'US') = '000000' THEN '' \
         WHEN to_char({utc}, 'US') LIKE '%000' THEN '.' || to_char({utc}, 'MS') \
         ELSE '.' || to_char({utc}, 'US') END || {offset} || '\"' END",
        null = null_sql(nullable),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::test_documents::{fragments_four_times_over, parse};

    #[test]
    fn fragments_spread_many_times_over_are_refused_at_once() {
        // Spread in full, F15 would be 4^15 (about a billion) fields.
        let query =
            fragments_four_times_over("{ posts { edges { node { ...F15 } } } }", "Post", "id", 15);
        assert!(compile(&parse(&query), None).is_none());
        // The same fragment spread once compiles.
        let once = "{ posts { edges { node { ...P } } } } fragment P on Post { id content }";
        assert!(compile(&parse(once), None).is_some());
    }

    #[test]
    fn only_posts_queries_compile() {
        for query in [
            "mutation { archivePosts(olderThan: \"2030-01-01T00:00:00Z\") }",
            "{ posts { edges { node { id } } } me { userId } }",
            "{ posts { edges { node { id @skip(if: true) } } } }",
            "{ posts { edges { node { id } } } posts { edges { node { id } } } }",
            "{ posts { edges { node { unknownField } } } }",
            "{ posts { a: edges { node { id } } b: edges { node { id } } } }",
        ] {
            assert!(compile(&parse(query), None).is_none(), "{query}");
        }
        let named = parse("query A { posts { edges { node { id } } } } query B { me { userId } }");
        assert!(compile(&named, Some("A")).is_some());
        assert!(compile(&named, Some("B")).is_none());
        assert!(compile(&named, None).is_none());
        // An anonymous operation has no name to be picked by (as async-graphql answers).
        let anonymous = parse("{ posts { edges { node { id } } } }");
        assert!(compile(&anonymous, None).is_some());
        assert!(compile(&anonymous, Some("A")).is_none());
    }
}
