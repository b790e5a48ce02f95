//! Cohort's pure domain rules: typed ids, roles and access levels, validated value types and the
//! policies that decide who may do what. No I/O here — the store and the API call into this
//! crate, so a rule is written (and unit-tested) exactly once.

pub mod access;
pub mod calendar;
pub mod consent;
pub mod contact;
pub mod error;
pub mod external;
pub mod group;
pub mod ids;
pub mod inherit;
pub mod money;
pub mod pricing;
pub mod routing;
pub mod sequence;
pub mod sla;
pub mod status;
pub mod text;
pub mod usage;

pub use access::{AccessLevel, Role, Roles};
pub use error::{DomainError, DomainResult};
