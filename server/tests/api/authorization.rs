//! The authorization matrix, generated from `schema.graphql`: every root query, mutation
//! and subscription must be classified in [`table`] (a field it does not classify fails
//! the test, by name), and every case is called as each kind of caller who must not get
//! the victim's data nor change it: anonymous, another tenant's member, another tenant's
//! admin (with every role), a user named like the victim's organisation, the instance
//! operator, and the victim's own member without the needed role. Each must answer
//! exactly as its class says (`UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN`, null, its own
//! tenant's view), without the victim's data, and the victim's rows (read as the
//! database's owner, past row-level security) and queue state must not change. The
//! rightful caller then makes the same call, which proves the call is well formed.

mod http;
mod matrix;
mod table;
mod ws;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::days_from_now;
use matrix::Matrix;
use table::{Class, Missing, Order, Root};

/// The victim's tenant.
const VICTIM_TENANT: &str = "org:acme";
/// Text in every post of the victim's.
const SECRET: &str = "acme-secret";

/// A kind of caller.
struct Caller {
    name: &'static str,
    token: Option<String>,
    /// Whether it belongs to the victim's tenant.
    victim: bool,
    roles: &'static [&'static str],
    operator: bool,
}

/// What a caller must get from a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Unauthenticated,
    Forbidden,
    NotFound,
    /// `data.<field>` null, no error.
    Null,
    /// (Subscriptions) nothing delivered.
    Silent,
    /// An answer about the caller's own tenant, with nothing of the victim's.
    OwnView,
    /// `BAD_USER_INPUT`, the same as for an id that exists nowhere.
    SameAsUnknown,
}

/// What `caller` must get from a case of `class`; `None` for a rightful caller.
fn expected(class: Class, caller: &Caller) -> Option<Expect> {
    use Expect::*;
    if caller.token.is_none() {
        return Some(Unauthenticated);
    }
    let has = |role: &str| caller.roles.contains(&role);
    if caller.victim {
        // Only what the victim's own callers may not do is checked here.
        return match class {
            Class::RoleGatedById(role, _) | Class::RoleGatedShared(role) if !has(role) => {
                Some(Forbidden)
            }
            Class::OperatorOnly => Some(Forbidden),
            _ => None,
        };
    }
    Some(match class {
        Class::Authenticated | Class::TenantRead | Class::TenantSharedState => OwnView,
        Class::TenantReadById(Missing::Null) => Null,
        Class::TenantReadById(Missing::NotFound) | Class::TenantMutationById => NotFound,
        Class::TenantReadById(Missing::Silent) => Silent,
        Class::ForeignReference => SameAsUnknown,
        Class::RoleGatedById(role, Order::RoleFirst) if !has(role) => Forbidden,
        Class::RoleGatedById(_, _) => NotFound,
        Class::RoleGatedShared(role) if has(role) => OwnView,
        Class::RoleGatedShared(_) => Forbidden,
        Class::OperatorOnly if caller.operator => return None,
        Class::OperatorOnly => Forbidden,
    })
}

/// The root fields of `schema.graphql` at the repository root, as `(root, field)`.
fn schema_fields() -> BTreeSet<(String, String)> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let sdl = std::fs::read_to_string(path).expect("schema.graphql");
    let document = async_graphql::parser::parse_schema(&sdl).expect("schema.graphql parses");
    let mut roots = Vec::new();
    for definition in &document.definitions {
        if let TypeSystemDefinition::Schema(schema) = definition {
            let schema = &schema.node;
            for (root, name) in [
                ("Query", &schema.query),
                ("Mutation", &schema.mutation),
                ("Subscription", &schema.subscription),
            ] {
                if let Some(name) = name {
                    roots.push((root, name.node.to_string()));
                }
            }
        }
    }
    assert_eq!(roots.len(), 3, "the schema names its three root types");
    let mut fields = BTreeSet::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let Some((root, _)) = roots.iter().find(|(_, name)| *name == ty.node.name.node) else {
            continue;
        };
        let TypeKind::Object(object) = &ty.node.kind else {
            panic!("root type {root} is not an object type");
        };
        for field in &object.fields {
            fields.insert((root.to_string(), field.node.name.node.to_string()));
        }
    }
    fields
}

