//! Contacts (persons and companies, their channels and business status history) and the tenant's
//! business-status classification.

pub(crate) mod contact;
pub(crate) mod erasure;
pub(crate) mod export;
pub(crate) mod status;
