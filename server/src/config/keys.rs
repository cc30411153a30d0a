//! The keys that seal connected accounts' tokens at rest (`HERALD_TOKEN_KEYS`, or the
//! single `HERALD_TOKEN_KEY`), and the `herald keys` subcommands that inspect and rotate
//! them.

use base64::Engine;
use clap::{Args, Subcommand};

use super::{ConfigError, DatabaseArgs};
use crate::secrets::TokenCipher;

const KEY: &str = "HERALD_TOKEN_KEY (--token-key)";
const KEY_ID: &str = "HERALD_TOKEN_KEY_ID (--token-key-id)";
const KEYS: &str = "HERALD_TOKEN_KEYS (--token-keys)";

/// The key ring that seals connected accounts' tokens: several keys by id
/// (`HERALD_TOKEN_KEYS`), or one key (`HERALD_TOKEN_KEY`, known as `HERALD_TOKEN_KEY_ID`).
#[derive(Debug, Args)]
pub struct TokenKeyArgs {
    /// AES-256 key for account tokens, base64 of 32 random bytes
    /// (e.g. `head -c32 /dev/urandom | base64`); a ring of one key.
    #[arg(long, env = "HERALD_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<String>,
    /// Id of HERALD_TOKEN_KEY, stored with every token it seals.
    #[arg(long, env = "HERALD_TOKEN_KEY_ID", default_value = "k1")]
    pub token_key_id: String,
    /// Several keys as `id:base64,id:base64`: the first seals, every one opens what it
    /// sealed (for rotation). Replaces HERALD_TOKEN_KEY / HERALD_TOKEN_KEY_ID.
    #[arg(long, env = "HERALD_TOKEN_KEYS", hide_env_values = true)]
    pub token_keys: Option<String>,
}

/// A 32-byte key from its base64 text, or what is wrong with it.
fn decode_key(encoded: &str) -> Result<[u8; 32], &'static str> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "not valid base64")?;
    bytes
        .try_into()
        .map_err(|_| "must decode to exactly 32 bytes")
}

/// Whether `id` may name a key: 1 to 64 characters of letters, digits, `-`, `_`, `.`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl TokenKeyArgs {
    /// The validated key ring.
    pub fn cipher(&self) -> Result<TokenCipher, ConfigError> {
        match (&self.token_keys, &self.token_key) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                KEYS,
                "set either HERALD_TOKEN_KEYS or HERALD_TOKEN_KEY, not both (put the single key \
                 in the ring as `<id>:<base64>`)",
            )),
            (Some(ring), None) => ring_cipher(ring),
            (None, Some(key)) => {
                let key = decode_key(key).map_err(|message| ConfigError::new(KEY, message))?;
                if !valid_id(&self.token_key_id) {
                    return Err(ConfigError::new(
                        KEY_ID,
                        "must be 1 to 64 letters, digits, `-`, `_` or `.`",
                    ));
                }
                Ok(TokenCipher::new(self.token_key_id.clone(), &key))
            }
            (None, None) => Err(ConfigError::new(KEY, "not set (nor HERALD_TOKEN_KEYS)")),
        }
    }
}

impl TokenKeyArgs {
    /// The bytes of the key that seals (the single key, or the ring's first), from which
    /// other keys are derived (e.g. the media URL key).
    pub fn current_key(&self) -> Result<[u8; 32], ConfigError> {
        match (&self.token_keys, &self.token_key) {
            (Some(ring), None) => {
                let first = ring.split(',').next().unwrap_or_default();
                let (_, encoded) = first
                    .split_once(':')
                    .ok_or_else(|| ConfigError::new(KEYS, "entry 1 is not `<id>:<base64 key>`"))?;
                decode_key(encoded).map_err(|message| ConfigError::new(KEYS, message))
            }
            (None, Some(key)) => decode_key(key).map_err(|message| ConfigError::new(KEY, message)),
            // Both or neither: the ring's own error says which.
            _ => Err(self
                .cipher()
                .err()
                .unwrap_or_else(|| ConfigError::new(KEY, "not set (nor HERALD_TOKEN_KEYS)"))),
        }
    }
}

