//! Domain events: what the unit of work writes to the outbox, and the admins' read of it.
//!
//! Payloads are thin on purpose (ids and small facts, never contact fields or membership lists):
//! the outbox feeds webhooks, and a webhook must not become an export channel.

use crate::access::handle::DataHandle;
use crate::core::page::{Page, PageRequest};
use crate::entities::event;
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The payload layout version every event carries; bumped when a payload changes incompatibly.
pub const EVENT_SCHEMA_VERSION: i32 = 1;

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        /// Every event type Cohort emits. The text form is the public contract (`group.created`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($variant,)* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            /// Strict: an unknown name is `None`, never some other type.
            pub fn parse(s: &str) -> Option<EventType> {
                match s { $($name => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    AddressBookCreated => "address_book.created",
    AccessGranted => "address_book.access_granted",
    AccessRevoked => "address_book.access_revoked",
    UserCreated => "user.created",
    UserGroupCreated => "user_group.created",
    UserGroupMembersAdded => "user_group.members_added",
    UserGroupMembersRemoved => "user_group.members_removed",
    ContactCreated => "contact.created",
    ContactUpdated => "contact.updated",
    ContactDeleted => "contact.deleted",
    ContactErased => "contact.erased",
    ContactStatusChanged => "contact.status_changed",
    GroupCreated => "group.created",
    GroupUpdated => "group.updated",
    GroupMoved => "group.moved",
    GroupDeleted => "group.deleted",
    GroupMembersAdded => "group.members_added",
    GroupMembersRemoved => "group.members_removed",
    ProductCreated => "product.created",
    ProductUpdated => "product.updated",
    PriceListCreated => "price_list.created",
    PriceListUpdated => "price_list.updated",
    PriceListItemsSet => "price_list.items_set",
    PriceListAssigned => "price_list.assigned",
    PriceListUnassigned => "price_list.unassigned",
    DefaultPriceListSet => "price_list.default_set",
    OrderPlaced => "order.placed",
    ProcessingAreaCreated => "processing_area.created",
    ProcessingAreaUpdated => "processing_area.updated",
    ProcessAreaCreated => "process_area.created",
    ProcessAreaUpdated => "process_area.updated",
    ResponsibilityChanged => "responsibility.changed",
    MessageReceived => "message.received",
    MessageRouted => "message.routed",
    MessageReassigned => "message.reassigned",
    BusinessCalendarCreated => "business_calendar.created",
    BusinessCalendarUpdated => "business_calendar.updated",
    SlaContractCreated => "sla_contract.created",
    SlaContractUpdated => "sla_contract.updated",
    DefaultSlaSet => "sla_contract.default_set",
    TicketCreated => "ticket.created",
    TicketSlaAssigned => "ticket.sla_assigned",
    TicketSlaChanged => "ticket.sla_changed",
    TicketStatusChanged => "ticket.status_changed",
    TicketResponded => "ticket.responded",
    TicketSlaBreached => "ticket.sla_breached",
    WebhookEndpointCreated => "webhook_endpoint.created",
    WebhookEndpointUpdated => "webhook_endpoint.updated",
    WebhookEndpointDeleted => "webhook_endpoint.deleted",
    WebhookSecretRotated => "webhook_endpoint.secret_rotated",
    WebhookEndpointDisabled => "webhook_endpoint.disabled",
    SequenceCreated => "sequence.created",
    SequenceUpdated => "sequence.updated",
    SequencePaused => "sequence.paused",
    SequenceResumed => "sequence.resumed",
    SequenceEnrolled => "sequence.enrolled",
    SequenceEnrolmentsStopped => "sequence.enrolments_stopped",
    SequenceStepDue => "sequence.step_due",
    SequenceEnrolmentCompleted => "sequence.enrolment_completed",
    ConsentTextCreated => "consent_text.created",
    WebFormCreated => "web_form.created",
    WebFormUpdated => "web_form.updated",
    ConsentGiven => "consent.given",
    ConsentConfirmed => "consent.confirmed",
    ConsentWithdrawn => "consent.withdrawn",
    ConsentConfirmationRequested => "consent.confirmation_requested",
    DataUsageThresholdExceeded => "data_usage.threshold_exceeded",
    DataUsageBlocked => "data_usage.blocked",
    DataUsageBlockLifted => "data_usage.block_lifted",
}

/// What an event is about. The kind names are the GraphQL type names, so the API can turn a
/// subject into a global id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectKind {
    AddressBook,
    User,
    UserGroup,
    Contact,
    Group,
    Product,
    PriceList,
    Order,
    ProcessArea,
    ProcessingArea,
    Message,
    WebhookEndpoint,
    BusinessCalendar,
    SlaContract,
    Ticket,
    Sequence,
    SequenceEnrolment,
    ConsentText,
    WebForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: SubjectKind,
    pub id: Uuid,
}

impl Subject {
    pub fn new(kind: SubjectKind, id: Uuid) -> Subject {
        Subject { kind, id }
    }
}

/// An event as the unit of work collects it before commit.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub(crate) event_type: EventType,
    pub(crate) subjects: Vec<Subject>,
    pub(crate) payload: serde_json::Value,
}

