//! Garbage collection of the library, run by the worker processes: files no post names
//! once they are older than `HERALD_MEDIA_GC_AFTER_HOURS`, and streamed uploads abandoned
//! past their window, are deleted with their bytes. Rows go first (in batches, skipping
//! rows another collector holds), then their files: a file is never served without its row.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{MediaLibrary, rows, store};

/// Rows deleted per statement.
const BATCH: u64 = 200;

/// Deletes what the library no longer needs; how many files were deleted.
pub async fn collect(library: &MediaLibrary) -> Result<usize, sea_orm::DbErr> {
    let now = Utc::now();
    let ready_before = library
        .config
        .gc_after
        .and_then(|age| chrono::Duration::from_std(age).ok())
        .map(|age| now - age);
    let mut deleted = 0;
    loop {
        let rows = rows::collect(library.worker_db(), ready_before, now, BATCH).await?;
        for row in &rows {
            store::remove(library.store.as_ref(), &row.storage_key).await;
        }
        deleted += rows.len();
        if (rows.len() as u64) < BATCH {
            return Ok(deleted);
        }
    }
}

/// Runs [`collect`] every `gc_interval` until `stop`.
pub fn spawn(library: MediaLibrary, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = library.config.gc_interval;
        loop {
            match collect(&library).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "media garbage collected"),
                Err(err) => tracing::warn!(%err, "media garbage collection failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    })
}
