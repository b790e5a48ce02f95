//! Mutations of the groups area: hierarchy and members.

use crate::error::ApiError;
use crate::graphql::groups::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use cohort_domain::ids::{AddressBookId, ContactId, GroupId};
use cohort_store::{GroupInput, GroupPatch, SubgroupPolicy};

/// The input of `createGroup`.
#[derive(InputObject)]
pub struct CreateGroupInput {
    /// The home address book (needs MANAGE there).
    pub address_book_id: ID,
    /// The group's name (1 to 200 characters).
    pub name: String,
    /// What the group is for (optional).
    pub description: Option<String>,
    /// The parent group (needs MANAGE on its home book too).
    pub parent_id: Option<ID>,
    /// Decides between a contact's groups where one must win (routing, price-list ties): smaller
    /// first; default 0.
    #[graphql(default)]
    pub precedence: i32,
    /// Setting a public name makes the group public.
    pub public_name: Option<String>,
    /// The description shown on the public pages (public groups).
    pub public_description: Option<String>,
    /// Ids in source systems (ERP, webshop) to give the group, one per system; written in the same
    /// transaction (an id another group holds makes the whole create `CONFLICT`).
    pub external_ids: Option<Vec<crate::graphql::external::ExternalIdInput>>,
}

/// The result of `createGroup`.
#[derive(SimpleObject)]
pub struct CreateGroupPayload {
    /// The new group.
    pub group: Group,
}

/// Omitted fields stay as they are; `null` clears an optional field.
#[derive(InputObject)]
pub struct UpdateGroupInput {
    /// The group to change (needs MANAGE on its home book).
    pub id: ID,
    /// Re-home the group (needs MANAGE on both books).
    pub address_book_id: Option<ID>,
    /// A new name.
    pub name: Option<String>,
    /// What the group is for (`null` clears it).
    pub description: MaybeUndefined<String>,
    /// A new precedence (smaller wins between a contact's groups).
    pub precedence: Option<i32>,
    /// The name shown on public pages; setting one makes the group public, `null` makes it private.
    pub public_name: MaybeUndefined<String>,
    /// The description shown on public pages (`null` clears it).
    pub public_description: MaybeUndefined<String>,
}

/// The result of `updateGroup`.
#[derive(SimpleObject)]
pub struct UpdateGroupPayload {
    /// The group after the change.
    pub group: Group,
}

/// The input of `moveGroup`: a new place in the hierarchy (MANAGE on the group and on the new
/// parent).
#[derive(InputObject)]
pub struct MoveGroupInput {
    /// The group to move; its subgroups move with it.
    pub id: ID,
    /// The new parent; `null` makes the group a root. Cycles are refused.
    pub parent_id: Option<ID>,
}

/// The result of `moveGroup`.
#[derive(SimpleObject)]
pub struct MoveGroupPayload {
    /// The group at its new place.
    pub group: Group,
}

/// A group with subgroups is only deleted when the request says what happens to them.
#[derive(InputObject)]
pub struct DeleteGroupInput {
    /// The group to delete (needs MANAGE on its home book).
    pub id: ID,
    /// Move the subgroups under this group (`null`: make them roots).
    pub reparent_children_to_id: MaybeUndefined<ID>,
    /// The old name of `reparentChildrenToId`.
    #[graphql(deprecation = "Use `reparentChildrenToId` (the same group id, or `null`).")]
    pub reparent_children_to: MaybeUndefined<ID>,
    /// Delete the whole subtree (needs MANAGE on every subgroup).
    #[graphql(default)]
    pub delete_subgroups: bool,
}

/// The result of `deleteGroup`.
#[derive(SimpleObject)]
pub struct DeleteGroupPayload {
    /// The id of the group the request named.
    pub deleted_id: ID,
    /// The group and, with `deleteSubgroups`, every deleted subgroup.
    pub deleted_ids: Vec<ID>,
}

/// The input of `addGroupMembers`.
#[derive(InputObject)]
pub struct AddGroupMembersInput {
    /// The group to add to (needs WRITE on its home book).
    pub group_id: ID,
    /// Up to 10,000 contact ids.
    pub contact_ids: Vec<ID>,
    /// Default: API for integration tokens, ASSIGNED otherwise.
    pub source: Option<MembershipSource>,
    /// Replaying a request with the same key returns the first answer and changes nothing.
    pub idempotency_key: Option<String>,
}

