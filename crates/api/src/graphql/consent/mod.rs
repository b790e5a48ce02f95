//! Public groups and consent: consent texts, web forms, the consent log and preference links.

mod mutation;
mod object;
mod query;

pub use mutation::*;
pub use object::*;
pub use query::*;
