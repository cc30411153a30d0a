//! Record keys for new posts.

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
}
