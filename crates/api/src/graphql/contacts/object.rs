//! Contacts, their channels and business statuses, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::loaders::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{BusinessStatusId, ContactId, StatusChangeId};
use cohort_store::{BusinessStatusRecord, ContactRecord, PageRequest, StatusChangeRecord};

/// Whether a contact is a person or a company.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ContactKind {
    /// A person: has first and last name and may belong to a company.
    Person,
    /// A company (or other organisation): has a company name; persons may name it as their company.
    Company,
}

impl From<cohort_domain::contact::ContactKind> for ContactKind {
    fn from(k: cohort_domain::contact::ContactKind) -> Self {
        match k {
            cohort_domain::contact::ContactKind::Person => ContactKind::Person,
            cohort_domain::contact::ContactKind::Company => ContactKind::Company,
        }
    }
}

impl From<ContactKind> for cohort_domain::contact::ContactKind {
    fn from(k: ContactKind) -> Self {
        match k {
            ContactKind::Person => cohort_domain::contact::ContactKind::Person,
            ContactKind::Company => cohort_domain::contact::ContactKind::Company,
        }
    }
}
connection!(
    ContactConnection,
    ContactEdge,
    Contact,
    ContactRecord,
    "A page of contacts.",
    "A contact in a page of contacts.",
    "The number of matching contacts the viewer can see (never counts hidden ones), on every page together."
);
connection!(
    StatusChangeConnection,
    StatusChangeEdge,
    StatusChange,
    StatusChangeRecord,
    "A page of a contact's business-status changes, newest first.",
    "A business-status change.",
    "How many status changes the contact has, on every page together."
);

// Contacts

/// Loads, for a whole page of contacts at once, each per-row field the query selects under
/// `node` (one store call per field, whatever the page size). Rows then read from the loaders'
/// request cache. Batching therefore never depends on how fast sibling rows happen to resolve.
/// The parts of a contact a selection (`node`) asks for that the statement reading the contacts
/// can read along: e-mails and the business status.
/// Memberships are read along only for a single contact ([`contact_parts_of_one`]); a page's
/// go through the memberships loader, one statement for the whole page.
pub(crate) fn contact_parts(node: &async_graphql::Lookahead<'_>) -> cohort_store::ContactParts {
    cohort_store::ContactParts {
        emails: node.field("emails").exists(),
        status: node.field("businessStatus").exists(),
        memberships: false,
    }
}

/// [`contact_parts`] for `contact(id)`: the memberships (with their groups) too.
pub(crate) fn contact_parts_of_one(node: &async_graphql::Lookahead<'_>) -> cohort_store::ContactParts {
    cohort_store::ContactParts { memberships: node.field("memberships").exists(), ..contact_parts(node) }
}

/// Hands what a statement read along ([`contact_parts`]) to the request's loaders, so the
/// contacts' fields find it there instead of asking the database again.
pub(crate) async fn feed_contact_extras<'a>(
    ctx: &Context<'_>,
    read: impl IntoIterator<Item = (ContactId, &'a cohort_store::ContactExtras)>,
) -> async_graphql::Result<()> {
    let l = loader(ctx)?;
    let mut emails = vec![];
    let mut statuses = vec![];
    let mut memberships = vec![];
    for (id, x) in read {
        if let Some(e) = &x.emails {
            emails.push((EmailsOf(id), e.clone()));
        }
        if let Some(m) = &x.memberships {
            memberships.push((crate::graphql::loaders::MembershipsOf(id), m.clone()));
        }
        if let Some(Some(st)) = &x.status {
            statuses.push((st.id, st.clone()));
        }
    }
    if !emails.is_empty() {
        l.feed_many(emails).await;
    }
    if !statuses.is_empty() {
        l.feed_many(statuses).await;
    }
    if !memberships.is_empty() {
        l.feed_many(memberships).await;
    }
    Ok(())
}

pub(crate) async fn prefetch_contacts(
    ctx: &Context<'_>,
    node: async_graphql::Lookahead<'_>,
    contacts: &[&ContactRecord],
) -> async_graphql::Result<()> {
    if contacts.is_empty() || !node.exists() {
        return Ok(());
    }
    let l = loader(ctx)?;
    if node.field("emails").exists() {
        l.load_many(contacts.iter().map(|c| EmailsOf(c.id))).await?;
    }
    if node.field("phones").exists() {
        l.load_many(contacts.iter().map(|c| PhonesOf(c.id))).await?;
    }
    if node.field("addressBook").exists() {
        l.load_many(contacts.iter().map(|c| c.address_book_id)).await?;
    }
    if node.field("businessStatus").exists() {
        l.load_many(contacts.iter().filter_map(|c| c.business_status_id)).await?;
    }
    if node.field("company").exists() {
        l.load_many(contacts.iter().filter_map(|c| c.company_id)).await?;
    }
    if node.field("externalIds").exists() {
        l.load_many(contacts.iter().map(|c| ExternalIdsOf(cohort_store::ExternalTarget::Contact(c.id)))).await?;
    }
    if node.field("memberships").exists() {
        l.load_many(contacts.iter().map(|c| crate::graphql::loaders::MembershipsOf(c.id))).await?;
    }
    Ok(())
}

