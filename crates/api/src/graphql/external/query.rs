//! Lookups by external id: `null` when no object has the id *or* the viewer cannot see the one
//! that has it — the two answers are identical (hidden ≡ nonexistent).

use crate::error::ApiError;
use crate::graphql::contacts::Contact;
use crate::graphql::data;
use crate::graphql::groups::Group;
use crate::graphql::pricing::{PriceList, Product};
use async_graphql::{Context, Object};

#[derive(Default)]
pub struct ExternalIdQuery;

#[Object]
impl ExternalIdQuery {
    /// The contact a source system knows by `id`; `null` if there is none or you cannot see it.
    async fn contact_by_external_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The source system (`erp`).")] system: String,
        #[graphql(desc = "The source system's id of the contact.")] id: String,
    ) -> async_graphql::Result<Option<Contact>> {
        Ok(data(ctx)?.contact_by_external_id(&system, &id).await.map_err(ApiError::from)?.map(Contact))
    }

    /// The group a source system knows by `id`; `null` if there is none or you cannot see it.
    async fn group_by_external_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The source system (`erp`).")] system: String,
        #[graphql(desc = "The source system's id of the group.")] id: String,
    ) -> async_graphql::Result<Option<Group>> {
        Ok(data(ctx)?.group_by_external_id(&system, &id).await.map_err(ApiError::from)?.map(Group))
    }

    /// The product a source system knows by `id`; `null` if there is none.
    async fn product_by_external_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The source system (`erp`).")] system: String,
        #[graphql(desc = "The source system's id of the product.")] id: String,
    ) -> async_graphql::Result<Option<Product>> {
        Ok(data(ctx)?.product_by_external_id(&system, &id).await.map_err(ApiError::from)?.map(Product))
    }

    /// The price list a source system knows by `id` (admins); `null` if there is none, and for
    /// everyone else.
    async fn price_list_by_external_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The source system (`erp`).")] system: String,
        #[graphql(desc = "The source system's id of the price list.")] id: String,
    ) -> async_graphql::Result<Option<PriceList>> {
        Ok(data(ctx)?.price_list_by_external_id(&system, &id).await.map_err(ApiError::from)?.map(PriceList))
    }
}
