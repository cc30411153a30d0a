//! Posting schedules and queue modes end to end: weekly slots per account, posts added to
//! the queue, shared next (moving the queued ones back), shared now (published by the
//! worker), removed and compacted; slots in a range; DST; tenant isolation.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use herald_server::domain::actor::Actor;
use herald_server::publish::PublisherRegistry;
use herald_server::publish::recording::RecordingPublisher;
use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error, fast_worker};

const SCHEDULE_FIELDS: &str = "connectionId timeZone paused slots { day time } updatedAt";

async fn app() -> (TestApp, Arc<RecordingPublisher>) {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let mut registry = PublisherRegistry::new();
    registry.register("x", publisher.clone());
    (
        TestApp::spawn_with_worker(registry, fast_worker()).await,
        publisher,
    )
}

async fn app_bluesky_too() -> (TestApp, Arc<RecordingPublisher>) {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let mut registry = PublisherRegistry::new();
    registry.register("x", publisher.clone());
    registry.register("bluesky", publisher.clone());
    (
        TestApp::spawn_with_worker(registry, fast_worker()).await,
        publisher,
    )
}

/// Seeds an account on `x` for `user`'s own tenant; its connection id.
async fn account(app: &TestApp, user: &str) -> String {
    account_on(app, user, "x").await
}

/// Seeds an account on `platform` for `user`'s own tenant; its connection id.
async fn account_on(app: &TestApp, user: &str, platform: &str) -> String {
    let tenant = format!("user:{user}");
    let actor = Actor {
        user_id: user.into(),
        tenant_id: tenant.clone(),
        roles: vec![],
        operator: false,
    };
    herald_server::db::tenant::scope(
        &tenant,
        app.connections.store(
            &actor,
            platform,
            &format!("acct-{user}"),
            &format!("{user} on {platform}"),
            &herald_plugin_host::Credentials::default(),
        ),
    )
    .await
    .expect("seed connection")
    .id
    .to_string()
}

async fn set_schedule(
    app: &TestApp,
    token: &str,
    connection: &str,
    zone: Option<&str>,
    slots: Value,
    paused: Option<bool>,
) -> Value {
    app.gql(
        Some(token),
        &format!(
            "mutation($c: ID!, $z: String, $s: [SlotInput!]!, $p: Boolean) {{
               setPostingSchedule(connectionId: $c, timeZone: $z, slots: $s, paused: $p) {{
                 {SCHEDULE_FIELDS} }} }}"
        ),
        json!({"c": connection, "z": zone, "s": slots, "p": paused}),
    )
    .await
}

async fn create(app: &TestApp, token: &str, content: &str, mode: &str) -> Value {
    app.gql(
        Some(token),
        "mutation($input: CreatePostInput!) {
           createPost(input: $input) { id status scheduledAt localScheduledAt timeZone } }",
        json!({"input": {"content": content, "platforms": ["x"], "mode": mode}}),
    )
    .await
}

/// Adds a post to the queue; its id and time.
async fn queue(app: &TestApp, token: &str, content: &str) -> (String, DateTime<Utc>) {
    let body = create(app, token, content, "ADD_TO_QUEUE").await;
    assert!(body.get("errors").is_none(), "{body}");
    let post = &body["data"]["createPost"];
    assert_eq!(post["status"], "SCHEDULED", "{body}");
    (
        post["id"].as_str().expect("id").to_owned(),
        instant(&post["scheduledAt"]),
    )
}

fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not an instant: {value}"))
        .parse()
        .expect("instant")
}

async fn scheduled_at(app: &TestApp, token: &str, id: &str) -> Option<DateTime<Utc>> {
    let data = app
        .ok(
            token,
            "query($id: ID!) { post(id: $id) { scheduledAt } }",
            json!({"id": id}),
        )
        .await;
    data["post"]["scheduledAt"]
        .as_str()
        .map(|s| s.parse().expect("instant"))
}

