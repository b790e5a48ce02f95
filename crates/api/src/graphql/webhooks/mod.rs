//! Webhook endpoints and their delivery log (admin).

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
