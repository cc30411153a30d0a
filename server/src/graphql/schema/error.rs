//! How an [`AppError`] appears to clients: its message and `extensions.code` (and
//! `extensions.field` for bad input). Internal causes go to the log, never to the client.

use async_graphql::{Error, ErrorExtensions};

use crate::error::AppError;

impl ErrorExtensions for AppError {
    fn extend(&self) -> Error {
        if let AppError::Internal(cause) = self {
            tracing::error!(error = %cause, "internal error while resolving a GraphQL request");
        }
        Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code());
            match self {
                AppError::BadUserInput { field, .. } => ext.set("field", field.as_str()),
                AppError::NotConfigured { key, .. } => ext.set("key", key.as_str()),
                _ => {}
            }
        })
    }
}
