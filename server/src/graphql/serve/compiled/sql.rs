//! SQL generation for compiled reads: the expression that writes one post's JSON for a
//! selection, from the descriptor tables of `schema::columns` (a field copying a column is
//! written by its column's own writer; the fields read from JSON columns and other tables
//! are written here, as `db::json` and the loaders read them),
//! and the page statement that selects it.

use std::fmt::Write as _;

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, Field, SelectionSet};
use sea_orm::sea_query::Expr;
use sea_orm::{DatabaseBackend, QuerySelect, QueryTrait, Statement};

use super::arguments::Arguments;
use super::plan::{Plan, fields, response_key};
use crate::db::entities::post;
use crate::graphql::schema::columns::{
    MEDIA, METRIC_VALUE, Object, TARGET, TARGET_METRICS, TARGET_OPTION, UNKNOWN, string_elements,
    string_json,
};

/// The table of posts, as the page statement names it.
const POSTS: &str = "\"social_posts\"";

impl Plan {
    /// The page statement with the compiled select list: id and sort values (for cursors)
    /// and each post's JSON.
    pub(super) fn statement(&self, tenant: &str, arguments: &Arguments) -> Statement {
        crate::db::posts::page_query(tenant, &arguments.filter, arguments.page)
            .select_only()
            .column(post::Column::Id)
            .column(post::Column::CreatedAt)
            .column(post::Column::ScheduledAt)
            .expr(Expr::cust(self.node_sql.as_str()))
            .build(DatabaseBackend::Postgres)
    }
}

/// Each field `set` selects on `object`: its response key and its SQL. `__typename` is
/// written here; a field copying a column by the column's own writer (`table` naming the
/// row); a derived field by `derived`. `None` when a field is in none of the tables, or
/// `derived` does not write it: such a selection is the stock executor's.
fn members<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    table: &str,
    object: &Object,
    mut derived: impl FnMut(&'d Field) -> Option<String>,
) -> Option<Vec<(Name, String)>> {
    fields(document, set, object.name)?
        .into_iter()
        .map(|field| {
            let name = field.name.node.as_str();
            let sql = if name == "__typename" {
                format!("'\"{}\"'", object.name)
            } else if let Some(column) = object.column(name) {
                (column.json)(&format!("{table}.\"{}\"", column.column))
            } else if object.derived(name).is_some() {
                derived(field)?
            } else {
                return None;
            };
            Some((response_key(field), sql))
        })
        .collect()
}

/// The SQL expression writing a post's JSON for `set`, the fields of `post` (the
/// [`POST`](crate::graphql::schema::columns::POST) table, or in tests a part of it).
pub(super) fn post_sql(
    document: &ExecutableDocument,
    set: &SelectionSet,
    post: &Object,
) -> Option<String> {
    let members = members(document, set, POSTS, post, |field| {
        match field.name.node.as_str() {
            "media" => media_sql(document, &field.selection_set.node),
            "targets" => targets_sql(document, &field.selection_set.node),
            _ => None,
        }
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
    let items = members(document, set, "e", &MEDIA, |field| {
        match field.name.node.as_str() {
            "url" => Some(string_json("(e ->> 'url')", false)),
            "altText" => Some(string_json("(e ->> 'alt')", true)),
            "mimeType" => Some(string_json("(e ->> 'mime_type')", true)),
            _ => None,
        }
    })?;
    // Posts from before media details: the URL alone.
    let bare = members(document, set, "e", &MEDIA, |field| {
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
    let members = members(document, set, "t", &TARGET, |field| {
        match field.name.node.as_str() {
            "options" => options_sql(document, &field.selection_set.node),
            "metrics" => metrics_sql(document, &field.selection_set.node),
            _ => None,
        }
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
    let members = members(document, set, "o", &TARGET_OPTION, |field| {
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
    let members = members(document, set, "m", &TARGET_METRICS, |field| {
        match field.name.node.as_str() {
            "raw" => raw_metrics_sql(document, &field.selection_set.node),
            _ => None,
        }
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
    let members = members(document, set, "r", &METRIC_VALUE, |field| {
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
