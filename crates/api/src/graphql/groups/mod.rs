//! Contact groups: hierarchy, members, history, selection guard.

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
