//! SLA contracts: business calendars, contracts, default SLAs and tickets.

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
