//! The visibility rule, defined once. "A viewer sees an address book at level ≥ `min` iff they
//! are admin, or a grant to them or one of their user groups gives at least `min` on it." It is
//! compiled into SQL fragments ([`Frag`]) that both statement builders render: the hand-written
//! [`Sql`](crate::core::sql::Sql) of the hot paths and sea-query conditions. Everything that touches
//! contacts and groups is filtered through it inside the same statement as the data, so counts,
//! filters, sort positions and cursors are computed over visible rows only.
//!
//! The books come from the viewer's grant snapshot (bound as a list) or, when the snapshot is not
//! inline (very many grants), from the grants subquery in the same statement.

use crate::access::viewer::Viewer;
use crate::core::dialect::{Dialect, InlineBooks, pg_uuid_array};
use crate::core::sql::Sql;
use crate::error::StoreResult;
use cohort_domain::AccessLevel;
use cohort_domain::ids::AddressBookId;
use sea_orm::sea_query::{Condition, Expr, IntoIden};
use sea_orm::{ColumnTrait, ConnectionTrait, Value};
use std::collections::HashMap;

/// A piece of a compiled rule: fixed SQL text, the filtered column, or a bound value.
#[derive(Debug, Clone)]
pub(crate) enum Frag {
    Text(&'static str),
    Column,
    Value(Value),
}

/// `SELECT vg.address_book_id, vg.level …`: the grant rows that apply to the viewer, granted to
/// them directly or through a user group, optionally only those on the book in the filtered
/// column. Two index lookups glued by UNION ALL (the direct grants by principal; the user's
/// groups, then their grants) rather than one condition with an OR, which PostgreSQL can only
/// answer by filtering every grant of the tenant.
fn grant_rows(v: &Viewer, on_column: bool, out: &mut Vec<Frag>) {
    use Frag::*;
    out.extend([
        Text("SELECT vg.address_book_id, vg.level FROM address_book_grants vg WHERE vg.tenant_id = "),
        Value(v.tenant_id.0.into()),
        Text(" AND vg.principal_kind = 'USER' AND vg.principal_id = "),
        Value(v.user_id.0.into()),
    ]);
    if on_column {
        out.extend([Text(" AND vg.address_book_id = "), Column]);
    }
    out.extend([
        Text(" UNION ALL SELECT vg.address_book_id, vg.level FROM user_group_members vm JOIN address_book_grants vg ON vg.tenant_id = vm.tenant_id AND vg.principal_kind = 'GROUP' AND vg.principal_id = vm.user_group_id WHERE vm.tenant_id = "),
        Value(v.tenant_id.0.into()),
        Text(" AND vm.user_id = "),
        Value(v.user_id.0.into()),
    ]);
    if on_column {
        out.extend([Text(" AND vg.address_book_id = "), Column]);
    }
}

/// `<column> is a book the viewer holds at least `min` on` — the rule.
pub(crate) fn books_rule(v: &Viewer, min: AccessLevel) -> Vec<Frag> {
    use Frag::*;
    if v.is_admin() {
        // Admins read every book of their tenant; the tenant filter is applied by every query.
        return vec![Text("1 = 1")];
    }
    if let Some(books) = v.grants.books(min) {
        if books.is_empty() {
            return vec![Text("1 = 0")];
        }
        return match v.dialect.inline_books() {
            InlineBooks::PgArray(before, after) => {
                vec![Column, Text(before), Value(pg_uuid_array(&books).into()), Text(after)]
            }
            InlineBooks::List => {
                let mut out = Vec::with_capacity(books.len() * 2 + 2);
                out.push(Column);
                out.push(Text(" IN ("));
                for (i, b) in books.into_iter().enumerate() {
                    if i > 0 {
                        out.push(Text(", "));
                    }
                    out.push(Value(b.into()));
                }
                out.push(Text(")"));
                out
            }
        };
    }
    // The grants read inside the statement: the same snapshot as the rows they filter. On
    // PostgreSQL `= ANY(ARRAY(…))` is an InitPlan, evaluated once per statement.
    let (open, close) = v.dialect.books_subquery();
    let mut out = vec![Column, Text(open), Text("SELECT vb.address_book_id FROM (")];
    grant_rows(v, false, &mut out);
    out.extend([Text(") vb WHERE vb.level >= "), Value(min.as_i16().into()), Text(close)]);
    out
}

/// `(SELECT MAX(level) … WHERE <applies to viewer> AND address_book_id = <column>)`: the viewer's
/// level on the book of each row, as a correlated subquery in the same statement as the rows
/// (NULL where they hold none). Not for admins (they hold MANAGE everywhere).
fn level_rule(v: &Viewer) -> Vec<Frag> {
    use Frag::*;
    let mut out = vec![Text("(SELECT MAX(vl.level) FROM (")];
    grant_rows(v, true, &mut out);
    out.push(Text(") vl)"));
    out
}

/// Whether a row's level for this viewer must come from the statement ([`Sql::viewer_level`]):
/// neither admin (MANAGE everywhere) nor holding an inline grant snapshot.
pub(crate) fn level_in_statement(v: &Viewer) -> bool {
    !v.is_admin() && v.grants.levels().is_none()
}

/// The viewer's level on `book` when it is known without the database (admin, inline grants);
/// `None` when it must come from the statement or the viewer holds nothing on the book.
pub(crate) fn known_level(v: &Viewer, book: uuid::Uuid) -> Option<AccessLevel> {
    if v.is_admin() {
        return Some(AccessLevel::Manage);
    }
    v.grants.levels()?.get(&book).copied()
}

/// Renders fragments as a sea-query expression over `col`, with the dialect's placeholders.
fn to_expr(frags: Vec<Frag>, dialect: Dialect, col: Expr) -> Expr {
    let mut template = String::with_capacity(256);
    let mut exprs = Vec::new();
    for f in frags {
        match f {
            Frag::Text(t) => template.push_str(t),
            Frag::Column => {
                exprs.push(col.clone());
                dialect.placeholder(exprs.len(), &mut template);
            }
            Frag::Value(val) => {
                exprs.push(Expr::val(val));
                dialect.placeholder(exprs.len(), &mut template);
            }
        }
    }
    Expr::cust_with_exprs(template, exprs)
}

/// The rule as a sea-query condition on `book_col` (qualified by its table).
pub(crate) fn book_visible<C: ColumnTrait>(v: &Viewer, book_col: C, min: AccessLevel) -> Condition {
    book_visible_at(v, book_col.entity_name(), book_col, min)
}

/// [`book_visible`] for a column of an aliased table (`alias.book_col`).
pub(crate) fn book_visible_at<T: IntoIden, C: IntoIden>(
    v: &Viewer,
    alias: T,
    book_col: C,
    min: AccessLevel,
) -> Condition {
    if v.is_admin() {
        return Condition::all();
    }
    Condition::all().add(to_expr(books_rule(v, min), v.dialect, Expr::col((alias, book_col))))
}

/// The viewer's level on the book in `table.book_col`, as a correlated subquery expression.
pub(crate) fn level_on_book<T: IntoIden, C: IntoIden>(v: &Viewer, table: T, book_col: C) -> Expr {
    to_expr(level_rule(v), v.dialect, Expr::col((table, book_col)))
}

impl Sql {
    /// Pushes compiled fragments with `col` for the filtered column.
    pub(crate) fn push_frags(&mut self, frags: Vec<Frag>, col: &'static str) -> &mut Self {
        for f in frags {
            match f {
                Frag::Text(t) => self.push(t),
                Frag::Column => self.push(col),
                Frag::Value(val) => self.bind(val),
            };
        }
        self
    }

