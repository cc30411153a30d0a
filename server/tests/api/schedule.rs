//! Scheduling in the author's time zone: instants, local times, DST gap and overlap,
//! unknown zones, past times, unscheduling.

use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error, days_from_now};

const SCHEDULE: &str = "mutation($id: ID!, $at: String!, $tz: String, $amb: AmbiguousTime) {
    schedulePost(id: $id, scheduledAt: $at, timeZone: $tz, ambiguousTime: $amb) {
      status scheduledAt localScheduledAt timeZone version targets { status } } }";

async fn draft(app: &TestApp, token: &str) -> String {
    let post = app
        .create_post(
            token,
            json!({"content": "timed", "platforms": ["x", "mastodon"]}),
        )
        .await;
    post["id"].as_str().expect("id").to_owned()
}

async fn schedule(
    app: &TestApp,
    token: &str,
    id: &str,
    at: &str,
    tz: Option<&str>,
    amb: Option<&str>,
) -> Value {
    app.gql(
        Some(token),
        SCHEDULE,
        json!({"id": id, "at": at, "tz": tz, "amb": amb}),
    )
    .await
}

#[tokio::test]
async fn local_time_in_zone_and_instant_with_offset() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let id = draft(&app, &token).await;

    let body = schedule(
        &app,
        &token,
        &id,
        "2030-01-15T09:30",
        Some("America/New_York"),
        None,
    )
    .await;
    let post = &body["data"]["schedulePost"];
    assert_eq!(post["scheduledAt"], "2030-01-15T14:30:00+00:00", "{body}");
    assert_eq!(post["localScheduledAt"], "2030-01-15T09:30:00");
    assert_eq!(post["timeZone"], "America/New_York");
    assert_eq!(post["status"], "SCHEDULED");
    assert_eq!(
        post["targets"],
        json!([{"status": "SCHEDULED"}, {"status": "SCHEDULED"}])
    );

    // Rescheduling with an offset; the post keeps its zone for the wall-clock time.
    let body = schedule(&app, &token, &id, "2030-07-01T12:00:00+02:00", None, None).await;
    let post = &body["data"]["schedulePost"];
    assert_eq!(post["scheduledAt"], "2030-07-01T10:00:00+00:00", "{body}");
    assert_eq!(post["localScheduledAt"], "2030-07-01T06:00:00");
    assert_eq!(post["timeZone"], "America/New_York");

    let created = app
        .create_post(
            &token,
            json!({"content": "paris", "platforms": ["x"], "scheduledAt": "2030-03-01T08:00", "timeZone": "Europe/Paris"}),
        )
        .await;
    assert_eq!(created["scheduledAt"], "2030-03-01T07:00:00+00:00");
    assert_eq!(created["status"], "SCHEDULED");

    let unscheduled = app
        .ok(&token, "mutation($id: ID!) { unschedulePost(id: $id) { status scheduledAt localScheduledAt targets { status } } }", json!({"id": id}))
        .await;
    let post = &unscheduled["unschedulePost"];
    assert_eq!(post["status"], "DRAFT");
    assert_eq!(post["scheduledAt"], Value::Null);
    assert_eq!(post["localScheduledAt"], Value::Null);
    assert_eq!(
        post["targets"],
        json!([{"status": "DRAFT"}, {"status": "DRAFT"}])
    );
}

#[tokio::test]
async fn dst_gap_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let id = draft(&app, &token).await;
    // 2030-03-10 is the spring-forward day in New York: 02:00–03:00 does not exist.
    let body = schedule(
        &app,
        &token,
        &id,
        "2030-03-10T02:30",
        Some("America/New_York"),
        None,
    )
    .await;
    assert_error(&body, "BAD_USER_INPUT", Some("scheduledAt"));
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("does not exist") && message.contains("gap"),
        "{message}"
    );
}

#[tokio::test]
async fn dst_overlap_needs_an_explicit_choice() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let id = draft(&app, &token).await;
    // 2030-11-03 is the fall-back day in New York: 01:30 happens twice.
    let body = schedule(
        &app,
        &token,
        &id,
        "2030-11-03T01:30",
        Some("America/New_York"),
        None,
    )
    .await;
    assert_error(&body, "BAD_USER_INPUT", Some("scheduledAt"));
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("EARLIER or LATER")
    );

    let earlier = schedule(
        &app,
        &token,
        &id,
        "2030-11-03T01:30",
        Some("America/New_York"),
        Some("EARLIER"),
    )
    .await;
    assert_eq!(
        earlier["data"]["schedulePost"]["scheduledAt"], "2030-11-03T05:30:00+00:00",
        "{earlier}"
    );
    let later = schedule(
        &app,
        &token,
        &id,
        "2030-11-03T01:30",
        Some("America/New_York"),
        Some("LATER"),
    )
    .await;
    assert_eq!(
        later["data"]["schedulePost"]["scheduledAt"], "2030-11-03T06:30:00+00:00",
        "{later}"
    );
    assert_eq!(
        later["data"]["schedulePost"]["localScheduledAt"],
        "2030-11-03T01:30:00"
    );
}

#[tokio::test]
async fn unknown_zone_past_time_and_malformed_time_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let id = draft(&app, &token).await;

    let body = schedule(
        &app,
        &token,
        &id,
        "2030-01-01T09:00",
        Some("Atlantis/Capital"),
        None,
    )
    .await;
    assert_error(&body, "BAD_USER_INPUT", Some("timeZone"));
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("Atlantis/Capital")
    );

    let body = schedule(&app, &token, &id, &days_from_now(-1), None, None).await;
    assert_error(&body, "BAD_USER_INPUT", Some("scheduledAt"));
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("in the past")
    );

    let body = schedule(&app, &token, &id, "tomorrow-ish", None, None).await;
    assert_error(&body, "BAD_USER_INPUT", Some("scheduledAt"));

    let create = app
        .gql(
            Some(&token),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
            json!({"input": {"content": "x", "platforms": ["x"], "scheduledAt": "2030-01-01T09:00"}}),
        )
        .await;
    assert_error(&create, "BAD_USER_INPUT", Some("timeZone"));

    // Nothing was changed by the refused requests.
    let post = app
        .ok(
            &token,
            "query($id: ID!) { post(id: $id) { status version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(post["post"], json!({"status": "DRAFT", "version": 1}));
}
