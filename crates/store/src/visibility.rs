//! The visibility rule, as SQL. Everything that touches contacts and groups is filtered through
//! these fragments, inside the same statement as the data, so counts, filters, sort positions and
//! cursors are computed over visible rows only. The books come from the viewer's grant snapshot
//! (bound as a list) or, when it is not inline, from a grants subquery in the same statement.

use crate::entities::{grant, user_group_member};
use crate::error::StoreResult;
use crate::viewer::{GrantSnapshot, Viewer};
use cohort_domain::AccessLevel;
use cohort_domain::ids::AddressBookId;
use sea_orm::sea_query::{Condition, Query, SelectStatement};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

pub(crate) const PRINCIPAL_USER: &str = "USER";
pub(crate) const PRINCIPAL_GROUP: &str = "GROUP";

/// `grants` rows that apply to the viewer: granted directly or through a user group.
fn viewer_grants_condition(v: &Viewer) -> Condition {
    let my_groups = Query::select()
        .column(user_group_member::Column::UserGroupId)
        .from(user_group_member::Entity)
        .and_where(user_group_member::Column::TenantId.eq(v.tenant_id.0))
        .and_where(user_group_member::Column::UserId.eq(v.user_id.0))
        .to_owned();
    Condition::all().add(grant::Column::TenantId.eq(v.tenant_id.0)).add(
        Condition::any()
            .add(
                Condition::all()
                    .add(grant::Column::PrincipalKind.eq(PRINCIPAL_USER))
                    .add(grant::Column::PrincipalId.eq(v.user_id.0)),
            )
            .add(
                Condition::all()
                    .add(grant::Column::PrincipalKind.eq(PRINCIPAL_GROUP))
                    .add(grant::Column::PrincipalId.in_subquery(my_groups)),
            ),
    )
}

/// `SELECT address_book_id FROM address_book_grants WHERE <applies to viewer> AND level >= min`.
pub(crate) fn books_with_level(v: &Viewer, min: AccessLevel) -> SelectStatement {
    Query::select()
        .column(grant::Column::AddressBookId)
        .from(grant::Entity)
        .cond_where(viewer_grants_condition(v))
        .and_where(grant::Column::Level.gte(min.as_i16()))
        .to_owned()
}

/// `(SELECT MAX(level) FROM address_book_grants WHERE <applies to viewer> AND address_book_id =
/// <book_col>)`: the viewer's level on the book of each row, as a correlated subquery in the same
/// statement as the rows (NULL where they hold none). Not for admins (they hold MANAGE everywhere).
pub(crate) fn level_on_book<T, C>(v: &Viewer, table: T, book_col: C) -> sea_orm::sea_query::SimpleExpr
where
    T: sea_orm::sea_query::IntoIden,
    C: sea_orm::sea_query::IntoIden,
{
    use sea_orm::sea_query::QueryStatementBuilder;
    let sub = Query::select()
        .expr(Expr::col((grant::Entity, grant::Column::Level)).max())
        .from(grant::Entity)
        .cond_where(viewer_grants_condition(v))
        .and_where(Expr::col((grant::Entity, grant::Column::AddressBookId)).equals((table, book_col)))
        .to_owned();
    sea_orm::sea_query::SimpleExpr::SubQuery(None, Box::new(sub.into_sub_query_statement()))
}

/// A condition restricting `book_col` to books where the viewer holds at least `min`. For admins
/// it is the always-true condition (they read every book of the tenant; the tenant filter is
/// applied separately by every query).
pub(crate) fn book_visible<C: ColumnTrait>(v: &Viewer, book_col: C, min: AccessLevel) -> Condition {
    if v.is_admin() {
        return Condition::all();
    }
    match v.grants.books(min) {
        Some(books) if books.is_empty() => Condition::all().add(Expr::cust("1 = 0")),
        // One array parameter on PostgreSQL, for the reason given in `Sql::visible_books`.
        Some(books) if v.grants.is_postgres() => Condition::all().add(Expr::cust_with_exprs(
            format!("$1{}$2{}", crate::sql::PG_ANY_BOOKS.0, crate::sql::PG_ANY_BOOKS.1),
            [Expr::col((book_col.entity_name(), book_col)), Expr::val(GrantSnapshot::pg_array(&books))],
        )),
        Some(books) => Condition::all().add(book_col.is_in(books)),
        None => Condition::all().add(book_col.in_subquery(books_with_level(v, min))),
    }
}

