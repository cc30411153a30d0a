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

/// Properties of the codec over arbitrary text and every position a post can have.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn key() -> impl Strategy<Value = SortKey> {
        prop_oneof![Just(SortKey::CreatedAt), Just(SortKey::ScheduledAt)]
    }

    /// Every instant chrono can hold (Postgres holds 4713 BC to 294276 AD), to the
    /// nanosecond; `None` for an unscheduled post.
    fn keyset() -> impl Strategy<Value = Keyset> {
        let instant = (
            DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            0u32..1_000_000_000,
        )
            .prop_filter_map("in range", |(seconds, nanos)| {
                DateTime::from_timestamp(seconds, nanos)
            });
        (proptest::option::of(instant), any::<u128>()).prop_map(|(value, id)| Keyset {
            value,
            id: Uuid::from_u128(id),
        })
    }

    fn assert_invalid(err: AppError) {
        match err {
            AppError::BadUserInput { field, .. } => assert_eq!(field, "after"),
            other => panic!("expected BAD_USER_INPUT on `after`, got {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// A cursor decodes to the position it was made from, under its ordering only.
        #[test]
        fn cursors_round_trip(key in key(), keyset in keyset()) {
            let cursor = encode(key, keyset);
            prop_assert_eq!(decode(key, &cursor).expect("own cursor"), keyset);
            let other = match key {
                SortKey::CreatedAt => SortKey::ScheduledAt,
                SortKey::ScheduledAt => SortKey::CreatedAt,
            };
            assert_invalid(decode(other, &cursor).expect_err("another ordering"));
        }

        /// Arbitrary text, base64url of arbitrary bytes and of JSON near a cursor's shape:
        /// a position or `BAD_USER_INPUT` on `after`, never a panic.
        #[test]
        fn arbitrary_cursors_are_refused_clearly(
            key in key(),
            text in prop_oneof![
                any::<String>(),
                proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
                ("[a-z]{0,2}", "(null|\"[0-9+:TZ.-]{0,40}\"|[0-9]{1,20})", "\"[0-9a-f-]{0,40}\"")
                    .prop_map(|(k, v, i)| URL_SAFE_NO_PAD.encode(format!("{{\"k\":\"{k}\",\"v\":{v},\"i\":{i}}}"))),
            ],
        ) {
            if let Err(err) = decode(key, &text) {
                assert_invalid(err);
            }
        }
    }
}