pub struct Contact(pub ContactRecord);

impl From<ContactRecord> for Contact {
    fn from(r: ContactRecord) -> Self {
        Contact(r)
    }
}

/// A stable id for one of a contact's channels (an e-mail address or a phone number): derived from
/// the contact and the value (case-insensitively), so it stays the same across queries and
/// reorderings, and changes only when the value does. Not resolvable through `node` (a channel is
/// part of its contact); it exists so that normalising caches (Apollo's `__typename:id`) can
/// tell two channels apart without a `typePolicies` entry.
fn channel_id(tag: &'static str, contact: uuid::Uuid, value: &str) -> ID {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"cohort-channel-v1\0");
    h.update(tag.as_bytes());
    h.update(contact.as_bytes());
    h.update(value.trim().to_lowercase().as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    ids::encode(tag, uuid::Uuid::from_bytes(b))
}

/// One of a contact's e-mail addresses.
#[derive(SimpleObject, Clone)]
pub struct EmailAddress {
    /// Stable id of this address on this contact (the same in every answer while the address is
    /// unchanged); for client caches, not for `node(id:)`.
    pub id: ID,
    /// The address, as entered.
    pub address: String,
    /// What the address is for (`work`, `private`); `null` if unlabelled.
    pub label: Option<String>,
}

/// One of a contact's phone numbers.
#[derive(SimpleObject, Clone)]
pub struct PhoneNumber {
    /// Stable id of this number on this contact (the same in every answer while the number is
    /// unchanged); for client caches, not for `node(id:)`.
    pub id: ID,
    /// The number, as entered.
    pub number: String,
    /// What the number is for (`mobile`, `office`); `null` if unlabelled.
    pub label: Option<String>,
}

/// A person or company in one address book.
#[Object]
impl Contact {
    /// The contact's global id (opaque; for `node(id:)` and inputs that take a contact).
    pub(crate) async fn id(&self) -> ID {
        ids::encode(ContactId::TAG, self.0.id.0)
    }
    /// The ids source systems (ERP, webshop) give this contact, one per system, by system.
    async fn external_ids(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::external::ExternalId>> {
        crate::graphql::external::external_ids_field(ctx, cohort_store::ExternalTarget::Contact(self.0.id)).await
    }
    /// Person or company.
    async fn kind(&self) -> ContactKind {
        self.0.kind.into()
    }
    /// A person's first name; `null` for companies and when unknown.
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    /// A person's last name; `null` for companies and when unknown.
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    /// A company's name; `null` for persons.
    async fn company_name(&self) -> Option<&str> {
        self.0.company_name.as_deref()
    }
    /// "First Last" for a person, the company name for a company.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// E-mail addresses, in the order entered.
    async fn emails(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<EmailAddress>> {
        let emails = loader(ctx)?.load_one(EmailsOf(self.0.id)).await?.unwrap_or_default();
        let c = self.0.id.0;
        Ok(emails
            .into_iter()
            .map(|e| EmailAddress { id: channel_id("EmailAddress", c, &e.address), address: e.address, label: e.label })
            .collect())
    }
    /// Phone numbers, in the order entered.
    async fn phones(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PhoneNumber>> {
        let phones = loader(ctx)?.load_one(PhonesOf(self.0.id)).await?.unwrap_or_default();
        let c = self.0.id.0;
        Ok(phones
            .into_iter()
            .map(|p| PhoneNumber { id: channel_id("PhoneNumber", c, &p.number), number: p.number, label: p.label })
            .collect())
    }
    /// A person's company — `null` when there is none or the viewer cannot see it.
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        match self.0.company_id {
            None => Ok(None),
            Some(c) => Ok(loader(ctx)?.load_one(c).await?.map(Contact)),
        }
    }
    /// The address book the contact lives in.
    async fn address_book(&self, ctx: &Context<'_>) -> async_graphql::Result<AddressBook> {
        // A visible contact's book is always visible; a miss here means it changed mid-request.
        loader(ctx)?.load_one(self.0.address_book_id).await?.map(AddressBook).ok_or_else(|| ApiError::NotFound.into())
    }
    /// Where the contact stands commercially (lead, customer, …); `null` if unclassified.
    async fn business_status(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<BusinessStatus>> {
        match self.0.business_status_id {
            None => Ok(None),
            Some(s) => Ok(loader(ctx)?.load_one(s).await?.map(BusinessStatus)),
        }
    }
    /// Every business-status change, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn status_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<StatusChangeConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let p = data(ctx)?.status_history(self.0.id, &page).await.map_err(ApiError::from)?;
        Ok(StatusChangeConnection::from_page(p, CountSource::StatusChanges(self.0.id)))
    }
    /// The contact's orders, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::orders::OrderConnection> {
        crate::graphql::orders::contact_orders(ctx, self.0.id, first, after).await
    }
    /// The contact's tickets the viewer may read, nearest due time first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::sla::TicketConnection> {
        crate::graphql::sla::contact_tickets(ctx, self.0.id, first, after).await
    }
    /// The contact's enrolments in follow-up sequences the viewer can see, newest first. Counts
    /// against the per-request membership cap (`EXPORT_LIMIT`) like `memberships`.
    async fn sequence_enrolments(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::sequences::SequenceEnrolment>> {
        crate::graphql::sequences::contact_enrolments(ctx, self.0.id).await
    }
    /// Messages from the contact that the viewer may read, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::routing::MessageConnection> {
        crate::graphql::routing::contact_messages(ctx, self.0.id, first, after).await
    }
    /// The contact's memberships in groups the viewer can see, by group name. Resolving this
    /// for more than 100 contacts in one request refuses the request (`EXPORT_LIMIT`).
    async fn memberships(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::groups::GroupMembership>> {
        crate::graphql::groups::contact_memberships(ctx, self.0.id).await
    }
    /// Every join and leave of this contact in groups the viewer can see, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn membership_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::groups::MembershipEventConnection> {
        crate::graphql::groups::contact_membership_history(ctx, self.0.id, first, after).await
    }
    /// The contact's consent log (given, confirmed, withdrawn; how, when, which wording),
    /// newest first. Entries name a group only where the viewer can see it.
    async fn consents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::graphql::consent::ConsentEntry>> {
        crate::graphql::consent::contact_consents(ctx, self.0.id).await
    }
    /// The contact's consent standing for one public group (`NONE` for groups without an entry,
    /// and for groups the viewer cannot see).
    async fn consent_status(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
    ) -> async_graphql::Result<crate::graphql::consent::ConsentStatus> {
        crate::graphql::consent::contact_consent_status(ctx, self.0.id, &group_id).await
    }
    /// When the contact was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the contact's own fields were last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct BusinessStatus(pub BusinessStatusRecord);

/// One entry of the tenant's business-status classification.
#[Object]
impl BusinessStatus {
    /// Global id of this classification entry (stable; for client caches).
    async fn id(&self) -> ID {
        ids::encode(BusinessStatusId::TAG, self.0.id.0)
    }
    /// Stable key, used in filters and `setContactBusinessStatus` (e.g. `lead_hot`).
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// Display label, e.g. "Hot lead".
    async fn label(&self) -> &str {
        &self.0.label
    }
    /// LEAD, PROSPECT, CUSTOMER or DEAD.
    async fn category(&self) -> &str {
        &self.0.category
    }
    /// Display order in the classification (ascending).
    async fn position(&self) -> i32 {
        self.0.position
    }
}

pub struct StatusChange(pub StatusChangeRecord);

impl From<StatusChangeRecord> for StatusChange {
    fn from(r: StatusChangeRecord) -> Self {
        StatusChange(r)
    }
}

/// One change of a contact's business status, as recorded (never rewritten).
#[Object]
impl StatusChange {
    /// Global id of this history entry (stable; for client caches).
    async fn id(&self) -> ID {
        ids::encode(StatusChangeId::TAG, self.0.id.0)
    }
    /// The status before; `null` if the contact had none.
    async fn from(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<BusinessStatus>> {
        match self.0.from_status_id {
            None => Ok(None),
            Some(s) => Ok(loader(ctx)?.load_one(s).await?.map(BusinessStatus)),
        }
    }
    /// The status after; `null` if the status was cleared.
    async fn to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<BusinessStatus>> {
        match self.0.to_status_id {
            None => Ok(None),
            Some(s) => Ok(loader(ctx)?.load_one(s).await?.map(BusinessStatus)),
        }
    }
    /// Who made the change; `null` if not recorded.
    async fn changed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.changed_by {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
    /// When the change was made.
    async fn changed_at(&self) -> DateTime<Utc> {
        self.0.changed_at
    }
    /// Why, as noted with the change; `null` if none.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
}

/// A subject-access export (`contactDataExport`): one person's data as one JSON document.
#[derive(SimpleObject)]
pub struct ContactDataExport {
    /// When the document was made.
    pub generated_at: DateTime<Utc>,
    /// The document (`format`: `cohort.contact-data-export/v1`): `contact` (profile, e-mails,
    /// phones, address book, company, business status, `erasedAt`), `businessStatusHistory`,
    /// `memberships`, `membershipHistory`, `consent` (`log`, `current`,
    /// `confirmationRequests`), `individualPriceLists`, `orders` (with `lines`), `tickets`
    /// (with `history`), `messages`, `sequenceEnrolments`. Amounts are decimal strings; staff
    /// appear by user id only.
    pub document: async_graphql::Json<serde_json::Value>,
}
