//! Posting queues: placing a post in the slots of its accounts' posting schedules
//! (`ADD_TO_QUEUE`, `SHARE_NEXT`), and moving queued posts up into free slots on request
//! (`compactQueue`).
//!
//! A target publishes as an account (named, or the platform's default); that account's
//! posting schedule is the queue. A post with targets on several accounts takes the first
//! instant that is a free slot in every one of their queues. Only `ADD_TO_QUEUE` places
//! such a post; `SHARE_NEXT` needs the post's targets to publish as one account.
//!
//! A post keeps the time it was given: removing a queued post leaves the others where
//! they are, and only `SHARE_NEXT` (which says which posts it moved) and `compactQueue`
//! move queued posts. Posts given a custom time take their time but never move. Every
//! change of a queue runs under that queue's lock (`db::schedules::lock_queues`), taken
//! before any post's row, so two posts added at once never take the same slot.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    Set, TransactionTrait,
};
use uuid::Uuid;

use super::PostService;
use super::checks::Checked;
use crate::db::entities::{connection, post, target};
use crate::db::schedules::{self as stored, Occupant};
use crate::db::{posts, targets};
use crate::domain::actor::Actor;
use crate::domain::schedule::parse_zone;
use crate::domain::slots::{PublishMode, SlotInstant, WeeklySchedule};
use crate::domain::status::TargetStatus;
use crate::domain::target::TargetSpec;
use crate::error::AppError;

/// How far ahead a free slot is looked for.
pub(super) const HORIZON: Duration = Duration::days(366);

/// The queue of one account.
pub(super) struct Queue {
    pub(super) connection: connection::Model,
    pub(super) schedule: WeeklySchedule,
}

/// Where a post goes in its queues, and the queued posts that move for it.
pub(super) struct Placement {
    pub(super) at: DateTime<Utc>,
    pub(super) local: NaiveDateTime,
    pub(super) zone: Tz,
    pub(super) connections: Vec<Uuid>,
    pub(super) moves: Vec<(Uuid, SlotInstant)>,
}

impl PostService {
    /// The queues of the accounts `targets` publish as: `BAD_USER_INPUT` on `mode` for an
    /// account without a schedule, `CONFLICT` for a paused one.
    pub(super) async fn queues_of<C: ConnectionTrait>(
        &self,
        db: &C,
        actor: &Actor,
        targets: &[TargetSpec],
    ) -> Result<Vec<Queue>, AppError> {
        let mut queues: Vec<Queue> = Vec::new();
        for spec in targets {
            let account =
                stored::connection_of(db, &actor.tenant_id, &spec.platform, spec.connection_id)
                    .await?
                    .ok_or_else(|| {
                        AppError::bad_input(
                            "mode",
                            format!(
                                "no connected {} account to queue the post for: name one in \
                                 the target, or choose a default account",
                                spec.platform
                            ),
                        )
                    })?;
            if queues.iter().any(|q| q.connection.id == account.id) {
                continue;
            }
            let schedule = stored::get(db, &actor.tenant_id, account.id)
                .await?
                .filter(|s| !s.slots.is_empty())
                .ok_or_else(|| {
                    AppError::bad_input(
                        "mode",
                        format!(
                            "no posting schedule for {} ({}); set one with setPostingSchedule",
                            account.display_name, account.platform
                        ),
                    )
                })?;
            if schedule.paused {
                return Err(AppError::Conflict(format!(
                    "the posting schedule of {} ({}) is paused; resume it with \
                     setPostingSchedule(paused: false)",
                    account.display_name, account.platform
                )));
            }
            let zone = parse_zone(&schedule.time_zone, "timeZone")?;
            queues.push(Queue {
                connection: account,
                schedule: WeeklySchedule::new(zone, schedule.slots),
            });
        }
        Ok(queues)
    }

