//! Planning: which documents compiled reads answer, and what of them a plan keeps. A
//! document compiles when its operation is a query whose only root field is `posts`, with
//! fields, aliases and fragments but no directives or repeated response keys, every field
//! below `posts` in the descriptor tables of `schema::columns` (anything else is the stock
//! executor's).

use std::collections::HashSet;

use async_graphql::Name;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};

use super::sql::post_sql;
use crate::graphql::schema::columns::{Object, POST};

/// Deepest fragment nesting followed (validation refuses cycles; this bounds the walk).
const MAX_FRAGMENT_DEPTH: usize = 16;
/// Most fields a plan writes per object (a selection spreading a fragment twice repeats a
/// response key and is refused at once, so the walk stays within the document's size).
const MAX_FIELDS: usize = 256;

/// A compiled `posts` query.
pub struct Plan {
    /// The operation's name as the executor reports it to extensions (the name asked
    /// for, or the only operation's), for the span the answer runs in.
    pub(super) operation: Option<String>,
    /// The response key of `posts`.
    pub(super) key: Name,
    /// `posts`'s arguments as written (literals, or values with variables).
    pub(super) arguments: Vec<(Name, async_graphql_value::Value)>,
    /// Variables of the operation: name, whether null is refused, default.
    pub(super) variables: Vec<(Name, bool, Option<async_graphql::Value>)>,
    /// The connection's fields, in selection order.
    pub(super) connection: Vec<(Name, ConnectionField)>,
    /// The SQL expression that writes one post's JSON (`NULL` when no edge asks for it).
    pub(super) node_sql: String,
}

/// A field of the `PostConnection`.
pub(super) enum ConnectionField {
    Typename,
    Edges(Vec<(Name, EdgeField)>),
    PageInfo(Vec<(Name, PageInfoField)>),
}

/// A field of a `PostEdge`.
pub(super) enum EdgeField {
    Typename,
    Cursor,
    Node,
}

/// A field of the `PageInfo`.
pub(super) enum PageInfoField {
    Typename,
    HasNextPage,
    HasPreviousPage,
    StartCursor,
    EndCursor,
}

/// The plan of `document`'s operation `name`, when it is a `posts` query the plans cover.
pub fn compile(document: &ExecutableDocument, name: Option<&str>) -> Option<Plan> {
    compile_with(document, name, &POST)
}

/// [`compile`], with the fields of `Post` that plans may write taken from `post`.
fn compile_with(document: &ExecutableDocument, name: Option<&str>, post: &Object) -> Option<Plan> {
    let operation = crate::graphql::serve::operation(document, name)?;
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
                            node_sql = Some(post_sql(document, &field.selection_set.node, post)?);
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
    let operation_name = match (&document.operations, name) {
        (DocumentOperations::Multiple(operations), None) => {
            operations.keys().next().map(|name| name.to_string())
        }
        (_, name) => name.map(str::to_owned),
    };
    Some(Plan {
        operation: operation_name,
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

/// The key of `field` in the response: its alias, or its name.
pub(super) fn response_key(field: &Field) -> Name {
    field.alias.as_ref().unwrap_or(&field.name).node.clone()
}

/// The fields of `set` on an object of type `on`, fragments spread; `None` when the
/// selection uses what plans do not cover (directives, arguments below the root, a
/// repeated response key).
pub(super) fn fields<'d>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::serve::test_documents::{fragments_four_times_over, parse};

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

    #[test]
    fn only_fields_in_the_tables_compile() {
        // `Post` without `campaign`, as if the field had no column declared.
        let columns: Vec<_> = POST
            .columns
            .iter()
            .copied()
            .filter(|column| column.name != "campaign")
            .collect();
        let post = Object {
            columns: Vec::leak(columns),
            ..POST
        };
        let with = parse("{ posts { edges { node { id campaign } } } }");
        let without = parse("{ posts { edges { node { id content } } } }");
        assert!(compile_with(&with, None, &post).is_none());
        assert!(compile_with(&without, None, &post).is_some());
        assert!(compile_with(&with, None, &POST).is_some());
        // The same for a field of a nested object, and one no table knows.
        let nested = parse("{ posts { edges { node { targets { id nope } } } } }");
        assert!(compile(&nested, None).is_none());
    }
}
