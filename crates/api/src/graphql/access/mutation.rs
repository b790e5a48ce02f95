//! Mutations of the access area: users, user groups, address books and grants.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use cohort_domain::ids::{AddressBookId, UserGroupId, UserId};
use cohort_store::Principal;

/// The input of `createUser`.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// The subject (`sub`) the user's tokens will carry.
    pub subject: String,
    /// Display name; `null` to leave it to the token's `name` claim.
    pub name: Option<String>,
    /// E-mail address; `null` to leave it to the token's `email` claim.
    pub email: Option<String>,
}
/// The result of `createUser`.
#[derive(SimpleObject)]
pub struct CreateUserPayload {
    /// The new user.
    pub user: User,
}

/// The input of `createUserGroup`.
#[derive(InputObject)]
pub struct CreateUserGroupInput {
    /// The group's name (1 to 200 characters, unique in the tenant).
    pub name: String,
    /// What the team is for (optional).
    pub description: Option<String>,
}
/// The result of `createUserGroup`.
#[derive(SimpleObject)]
pub struct CreateUserGroupPayload {
    /// The new user group.
    pub user_group: UserGroup,
}

/// The input of `addUserGroupMembers`.
#[derive(InputObject)]
pub struct AddUserGroupMembersInput {
    /// The user group to add to.
    pub user_group_id: ID,
    /// The users to add; users already in the group are left as they are.
    pub user_ids: Vec<ID>,
}
/// The result of `addUserGroupMembers`.
#[derive(SimpleObject)]
pub struct AddUserGroupMembersPayload {
    /// The user group, after the change.
    pub user_group: UserGroup,
    /// Memberships that did not exist before.
    pub added_count: i32,
}

/// The input of `removeUserGroupMembers`.
#[derive(InputObject)]
pub struct RemoveUserGroupMembersInput {
    /// The user group to remove from.
    pub user_group_id: ID,
    /// The users to remove; users not in the group are ignored.
    pub user_ids: Vec<ID>,
}
/// The result of `removeUserGroupMembers`.
#[derive(SimpleObject)]
pub struct RemoveUserGroupMembersPayload {
    /// The user group, after the change.
    pub user_group: UserGroup,
    /// Memberships that existed and were removed.
    pub removed_count: i32,
}

/// The input of `createAddressBook`.
#[derive(InputObject)]
pub struct CreateAddressBookInput {
    /// The book's name (1 to 200 characters, unique in the tenant).
    pub name: String,
    /// What the book is for (optional).
    pub description: Option<String>,
}
/// The result of `createAddressBook`.
#[derive(SimpleObject)]
pub struct CreateAddressBookPayload {
    /// The new address book.
    pub address_book: AddressBook,
}

/// Exactly one of `userId` and `userGroupId`.
#[derive(InputObject)]
pub struct GrantAddressBookAccessInput {
    /// The address book to grant access to.
    pub address_book_id: ID,
    /// The user to grant access to (or give `userGroupId`).
    pub user_id: Option<ID>,
    /// The user group to grant access to: every member gets the level (or give `userId`).
    pub user_group_id: Option<ID>,
    /// The access to give; replaces the level of an existing grant to the same holder.
    pub level: AccessLevel,
}
/// The result of `grantAddressBookAccess`.
#[derive(SimpleObject)]
pub struct GrantAddressBookAccessPayload {
    /// The grant as it now stands.
    pub grant: AddressBookGrant,
}

/// Exactly one of `userId` and `userGroupId`.
#[derive(InputObject)]
pub struct RevokeAddressBookAccessInput {
    /// The address book to revoke access to.
    pub address_book_id: ID,
    /// The user whose grant to remove (or give `userGroupId`).
    pub user_id: Option<ID>,
    /// The user group whose grant to remove (or give `userId`).
    pub user_group_id: Option<ID>,
}
/// The result of `revokeAddressBookAccess`.
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
