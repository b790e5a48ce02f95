//! Relay plumbing shared by every area: page info, the connection macro and what `totalCount`
//! counts.

use crate::error::ApiError;
use crate::graphql::data;
use async_graphql::{Context, SimpleObject};
use cohort_domain::ids::{ContactId, GroupId, WebhookEndpointId};
use cohort_store::{ContactFilter, EventFilter, GroupFilter, Page, PageRequest};

// Relay plumbing

/// Where a page lies in its whole list (Relay `PageInfo`).
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether rows follow this page: ask again with `after: endCursor`.
    pub has_next_page: bool,
    /// Whether rows precede this page (`true` whenever the page was asked for with `after`).
    pub has_previous_page: bool,
    /// The cursor of the page's first row; `null` for an empty page.
    pub start_cursor: Option<String>,
    /// The cursor of the page's last row, to pass as `after` for the next page; `null` for an
    /// empty page.
    pub end_cursor: Option<String>,
}

pub(crate) fn page_info<T>(p: &Page<T>) -> PageInfo {
    PageInfo {
        has_next_page: p.has_next_page,
        has_previous_page: p.has_previous_page,
        start_cursor: p.rows.first().map(|r| r.0.clone()),
        end_cursor: p.rows.last().map(|r| r.0.clone()),
    }
}

/// What a connection's `totalCount` counts: the list's arguments, kept until the field is
/// selected. Only then does the count run — in SQL, over the rows the viewer may see, exactly
/// as the list pages them (never by loading rows).
pub enum CountSource {
    Contacts(ContactFilter),
    StatusChanges(ContactId),
    AddressBooks,
    Users,
    UserGroups,
    Events(EventFilter),
    Groups(GroupFilter),
    GroupDescendants(GroupId),
    MembershipHistory { group: Option<GroupId>, contact: Option<ContactId> },
    ContactOrders(ContactId),
    GroupOrders { group: GroupId, include_subgroups: bool },
    Products { search: Option<String> },
    PriceLists,
    WebhookDeliveries(WebhookEndpointId),
}

impl CountSource {
    pub(crate) async fn total(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let d = data(ctx)?;
        let n = match self {
            CountSource::Contacts(f) => d.count_contacts(f).await,
            CountSource::StatusChanges(c) => d.status_history_count(*c).await,
            CountSource::AddressBooks => d.address_book_count().await,
            CountSource::Users => d.user_count().await,
            CountSource::UserGroups => d.user_group_count().await,
            CountSource::Events(f) => d.event_count(f).await,
            CountSource::Groups(f) => d.group_count(f).await,
            CountSource::GroupDescendants(g) => d.group_descendant_count(*g).await,
            CountSource::MembershipHistory { group, contact } => d.membership_history_count(*group, *contact).await,
            CountSource::ContactOrders(c) => d.contact_order_count(*c).await,
            CountSource::GroupOrders { group, include_subgroups } => {
                d.group_order_count(*group, *include_subgroups).await
            }
            CountSource::Products { search } => d.product_count(search.as_deref()).await,
            CountSource::PriceLists => d.price_list_count().await,
            CountSource::WebhookDeliveries(e) => d.webhook_delivery_count(*e).await,
        }
        .map_err(ApiError::from)?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// A Relay connection over store records `$rec` shown as `$node`: the edge type, the connection
/// type with `edges`, `pageInfo` and a lazy `totalCount` (see [`CountSource`]), and `from_page`.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $rec:ty, $conn_doc:literal, $edge_doc:literal, $count_doc:literal) => {
        #[doc = $edge_doc]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            /// Opaque position of this row in the list: pass it as `after` to get the rows
            /// that follow it.
            pub cursor: String,
            /// The row itself.
            pub node: $node,
        }

        #[doc = $conn_doc]
        #[derive(async_graphql::SimpleObject)]
        #[graphql(complex)]
        pub struct $conn {
            /// The rows of this page, in the list's order.
            pub edges: Vec<$edge>,
            /// Whether more rows follow, and the cursors of this page's first and last row.
            pub page_info: $crate::graphql::relay::PageInfo,
            #[graphql(skip)]
            pub count: $crate::graphql::relay::CountSource,
        }

        #[async_graphql::ComplexObject]
        impl $conn {
            #[doc = $count_doc]
            async fn total_count(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<i64> {
                self.count.total(ctx).await
            }
        }

        impl $conn {
            pub fn from_page(p: cohort_store::Page<$rec>, count: $crate::graphql::relay::CountSource) -> Self {
                let page_info = $crate::graphql::relay::page_info(&p);
                $conn {
                    edges: p.rows.into_iter().map(|(cursor, r)| $edge { cursor, node: r.into() }).collect(),
                    page_info,
                    count,
                }
            }
        }
    };
}

pub(crate) use connection;

/// `first`/`after` validated into a page request (`BAD_USER_INPUT` when out of range).
pub(crate) fn page_req(first: Option<i32>, after: Option<String>) -> Result<PageRequest, ApiError> {
    PageRequest::new(first, after).map_err(ApiError::from)
}
