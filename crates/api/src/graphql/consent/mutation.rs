//! Mutations of the consent area.

use crate::error::ApiError;
use crate::graphql::consent::*;
use crate::graphql::{data, ids, patch};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use cohort_domain::consent::{ConsentAction as DAction, FieldSpec};
use cohort_domain::ids::{AddressBookId, ConsentTextId, ContactId, GroupId, WebFormId};
use cohort_store::{ConsentTextInput, WebFormInput, WebFormPatch};

/// The input of `createConsentText`: the next version of the wording for one purpose and language.
#[derive(InputObject)]
pub struct CreateConsentTextInput {
    /// What the consent is for: `newsletter`, `travel-offers` (lower-case, digits, `-`, `_`).
    pub purpose: String,
    /// `en`, `de`, `de-AT`.
    pub language: String,
    /// The exact wording people will see. Stored canonical (line ends `\n`, no trailing spaces).
    pub body: String,
}

/// The result of `createConsentText`.
#[derive(SimpleObject)]
pub struct ConsentTextPayload {
    /// The new version.
    pub consent_text: ConsentText,
}

/// A field a web form asks for, besides the e-mail address.
#[derive(InputObject)]
pub struct WebFormFieldInput {
    /// The field to ask for.
    pub field: WebFormField,
    /// Whether a submission must fill it in (default `false`).
    #[graphql(default)]
    pub required: bool,
}

/// The input of `createWebForm`.
#[derive(InputObject)]
pub struct CreateWebFormInput {
    /// The form's name, for the tenant's own staff.
    pub name: String,
    /// Where contacts new to Cohort are created (admin, or MANAGE on it).
    pub intake_address_book_id: ID,
    /// Public groups offered as checkboxes (in this order).
    pub group_ids: Vec<ID>,
    /// The consent wording the form shows and each submission agrees to.
    pub consent_text_id: ID,
    /// Send a confirmation link and add memberships only once it is followed (default `true`).
    #[graphql(default = true)]
    pub double_opt_in: bool,
    /// Keep IP address and user agent with the consent entries (off by default).
    #[graphql(default)]
    pub keep_evidence: bool,
    /// The e-mail address is always asked and required; list the others.
    #[graphql(default)]
    pub fields: Vec<WebFormFieldInput>,
    /// Origins allowed to post from a browser (`https://travel.example`).
    #[graphql(default)]
    pub allowed_origins: Vec<String>,
    /// The heading shown on the form (optional).
    pub title: Option<String>,
    /// The label of the submit button (optional).
    pub submit_label: Option<String>,
    /// Where a plain HTML form is sent after submitting.
    pub success_url: Option<String>,
    /// Where the confirmation link leads after confirming.
    pub confirmation_url: Option<String>,
    /// Whether the form takes submissions right away (default `true`).
    #[graphql(default = true)]
    pub enabled: bool,
}

/// The input of `updateWebForm`: absent fields stay as they are; `null` clears the optional texts.
#[derive(InputObject)]
pub struct UpdateWebFormInput {
    /// The web form to change.
    pub id: ID,
    /// A new name.
    pub name: Option<String>,
    /// Take submissions (`true`) or not (`false`).
    pub enabled: Option<bool>,
    /// Where new contacts are created from now on.
    pub intake_address_book_id: Option<ID>,
    /// The public groups offered, replacing the list (in this order).
    pub group_ids: Option<Vec<ID>>,
    /// The consent wording the form shows from now on.
    pub consent_text_id: Option<ID>,
    /// Whether submissions need the confirmation link.
    pub double_opt_in: Option<bool>,
    /// Whether IP address and user agent are kept with the consent entries.
    pub keep_evidence: Option<bool>,
    /// The fields asked for besides the e-mail address, replacing the list.
    pub fields: Option<Vec<WebFormFieldInput>>,
    /// The origins allowed to post from a browser, replacing the list.
    pub allowed_origins: Option<Vec<String>>,
    /// The heading shown on the form (`null`: none).
    pub title: MaybeUndefined<String>,
    /// The label of the submit button (`null`: the default).
    pub submit_label: MaybeUndefined<String>,
    /// Where a plain HTML form is sent after submitting (`null`: Cohort's own page).
    pub success_url: MaybeUndefined<String>,
    /// Where the confirmation link leads (`null`: Cohort's own page).
    pub confirmation_url: MaybeUndefined<String>,
}

/// The result of `createWebForm` and `updateWebForm`.
#[derive(SimpleObject)]
pub struct WebFormPayload {
    /// The form as it now stands.
    pub web_form: WebForm,
}

/// What an agent may record: consent given or withdrawn (confirmation is the person's own act).
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RecordedConsentAction {
    /// The person gave consent; it is in force at once (no confirmation link follows).
    Given,
    /// The person withdrew consent.
    Withdrawn,
}

/// The input of `recordConsent`.
#[derive(InputObject)]
pub struct RecordConsentInput {
    /// The person the consent is about.
    pub contact_id: ID,
    /// A public group.
    pub group_id: ID,
    /// Consent given or withdrawn.
    pub action: RecordedConsentAction,
    /// The wording the person agreed to (required for `GIVEN`).
    pub consent_text_id: Option<ID>,
    /// How and when it was given ("by phone, 2 Dec 10:14").
    pub note: Option<String>,
}

/// The result of `recordConsent`.
#[derive(SimpleObject)]
pub struct RecordConsentPayload {
    /// The consent-log entry written.
    pub entry: ConsentEntry,
}

/// The input of `setPublicProfile`.
#[derive(InputObject)]
pub struct SetPublicProfileInput {
    /// The heading of the tenant's public pages (`null`: the tenant's name).
    pub public_name: Option<String>,
}