fn root_name(root: Root) -> &'static str {
    match root {
        Root::Query => "Query",
        Root::Mutation => "Mutation",
        Root::Subscription => "Subscription",
    }
}

#[test]
fn every_root_field_is_classified() {
    let mut classified: BTreeSet<(String, String)> = table::cases()
        .iter()
        .map(|c| (root_name(c.root).to_owned(), c.field.to_owned()))
        .collect();
    // Fields checked by a dedicated test count only while that test exists.
    for (root, field, file, test) in table::CHECKED_ELSEWHERE {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/api")
            .join(file);
        let source = std::fs::read_to_string(&path).expect("test file");
        assert!(
            source.contains(&format!("async fn {test}()")),
            "{}.{field} is said to be checked by {file}::{test}, which does not exist",
            root_name(*root)
        );
        classified.insert((root_name(*root).to_owned(), (*field).to_owned()));
    }
    let fields = schema_fields();
    let unclassified: Vec<String> = fields
        .difference(&classified)
        .map(|(root, field)| format!("{root}.{field}"))
        .collect();
    assert!(
        unclassified.is_empty(),
        "root fields of schema.graphql that the authorization table \
         (server/tests/api/authorization/table.rs) does not classify: {}",
        unclassified.join(", ")
    );
    let stale: Vec<String> = classified
        .difference(&fields)
        .map(|(root, field)| format!("{root}.{field}"))
        .collect();
    assert!(
        stale.is_empty(),
        "the authorization table classifies fields the schema no longer has: {}",
        stale.join(", ")
    );
}

/// The `data` of `body` for `field`, treating a null `data` as null.
fn field_data<'a>(body: &'a Value, field: &str) -> &'a Value {
    if body["data"].is_null() {
        &body["data"]
    } else {
        &body["data"][field]
    }
}

/// Asserts that `body` is the error `code` with no data.
fn assert_refused(body: &Value, field: &str, code: &str, context: &str) {
    assert_eq!(
        body["errors"][0]["extensions"]["code"].as_str(),
        Some(code),
        "{context}: expected {code}, got {body}"
    );
    assert!(
        field_data(body, field).is_null(),
        "{context}: no data with {code}: {body}"
    );
}

fn assert_no_markers(body: &Value, markers: &[String], context: &str) {
    let text = body.to_string();
    for marker in markers {
        assert!(
            !text.contains(marker.as_str()),
            "{context}: the victim's {marker} leaked: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_refuses_callers_without_the_right() {
    let started = Instant::now();
    let m = Matrix::start().await;
    // The victim's standing state: a scheduled post (its queue is not empty) and its
    // default account on `example`.
    m.create(
        json!({"content": format!("{SECRET} standing"), "platforms": ["x"],
                    "scheduledAt": days_from_now(1)}),
    )
    .await;
    let connected = m
        .ok(
            &m.admin,
            "mutation { connectAccount(platform: \"example\", credentials: {accessToken: \"acme-secret-1\"}) { id } }",
            json!({}),
        )
        .await;
    let default_connection = connected["connectAccount"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let cases = table::cases();
    for case in &cases {
        let victim = m.prepare(case.setup, &default_connection).await;
        match case.root {
            Root::Query | Root::Mutation => http::run(&m, case, &victim).await,
            Root::Subscription => ws::run(&m, case, &victim).await,
        }
    }
    eprintln!(
        "authorization matrix: {} cases, {} calls (and {} reads of the queue state), {:?}",
        cases.len(),
        m.calls.load(Ordering::Relaxed),
        m.reads.load(Ordering::Relaxed),
        started.elapsed()
    );
}
