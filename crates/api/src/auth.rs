//! Tokens. Verification lives with the data door in the store ([`cohort_store::Gate`]): the
//! verifier is the only code that can make an identity, so it sits where identities are defined.
//! Issuing HS256 tokens (for `cohort token`, `serve --demo` and tests) is re-exported here.

pub use cohort_store::{Claims, KeyConfigError, TokenSettings, issue_hs256};
