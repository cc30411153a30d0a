//! Opaque Relay cursors: base64url of the sort key, its value and the post id. A cursor
//! made under one ordering is refused under another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;
use crate::posts::{Keyset, SortKey};

#[derive(Serialize, Deserialize)]
struct Raw {
    /// Sort key: "c" created, "s" scheduled.
    k: String,
    /// Sort value.
    v: Option<DateTime<Utc>>,
    /// Post id.
    i: Uuid,
}

fn key_tag(key: SortKey) -> &'static str {
    match key {
        SortKey::CreatedAt => "c",
        SortKey::ScheduledAt => "s",
    }
}

/// Encodes a position under `key`.
pub(crate) fn encode(key: SortKey, keyset: Keyset) -> String {
    let raw = Raw {
        k: key_tag(key).to_owned(),
        v: keyset.value,
        i: keyset.id,
    };
    // Serialising this plain struct cannot fail.
    let json = serde_json::to_vec(&raw).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor given as `after`, which must have been made under `key`.
pub(crate) fn decode(key: SortKey, cursor: &str) -> Result<Keyset, AppError> {
    let invalid = || AppError::bad_input("after", "invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw: Raw = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if raw.k != key_tag(key) {
        return Err(AppError::bad_input(
            "after",
            "the cursor was made for another ordering",
        ));
    }
    Ok(Keyset {
        value: raw.v,
        id: raw.i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ordering_check() {
        let keyset = Keyset {
            value: Some(Utc::now()),
            id: Uuid::now_v7(),
        };
        let cursor = encode(SortKey::ScheduledAt, keyset);
        assert_eq!(
            decode(SortKey::ScheduledAt, &cursor).expect("valid"),
            keyset
        );
        assert!(decode(SortKey::CreatedAt, &cursor).is_err());
        assert!(decode(SortKey::CreatedAt, "not-a-cursor!").is_err());
    }
}
