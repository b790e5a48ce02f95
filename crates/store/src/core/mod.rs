//! The small machinery everything else is built on: the SQL builder and the dialect it renders,
//! the visibility rule, keyset pagination and the unit of work.

pub(crate) mod decode;
pub(crate) mod dialect;
pub(crate) mod page;
pub(crate) mod sql;
pub(crate) mod uow;
pub(crate) mod visibility;