async fn queue_slots(
    app: &TestApp,
    token: &str,
    connection: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Value {
    app.gql(
        Some(token),
        "query($c: ID!, $from: DateTime!, $to: DateTime!) {
           queueSlots(connectionId: $c, from: $from, to: $to) {
             connectionId timeZone slots { at localTime slot { day time } free postIds } } }",
        json!({"c": connection, "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
    )
    .await
}

/// The first `n` instants of `times` every day in `zone`, after now (computed here, not
/// by Herald).
fn daily(zone: Tz, times: &[&str], n: usize) -> Vec<DateTime<Utc>> {
    let now = Utc::now();
    let mut date = now.with_timezone(&zone).date_naive();
    let mut out = Vec::new();
    while out.len() < n {
        for time in times {
            let local = date.and_time(NaiveTime::parse_from_str(time, "%H:%M").expect("time"));
            let at = zone
                .from_local_datetime(&local)
                .earliest()
                .expect("no DST gap at these times")
                .with_timezone(&Utc);
            if at > now && out.len() < n {
                out.push(at);
            }
        }
        date = date.succ_opt().expect("date");
    }
    out
}

/// Alice (admin) with her X account scheduled at `times` every day in its zone.
struct DailyQueue {
    app: TestApp,
    token: String,
    conn: String,
    /// The account's first `n` slots from now.
    slots: Vec<DateTime<Utc>>,
}

/// A [`DailyQueue`] at `times` every day in `zone`, with its first `n` slots.
async fn daily_queue(zone: Tz, times: &[&str], n: usize) -> DailyQueue {
    let (app, _) = app().await;
    let token = app.token("alice", None, &["admin"]);
    let conn = account(&app, "alice").await;
    let body = set_schedule(
        &app,
        &token,
        &conn,
        Some(zone.name()),
        every_day(times),
        None,
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let slots = daily(zone, times, n);
    DailyQueue {
        app,
        token,
        conn,
        slots,
    }
}

fn every_day(times: &[&str]) -> Value {
    let days = [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ];
    Value::Array(
        days.iter()
            .flat_map(|d| times.iter().map(move |t| json!({"day": d, "time": t})))
            .collect(),
    )
}

#[tokio::test]
async fn a_schedule_is_set_read_and_its_zone_kept() {
    let (app, _) = app().await;
    let token = app.token("alice", None, &["admin"]);
    let conn = account(&app, "alice").await;

    let unset = app
        .ok(
            &token,
            &format!(
                "query($c: ID!) {{ postingSchedule(connectionId: $c) {{ {SCHEDULE_FIELDS} }} }}"
            ),
            json!({"c": conn}),
        )
        .await;
    assert_eq!(
        unset["postingSchedule"],
        json!({"connectionId": conn, "timeZone": "UTC", "paused": false, "slots": [], "updatedAt": null})
    );

    let body = set_schedule(
        &app,
        &token,
        &conn,
        Some("Asia/Tokyo"),
        json!([
            {"day": "FRIDAY", "time": "17:30"},
            {"day": "MONDAY", "time": "09:00"},
            {"day": "MONDAY", "time": "09:00"}
        ]),
        None,
    )
    .await;
    let set = &body["data"]["setPostingSchedule"];
    assert_eq!(set["timeZone"], "Asia/Tokyo", "{body}");
    assert_eq!(
        set["slots"],
        json!([{"day": "MONDAY", "time": "09:00"}, {"day": "FRIDAY", "time": "17:30"}])
    );
    // Slots replaced, zone kept when not given.
    let body = set_schedule(
        &app,
        &token,
        &conn,
        None,
        json!([{"day": "SUNDAY", "time": "08:15"}]),
        None,
    )
    .await;
    let read = app
        .ok(
            &token,
            &format!(
                "query($c: ID!) {{ postingSchedule(connectionId: $c) {{ {SCHEDULE_FIELDS} }} }}"
            ),
            json!({"c": conn}),
        )
        .await;
    assert_eq!(read["postingSchedule"], body["data"]["setPostingSchedule"]);
    assert_eq!(read["postingSchedule"]["timeZone"], "Asia/Tokyo");
    assert_eq!(
        read["postingSchedule"]["slots"],
        json!([{"day": "SUNDAY", "time": "08:15"}])
    );

    // Bad input names its field.
    let body = set_schedule(&app, &token, &conn, Some("Mars/Olympus"), json!([]), None).await;
    assert_error(&body, "BAD_USER_INPUT", Some("timeZone"));
    let body = set_schedule(
        &app,
        &token,
        &conn,
        None,
        json!([{"day": "MONDAY", "time": "9am"}]),
        None,
    )
    .await;
    assert_error(&body, "BAD_USER_INPUT", Some("slots"));
    // A member without the admin role may not (accounts are managed by admins).
    let member = app.token("alice", None, &[]);
    let body = set_schedule(&app, &member, &conn, None, json!([]), None).await;
    assert_error(&body, "FORBIDDEN", None);
}

#[tokio::test]
async fn add_to_queue_fills_slots_in_order_across_days_in_the_zone() {
    let zone = chrono_tz::America::New_York;
    let DailyQueue {
        app,
        token,
        slots: expected,
        ..
    } = daily_queue(zone, &["09:00", "18:30"], 5).await;

    let mut got = Vec::new();
    for n in 0..5 {
        let body = create(&app, &token, &format!("queued {n}"), "ADD_TO_QUEUE").await;
        let post = &body["data"]["createPost"];
        assert_eq!(post["timeZone"], "America/New_York", "{body}");
        let at = instant(&post["scheduledAt"]);
        let local = at.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string();
        assert!(
            post["localScheduledAt"]
                .as_str()
                .expect("local")
                .starts_with(&local),
            "{body}"
        );
        got.push(at);
    }
    assert_eq!(got, expected);
    // Across at least two local days.
    assert!(got[4].with_timezone(&zone).date_naive() > got[0].with_timezone(&zone).date_naive());

    // schedulePost(mode: ADD_TO_QUEUE) places an existing draft in the next free slot.
    let draft = app
        .create_post(&token, json!({"content": "draft", "platforms": ["x"]}))
        .await;
    let data = app
        .ok(
            &token,
            "mutation($id: ID!) { schedulePost(id: $id, mode: ADD_TO_QUEUE) { scheduledAt status } }",
            json!({"id": draft["id"]}),
        )
        .await;
    assert_eq!(
        instant(&data["schedulePost"]["scheduledAt"]),
        daily(zone, &["09:00", "18:30"], 6)[5]
    );
    // CUSTOM needs the time; the other modes refuse one.
    let body = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { schedulePost(id: $id) { id } }",
            json!({"id": draft["id"]}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", Some("scheduledAt"));
    let body = app
        .gql(
            Some(&token),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
            json!({"input": {"content": "c", "platforms": ["x"], "mode": "ADD_TO_QUEUE",
                             "scheduledAt": "2030-01-01T00:00:00Z"}}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", Some("scheduledAt"));
}

#[tokio::test]
async fn share_next_takes_the_first_slot_and_moves_the_queued_back_one_each() {
    let zone = chrono_tz::Europe::Paris;
    let DailyQueue {
        app, token, slots, ..
    } = daily_queue(zone, &["08:00", "12:00", "20:00"], 5).await;
    let mut queued = Vec::new();
    for n in 0..3 {
        queued.push(queue(&app, &token, &format!("queued {n}")).await);
    }
    assert_eq!(
        queued.iter().map(|q| q.1).collect::<Vec<_>>(),
        slots[..3].to_vec()
    );
    // A post given a custom time in a later slot does not move.
    let custom = app
        .create_post(
            &token,
            json!({"content": "custom", "platforms": ["x"], "scheduledAt": slots[4].to_rfc3339()}),
        )
        .await;

    let draft = app
        .create_post(&token, json!({"content": "urgent", "platforms": ["x"]}))
        .await;
    let data = app
        .ok(
            &token,
            "mutation($id: ID!) { shareNext(id: $id) { post { id scheduledAt status }
                                                        moved { id scheduledAt } } }",
            json!({"id": draft["id"]}),
        )
        .await;
    let result = &data["shareNext"];
    assert_eq!(result["post"]["id"], draft["id"]);
    assert_eq!(result["post"]["status"], "SCHEDULED");
    assert_eq!(instant(&result["post"]["scheduledAt"]), slots[0]);
    let moved: Vec<(String, DateTime<Utc>)> = result["moved"]
        .as_array()
        .expect("moved")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_owned(),
                instant(&p["scheduledAt"]),
            )
        })
        .collect();
    let expected: Vec<(String, DateTime<Utc>)> = queued
        .iter()
        .zip(&slots[1..4])
        .map(|((id, _), at)| (id.clone(), *at))
        .collect();
    assert_eq!(moved, expected);
    for (id, at) in &expected {
        assert_eq!(scheduled_at(&app, &token, id).await, Some(*at));
    }
    let custom_id = custom["id"].as_str().expect("id");
    assert_eq!(scheduled_at(&app, &token, custom_id).await, Some(slots[4]));

    // createPost(mode: SHARE_NEXT) too takes the first slot.
    let body = create(&app, &token, "more urgent", "SHARE_NEXT").await;
    assert_eq!(
        instant(&body["data"]["createPost"]["scheduledAt"]),
        slots[0],
        "{body}"
    );
    assert_eq!(
        scheduled_at(&app, &token, draft["id"].as_str().expect("id")).await,
        Some(slots[1])
    );
}

#[tokio::test]
async fn removing_a_queued_post_moves_nothing_until_the_queue_is_compacted() {
    let zone = chrono_tz::Asia::Kolkata;
    let DailyQueue {
        app,
        token,
        conn,
        slots,
    } = daily_queue(zone, &["10:00", "16:00"], 5).await;
    let mut posts = Vec::new();
    for n in 0..5 {
        posts.push(queue(&app, &token, &format!("queued {n}")).await.0);
    }
    // Delete the second, unschedule the third: the others stay where they are.
    app.ok(
        &token,
        "mutation($id: ID!) { deletePost(id: $id) }",
        json!({"id": posts[1]}),
    )
    .await;
    app.ok(
        &token,
        "mutation($id: ID!) { unschedulePost(id: $id) { id } }",
        json!({"id": posts[2]}),
    )
    .await;
    assert_eq!(scheduled_at(&app, &token, &posts[0]).await, Some(slots[0]));
    assert_eq!(scheduled_at(&app, &token, &posts[3]).await, Some(slots[3]));
    assert_eq!(scheduled_at(&app, &token, &posts[4]).await, Some(slots[4]));

    // The calendar shows the holes.
    let body = queue_slots(
        &app,
        &token,
        &conn,
        Utc::now(),
        slots[4] + chrono::Duration::hours(1),
    )
    .await;
    let listed = body["data"]["queueSlots"]["slots"]
        .as_array()
        .expect("slots")
        .clone();
    assert_eq!(body["data"]["queueSlots"]["timeZone"], "Asia/Kolkata");
    let view: Vec<(DateTime<Utc>, bool, Value)> = listed
        .iter()
        .map(|s| {
            (
                instant(&s["at"]),
                s["free"].as_bool().expect("free"),
                s["postIds"].clone(),
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            (slots[0], false, json!([posts[0]])),
            (slots[1], true, json!([])),
            (slots[2], true, json!([])),
            (slots[3], false, json!([posts[3]])),
            (slots[4], false, json!([posts[4]])),
        ]
    );
    assert_eq!(listed[0]["slot"]["time"], "10:00");
    assert_eq!(
        listed[0]["localTime"],
        slots[0]
            .with_timezone(&zone)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    );

    // Compacting moves the later ones up, in order, and says which.
    let data = app
        .ok(
            &token,
            "mutation($c: ID!) { compactQueue(connectionId: $c) { id scheduledAt } }",
            json!({"c": conn}),
        )
        .await;
    let moved: Vec<(String, DateTime<Utc>)> = data["compactQueue"]
        .as_array()
        .expect("moved")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_owned(),
                instant(&p["scheduledAt"]),
            )
        })
        .collect();
    assert_eq!(
        moved,
        vec![(posts[3].clone(), slots[1]), (posts[4].clone(), slots[2])]
    );
    assert_eq!(scheduled_at(&app, &token, &posts[4]).await, Some(slots[2]));
    // Nothing left to compact.
    let data = app
        .ok(
            &token,
            "mutation($c: ID!) { compactQueue(connectionId: $c) { id } }",
            json!({"c": conn}),
        )
        .await;
    assert_eq!(data["compactQueue"], json!([]));
}

