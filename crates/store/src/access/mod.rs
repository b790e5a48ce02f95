//! Who may see what: viewers and their grant snapshots, token verification, the gate that turns a
//! token into a request's data handle, address books with their grants, users and user groups.

pub(crate) mod books;
pub(crate) mod handle;
pub(crate) mod principals;
pub(crate) mod token;
pub(crate) mod viewer;
