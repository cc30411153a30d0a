//! sea-orm entities for the tables Herald reads and writes. Statuses are typed (the
//! domain's enums, stored as text by `db::stored`); JSON columns are read through
//! `db::json`, by the models' methods.

pub mod connection;
pub mod metric;
pub mod post;
pub mod target;
pub mod token;
