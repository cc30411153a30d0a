//! Decoding the rows of hot read paths (pages of posts, their targets and metrics) straight from the
//! Postgres row. sea-orm's generic decoding builds a column-name string for every value
//! and an error text for every NULL; for a page of 50 posts with their targets that was a
//! third of the request's CPU time. Here columns are found once per result set and
//! their declared types checked once, on its first row (all rows share them). Other backends use
//! sea-orm's decoding.

use sea_orm::sqlx::postgres::{PgRow, Postgres};
use sea_orm::sqlx::{self, Column, Row};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement};

use super::entities::{metric, post, target};
use super::stored::StoredName;

/// A model that can be read from a Postgres row.
pub trait FromPgRow: FromQueryResult {
    /// The columns the model reads, in the order [`FromPgRow::from_pg_row`] reads them.
    const COLUMNS: &'static [&'static str];

    /// Reads the model from `row`: `columns` yields the values of [`FromPgRow::COLUMNS`]
    /// in order.
    fn from_pg_row(columns: &mut Columns<'_>) -> Result<Self, sqlx::Error>;
}

/// The values of one row, read in the order of a model's columns.
pub struct Columns<'r> {
    row: &'r PgRow,
    positions: &'r [usize],
    next: usize,
    /// Whether to check each column's type against the Rust type: every row of a result
    /// has the same column types, so the first row is checked and the others are not.
    check_types: bool,
}

impl<'r> Columns<'r> {
    /// The next column's value.
    pub fn value<T>(&mut self) -> Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
    {
        let position = self.positions.get(self.next).copied().ok_or_else(|| {
            sqlx::Error::ColumnIndexOutOfBounds {
                index: self.next,
                len: self.positions.len(),
            }
        })?;
        self.next += 1;
        if self.check_types {
            // From the column's declared type, so a NULL in the first row is checked too.
            let column = &self.row.columns()[position];
            if !T::compatible(column.type_info()) {
                return Err(sqlx::Error::ColumnDecode {
                    index: format!("{:?}", column.name()),
                    source: format!(
                        "the column is {}, which does not decode as {}",
                        column.type_info(),
                        std::any::type_name::<T>()
                    )
                    .into(),
                });
            }
        }
        self.row.try_get_unchecked(position)
    }

    /// The next column's value, a status stored under its name.
    pub fn status<S: StoredName>(&mut self) -> Result<S, sqlx::Error> {
        let name: &str = self.value()?;
        S::read(name).map_err(|error| sqlx::Error::Decode(error.to_string().into()))
    }
}

/// Where each of `M`'s columns is in the result set (looked up once per query, not per
/// row).
fn column_positions<M: FromPgRow>(row: &PgRow) -> Result<Vec<usize>, sqlx::Error> {
    M::COLUMNS
        .iter()
        .map(|name| row.try_column(name).map(|column| column.ordinal()))
        .collect()
}

/// Runs `statement` and decodes every row as `M`.
pub async fn fetch_all<M>(db: &impl ConnectionTrait, statement: Statement) -> Result<Vec<M>, DbErr>
where
    M: FromPgRow,
{
    let rows = db.query_all(statement).await?;
    let decode_error = |err: sqlx::Error| DbErr::Type(err.to_string());
    let positions = match rows.first().and_then(|row| row.try_as_pg_row()) {
        Some(first) => column_positions::<M>(first).map_err(decode_error)?,
        None => Vec::new(),
    };
    rows.iter()
        .enumerate()
        .map(|(index, row)| match row.try_as_pg_row() {
            Some(pg) => M::from_pg_row(&mut Columns {
                row: pg,
                positions: &positions,
                next: 0,
                check_types: index == 0,
            })
            .map_err(decode_error),
            None => M::from_query_result(row, ""),
        })
        .collect()
}

impl FromPgRow for post::Model {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "content",
        "platforms",
        "status",
        "scheduled_at",
        "local_scheduled_at",
        "posted_at",
        "timezone",
        "media_urls",
        "campaign",
        "notes",
        "approval_required",
        "approval_status",
        "rejection_reason",
        "failure_reason",
        "owner_id",
        "created_by",
        "created_at",
        "updated_at",
        "archived_at",
        "version",
        "media",
    ];

    fn from_pg_row(columns: &mut Columns<'_>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: columns.value()?,
            content: columns.value()?,
            platforms: columns.value()?,
            status: columns.status()?,
            scheduled_at: columns.value()?,
            local_scheduled_at: columns.value()?,
            posted_at: columns.value()?,
            timezone: columns.value()?,
            media_urls: columns.value()?,
            campaign: columns.value()?,
            notes: columns.value()?,
            approval_required: columns.value()?,
            approval_status: columns.status()?,
            rejection_reason: columns.value()?,
            failure_reason: columns.value()?,
            owner_id: columns.value()?,
            created_by: columns.value()?,
            created_at: columns.value()?,
            updated_at: columns.value()?,
            archived_at: columns.value()?,
            version: columns.value()?,
            media: columns.value()?,
        })
    }
}

impl FromPgRow for target::Model {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "post_id",
        "platform",
        "connection_id",
        "status",
        "attempts",
        "platform_post_id",
        "platform_url",
        "last_error",
        "last_response_code",
        "published_at",
        "created_at",
        "updated_at",
        "queue_version",
        "attempt_id",
        "next_attempt_at",
        "options",
    ];

    fn from_pg_row(columns: &mut Columns<'_>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: columns.value()?,
            post_id: columns.value()?,
            platform: columns.value()?,
            connection_id: columns.value()?,
            status: columns.status()?,
            attempts: columns.value()?,
            platform_post_id: columns.value()?,
            platform_url: columns.value()?,
            last_error: columns.value()?,
            last_response_code: columns.value()?,
            published_at: columns.value()?,
            created_at: columns.value()?,
            updated_at: columns.value()?,
            queue_version: columns.value()?,
            attempt_id: columns.value()?,
            next_attempt_at: columns.value()?,
            options: columns.value()?,
        })
    }
}

impl FromPgRow for metric::Model {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "target_id",
        "fetched_at",
        "likes",
        "shares",
        "comments",
        "impressions",
        "raw",
    ];

    fn from_pg_row(columns: &mut Columns<'_>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: columns.value()?,
            target_id: columns.value()?,
            fetched_at: columns.value()?,
            likes: columns.value()?,
            shares: columns.value()?,
            comments: columns.value()?,
            impressions: columns.value()?,
            raw: columns.value()?,
        })
    }
}
