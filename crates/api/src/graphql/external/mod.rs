//! External ids (issue 19, "Integrators' sync"): the keys source systems (ERP, webshop) give our
//! contacts, groups, products and price lists; lookups by them and changes to them.

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
