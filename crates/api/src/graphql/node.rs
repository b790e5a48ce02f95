//! The Relay `Node` interface and `node(id:)`.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::contacts::*;
use crate::graphql::{data, ids, loader, viewer};
use async_graphql::{Context, ID, Interface, Object};
use cohort_domain::ids::{AddressBookId, ContactId, GroupId, UserGroupId, UserId};

/// The Relay `Node` interface: anything with a global id that `node(id:)` can fetch.
// A ticket (with its SLA snapshot) is larger than the other variants; a `Node` lives for one
// field of one request, so boxing it would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque, type-checked global id."))]
pub enum Node {
    Contact(Contact),
    AddressBook(AddressBook),
    User(User),
    UserGroup(UserGroup),
    Group(crate::graphql::groups::Group),
    Order(crate::graphql::orders::Order),
    Message(crate::graphql::routing::Message),
    ProcessArea(crate::graphql::routing::ProcessArea),
    ProcessingArea(crate::graphql::routing::ProcessingArea),
    Ticket(crate::graphql::sla::Ticket),
    SlaContract(crate::graphql::sla::SlaContract),
    BusinessCalendar(crate::graphql::sla::BusinessCalendar),
    Product(crate::graphql::pricing::Product),
    PriceList(crate::graphql::pricing::PriceList),
    Sequence(crate::graphql::sequences::Sequence),
    SequenceEnrolment(crate::graphql::sequences::SequenceEnrolment),
    WebForm(crate::graphql::consent::WebForm),
    ConsentText(crate::graphql::consent::ConsentText),
    ConsentEntry(crate::graphql::consent::ConsentEntry),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Fetches any object by global id; `null` when it does not exist for the viewer.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        viewer(ctx)?;
        let Some((tag, uuid)) = ids::decode_any(id.as_str()) else {
            return Ok(None);
        };
        let l = loader(ctx)?;
        Ok(match tag.as_str() {
            ContactId::TAG => l.load_one(ContactId(uuid)).await?.map(|c| Node::Contact(Contact(c))),
            AddressBookId::TAG => l.load_one(AddressBookId(uuid)).await?.map(|b| Node::AddressBook(AddressBook(b))),
            UserId::TAG => l.load_one(UserId(uuid)).await?.map(|u| Node::User(User(u))),
            UserGroupId::TAG => l.load_one(UserGroupId(uuid)).await?.map(|g| Node::UserGroup(UserGroup(g))),
            GroupId::TAG => l.load_one(GroupId(uuid)).await?.map(|g| Node::Group(crate::graphql::groups::Group(g))),
            cohort_domain::ids::OrderId::TAG => data(ctx)?
                .orders_by_ids(&[cohort_domain::ids::OrderId(uuid)])
                .await
                .map_err(ApiError::from)?
                .pop()
                .map(|o| Node::Order(crate::graphql::orders::Order(o))),
            cohort_domain::ids::MessageId::TAG => l
                .load_one(cohort_domain::ids::MessageId(uuid))
                .await?
                .map(|m| Node::Message(crate::graphql::routing::Message(m))),
            cohort_domain::ids::ProcessAreaId::TAG => l
                .load_one(cohort_domain::ids::ProcessAreaId(uuid))
                .await?
                .map(|a| Node::ProcessArea(crate::graphql::routing::ProcessArea(a))),
            cohort_domain::ids::ProcessingAreaId::TAG => l
                .load_one(cohort_domain::ids::ProcessingAreaId(uuid))
                .await?
                .map(|q| Node::ProcessingArea(crate::graphql::routing::ProcessingArea(q))),
            cohort_domain::ids::TicketId::TAG => l
                .load_one(cohort_domain::ids::TicketId(uuid))
                .await?
                .map(|t| Node::Ticket(crate::graphql::sla::Ticket(t))),
            cohort_domain::ids::SlaContractId::TAG => l
                .load_one(cohort_domain::ids::SlaContractId(uuid))
                .await?
                .map(|c| Node::SlaContract(crate::graphql::sla::SlaContract(c))),
            cohort_domain::ids::BusinessCalendarId::TAG => l
                .load_one(cohort_domain::ids::BusinessCalendarId(uuid))
                .await?
                .map(|c| Node::BusinessCalendar(crate::graphql::sla::BusinessCalendar(c))),
            cohort_domain::ids::ProductId::TAG => l
                .load_one(cohort_domain::ids::ProductId(uuid))
                .await?
                .map(|p| Node::Product(crate::graphql::pricing::Product(p))),
            cohort_domain::ids::PriceListId::TAG => data(ctx)?
                .price_lists_by_ids(&[cohort_domain::ids::PriceListId(uuid)])
                .await
                .map_err(ApiError::from)?
                .pop()
                .map(|p| Node::PriceList(crate::graphql::pricing::PriceList(p))),
            cohort_domain::ids::SequenceId::TAG => data(ctx)?
                .sequences_by_ids(&[cohort_domain::ids::SequenceId(uuid)])
                .await
                .map_err(ApiError::from)?
                .pop()
                .map(|s| Node::Sequence(crate::graphql::sequences::Sequence(s))),
            cohort_domain::ids::EnrolmentId::TAG => data(ctx)?
                .enrolments_by_ids(&[cohort_domain::ids::EnrolmentId(uuid)])
                .await
                .map_err(ApiError::from)?
                .pop()
                .map(|e| Node::SequenceEnrolment(crate::graphql::sequences::SequenceEnrolment(e))),
            cohort_domain::ids::WebFormId::TAG => {
                match data(ctx)?.web_form(cohort_domain::ids::WebFormId(uuid)).await {
                    Ok(f) => Some(Node::WebForm(crate::graphql::consent::WebForm(f))),
                    Err(cohort_store::StoreError::NotFound) => None,
                    Err(e) => return Err(ApiError::from(e).into()),
                }
            }
            cohort_domain::ids::ConsentTextId::TAG => data(ctx)?
                .consent_texts_by_ids(&[cohort_domain::ids::ConsentTextId(uuid)])
                .await
                .map_err(ApiError::from)?
                .pop()
                .map(|t| Node::ConsentText(crate::graphql::consent::ConsentText(t))),
            cohort_domain::ids::ConsentEntryId::TAG => l
                .load_one(cohort_domain::ids::ConsentEntryId(uuid))
                .await?
                .map(|e| Node::ConsentEntry(crate::graphql::consent::ConsentEntry(e))),
            _ => None,
        })
    }
}
