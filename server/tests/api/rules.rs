//! The publishing rules that hand-written SQL repeats (`db::rules`) give, in Postgres, what
//! their one definition in `domain::status` gives.

use chrono::{DateTime, Duration, Utc};
use herald_server::db::rules;
use herald_server::domain::post::ApprovalStatus;
use herald_server::domain::status::{self, TargetStatus};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::harness::TestApp;

#[tokio::test]
async fn due_time_and_publishability_in_sql_match_the_domain() {
    let app = TestApp::spawn().await;
    let at: DateTime<Utc> = "2030-06-01T09:00:00Z".parse().expect("instant");
    let retries = [
        None,
        Some(at - Duration::minutes(5)),
        Some(at + Duration::minutes(5)),
    ];
    for next in retries {
        let sql = format!(
            "SELECT {} AS due FROM (SELECT $1::timestamptz AS scheduled_at) p,
                    (SELECT $2::timestamptz AS next_attempt_at) t",
            rules::due_at("p", "t")
        );
        let row = app
            .db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [at.into(), next.into()],
            ))
            .await
            .expect("query")
            .expect("a row");
        let due: DateTime<Utc> = row.try_get("", "due").expect("due");
        assert_eq!(due, status::due_at(at, next), "retry at {next:?}");
    }
    for approval in ApprovalStatus::ALL {
        for archived in [false, true] {
            let sql = format!(
                "SELECT {} AS publishable FROM (SELECT $1::text AS approval_status,
                        CASE WHEN $2 THEN now() END AS archived_at) p",
                rules::publishable("p")
            );
            let row = app
                .db
                .query_one(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [approval.as_str().into(), archived.into()],
                ))
                .await
                .expect("query")
                .expect("a row");
            let publishable: bool = row.try_get("", "publishable").expect("publishable");
            assert_eq!(
                publishable,
                status::is_publishable(approval, archived),
                "{approval:?}, archived {archived}"
            );
        }
    }
    for target in TargetStatus::ALL {
        let sql = format!("SELECT $1::text IN {} AS pending", *rules::PENDING);
        let row = app
            .db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [target.as_str().into()],
            ))
            .await
            .expect("query")
            .expect("a row");
        let pending: bool = row.try_get("", "pending").expect("pending");
        assert_eq!(pending, target.is_pending(), "{target:?}");
    }
}
