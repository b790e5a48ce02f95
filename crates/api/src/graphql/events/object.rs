//! Outbox events, as GraphQL objects.

use crate::graphql::access::*;
use crate::graphql::relay::*;
use crate::graphql::{ids, loader};
use async_graphql::{ComplexObject, Context, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{
    AddressBookId, ContactId, EventId, GroupId, OrderId, PriceListId, ProductId, UserGroupId, UserId,
};
use cohort_store::{EventRecord, SubjectKind};

/// Something that happened in the tenant, written in the same transaction as the change.
/// Payloads carry ids and small facts only — never contact fields or membership lists.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Event {
    /// Opaque global id (ordered by creation).
    pub id: ID,
    /// e.g. `group.members_added`.
    #[graphql(name = "type")]
    pub event_type: String,
    /// When the change was committed.
    pub occurred_at: DateTime<Utc>,
    /// The request that caused it (the `x-request-id` it was served under).
    pub request_id: Option<String>,
    /// Global ids of what the event is about (a group, a contact, a price list, …).
    pub subjects: Vec<ID>,
    /// Payload layout version.
    pub schema_version: i32,
    /// Small facts: counts, ids, the previous and new parent of a moved group, …
    pub payload: Json<serde_json::Value>,
    #[graphql(skip)]
    pub actor_id: Option<uuid::Uuid>,
}

#[ComplexObject]
impl Event {
    /// Who did it.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(a) = self.actor_id else { return Ok(None) };
        Ok(loader(ctx)?.load_one(UserId(a)).await?.map(User))
    }
}

pub fn subject_tag(k: SubjectKind) -> &'static str {
    match k {
        SubjectKind::AddressBook => AddressBookId::TAG,
        SubjectKind::User => UserId::TAG,
        SubjectKind::UserGroup => UserGroupId::TAG,
        SubjectKind::Contact => ContactId::TAG,
        SubjectKind::Group => GroupId::TAG,
        SubjectKind::Product => ProductId::TAG,
        SubjectKind::PriceList => PriceListId::TAG,
        SubjectKind::Order => OrderId::TAG,
        SubjectKind::ProcessArea => cohort_domain::ids::ProcessAreaId::TAG,
        SubjectKind::ProcessingArea => cohort_domain::ids::ProcessingAreaId::TAG,
        SubjectKind::Message => cohort_domain::ids::MessageId::TAG,
        SubjectKind::BusinessCalendar => cohort_domain::ids::BusinessCalendarId::TAG,
        SubjectKind::SlaContract => cohort_domain::ids::SlaContractId::TAG,
        SubjectKind::Ticket => cohort_domain::ids::TicketId::TAG,
        SubjectKind::Sequence => cohort_domain::ids::SequenceId::TAG,
        SubjectKind::SequenceEnrolment => cohort_domain::ids::EnrolmentId::TAG,
        SubjectKind::ConsentText => cohort_domain::ids::ConsentTextId::TAG,
        SubjectKind::WebForm => cohort_domain::ids::WebFormId::TAG,
        SubjectKind::WebhookEndpoint => cohort_domain::ids::WebhookEndpointId::TAG,
    }
}

impl From<EventRecord> for Event {
    fn from(e: EventRecord) -> Self {
        Event {
            id: ids::encode(EventId::TAG, e.id),
            event_type: e.event_type.as_str().to_owned(),
            occurred_at: e.occurred_at,
            request_id: e.request_id,
            subjects: e.subjects.iter().map(|s| ids::encode(subject_tag(s.kind), s.id)).collect(),
            schema_version: e.schema_version,
            payload: Json(e.payload),
            actor_id: e.actor_id,
        }
    }
}

connection!(
    EventConnection,
    EventEdge,
    Event,
    EventRecord,
    "A page of the tenant's events, oldest first.",
    "An event in a page of events.",
    "How many events match `types`, on every page together."
);
