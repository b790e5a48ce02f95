//! Mutations of the contacts area.

use crate::error::ApiError;
use crate::graphql::contacts::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use cohort_domain::contact::ContactFields;
use cohort_domain::ids::{AddressBookId, ContactId};
use cohort_store::{ContactInput, ContactPatch};

/// An e-mail address to store on a contact.
#[derive(InputObject, Clone)]
pub struct EmailInput {
    /// The address (checked for a plausible form).
    pub address: String,
    /// What it is for (`work`, `private`), optional.
    pub label: Option<String>,
}

/// A phone number to store on a contact.
#[derive(InputObject, Clone)]
pub struct PhoneInput {
    /// The number, as the person gives it.
    pub number: String,
    /// What it is for (`mobile`, `office`), optional.
    pub label: Option<String>,
}

/// The input of `createContact`.
#[derive(InputObject)]
pub struct CreateContactInput {
    /// The address book to create the contact in (needs WRITE there).
    pub address_book_id: ID,
    /// Person or company.
    pub kind: ContactKind,
    /// Persons: first and/or last name.
    pub first_name: Option<String>,
    /// Persons: the last name.
    pub last_name: Option<String>,
    /// Companies: the company's name.
    pub company_name: Option<String>,
    /// E-mail addresses, in order.
    #[graphql(default)]
    pub emails: Vec<EmailInput>,
    /// Phone numbers, in order.
    #[graphql(default)]
    pub phones: Vec<PhoneInput>,
    /// A person's company (a company contact the viewer can see).
    pub company_id: Option<ID>,
    /// A business-status key, e.g. `lead_warm`.
    pub business_status: Option<String>,
    /// Ids in source systems (ERP, webshop) to give the contact, one per system; written in the same
    /// transaction (an id another contact holds makes the whole create `CONFLICT`).
    pub external_ids: Option<Vec<crate::graphql::external::ExternalIdInput>>,
}
/// The result of `createContact`.
#[derive(SimpleObject)]
pub struct CreateContactPayload {
    /// The new contact.
    pub contact: Contact,
}

/// Omitted fields stay as they are; `null` clears an optional field. `emails` / `phones`, when
/// given, replace the whole list.
#[derive(InputObject)]
pub struct UpdateContactInput {
    /// The contact to change (needs WRITE on its book).
    pub id: ID,
    /// Move the contact to another book (needs WRITE on both).
    pub address_book_id: Option<ID>,
    /// A person's first name (`null` clears it).
    pub first_name: MaybeUndefined<String>,
    /// A person's last name (`null` clears it).
    pub last_name: MaybeUndefined<String>,
    /// A company's name.
    pub company_name: MaybeUndefined<String>,
    /// All e-mail addresses, replacing the list.
    pub emails: Option<Vec<EmailInput>>,
    /// All phone numbers, replacing the list.
    pub phones: Option<Vec<PhoneInput>>,
    /// A person's company (a company contact the viewer can see); `null` clears it.
    pub company_id: MaybeUndefined<ID>,
}
/// The result of `updateContact`.
#[derive(SimpleObject)]
pub struct UpdateContactPayload {
    /// The contact after the change.
    pub contact: Contact,
}

/// The input of `deleteContact`.
#[derive(InputObject)]
pub struct DeleteContactInput {
    /// The contact to delete (needs WRITE on its book).
    pub id: ID,
}
/// The result of `deleteContact`.
#[derive(SimpleObject)]
pub struct DeleteContactPayload {
    /// The id of the deleted contact.
    pub deleted_id: ID,
}

/// Input of `eraseContact` (GDPR Art. 17, right to erasure).
#[derive(InputObject)]
pub struct EraseContactInput {
    /// The contact whose personal data is erased.
    pub contact_id: ID,
    /// Why (e.g. "Art. 17 request, ticket 4711"); kept in the audit log, so it must not contain
    /// the person's data. 1 to 500 characters.
    pub reason: String,
}

/// Result of `eraseContact`.
#[derive(SimpleObject)]
pub struct EraseContactPayload {
    /// The erased contact: a tombstone with placeholder names and no channels.
    pub contact: Contact,
    /// When the contact was erased (the first erasure; repeating it answers the same).
    pub erased_at: chrono::DateTime<chrono::Utc>,
}

/// The input of `setContactBusinessStatus`.
#[derive(InputObject)]
pub struct SetContactBusinessStatusInput {
    /// The contact whose status changes (needs WRITE on its book).
    pub contact_id: ID,
    /// A business-status key; `null` clears the status.
    pub status: Option<String>,
    /// Why (kept in the status history).
    pub note: Option<String>,
}
/// The result of `setContactBusinessStatus`.
#[derive(SimpleObject)]
pub struct SetContactBusinessStatusPayload {
    /// The contact after the change.
    pub contact: Contact,
}