    /// `<col> in the books where the viewer holds at least `min``.
    pub(crate) fn visible_books(&mut self, v: &Viewer, col: &'static str, min: AccessLevel) -> &mut Self {
        self.push_frags(books_rule(v, min), col)
    }

    /// `(SELECT MAX(level) …)`: the viewer's level on the book in `col`, NULL where they hold
    /// none (see [`level_in_statement`]).
    pub(crate) fn viewer_level(&mut self, v: &Viewer, col: &'static str) -> &mut Self {
        self.push_frags(level_rule(v), col)
    }

    /// `(SELECT descendant ids of root that the viewer can see)`: the subtree a viewer's
    /// `includeSubgroups` covers. Subgroups homed in books they cannot read do not count.
    pub(crate) fn visible_subtree(&mut self, v: &Viewer, root: uuid::Uuid) -> &mut Self {
        self.push("(SELECT cl.descendant_id FROM group_closure cl JOIN contact_groups dg ON dg.tenant_id = cl.tenant_id AND dg.id = cl.descendant_id WHERE cl.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND cl.ancestor_id = ")
            .bind(root)
            .push(" AND ")
            .visible_books(v, "dg.address_book_id", AccessLevel::Read)
            .push(")")
    }

    /// `(SELECT ids of the groups the viewer can see)`.
    pub(crate) fn visible_groups(&mut self, v: &Viewer) -> &mut Self {
        self.push("(SELECT vgr.id FROM contact_groups vgr WHERE vgr.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND ")
            .visible_books(v, "vgr.address_book_id", AccessLevel::Read)
            .push(")")
    }
}

/// Levels on many books at once (one statement at most), for rows already read through the rule
/// (list views that show `myAccess`). Books the viewer holds nothing on are absent.
pub(crate) async fn book_levels<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    books: &[uuid::Uuid],
) -> StoreResult<HashMap<uuid::Uuid, AccessLevel>> {
    let mut out = HashMap::new();
    if books.is_empty() {
        return Ok(out);
    }
    if v.is_admin() {
        out.extend(books.iter().map(|b| (*b, AccessLevel::Manage)));
        return Ok(out);
    }
    if let Some(levels) = v.grants.levels().or_else(|| v.grants.loaded()) {
        out.extend(books.iter().filter_map(|b| Some((*b, *levels.get(b)?))));
        return Ok(out);
    }
    // The grants are read inside the statements; a Rust-side check reads them once per request.
    let mut frags = vec![Frag::Text("SELECT vb.address_book_id, vb.level FROM (")];
    grant_rows(v, false, &mut frags);
    frags.push(Frag::Text(") vb"));
    let mut q = Sql::new(v.dialect);
    q.push_frags(frags, "");
    let mut levels = std::collections::BTreeMap::new();
    for row in conn.query_all_raw(q.build()).await? {
        let book: uuid::Uuid = row.try_get("", "address_book_id")?;
        let level: i16 = row.try_get("", "level")?;
        let level = AccessLevel::from_i16(level)
            .ok_or_else(|| crate::error::StoreError::corrupt("address_book_grants.level", level))?;
        let e = levels.entry(book).or_insert(level);
        if level > *e {
            *e = level;
        }
    }
    out.extend(books.iter().filter_map(|b| Some((*b, *levels.get(b)?))));
    v.grants.remember(levels);
    Ok(out)
}

