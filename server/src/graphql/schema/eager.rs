//! Resolution without a task per field, for objects and lists on hot read paths.
//!
//! async-graphql resolves every selected field as its own boxed future in a
//! `FuturesUnordered`, even a field that only copies a column: for a page of 50 posts
//! with their targets that is about a thousand tasks per request, most of the request's
//! CPU time. [`Eager`] and [`EagerList`] wrap an object type (or a list of them) and
//! resolve an object's fields one after the other, in place (a field that only copies a
//! column completes at once, without an allocation); the items of a list are polled once
//! each and those that wait (a database load) are awaited together. Results are the same
//! as async-graphql's: the same values, the same errors with the same paths (a failed
//! field is reported and left out), `__typename` and fragments, except that fields always
//! come in selection order.
//! When the schema has custom directives, which wrap field resolvers, objects go through
//! async-graphql's own executor instead. Extensions' per-field hooks are not called:
//! Herald's schema installs one extension, which hooks only `execute` (see `build_schema`).

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_util::future::{BoxFuture, join_all};

use async_graphql::indexmap::IndexMap;
use async_graphql::indexmap::map::Entry;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::resolve_container;
use async_graphql::{
    ContainerType, ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult,
    Value,
};

/// An object resolved eagerly; the GraphQL type is `T`'s (same name and fields).
pub struct Eager<T>(pub T);

/// A list of objects resolved eagerly; the GraphQL type is `[T!]!`. Cloning it shares
/// the items.
pub struct EagerList<T>(Arc<Vec<T>>);

impl<T> Clone for EagerList<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> From<Vec<T>> for EagerList<T> {
    fn from(items: Vec<T>) -> Self {
        Self(Arc::new(items))
    }
}

impl<T: ContainerType> OutputType for Eager<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_object(ctx, &self.0).await
    }
}

impl<T: ContainerType> OutputType for EagerList<T> {
    fn type_name() -> Cow<'static, str> {
        <Vec<T> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<T> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<T> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let items = self
            .0
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let ctx_item = ctx.with_index(index);
                let future: BoxFuture<'_, ServerResult<Value>> = Box::pin(async move {
                    resolve_object(&ctx_item, item)
                        .await
                        .map_err(|err| ctx_item.set_error_path(err))
                });
                future
            })
            .collect();
        let values = resolve_all(items)
            .await
            .into_iter()
            .collect::<ServerResult<Vec<Value>>>()?;
        Ok(Value::List(values))
    }
}

/// A future's result, or the future while it waits.
enum State<'a, R> {
    Done(R),
    Waiting(BoxFuture<'a, R>),
}

/// Polls each future once, in order, then awaits together those that were not ready.
/// Returns the results in the futures' order.
async fn resolve_all<'a, R>(futures: Vec<BoxFuture<'a, R>>) -> Vec<R> {
    let mut states: Vec<State<'a, R>> = {
        let mut cx = TaskContext::from_waker(Waker::noop());
        futures
            .into_iter()
            .map(|mut future| match future.as_mut().poll(&mut cx) {
                Poll::Ready(result) => State::Done(result),
                Poll::Pending => State::Waiting(future),
            })
            .collect()
    };
    let waiting: Vec<_> = states
        .iter_mut()
        .filter_map(|state| match state {
            State::Waiting(future) => Some(future.as_mut()),
            State::Done(_) => None,
        })
        .collect();
    let mut finished = if waiting.is_empty() {
        Vec::new()
    } else {
        join_all(waiting).await
    }
    .into_iter();
    states
        .into_iter()
        .filter_map(|state| match state {
            State::Done(result) => Some(result),
            State::Waiting(_) => finished.next(),
        })
        .collect()
}

/// Resolves `root`'s selection set field by field, in place: a field that is ready at
/// once costs no allocation; one that waits is awaited before the next (the items of an
/// [`EagerList`] still wait together).
async fn resolve_object<'a, T: ContainerType>(
    ctx: &ContextSelectionSet<'a>,
    root: &'a T,
) -> ServerResult<Value> {
    if !ctx.schema_env.custom_directives.is_empty() {
        return resolve_container(ctx, root).await;
    }
    let mut fields = Vec::with_capacity(ctx.item.node.items.len());
    collect(ctx, root, &ctx.item.node, &mut fields)?;
    let mut results = IndexMap::with_capacity(fields.len());
    for field in fields {
        let name = field.node.response_key().node.clone();
        if field.node.name.node == "__typename" {
            let typename = root.introspection_type_name().into_owned();
            insert_value(&mut results, name, Value::String(typename));
            continue;
        }
        let ctx_field = ctx.with_field(field);
        match root.resolve_field(&ctx_field).await {
            Ok(value) => insert_value(&mut results, name, value.unwrap_or_default()),
            Err(err) => ctx.add_error(err),
        }
    }
    Ok(if results.is_empty() {
        Value::Null
    } else {
        Value::Object(results)
    })
}

