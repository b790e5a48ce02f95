//! Contacts: the viewer-scoped reads (lists, counts, lookups by id) and writes. Every statement
//! carries the visibility condition, so a hidden contact is, for this viewer, a contact that does
//! not exist: not listed, not counted, not matched by filters, and `NotFound` by id.

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::audit::Changes;
use crate::core::decode;
use crate::core::dialect::Dialect;
use crate::core::page::{Page, PageRequest};
use crate::core::sql::Sql;
use crate::core::uow::UnitOfWork;
use crate::core::visibility::{book_level, book_visible, book_visible_at, like_escape};
use crate::entities::{
    business_status, contact, contact_email, contact_phone, group, group_closure, membership, status_change,
};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::contact::{ContactFields, ContactKind, ValidContact};
use cohort_domain::ids::{AddressBookId, BusinessStatusId, ContactId, GroupId, StatusChangeId, UserId};
use cohort_domain::text::{Key, MAX_STATUS_KEY_CHARS, optional_text};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LikeExpr, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub id: ContactId,
    pub address_book_id: AddressBookId,
    pub kind: ContactKind,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub display_name: String,
    pub sort_name: String,
    pub company_id: Option<ContactId>,
    pub business_status_id: Option<BusinessStatusId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<contact::Model> for ContactRecord {
    type Error = StoreError;
    fn try_from(m: contact::Model) -> StoreResult<Self> {
        Ok(ContactRecord {
            id: ContactId(m.id),
            address_book_id: AddressBookId(m.address_book_id),
            kind: decode::contact_kind(&m.kind)?,
            first_name: m.first_name,
            last_name: m.last_name,
            company_name: m.company_name,
            display_name: m.display_name,
            sort_name: m.sort_name,
            company_id: m.company_id.map(ContactId),
            business_status_id: m.business_status_id.map(BusinessStatusId),
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub address: String,
    pub label: Option<String>,
}

/// Per-contact parts a selection asks for, read by the same statement as the contacts (a JSON
/// aggregate of the e-mails, a join of the status) instead of a follow-up statement each.
/// Unrequested parts cost nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContactParts {
    pub emails: bool,
    pub status: bool,
    /// The contact's memberships in visible groups, with their groups (one contact only:
    /// [`DataHandle::contact_with_parts`]; pages load them through the memberships loader).
    pub memberships: bool,
}

/// What a statement read for [`ContactParts`]: `None` for a part not asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactExtras {
    pub emails: Option<Vec<EmailRecord>>,
    /// `Some(None)`: asked for, and the contact has no status.
    pub status: Option<Option<crate::BusinessStatusRecord>>,
    /// The memberships in visible groups by group name, each with its group.
    pub memberships: Option<Vec<(crate::MembershipRecord, crate::GroupRecord)>>,
}

impl ContactParts {
    /// `, <e-mails as JSON> AS x_emails, bs.… AS bs_…` for contacts aliased `c` (with
    /// [`ContactParts::push_join`] in the FROM clause).
    pub(crate) fn push_columns(self, q: &mut Sql) {
        if self.emails {
            // In position order; a JSON array of [address, label] pairs (text, so both engines
            // hand it over the same way). PostgreSQL's json_agg gives NULL for no rows.
            q.push(match q.dialect() {
                Dialect::Postgres => ", (SELECT CAST(json_agg(json_build_array(e.address, e.label) ORDER BY e.position) AS TEXT) FROM contact_emails e WHERE e.tenant_id = c.tenant_id AND e.contact_id = c.id) AS x_emails",
                Dialect::Sqlite => ", (SELECT json_group_array(json_array(e.address, e.label) ORDER BY e.position) FROM contact_emails e WHERE e.tenant_id = c.tenant_id AND e.contact_id = c.id) AS x_emails",
            });
        }
        if self.status {
            q.push(", bs.id AS bs_id, bs.key AS bs_key, bs.label AS bs_label, bs.category AS bs_category, bs.position AS bs_position");
        }
    }

    /// The join [`ContactParts::push_columns`] needs.
    pub(crate) fn push_join(self, q: &mut Sql) {
        if self.status {
            q.push(" LEFT JOIN business_statuses bs ON bs.tenant_id = c.tenant_id AND bs.id = c.business_status_id");
        }
    }

    /// Decodes the parts from a row the statement read.
    pub(crate) fn read(self, row: &sea_orm::QueryResult) -> StoreResult<ContactExtras> {
        let mut out = ContactExtras::default();
        if self.emails {
            let text: Option<String> = row.try_get("", "x_emails")?;
            let pairs: Vec<(String, Option<String>)> = match text {
                Some(t) => {
                    serde_json::from_str(&t).map_err(|_| StoreError::corrupt("contact_emails", "JSON aggregate"))?
                }
                None => vec![],
            };
            out.emails = Some(pairs.into_iter().map(|(address, label)| EmailRecord { address, label }).collect());
        }
        if self.status {
            out.status = Some(match row.try_get::<Option<Uuid>>("", "bs_id")? {
                Some(id) => Some(crate::BusinessStatusRecord {
                    id: BusinessStatusId(id),
                    key: row.try_get("", "bs_key")?,
                    label: row.try_get("", "bs_label")?,
                    category: row.try_get("", "bs_category")?,
                    position: row.try_get("", "bs_position")?,
                }),
                None => None,
            });
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneRecord {
    pub number: String,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactChannels {
    pub emails: Vec<EmailRecord>,
    pub phones: Vec<PhoneRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChangeRecord {
    pub id: StatusChangeId,
    pub contact_id: ContactId,
    pub from_status_id: Option<BusinessStatusId>,
    pub to_status_id: Option<BusinessStatusId>,
    pub changed_by: Option<UserId>,
    pub changed_at: DateTime<Utc>,
    pub note: Option<String>,
}

/// The selection filters of `contacts(filter:)`. All conditions combine with AND.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Only contacts in these books (unknown or hidden book ids match nothing).
    pub address_books: Option<Vec<AddressBookId>>,
    pub kind: Option<ContactKind>,
    /// Business-status keys; a contact matches if its status is any of them.
    pub business_status: Option<Vec<String>>,
    /// Prefix of any word of the name, or of any e-mail address; case-insensitive.
    pub search: Option<String>,
    /// Group membership conditions.
    pub groups: Option<GroupSelection>,
    /// Only contacts changed at or after this instant (`updatedAt`): an integrator's
    /// incremental read.
    pub updated_since: Option<DateTime<Utc>>,
}

/// "In all of these, in any of those, in none of these" — how scripts pick contacts.
#[derive(Debug, Clone, Default)]
pub struct GroupSelection {
    pub all: Vec<GroupId>,
    pub any: Vec<GroupId>,
    pub none: Vec<GroupId>,
    /// Membership of a group counts membership of any of its descendants.
    pub include_subgroups: bool,
}

/// A new contact.
#[derive(Debug, Clone)]
pub struct ContactInput {
    pub address_book_id: AddressBookId,
    pub kind: ContactKind,
    pub fields: ContactFields,
    pub company_id: Option<ContactId>,
    pub business_status: Option<String>,
}

/// A partial update: `None` leaves a field unchanged; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ContactPatch {
    pub address_book_id: Option<AddressBookId>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub emails: Option<Vec<(String, Option<String>)>>,
    pub phones: Option<Vec<(String, Option<String>)>>,
    pub company_id: Option<Option<ContactId>>,
}

/// The order of a contact list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContactOrder {
    /// By sort name (a person's last name, a company's name), then id.
    #[default]
    Name,
    /// By id: creation order for ids the service assigns (UUIDv7).
    Id,
}

/// The words of the display name, lower-cased, each preceded by a space: `LIKE '% ann%'` then
/// matches a prefix of any word.
pub(crate) fn search_text(display_name: &str) -> String {
    let mut s = String::with_capacity(display_name.len() + 8);
    for w in display_name.split_whitespace() {
        s.push(' ');
        s.push_str(&w.to_lowercase());
    }
    s
}

/// In a selection, a group with up to this many times the driving group's visible members is
/// read whole and hashed rather than probed once per driver row (see [`DataHandle::contacts`]).
const HASH_GROUP_FACTOR: u64 = 4;

pub(crate) fn visible_contacts(v: &Viewer) -> Select<contact::Entity> {
    contact::Entity::find().filter(contact::Column::TenantId.eq(v.tenant_id.0)).filter(book_visible(
        v,
        contact::Column::AddressBookId,
        AccessLevel::Read,
    ))
}

impl DataHandle {
    /// The visible contacts matching `f`. With `page`, a selection driven by one group may choose
    /// the page among the driver's membership rows already (see below); the caller still orders
    /// and limits the outer query the same way.
    async fn filtered(
        &self,
        f: &ContactFilter,
        page: Option<(ContactOrder, &PageRequest)>,
    ) -> StoreResult<Select<contact::Entity>> {
        let v = self.viewer();
        // Conditions on the contact row itself; without them a membership row decides everything
        // a selection asks (its book is its contact's book, its sort key its contact's sort key,
        // and erased or deleted contacts have no membership rows).
        // Spelled out field by field, so that a new filter is a compile error here, not a
        // condition the page pushdown silently ignores.
        let ContactFilter { address_books, kind, business_status, search, groups: _, updated_since } = f;
        let only_groups = address_books.is_none()
            && kind.is_none()
            && updated_since.is_none()
            && business_status.is_none()
            && search.is_none();
        // Erased contacts remain as tombstones (orders and history point at them) but are no
        // longer part of any list, selection or count.
        let mut q = visible_contacts(v).filter(Expr::col((contact::Entity, "erased_at")).is_null());
        if let Some(books) = &f.address_books {
            q = q.filter(contact::Column::AddressBookId.is_in(books.iter().map(|b| b.0)));
        }
        if let Some(kind) = f.kind {
            q = q.filter(contact::Column::Kind.eq(kind.as_str()));
        }
        if let Some(since) = f.updated_since {
            q = q.filter(contact::Column::UpdatedAt.gte(since));
        }
        if let Some(keys) = &f.business_status {
            if keys.len() > 20 {
                return Err(StoreError::invalid("businessStatus", "at most 20 statuses in one filter"));
            }
            let keys: Vec<String> = keys
                .iter()
                .map(|k| Key::parse("businessStatus", k, MAX_STATUS_KEY_CHARS).map(Key::into_string))
                .collect::<Result<_, _>>()?;
            let known: Vec<String> = business_status::Entity::find()
                .filter(business_status::Column::TenantId.eq(v.tenant_id.0))
                .filter(business_status::Column::Key.is_in(keys.iter().cloned()))
                .select_only()
                .column(business_status::Column::Key)
                .into_tuple()
                .all(&self.db)
                .await?;
            if let Some(unknown) = keys.iter().find(|k| !known.contains(k)) {
                let shown: String = unknown.chars().take(40).collect();
                return Err(StoreError::invalid(
                    "businessStatus",
                    format!("'{shown}' is not a business status of this tenant"),
                ));
            }
            q = q.filter(
                contact::Column::BusinessStatusId.in_subquery(
                    Query::select()
                        .column(business_status::Column::Id)
                        .from(business_status::Entity)
                        .and_where(business_status::Column::TenantId.eq(v.tenant_id.0))
                        .and_where(business_status::Column::Key.is_in(keys.iter().cloned()))
                        .to_owned(),
                ),
            );
        }
        if let Some(sel) = &f.groups {
            let named: Vec<GroupId> = sel.all.iter().chain(&sel.any).chain(&sel.none).copied().collect();
            if named.len() > 50 {
                return Err(StoreError::invalid("groups", "at most 50 groups in one selection"));
            }
            // Selecting by a group the viewer cannot see would reveal its membership: such a group
            // does not exist for them.
            let mut distinct = named.clone();
            distinct.sort();
            distinct.dedup();
            let sizes = self.selection_group_sizes(&distinct).await?;
            if sizes.len() != distinct.len() {
                return Err(StoreError::NotFound);
            }
            let members_of = |groups: &[GroupId]| {
                let mut q = Query::select();
                q.column(membership::Column::ContactId)
                    .from(membership::Entity)
                    .and_where(membership::Column::TenantId.eq(v.tenant_id.0));
                if sel.include_subgroups {
                    q.and_where(
                        membership::Column::GroupId.in_subquery(
                            Query::select()
                                .column(group_closure::Column::DescendantId)
                                .from(group_closure::Entity)
                                .and_where(group_closure::Column::TenantId.eq(v.tenant_id.0))
                                .and_where(group_closure::Column::AncestorId.is_in(groups.iter().map(|g| g.0)))
                                // Only subgroups the viewer can see count.
                                .and_where(
                                    group_closure::Column::DescendantId.in_subquery(
                                        Query::select()
                                            .column(group::Column::Id)
                                            .from(group::Entity)
                                            .and_where(group::Column::TenantId.eq(v.tenant_id.0))
                                            .cond_where(book_visible(
                                                v,
                                                group::Column::AddressBookId,
                                                AccessLevel::Read,
                                            ))
                                            .to_owned(),
                                    ),
                                )
                                .to_owned(),
                        ),
                    );
                } else {
                    q.and_where(membership::Column::GroupId.is_in(groups.iter().map(|g| g.0)));
                }
                // Only visible members: the outer contacts are visible anyway (a membership row's
                // book is its contact's book), so the answer is the same — but the subquery, which
                // the planner may materialise (`NOT IN` above all), then grows with what the viewer
                // can see, not with hidden members (no timing that scales with hidden rows).
                q.cond_where(book_visible(v, membership::Column::AddressBookId, AccessLevel::Read));
                q.to_owned()
            };
            // Without subgroups, a selection with `all` groups is driven by the smallest of them:
            // its visible members (book and key are on the membership row, so this is one index
            // range), each probed against the other groups by primary key. Left to itself the
            // planner tends to walk `contacts` in id order and test every row against each group
            // (tens of thousands of probes to find one page).
            let driver = (!sel.include_subgroups)
                .then(|| sel.all.iter().min_by_key(|g| (sizes.get(*g).copied().unwrap_or(0), g.0)))
                .flatten();
            if let Some(d) = driver {
                use sea_orm::sea_query::{Alias, ColumnRef, IntoColumnRef};
                let mut sub = Query::select();
                sub.column((membership::Entity, membership::Column::ContactId))
                    .from(membership::Entity)
                    .and_where(membership::Column::TenantId.eq(v.tenant_id.0))
                    .and_where(membership::Column::GroupId.eq(d.0))
                    .cond_where(book_visible(v, membership::Column::AddressBookId, AccessLevel::Read));
                // A group much larger than the driver is tested by probing each driver row by
                // primary key: a correlated EXISTS per row. On PostgreSQL `OFFSET 0` keeps it so —
                // without it the planner turns the EXISTS into a join and, in a cached generic plan
                // that cannot know the groups' sizes, may merge-join against all 100,000 members
                // of a large group. A group of about the driver's size is better read once and
                // hashed (W3's `none` group: 200 probes of 4 index pages each against one pass over
                // its visible members); it is left to the planner, with the visibility rule inside
                // so that the pass reads visible members only (a contact's book is the same on all
                // its membership rows, so the answer is the same). Which of the two a group gets is
                // part of the statement's text, so a cached plan of one is never used for the other.
                let fence = v.dialect.keeps_subquery_correlated();
                let driver_size = sizes.get(d).copied().unwrap_or(0);
                let by_key = |groups: &[GroupId]| {
                    let size: u64 = groups.iter().map(|g| sizes.get(g).copied().unwrap_or(0)).sum();
                    size > driver_size.saturating_mul(HASH_GROUP_FACTOR)
                };
                // `EXISTS (a membership of the contact in `corr` in one of `groups`)`.
                let probe = |groups: &[GroupId], corr: ColumnRef, negate: bool| {
                    let mx = Alias::new("mx");
                    let mut p = Query::select();
                    p.expr(Expr::val(1))
                        .from_as(membership::Entity, mx.clone())
                        .and_where(Expr::col((mx.clone(), membership::Column::TenantId)).eq(v.tenant_id.0))
                        .and_where(
                            Expr::col((mx.clone(), membership::Column::GroupId)).is_in(groups.iter().map(|g| g.0)),
                        )
                        .and_where(Expr::col((mx.clone(), membership::Column::ContactId)).equals(corr));
                    if !by_key(groups) {
                        p.cond_where(book_visible_at(v, mx, membership::Column::AddressBookId, AccessLevel::Read));
                    } else if fence {
                        p.offset(0);
                    }
                    let e = Expr::exists(p.to_owned());
                    if negate { e.not() } else { e }
                };
                let mut tests: Vec<(&[GroupId], bool)> =
                    sel.all.iter().filter(|g| *g != d).map(|g| (std::slice::from_ref(g), false)).collect();
                if !sel.any.is_empty() {
                    tests.push((&sel.any, false));
                }
                if !sel.none.is_empty() {
                    tests.push((&sel.none, true));
                }
                let in_driver = (membership::Entity, membership::Column::ContactId).into_column_ref();
                match (only_groups, page) {
                    // The page is chosen among the driver's rows, so only its contacts are read
                    // (W3: 51 of about 200). The outer query keeps every condition on the contact
                    // row (and its own order and limit): were a membership row ever out of step
                    // with its contact, the page would come out short, never show a contact it
                    // should not.
                    (true, Some((order, page))) => {
                        let (sort_name, contact_id) = (membership::Column::SortName, membership::Column::ContactId);
                        match order {
                            ContactOrder::Id => {
                                if let Some(id) = page.after_key::<Uuid>()? {
                                    sub.and_where(contact_id.gt(id));
                                }
                            }
                            ContactOrder::Name => {
                                if let Some(key) = page.after_key::<(String, Uuid)>()? {
                                    sub.cond_where(crate::core::page::after(sort_name, contact_id, key));
                                }
                            }
                        }
                        // SQLite has no fence to keep the sorted candidates apart (and measured no
                        // gain): its probes stay with the driver rows.
                        let (keyed, hashed): (Vec<_>, Vec<_>) =
                            tests.into_iter().partition(|(g, _)| fence && by_key(g));
                        for (groups, negate) in hashed {
                            sub.and_where(probe(groups, in_driver.clone(), negate));
                        }
                        if keyed.is_empty() {
                            if order == ContactOrder::Name {
                                sub.order_by((membership::Entity, sort_name), Order::Asc);
                            }
                            sub.order_by((membership::Entity, contact_id), Order::Asc).limit(page.limit());
                        } else {
                            // Probed in page order, after the sort, so the probes stop with the
                            // page: W3 probes group 1 for 51 candidates instead of all 200. The
                            // sorted candidates are a fenced subquery (`OFFSET 0`: PostgreSQL
                            // neither flattens it nor pushes the probes into it).
                            let s = Alias::new("s");
                            if order == ContactOrder::Name {
                                sub.column((membership::Entity, sort_name))
                                    .order_by((membership::Entity, sort_name), Order::Asc);
                            }
                            sub.order_by((membership::Entity, contact_id), Order::Asc).offset(0);
                            let mut paged = Query::select();
                            paged.column((s.clone(), contact_id)).from_subquery(sub.to_owned(), s.clone());
                            for (groups, negate) in keyed {
                                paged.and_where(probe(groups, (s.clone(), contact_id).into_column_ref(), negate));
                            }
                            if order == ContactOrder::Name {
                                paged.order_by((s.clone(), sort_name), Order::Asc);
                            }
                            paged.order_by((s, contact_id), Order::Asc).limit(page.limit());
                            sub = paged;
                        }
                    }
                    _ => {
                        for (groups, negate) in tests {
                            sub.and_where(probe(groups, in_driver.clone(), negate));
                        }
                    }
                }
                q = q.filter(contact::Column::Id.in_subquery(sub.to_owned()));
            } else {
                for g in &sel.all {
                    q = q.filter(contact::Column::Id.in_subquery(members_of(std::slice::from_ref(g))));
                }
                if !sel.any.is_empty() {
                    q = q.filter(contact::Column::Id.in_subquery(members_of(&sel.any)));
                }
                if !sel.none.is_empty() {
                    q = q.filter(contact::Column::Id.not_in_subquery(members_of(&sel.none)));
                }
            }
        }
        if let Some(term) = f.search.as_deref().map(cohort_domain::text::search_prefix).transpose()?.flatten() {
            let esc = like_escape(&term);
            let emails = Query::select()
                .column(contact_email::Column::ContactId)
                .from(contact_email::Entity)
                .and_where(contact_email::Column::TenantId.eq(v.tenant_id.0))
                .and_where(
                    Expr::col((contact_email::Entity, contact_email::Column::Address))
                        .like(LikeExpr::new(format!("{esc}%")).escape('\\')),
                )
                .to_owned();
            q = q.filter(
                Condition::any()
                    .add(
                        Expr::col((contact::Entity, contact::Column::SearchText))
                            .like(LikeExpr::new(format!("% {esc}%")).escape('\\')),
                    )
                    .add(contact::Column::Id.in_subquery(emails)),
            );
        }
        Ok(q)
    }

    /// A page of visible contacts matching `f`, ordered by (sort name, id) or by id.
    pub async fn contacts(
        &self,
        f: &ContactFilter,
        order: ContactOrder,
        page: &PageRequest,
    ) -> StoreResult<Page<ContactRecord>> {
        let mut q = self.filtered(f, Some((order, page))).await?;
        match order {
            ContactOrder::Name => {
                if let Some((name, id)) = page.after_key::<(String, Uuid)>()? {
                    q = q.filter(crate::core::page::after(contact::Column::SortName, contact::Column::Id, (name, id)));
                }
                q = q.order_by_asc(contact::Column::SortName).order_by_asc(contact::Column::Id);
            }
            ContactOrder::Id => {
                if let Some(id) = page.after_key::<Uuid>()? {
                    q = q.filter(contact::Column::Id.gt(id));
                }
                q = q.order_by_asc(contact::Column::Id);
            }
        }
        let rows = q.limit(page.limit()).all(&self.db).await?;
        let records = rows.into_iter().map(ContactRecord::try_from).collect::<StoreResult<Vec<_>>>()?;
        let page = match order {
            ContactOrder::Name => Page::from_rows(records, page, |c| (c.sort_name.clone(), c.id.0)),
            ContactOrder::Id => Page::from_rows(records, page, |c| c.id.0),
        };
        // Metering counts the page as answered (not the look-ahead row that decides hasNextPage).
        self.saw(page.rows.iter().map(|(_, c)| c.id));
        Ok(page)
    }

    /// How many visible contacts match `f`.
    pub async fn count_contacts(&self, f: &ContactFilter) -> StoreResult<u64> {
        Ok(self.filtered(f, None).await?.count(&self.db).await?)
    }

    /// The visible contacts among `ids`; unknown and hidden ids are absent, indistinguishably.
    pub async fn contacts_by_ids(&self, ids: &[ContactId]) -> StoreResult<Vec<ContactRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let found = visible_contacts(v)
            .filter(contact::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(ContactRecord::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        self.saw(found.iter().map(|c| c.id));
        Ok(found)
    }

    /// One visible contact with the parts a selection asks for, in one statement (`contact(id)`).
    pub async fn contact_with_parts(
        &self,
        id: ContactId,
        parts: ContactParts,
    ) -> StoreResult<Option<(ContactRecord, ContactExtras)>> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        if parts.memberships {
            // The contact (through the rule) fenced in a derived table, so its e-mails aggregate
            // is computed once, LEFT JOINed to its memberships in visible groups: one row per
            // membership, or one row with an empty membership side.
            q.push("SELECT cc.*, ");
            crate::groups::membership::push_membership_columns(&mut q, v);
            q.push(" FROM (");
        }
        q.push("SELECT ").push_columns("c", crate::core::sql::contact_columns());
        parts.push_columns(&mut q);
        q.push(" FROM contacts c");
        parts.push_join(&mut q);
        q.push(" WHERE c.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND c.id = ")
            .bind(id.0)
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read);
        if parts.memberships {
            // Two plain outer joins, not `LEFT JOIN (m JOIN g) ON …`: SQLite evaluates the
            // parenthesised join as a whole before matching it to the contact (184 ms a W2
            // request on dataset M). A membership in a group the viewer cannot see comes back
            // with an empty group side, and is dropped while decoding.
            q.push(" LIMIT 1) cc LEFT JOIN group_memberships m ON m.tenant_id = cc.tenant_id AND m.contact_id = cc.id AND ")
                .visible_books(v, "m.address_book_id", AccessLevel::Read)
                .push(" LEFT JOIN contact_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id AND ")
                .visible_books(v, "g.address_book_id", AccessLevel::Read)
                .push(" ORDER BY g.sort_name, g.id");
        }
        let rows = self.db.query_all_raw(q.build()).await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let c = ContactRecord::try_from(<contact::Model as sea_orm::FromQueryResult>::from_query_result(row, "")?)?;
        let mut extras = parts.read(row)?;
        if parts.memberships {
            let mut ms = Vec::with_capacity(rows.len());
            for row in &rows {
                if let Some(m) = crate::groups::membership::membership_of_row(v, row)? {
                    ms.push(m);
                }
            }
            // Memberships read are membership pairs seen, as through the loader.
            self.saw_pairs(ms.len());
            extras.memberships = Some(ms);
        }
        self.saw([c.id]);
        Ok(Some((c, extras)))
    }

    /// E-mail addresses of the visible contacts among `ids`, in order: one statement for any number
    /// of contacts (the API's DataLoader batches a whole page into one call). Separate from phones,
    /// so a query that selects only one of them pays for one.
    pub async fn contact_emails(&self, ids: &[ContactId]) -> StoreResult<HashMap<ContactId, Vec<EmailRecord>>> {
        emails_on(&self.db, self.viewer(), ids).await
    }

    /// Phone numbers of the visible contacts among `ids`, in order (one statement).
    pub async fn contact_phones(&self, ids: &[ContactId]) -> StoreResult<HashMap<ContactId, Vec<PhoneRecord>>> {
        phones_on(&self.db, self.viewer(), ids).await
    }

    /// Loads a contact the viewer can see and checks they hold `needed` on its book.
    pub(crate) async fn contact_for(
        &self,
        txn: &DatabaseTransaction,
        v: &Viewer,
        id: ContactId,
        needed: AccessLevel,
    ) -> StoreResult<contact::Model> {
        // Locked (PostgreSQL) so that concurrent writers serialise on the contact: its book and
        // sort key are copied onto membership rows, which must never go stale.
        let c = visible_contacts(v)
            .filter(contact::Column::Id.eq(id.0))
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let level = book_level(txn, v, AddressBookId(c.address_book_id)).await?;
        if !AccessLevel::allows(level, needed) {
            return Err(StoreError::forbidden(format!(
                "this needs {} access on the contact's address book",
                needed.name()
            )));
        }
        Ok(c)
    }

    async fn require_book(
        &self,
        txn: &DatabaseTransaction,
        v: &Viewer,
        book: AddressBookId,
        needed: AccessLevel,
    ) -> StoreResult<()> {
        match book_level(txn, v, book).await? {
            None => Err(StoreError::NotFound),
            Some(l) if l < needed => Err(StoreError::forbidden("this needs WRITE access on the address book")),
            Some(_) => Ok(()),
        }
    }

    /// A company link must name a visible company contact (not the contact itself).
    async fn check_company(
        &self,
        txn: &DatabaseTransaction,
        v: &Viewer,
        company: ContactId,
        this: Option<ContactId>,
    ) -> StoreResult<()> {
        if Some(company) == this {
            return Err(StoreError::invalid("companyId", "a contact cannot be its own company"));
        }
        let c = visible_contacts(v)
            .filter(contact::Column::Id.eq(company.0))
            .one(txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        if c.kind != ContactKind::Company.as_str() {
            return Err(StoreError::invalid("companyId", "must name a company contact"));
        }
        Ok(())
    }

    async fn status_id_for(&self, txn: &DatabaseTransaction, v: &Viewer, key: &str) -> StoreResult<Uuid> {
        let key = Key::parse("businessStatus", key, MAX_STATUS_KEY_CHARS)?;
        let key = key.as_str();
        business_status::Entity::find()
            .filter(business_status::Column::TenantId.eq(v.tenant_id.0))
            .filter(business_status::Column::Key.eq(key))
            .one(txn)
            .await?
            .map(|s| s.id)
            .ok_or_else(|| {
                StoreError::invalid("businessStatus", format!("'{key}' is not a business status of this tenant"))
            })
    }

    /// Replaces the e-mails (`emails`) and phones (`phones`) of contact `id` with `valid`'s. A
    /// contact created in this unit of work (`fresh`) has none to delete.
    async fn write_channels(
        &self,
        w: &UnitOfWork,
        id: Uuid,
        valid: &ValidContact,
        (emails, phones, fresh): (bool, bool, bool),
    ) -> StoreResult<()> {
        let (v, txn) = (w.viewer(), w.tx());
        if emails && !fresh {
            contact_email::Entity::delete_many()
                .filter(contact_email::Column::TenantId.eq(v.tenant_id.0))
                .filter(contact_email::Column::ContactId.eq(id))
                .exec(txn)
                .await?;
        }
        if emails && !valid.emails.is_empty() {
            contact_email::Entity::insert_many(valid.emails.iter().enumerate().map(|(i, (e, l))| {
                contact_email::ActiveModel {
                    tenant_id: Set(v.tenant_id.0),
                    contact_id: Set(id),
                    position: Set(i as i32),
                    address: Set(e.as_str().to_owned()),
                    label: Set(l.clone()),
                }
            }))
            .exec_without_returning(txn)
            .await?;
        }
        if phones && !fresh {
            contact_phone::Entity::delete_many()
                .filter(contact_phone::Column::TenantId.eq(v.tenant_id.0))
                .filter(contact_phone::Column::ContactId.eq(id))
                .exec(txn)
                .await?;
        }
        if phones && !valid.phones.is_empty() {
            contact_phone::Entity::insert_many(valid.phones.iter().enumerate().map(|(i, (p, l))| {
                contact_phone::ActiveModel {
                    tenant_id: Set(v.tenant_id.0),
                    contact_id: Set(id),
                    position: Set(i as i32),
                    number: Set(p.as_str().to_owned()),
                    label: Set(l.clone()),
                }
            }))
            .exec_without_returning(txn)
            .await?;
        }
        Ok(())
    }

    /// Creates a contact in a book where the viewer holds `WRITE`.
    pub async fn create_contact(&self, input: ContactInput) -> StoreResult<ContactRecord> {
        self.create_contact_with_external_ids(input, &[]).await
    }

    /// [`DataHandle::create_contact`] with the contact's external ids, in the same transaction.
    pub async fn create_contact_with_external_ids(
        &self,
        input: ContactInput,
        external_ids: &[crate::external::ExternalIdRecord],
    ) -> StoreResult<ContactRecord> {
        let ext = crate::external::parse_all(external_ids)?;
        let w = self.begin().await?;
        let m = self.create_contact_in(&w, input).await?;
        crate::external::write_new(&w, crate::external::ExternalTarget::Contact(ContactId(m.id)), &ext).await?;
        w.commit().await?;
        m.try_into()
    }

    /// The write of [`DataHandle::create_contact`] inside a caller's unit of work (a web-form
    /// submission creates its contact together with the consent entries).
    pub(crate) async fn create_contact_in(&self, w: &UnitOfWork, input: ContactInput) -> StoreResult<contact::Model> {
        let v = self.viewer();
        let valid = ValidContact::validate(input.kind, &input.fields)?;
        self.require_book(w.tx(), v, input.address_book_id, AccessLevel::Write).await?;
        if let Some(company) = input.company_id {
            if input.kind != ContactKind::Person {
                return Err(StoreError::invalid("companyId", "only a person can be linked to a company"));
            }
            self.check_company(w.tx(), v, company, None).await?;
        }
        let status_id = match input.business_status.as_deref() {
            Some(k) => Some(self.status_id_for(w.tx(), v, k).await?),
            None => None,
        };
        let id = Uuid::now_v7();
        let now = Utc::now();
        let m = contact::Model {
            tenant_id: v.tenant_id.0,
            id,
            address_book_id: input.address_book_id.0,
            kind: valid.kind.as_str().to_owned(),
            first_name: valid.first_name.clone(),
            last_name: valid.last_name.clone(),
            company_name: valid.company_name.clone(),
            display_name: valid.display_name.clone(),
            sort_name: valid.sort_name.clone(),
            search_text: search_text(&valid.display_name),
            company_id: input.company_id.map(|c| c.0),
            business_status_id: status_id,
            created_at: now,
            updated_at: now,
            created_by: Some(v.user_id.0),
        };
        contact::Entity::insert(contact::ActiveModel::from(m.clone())).exec_without_returning(w.tx()).await?;
        self.write_channels(w, id, &valid, (true, true, true)).await?;
        if status_id.is_some() {
            insert_status_change(w.tx(), v, id, None, status_id, None).await?;
        }
        w.emit(
            EventType::ContactCreated,
            vec![Subject::new(SubjectKind::Contact, id)],
            serde_json::json!({"addressBookId": m.address_book_id, "kind": m.kind}),
        );
        w.audit(
            "contact.create",
            "Contact",
            Some(id),
            serde_json::json!({"addressBookId": m.address_book_id, "kind": m.kind}),
        );
        Ok(m)
    }

    /// Applies a partial update to a contact the viewer can write.
    pub async fn update_contact(&self, id: ContactId, p: ContactPatch) -> StoreResult<ContactRecord> {
        let w = self.begin().await?;
        let m = self.update_contact_in(&w, id, p).await?;
        w.commit().await?;
        m.try_into()
    }

    /// The write of [`DataHandle::update_contact`] inside a caller's unit of work (an upsert
    /// updates many contacts in one).
    pub(crate) async fn update_contact_in(
        &self,
        w: &UnitOfWork,
        id: ContactId,
        p: ContactPatch,
    ) -> StoreResult<contact::Model> {
        let v = self.viewer();
        let cur = self.contact_for(w.tx(), v, id, AccessLevel::Write).await?;
        // An erased contact is a tombstone: names or addresses written onto it would undo the
        // erasure. (An update that waited on the erasure's lock reads the tombstone here.)
        if crate::contacts::erasure::erased_at(w.tx(), v.dialect, v.tenant_id.0, id.0).await?.is_some() {
            return Err(StoreError::Conflict("the contact was erased; it cannot be changed".into()));
        }
        let kind = decode::contact_kind(&cur.kind)?;
        let (cur_book, cur_sort) = (cur.address_book_id, cur.sort_name.clone());
        let cur_company = cur.company_id;
        let patched: Vec<&str> = [
            ("addressBookId", p.address_book_id.is_some()),
            ("firstName", p.first_name.is_some()),
            ("lastName", p.last_name.is_some()),
            ("companyName", p.company_name.is_some()),
            ("emails", p.emails.is_some()),
            ("phones", p.phones.is_some()),
            ("companyId", p.company_id.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        let emails_changed = p.emails.is_some();
        let phones_changed = p.phones.is_some();
        let (cur_emails, cur_phones) = if emails_changed && phones_changed {
            (vec![], vec![])
        } else {
            let ch = channels_on(w.tx(), v, &[id]).await?.remove(&id).unwrap_or_default();
            (
                ch.emails.into_iter().map(|e| (e.address, e.label)).collect(),
                ch.phones.into_iter().map(|p| (p.number, p.label)).collect(),
            )
        };
        let fields = ContactFields {
            first_name: p.first_name.clone().unwrap_or(cur.first_name.clone()),
            last_name: p.last_name.clone().unwrap_or(cur.last_name.clone()),
            company_name: p.company_name.clone().unwrap_or(cur.company_name.clone()),
            emails: p.emails.clone().unwrap_or(cur_emails),
            phones: p.phones.clone().unwrap_or(cur_phones),
        };
        let valid = ValidContact::validate(kind, &fields)?;
        if let Some(book) = p.address_book_id
            && book.0 != cur.address_book_id
        {
            self.require_book(w.tx(), v, book, AccessLevel::Write).await?;
        }
        let company_id = match p.company_id {
            None => cur.company_id,
            Some(None) => None,
            Some(Some(c)) => {
                if kind != ContactKind::Person {
                    return Err(StoreError::invalid("companyId", "only a person can be linked to a company"));
                }
                self.check_company(w.tx(), v, c, Some(id)).await?;
                Some(c.0)
            }
        };
        let m = contact::Model {
            address_book_id: p.address_book_id.map(|b| b.0).unwrap_or(cur.address_book_id),
            first_name: valid.first_name.clone(),
            last_name: valid.last_name.clone(),
            company_name: valid.company_name.clone(),
            display_name: valid.display_name.clone(),
            sort_name: valid.sort_name.clone(),
            search_text: search_text(&valid.display_name),
            company_id,
            updated_at: Utc::now(),
            ..cur
        };
        contact::Entity::update(contact::ActiveModel {
            tenant_id: sea_orm::ActiveValue::Unchanged(m.tenant_id),
            id: sea_orm::ActiveValue::Unchanged(m.id),
            address_book_id: Set(m.address_book_id),
            first_name: Set(m.first_name.clone()),
            last_name: Set(m.last_name.clone()),
            company_name: Set(m.company_name.clone()),
            display_name: Set(m.display_name.clone()),
            sort_name: Set(m.sort_name.clone()),
            search_text: Set(m.search_text.clone()),
            company_id: Set(m.company_id),
            updated_at: Set(m.updated_at),
            ..Default::default()
        })
        .exec(w.tx())
        .await?;
        self.write_channels(w, id.0, &valid, (emails_changed, phones_changed, false)).await?;
        if m.address_book_id != cur_book || m.sort_name != cur_sort {
            DataHandle::sync_membership_keys(w, m.id, m.address_book_id, &m.sort_name).await?;
        }
        if m.address_book_id != cur_book {
            // Messages and tickets carry their contact's book for the reading rule.
            for table in [crate::core::sql::Moved::Messages, crate::core::sql::Moved::Tickets] {
                let mut q = crate::core::sql::Sql::new(v.dialect);
                q.push(table.update_book())
                    .bind(m.address_book_id)
                    .push(" WHERE tenant_id = ")
                    .bind(v.tenant_id.0)
                    .push(" AND contact_id = ")
                    .bind(m.id);
                w.tx().execute_raw(q.build()).await?;
            }
        }
        w.emit(
            EventType::ContactUpdated,
            vec![Subject::new(SubjectKind::Contact, m.id)],
            serde_json::json!({"addressBookId": m.address_book_id, "previousAddressBookId": cur_book}),
        );
        // Names, e-mails and phones are personal data: the log names the fields that changed,
        // never their values; ids (book, company) get before/after.
        let mut changes = Changes::new();
        changes.field("addressBookId", cur_book, m.address_book_id).field("companyId", cur_company, m.company_id);
        w.audit("contact.update", "Contact", Some(m.id), changes.details(serde_json::json!({"fields": patched})));
        Ok(m)
    }

    /// Deletes a contact the viewer can write. Persons linked to it as their company are unlinked.
    pub async fn delete_contact(&self, id: ContactId) -> StoreResult<ContactId> {
        let v = self.viewer();
        let w = self.begin().await?;
        let cur = self.contact_for(w.tx(), v, id, AccessLevel::Write).await?;
        // A membership being added right now (it holds the contact FOR SHARE) commits first, so
        // the LEAVE entries written next cover every membership the delete ends.
        w.lock_row(crate::core::uow::LockedTable::Contacts, id.0, crate::core::dialect::RowLock::Update).await?;
        DataHandle::end_contact_memberships(&w, id.0, "contact deleted").await?;
        // External ids point at the row without a foreign key (one column, four tables).
        let mut had = crate::external::delete_of(&w, cohort_domain::external::ExternalKind::Contact, &[id.0]).await?;
        contact::Entity::update_many()
            .col_expr(contact::Column::CompanyId, Expr::value(Option::<Uuid>::None))
            .filter(contact::Column::TenantId.eq(v.tenant_id.0))
            .filter(contact::Column::CompanyId.eq(id.0))
            .exec(w.tx())
            .await?;
        contact::Entity::delete_many()
            .filter(contact::Column::TenantId.eq(v.tenant_id.0))
            .filter(contact::Column::Id.eq(id.0))
            .exec(w.tx())
            .await?;
        // The tombstone of integrators' change feeds names the contact by the ids their systems
        // know it by (the feed shows it only to readers of its book).
        w.emit(
            EventType::ContactDeleted,
            vec![Subject::new(SubjectKind::Contact, id.0)],
            serde_json::json!({"addressBookId": cur.address_book_id,
                "externalIds": had.remove(&id.0).unwrap_or_default()}),
        );
        w.audit("contact.delete", "Contact", Some(id.0), serde_json::json!({"addressBookId": cur.address_book_id}));
        w.commit().await?;
        Ok(id)
    }

    /// Sets (or, with `None`, clears) a contact's business status, recording the change in its
    /// history. Setting the status it already has records nothing.
    pub async fn set_business_status(
        &self,
        id: ContactId,
        key: Option<&str>,
        note: Option<&str>,
    ) -> StoreResult<ContactRecord> {
        let note = optional_text("note", note)?;
        let w = self.begin().await?;
        let (m, _) = self.set_status_in(&w, id, key, note).await?;
        w.commit().await?;
        m.try_into()
    }

    /// The write of [`DataHandle::set_business_status`] inside the caller's unit of work (also a
    /// sequence step's). Returns the contact as it is now and whether anything changed.
    pub(crate) async fn set_status_in(
        &self,
        w: &UnitOfWork,
        id: ContactId,
        key: Option<&str>,
        note: Option<String>,
    ) -> StoreResult<(contact::Model, bool)> {
        let v = self.viewer();
        let cur = self.contact_for(w.tx(), v, id, AccessLevel::Write).await?;
        let to = match key {
            Some(k) => Some(self.status_id_for(w.tx(), v, k).await?),
            None => None,
        };
        if to == cur.business_status_id {
            return Ok((cur, false));
        }
        let now = Utc::now();
        contact::Entity::update_many()
            .col_expr(contact::Column::BusinessStatusId, Expr::value(to))
            .col_expr(contact::Column::UpdatedAt, Expr::value(now))
            .filter(contact::Column::TenantId.eq(v.tenant_id.0))
            .filter(contact::Column::Id.eq(id.0))
            .exec(w.tx())
            .await?;
        insert_status_change(w.tx(), v, id.0, cur.business_status_id, to, note).await?;
        w.emit(
            EventType::ContactStatusChanged,
            vec![Subject::new(SubjectKind::Contact, id.0)],
            serde_json::json!({"fromStatusId": cur.business_status_id, "toStatusId": to}),
        );
        let mut changes = Changes::new();
        changes.field("businessStatusId", cur.business_status_id, to);
        w.audit("contact.setBusinessStatus", "Contact", Some(id.0), changes.details(serde_json::json!({})));
        Ok((contact::Model { business_status_id: to, updated_at: now, ..cur }, true))
    }

    /// The status changes of contact `id` if the viewer can see it (none otherwise): the one
    /// query behind `status_history` and its count.
    fn status_changes_of(&self, id: ContactId) -> Select<status_change::Entity> {
        let v = self.viewer();
        let visible = Query::select()
            .column(contact::Column::Id)
            .from(contact::Entity)
            .and_where(contact::Column::TenantId.eq(v.tenant_id.0))
            .and_where(contact::Column::Id.eq(id.0))
            .cond_where(book_visible(v, contact::Column::AddressBookId, AccessLevel::Read))
            .to_owned();
        status_change::Entity::find()
            .filter(status_change::Column::TenantId.eq(v.tenant_id.0))
            .filter(status_change::Column::ContactId.in_subquery(visible))
    }

    /// How many status changes a visible contact has (0 for a hidden or unknown one), as
    /// `status_history` lists them.
    pub async fn status_history_count(&self, id: ContactId) -> StoreResult<u64> {
        Ok(self.status_changes_of(id).count(&self.db).await?)
    }

    /// A visible contact's status history, newest first.
    pub async fn status_history(&self, id: ContactId, page: &PageRequest) -> StoreResult<Page<StatusChangeRecord>> {
        let mut q = self.status_changes_of(id);
        if let Some(crate::core::page::TimeKey(at, cid)) = page.after_key()? {
            q = q.filter(crate::core::page::before(
                status_change::Column::ChangedAt,
                status_change::Column::Id,
                (at, cid),
            ));
        }
        let rows = q
            .order_by_desc(status_change::Column::ChangedAt)
            .order_by_desc(status_change::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        let recs = rows
            .into_iter()
            .map(|r| StatusChangeRecord {
                id: StatusChangeId(r.id),
                contact_id: ContactId(r.contact_id),
                from_status_id: r.from_status_id.map(BusinessStatusId),
                to_status_id: r.to_status_id.map(BusinessStatusId),
                changed_by: r.changed_by.map(UserId),
                changed_at: r.changed_at,
                note: r.note,
            })
            .collect();
        Ok(Page::from_rows(recs, page, |r: &StatusChangeRecord| (r.changed_at, r.id.0)))
    }

    /// Business statuses by id (for the per-request loader).
    pub async fn business_statuses_by_ids(
        &self,
        ids: &[BusinessStatusId],
    ) -> StoreResult<Vec<crate::BusinessStatusRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        Ok(business_status::Entity::find()
            .filter(business_status::Column::TenantId.eq(v.tenant_id.0))
            .filter(business_status::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

async fn insert_status_change<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    contact_id: Uuid,
    from: Option<Uuid>,
    to: Option<Uuid>,
    note: Option<String>,
) -> StoreResult<()> {
    status_change::Entity::insert(status_change::ActiveModel {
        tenant_id: Set(v.tenant_id.0),
        id: Set(Uuid::now_v7()),
        contact_id: Set(contact_id),
        from_status_id: Set(from),
        to_status_id: Set(to),
        changed_by: Set(Some(v.user_id.0)),
        changed_at: Set(Utc::now()),
        note: Set(note),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// E-mails and phones of the visible contacts among `ids`, on any connection or transaction.
pub(crate) async fn channels_on<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    ids: &[ContactId],
) -> StoreResult<HashMap<ContactId, ContactChannels>> {
    let mut out: HashMap<ContactId, ContactChannels> = HashMap::new();
    for (c, emails) in emails_on(conn, v, ids).await? {
        out.entry(c).or_default().emails = emails;
    }
    for (c, phones) in phones_on(conn, v, ids).await? {
        out.entry(c).or_default().phones = phones;
    }
    Ok(out)
}

/// The ids among `ids` of contacts the viewer can see, as a subquery.
fn visible_among(v: &Viewer, ids: &[ContactId]) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(contact::Column::Id)
        .from(contact::Entity)
        .and_where(contact::Column::TenantId.eq(v.tenant_id.0))
        .and_where(contact::Column::Id.is_in(ids.iter().map(|i| i.0)))
        .cond_where(book_visible(v, contact::Column::AddressBookId, AccessLevel::Read))
        .to_owned()
}

async fn emails_on<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    ids: &[ContactId],
) -> StoreResult<HashMap<ContactId, Vec<EmailRecord>>> {
    let mut out: HashMap<ContactId, Vec<EmailRecord>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = contact_email::Entity::find()
        .filter(contact_email::Column::TenantId.eq(v.tenant_id.0))
        .filter(contact_email::Column::ContactId.in_subquery(visible_among(v, ids)))
        .order_by_asc(contact_email::Column::ContactId)
        .order_by_asc(contact_email::Column::Position)
        .all(conn)
        .await?;
    for e in rows {
        out.entry(ContactId(e.contact_id)).or_default().push(EmailRecord { address: e.address, label: e.label });
    }
    Ok(out)
}

async fn phones_on<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    ids: &[ContactId],
) -> StoreResult<HashMap<ContactId, Vec<PhoneRecord>>> {
    let mut out: HashMap<ContactId, Vec<PhoneRecord>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = contact_phone::Entity::find()
        .filter(contact_phone::Column::TenantId.eq(v.tenant_id.0))
        .filter(contact_phone::Column::ContactId.in_subquery(visible_among(v, ids)))
        .order_by_asc(contact_phone::Column::ContactId)
        .order_by_asc(contact_phone::Column::Position)
        .all(conn)
        .await?;
    for p in rows {
        out.entry(ContactId(p.contact_id)).or_default().push(PhoneRecord { number: p.number, label: p.label });
    }
    Ok(out)
}
