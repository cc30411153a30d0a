//! The one declaration of each field that copies a column: its GraphQL name, its column,
//! its resolver (the Rust reader) and, through its output type, the SQL that writes it as
//! async-graphql would ([`JsonSql`]). [`object_with_columns!`] turns such declarations into
//! the `#[Object]` resolvers of a type *and* its [`Column`] table, so the stock executor
//! and compiled reads (`serve::compiled`) read one list; [`Object`] adds the fields that
//! compiled reads write from JSON columns or other tables (by name, in
//! `serve::compiled::sql`). A field in neither list is simply not compiled: the planner
//! accepts only fields found here, and the stock executor answers the rest.

use std::fmt::Write as _;

use async_graphql::ID;
use async_graphql::resolver_utils::EnumType;
use chrono::{DateTime, NaiveDateTime, Utc};

/// Written by the SQL in place of a value the schema does not know (an unknown stored
/// status, a NULL in a non-null field, a year chrono writes differently). JSON text never
/// holds it raw (`to_json` escapes control characters), so finding it means the stock
/// executor must answer (and report the error).
pub const UNKNOWN: u8 = 1;

/// A field that copies one column, as [`object_with_columns!`] declares it.
#[derive(Clone, Copy)]
pub struct Column {
    /// The GraphQL field name.
    pub name: &'static str,
    /// The column it copies.
    pub column: &'static str,
    /// The SQL that writes the column (given qualified) as the field's JSON value.
    pub json: fn(&str) -> String,
}

/// A field of an object type that compiled reads write by name (from a JSON column or
/// another table), with the object type it returns when it has fields.
#[derive(Clone, Copy)]
pub struct Derived {
    /// The GraphQL field name.
    pub name: &'static str,
    /// The fields of its object type, for a field that returns objects.
    pub of: Option<&'static Object>,
}

/// The fields of an object type that compiled reads may write.
#[derive(Clone, Copy)]
pub struct Object {
    /// The GraphQL type name (what `__typename` writes).
    pub name: &'static str,
    /// Fields copying a column.
    pub columns: &'static [Column],
    /// Fields written by name (see [`Derived`]).
    pub derived: &'static [Derived],
}

impl Object {
    /// The column field `name`, if it is one.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|column| column.name == name)
    }

    /// The derived field `name`, if it is one.
    pub fn derived(&self, name: &str) -> Option<&'static Derived> {
        self.derived.iter().find(|derived| derived.name == name)
    }

    /// A selection of every field compiled reads may write, `__typename` at every level:
    /// what a test runs through both paths.
    pub fn every_field(&self) -> String {
        let mut out = String::from("__typename");
        for column in self.columns {
            out.push(' ');
            out.push_str(column.name);
        }
        for derived in self.derived {
            out.push(' ');
            out.push_str(derived.name);
            if let Some(of) = derived.of {
                let _ = write!(out, " {{ {} }}", of.every_field());
            }
        }
        out
    }
}

