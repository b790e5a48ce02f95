//! Address books and their grants. A viewer sees a book iff they are admin or hold any grant on it
//! (directly or through a user group); granting and revoking need `MANAGE` on the book.

use crate::access::handle::DataHandle;
use crate::core::page::{Page, PageRequest};
use crate::core::visibility::{book_level, book_levels, book_visible};
use crate::entities::{address_book, grant, user, user_group};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};

const PRINCIPAL_USER: &str = "USER";
const PRINCIPAL_GROUP: &str = "GROUP";
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::ids::{AddressBookId, UserGroupId, UserId};
use cohort_domain::text::{Name, optional_text};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBookRecord {
    pub id: AddressBookId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The viewer's effective level on this book (always at least `Read`: otherwise it is hidden).
    pub my_access: AccessLevel,
}

/// Who a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    User(UserId),
    UserGroup(UserGroupId),
}

impl Principal {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Principal::User(_) => PRINCIPAL_USER,
            Principal::UserGroup(_) => PRINCIPAL_GROUP,
        }
    }
    pub(crate) fn id(&self) -> Uuid {
        match self {
            Principal::User(u) => u.0,
            Principal::UserGroup(g) => g.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub address_book_id: AddressBookId,
    pub principal: Principal,
    pub level: AccessLevel,
    pub granted_at: DateTime<Utc>,
    pub granted_by: Option<UserId>,
}

fn grant_record(m: grant::Model) -> StoreResult<GrantRecord> {
    let principal = match m.principal_kind.as_str() {
        PRINCIPAL_USER => Principal::User(UserId(m.principal_id)),
        PRINCIPAL_GROUP => Principal::UserGroup(UserGroupId(m.principal_id)),
        other => return Err(crate::error::StoreError::corrupt("address_book_grants.principal_kind", other)),
    };
    Ok(GrantRecord {
        address_book_id: AddressBookId(m.address_book_id),
        principal,
        level: crate::core::decode::access_level(m.level)?,
        granted_at: m.granted_at,
        granted_by: m.granted_by.map(UserId),
    })
}

impl DataHandle {
    pub async fn create_address_book(&self, name: &str, description: Option<&str>) -> StoreResult<AddressBookRecord> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("creating address books needs the admin role"));
        }
        let name = Name::parse("name", name)?;
        let description = optional_text("description", description)?;
        let w = self.begin().await?;
        let id = Uuid::now_v7();
        let now = Utc::now();
        address_book::Entity::insert(address_book::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            id: Set(id),
            name: Set(name.as_str().to_owned()),
            description: Set(description.clone()),
            created_at: Set(now),
        })
        .exec_without_returning(w.tx())
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "an address book with this name already exists"))?;
        w.audit("addressBook.create", "AddressBook", Some(id), serde_json::json!({"name": name.as_str()}));
        w.emit(EventType::AddressBookCreated, vec![Subject::new(SubjectKind::AddressBook, id)], serde_json::json!({}));
        w.commit().await?;
        Ok(AddressBookRecord {
            id: AddressBookId(id),
            name: name.into_string(),
            description,
            created_at: now,
            my_access: AccessLevel::Manage,
        })
    }

    /// The books the viewer can see: `address_books` pages them, `address_book_count` counts them.
    fn visible_books(&self) -> sea_orm::Select<address_book::Entity> {
        let v = self.viewer();
        address_book::Entity::find().filter(address_book::Column::TenantId.eq(v.tenant_id.0)).filter(book_visible(
            v,
            address_book::Column::Id,
            AccessLevel::Read,
        ))
    }

    /// The books the viewer can see, by name.
    pub async fn address_books(&self, page: &PageRequest) -> StoreResult<Page<AddressBookRecord>> {
        let mut q = self.visible_books();
        if let Some((name, id)) = page.after_key::<(String, Uuid)>()? {
            q = q.filter(crate::core::page::after(address_book::Column::Name, address_book::Column::Id, (name, id)));
        }
        let rows = q
            .order_by_asc(address_book::Column::Name)
            .order_by_asc(address_book::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        let recs = self.with_levels(rows).await?;
        Ok(Page::from_rows(recs, page, |b| (b.name.clone(), b.id.0)))
    }

    /// How many books the viewer can see.
    pub async fn address_book_count(&self) -> StoreResult<u64> {
        Ok(self.visible_books().count(&self.db).await?)
    }

    /// Visible books among `ids` (unknown and hidden ids are simply absent).
    pub async fn address_books_by_ids(&self, ids: &[AddressBookId]) -> StoreResult<Vec<AddressBookRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = address_book::Entity::find()
            .filter(address_book::Column::TenantId.eq(v.tenant_id.0))
            .filter(address_book::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .filter(book_visible(v, address_book::Column::Id, AccessLevel::Read))
            .all(&self.db)
            .await?;
        self.with_levels(rows).await
    }

    async fn with_levels(&self, rows: Vec<address_book::Model>) -> StoreResult<Vec<AddressBookRecord>> {
        let v = self.viewer();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let levels = book_levels(&self.db, v, &ids).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let my_access = *levels.get(&r.id)?;
                Some(AddressBookRecord {
                    id: AddressBookId(r.id),
                    name: r.name,
                    description: r.description,
                    created_at: r.created_at,
                    my_access,
                })
            })
            .collect())
    }

    /// Grants on a book (needs `MANAGE` on it).
    pub async fn grants(&self, book: AddressBookId) -> StoreResult<Vec<GrantRecord>> {
        let v = self.viewer();
        match book_level(&self.db, v, book).await? {
            None => return Err(StoreError::NotFound),
            Some(l) if l < AccessLevel::Manage => {
                return Err(StoreError::forbidden("reading grants needs MANAGE on the address book"));
            }
            Some(_) => {}
        }
        grant::Entity::find()
            .filter(grant::Column::TenantId.eq(v.tenant_id.0))
            .filter(grant::Column::AddressBookId.eq(book.0))
            .order_by_asc(grant::Column::PrincipalKind)
            .order_by_asc(grant::Column::PrincipalId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(grant_record)
            .collect()
    }

    /// Grants `level` on `book` to `principal`, replacing any previous level (needs `MANAGE`).
    pub async fn grant_access(
        &self,
        book: AddressBookId,
        principal: Principal,
        level: AccessLevel,
    ) -> StoreResult<GrantRecord> {
        let v = self.viewer();
        let w = self.begin().await?;
        match book_level(w.tx(), v, book).await? {
            None => return Err(StoreError::NotFound),
            Some(l) if l < AccessLevel::Manage => {
                return Err(StoreError::forbidden("granting access needs MANAGE on the address book"));
            }
            Some(_) => {}
        }
        let principal_exists = match principal {
            Principal::User(u) => user::Entity::find()
                .filter(user::Column::TenantId.eq(v.tenant_id.0))
                .filter(user::Column::Id.eq(u.0))
                .one(w.tx())
                .await?
                .is_some(),
            Principal::UserGroup(g) => user_group::Entity::find()
                .filter(user_group::Column::TenantId.eq(v.tenant_id.0))
                .filter(user_group::Column::Id.eq(g.0))
                .one(w.tx())
                .await?
                .is_some(),
        };
        if !principal_exists {
            return Err(StoreError::NotFound);
        }
        let now = Utc::now();
        grant::Entity::insert(grant::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            address_book_id: Set(book.0),
            principal_kind: Set(principal.kind().to_owned()),
            principal_id: Set(principal.id()),
            level: Set(level.as_i16()),
            granted_at: Set(now),
            granted_by: Set(Some(v.user_id.0)),
        })
        .on_conflict(
            OnConflict::columns([
                grant::Column::TenantId,
                grant::Column::AddressBookId,
                grant::Column::PrincipalKind,
                grant::Column::PrincipalId,
            ])
            .update_columns([grant::Column::Level, grant::Column::GrantedAt, grant::Column::GrantedBy])
            .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit("addressBook.grant",
            "AddressBook",
            Some(book.0),
            serde_json::json!({"principalKind": principal.kind(), "principalId": principal.id(), "level": level.as_i16()}),
        );
        w.emit(EventType::AccessGranted, vec![Subject::new(SubjectKind::AddressBook, book.0)], serde_json::json!({"principalKind": principal.kind(), "principalId": principal.id(), "level": level.as_i16()}));
        w.commit().await?;
        Ok(GrantRecord { address_book_id: book, principal, level, granted_at: now, granted_by: Some(v.user_id) })
    }

    /// Revokes a principal's grant on a book (needs `MANAGE`). Returns whether a grant existed.
    pub async fn revoke_access(&self, book: AddressBookId, principal: Principal) -> StoreResult<bool> {
        let v = self.viewer();
        let w = self.begin().await?;
        match book_level(w.tx(), v, book).await? {
            None => return Err(StoreError::NotFound),
            Some(l) if l < AccessLevel::Manage => {
                return Err(StoreError::forbidden("revoking access needs MANAGE on the address book"));
            }
            Some(_) => {}
        }
        let res = grant::Entity::delete_many()
            .filter(grant::Column::TenantId.eq(v.tenant_id.0))
            .filter(grant::Column::AddressBookId.eq(book.0))
            .filter(grant::Column::PrincipalKind.eq(principal.kind()))
            .filter(grant::Column::PrincipalId.eq(principal.id()))
            .exec(w.tx())
            .await?;
        // No grant, no change: nothing to audit or report.
        if res.rows_affected > 0 {
            w.audit(
                "addressBook.revoke",
                "AddressBook",
                Some(book.0),
                serde_json::json!({"principalKind": principal.kind(), "principalId": principal.id()}),
            );
            w.emit(
                EventType::AccessRevoked,
                vec![Subject::new(SubjectKind::AddressBook, book.0)],
                serde_json::json!({"principalKind": principal.kind(), "principalId": principal.id()}),
            );
        }
        w.commit().await?;
        Ok(res.rows_affected > 0)
    }

    /// The viewer's level on a book, `None` if it does not exist for them.
    pub async fn address_book_access(&self, book: AddressBookId) -> StoreResult<Option<AccessLevel>> {
        let v = self.viewer();
        book_level(&self.db, v, book).await
    }
}
