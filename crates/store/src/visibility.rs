//! The visibility rule, as SQL. Everything that touches contacts (and later groups) is filtered
//! through these fragments, inside the same statement as the data, so counts, filters, sort
//! positions and cursors are computed over visible rows only.

use crate::entities::{grant, user_group_member};
use crate::error::StoreResult;
use crate::viewer::Viewer;
use cohort_domain::AccessLevel;
use cohort_domain::ids::AddressBookId;
use sea_orm::sea_query::{Condition, Query, SelectStatement};
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
    use sea_orm::sea_query::{Expr, ExprTrait, QueryStatementBuilder};
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
    if v.is_admin() { Condition::all() } else { Condition::all().add(book_col.in_subquery(books_with_level(v, min))) }
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
