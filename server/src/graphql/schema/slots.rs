//! Posting schedules in GraphQL: an account's weekly slots (`postingSchedule`,
//! `setPostingSchedule`), the slots of its queue in a range (`queueSlots`), and moving
//! queued posts (`shareNext`, `compactQueue`).

use async_graphql::{Context, Enum, ErrorExtensions, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::Post;
use super::{actor, parse_id};
use crate::domain::slots::{self, WeeklySlot};
use crate::posts::{PostService, PostingSchedule as Schedule, QueueSlot as Occurrence};

/// A day of the week.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

const WEEK: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

impl From<chrono::Weekday> for Weekday {
    fn from(day: chrono::Weekday) -> Self {
        WEEK.get(day.num_days_from_monday() as usize)
            .copied()
            .unwrap_or(Weekday::Monday)
    }
}

impl From<Weekday> for chrono::Weekday {
    fn from(day: Weekday) -> Self {
        let index = WEEK.iter().position(|d| *d == day).unwrap_or(0);
        slots::weekday(u32::try_from(index).unwrap_or(0))
    }
}

/// A weekly slot to set.
#[derive(InputObject)]
pub struct SlotInput {
    /// The weekday.
    pub day: Weekday,
    /// The wall-clock time in the schedule's zone, `HH:MM` (24-hour).
    pub time: String,
}

/// A weekly slot.
#[derive(SimpleObject)]
pub struct Slot {
    /// The weekday.
    pub day: Weekday,
    /// The wall-clock time in the schedule's zone, `HH:MM`.
    pub time: String,
}

impl From<WeeklySlot> for Slot {
    fn from(s: WeeklySlot) -> Self {
        Self {
            day: s.day.into(),
            time: s.time_text(),
        }
    }
}

/// An account's posting schedule: weekly slots in a time zone. A slot on a local time the
/// clocks skip (DST spring-forward) is at the first valid time after the gap (02:30 →
/// 03:00); on a time that occurs twice (fall-back), at its first occurrence.
#[derive(SimpleObject)]
pub struct PostingSchedule {
    /// The account (connection).
    pub connection_id: ID,
    /// IANA zone of the slots (UTC until one is set).
    pub time_zone: String,
    /// Whether the queue is paused: `ADD_TO_QUEUE` and `SHARE_NEXT` are refused
    /// (`CONFLICT`); posts already queued stay due.
    pub paused: bool,
    /// The slots, Monday first, by time; none until a schedule is set.
    pub slots: Vec<Slot>,
    /// When it was last set; null when it never was.
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<Schedule> for PostingSchedule {
    fn from(s: Schedule) -> Self {
        Self {
            connection_id: ID(s.connection_id.to_string()),
            time_zone: s.time_zone,
            paused: s.paused,
            slots: s.slots.into_iter().map(Into::into).collect(),
            updated_at: s.updated_at,
        }
    }
}

/// One occurrence of a slot in an account's queue.
#[derive(SimpleObject)]
pub struct QueueSlot {
    /// When it is.
    pub at: DateTime<Utc>,
    /// Its wall-clock time in the schedule's zone (`2026-03-29T03:00`), after a DST gap
    /// the time it moved to.
    pub local_time: String,
    /// The weekly slot it is an occurrence of.
    pub slot: Slot,
    /// Whether no post is due at it.
    pub free: bool,
    /// The posts due at it.
    pub post_ids: Vec<ID>,
}

impl From<Occurrence> for QueueSlot {
    fn from(o: Occurrence) -> Self {
        Self {
            at: o.slot.at,
            local_time: o.slot.local.format("%Y-%m-%dT%H:%M").to_string(),
            slot: o.slot.slot.into(),
            free: o.posts.is_empty(),
            post_ids: o.posts.iter().map(|id| ID(id.to_string())).collect(),
        }
    }
}

/// The slots of an account's queue in a range.
#[derive(SimpleObject)]
pub struct QueueSlots {
    /// The account (connection).
    pub connection_id: ID,
    /// IANA zone of the slots.
    pub time_zone: String,
    /// The slots in the range, in order.
    pub slots: Vec<QueueSlot>,
}

/// What `shareNext` did.
#[derive(SimpleObject)]
pub struct ShareNextResult {
    /// The post, in the first slot.
    pub post: Post,
    /// The queued posts that moved back one slot each, in order.
    pub moved: Vec<Post>,
}

/// Reads of posting schedules.
#[derive(Default)]
pub struct ScheduleQuery;

#[Object]
impl ScheduleQuery {
    /// The posting schedule of one of the tenant's accounts (empty, in UTC, until set);
    /// NOT_FOUND for an account that is not the tenant's.
    async fn posting_schedule(
        &self,
        ctx: &Context<'_>,
        connection_id: ID,
    ) -> async_graphql::Result<PostingSchedule> {
        let actor = actor(ctx)?;
        let id = parse_id(&connection_id, "connectionId")?;
        let schedule = ctx
            .data::<PostService>()?
            .posting_schedule(actor, id)
            .await
            .map_err(|e| e.extend())?;
        Ok(schedule.into())
    }

    /// The slots of an account's queue in `[from, to)` (at most 92 days), free or with
    /// the posts due at them, for calendars.
    async fn queue_slots(
        &self,
        ctx: &Context<'_>,
        connection_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> async_graphql::Result<QueueSlots> {
        let actor = actor(ctx)?;
        let id = parse_id(&connection_id, "connectionId")?;
        let (schedule, slots) = ctx
            .data::<PostService>()?
            .queue_slots(actor, id, from, to)
            .await
            .map_err(|e| e.extend())?;
        Ok(QueueSlots {
            connection_id: ID(schedule.connection_id.to_string()),
            time_zone: schedule.time_zone,
            slots: slots.into_iter().map(Into::into).collect(),
        })
    }
}

/// Changes of posting schedules and queues.
#[derive(Default)]
pub struct ScheduleMutation;

#[Object]
impl ScheduleMutation {
    /// Sets the posting schedule of one of the tenant's accounts: its weekly `slots`
    /// (replacing them), and its `timeZone` and `paused` when given (else as they were; UTC
    /// and running for a first schedule). Admins only, unless the instance lets members
    /// manage accounts. Queued posts keep their times.
    async fn set_posting_schedule(
        &self,
        ctx: &Context<'_>,
        connection_id: ID,
        time_zone: Option<String>,
        slots: Vec<SlotInput>,
        paused: Option<bool>,
    ) -> async_graphql::Result<PostingSchedule> {
        let actor = actor(ctx)?;
        let id = parse_id(&connection_id, "connectionId")?;
        let slots = slots
            .into_iter()
            .map(|s| {
                Ok(WeeklySlot {
                    day: s.day.into(),
                    time: slots::parse_time(&s.time, "slots")?,
                })
            })
            .collect::<Result<Vec<_>, crate::error::AppError>>()
            .map_err(|e| e.extend())?;
        let schedule = ctx
            .data::<PostService>()?
            .set_posting_schedule(actor, id, time_zone.as_deref(), slots, paused)
            .await
            .map_err(|e| e.extend())?;
        Ok(schedule.into())
    }

    /// Schedules a post in the first slot of its account's queue; the posts queued from
    /// that slot on move back one slot each, and `moved` lists them. The post's targets
    /// must publish as one account with a running posting schedule.
    async fn share_next(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> async_graphql::Result<ShareNextResult> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let (post, moved) = ctx
            .data::<PostService>()?
            .schedule_in_queue(actor, id, slots::PublishMode::ShareNext, expected_version)
            .await
            .map_err(|e| e.extend())?;
        Ok(ShareNextResult {
            post: post.into(),
            moved: moved.into_iter().map(Into::into).collect(),
        })
    }

    /// Moves the posts queued on one of the tenant's accounts up into the free slots
    /// before them, in order (posts given a custom time stay); the posts that moved.
    async fn compact_queue(
        &self,
        ctx: &Context<'_>,
        connection_id: ID,
    ) -> async_graphql::Result<Vec<Post>> {
        let actor = actor(ctx)?;
        let id = parse_id(&connection_id, "connectionId")?;
        let moved = ctx
            .data::<PostService>()?
            .compact_queue(actor, id)
            .await
            .map_err(|e| e.extend())?;
        Ok(moved.into_iter().map(Into::into).collect())
    }
}
