//! Queries of the access area: the viewer, address books, users and user groups.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::relay::CountSource;
use crate::graphql::{data, ids, loader, viewer};
use async_graphql::{Context, ID, Object};
use cohort_domain::ids::AddressBookId;
use cohort_store::PageRequest;

#[derive(Default)]
pub struct AccessQuery;

#[Object]
impl AccessQuery {
    /// The authenticated caller.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<ViewerInfo> {
        viewer(ctx)?;
        Ok(ViewerInfo)
    }

    /// Address books the viewer can see, by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn address_books(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AddressBookConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let p = data(ctx)?.address_books(&page).await.map_err(ApiError::from)?;
        Ok(AddressBookConnection::from_page(p, CountSource::AddressBooks))
    }

    /// One address book; `NOT_FOUND` if the viewer cannot see it.
    async fn address_book(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<AddressBook> {
        viewer(ctx)?;
        let id = AddressBookId(ids::decode(AddressBookId::TAG, &id)?);
        loader(ctx)?.load_one(id).await?.map(AddressBook).ok_or_else(|| ApiError::NotFound.into())
    }

    /// All users of the tenant (admin).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let p = data(ctx)?.users(&page).await.map_err(ApiError::from)?;
        Ok(UserConnection::from_page(p, CountSource::Users))
    }

    /// User groups: all of them for admins, one's own for everyone else.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn user_groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserGroupConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let p = data(ctx)?.user_groups(&page).await.map_err(ApiError::from)?;
        Ok(UserGroupConnection::from_page(p, CountSource::UserGroups))
    }
}
