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
