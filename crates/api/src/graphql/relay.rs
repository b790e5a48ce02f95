//! Relay plumbing shared by every area: page info and the connection macro.

use crate::error::ApiError;
use async_graphql::SimpleObject;
use cohort_store::{Page, PageRequest};

// Relay plumbing

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
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

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $rec:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[derive(SimpleObject)]
        #[graphql(complex)]
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub page_info: PageInfo,
            #[graphql(skip)]
            pub count: Option<CountSource>,
        }

        impl $conn {
            pub fn from_page(p: Page<$rec>, count: Option<CountSource>) -> Self {
                let page_info = page_info(&p);
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
