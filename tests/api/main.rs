//! End-to-end API tests over HTTP, each run on SQLite and on PostgreSQL. One test binary (one
//! link step) for the whole suite.

mod support;

mod bad_input;
mod noninterference;
mod visibility;
