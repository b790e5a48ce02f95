//! Data-usage monitoring (DESIGN §1 "Protecting the data"): what users received, the policy's
//! thresholds and export budget, and the admins' reports.

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
