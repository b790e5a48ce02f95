//! Who may see what: the viewer, address books and grants, users and user groups.

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