#[tokio::test]
async fn share_now_publishes_now() {
    let (app, publisher) = app().await;
    let token = app.token("alice", None, &["admin"]);
    let before = Utc::now();
    let body = create(&app, &token, "right away", "SHARE_NOW").await;
    let post = &body["data"]["createPost"];
    let at = instant(&post["scheduledAt"]);
    assert!(
        at >= before - chrono::Duration::seconds(1) && at <= Utc::now(),
        "{body}"
    );
    let id = post["id"].as_str().expect("id");
    let published = app
        .wait_for_post(&token, id, Duration::from_secs(15), |p| {
            p["status"] == "PUBLISHED"
        })
        .await;
    assert_eq!(published["targets"][0]["status"], "PUBLISHED");
    let calls = publisher.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].request.content, "right away");
}

#[tokio::test]
async fn queue_modes_need_a_running_schedule() {
    let (app, _) = app().await;
    let token = app.token("alice", None, &["admin"]);
    let conn = account(&app, "alice").await;

    let body = create(&app, &token, "no schedule", "ADD_TO_QUEUE").await;
    assert_error(&body, "BAD_USER_INPUT", Some("mode"));
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("no posting schedule for alice on x"),
        "{message}"
    );
    assert!(message.contains("setPostingSchedule"), "{message}");

    set_schedule(&app, &token, &conn, None, every_day(&["12:00"]), Some(true)).await;
    let body = create(&app, &token, "paused", "ADD_TO_QUEUE").await;
    assert_error(&body, "CONFLICT", None);
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("posting schedule of alice on x") && message.contains("paused"),
        "{message}"
    );
    let body = create(&app, &token, "paused", "SHARE_NEXT").await;
    assert_error(&body, "CONFLICT", None);
    // Nothing was created.
    let data = app
        .ok(
            &token,
            "{ posts(first: 10) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["posts"]["edges"], json!([]));

    // Resumed (slots and zone kept): queued again.
    let body = app
        .gql(
            Some(&token),
            "mutation($c: ID!) { setPostingSchedule(connectionId: $c, slots: [{day: MONDAY, time: \"12:00\"}], paused: false) { paused } }",
            json!({"c": conn}),
        )
        .await;
    assert_eq!(
        body["data"]["setPostingSchedule"]["paused"], false,
        "{body}"
    );
    let (_, at) = queue(&app, &token, "resumed").await;
    assert_eq!(at.weekday(), Weekday::Mon);
}

