//! `totalCount` of the two change histories: business-status changes (listed by
//! `DataHandle::status_history`, in `contacts::contact`) and membership changes (listed by
//! `DataHandle::membership_history`, in `groups::membership`). Each count applies exactly the
//! visibility rule of its listing, in SQL, so it counts what the viewer could page through and
//! nothing else: a hidden contact's changes are never counted.

use crate::access::handle::DataHandle;
use crate::core::sql::{Sql, count};
use crate::core::visibility::book_visible;
use crate::entities::{contact, status_change};
use crate::error::StoreResult;
use cohort_domain::AccessLevel;
use cohort_domain::ids::{ContactId, GroupId};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

impl DataHandle {
    /// How many status changes a visible contact has (0 for a hidden or unknown one), as
    /// `status_history` lists them.
    pub async fn status_history_count(&self, id: ContactId) -> StoreResult<u64> {
        let v = self.viewer();
        let visible = Query::select()
            .column(contact::Column::Id)
            .from(contact::Entity)
            .and_where(contact::Column::TenantId.eq(v.tenant_id.0))
            .and_where(contact::Column::Id.eq(id.0))
            .cond_where(book_visible(v, contact::Column::AddressBookId, AccessLevel::Read))
            .to_owned();
        Ok(status_change::Entity::find()
            .filter(status_change::Column::TenantId.eq(v.tenant_id.0))
            .filter(status_change::Column::ContactId.in_subquery(visible))
            .count(&self.db)
            .await?)
    }

    /// How many membership changes `membership_history` lists for the same arguments: entries
    /// of contacts the viewer can see now, in groups they can see, of existing contacts.
    pub async fn membership_history_count(
        &self,
        group: Option<GroupId>,
        contact: Option<ContactId>,
    ) -> StoreResult<u64> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT COUNT(*) AS n FROM membership_history h JOIN contacts c ON c.tenant_id = h.tenant_id AND c.id = h.contact_id JOIN contact_groups g ON g.tenant_id = h.tenant_id AND g.id = h.group_id WHERE h.tenant_id = ")
            .bind(v.tenant_id.0);
        if let Some(g) = group {
            q.push(" AND h.group_id = ").bind(g.0);
        }
        if let Some(c) = contact {
            q.push(" AND h.contact_id = ").bind(c.0);
        }
        q.push(" AND ").visible_books(v, "h.address_book_id", AccessLevel::Read);
        q.push(" AND ").visible_books(v, "g.address_book_id", AccessLevel::Read);
        count(&self.db, q).await
    }
}
