//! The approval workflow: pending on creation, reject with a reason, back to pending on
//! edit, approve.

use serde_json::json;

use crate::harness::{TestApp, assert_error};

#[tokio::test]
async fn reject_edit_approve() {
    let app = TestApp::spawn().await;
    let author = app.token("ann", Some("acme"), &[]);
    let approver = app.token("ada", Some("acme"), &["approver"]);
    let post = app
        .create_post(
            &author,
            json!({"content": "draft copy", "platforms": ["x"], "approvalRequired": true}),
        )
        .await;
    assert_eq!(post["approvalStatus"], "PENDING");
    let id = post["id"].as_str().expect("id");

    let empty = app
        .gql(
            Some(&approver),
            "mutation($id: ID!) { rejectPost(id: $id, reason: \"  \") { id } }",
            json!({"id": id}),
        )
        .await;
    assert_error(&empty, "BAD_USER_INPUT", Some("reason"));

    let rejected = app
        .ok(&approver, "mutation($id: ID!) { rejectPost(id: $id, reason: \"Typo in line 1\") { approvalStatus rejectionReason } }", json!({"id": id}))
        .await;
    assert_eq!(
        rejected["rejectPost"],
        json!({"approvalStatus": "REJECTED", "rejectionReason": "Typo in line 1"})
    );

    // Editing the notes alone keeps the decision; editing the text asks again.
    let notes = app
        .ok(&author, "mutation($id: ID!) { updatePost(id: $id, input: {notes: \"fixed?\"}) { approvalStatus } }", json!({"id": id}))
        .await;
    assert_eq!(notes["updatePost"]["approvalStatus"], "REJECTED");
    let edited = app
        .ok(&author, "mutation($id: ID!) { updatePost(id: $id, input: {content: \"final copy\"}) { approvalStatus rejectionReason } }", json!({"id": id}))
        .await;
    assert_eq!(
        edited["updatePost"],
        json!({"approvalStatus": "PENDING", "rejectionReason": null})
    );

    let approved = app
        .ok(
            &approver,
            "mutation($id: ID!) { approvePost(id: $id) { approvalStatus } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(approved["approvePost"]["approvalStatus"], "APPROVED");

    let plain = app
        .create_post(&author, json!({"content": "no approval needed"}))
        .await;
    assert_eq!(plain["approvalStatus"], "NOT_REQUIRED");
    let body = app
        .gql(
            Some(&approver),
            "mutation($id: ID!) { approvePost(id: $id) { id } }",
            json!({"id": plain["id"]}),
        )
        .await;
    assert_error(&body, "CONFLICT", None);
}

/// Only an approver may lift the approval requirement of a post that has it: otherwise
/// any member could publish a post awaiting approval, or one an approver rejected.
#[tokio::test]
async fn only_an_approver_lifts_the_approval_requirement() {
    let app = TestApp::spawn().await;
    let author = app.token("ann", Some("acme"), &[]);
    let approver = app.token("ada", Some("acme"), &["approver"]);
    let post = app
        .create_post(
            &author,
            json!({"content": "needs a look", "platforms": ["x"], "approvalRequired": true}),
        )
        .await;
    let id = post["id"].as_str().expect("id");
    let lift = "mutation($id: ID!) { updatePost(id: $id, input: {approvalRequired: false}) \
                { approvalRequired approvalStatus } }";

    let refused = app.gql(Some(&author), lift, json!({"id": id})).await;
    assert_error(&refused, "FORBIDDEN", None);
    assert!(refused["data"].is_null(), "{refused}");

    app.ok(
        &approver,
        "mutation($id: ID!) { rejectPost(id: $id, reason: \"off brand\") { id } }",
        json!({"id": id}),
    )
    .await;
    let still = app.gql(Some(&author), lift, json!({"id": id})).await;
    assert_error(&still, "FORBIDDEN", None);
    let read = app
        .ok(
            &author,
            "query($id: ID!) { post(id: $id) { approvalRequired approvalStatus } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        read["post"],
        json!({"approvalRequired": true, "approvalStatus": "REJECTED"})
    );

    let lifted = app.ok(&approver, lift, json!({"id": id})).await;
    assert_eq!(
        lifted["updatePost"],
        json!({"approvalRequired": false, "approvalStatus": "NOT_REQUIRED"})
    );
    // Asking for approval stays open to every member.
    let asked = app
        .ok(
            &author,
            "mutation($id: ID!) { updatePost(id: $id, input: {approvalRequired: true}) \
             { approvalStatus } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(asked["updatePost"]["approvalStatus"], "PENDING");
}