/// The result of `addGroupMembers`.
#[derive(SimpleObject)]
pub struct AddGroupMembersPayload {
    /// The group after the change.
    pub group: Group,
    /// Contacts that became members.
    pub added_count: i32,
    /// Visible contacts that were members already (left as they were).
    pub already_member_count: i32,
    /// Ids that are unknown — or that you cannot see: the two are indistinguishable.
    pub not_found: Vec<ID>,
    /// Visible contacts that were not added because an e-mail address of theirs is on the
    /// suppression list (an erased person's address) and the group is public — adding them would
    /// re-subscribe the address without new consent — or because they were erased. Add them
    /// through recorded consent instead: `recordConsent` or a web form. (Adding them to a group
    /// without a public name is not affected.)
    pub suppressed: Vec<ID>,
}

/// The input of `removeGroupMembers`.
#[derive(InputObject)]
pub struct RemoveGroupMembersInput {
    /// The group to remove from (needs WRITE on its home book).
    pub group_id: ID,
    /// Up to 10,000 contact ids.
    pub contact_ids: Vec<ID>,
    /// Why (kept in the membership history).
    pub reason: Option<String>,
    /// Replaying a request with the same key returns the first answer and changes nothing.
    pub idempotency_key: Option<String>,
}

/// The result of `removeGroupMembers`.
#[derive(SimpleObject)]
pub struct RemoveGroupMembersPayload {
    /// The group after the change.
    pub group: Group,
    /// Memberships that existed and ended.
    pub removed_count: i32,
    /// Visible contacts that were not members.
    pub not_member_count: i32,
    /// Ids that are unknown — or that you cannot see: the two are indistinguishable.
    pub not_found: Vec<ID>,
}

fn group_id(id: &ID) -> Result<GroupId, ApiError> {
    Ok(GroupId(ids::decode(GroupId::TAG, id)?))
}

/// Splits client ids into decodable contact ids and the rest (which are simply not found), and
/// renders the final `notFound` list in the client's order, each id once.
fn contact_ids(input: &[ID]) -> Result<Vec<ContactId>, ApiError> {
    if input.len() > cohort_domain::group::MAX_BULK_IDS {
        return Err(ApiError::bad_input(
            "contactIds",
            format!("at most {} ids per call", cohort_domain::group::MAX_BULK_IDS),
        ));
    }
    Ok(input.iter().filter_map(|i| ids::decode(ContactId::TAG, i).ok()).map(ContactId).collect())
}

/// The input ids (in the client's order, each once) that decode to one of `ids`.
fn among(input: &[ID], listed: &[ContactId]) -> Vec<ID> {
    let listed: std::collections::HashSet<uuid::Uuid> = listed.iter().map(|c| c.0).collect();
    let mut seen = std::collections::HashSet::new();
    input
        .iter()
        .filter(|i| ids::decode(ContactId::TAG, i).is_ok_and(|u| listed.contains(&u)))
        .filter(|i| seen.insert(i.as_str().to_owned()))
        .cloned()
        .collect()
}

fn not_found(input: &[ID], missing: &[ContactId]) -> Vec<ID> {
    let missing: std::collections::HashSet<uuid::Uuid> = missing.iter().map(|c| c.0).collect();
    let mut seen = std::collections::HashSet::new();
    input
        .iter()
        .filter(|i| match ids::decode(ContactId::TAG, i) {
            Ok(u) => missing.contains(&u),
            Err(_) => true,
        })
        .filter(|i| seen.insert(i.as_str().to_owned()))
        .cloned()
        .collect()
}

async fn reload(ctx: &Context<'_>, id: GroupId) -> async_graphql::Result<Group> {
    let g = data(ctx)?.groups_by_ids(&[id]).await.map_err(ApiError::from)?;
    g.into_iter().next().map(Group).ok_or_else(|| ApiError::NotFound.into())
}

#[derive(Default)]
pub struct GroupMutation;

