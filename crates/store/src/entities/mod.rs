//! sea-orm entities. Crate-private on purpose: nothing outside the store can build a query that
//! skips the viewer's visibility filter, because nothing outside the store can name a table.
#![allow(dead_code)]

pub(crate) mod address_book;
pub(crate) mod audit;
pub(crate) mod business_calendar;
pub(crate) mod business_status;
pub(crate) mod contact;
pub(crate) mod contact_email;
pub(crate) mod contact_phone;
pub(crate) mod contact_price_list;
pub(crate) mod event;
pub(crate) mod grant;
pub(crate) mod group;
pub(crate) mod group_closure;
pub(crate) mod group_default_sla;
pub(crate) mod group_price_list;
pub(crate) mod group_responsibility;
pub(crate) mod idempotency;
pub(crate) mod membership;
pub(crate) mod membership_event;
pub(crate) mod message;
pub(crate) mod message_assignment;
pub(crate) mod order;
pub(crate) mod order_line;
pub(crate) mod price_item;
pub(crate) mod price_list;
pub(crate) mod process_area;
pub(crate) mod processing_area;
pub(crate) mod product;
pub(crate) mod sequence;
pub(crate) mod sequence_enrolment;
pub(crate) mod sequence_step_run;
pub(crate) mod sequence_version;
pub(crate) mod sla_contract;
pub(crate) mod status_change;
pub(crate) mod tenant;
pub(crate) mod tenant_settings;
pub(crate) mod ticket;
pub(crate) mod ticket_history;
pub(crate) mod user;
pub(crate) mod user_group;
pub(crate) mod user_group_member;
pub(crate) mod webhook_attempt;
pub(crate) mod webhook_delivery;
pub(crate) mod webhook_endpoint;
