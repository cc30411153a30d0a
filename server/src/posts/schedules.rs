//! The accounts' posting schedules: reading and setting one, and the slots of an
//! account's queue in a range with the posts that take them (for calendars).

use std::collections::HashMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::PostService;
use crate::db::entities::connection;
use crate::db::schedules::{self as stored, StoredSchedule};
use crate::domain::actor::Actor;
use crate::domain::schedule::parse_zone;
use crate::domain::slots::{MAX_SLOTS, SlotInstant, WeeklySchedule, WeeklySlot};
use crate::error::AppError;

/// The longest range `queue_slots` lists.
pub const MAX_SLOT_RANGE: Duration = Duration::days(92);

/// An account's posting schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingSchedule {
    /// The account.
    pub connection_id: Uuid,
    /// IANA zone of the slots (UTC until one is set).
    pub time_zone: String,
    /// Whether adding to the queue is refused.
    pub paused: bool,
    /// The weekly slots, Monday first (none until a schedule is set).
    pub slots: Vec<WeeklySlot>,
    /// When it was last set; `None` when it never was.
    pub updated_at: Option<DateTime<Utc>>,
}

impl PostingSchedule {
    fn unset(connection_id: Uuid) -> Self {
        Self {
            connection_id,
            time_zone: chrono_tz::Tz::UTC.name().to_owned(),
            paused: false,
            slots: Vec::new(),
            updated_at: None,
        }
    }
}

impl From<StoredSchedule> for PostingSchedule {
    fn from(s: StoredSchedule) -> Self {
        let slots = match parse_zone(&s.time_zone, "timeZone") {
            Ok(zone) => WeeklySchedule::new(zone, s.slots).slots().to_vec(),
            Err(_) => s.slots,
        };
        Self {
            connection_id: s.connection_id,
            time_zone: s.time_zone,
            paused: s.paused,
            slots,
            updated_at: Some(s.updated_at),
        }
    }
}

/// One occurrence of a slot and the posts due then (free when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSlot {
    /// The occurrence.
    pub slot: SlotInstant,
    /// The posts due at it.
    pub posts: Vec<Uuid>,
}

impl PostService {
    async fn own_connection(&self, actor: &Actor, id: Uuid) -> Result<connection::Model, AppError> {
        connection::Entity::find_by_id(id)
            .filter(connection::Column::OwnerId.eq(&actor.tenant_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound("connection"))
    }

    /// The posting schedule of the tenant's account `connection_id` (an empty one in UTC
    /// when none was set).
    pub async fn posting_schedule(
        &self,
        actor: &Actor,
        connection_id: Uuid,
    ) -> Result<PostingSchedule, AppError> {
        let account = self.own_connection(actor, connection_id).await?;
        Ok(stored::get(&self.db, &actor.tenant_id, account.id)
            .await?
            .map_or_else(|| PostingSchedule::unset(account.id), PostingSchedule::from))
    }

    /// Sets the posting schedule of the tenant's account `connection_id` (by those who
    /// manage the tenant's accounts): its slots, and its zone and pause when given (else
    /// as they were; UTC and running for a first schedule). Posts already queued keep
    /// their times.
    pub async fn set_posting_schedule(
        &self,
        actor: &Actor,
        connection_id: Uuid,
        time_zone: Option<&str>,
        slots: Vec<WeeklySlot>,
        paused: Option<bool>,
    ) -> Result<PostingSchedule, AppError> {
        self.connections.require_manager(actor)?;
        let account = self.own_connection(actor, connection_id).await?;
        if slots.len() > MAX_SLOTS {
            return Err(AppError::bad_input(
                "slots",
                format!("a schedule has at most {MAX_SLOTS} slots"),
            ));
        }
        let current = stored::get(&self.db, &actor.tenant_id, account.id).await?;
        let zone = match time_zone {
            Some(name) => parse_zone(name.trim(), "timeZone")?,
            None => match &current {
                Some(c) => parse_zone(&c.time_zone, "timeZone")?,
                None => chrono_tz::Tz::UTC,
            },
        };
        let schedule = StoredSchedule {
            connection_id: account.id,
            time_zone: zone.name().to_owned(),
            paused: paused.unwrap_or(current.as_ref().is_some_and(|c| c.paused)),
            slots: WeeklySchedule::new(zone, slots).slots().to_vec(),
            // Postgres keeps microseconds: answer what a later read gives.
            updated_at: Utc::now().trunc_subsecs(6),
        };
        stored::put(&self.db, &actor.tenant_id, &schedule).await?;
        Ok(schedule.into())
    }

    /// The slots of account `connection_id`'s queue in `[from, to)` (at most
    /// [`MAX_SLOT_RANGE`]), each with the posts due at it; with the schedule.
    pub async fn queue_slots(
        &self,
        actor: &Actor,
        connection_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(PostingSchedule, Vec<QueueSlot>), AppError> {
        if to <= from {
            return Err(AppError::bad_input("to", "`to` must be after `from`"));
        }
        if to - from > MAX_SLOT_RANGE {
            return Err(AppError::bad_input(
                "to",
                format!(
                    "a range lists at most {} days of slots",
                    MAX_SLOT_RANGE.num_days()
                ),
            ));
        }
        let schedule = self.posting_schedule(actor, connection_id).await?;
        let zone = parse_zone(&schedule.time_zone, "timeZone")?;
        let weekly = WeeklySchedule::new(zone, schedule.slots.iter().copied());
        let mut due: HashMap<DateTime<Utc>, Vec<Uuid>> = HashMap::new();
        for occupant in
            stored::occupants(&self.db, &actor.tenant_id, connection_id, from, to).await?
        {
            due.entry(occupant.at).or_default().push(occupant.post_id);
        }
        let slots = weekly
            .slots_between(from, to)
            .map(|slot| QueueSlot {
                posts: due.remove(&slot.at).unwrap_or_default(),
                slot,
            })
            .collect();
        Ok((schedule, slots))
    }
}