/// The ring `id:base64,id:base64` (the first key seals).
fn ring_cipher(ring: &str) -> Result<TokenCipher, ConfigError> {
    let mut cipher: Option<TokenCipher> = None;
    let mut seen: Vec<&str> = Vec::new();
    for (position, entry) in ring.split(',').map(str::trim).enumerate() {
        let number = position + 1;
        let (id, encoded) = entry.split_once(':').ok_or_else(|| {
            ConfigError::new(KEYS, format!("entry {number} is not `<id>:<base64 key>`"))
        })?;
        let id = id.trim();
        if !valid_id(id) {
            return Err(ConfigError::new(
                KEYS,
                format!("entry {number}: the id must be 1 to 64 letters, digits, `-`, `_` or `.`"),
            ));
        }
        if seen.contains(&id) {
            return Err(ConfigError::new(
                KEYS,
                format!("the id `{id}` appears twice"),
            ));
        }
        seen.push(id);
        let key = decode_key(encoded)
            .map_err(|message| ConfigError::new(KEYS, format!("key `{id}`: {message}")))?;
        cipher = Some(match cipher {
            None => TokenCipher::new(id, &key),
            Some(ring) => ring.with_old_key(id, &key),
        });
    }
    cipher.ok_or_else(|| ConfigError::new(KEYS, "names no key"))
}

/// `herald keys …`: the token keys and the rows sealed with each.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Count the sealed token rows per key id and name the ids needed but not configured
    /// (exits 1 when one is missing).
    Status(KeysArgs),
    /// Re-seal, with the current key (the first of HERALD_TOKEN_KEYS), every token row
    /// sealed with another key, in batches that skip rows locked by running servers. Safe
    /// while servers run; run it again to resume.
    Rotate(RotateArgs),
}

/// The database and the key ring.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Database settings.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Token encryption.
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
}

/// Settings of `herald keys rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The database and the key ring.
    #[command(flatten)]
    pub keys: KeysArgs,
    /// Rows re-sealed per transaction.
    #[arg(long, default_value_t = 500)]
    pub batch_size: u32,
}

impl RotateArgs {
    /// The validated batch size.
    pub fn batch_size(&self) -> Result<u32, ConfigError> {
        match self.batch_size {
            1..=10_000 => Ok(self.batch_size),
            _ => Err(ConfigError::new(
                "--batch-size",
                "must be between 1 and 10000",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn args(key: Option<&str>, keys: Option<&str>) -> TokenKeyArgs {
        TokenKeyArgs {
            token_key: key.map(str::to_owned),
            token_key_id: "k1".into(),
            token_keys: keys.map(str::to_owned),
        }
    }

    #[test]
    fn the_single_key_is_a_ring_of_one() {
        let ring = args(Some(A), None).cipher().expect("valid");
        assert_eq!(ring.key_id(), "k1");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k1"]);
    }

    #[test]
    fn the_first_key_of_the_ring_seals_and_all_open() {
        let ring = args(None, Some(&format!("k2:{B}, k1:{A}")))
            .cipher()
            .expect("valid");
        assert_eq!(ring.key_id(), "k2");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k1", "k2"]);
        let old = args(Some(A), None).cipher().expect("valid");
        let sealed = old.seal(b"token", b"row");
        assert_eq!(ring.open("k1", &sealed, b"row").expect("opens"), b"token");
    }

    #[test]
    fn bad_rings_name_the_setting() {
        for (key, keys) in [
            (Some(A), Some(format!("k1:{A}"))),
            (None, Some("k1".to_owned())),
            (None, Some(format!("k1:{A},k1:{B}"))),
            (None, Some(format!("bad id:{A}"))),
            (None, Some("k1:AAAA".to_owned())),
            (None, Some(String::new())),
        ] {
            let err = args(key, keys.as_deref()).cipher().expect_err("refused");
            assert_eq!(err.key, KEYS, "{keys:?}: {err}");
        }
        let err = args(None, None).cipher().expect_err("refused");
        assert_eq!(err.key, KEY);
    }
}