#[Object]
impl GroupMutation {
    /// Creates a group (MANAGE on its home book, and on the parent's if it has one).
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        input: CreateGroupInput,
    ) -> async_graphql::Result<CreateGroupPayload> {
        let external = crate::graphql::external::external_inputs(input.external_ids);
        let g = data(ctx)?
            .create_group_with_external_ids(
                GroupInput {
                    address_book_id: AddressBookId(ids::decode(AddressBookId::TAG, &input.address_book_id)?),
                    parent_id: input.parent_id.as_ref().map(group_id).transpose()?,
                    name: input.name,
                    description: input.description,
                    precedence: input.precedence,
                    public_name: input.public_name,
                    public_description: input.public_description,
                },
                &external,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(CreateGroupPayload { group: Group(g) })
    }

    /// Changes a group's settings (MANAGE on its home book).
    async fn update_group(
        &self,
        ctx: &Context<'_>,
        input: UpdateGroupInput,
    ) -> async_graphql::Result<UpdateGroupPayload> {
        let id = group_id(&input.id)?;
        let patch = GroupPatch {
            address_book_id: input
                .address_book_id
                .as_ref()
                .map(|b| ids::decode(AddressBookId::TAG, b).map(AddressBookId))
                .transpose()?,
            name: input.name,
            description: crate::graphql::patch(input.description),
            precedence: input.precedence,
            public_name: crate::graphql::patch(input.public_name),
            public_description: crate::graphql::patch(input.public_description),
        };
        let g = data(ctx)?.update_group(id, patch).await.map_err(ApiError::from)?;
        Ok(UpdateGroupPayload { group: Group(g) })
    }

    /// Moves a group and its subtree; memberships stay.
    async fn move_group(&self, ctx: &Context<'_>, input: MoveGroupInput) -> async_graphql::Result<MoveGroupPayload> {
        let id = group_id(&input.id)?;
        let parent = input.parent_id.as_ref().map(group_id).transpose()?;
        let g = data(ctx)?.move_group(id, parent).await.map_err(ApiError::from)?;
        Ok(MoveGroupPayload { group: Group(g) })
    }

    /// Deletes a group; its memberships end with history entries.
    async fn delete_group(
        &self,
        ctx: &Context<'_>,
        input: DeleteGroupInput,
    ) -> async_graphql::Result<DeleteGroupPayload> {
        let id = group_id(&input.id)?;
        let reparent = ids::renamed_patch(
            input.reparent_children_to_id,
            "reparentChildrenToId",
            input.reparent_children_to,
            "reparentChildrenTo",
        )?;
        let policy = match (crate::graphql::patch(reparent), input.delete_subgroups) {
            (Some(_), true) => {
                return Err(ApiError::bad_input(
                    "deleteSubgroups",
                    "give either reparentChildrenToId or deleteSubgroups",
                )
                .into());
            }
            (Some(target), false) => SubgroupPolicy::ReparentTo(target.as_ref().map(group_id).transpose()?),
            (None, true) => SubgroupPolicy::Delete,
            (None, false) => SubgroupPolicy::Refuse,
        };
        let deleted = data(ctx)?.delete_group(id, policy).await.map_err(ApiError::from)?;
        Ok(DeleteGroupPayload {
            deleted_id: input.id,
            deleted_ids: deleted.into_iter().map(|g| ids::encode(GroupId::TAG, g.0)).collect(),
        })
    }

    /// Adds up to 10,000 contacts to a group in one transaction (WRITE on the group's home book).
    /// Into a public group, contacts whose address is on the suppression list are not added
    /// (see `suppressed`): they subscribe again only through new consent.
    async fn add_group_members(
        &self,
        ctx: &Context<'_>,
        input: AddGroupMembersInput,
    ) -> async_graphql::Result<AddGroupMembersPayload> {
        let gid = group_id(&input.group_id)?;
        let wanted = contact_ids(&input.contact_ids)?;
        let out = data(ctx)?
            .add_group_members(gid, &wanted, input.source.map(Into::into), input.idempotency_key.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(AddGroupMembersPayload {
            group: reload(ctx, gid).await?,
            added_count: out.added as i32,
            already_member_count: out.already_members as i32,
            not_found: not_found(&input.contact_ids, &out.not_found),
            suppressed: among(&input.contact_ids, &out.suppressed),
        })
    }

    /// Removes up to 10,000 contacts from a group in one transaction.
    async fn remove_group_members(
        &self,
        ctx: &Context<'_>,
        input: RemoveGroupMembersInput,
    ) -> async_graphql::Result<RemoveGroupMembersPayload> {
        let gid = group_id(&input.group_id)?;
        let wanted = contact_ids(&input.contact_ids)?;
        let out = data(ctx)?
            .remove_group_members(gid, &wanted, input.reason.as_deref(), input.idempotency_key.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(RemoveGroupMembersPayload {
            group: reload(ctx, gid).await?,
            removed_count: out.removed as i32,
            not_member_count: out.not_members as i32,
            not_found: not_found(&input.contact_ids, &out.not_found),
        })
    }
}
