//! Setting and removing external ids. Each needs what updating the object needs: WRITE on a
//! contact's address book, MANAGE on a group's home book, admin for products and price lists.

use crate::error::ApiError;
use crate::graphql::contacts::Contact;
use crate::graphql::groups::Group;
use crate::graphql::node::Node;
use crate::graphql::pricing::{PriceList, Product};
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use cohort_domain::ids::{ContactId, GroupId, PriceListId, ProductId};
use cohort_store::ExternalTarget;

/// The input of `setExternalId`.
#[derive(InputObject)]
pub struct SetExternalIdInput {
    /// The contact, group, product or price list to give the id.
    pub node_id: ID,
    /// The source system (`erp`): 1 to 64 characters, `a-z` or `0-9` first, then also `.`, `_`
    /// and `-`.
    pub system: String,
    /// The source system's id (trimmed; 1 to 200 characters). An id another object of the same
    /// type holds for this system is `CONFLICT`; the object's own id again changes nothing.
    pub id: String,
}

/// The input of `removeExternalId`.
#[derive(InputObject)]
pub struct RemoveExternalIdInput {
    /// The contact, group, product or price list.
    pub node_id: ID,
    /// The source system whose id to remove (removing one that is not set changes nothing).
    pub system: String,
}

/// The result of `setExternalId` and `removeExternalId`.
#[derive(SimpleObject)]
pub struct ExternalIdPayload {
    /// The object after the change.
    pub node: Node,
}

/// The object a `nodeId` names. Ids of other types are refused; ids that do not decode are
/// `NOT_FOUND`, like every unknown id.
fn target(node_id: &ID) -> Result<ExternalTarget, ApiError> {
    let (tag, uuid) = ids::decode_any(node_id.as_str()).ok_or(ApiError::NotFound)?;
    Ok(match tag.as_str() {
        ContactId::TAG => ExternalTarget::Contact(ContactId(uuid)),
        GroupId::TAG => ExternalTarget::Group(GroupId(uuid)),
        ProductId::TAG => ExternalTarget::Product(ProductId(uuid)),
        PriceListId::TAG => ExternalTarget::PriceList(PriceListId(uuid)),
        _ => {
            return Err(ApiError::bad_input(
                "nodeId",
                "external ids are for contacts, groups, products and price lists",
            ));
        }
    })
}

/// The object after a change, read again through the viewer's handle.
async fn reload(ctx: &Context<'_>, t: ExternalTarget) -> async_graphql::Result<Node> {
    let d = data(ctx)?;
    let node = match t {
        ExternalTarget::Contact(id) => {
            d.contacts_by_ids(&[id]).await.map_err(ApiError::from)?.pop().map(|c| Node::Contact(Contact(c)))
        }
        ExternalTarget::Group(id) => {
            d.groups_by_ids(&[id]).await.map_err(ApiError::from)?.pop().map(|g| Node::Group(Group(g)))
        }
        ExternalTarget::Product(id) => {
            d.products_by_ids(&[id]).await.map_err(ApiError::from)?.pop().map(|p| Node::Product(Product(p)))
        }
        ExternalTarget::PriceList(id) => {
            d.price_lists_by_ids(&[id]).await.map_err(ApiError::from)?.pop().map(|l| Node::PriceList(PriceList(l)))
        }
    };
    node.ok_or_else(|| ApiError::NotFound.into())
}

#[derive(Default)]
pub struct ExternalIdMutation;

#[Object]
impl ExternalIdMutation {
    /// Gives a contact, group, product or price list its id in a source system (replacing the
    /// one it had for that system). Needs what updating the object needs. `CONFLICT` when another
    /// object of the type holds the id for the system (the answer does not say which).
    async fn set_external_id(
        &self,
        ctx: &Context<'_>,
        input: SetExternalIdInput,
    ) -> async_graphql::Result<ExternalIdPayload> {
        let t = target(&input.node_id)?;
        data(ctx)?.set_external_id(t, &input.system, &input.id).await.map_err(ApiError::from)?;
        Ok(ExternalIdPayload { node: reload(ctx, t).await? })
    }

    /// Removes an object's id in one source system. Needs what updating the object needs.
    async fn remove_external_id(
        &self,
        ctx: &Context<'_>,
        input: RemoveExternalIdInput,
    ) -> async_graphql::Result<ExternalIdPayload> {
        let t = target(&input.node_id)?;
        data(ctx)?.remove_external_id(t, &input.system).await.map_err(ApiError::from)?;
        Ok(ExternalIdPayload { node: reload(ctx, t).await? })
    }
}
