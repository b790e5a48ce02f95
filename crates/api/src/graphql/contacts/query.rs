//! Queries of the contacts area: one contact, the selection, business statuses.

use crate::error::ApiError;
use crate::graphql::contacts::*;
use crate::graphql::relay::CountSource;
use crate::graphql::{data, ids, loader, viewer};
use async_graphql::{Context, ID, InputObject, Object};
use cohort_domain::ids::{AddressBookId, ContactId, GroupId};
use cohort_store::{ContactFilter, GroupSelection, PageRequest};

/// The order of `contacts`.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ContactOrderBy {
    /// By the contact's sort name (a person's last name, a company's name), then id.
    Name,
    /// By id: the order contacts were created in.
    Id,
}

/// Which contacts to list. All conditions combine with AND; only visible contacts ever match.
#[derive(InputObject, Default)]
pub struct ContactFilterInput {
    /// Only contacts in these address books.
    pub address_book_ids: Option<Vec<ID>>,
    /// The old name of `addressBookIds`.
    #[graphql(deprecation = "Use `addressBookIds` (the same address book ids).")]
    pub address_books: Option<Vec<ID>>,
    /// Only persons or only companies.
    pub kind: Option<ContactKind>,
    /// Business-status keys (e.g. `lead_hot`); a contact matches any of them.
    pub business_status: Option<Vec<String>>,
    /// Case-insensitive prefix of any word of the name, or of any e-mail address.
    pub search: Option<String>,
    /// Group membership: in all of `all`, in at least one of `any`, in none of `none`.
    pub groups: Option<GroupSelectionInput>,
    /// Only contacts changed at or after this instant (their `updatedAt`): an integrator's
    /// incremental read. (Deletions are not in any list: `changes(since:)` reports them.)
    pub updated_since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Selects contacts by their groups ("everyone in Greece or Italy, not in Customers").
#[derive(InputObject, Default)]
pub struct GroupSelectionInput {
    /// Group ids: the contact is a member of every one of them.
    #[graphql(default)]
    pub all: Vec<ID>,
    /// Group ids: the contact is a member of at least one of them (ignored when empty).
    #[graphql(default)]
    pub any: Vec<ID>,
    /// Group ids: the contact is a member of none of them.
    #[graphql(default)]
    pub none: Vec<ID>,
    /// Membership of a subgroup counts as membership of its ancestors.
    #[graphql(default)]
    pub include_subgroups: bool,
}

impl ContactFilterInput {
    pub fn into_filter(self) -> Result<ContactFilter, ApiError> {
        Ok(ContactFilter {
            address_books: ids::renamed(self.address_book_ids, "addressBookIds", self.address_books, "addressBooks")?
                .map(|b| ids::decode_all(AddressBookId::TAG, &b).map(|v| v.into_iter().map(AddressBookId).collect()))
                .transpose()?,
            kind: self.kind.map(Into::into),
            business_status: self.business_status,
            search: self.search,
            groups: self
                .groups
                .map(|g| -> Result<GroupSelection, ApiError> {
                    let dec = |v: &[ID]| -> Result<Vec<GroupId>, ApiError> {
                        Ok(ids::decode_all(GroupId::TAG, v)?.into_iter().map(GroupId).collect())
                    };
                    Ok(GroupSelection {
                        all: dec(&g.all)?,
                        any: dec(&g.any)?,
                        none: dec(&g.none)?,
                        include_subgroups: g.include_subgroups,
                    })
                })
                .transpose()?,
            updated_since: self.updated_since,
        })
    }
}

#[derive(Default)]
pub struct ContactQuery;

#[Object]
impl ContactQuery {
    /// One contact; `NOT_FOUND` — exactly as for an id that never existed — if the viewer cannot see it.
    async fn contact(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Contact> {
        viewer(ctx)?;
        let id = ContactId(ids::decode(ContactId::TAG, &id)?);
        let parts = contact_parts_of_one(&ctx.look_ahead());
        if parts != cohort_store::ContactParts::default() {
            // The contact with its e-mails, status and memberships in one statement.
            let Some((c, extras)) = data(ctx)?.contact_with_parts(id, parts).await.map_err(ApiError::from)? else {
                return Err(ApiError::NotFound.into());
            };
            feed_contact_extras(ctx, [(c.id, &extras)]).await?;
            loader(ctx)?.feed_one(c.id, c.clone()).await;
            return Ok(Contact(c));
        }
        loader(ctx)?.load_one(id).await?.map(Contact).ok_or_else(|| ApiError::NotFound.into())
    }

    /// Visible contacts, keyset-paginated (a cursor belongs to the order it was made in).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ContactFilterInput>,
        #[graphql(desc = "Default NAME.")] order_by: Option<ContactOrderBy>,
    ) -> async_graphql::Result<ContactConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let filter = filter.unwrap_or_default().into_filter()?;
        let order = match order_by.unwrap_or(ContactOrderBy::Name) {
            ContactOrderBy::Name => cohort_store::ContactOrder::Name,
            ContactOrderBy::Id => cohort_store::ContactOrder::Id,
        };
        let p = data(ctx)?.contacts(&filter, order, &page).await.map_err(ApiError::from)?;
        let rows: Vec<&cohort_store::ContactRecord> = p.rows.iter().map(|r| &r.1).collect();
        prefetch_contacts(ctx, ctx.look_ahead().field("edges").field("node"), &rows).await?;
        Ok(ContactConnection::from_page(p, CountSource::Contacts(filter)))
    }

    /// Subject access (GDPR Art. 15): everything Cohort holds about **one** person — profile,
    /// e-mails and phones, business-status history, memberships with their source and consent,
    /// membership history, the consent log, individual price lists, orders with their lines,
    /// tickets with their history, messages and sequence enrolments — as one JSON document
    /// (`format` names its version; ids are global ids). Tenant admins only (`FORBIDDEN`
    /// otherwise); one person per call; audited as `contact.dataExport` and counted by data-usage
    /// metering. A private message's body (and, where the tenant hides private subjects, its
    /// subject) is withheld unless you are its recipient (`bodyWithheld`, `subjectWithheld`).
    async fn contact_data_export(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ContactDataExport> {
        viewer(ctx)?;
        let id = ContactId(ids::decode(ContactId::TAG, &id)?);
        let encode = |tag: &'static str, u: uuid::Uuid| ids::encode(tag, u).0;
        let e = data(ctx)?.contact_data_export(id, &encode).await.map_err(ApiError::from)?;
        Ok(ContactDataExport { generated_at: e.generated_at, document: async_graphql::Json(e.document) })
    }

    /// The tenant's business-status classification, in display order.
    async fn business_statuses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BusinessStatus>> {
        let s = data(ctx)?.business_statuses().await.map_err(ApiError::from)?;
        Ok(s.into_iter().map(BusinessStatus).collect())
    }
}
