//! Responsibility and routing: queues, process areas, group responsibilities, routing
//! decisions and messages.

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
