//! Root mutations. Inputs are `<Mutation>Input` objects, results `<Mutation>Payload`s. Each
//! mutation is one store transaction: it either happens completely or not at all.

use super::types::*;
use super::{data, ids};
use crate::error::ApiError;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use cohort_domain::contact::ContactFields;
use cohort_domain::ids::{AddressBookId, ContactId, UserGroupId, UserId};
use cohort_store::{ContactInput, ContactPatch, Principal};

#[derive(Default)]
pub struct CoreMutation;

#[derive(InputObject)]
pub struct CreateUserInput {
    /// The subject (`sub`) the user's tokens will carry.
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
}
#[derive(SimpleObject)]
pub struct CreateUserPayload {
    pub user: User,
}

#[derive(InputObject)]
pub struct CreateUserGroupInput {
    pub name: String,
    pub description: Option<String>,
}
#[derive(SimpleObject)]
pub struct CreateUserGroupPayload {
    pub user_group: UserGroup,
}

#[derive(InputObject)]
pub struct AddUserGroupMembersInput {
    pub user_group_id: ID,
    pub user_ids: Vec<ID>,
}
#[derive(SimpleObject)]
pub struct AddUserGroupMembersPayload {
    pub user_group: UserGroup,
    /// Memberships that did not exist before.
    pub added_count: i32,
}

#[derive(InputObject)]
pub struct RemoveUserGroupMembersInput {
    pub user_group_id: ID,
    pub user_ids: Vec<ID>,
}
#[derive(SimpleObject)]
pub struct RemoveUserGroupMembersPayload {
    pub user_group: UserGroup,
    pub removed_count: i32,
}

#[derive(InputObject)]
pub struct CreateAddressBookInput {
    pub name: String,
    pub description: Option<String>,
}
#[derive(SimpleObject)]
pub struct CreateAddressBookPayload {
    pub address_book: AddressBook,
}

/// Exactly one of `userId` and `userGroupId`.
#[derive(InputObject)]
pub struct GrantAddressBookAccessInput {
    pub address_book_id: ID,
    pub user_id: Option<ID>,
    pub user_group_id: Option<ID>,
    pub level: AccessLevel,
}
#[derive(SimpleObject)]
pub struct GrantAddressBookAccessPayload {
    pub grant: AddressBookGrant,
}

/// Exactly one of `userId` and `userGroupId`.
#[derive(InputObject)]
pub struct RevokeAddressBookAccessInput {
    pub address_book_id: ID,
    pub user_id: Option<ID>,
    pub user_group_id: Option<ID>,
}
#[derive(SimpleObject)]
pub struct RevokeAddressBookAccessPayload {
    /// Whether a grant existed and was removed.
    pub revoked: bool,
}

#[derive(InputObject, Clone)]
pub struct EmailInput {
    pub address: String,
    pub label: Option<String>,
}

#[derive(InputObject, Clone)]
pub struct PhoneInput {
    pub number: String,
    pub label: Option<String>,
}

#[derive(InputObject)]
pub struct CreateContactInput {
    pub address_book_id: ID,
    pub kind: ContactKind,
    /// Persons: first and/or last name.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Companies: the company's name.
    pub company_name: Option<String>,
    #[graphql(default)]
    pub emails: Vec<EmailInput>,
    #[graphql(default)]
    pub phones: Vec<PhoneInput>,
    /// A person's company (a company contact the viewer can see).
    pub company_id: Option<ID>,
    /// A business-status key, e.g. `lead_warm`.
    pub business_status: Option<String>,
}
#[derive(SimpleObject)]
pub struct CreateContactPayload {
    pub contact: Contact,
}

/// Omitted fields stay as they are; `null` clears an optional field. `emails` / `phones`, when
/// given, replace the whole list.
#[derive(InputObject)]
pub struct UpdateContactInput {
    pub id: ID,
    /// Move the contact to another book (needs WRITE on both).
    pub address_book_id: Option<ID>,
    pub first_name: MaybeUndefined<String>,
    pub last_name: MaybeUndefined<String>,
    pub company_name: MaybeUndefined<String>,
    pub emails: Option<Vec<EmailInput>>,
    pub phones: Option<Vec<PhoneInput>>,
    pub company_id: MaybeUndefined<ID>,
}
#[derive(SimpleObject)]
pub struct UpdateContactPayload {
    pub contact: Contact,
}

#[derive(InputObject)]
pub struct DeleteContactInput {
    pub id: ID,
}
#[derive(SimpleObject)]
pub struct DeleteContactPayload {
    pub deleted_id: ID,
}

#[derive(InputObject)]
pub struct SetContactBusinessStatusInput {
    pub contact_id: ID,
    /// A business-status key; `null` clears the status.
    pub status: Option<String>,
    /// Why (kept in the status history).
    pub note: Option<String>,
}
#[derive(SimpleObject)]
pub struct SetContactBusinessStatusPayload {
    pub contact: Contact,
}

fn principal(user: Option<ID>, group: Option<ID>) -> Result<Principal, ApiError> {
    match (user, group) {
        (Some(u), None) => Ok(Principal::User(UserId(ids::decode(UserId::TAG, &u)?))),
        (None, Some(g)) => Ok(Principal::UserGroup(UserGroupId(ids::decode(UserGroupId::TAG, &g)?))),
        _ => Err(ApiError::bad_input("userId", "give exactly one of userId and userGroupId")),
    }
}