/// The viewer's effective level on one book, or `None` when the book does not exist for them.
pub(crate) async fn book_level<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    book: AddressBookId,
) -> StoreResult<Option<AccessLevel>> {
    if v.is_admin() {
        let mut q = Sql::new(v.dialect);
        q.push("SELECT id FROM address_books WHERE tenant_id = ").bind(v.tenant_id.0).push(" AND id = ").bind(book.0);
        return Ok(conn.query_one_raw(q.build()).await?.map(|_| AccessLevel::Manage));
    }
    Ok(book_levels(conn, v, &[book.0]).await?.get(&book.0).copied())
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
    use crate::access::viewer::{GrantSnapshot, Viewer};
    use crate::entities::contact;
    use cohort_domain::Roles;
    use cohort_domain::ids::{TenantId, UserId};
    use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};
    use std::sync::Arc;
    use uuid::Uuid;

    fn viewer(books: &[(u128, AccessLevel)], dialect: Dialect, max_inline: usize) -> Viewer {
        Viewer::for_tests(
            TenantId(Uuid::from_u128(1)),
            UserId(Uuid::from_u128(2)),
            Roles::from_claims(["agent"]),
            Arc::new(GrantSnapshot::from_rows(books.iter().map(|(b, l)| (Uuid::from_u128(*b), *l)), max_inline)),
            dialect,
        )
    }

    fn render(v: &Viewer, backend: DbBackend) -> String {
        contact::Entity::find()
            .filter(book_visible(v, contact::Column::AddressBookId, AccessLevel::Write))
            .build(backend)
            .to_string()
    }

    fn render_sql(v: &Viewer) -> (String, usize) {
        let mut q = Sql::new(v.dialect);
        q.push("SELECT 1 FROM contacts c WHERE ").visible_books(v, "c.address_book_id", AccessLevel::Write);
        let st = q.build();
        let n = st.values.map(|v| v.0.len()).unwrap_or(0);
        (st.sql, n)
    }

    #[test]
    fn inline_books_are_one_array_on_postgres_and_a_list_on_sqlite() {
        let v = viewer(
            &[(10, AccessLevel::Read), (11, AccessLevel::Write), (12, AccessLevel::Manage)],
            Dialect::Postgres,
            1000,
        );
        let pg = render(&v, DbBackend::Postgres);
        assert!(
            pg.ends_with(
                r#"WHERE "contacts"."address_book_id" = ANY(CAST((SELECT CAST('{00000000-0000-0000-0000-00000000000b,00000000-0000-0000-0000-00000000000c}' AS uuid[])) AS uuid[]))"#
            ),
            "{pg}"
        );
        assert_eq!(
            render_sql(&v),
            (
                "SELECT 1 FROM contacts c WHERE c.address_book_id = ANY(CAST((SELECT CAST($1 AS uuid[])) AS uuid[]))"
                    .into(),
                1
            )
        );
        let v = viewer(
            &[(10, AccessLevel::Read), (11, AccessLevel::Write), (11, AccessLevel::Read)],
            Dialect::Sqlite,
            1000,
        );
        let lite = render(&v, DbBackend::Sqlite);
        assert!(
            lite.ends_with(r#"WHERE "contacts"."address_book_id" IN ('00000000-0000-0000-0000-00000000000b')"#),
            "{lite}"
        );
        assert!(!lite.contains("0000000a"), "READ-only book 10 does not satisfy WRITE: {lite}");
    }

    #[test]
    fn no_grants_match_nothing_and_too_many_fall_back_to_the_subquery() {
        let v = viewer(&[], Dialect::Postgres, 1000);
        assert!(render(&v, DbBackend::Postgres).ends_with("WHERE 1 = 0"));
        let v = viewer(&[(10, AccessLevel::Read)], Dialect::Postgres, 0);
        let pg = render(&v, DbBackend::Postgres);
        assert!(pg.contains("= ANY(ARRAY(SELECT vb.address_book_id FROM (SELECT vg.address_book_id, vg.level FROM address_book_grants vg"), "{pg}");
        let v = viewer(&[(10, AccessLevel::Read)], Dialect::Sqlite, 0);
        let lite = render(&v, DbBackend::Sqlite);
        assert!(lite.contains(r#""contacts"."address_book_id" IN (SELECT vb.address_book_id"#), "{lite}");
    }

    #[test]
    fn both_builders_render_the_same_rule() {
        // Same text after the column, same placeholders, same values: one rule, two renderers.
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for max_inline in [0, 1000] {
                let v = viewer(&[(10, AccessLevel::Manage), (11, AccessLevel::Write)], dialect, max_inline);
                let sea = contact::Entity::find()
                    .filter(book_visible(&v, contact::Column::AddressBookId, AccessLevel::Write))
                    .build(dialect.backend());
                let (hand, values) = render_sql(&v);
                let sea_rule = sea.sql.split_once(r#"WHERE "contacts"."address_book_id""#).map(|p| p.1.to_owned());
                let hand_rule = hand.split_once("WHERE c.address_book_id").map(|p| p.1.to_owned());
                assert_eq!(sea_rule, hand_rule, "{dialect:?} inline<={max_inline}");
                assert_eq!(sea.values.map(|v| v.0.len()).unwrap_or(0), values);
            }
        }
    }
}
