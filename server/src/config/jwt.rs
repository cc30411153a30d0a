//! Token settings: the verification key (HS256 secret or RS256/EdDSA public key), issuer
//! and audience, and what `herald token` mints.

use std::path::PathBuf;

use clap::Args;

use super::ConfigError;

/// How bearer tokens are verified.
#[derive(Debug, Args)]
pub struct JwtArgs {
    /// HS256 shared secret (at least 32 bytes).
    #[arg(long, env = "HERALD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// RS256 or EdDSA public key: PEM text, or a path to a PEM file.
    #[arg(long, env = "HERALD_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<String>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "HERALD_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "HERALD_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Subjects (`sub` claims) of the instance operators, comma separated: the only
    /// callers of the instance-wide queue operations. No tenant role grants them.
    #[arg(long, env = "HERALD_OPERATORS", value_delimiter = ',')]
    pub operators: Vec<String>,
}

/// Settings of `herald token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user (`sub` claim).
    #[arg(long)]
    pub sub: String,
    /// The tenant (`org` claim); the user itself when absent.
    #[arg(long)]
    pub org: Option<String>,
    /// Roles, comma separated (approver, admin).
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 24)]
    pub ttl_hours: i64,
    /// Token settings (only the secret, issuer and audience are used).
    #[command(flatten)]
    pub jwt: JwtArgs,
}

/// The key material tokens are verified with.
#[derive(Debug, Clone)]
pub enum JwtKey {
    /// HS256 shared secret.
    Secret(Vec<u8>),
    /// PEM-encoded RSA or Ed25519 public key.
    PublicKeyPem(String),
}

/// Validated token settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// Verification key.
    pub key: JwtKey,
    /// Required issuer.
    pub issuer: Option<String>,
    /// Required audience.
    pub audience: Option<String>,
    /// Subjects of the instance operators.
    pub operators: Vec<String>,
}

/// Shortest HS256 secret accepted: a shorter one can be brute-forced.
pub const MIN_SECRET_BYTES: usize = 32;

impl JwtArgs {
    /// Validates the token settings: exactly one of secret and public key.
    pub fn config(&self) -> Result<JwtConfig, ConfigError> {
        const SECRET: &str = "HERALD_JWT_SECRET (--jwt-secret)";
        const PUBLIC: &str = "HERALD_JWT_PUBLIC_KEY (--jwt-public-key)";
        let key = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    SECRET,
                    "set either HERALD_JWT_SECRET or HERALD_JWT_PUBLIC_KEY, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    SECRET,
                    "not set (or set HERALD_JWT_PUBLIC_KEY for RS256/EdDSA)",
                ));
            }
            (Some(secret), None) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(ConfigError::new(
                        SECRET,
                        format!("must be at least {MIN_SECRET_BYTES} bytes"),
                    ));
                }
                JwtKey::Secret(secret.as_bytes().to_vec())
            }
            (None, Some(value)) => {
                let pem = if value.trim_start().starts_with("-----BEGIN") {
                    value.clone()
                } else {
                    std::fs::read_to_string(PathBuf::from(value)).map_err(|e| {
                        ConfigError::new(PUBLIC, format!("cannot read PEM file `{value}`: {e}"))
                    })?
                };
                JwtKey::PublicKeyPem(pem)
            }
        };
        Ok(JwtConfig {
            key,
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            operators: self
                .operators
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        })
    }
}
