//! The audit log as admins read it.

mod object;
mod query;

pub use object::*;
pub use query::*;