/// The viewer's effective level on one book, or `None` when the book does not exist for them.
pub(crate) async fn book_level<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    book: AddressBookId,
) -> StoreResult<Option<AccessLevel>> {
    use crate::entities::address_book;
    if v.is_admin() {
        let exists = address_book::Entity::find()
            .filter(address_book::Column::TenantId.eq(v.tenant_id.0))
            .filter(address_book::Column::Id.eq(book.0))
            .select_only()
            .column(address_book::Column::Id)
            .into_tuple::<uuid::Uuid>()
            .one(conn)
            .await?;
        return Ok(exists.and(v.admin_level()));
    }
    if let Some(levels) = v.grants.levels() {
        return Ok(levels.get(&book.0).copied());
    }
    let levels: Vec<i16> = grant::Entity::find()
        .filter(viewer_grants_condition(v))
        .filter(grant::Column::AddressBookId.eq(book.0))
        .select_only()
        .column(grant::Column::Level)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(AccessLevel::effective(false, levels.into_iter().filter_map(AccessLevel::from_i16)))
}

/// Levels on many books at once (one statement), for list views that show `myAccess`.
pub(crate) async fn book_levels<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    books: &[uuid::Uuid],
) -> StoreResult<std::collections::HashMap<uuid::Uuid, AccessLevel>> {
    let mut out = std::collections::HashMap::new();
    if books.is_empty() {
        return Ok(out);
    }
    if v.is_admin() {
        for b in books {
            out.insert(*b, AccessLevel::Manage);
        }
        return Ok(out);
    }
    if let Some(levels) = v.grants.levels() {
        for b in books {
            if let Some(l) = levels.get(b) {
                out.insert(*b, *l);
            }
        }
        return Ok(out);
    }
    let rows: Vec<(uuid::Uuid, i16)> = grant::Entity::find()
        .filter(viewer_grants_condition(v))
        .filter(grant::Column::AddressBookId.is_in(books.iter().copied()))
        .select_only()
        .column(grant::Column::AddressBookId)
        .column(grant::Column::Level)
        .into_tuple()
        .all(conn)
        .await?;
    for (b, l) in rows {
        if let Some(l) = AccessLevel::from_i16(l) {
            let e = out.entry(b).or_insert(l);
            if l > *e {
                *e = l;
            }
        }
    }
    Ok(out)
}

/// Escapes `%`, `_` and `\` so user input in a LIKE pattern matches literally (with `ESCAPE '\'`).
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::contact;
    use crate::viewer::GrantSnapshot;
    use cohort_domain::Roles;
    use cohort_domain::ids::{TenantId, UserId};
    use sea_orm::{DbBackend, QueryTrait};
    use std::sync::Arc;
    use uuid::Uuid;

    fn viewer(books: &[(u128, AccessLevel)], postgres: bool) -> Viewer {
        Viewer {
            tenant_id: TenantId(Uuid::from_u128(1)),
            user_id: UserId(Uuid::from_u128(2)),
            subject: "s".into(),
            roles: Roles::from_claims(["agent"]),
            name: None,
            email: None,
            grants: Arc::new(GrantSnapshot::from_rows(
                books.iter().map(|(b, l)| (Uuid::from_u128(*b), *l)),
                1000,
                postgres,
            )),
        }
    }

    fn render(v: &Viewer, backend: DbBackend) -> String {
        contact::Entity::find()
            .filter(book_visible(v, contact::Column::AddressBookId, AccessLevel::Write))
            .build(backend)
            .to_string()
    }

    #[test]
    fn inline_books_are_one_array_on_postgres_and_a_list_on_sqlite() {
        let v = viewer(&[(10, AccessLevel::Read), (11, AccessLevel::Write), (12, AccessLevel::Manage)], true);
        let pg = render(&v, DbBackend::Postgres);
        assert!(
            pg.ends_with(
                r#"WHERE "contacts"."address_book_id" = ANY(CAST((SELECT CAST('{00000000-0000-0000-0000-00000000000b,00000000-0000-0000-0000-00000000000c}' AS uuid[])) AS uuid[]))"#
            ),
            "{pg}"
        );
        let v = viewer(&[(10, AccessLevel::Read), (11, AccessLevel::Write), (11, AccessLevel::Read)], false);
        let lite = render(&v, DbBackend::Sqlite);
        assert!(
            lite.ends_with(r#"WHERE "contacts"."address_book_id" IN ('00000000-0000-0000-0000-00000000000b')"#),
            "{lite}"
        );
        assert!(!lite.contains("0000000a"), "READ-only book 10 does not satisfy WRITE: {lite}");
    }

    #[test]
    fn no_grants_match_nothing_and_too_many_fall_back_to_the_subquery() {
        let v = viewer(&[], true);
        assert!(render(&v, DbBackend::Postgres).ends_with("WHERE 1 = 0"));
        let mut v = viewer(&[(10, AccessLevel::Read)], true);
        v.grants = Arc::new(GrantSnapshot::from_rows([(Uuid::from_u128(10), AccessLevel::Read)], 0, true));
        assert!(render(&v, DbBackend::Postgres).contains("address_book_grants"));
    }
}
