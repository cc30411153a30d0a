//! Encryption at rest of connected accounts' tokens: AES-256-GCM with a random 96-bit
//! nonce per value, the row it belongs to as associated data (a ciphertext copied to
//! another row does not decrypt), and the key id stored beside each ciphertext.
//!
//! A [`TokenCipher`] is a key ring: one current key seals, every key of the ring opens what
//! it sealed, so a new key can be brought in while rows sealed with the old one are
//! re-sealed (`herald keys rotate`, see `crate::keys`).

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

/// Length of the nonce prefixed to every ciphertext.
const NONCE_LEN: usize = 12;

/// Why a stored secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The value was sealed with a key this server does not have.
    #[error("token sealed with unknown key `{0}`")]
    UnknownKey(String),
    /// The value is corrupt, or belongs to another row.
    #[error("token ciphertext does not decrypt")]
    Corrupt,
}

/// Seals with the current key and opens with any key of the ring.
#[derive(Clone)]
pub struct TokenCipher {
    current_id: String,
    current: Aes256Gcm,
    /// Keys that only open, by id (never the current one).
    old: BTreeMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher")
            .field("current", &self.current_id)
            .field("old", &self.old.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenCipher {
    /// A ring of one key: the 32-byte `key` known as `key_id`, which seals and opens.
    pub fn new(key_id: impl Into<String>, key: &[u8; 32]) -> Self {
        Self {
            current_id: key_id.into(),
            current: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
            old: BTreeMap::new(),
        }
    }

    /// The ring with `key` known as `key_id` added for opening only (an older key whose
    /// rows are not yet re-sealed). The current key is never replaced.
    pub fn with_old_key(mut self, key_id: impl Into<String>, key: &[u8; 32]) -> Self {
        let key_id = key_id.into();
        if key_id != self.current_id {
            self.old
                .insert(key_id, Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)));
        }
        self
    }

    /// The id of the key that seals, stored beside every value it seals.
    pub fn key_id(&self) -> &str {
        &self.current_id
    }

    /// Whether the ring holds the key `key_id`.
    pub fn has_key(&self, key_id: &str) -> bool {
        self.key(key_id).is_some()
    }

    /// The ids of every key of the ring, sorted.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        let mut ids: Vec<&str> = self.old.keys().map(String::as_str).collect();
        ids.push(&self.current_id);
        ids.sort_unstable();
        ids.into_iter()
    }

    /// The key known as `key_id`, if the ring holds it.
    fn key(&self, key_id: &str) -> Option<&Aes256Gcm> {
        if key_id == self.current_id {
            Some(&self.current)
        } else {
            self.old.get(key_id)
        }
    }

    /// Encrypts `plaintext` bound to `context` (e.g. the row id): nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and nonce cannot fail for inputs this small.
        let sealed = self
            .current
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .unwrap_or_default();
        out.extend(sealed);
        out
    }

    /// Decrypts a value sealed by [`seal`](Self::seal) with the key `key_id` (any key of
    /// the ring).
    pub fn open(
        &self,
        key_id: &str,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, SecretError> {
        let cipher = self
            .key(key_id)
            .ok_or_else(|| SecretError::UnknownKey(key_id.to_owned()))?;
        if sealed.len() <= NONCE_LEN {
            return Err(SecretError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| SecretError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_context_and_key() {
        let cipher = TokenCipher::new("k1", &[7u8; 32]);
        let sealed = cipher.seal(b"secret-token", b"row-1");
        assert!(!sealed.windows(12).any(|w| w == b"secret-token"));
        assert_eq!(
            cipher.open("k1", &sealed, b"row-1").expect("opens"),
            b"secret-token"
        );
        assert!(matches!(
            cipher.open("k1", &sealed, b"row-2"),
            Err(SecretError::Corrupt)
        ));
        assert!(matches!(
            cipher.open("k2", &sealed, b"row-1"),
            Err(SecretError::UnknownKey(_))
        ));
        let other = TokenCipher::new("k1", &[8u8; 32]);
        assert!(other.open("k1", &sealed, b"row-1").is_err());
        assert_ne!(
            cipher.seal(b"x", b"r"),
            cipher.seal(b"x", b"r"),
            "fresh nonce each time"
        );
    }

    #[test]
    fn a_ring_seals_with_the_current_key_and_opens_with_any() {
        let old = TokenCipher::new("k1", &[1u8; 32]);
        let sealed_old = old.seal(b"old", b"row");
        let ring = TokenCipher::new("k2", &[2u8; 32]).with_old_key("k1", &[1u8; 32]);
        assert_eq!(ring.key_id(), "k2");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(
            ring.open("k1", &sealed_old, b"row").expect("old key opens"),
            b"old"
        );
        let sealed_new = ring.seal(b"new", b"row");
        assert!(matches!(
            old.open("k2", &sealed_new, b"row"),
            Err(SecretError::UnknownKey(id)) if id == "k2"
        ));
        assert!(
            ring.open("k1", &sealed_new, b"row").is_err(),
            "sealed with k2, not k1"
        );
        assert_eq!(ring.open("k2", &sealed_new, b"row").expect("opens"), b"new");
        let same = TokenCipher::new("k2", &[2u8; 32]).with_old_key("k2", &[9u8; 32]);
        assert_eq!(
            same.open("k2", &sealed_new, b"row").expect("current kept"),
            b"new"
        );
    }
}