/// The result of `setPublicProfile`.
#[derive(SimpleObject)]
pub struct SetPublicProfilePayload {
    /// The public name now in use (`null`: the tenant's name).
    pub public_name: Option<String>,
}

fn gid(id: &ID, field: &'static str) -> Result<GroupId, ApiError> {
    ids::decode(GroupId::TAG, id).map(GroupId).map_err(|_| ApiError::bad_input(field, "is not a group id"))
}

fn text_id(id: &ID) -> Result<ConsentTextId, ApiError> {
    ids::decode(ConsentTextId::TAG, id)
        .map(ConsentTextId)
        .map_err(|_| ApiError::bad_input("consentTextId", "is not a consent text id"))
}

fn book_id(id: &ID) -> Result<AddressBookId, ApiError> {
    ids::decode(AddressBookId::TAG, id)
        .map(AddressBookId)
        .map_err(|_| ApiError::bad_input("intakeAddressBookId", "is not an address book id"))
}

fn fields(f: Vec<WebFormFieldInput>) -> Vec<FieldSpec> {
    f.into_iter().map(|f| FieldSpec { field: f.field.into(), required: f.required }).collect()
}

#[derive(Default)]
pub struct ConsentMutation;

#[Object]
impl ConsentMutation {
    /// Adds the next version of a consent wording (admin). Texts never change once written.
    async fn create_consent_text(
        &self,
        ctx: &Context<'_>,
        input: CreateConsentTextInput,
    ) -> async_graphql::Result<ConsentTextPayload> {
        let t = data(ctx)?
            .create_consent_text(ConsentTextInput {
                purpose: input.purpose,
                language: input.language,
                body: input.body,
            })
            .await
            .map_err(ApiError::from)?;
        Ok(ConsentTextPayload { consent_text: ConsentText(t) })
    }

    /// Creates a web form (admin, or MANAGE on the intake address book and WRITE on the home book
    /// of every group offered).
    async fn create_web_form(
        &self,
        ctx: &Context<'_>,
        input: CreateWebFormInput,
    ) -> async_graphql::Result<WebFormPayload> {
        let i = WebFormInput {
            name: input.name,
            intake_book_id: book_id(&input.intake_address_book_id)?,
            group_ids: input.group_ids.iter().map(|g| gid(g, "groupIds")).collect::<Result<_, _>>()?,
            consent_text_id: text_id(&input.consent_text_id)?,
            double_opt_in: input.double_opt_in,
            keep_evidence: input.keep_evidence,
            fields: fields(input.fields),
            origins: input.allowed_origins,
            title: input.title,
            submit_label: input.submit_label,
            success_url: input.success_url,
            confirmation_url: input.confirmation_url,
            enabled: input.enabled,
        };
        let f = data(ctx)?.create_web_form(i).await.map_err(ApiError::from)?;
        Ok(WebFormPayload { web_form: WebForm(f) })
    }

    /// Changes a web form; a change to its definition adds a version.
    async fn update_web_form(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebFormInput,
    ) -> async_graphql::Result<WebFormPayload> {
        let id = WebFormId(ids::decode(WebFormId::TAG, &input.id)?);
        let p = WebFormPatch {
            name: input.name,
            enabled: input.enabled,
            intake_book_id: input.intake_address_book_id.as_ref().map(book_id).transpose()?,
            group_ids: input
                .group_ids
                .map(|gs| gs.iter().map(|g| gid(g, "groupIds")).collect::<Result<Vec<_>, _>>())
                .transpose()?,
            consent_text_id: input.consent_text_id.as_ref().map(text_id).transpose()?,
            double_opt_in: input.double_opt_in,
            keep_evidence: input.keep_evidence,
            fields: input.fields.map(fields),
            origins: input.allowed_origins,
            title: patch(input.title),
            submit_label: patch(input.submit_label),
            success_url: patch(input.success_url),
            confirmation_url: patch(input.confirmation_url),
        };
        let f = data(ctx)?.update_web_form(id, p).await.map_err(ApiError::from)?;
        Ok(WebFormPayload { web_form: WebForm(f) })
    }

    /// Records consent an agent took on the contact's behalf (by phone, on paper), or its
    /// withdrawal: WRITE on the contact's address book and on the group's home book; the group
    /// must be public. Giving adds the membership, withdrawing ends it.
    async fn record_consent(
        &self,
        ctx: &Context<'_>,
        input: RecordConsentInput,
    ) -> async_graphql::Result<RecordConsentPayload> {
        let i = cohort_store::RecordConsentInput {
            contact_id: ContactId(ids::decode(ContactId::TAG, &input.contact_id)?),
            group_id: gid(&input.group_id, "groupId")?,
            action: match input.action {
                RecordedConsentAction::Given => DAction::Given,
                RecordedConsentAction::Withdrawn => DAction::Withdrawn,
            },
            text_id: input.consent_text_id.as_ref().map(text_id).transpose()?,
            note: input.note,
        };
        let e = data(ctx)?.record_consent(i).await.map_err(ApiError::from)?;
        Ok(RecordConsentPayload { entry: ConsentEntry(e) })
    }

    /// Sets the tenant's public name (admin).
    async fn set_public_profile(
        &self,
        ctx: &Context<'_>,
        input: SetPublicProfileInput,
    ) -> async_graphql::Result<SetPublicProfilePayload> {
        let n = data(ctx)?.set_public_profile(input.public_name).await.map_err(ApiError::from)?;
        Ok(SetPublicProfilePayload { public_name: n })
    }
}
