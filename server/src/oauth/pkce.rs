//! The random values of a connect flow: the `state` (what the platform hands back) and
//! the PKCE S256 pair (RFC 7636): a verifier kept by Herald and its challenge sent to the
//! platform.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random bytes of a `state` (43 characters once encoded).
const STATE_BYTES: usize = 32;
/// Random bytes of a verifier (86 characters once encoded: RFC 7636 asks 43 to 128).
const VERIFIER_BYTES: usize = 64;

fn random(len: usize) -> String {
    let mut bytes = vec![0_u8; len];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new random `state`.
pub fn state() -> String {
    random(STATE_BYTES)
}

/// What a `state` is stored as: its SHA-256 (the table never holds a usable state).
pub fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

/// A new random PKCE verifier (unreserved characters only).
pub fn verifier() -> String {
    random(VERIFIER_BYTES)
}

/// The S256 challenge of `verifier`: base64url(SHA-256(verifier)), unpadded.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_rfc_7636_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn values_are_random_and_of_the_allowed_length() {
        let (a, b) = (verifier(), verifier());
        assert_ne!(a, b);
        assert!((43..=128).contains(&a.len()), "{}", a.len());
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(state(), state());
        assert_eq!(state().len(), 43);
        assert_eq!(state_hash("s"), state_hash("s"));
    }
}
