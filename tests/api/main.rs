//! End-to-end API tests over HTTP, each run on SQLite and on PostgreSQL. One test binary (one
//! link step) for the whole suite.

mod support;

mod audit;
mod auth;
mod bad_input;
mod browser;
mod browser_apollo;
mod cache_ids;
mod concurrency;
mod connections;
mod consent;
mod data_usage;
mod demo;
mod erasure;
mod events;
mod external_ids;
mod fused;
mod graphiql;
mod groups;
mod hostile;
mod http_spec;
mod id_aliases;
mod noninterference;
mod persisted;
mod pricing;
mod rest;
mod routing;
mod schema_docs;
mod sequences;
mod sla;
mod statement_budget;
mod subject_access;
mod subscriptions;
mod sync;
mod traces;
mod visibility;
mod webdriver;
mod webhooks;
