//! Responsibility and routing (DESIGN §1): queues (processing areas), process areas with their
//! module defaults, per-group responsibilities, and inbound messages routed by them.
//!
//! - `areas`: queues and process areas (admin configuration, readable by every member).
//! - `responsibilities`: what a group sets per process area, the inherited answer, and the
//!   routing decision for a contact ([`cohort_domain::routing::route`]).
//! - `messages`: `receiveMessage`, the reading rule (compiled into SQL like contact visibility),
//!   reassignment and the assignment history.

pub(crate) mod areas;
pub(crate) mod messages;
pub(crate) mod responsibilities;

use crate::access::viewer::Viewer;
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{ContactId, GroupId, MessageId, ProcessAreaId, ProcessingAreaId, UserGroupId, UserId};
use cohort_domain::routing::{Channel, Decision};
use std::collections::HashSet;

fn require_admin(v: &Viewer, what: &str) -> StoreResult<()> {
    if v.is_admin() { Ok(()) } else { Err(StoreError::forbidden(format!("{what} is for admins"))) }
}

/// A queue: where messages wait to be worked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingAreaRecord {
    pub id: ProcessingAreaId,
    pub name: String,
    pub description: Option<String>,
    /// Only members of this user group work the queue; its messages are restricted to them
    /// unless routing names another user group.
    pub user_group: Option<UserGroupId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A process area (`helpdesk`, `sales`, …) with its module defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessAreaRecord {
    pub id: ProcessAreaId,
    pub key: String,
    pub name: String,
    pub default_processing_area: ProcessingAreaId,
    pub default_worker: Option<UserId>,
    pub default_user_group: Option<UserGroupId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What one group sets for one process area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsibilityRecord {
    pub group: GroupId,
    pub process_area: ProcessAreaId,
    pub worker: Option<UserId>,
    pub user_group: Option<UserGroupId>,
    pub processing_area: Option<ProcessingAreaId>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<UserId>,
}

/// A group's effective responsibility for an area: its own, else its nearest ancestor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveResponsibilityRecord {
    pub responsibility: ResponsibilityRecord,
    /// The group it is defined on (the group asked about, or an ancestor).
    pub defined_on: GroupId,
    pub inherited: bool,
}

/// A routing decision for a contact, with what the caller may be told about the groups in it.
#[derive(Debug, Clone)]
pub struct RouteRecord {
    pub process_area: ProcessAreaRecord,
    pub decision: Decision,
    /// The groups of the decision the caller can see; explanations name only these.
    pub visible_groups: HashSet<GroupId>,
}

/// What `receiveMessage` is given.
#[derive(Debug, Clone)]
pub struct MessageInput {
    pub contact: Option<ContactId>,
    pub sender_email: Option<String>,
    /// The process area's key; `helpdesk` when absent.
    pub process_area: Option<String>,
    pub channel: Channel,
    pub subject: String,
    pub body: String,
    pub private: bool,
    pub recipient: Option<UserId>,
    pub received_at: Option<DateTime<Utc>>,
    pub external_id: Option<String>,
}

/// A message as the viewer may read it: `subject` and `body` are `None` where withheld.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: MessageId,
    pub process_area: ProcessAreaId,
    pub contact: Option<ContactId>,
    pub sender_email: Option<String>,
    pub channel: Channel,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub private: bool,
    pub recipient: Option<UserId>,
    pub received_at: DateTime<Utc>,
    pub external_id: Option<String>,
    pub worker: Option<UserId>,
    pub user_group: Option<UserGroupId>,
    pub processing_area: ProcessingAreaId,
    pub deciding_group: Option<GroupId>,
    pub created_at: DateTime<Utc>,
}

/// The answer of `receiveMessage`.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub id: MessageId,
    /// The same poster already delivered a message with this external id: that one is returned
    /// and nothing was stored.
    pub duplicate: bool,
    /// The message, if the poster may read it (a message routed to a restricted queue may be
    /// beyond its poster).
    pub message: Option<MessageRecord>,
}

/// One entry of a message's assignment history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRecord {
    pub routed: bool,
    pub worker: Option<UserId>,
    pub user_group: Option<UserGroupId>,
    pub processing_area: ProcessingAreaId,
    pub note: Option<String>,
    pub actor: Option<UserId>,
    pub at: DateTime<Utc>,
}

/// `messages(filter:)`.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub contact: Option<ContactId>,
    pub processing_area: Option<ProcessingAreaId>,
    pub process_area: Option<String>,
    pub assigned_to_me: bool,
    pub assignee: Option<UserId>,
    pub received_after: Option<DateTime<Utc>>,
    pub received_before: Option<DateTime<Utc>>,
}

/// `reassignMessage`: each present field replaces the current one (`Some(None)` clears worker or
/// user group).
#[derive(Debug, Clone, Default)]
pub struct Reassignment {
    pub worker: Option<Option<UserId>>,
    pub user_group: Option<Option<UserGroupId>>,
    pub processing_area: Option<ProcessingAreaId>,
    pub note: Option<String>,
}
