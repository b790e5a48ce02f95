//! Contact groups: the hierarchy (a closure table) and memberships with provenance and history.

pub(crate) mod hierarchy;
pub(crate) mod membership;
