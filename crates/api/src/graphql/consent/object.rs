//! Consent texts, web forms and consent entries, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::contacts::*;
use crate::graphql::groups::*;
use crate::graphql::{data, ids, loader};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::consent::{
    ConsentAction as DAction, ConsentChannel as DChannel, ConsentStatus as DStatus, FormField,
};
use cohort_domain::ids::{ConsentEntryId, ConsentTextId, GroupId, WebFormId};
use cohort_store::{ConsentEntryRecord, ConsentSummaryRecord, ConsentTextRecord, PublicLinks, WebFormRecord};
use std::sync::Arc;

/// A contact's standing for one public group (from the latest consent entry).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ConsentStatus {
    /// Consent in force: confirmed through double opt-in, or given where no confirmation is
    /// asked (a single opt-in form, an agent recording it, the preference centre).
    Confirmed,
    /// Given through a double opt-in form, not confirmed yet.
    Pending,
    /// The latest entry withdrew consent: the person must not be written to for this group.
    Withdrawn,
    /// No consent on record (for example a member an agent assigned).
    None,
}

impl From<DStatus> for ConsentStatus {
    fn from(s: DStatus) -> Self {
        match s {
            DStatus::Confirmed => Self::Confirmed,
            DStatus::Pending => Self::Pending,
            DStatus::Withdrawn => Self::Withdrawn,
            DStatus::None => Self::None,
        }
    }
}

impl From<ConsentStatus> for DStatus {
    fn from(s: ConsentStatus) -> Self {
        match s {
            ConsentStatus::Confirmed => Self::Confirmed,
            ConsentStatus::Pending => Self::Pending,
            ConsentStatus::Withdrawn => Self::Withdrawn,
            ConsentStatus::None => Self::None,
        }
    }
}

/// What a consent entry records.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ConsentAction {
    /// The person expressed consent (awaiting confirmation where the form asks for double opt-in).
    Given,
    /// The person confirmed through the double opt-in link.
    Confirmed,
    /// The person (or an agent on their behalf) withdrew consent.
    Withdrawn,
}

impl From<DAction> for ConsentAction {
    fn from(a: DAction) -> Self {
        match a {
            DAction::Given => Self::Given,
            DAction::Confirmed => Self::Confirmed,
            DAction::Withdrawn => Self::Withdrawn,
        }
    }
}

/// How a consent entry came about.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ConsentChannel {
    /// Submitted through one of the tenant's web forms (or its confirmation link).
    WebForm,
    /// Changed by the person in the preference centre, through their signed link.
    PreferenceLink,
    /// The person's mail client unsubscribed them (RFC 8058 one-click unsubscribe).
    OneClickUnsubscribe,
    /// Recorded by an agent for the person (`recordConsent`: by phone, on paper).
    AgentOnBehalf,
    /// Brought in by a data import, with the evidence the importer had.
    Import,
    /// Recorded by another system through the API.
    Api,
}

impl From<DChannel> for ConsentChannel {
    fn from(c: DChannel) -> Self {
        match c {
            DChannel::WebForm => Self::WebForm,
            DChannel::PreferenceLink => Self::PreferenceLink,
            DChannel::OneClickUnsubscribe => Self::OneClickUnsubscribe,
            DChannel::AgentOnBehalf => Self::AgentOnBehalf,
            DChannel::Import => Self::Import,
            DChannel::Api => Self::Api,
        }
    }
}

/// A field a web form asks for.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebFormField {
    /// The e-mail address (always asked, always required).
    Email,
    /// The person's first name.
    FirstName,
    /// The person's last name.
    LastName,
    /// A phone number.
    Phone,
}

impl From<FormField> for WebFormField {
    fn from(f: FormField) -> Self {
        match f {
            FormField::Email => Self::Email,
            FormField::FirstName => Self::FirstName,
            FormField::LastName => Self::LastName,
            FormField::Phone => Self::Phone,
        }
    }
}

impl From<WebFormField> for FormField {
    fn from(f: WebFormField) -> Self {
        match f {
            WebFormField::Email => Self::Email,
            WebFormField::FirstName => Self::FirstName,
            WebFormField::LastName => Self::LastName,
            WebFormField::Phone => Self::Phone,
        }
    }
}

pub struct ConsentText(pub ConsentTextRecord);

/// One version of a consent wording: immutable, identified by the SHA-256 of its canonical text.
#[Object]
impl ConsentText {
    /// The consent text's global id (opaque; for `node(id:)` and inputs that take a consent text).
    pub async fn id(&self) -> ID {
        ids::encode(ConsentTextId::TAG, self.0.id.0)
    }
    /// What the consent is for (`newsletter`, `travel-offers`).
    async fn purpose(&self) -> &str {
        &self.0.purpose
    }
    /// Language tag (`en`, `de-AT`).
    async fn language(&self) -> &str {
        &self.0.language
    }
    /// 1, 2, … per (purpose, language).
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The exact wording shown (canonical: `\n` line ends, no trailing spaces).
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// SHA-256 of the body's UTF-8 bytes, lower-case hex.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// When this version was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who wrote this version; `null` if unknown.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.created_by {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
}

