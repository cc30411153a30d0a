//! JSON writing: the response body of a compiled read, with the posts' JSON (written by
//! the SQL) spliced in, and the cursors and `pageInfo` written here.

use std::fmt::Write as _;

use async_graphql::Name;

use super::arguments::Arguments;
use super::plan::{ConnectionField, EdgeField, PageInfoField, Plan};
use crate::graphql::schema::cursor;
use crate::posts::Keyset;

impl Plan {
    /// The response body for a page.
    pub(super) fn write(
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
        let mut out = String::with_capacity(crate::graphql::serve::http::RESPONSE_BUFFER_BYTES);
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

fn bool_json(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}
