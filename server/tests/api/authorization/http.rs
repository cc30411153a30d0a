//! The matrix over HTTP: queries and mutations.

use std::time::Duration;

use serde_json::json;

use super::matrix::Matrix;
use super::table::{Case, Class, Victim};
use super::{Expect, assert_no_markers, assert_refused, expected, field_data, root_name};

/// One HTTP case: every caller, then the rightful one.
pub(super) async fn run(m: &Matrix, case: &Case, victim: &Victim) {
    let variables = (case.variables)(victim);
    let before = m.victim_state().await;
    let markers = m.victim_markers().await;
    for caller in &m.callers {
        let Some(expect) = expected(case.class, caller) else {
            continue;
        };
        let context = format!(
            "{}.{} ({:?}) as {}",
            root_name(case.root),
            case.field,
            case.class,
            caller.name
        );
        let mut variables = variables.clone();
        if case.own_draft {
            variables["own"] = json!(match &caller.token {
                Some(token) => m.own_draft(token).await,
                None => uuid::Uuid::new_v4().to_string(),
            });
        }
        let body = m
            .gql(caller.token.as_deref(), case.document, variables.clone())
            .await;
        match expect {
            Expect::Unauthenticated => {
                assert_refused(&body, case.field, "UNAUTHENTICATED", &context)
            }
            Expect::Forbidden => assert_refused(&body, case.field, "FORBIDDEN", &context),
            Expect::NotFound => assert_refused(&body, case.field, "NOT_FOUND", &context),
            Expect::Null => {
                assert!(body.get("errors").is_none(), "{context}: {body}");
                assert!(
                    body["data"].is_object() && body["data"][case.field].is_null(),
                    "{context}: expected null, got {body}"
                );
            }
            Expect::OwnView => {
                assert!(body.get("errors").is_none(), "{context}: {body}");
                if let Some(foreign) = case.foreign {
                    assert_eq!(body["data"], foreign(), "{context}: not its own view");
                }
            }
            Expect::SameAsUnknown => {
                let unknown = uuid::Uuid::new_v4().to_string();
                let mut other = variables.clone();
                other["id"] = json!(unknown);
                let baseline = m.gql(caller.token.as_deref(), case.document, other).await;
                assert_refused(&body, case.field, "BAD_USER_INPUT", &context);
                let masked = body.to_string().replace(&victim.connection, "<id>");
                assert_eq!(
                    masked,
                    baseline.to_string().replace(&unknown, "<id>"),
                    "{context}: another tenant's connection reads differently from an unknown one"
                );
            }
            Expect::Silent => unreachable!("subscriptions only"),
        }
        // An error may echo the id the caller sent itself, nothing else of the victim's.
        let markers: Vec<String> = markers
            .iter()
            .filter(|marker| expect != Expect::SameAsUnknown || **marker != victim.connection)
            .cloned()
            .collect();
        assert_no_markers(&body, &markers, &context);
        assert_eq!(
            m.victim_state().await,
            before,
            "{context}: the victim's state changed"
        );
    }

    // The rightful caller: the call is well formed and does what it says.
    let context = format!(
        "{}.{} as its rightful caller",
        root_name(case.root),
        case.field
    );
    let rightful = m.rightful(case.class);
    let mut variables = variables;
    let mut before = before;
    if case.own_draft {
        // The rightful caller's own draft is the victim's: a new row.
        variables["own"] = json!(m.own_draft(&rightful).await);
        before = m.victim_state().await;
    }
    let body = m.gql(Some(&rightful), case.document, variables).await;
    assert!(body.get("errors").is_none(), "{context}: {body}");
    assert!(
        !field_data(&body, case.field).is_null(),
        "{context}: no data: {body}"
    );
    match case.class {
        Class::TenantRead | Class::TenantReadById(_) => {
            let text = body.to_string();
            assert!(
                markers.iter().any(|marker| text.contains(marker.as_str())),
                "{context}: the victim's data is not in its own answer: {body}"
            );
        }
        Class::RoleGatedShared(_) => {
            if let Some(foreign) = case.foreign {
                assert_ne!(
                    body["data"],
                    foreign(),
                    "{context}: the owner's answer is an empty tenant's"
                );
            }
        }
        _ => {}
    }
    if case.settles {
        m.app
            .wait_for_post(&m.admin, &victim.post, Duration::from_secs(10), |p| {
                ["PUBLISHED", "FAILED"].contains(&p["status"].as_str().unwrap_or_default())
            })
            .await;
    }
    let after = m.victim_state().await;
    if case.changes {
        assert_ne!(after, before, "{context}: the call changed nothing");
    } else {
        assert_eq!(after, before, "{context}: a read changed the state");
    }
}