    /// Places a post (`post_id`, or a new one) in `queues` by `mode`, in a transaction
    /// holding the queues' locks.
    pub(super) async fn place(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        queues: &[Queue],
        mode: PublishMode,
        post_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Placement, AppError> {
        let Some(first) = queues.first() else {
            return Err(AppError::bad_input(
                "mode",
                "the post has no target to queue",
            ));
        };
        let horizon = now + HORIZON;
        let (slot, moves) = match mode {
            PublishMode::ShareNext => {
                if queues.len() > 1 {
                    return Err(AppError::bad_input(
                        "mode",
                        "SHARE_NEXT needs the post's targets to publish as one account; \
                         use ADD_TO_QUEUE for a post on several accounts",
                    ));
                }
                let slot =
                    first.schedule.slots_from(now).next().ok_or_else(|| {
                        AppError::bad_input("mode", "the posting schedule is empty")
                    })?;
                let queued: Vec<Occupant> = self
                    .occupants(txn, actor, first, slot.at, horizon, post_id)
                    .await?
                    .into_iter()
                    .filter(|o| o.queued)
                    .collect();
                let moves = queued
                    .iter()
                    .filter_map(|o| {
                        first
                            .schedule
                            .slots_from(o.at + Duration::seconds(1))
                            .next()
                            .map(|to| (o.post_id, to))
                    })
                    .collect();
                (slot, moves)
            }
            _ => {
                let mut free: Vec<Vec<SlotInstant>> = Vec::with_capacity(queues.len());
                for queue in queues {
                    let taken: HashSet<DateTime<Utc>> = self
                        .occupants(txn, actor, queue, now, horizon, post_id)
                        .await?
                        .iter()
                        .map(|o| o.at)
                        .collect();
                    free.push(
                        queue
                            .schedule
                            .slots_between(now, horizon)
                            .filter(|s| !taken.contains(&s.at))
                            .collect(),
                    );
                }
                let Some((mine, others)) = free.split_first() else {
                    return Err(AppError::bad_input(
                        "mode",
                        "the post has no target to queue",
                    ));
                };
                let slot = mine
                    .iter()
                    .find(|s| {
                        others
                            .iter()
                            .all(|o| o.binary_search_by_key(&s.at, |f| f.at).is_ok())
                    })
                    .copied()
                    .ok_or_else(|| {
                        let names: Vec<&str> = queues
                            .iter()
                            .map(|q| q.connection.display_name.as_str())
                            .collect();
                        AppError::bad_input(
                            "mode",
                            format!(
                                "no free slot within a year in the posting schedule of {}",
                                names.join(" and ")
                            ),
                        )
                    })?;
                (slot, Vec::new())
            }
        };
        Ok(Placement {
            at: slot.at,
            local: slot.local,
            zone: first.schedule.zone(),
            connections: queues.iter().map(|q| q.connection.id).collect(),
            moves,
        })
    }

    async fn occupants(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        queue: &Queue,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        except: Option<Uuid>,
    ) -> Result<Vec<Occupant>, AppError> {
        Ok(
            stored::occupants(txn, &actor.tenant_id, queue.connection.id, from, to)
                .await?
                .into_iter()
                .filter(|o| Some(o.post_id) != except)
                .collect(),
        )
    }

    /// Moves queued posts to their new slots (posts that started publishing meanwhile
    /// stay); the moved posts, saved.
    pub(super) async fn apply_moves(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        moves: &[(Uuid, SlotInstant)],
        zone: Tz,
        now: DateTime<Utc>,
    ) -> Result<Vec<(post::Model, Vec<target::Model>)>, AppError> {
        let mut moved = Vec::with_capacity(moves.len());
        for (id, to) in moves {
            let (current, targets) = posts::lock(txn, actor, *id).await?;
            if targets.iter().any(|t| t.status.is_locked()) {
                continue;
            }
            let mut model = current.clone().into_active_model();
            model.scheduled_at = Set(Some(to.at));
            model.local_scheduled_at = Set(Some(to.at.with_timezone(&zone).naive_local()));
            model.timezone = Set(zone.name().to_owned());
            moved.push(posts::save(txn, &current, model, now).await?);
        }
        Ok(moved)
    }

    /// Schedules post `id` in its accounts' queues (`ADD_TO_QUEUE` or `SHARE_NEXT`) once
    /// it passes its checks; the post, and the queued posts that moved back a slot for it.
    pub async fn schedule_in_queue(
        &self,
        actor: &Actor,
        id: Uuid,
        mode: PublishMode,
        expected_version: Option<i32>,
    ) -> Result<(post::Model, Vec<post::Model>), AppError> {
        let mut checked = Checked::default();
        loop {
            let txn = self.db.begin().await?;
            // The queues' locks come before the post's row (see the module's notes).
            let specs: Vec<TargetSpec> = targets::of_post(&txn, id)
                .await?
                .iter()
                .map(target::Model::spec)
                .collect();
            let queues = self.queues_of(&txn, actor, &specs).await;
            let ids: Vec<Uuid> = queues
                .as_ref()
                .map(|qs| qs.iter().map(|q| q.connection.id).collect())
                .unwrap_or_default();
            stored::lock_queues(&txn, &ids).await?;
            let (current, targets) = posts::lock(&txn, actor, id).await?;
            super::commands::check_version(&current, expected_version)?;
            super::commands::refuse_if_locked(&targets, "rescheduled")?;
            let locked_specs: Vec<TargetSpec> = targets.iter().map(target::Model::spec).collect();
            if locked_specs != specs {
                // The targets changed before the lock: look the queues up again.
                txn.rollback().await?;
                checked.count()?;
                continue;
            }
            let queues = queues?;
            if !checked.covers(&current, &targets) {
                txn.rollback().await?;
                checked.count()?;
                self.require_schedulable(actor, &current.content, &current.media(), &specs)
                    .await?;
                checked.saw(&current, &targets);
                continue;
            }
            let now = Utc::now();
            let placement = self
                .place(&txn, actor, &queues, mode, Some(id), now)
                .await?;
            targets::set_status(&txn, &targets, TargetStatus::Scheduled, now).await?;
            let mut model = current.clone().into_active_model();
            model.scheduled_at = Set(Some(placement.at));
            model.local_scheduled_at = Set(Some(placement.local));
            model.timezone = Set(placement.zone.name().to_owned());
            model.failure_reason = Set(None);
            let (updated, targets) = posts::save(&txn, &current, model, now).await?;
            stored::set_queued(&txn, &actor.tenant_id, id, &placement.connections).await?;
            let moved = self
                .apply_moves(&txn, actor, &placement.moves, placement.zone, now)
                .await?;
            txn.commit().await?;
            self.changed(&updated, &targets).await;
            let mut out = Vec::with_capacity(moved.len());
            for (post, targets) in moved {
                self.changed(&post, &targets).await;
                out.push(post);
            }
            return Ok((updated, out));
        }
    }

    /// Moves the queued posts of account `connection_id` (the tenant's) up into the free
    /// slots before them, in order; the posts that moved. Posts given a custom time stay.
    pub async fn compact_queue(
        &self,
        actor: &Actor,
        connection_id: Uuid,
    ) -> Result<Vec<post::Model>, AppError> {
        let txn = self.db.begin().await?;
        let account = connection::Entity::find_by_id(connection_id)
            .filter(connection::Column::OwnerId.eq(&actor.tenant_id))
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        let Some(schedule) = stored::get(&txn, &actor.tenant_id, account.id).await? else {
            return Ok(Vec::new());
        };
        let zone = parse_zone(&schedule.time_zone, "timeZone")?;
        let queue = Queue {
            connection: account,
            schedule: WeeklySchedule::new(zone, schedule.slots),
        };
        stored::lock_queues(&txn, &[connection_id]).await?;
        let now = Utc::now();
        let horizon = now + HORIZON;
        let occupants = self
            .occupants(&txn, actor, &queue, now, horizon, None)
            .await?;
        let mut taken: HashSet<DateTime<Utc>> = occupants.iter().map(|o| o.at).collect();
        let mut moves: Vec<(Uuid, SlotInstant)> = Vec::new();
        for occupant in occupants.iter().filter(|o| o.queued) {
            taken.remove(&occupant.at);
            let free = queue
                .schedule
                .slots_between(now, occupant.at)
                .find(|s| !taken.contains(&s.at));
            match free {
                Some(slot) => {
                    taken.insert(slot.at);
                    moves.push((occupant.post_id, slot));
                }
                None => {
                    taken.insert(occupant.at);
                }
            }
        }
        let moved = self.apply_moves(&txn, actor, &moves, zone, now).await?;
        txn.commit().await?;
        let mut out = Vec::with_capacity(moved.len());
        for (post, targets) in moved {
            self.changed(&post, &targets).await;
            out.push(post);
        }
        Ok(out)
    }
}
