//! Encryption at rest of connected accounts' tokens: AES-256-GCM with a random 96-bit
//! nonce per value, the row it belongs to as associated data (a ciphertext copied to
//! another row does not decrypt), and the key id stored beside each ciphertext so keys can
//! be rotated later.

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

/// Seals and opens token values with the configured key.
#[derive(Clone)]
pub struct TokenCipher {
    key_id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenCipher {
    /// A cipher for the 32-byte `key` known as `key_id`.
    pub fn new(key_id: impl Into<String>, key: &[u8; 32]) -> Self {
        Self {
            key_id: key_id.into(),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// The id stored beside every value this cipher seals.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `plaintext` bound to `context` (e.g. the row id): nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and nonce cannot fail for inputs this small.
        let sealed = self
            .cipher
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

    /// Decrypts a value sealed by [`seal`](Self::seal) with the key `key_id`.
    pub fn open(
        &self,
        key_id: &str,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, SecretError> {
        if key_id != self.key_id {
            return Err(SecretError::UnknownKey(key_id.to_owned()));
        }
        if sealed.len() <= NONCE_LEN {
            return Err(SecretError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
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
}
