//! Follow-up sequences: definitions (admin), enrolments and the steps that ran (visible-only).

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