#[tokio::test]
async fn another_tenants_account_reads_as_unknown() {
    let (app, _) = app().await;
    let alice = app.token("alice", None, &["admin"]);
    let conn = account(&app, "alice").await;
    set_schedule(
        &app,
        &alice,
        &conn,
        Some("Europe/Paris"),
        every_day(&["09:00"]),
        None,
    )
    .await;
    let (queued, _) = queue(&app, &alice, "alice's").await;

    let bob = app.token("bob", None, &["admin"]);
    let unknown = uuid::Uuid::new_v4().to_string();
    let now = Utc::now();
    for id in [&conn, &unknown] {
        let body = app
            .gql(
                Some(&bob),
                "query($c: ID!) { postingSchedule(connectionId: $c) { timeZone } }",
                json!({"c": id}),
            )
            .await;
        assert_error(&body, "NOT_FOUND", None);
        let body = set_schedule(&app, &bob, id, None, json!([]), None).await;
        assert_error(&body, "NOT_FOUND", None);
        let body = queue_slots(&app, &bob, id, now, now + chrono::Duration::days(7)).await;
        assert_error(&body, "NOT_FOUND", None);
        assert!(!body.to_string().contains(&queued), "{body}");
        let body = app
            .gql(
                Some(&bob),
                "mutation($c: ID!) { compactQueue(connectionId: $c) { id } }",
                json!({"c": id}),
            )
            .await;
        assert_error(&body, "NOT_FOUND", None);
    }
    // shareNext: alice's post is unknown to bob (another tenant) and to anonymous callers.
    let share = "mutation($id: ID!) { shareNext(id: $id) { post { id } } }";
    let body = app.gql(Some(&bob), share, json!({"id": queued})).await;
    assert_error(&body, "NOT_FOUND", None);
    let body = app.gql(None, share, json!({"id": queued})).await;
    assert_error(&body, "UNAUTHENTICATED", None);
    // A member without roles may share next (posts are every member's).
    let member = app.token("alice", None, &[]);
    let body = app.gql(Some(&member), share, json!({"id": queued})).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Alice's schedule is unchanged.
    let data = app
        .ok(
            &alice,
            "query($c: ID!) { postingSchedule(connectionId: $c) { timeZone slots { time } } }",
            json!({"c": conn}),
        )
        .await;
    assert_eq!(
        data["postingSchedule"],
        json!({"timeZone": "Europe/Paris", "slots": vec![json!({"time": "09:00"}); 7]})
    );
}

