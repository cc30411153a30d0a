//! Secrets out of messages: a plugin's errors may quote a request URL (the host's
//! transport errors do) or a platform's answer, and either may carry a token. [`Secrets`]
//! replaces every given secret, raw or percent-/form-encoded, with `[redacted]`; the
//! plugin host scrubs with the same type (crate `herald-secrets`), so the rule is written
//! once.
//!
//! ```ignore
//! let secrets = Secrets::new([&credentials.access_token]);
//! let sent = request.send().map_err(|error| PublishError::from(error).scrubbed(&secrets))?;
//! ```

pub use herald_secrets::{REDACTED, Secrets};

use crate::{PublishError, RateLimit, Violation};

impl PublishError {
    /// The error with `secrets` scrubbed from its message(s).
    pub fn scrubbed(self, secrets: &Secrets) -> Self {
        match self {
            Self::Retryable(m) => Self::Retryable(secrets.scrub(&m)),
            Self::Permanent(m) => Self::Permanent(secrets.scrub(&m)),
            Self::AuthExpired(m) => Self::AuthExpired(secrets.scrub(&m)),
            Self::RateLimited(limit) => Self::RateLimited(RateLimit {
                retry_after_seconds: limit.retry_after_seconds,
                message: secrets.scrub(&limit.message),
            }),
            Self::Validation(found) => Self::Validation(
                found
                    .into_iter()
                    .map(|violation| Violation {
                        message: secrets.scrub(&violation.message),
                        ..violation
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_loses_the_secret_raw_or_percent_encoded() {
        let secrets = Secrets::new(["s3cr/t"]);
        let url = "https://x.test/hooks/1/s3cr%2Ft";
        let errors = [
            PublishError::Retryable(format!("error sending request for url ({url})")),
            PublishError::Permanent("token s3cr/t refused".into()),
            PublishError::AuthExpired(format!("{url} answered 401")),
            PublishError::RateLimited(RateLimit {
                retry_after_seconds: 5,
                message: url.into(),
            }),
            PublishError::Validation(vec![Violation {
                field: "text".into(),
                code: "s3cr/t".into(),
                message: "s3cr/t".into(),
            }]),
        ];
        for error in errors {
            let scrubbed = format!("{:?}", error.clone().scrubbed(&secrets));
            assert!(scrubbed.contains(REDACTED), "{scrubbed}");
            assert!(
                !scrubbed.contains("s3cr%2Ft") && !scrubbed.contains("message: \"s3cr/t"),
                "{scrubbed}"
            );
        }
        let limited = PublishError::RateLimited(RateLimit {
            retry_after_seconds: 5,
            message: "s3cr/t".into(),
        });
        assert!(matches!(
            limited.scrubbed(&secrets),
            PublishError::RateLimited(l) if l.retry_after_seconds == 5 && l.message == REDACTED
        ));
    }
}
