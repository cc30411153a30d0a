//! Argument checks: `posts`'s arguments for one request, read from the plan's arguments
//! and the request's variables as the stock executor reads them (the same input types'
//! coercion, the same page rules of `schema::query::page_request`), or `None` where the
//! stock executor would refuse them, or might read them otherwise, so that it answers.

use async_graphql::{InputType, Name, Variables};

use super::plan::Plan;
use crate::graphql::schema::query::page_request;
use crate::graphql::schema::types::{PostFilter, PostOrder};
use crate::posts::{self, PageRequest};

/// The arguments of one request, checked.
pub(super) struct Arguments {
    pub(super) filter: posts::PostFilter,
    pub(super) page: PageRequest,
}

impl Plan {
    /// `posts`'s arguments for this request, or `None` when they are not what the stock
    /// executor would accept as they are.
    pub(super) fn arguments(&self, variables: &Variables) -> Option<Arguments> {
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
        let page = page_request(first, order_by, after.as_deref()).ok()?;
        Some(Arguments {
            filter: filter.unwrap_or_default().into(),
            page,
        })
    }
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
