//! The span an operation runs in, whoever answers it: the stock executor (through
//! [`OperationSpan`], the schema's one extension, which hooks only `execute`) or compiled
//! reads (`serve::compiled`, which open it around their answer with [`operation`]). Both
//! open it here, so a subscriber sees every query the same way.

use std::sync::Arc;

use async_graphql::Response;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use tracing::Instrument;

/// The span's target.
pub const TARGET: &str = "herald::graphql";
/// The span's name.
pub const NAME: &str = "graphql.operation";

/// Who answers an operation (the span's `answered_by` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// async-graphql's executor, through the resolvers.
    Executor,
    /// A compiled read's one SQL statement.
    Compiled,
}

impl AnsweredBy {
    /// The field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Executor => "executor",
            Self::Compiled => "compiled",
        }
    }
}

/// The span of the operation `name` (empty when the request names none).
pub fn operation(name: Option<&str>, answered_by: AnsweredBy) -> tracing::Span {
    tracing::info_span!(
        target: TARGET,
        NAME,
        operation = name.unwrap_or_default(),
        answered_by = answered_by.as_str(),
    )
}

/// The schema extension that runs each execution in [`operation`]'s span.
pub struct OperationSpan;

impl ExtensionFactory for OperationSpan {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationSpan)
    }
}

#[async_trait::async_trait]
impl Extension for OperationSpan {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let span = operation(operation_name, AnsweredBy::Executor);
        next.run(ctx, operation_name).instrument(span).await
    }
}
