//! Record keys and timestamps for new posts.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The base32-sortable alphabet of AT Protocol TIDs.
const BASE32_SORTABLE: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// The record key of the post published with `idempotency_key`: a valid TID (13
/// base32-sortable characters of a 64-bit number whose top bit is 0) made from the first
/// 8 bytes of the key's SHA-256, so every retry writes to the same key.
pub fn rkey_for(idempotency_key: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    let number = u64::from_be_bytes(first) & !(1 << 63);
    (0..13)
        .rev()
        .map(|index| char::from(BASE32_SORTABLE[((number >> (5 * index)) & 31) as usize]))
        .collect()
}

/// Now as an RFC 3339 UTC timestamp with milliseconds (`2026-11-29T02:30:00.000Z`).
pub fn now_rfc3339() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(since_epoch.as_secs(), since_epoch.subsec_millis())
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// `seconds` after the Unix epoch as an RFC 3339 UTC timestamp with milliseconds.
fn rfc3339(seconds: u64, millis: u32) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm, for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rkey_is_a_stable_valid_tid() {
        let key = rkey_for("herald-3f2a-target-1");
        assert_eq!(key, rkey_for("herald-3f2a-target-1"));
        assert_ne!(key, rkey_for("herald-3f2a-target-2"));
        assert_eq!(key.len(), 13);
        assert!("234567abcdefghij".contains(&key[..1]), "{key}");
        assert!(key.bytes().all(|b| BASE32_SORTABLE.contains(&b)), "{key}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339(1_795_919_400, 123), "2026-11-29T02:30:00.123Z");
    }
}