/// Declares the `#[Object]` resolvers of `$ty` and the [`Column`] table `$table` of its
/// fields that copy a column. Each `column "name" method: Type = "column", |row| reader;`
/// entry is one resolver (named `name`, reading `row: &$model` from `self.row()`) and one
/// table row whose SQL is `Type`'s [`JsonSql`]; other entries are resolver methods,
/// copied as they are, in order.
macro_rules! object_with_columns {
    (
        $(#[$meta:meta])*
        impl $ty:ident, row: $model:ty, columns: $table:ident {
            $($body:tt)*
        }
    ) => {
        $crate::graphql::schema::columns::object_with_columns!(
            @munch [$(#[$meta])*] $ty, $model, $table, [] [] $($body)*
        );
    };
    // A field that copies a column.
    (
        @munch $meta:tt $ty:ident, $model:ty, $table:ident, [$($methods:tt)*] [$($columns:tt)*]
        $(#[doc = $doc:literal])*
        column $name:literal $method:ident: $out:ty = $column:literal, |$row:ident| $read:expr;
        $($rest:tt)*
    ) => {
        $crate::graphql::schema::columns::object_with_columns!(
            @munch $meta $ty, $model, $table,
            [
                $($methods)*
                $(#[doc = $doc])*
                #[graphql(name = $name)]
                async fn $method(&self) -> $out {
                    let $row: &$model = self.row();
                    $read
                }
            ]
            [
                $($columns)*
                $crate::graphql::schema::columns::Column {
                    name: $name,
                    column: $column,
                    json: <$out as $crate::graphql::schema::columns::JsonSql>::json_sql,
                },
            ]
            $($rest)*
        );
    };
    // Any other resolver, as it is.
    (
        @munch $meta:tt $ty:ident, $model:ty, $table:ident, [$($methods:tt)*] [$($columns:tt)*]
        $(#[$attr:meta])*
        async fn $method:ident $arguments:tt -> $out:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::graphql::schema::columns::object_with_columns!(
            @munch $meta $ty, $model, $table,
            [$($methods)* $(#[$attr])* async fn $method $arguments -> $out $body]
            [$($columns)*]
            $($rest)*
        );
    };
    (@munch [$($meta:tt)*] $ty:ident, $model:ty, $table:ident, [$($methods:tt)*] [$($columns:tt)*]) => {
        #[async_graphql::Object]
        $($meta)*
        impl $ty {
            $($methods)*
        }

        #[doc = concat!("The fields of `", stringify!($ty), "` that copy a column.")]
        pub const $table: &[$crate::graphql::schema::columns::Column] = &[$($columns)*];
    };
}

pub(crate) use object_with_columns;

/// How a GraphQL output type is written as JSON by SQL, from the column it copies: the
/// same text async-graphql writes for the value the resolver returns. A NULL writes
/// `null` for a nullable type, else [`UNKNOWN`].
pub trait JsonSql {
    /// The SQL writing `column` (a qualified column) as this type.
    fn json_sql(column: &str) -> String {
        Self::json_sql_or_null(column, false)
    }

    /// The SQL writing `column`, where a NULL is `null` when `nullable`.
    fn json_sql_or_null(column: &str, nullable: bool) -> String;
}

impl<T: JsonSql> JsonSql for Option<T> {
    fn json_sql_or_null(column: &str, _: bool) -> String {
        T::json_sql_or_null(column, true)
    }
}

/// A resolver that may fail writes as its value; a value it would refuse writes
/// [`UNKNOWN`] (see [`enum_json`]).
impl<T: JsonSql> JsonSql for async_graphql::Result<T> {
    fn json_sql_or_null(column: &str, nullable: bool) -> String {
        T::json_sql_or_null(column, nullable)
    }
}

/// Herald's ids are UUID columns.
impl JsonSql for ID {
    fn json_sql_or_null(column: &str, nullable: bool) -> String {
        or_null(format!("'\"' || {column} || '\"'"), nullable)
    }
}

impl JsonSql for &str {
    fn json_sql_or_null(column: &str, nullable: bool) -> String {
        string_json(column, nullable)
    }
}

impl JsonSql for i32 {
    fn json_sql_or_null(column: &str, nullable: bool) -> String {
        or_null(format!("{column}::text"), nullable)
    }
}

impl JsonSql for i64 {
    fn json_sql_or_null(column: &str, nullable: bool) -> String {
        i32::json_sql_or_null(column, nullable)
    }
}

impl JsonSql for bool {
    fn json_sql_or_null(column: &str, nullable: bool) -> String {
        format!(
            "CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' ELSE {} END",
            null_sql(nullable)
        )
    }
}

/// A `timestamptz` column.
impl JsonSql for DateTime<Utc> {
    fn json_sql_or_null(column: &str, nullable: bool) -> String {
        timestamp_json(column, true, nullable)
    }
}

/// A `timestamp` column.
impl JsonSql for NaiveDateTime {
    fn json_sql_or_null(column: &str, nullable: bool) -> String {
        timestamp_json(column, false, nullable)
    }
}

/// Herald keeps lists of strings in JSON columns, read by `db::json::strings`: the
/// array's string items (anything else is skipped), `[]` when it is not an array.
impl JsonSql for Vec<String> {
    fn json_sql_or_null(column: &str, _: bool) -> String {
        string_elements(column, "to_json(e #>> '{}')::text")
    }
}

/// `sql`, with a NULL written as [`null_sql`] says.
fn or_null(sql: String, nullable: bool) -> String {
    format!("coalesce({sql}, {})", null_sql(nullable))
}

/// A text value (`column` may be any SQL expression of type text) as a JSON string.
pub fn string_json(column: &str, nullable: bool) -> String {
    or_null(format!("to_json({column})::text"), nullable)
}

/// `[item, …]` over the string items `e` of the JSON array `column`, in order; `[]` when
/// it is not an array.
pub fn string_elements(column: &str, item: &str) -> String {
    format!(
        "CASE WHEN json_typeof({column}) = 'array' THEN '[' || coalesce((SELECT \
         string_agg({item}, ',' ORDER BY n) FROM json_array_elements({column}) \
         WITH ORDINALITY AS a(e, n) WHERE json_typeof(e) = 'string'), '') || ']' \
         ELSE '[]' END"
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

/// A stored enum as its GraphQL name, `stored` giving each item's stored name; a stored
/// value the schema does not know (which the resolver refuses) writes [`UNKNOWN`].
pub fn enum_json<E: EnumType + Copy>(column: &str, stored: fn(E) -> &'static str) -> String {
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
/// that is not `nullable`. The text keeps `:` away from letters and digits, so that
/// pgbench (which reads `:name` as a variable) runs the same SQL.
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

/// What compiled reads may write of a `Post`.
pub static POST: Object = Object {
    name: "Post",
    columns: super::types::POST_COLUMNS,
    derived: &[
        Derived {
            name: "media",
            of: Some(&MEDIA),
        },
        Derived {
            name: "targets",
            of: Some(&TARGET),
        },
    ],
};

/// What compiled reads may write of a post's `Media` (from its `media` JSON column).
pub static MEDIA: Object = Object {
    name: "Media",
    columns: &[],
    derived: &[leaf("url"), leaf("altText"), leaf("mimeType")],
};

/// What compiled reads may write of a `Target`.
pub static TARGET: Object = Object {
    name: "Target",
    columns: super::types::TARGET_COLUMNS,
    derived: &[
        Derived {
            name: "options",
            of: Some(&TARGET_OPTION),
        },
        Derived {
            name: "metrics",
            of: Some(&TARGET_METRICS),
        },
    ],
};

/// What compiled reads may write of a `TargetOption` (from the `options` JSON column).
pub static TARGET_OPTION: Object = Object {
    name: "TargetOption",
    columns: &[],
    derived: &[leaf("key"), leaf("value")],
};

/// What compiled reads may write of `TargetMetrics` (a target's latest row).
pub static TARGET_METRICS: Object = Object {
    name: "TargetMetrics",
    columns: super::metrics::METRICS_COLUMNS,
    derived: &[Derived {
        name: "raw",
        of: Some(&METRIC_VALUE),
    }],
};

/// What compiled reads may write of a `MetricValue` (from the `raw` JSON column).
pub static METRIC_VALUE: Object = Object {
    name: "MetricValue",
    columns: &[],
    derived: &[leaf("name"), leaf("value")],
};

/// A derived field without fields of its own.
const fn leaf(name: &'static str) -> Derived {
    Derived { name, of: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `type_name` in the schema, as `name: Type`.
    fn schema_fields(sdl: &str, type_name: &str) -> Vec<String> {
        let start = sdl
            .find(&format!("\ntype {type_name} {{"))
            .unwrap_or_else(|| panic!("no type {type_name}"));
        let body = &sdl[start..];
        let end = body.find("\n}").expect("closed");
        body[..end]
            .lines()
            .map(str::trim)
            .filter(|line| line.contains(':') && !line.starts_with('"'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_field_in_the_tables_is_a_field_of_its_type() {
        let sdl = super::super::sdl();
        let mut objects = vec![&POST];
        while let Some(object) = objects.pop() {
            let fields = schema_fields(&sdl, object.name);
            let names = object
                .columns
                .iter()
                .map(|column| column.name)
                .chain(object.derived.iter().map(|derived| derived.name));
            for name in names {
                assert!(
                    fields.iter().any(|f| f.starts_with(&format!("{name}:"))),
                    "{}.{name} is not in the schema: {fields:?}",
                    object.name
                );
            }
            objects.extend(object.derived.iter().filter_map(|derived| derived.of));
        }
    }

    #[test]
    fn a_column_is_nullable_exactly_when_its_field_is() {
        let sdl = super::super::sdl();
        for object in [&POST, &TARGET, &TARGET_METRICS] {
            let fields = schema_fields(&sdl, object.name);
            for column in object.columns {
                let field = fields
                    .iter()
                    .find(|f| f.starts_with(&format!("{}:", column.name)))
                    .expect("in the schema");
                if field.ends_with("]!") {
                    continue;
                }
                let sql = (column.json)("c");
                assert_eq!(
                    field.ends_with('!'),
                    !sql.contains("'null'"),
                    "{}.{}: {field} is written by {sql}",
                    object.name,
                    column.name
                );
            }
        }
    }
}
