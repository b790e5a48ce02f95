//! The outbox as admins read it.

mod object;
mod query;
mod subscription;

pub use object::*;
pub use query::*;
pub use subscription::*;