/// The fields of `selection_set` and of the fragments in it that apply to `root`, in
/// order. (A field inside a fragment resolves with the object's context, as in
/// async-graphql: fragments do not add to the response path.)
fn collect<'a, T: ContainerType>(
    ctx: &ContextSelectionSet<'a>,
    root: &T,
    selection_set: &'a SelectionSet,
    fields: &mut Vec<&'a Positioned<Field>>,
) -> ServerResult<()> {
    for selection in &selection_set.items {
        match &selection.node {
            Selection::Field(field) => fields.push(field),
            Selection::FragmentSpread(spread) => {
                let Some(fragment) = ctx.query_env.fragments.get(&spread.node.fragment_name.node)
                else {
                    return Err(ServerError::new(
                        format!(r#"Unknown fragment "{}"."#, spread.node.fragment_name.node),
                        Some(spread.pos),
                    ));
                };
                let condition = fragment.node.type_condition.node.on.node.as_str();
                if applies(ctx, root, Some(condition)) {
                    collect(ctx, root, &fragment.node.selection_set.node, fields)?;
                }
            }
            Selection::InlineFragment(fragment) => {
                let condition = fragment
                    .node
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str());
                if applies(ctx, root, condition) {
                    collect(ctx, root, &fragment.node.selection_set.node, fields)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether a fragment with this type condition applies to `root`.
fn applies<T: ContainerType>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
    condition: Option<&str>,
) -> bool {
    let Some(condition) = condition else {
        return true;
    };
    let concrete = root.introspection_type_name();
    concrete == condition
        || T::type_name() == condition
        || ctx
            .schema_env
            .registry
            .implements
            .get(concrete.as_ref())
            .is_some_and(|interfaces| interfaces.contains(condition))
}

/// Adds a field's value under its response key, merging objects (and lists of objects)
/// selected more than once, as async-graphql does.
fn insert_value(target: &mut IndexMap<Name, Value>, name: Name, value: Value) {
    let existing = match target.entry(name) {
        Entry::Vacant(entry) => {
            entry.insert(value);
            return;
        }
        Entry::Occupied(entry) => entry.into_mut(),
    };
    match (existing, value) {
        (Value::Object(existing), Value::Object(object)) => {
            for (key, value) in object {
                insert_value(existing, key, value);
            }
        }
        (Value::List(existing), Value::List(list)) => {
            for (item, value) in existing.iter_mut().zip(list) {
                if let (Value::Object(item), Value::Object(object)) = (item, value) {
                    for (key, value) in object {
                        insert_value(item, key, value);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

    use super::*;

    /// A leaf object with a plain field, a field that waits, and one that fails.
    #[derive(Clone)]
    struct Item(i32);

    #[Object]
    impl Item {
        async fn id(&self) -> i32 {
            self.0
        }
        async fn label(&self) -> String {
            format!("item {}", self.0)
        }
        async fn slow(&self) -> i32 {
            tokio::task::yield_now().await;
            self.0 * 10
        }
        async fn broken(&self) -> async_graphql::Result<i32> {
            if self.0 == 2 {
                Err("item 2 is broken".into())
            } else {
                Ok(self.0)
            }
        }
        async fn children(&self) -> Vec<Child> {
            (0..2)
                .map(|n| Child {
                    n: self.0 * 100 + n,
                })
                .collect()
        }
    }

    #[derive(SimpleObject, Clone)]
    struct Child {
        n: i32,
    }

    /// The same items through async-graphql's executor and through [`EagerList`].
    struct Root;

    #[Object]
    impl Root {
        async fn stock(&self) -> Vec<Item> {
            (1..=3).map(Item).collect()
        }
        async fn eager(&self) -> EagerList<Item> {
            (1..=3).map(Item).collect::<Vec<_>>().into()
        }
        async fn one(&self) -> Eager<Item> {
            Eager(Item(7))
        }
        async fn one_stock(&self) -> Item {
            Item(7)
        }
    }

    async fn run(query: &str) -> serde_json::Value {
        let schema = Schema::new(Root, EmptyMutation, EmptySubscription);
        serde_json::to_value(schema.execute(query).await).expect("json")
    }

    /// Runs `selection` on the stock and eager lists and checks both answers match.
    async fn same_as_stock(selection: &str) -> serde_json::Value {
        let stock = run(&format!("{{ items: stock {selection} }}")).await;
        let eager = run(&format!("{{ items: eager {selection} }}")).await;
        assert_eq!(stock, eager, "selection {selection}");
        eager
    }

    #[tokio::test]
    async fn lists_resolve_as_the_stock_executor_does() {
        let answer = same_as_stock("{ id label slow }").await;
        assert_eq!(
            answer["data"]["items"][1],
            serde_json::json!({"id": 2, "label": "item 2", "slow": 20})
        );
        same_as_stock("{ __typename first: id again: id }").await;
        same_as_stock("{ ... on Item { id } ...F } } fragment F on Item { label").await;
        same_as_stock("{ children { n } children { __typename } }").await;
        same_as_stock("{ id @include(if: true) label @skip(if: true) }").await;
    }

    #[tokio::test]
    async fn a_failing_field_is_reported_with_its_path_and_left_out() {
        let answer = same_as_stock("{ id broken }").await;
        assert_eq!(answer["data"]["items"][1], serde_json::json!({"id": 2}));
        assert_eq!(answer["errors"][0]["message"], "item 2 is broken");
        assert_eq!(
            answer["errors"][0]["path"],
            serde_json::json!(["items", 1, "broken"])
        );
        assert_eq!(answer["data"]["items"][0]["broken"], 1);
    }

    #[tokio::test]
    async fn single_objects_keep_selection_order_and_schema() {
        let stock = run("{ x: oneStock { slow id label } }").await;
        let eager = run("{ x: one { slow id label } }").await;
        assert_eq!(stock, eager);
        // The stock executor answers in completion order (`slow` last); eager keeps the
        // order of the selection.
        let schema = Schema::new(Root, EmptyMutation, EmptySubscription);
        let data = schema.execute("{ x: one { slow id label } }").await.data;
        let Value::Object(data) = data else {
            panic!("no data: {data:?}");
        };
        let Some(Value::Object(x)) = data.get("x") else {
            panic!("no x: {data:?}");
        };
        let keys: Vec<&str> = x.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["slow", "id", "label"]);
        let sdl = schema.sdl();
        assert!(sdl.contains("eager: [Item!]!"), "{sdl}");
        assert!(sdl.contains("one: Item!"), "{sdl}");
    }
}
