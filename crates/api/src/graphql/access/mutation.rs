//! Mutations of the access area: users, user groups, address books and grants.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use cohort_domain::ids::{AddressBookId, UserGroupId, UserId};
use cohort_store::Principal;

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

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
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
}
