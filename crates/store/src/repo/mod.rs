pub(crate) mod audit;
pub mod books;
pub mod contacts;
pub mod principals;
pub mod statuses;