fn channels_e(v: Vec<EmailInput>) -> Vec<(String, Option<String>)> {
    v.into_iter().map(|e| (e.address, e.label)).collect()
}

fn channels_p(v: Vec<PhoneInput>) -> Vec<(String, Option<String>)> {
    v.into_iter().map(|p| (p.number, p.label)).collect()
}

#[derive(Default)]
pub struct ContactMutation;

#[Object]
impl ContactMutation {
    /// Creates a contact in a book where the viewer has WRITE.
    async fn create_contact(
        &self,
        ctx: &Context<'_>,
        input: CreateContactInput,
    ) -> async_graphql::Result<CreateContactPayload> {
        let book = AddressBookId(ids::decode(AddressBookId::TAG, &input.address_book_id)?);
        let company_id =
            input.company_id.as_ref().map(|c| ids::decode(ContactId::TAG, c).map(ContactId)).transpose()?;
        let external = crate::graphql::external::external_inputs(input.external_ids);
        let c = data(ctx)?
            .create_contact_with_external_ids(
                ContactInput {
                    address_book_id: book,
                    kind: input.kind.into(),
                    fields: ContactFields {
                        first_name: input.first_name,
                        last_name: input.last_name,
                        company_name: input.company_name,
                        emails: channels_e(input.emails),
                        phones: channels_p(input.phones),
                    },
                    company_id,
                    business_status: input.business_status,
                },
                &external,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(CreateContactPayload { contact: Contact(c) })
    }

    /// Changes a contact the viewer can write.
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        input: UpdateContactInput,
    ) -> async_graphql::Result<UpdateContactPayload> {
        let id = ContactId(ids::decode(ContactId::TAG, &input.id)?);
        let address_book_id = input
            .address_book_id
            .as_ref()
            .map(|b| ids::decode(AddressBookId::TAG, b).map(AddressBookId))
            .transpose()?;
        let company_id = match crate::graphql::patch(input.company_id) {
            None => None,
            Some(None) => Some(None),
            Some(Some(c)) => Some(Some(ContactId(ids::decode(ContactId::TAG, &c)?))),
        };
        let patch = ContactPatch {
            address_book_id,
            first_name: crate::graphql::patch(input.first_name),
            last_name: crate::graphql::patch(input.last_name),
            company_name: crate::graphql::patch(input.company_name),
            emails: input.emails.map(channels_e),
            phones: input.phones.map(channels_p),
            company_id,
        };
        let c = data(ctx)?.update_contact(id, patch).await.map_err(ApiError::from)?;
        Ok(UpdateContactPayload { contact: Contact(c) })
    }

    /// Deletes a contact the viewer can write.
    async fn delete_contact(
        &self,
        ctx: &Context<'_>,
        input: DeleteContactInput,
    ) -> async_graphql::Result<DeleteContactPayload> {
        let id = ContactId(ids::decode(ContactId::TAG, &input.id)?);
        data(ctx)?.delete_contact(id).await.map_err(ApiError::from)?;
        Ok(DeleteContactPayload { deleted_id: input.id })
    }

    /// Erases a contact's personal data (GDPR Art. 17): names, channels, message and ticket
    /// texts, copies in stored payloads; ends memberships and enrolments; puts the e-mails'
    /// keyed hashes on the suppression list. Tenant admins or MANAGE on the contact's book.
    /// Idempotent. The contact remains as a tombstone (orders and history refer to it).
    async fn erase_contact(
        &self,
        ctx: &Context<'_>,
        input: EraseContactInput,
    ) -> async_graphql::Result<EraseContactPayload> {
        let id = ContactId(ids::decode(ContactId::TAG, &input.contact_id)?);
        // The suppression hashes are keyed with the public-link keys (see `LinkKeys::email_hashes`).
        let links = ctx
            .data_opt::<std::sync::Arc<cohort_store::PublicLinks>>()
            .ok_or_else(|| ApiError::Internal("public link keys missing from the schema data".into()))?;
        let e = data(ctx)?.erase_contact(id, &input.reason, &links.keys).await.map_err(ApiError::from)?;
        Ok(EraseContactPayload { contact: Contact(e.contact), erased_at: e.erased_at })
    }

    /// Sets or clears a contact's business status; every change is kept in its history.
    async fn set_contact_business_status(
        &self,
        ctx: &Context<'_>,
        input: SetContactBusinessStatusInput,
    ) -> async_graphql::Result<SetContactBusinessStatusPayload> {
        let id = ContactId(ids::decode(ContactId::TAG, &input.contact_id)?);
        let c = data(ctx)?
            .set_business_status(id, input.status.as_deref(), input.note.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(SetContactBusinessStatusPayload { contact: Contact(c) })
    }
}