/// The next spring-forward Sunday in the EU (the last Sunday of March) after now.
fn next_spring_forward() -> NaiveDate {
    let today = Utc::now().date_naive();
    (today.year()..today.year() + 2)
        .map(|year| {
            let mut day = NaiveDate::from_ymd_opt(year, 3, 31).expect("date");
            while day.weekday() != Weekday::Sun {
                day = day.pred_opt().expect("date");
            }
            day
        })
        .find(|day| *day > today)
        .expect("a spring-forward Sunday")
}

#[tokio::test]
async fn a_slot_in_the_spring_forward_gap_lands_at_three() {
    let (app, _) = app().await;
    let token = app.token("alice", None, &["admin"]);
    let conn = account(&app, "alice").await;
    set_schedule(
        &app,
        &token,
        &conn,
        Some("Europe/Berlin"),
        json!([{"day": "SUNDAY", "time": "02:30"}]),
        None,
    )
    .await;
    let sunday = next_spring_forward();
    let from = Utc.from_utc_datetime(
        &(sunday - chrono::Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("time"),
    );
    let body = queue_slots(&app, &token, &conn, from, from + chrono::Duration::days(9)).await;
    let slots = body["data"]["queueSlots"]["slots"]
        .as_array()
        .expect("slots");
    assert_eq!(slots.len(), 2, "{body}");
    // 03:00 CEST is 01:00 UTC; the next Sunday's 02:30 CEST is 00:30 UTC.
    assert_eq!(
        instant(&slots[0]["at"]),
        Utc.from_utc_datetime(&sunday.and_hms_opt(1, 0, 0).expect("time"))
    );
    assert_eq!(slots[0]["localTime"], format!("{}T03:00", sunday));
    assert_eq!(slots[0]["slot"], json!({"day": "SUNDAY", "time": "02:30"}));
    let next = sunday + chrono::Duration::days(7);
    assert_eq!(
        instant(&slots[1]["at"]),
        Utc.from_utc_datetime(&next.and_hms_opt(0, 30, 0).expect("time"))
    );
    assert_eq!(slots[1]["localTime"], format!("{}T02:30", next));
}

#[tokio::test]
async fn a_post_on_several_accounts_takes_the_first_slot_free_in_all() {
    let (app, _) = app_bluesky_too().await;
    let token = app.token("alice", None, &["admin"]);
    let on_x = account(&app, "alice").await;
    let on_bluesky = account_on(&app, "alice", "bluesky").await;
    set_schedule(
        &app,
        &token,
        &on_x,
        None,
        every_day(&["09:00", "12:00"]),
        None,
    )
    .await;
    set_schedule(
        &app,
        &token,
        &on_bluesky,
        None,
        every_day(&["12:00", "15:00"]),
        None,
    )
    .await;
    let x_slots = daily(Tz::UTC, &["09:00", "12:00"], 1);
    let (_, first) = queue(&app, &token, "x only").await;
    assert_eq!(first, x_slots[0]);

    let body = app
        .gql(
            Some(&token),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { scheduledAt } }",
            json!({"input": {"content": "both", "platforms": ["x", "bluesky"], "mode": "ADD_TO_QUEUE"}}),
        )
        .await;
    let noons = daily(Tz::UTC, &["12:00"], 2);
    let expected = if noons[0] == first {
        noons[1]
    } else {
        noons[0]
    };
    assert_eq!(
        instant(&body["data"]["createPost"]["scheduledAt"]),
        expected,
        "{body}"
    );
    // SHARE_NEXT needs one account.
    let body = app
        .gql(
            Some(&token),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
            json!({"input": {"content": "both", "platforms": ["x", "bluesky"], "mode": "SHARE_NEXT"}}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", Some("mode"));
}

#[tokio::test]
async fn posts_added_at_once_never_share_a_slot() {
    let (app, _) = app().await;
    let token = app.token("alice", None, &["admin"]);
    let conn = account(&app, "alice").await;
    set_schedule(
        &app,
        &token,
        &conn,
        None,
        every_day(&["06:00", "13:00", "21:00"]),
        None,
    )
    .await;
    let adds = (0..8).map(|n| {
        let (app, token) = (&app, &token);
        async move { queue(app, token, &format!("at once {n}")).await.1 }
    });
    let mut got = futures_util::future::join_all(adds).await;
    got.sort();
    assert_eq!(got, daily(Tz::UTC, &["06:00", "13:00", "21:00"], 8));
}