/// One field of a web form and whether it must be filled in.
#[derive(SimpleObject)]
pub struct WebFormFieldSpec {
    /// The field asked for.
    pub field: WebFormField,
    /// Whether a submission without it is refused.
    pub required: bool,
}

pub struct WebForm(pub WebFormRecord);

/// A web form: its stable public key and current definition.
#[Object]
impl WebForm {
    /// The web form's global id (opaque; for `node(id:)`, `webForm(id:)` and `updateWebForm`). Not
    /// the public key.
    pub async fn id(&self) -> ID {
        ids::encode(WebFormId::TAG, self.0.id.0)
    }
    /// The public key websites use (`/public/v1/forms/{key}`); never changes.
    async fn key(&self) -> &str {
        &self.0.public_key
    }
    /// The form's name, for the tenant's own staff.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The definition's version; every change to what the form shows or does adds one, and each
    /// submission records the version it used.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// Whether the form takes submissions (a disabled form's public key finds nothing).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Where contacts new to Cohort are created.
    async fn intake_address_book(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AddressBook>> {
        Ok(loader(ctx)?.load_one(self.0.intake_book_id).await?.map(AddressBook))
    }
    /// The public groups offered as checkboxes, in order (those the viewer can see).
    async fn groups(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Group>> {
        let found = loader(ctx)?.load_many(self.0.group_ids.iter().copied()).await?;
        Ok(self.0.group_ids.iter().filter_map(|g| found.get(g).cloned().map(Group)).collect())
    }
    /// The wording the form shows and each submission agrees to.
    async fn consent_text(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ConsentText>> {
        Ok(data(ctx)?
            .consent_texts_by_ids(&[self.0.consent_text_id])
            .await
            .map_err(ApiError::from)?
            .pop()
            .map(ConsentText))
    }
    /// Memberships wait for the confirmation link.
    async fn double_opt_in(&self) -> bool {
        self.0.double_opt_in
    }
    /// IP address and user agent are kept with the consent entries.
    async fn keep_evidence(&self) -> bool {
        self.0.keep_evidence
    }
    /// The e-mail address first (always required).
    async fn fields(&self) -> Vec<WebFormFieldSpec> {
        self.0.fields.iter().map(|f| WebFormFieldSpec { field: f.field.into(), required: f.required }).collect()
    }
    /// Origins allowed to post the form from a browser (CORS).
    async fn allowed_origins(&self) -> &[String] {
        &self.0.origins
    }
    /// The heading shown on the form; `null` for none.
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    /// The label of the submit button; `null` for the default.
    async fn submit_label(&self) -> Option<&str> {
        self.0.submit_label.as_deref()
    }
    /// Where a plain HTML form is sent after a submission; `null` for Cohort's own thank-you page.
    async fn success_url(&self) -> Option<&str> {
        self.0.success_url.as_deref()
    }
    /// Where the double opt-in confirmation link leads after confirming; `null` for Cohort's own
    /// page.
    async fn confirmation_url(&self) -> Option<&str> {
        self.0.confirmation_url.as_deref()
    }
    /// The form's public definition endpoint.
    async fn public_url(&self, ctx: &Context<'_>) -> Option<String> {
        ctx.data_opt::<Arc<PublicLinks>>().map(|l| format!("{}/public/v1/forms/{}", l.base_url, self.0.public_key))
    }
    /// When the form was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the form was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// IP address and user agent of a consent act (only where the form keeps them).
#[derive(SimpleObject)]
pub struct ConsentEvidence {
    /// The IP address the consent came from; `null` if not kept.
    pub ip: Option<String>,
    /// The browser's `User-Agent`; `null` if not kept.
    pub user_agent: Option<String>,
}

pub struct ConsentEntry(pub ConsentEntryRecord);

/// One entry of the append-only consent log.
#[Object]
impl ConsentEntry {
    /// The entry's global id (opaque; for `node(id:)`).
    pub async fn id(&self) -> ID {
        ids::encode(ConsentEntryId::TAG, self.0.id.0)
    }
    /// What the person did.
    async fn action(&self) -> ConsentAction {
        self.0.action.into()
    }
    /// Server time (UTC).
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// How the entry came about.
    async fn channel(&self) -> ConsentChannel {
        self.0.channel.into()
    }
    /// The person; `null` if the viewer cannot see the contact.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(loader(ctx)?.load_one(self.0.contact_id).await?.map(Contact))
    }
    /// The group (purpose) — `null` where the viewer cannot see the group.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        Ok(loader(ctx)?.load_one(self.0.group_id).await?.map(Group))
    }
    /// The web form (entries through a form).
    async fn web_form_id(&self) -> Option<ID> {
        self.0.form_id.map(|f| ids::encode(WebFormId::TAG, f.0))
    }
    /// The version of the form's definition the submission used; `null` for entries not made
    /// through a form.
    async fn web_form_version(&self) -> Option<i32> {
        self.0.form_version
    }
    /// The wording the person saw.
    async fn consent_text(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ConsentText>> {
        match self.0.text_id {
            None => Ok(None),
            Some(t) => Ok(data(ctx)?.consent_texts_by_ids(&[t]).await.map_err(ApiError::from)?.pop().map(ConsentText)),
        }
    }
    /// SHA-256 of that wording (kept with the entry, so it proves the text even on its own).
    async fn text_sha256(&self) -> Option<&str> {
        self.0.text_sha256.as_deref()
    }
    /// The double opt-in request: the same id on the `GIVEN` and its `CONFIRMED`.
    async fn confirmation_id(&self) -> Option<ID> {
        self.0.request_id.map(|r| ID(r.to_string()))
    }
    /// IP address and user agent, where the form keeps them; `null` otherwise.
    async fn evidence(&self) -> Option<ConsentEvidence> {
        (self.0.ip.is_some() || self.0.user_agent.is_some())
            .then(|| ConsentEvidence { ip: self.0.ip.clone(), user_agent: self.0.user_agent.clone() })
    }
    /// The agent who recorded it (`AGENT_ON_BEHALF`).
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.agent_id {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
    /// The agent's note ("by phone, 2 Dec 10:14"); `null` if none.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
}

/// Consent standing of a group's visible contacts.
#[derive(SimpleObject)]
pub struct ConsentSummary {
    /// Visible members whose consent is in force (`CONFIRMED`).
    pub confirmed: i64,
    /// Visible contacts who gave consent through double opt-in and have not confirmed yet
    /// (`PENDING`).
    pub pending: i64,
    /// Visible contacts whose latest entry withdrew consent (`WITHDRAWN`).
    pub withdrawn: i64,
    /// Visible members without confirmed consent for the group: no consent on record
    /// (`members(consent: NONE)`), a pending confirmation (`PENDING`), or re-added after a
    /// withdrawal (`WITHDRAWN`).
    pub members_without_consent: i64,
}

impl From<ConsentSummaryRecord> for ConsentSummary {
    fn from(s: ConsentSummaryRecord) -> Self {
        ConsentSummary {
            confirmed: s.confirmed as i64,
            pending: s.pending as i64,
            withdrawn: s.withdrawn as i64,
            members_without_consent: s.members_without_consent as i64,
        }
    }
}

/// `Contact.consents`.
pub(crate) async fn contact_consents(
    ctx: &Context<'_>,
    contact: cohort_domain::ids::ContactId,
) -> async_graphql::Result<Vec<ConsentEntry>> {
    Ok(data(ctx)?.contact_consents(contact).await.map_err(ApiError::from)?.into_iter().map(ConsentEntry).collect())
}

/// `Contact.consentStatus(group)`.
pub(crate) async fn contact_consent_status(
    ctx: &Context<'_>,
    contact: cohort_domain::ids::ContactId,
    group: &ID,
) -> async_graphql::Result<ConsentStatus> {
    // Unknown, hidden or not a group id: no consent on record for the viewer.
    let Ok(g) = ids::decode(GroupId::TAG, group) else { return Ok(ConsentStatus::None) };
    let m = data(ctx)?.consent_statuses(contact, &[GroupId(g)]).await.map_err(ApiError::from)?;
    Ok(m.get(&GroupId(g)).copied().map(Into::into).unwrap_or(ConsentStatus::None))
}

/// `Group.consentSummary`.
pub(crate) async fn group_consent_summary(ctx: &Context<'_>, group: GroupId) -> async_graphql::Result<ConsentSummary> {
    let m = data(ctx)?.consent_summaries(&[group]).await.map_err(ApiError::from)?;
    Ok(m.get(&group).copied().unwrap_or_default().into())
}

/// `GroupMemberEdge.consent`.
pub(crate) async fn consent_entry(
    ctx: &Context<'_>,
    id: Option<ConsentEntryId>,
) -> async_graphql::Result<Option<ConsentEntry>> {
    match id {
        None => Ok(None),
        Some(i) => Ok(loader(ctx)?.load_one(i).await?.map(ConsentEntry)),
    }
}
