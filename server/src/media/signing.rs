//! Signed, expiring media URLs: `GET /media/{id}/{signature}?expires={unix seconds}`,
//! where the signature is HMAC-SHA256 over the id and the expiry. Whoever holds the URL
//! may fetch the file until it expires (platforms fetch without credentials); nobody can
//! make one for another id or a later expiry without the key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Why a signed URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature does not match the id and expiry.
    #[error("invalid signature")]
    Invalid,
    /// The URL's expiry has passed.
    #[error("the link has expired")]
    Expired,
}

/// Signs and checks media URLs with one key.
#[derive(Clone)]
pub struct UrlSigner {
    /// The HMAC keyed once; each signature starts from a copy.
    keyed: HmacSha256,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner")
    }
}

impl UrlSigner {
    /// A signer with `key`.
    pub fn new(key: [u8; 32]) -> Self {
        // HMAC pads a key shorter than the hash's block to the block with zeros.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&key);
        Self {
            keyed: <HmacSha256 as KeyInit>::new(&block.into()),
        }
    }

    fn mac(&self, id: Uuid, expires: i64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(format!("herald-media:{id}:{expires}").as_bytes());
        mac
    }

    /// The signature of `id` valid until `expires` (Unix seconds), base64url.
    pub fn sign(&self, id: Uuid, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(id, expires).finalize().into_bytes())
    }

    /// Checks `signature` for `id` and `expires` at `now` (in constant time).
    pub fn verify(
        &self,
        id: Uuid,
        signature: &str,
        expires: i64,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| SignatureError::Invalid)?;
        self.mac(id, expires)
            .verify_slice(&bytes)
            .map_err(|_| SignatureError::Invalid)?;
        if expires <= now.timestamp() {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }

    /// The path and query of `id`'s URL valid until `expires`.
    pub fn path(&self, id: Uuid, expires: i64) -> String {
        format!("/media/{id}/{}?expires={expires}", self.sign(id, expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_id_and_expiry_only() {
        let signer = UrlSigner::new([7; 32]);
        let id = Uuid::new_v4();
        let now = Utc::now();
        let expires = now.timestamp() + 60;
        let signature = signer.sign(id, expires);
        assert_eq!(signer.verify(id, &signature, expires, now), Ok(()));
        assert_eq!(
            signer.verify(Uuid::new_v4(), &signature, expires, now),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            signer.verify(id, &signature, expires + 1, now),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            UrlSigner::new([8; 32]).verify(id, &signature, expires, now),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            signer.verify(id, "not base64!", expires, now),
            Err(SignatureError::Invalid)
        );
        let past = now.timestamp() - 1;
        assert_eq!(
            signer.verify(id, &signer.sign(id, past), past, now),
            Err(SignatureError::Expired)
        );
    }
}