fn user_ids(ids_in: &[ID]) -> Result<Vec<UserId>, ApiError> {
    Ok(ids::decode_all(UserId::TAG, ids_in)?.into_iter().map(UserId).collect())
}

fn channels_e(v: Vec<EmailInput>) -> Vec<(String, Option<String>)> {
    v.into_iter().map(|e| (e.address, e.label)).collect()
}

fn channels_p(v: Vec<PhoneInput>) -> Vec<(String, Option<String>)> {
    v.into_iter().map(|p| (p.number, p.label)).collect()
}

#[Object]
impl CoreMutation {
    /// Pre-creates a user so they can be granted access before first login (admin).
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> async_graphql::Result<CreateUserPayload> {
        let u = data(ctx)?
            .create_user(&input.subject, input.name.as_deref(), input.email.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(CreateUserPayload { user: User(u) })
    }

    /// Creates a team of users (admin).
    async fn create_user_group(
        &self,
        ctx: &Context<'_>,
        input: CreateUserGroupInput,
    ) -> async_graphql::Result<CreateUserGroupPayload> {
        let g =
            data(ctx)?.create_user_group(&input.name, input.description.as_deref()).await.map_err(ApiError::from)?;
        Ok(CreateUserGroupPayload { user_group: UserGroup(g) })
    }

    /// Adds users to a user group (admin). Any unknown user id fails the whole call.
    async fn add_user_group_members(
        &self,
        ctx: &Context<'_>,
        input: AddUserGroupMembersInput,
    ) -> async_graphql::Result<AddUserGroupMembersPayload> {
        let s = data(ctx)?;
        let gid = UserGroupId(ids::decode(UserGroupId::TAG, &input.user_group_id)?);
        let added = s.add_user_group_members(gid, &user_ids(&input.user_ids)?).await.map_err(ApiError::from)?;
        let g = s.user_groups_by_ids(&[gid]).await.map_err(ApiError::from)?.pop().ok_or(ApiError::NotFound)?;
        Ok(AddUserGroupMembersPayload { user_group: UserGroup(g), added_count: added as i32 })
    }

    /// Removes users from a user group (admin).
    async fn remove_user_group_members(
        &self,
        ctx: &Context<'_>,
        input: RemoveUserGroupMembersInput,
    ) -> async_graphql::Result<RemoveUserGroupMembersPayload> {
        let s = data(ctx)?;
        let gid = UserGroupId(ids::decode(UserGroupId::TAG, &input.user_group_id)?);
        let removed = s.remove_user_group_members(gid, &user_ids(&input.user_ids)?).await.map_err(ApiError::from)?;
        let g = s.user_groups_by_ids(&[gid]).await.map_err(ApiError::from)?.pop().ok_or(ApiError::NotFound)?;
        Ok(RemoveUserGroupMembersPayload { user_group: UserGroup(g), removed_count: removed as i32 })
    }

    /// Creates an address book (admin).
    async fn create_address_book(
        &self,
        ctx: &Context<'_>,
        input: CreateAddressBookInput,
    ) -> async_graphql::Result<CreateAddressBookPayload> {
        let b =
            data(ctx)?.create_address_book(&input.name, input.description.as_deref()).await.map_err(ApiError::from)?;
        Ok(CreateAddressBookPayload { address_book: AddressBook(b) })
    }

    /// Grants a user or user group access to a book, replacing any previous level (needs MANAGE).
    async fn grant_address_book_access(
        &self,
        ctx: &Context<'_>,
        input: GrantAddressBookAccessInput,
    ) -> async_graphql::Result<GrantAddressBookAccessPayload> {
        let book = AddressBookId(ids::decode(AddressBookId::TAG, &input.address_book_id)?);
        let p = principal(input.user_id, input.user_group_id)?;
        let g = data(ctx)?.grant_access(book, p, input.level.into()).await.map_err(ApiError::from)?;
        Ok(GrantAddressBookAccessPayload { grant: AddressBookGrant(g) })
    }

    /// Revokes a grant (needs MANAGE). Takes effect on the holder's next request.
    async fn revoke_address_book_access(
        &self,
        ctx: &Context<'_>,
        input: RevokeAddressBookAccessInput,
    ) -> async_graphql::Result<RevokeAddressBookAccessPayload> {
        let book = AddressBookId(ids::decode(AddressBookId::TAG, &input.address_book_id)?);
        let p = principal(input.user_id, input.user_group_id)?;
        let revoked = data(ctx)?.revoke_access(book, p).await.map_err(ApiError::from)?;
        Ok(RevokeAddressBookAccessPayload { revoked })
    }

    /// Creates a contact in a book where the viewer has WRITE.
    async fn create_contact(
        &self,
        ctx: &Context<'_>,
        input: CreateContactInput,
    ) -> async_graphql::Result<CreateContactPayload> {
        let book = AddressBookId(ids::decode(AddressBookId::TAG, &input.address_book_id)?);
        let company_id =
            input.company_id.as_ref().map(|c| ids::decode(ContactId::TAG, c).map(ContactId)).transpose()?;
        let c = data(ctx)?
            .create_contact(ContactInput {
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
            })
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
        let company_id = match super::patch(input.company_id) {
            None => None,
            Some(None) => Some(None),
            Some(Some(c)) => Some(Some(ContactId(ids::decode(ContactId::TAG, &c)?))),
        };
        let patch = ContactPatch {
            address_book_id,
            first_name: super::patch(input.first_name),
            last_name: super::patch(input.last_name),
            company_name: super::patch(input.company_name),
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
