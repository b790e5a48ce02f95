pub(crate) mod audit;
pub mod books;
pub mod contacts;
pub mod groups;
pub mod memberships;
pub mod pricing;
pub mod principals;
pub mod statuses;
