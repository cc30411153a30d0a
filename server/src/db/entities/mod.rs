//! sea-orm entities for the tables Herald reads and writes. Statuses are stored as text and
//! converted to the domain enums at the edges of [`crate::posts`].

pub mod connection;
pub mod metric;
pub mod post;
pub mod target;
pub mod token;
