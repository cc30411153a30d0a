//! The one error type that crosses from Herald's services to its API.
//!
//! Each variant says what a client may be told; internal causes are wrapped so they reach
//! the log but never a response.

use std::fmt;

/// What went wrong, phrased for the caller. `Internal` keeps its cause for the log only.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid credentials were presented.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but lacks a role the operation needs.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist or belongs to another tenant (indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// An input value is invalid; `field` names it as the client sent it.
    #[error("{message}")]
    BadUserInput {
        /// The input field at fault, e.g. `scheduledAt`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The operation conflicts with the object's current state or version.
    #[error("{0}")]
    Conflict(String),
    /// The operator has not configured what the operation needs; `key` names the setting.
    #[error("{message}")]
    NotConfigured {
        /// The environment variable to set, e.g. `HERALD_OAUTH_X_CLIENT_ID`.
        key: String,
        /// What is missing.
        message: String,
    },
    /// A failure of Herald itself; the client sees a generic message.
    #[error("internal server error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// A `BAD_USER_INPUT` error about `field`.
    pub fn bad_input(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::BadUserInput {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// The stable machine-readable code sent in GraphQL `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::NotConfigured { .. } => "OAUTH_NOT_CONFIGURED",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(Box::new(err))
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}
