//! Queries of the groups area.

use crate::error::ApiError;
use crate::graphql::groups::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader, viewer};
use async_graphql::{Context, ID, InputObject, Object};
use cohort_domain::ids::GroupId;
use cohort_store::GroupFilter;

/// Which groups to list. All conditions combine with AND; only visible groups ever match.
#[derive(InputObject, Default)]
pub struct GroupFilterInput {
    /// Only direct subgroups of this group.
    pub parent_id: Option<ID>,
    /// Only groups without a parent.
    #[graphql(default)]
    pub roots_only: bool,
    /// Case-insensitive prefix of the group's name.
    pub search: Option<String>,
    /// Only public groups (`true`: with a public name) or only private ones (`false`).
    pub is_public: Option<bool>,
}

#[derive(Default)]
pub struct GroupQuery;

#[Object]
impl GroupQuery {
    /// One group; `NOT_FOUND` if the viewer cannot see it (exactly as for one that never existed).
    async fn group(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Group> {
        viewer(ctx)?;
        let id = GroupId(ids::decode(GroupId::TAG, &id)?);
        // The common `group(id) { members { … } }`: the group and the page in one statement.
        if let Some(found) = crate::graphql::groups::object::group_with_members(ctx, id).await? {
            return found.map(Group).ok_or_else(|| ApiError::NotFound.into());
        }
        loader(ctx)?.load_one(id).await?.map(Group).ok_or_else(|| ApiError::NotFound.into())
    }

    /// Groups the viewer can see, by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<GroupFilterInput>,
    ) -> async_graphql::Result<GroupConnection> {
        let f = filter.unwrap_or_default();
        let filter = GroupFilter {
            parent_id: f.parent_id.as_ref().map(|p| ids::decode(GroupId::TAG, p).map(GroupId)).transpose()?,
            roots_only: f.roots_only,
            search: f.search,
            is_public: f.is_public,
        };
        let p = data(ctx)?.groups(&filter, &page_req(first, after)?).await.map_err(ApiError::from)?;
        Ok(GroupConnection::from_page(p, CountSource::Groups(filter)))
    }
}