impl NewEvent {
    pub(crate) fn new(event_type: EventType, subjects: Vec<Subject>, payload: serde_json::Value) -> NewEvent {
        NewEvent { event_type, subjects, payload }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: Uuid,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub subjects: Vec<Subject>,
    pub schema_version: i32,
    pub payload: serde_json::Value,
}

impl TryFrom<event::Model> for EventRecord {
    type Error = StoreError;
    fn try_from(m: event::Model) -> StoreResult<EventRecord> {
        Ok(EventRecord {
            id: m.id,
            event_type: EventType::parse(&m.event_type)
                .ok_or_else(|| StoreError::corrupt("events.event_type", &m.event_type))?,
            occurred_at: m.occurred_at,
            actor_id: m.actor_id,
            request_id: m.request_id,
            subjects: serde_json::from_str(&m.subjects)
                .map_err(|_| StoreError::corrupt("events.subjects", &m.subjects))?,
            schema_version: m.schema_version,
            payload: serde_json::from_str(&m.payload).map_err(|_| StoreError::corrupt("events.payload", &m.payload))?,
        })
    }
}

/// A filter on event types: exact names (`group.created`) or prefixes (`group.*`).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub types: Vec<String>,
}

const MAX_TYPE_FILTERS: usize = 50;

/// Exact names and `prefix.*` patterns, expanded to the known types they cover (an unknown name
/// or a prefix that covers nothing is `BAD_USER_INPUT` on `types`).
pub(crate) fn expand_types(types: &[String]) -> StoreResult<Vec<&'static str>> {
    if types.len() > MAX_TYPE_FILTERS {
        return Err(StoreError::invalid("types", format!("at most {MAX_TYPE_FILTERS} entries")));
    }
    let mut wanted: Vec<&'static str> = Vec::new();
    for t in types {
        let matched: Vec<&'static str> =
            EventType::ALL.iter().map(|e| e.as_str()).filter(|n| type_matches(t, n)).collect();
        if matched.is_empty() {
            return Err(StoreError::invalid("types", "unknown event type or prefix (e.g. `group.created`, `group.*`)"));
        }
        wanted.extend(matched);
    }
    Ok(wanted)
}

/// Whether `pattern` (an exact type or `prefix.*`) covers the event type `name`.
pub(crate) fn type_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
        None => pattern == name,
    }
}

impl DataHandle {
    /// The tenant's events, oldest first (admin). Admins read every address book, so no contact
    /// an event names is hidden from the reader; non-admins may not read the outbox at all,
    /// because even counts ("12 members added") would describe contacts they cannot see.
    pub async fn events(&self, f: &EventFilter, page: &PageRequest) -> StoreResult<Page<EventRecord>> {
        let mut q = self.filtered_events(f)?;
        if let Some(after) = page.after_key::<Uuid>()? {
            q = q.filter(event::Column::Id.gt(after));
        }
        let rows = q.order_by_asc(event::Column::Id).limit(page.limit()).all(&self.db).await?;
        let recs = rows.into_iter().map(EventRecord::try_from).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(recs, page, |e| e.id))
    }

    /// How many events the filter matches (admin).
    pub async fn event_count(&self, f: &EventFilter) -> StoreResult<u64> {
        Ok(self.filtered_events(f)?.count(&self.db).await?)
    }

    /// The events `f` selects, for `events` and `event_count` (admin only, see `events`).
    fn filtered_events(&self, f: &EventFilter) -> StoreResult<sea_orm::Select<event::Entity>> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("reading events needs the admin role"));
        }
        if f.types.len() > MAX_TYPE_FILTERS {
            return Err(StoreError::invalid("types", format!("at most {MAX_TYPE_FILTERS} entries")));
        }
        let mut q = event::Entity::find().filter(event::Column::TenantId.eq(v.tenant_id.0));
        if !f.types.is_empty() {
            // Prefixes expand to the known types they cover, so the filter is one IN list on the
            // (tenant, type, id) index and an unknown name is a clear error, not an empty page.
            let wanted = expand_types(&f.types)?;
            q = q.filter(event::Column::EventType.is_in(wanted));
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_unknown_names_do_not_parse() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            let (area, action) = t.as_str().split_once('.').expect("area.action");
            assert!(!area.is_empty() && !action.is_empty());
        }
        assert_eq!(EventType::parse("group.exploded"), None);
        assert_eq!(EventType::parse("GROUP.CREATED"), None);
    }
}
