//! Bearer-token authentication: verifying JWTs into an [`Actor`], and minting HS256 tokens
//! for development.
//!
//! Only the configured algorithm is accepted (HS256 for a secret, RS256 or EdDSA for a
//! public key), which rules out `alg: none` and algorithm confusion. `exp` is required,
//! `nbf` is honoured, `iss`/`aud` are checked when configured.

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, JwtConfig, JwtKey};
use crate::domain::actor::{Actor, Role, TenantId};
use crate::error::AppError;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;

/// The claims Herald reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The acting user.
    pub sub: String,
    /// The tenant; defaults to `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Granted roles (`approver`, `admin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Verifies bearer tokens with the configured key and rules.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    operators: Vec<String>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Builds a verifier; a key that does not parse is a configuration error.
    pub fn new(config: &JwtConfig) -> Result<Self, ConfigError> {
        let (key, algorithm) = match &config.key {
            JwtKey::Secret(secret) => (DecodingKey::from_secret(secret), Algorithm::HS256),
            JwtKey::PublicKeyPem(pem) => {
                if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                    (key, Algorithm::RS256)
                } else if let Ok(key) = DecodingKey::from_ed_pem(pem.as_bytes()) {
                    (key, Algorithm::EdDSA)
                } else {
                    return Err(ConfigError::new(
                        "HERALD_JWT_PUBLIC_KEY (--jwt-public-key)",
                        "not an RSA or Ed25519 public key in PEM form",
                    ));
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            key,
            validation,
            operators: config.operators.clone(),
        })
    }

    /// Verifies the value of an `Authorization` header (`Bearer <token>`).
    pub fn verify_header(&self, header: Option<&str>) -> Result<Actor, AppError> {
        self.verify_header_until(header).map(|(actor, _)| actor)
    }

    /// Like [`Self::verify_header`], with the last second (Unix seconds) the token is
    /// accepted: its `exp` plus the clock leeway. A WebSocket is closed then.
    pub fn verify_header_until(&self, header: Option<&str>) -> Result<(Actor, i64), AppError> {
        let header = header.ok_or_else(|| unauthenticated("missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`"))?;
        self.verify_until(token.trim())
    }

    /// Verifies a token and returns who it names.
    pub fn verify(&self, token: &str) -> Result<Actor, AppError> {
        self.verify_until(token).map(|(actor, _)| actor)
    }

    /// Verifies a token and returns who it names and the last second (Unix seconds) it is
    /// accepted.
    pub fn verify_until(&self, token: &str) -> Result<(Actor, i64), AppError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => unauthenticated("token expired"),
                ErrorKind::ImmatureSignature => unauthenticated("token not valid yet"),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                    unauthenticated("token not issued for this server")
                }
                _ => unauthenticated("invalid token"),
            },
        )?;
        let claims = data.claims;
        if claims.sub.trim().is_empty() {
            return Err(unauthenticated("token has an empty subject"));
        }
        let tenant_id = match claims.org.filter(|org| !org.trim().is_empty()) {
            Some(org) => TenantId::org(&org),
            None => TenantId::user(&claims.sub),
        };
        let operator = self.operators.contains(&claims.sub);
        let until = claims
            .exp
            .saturating_add(i64::try_from(LEEWAY_SECONDS).unwrap_or(i64::MAX));
        let actor = Actor {
            user_id: claims.sub,
            tenant_id: tenant_id.into_string(),
            operator,
            roles: claims
                .roles
                .iter()
                .filter_map(|r| Role::from_claim(r))
                .collect(),
        };
        Ok((actor, until))
    }
}

fn unauthenticated(message: &str) -> AppError {
    AppError::Unauthenticated(message.to_owned())
}

/// A token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Minting needs the HS256 secret, not a public key.
    #[error("minting needs HERALD_JWT_SECRET; a public key can only verify")]
    NeedsSecret,
    /// Signing failed.
    #[error("cannot sign token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Mints an HS256 token for `sub` valid for `ttl_hours`.
pub fn mint(
    config: &JwtConfig,
    sub: &str,
    org: Option<&str>,
    roles: &[String],
    ttl_hours: i64,
) -> Result<String, MintError> {
    let JwtKey::Secret(secret) = &config.key else {
        return Err(MintError::NeedsSecret);
    };
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        org: org.map(str::to_owned),
        roles: roles.to_vec(),
        exp: now + ttl_hours * 3600,
        nbf: None,
        iat: Some(now),
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}
