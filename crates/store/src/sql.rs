//! A tiny builder for the hand-written statements of the hot paths (member pages, set-based
//! membership changes, closure-table maintenance). Values are always bound, never spliced; the
//! placeholder style follows the backend (`?` for SQLite, `$n` for PostgreSQL).

use crate::viewer::Viewer;
use cohort_domain::AccessLevel;
use sea_orm::{DbBackend, Statement, Value};

/// `<col> = ANY(<one text parameter holding a uuid[] literal>)`, split around the parameter: the
/// PostgreSQL form of "book in the viewer's grant snapshot" (see [`Sql::visible_books`]).
pub(crate) const PG_ANY_BOOKS: (&str, &str) = (" = ANY(CAST((SELECT CAST(", " AS uuid[])) AS uuid[]))");

pub(crate) struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(backend: DbBackend) -> Self {
        Sql { backend, text: String::with_capacity(256), values: Vec::new() }
    }

    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    pub(crate) fn bind(&mut self, v: impl Into<Value>) -> &mut Self {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.values.len().to_string());
            }
            _ => self.text.push('?'),
        }
        self
    }

    /// `(?, ?, …)` for a non-empty list.
    pub(crate) fn bind_list<V: Into<Value>>(&mut self, vs: impl IntoIterator<Item = V>) -> &mut Self {
        self.text.push('(');
        for (i, v) in vs.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v);
        }
        self.text.push(')');
        self
    }

    /// `<col> IN (books where the viewer holds at least `min`)`, or `1 = 1` for admins (the
    /// tenant filter is always applied separately).
    pub(crate) fn visible_books(&mut self, v: &Viewer, col: &str, min: AccessLevel) -> &mut Self {
        if v.is_admin() {
            return self.push("1 = 1");
        }
        if let Some(books) = v.grants.books(min) {
            if books.is_empty() {
                return self.push("1 = 0");
            }
            if self.backend == DbBackend::Postgres {
                // One array parameter behind an InitPlan, not `IN ($1, …, $n)`: in a cached
                // generic plan PostgreSQL rebuilds `ARRAY[$1, …, $n]` for every row it tests,
                // which cost more than the scan itself (perf: construct_md_array). The InitPlan
                // is evaluated once per execution. (`ANY((SELECT …))` would be the row-subquery
                // form of ANY, hence the outer CAST, which costs nothing: same type.)
                return self
                    .push(col)
                    .push(PG_ANY_BOOKS.0)
                    .bind(crate::viewer::GrantSnapshot::pg_array(&books))
                    .push(PG_ANY_BOOKS.1);
            }
            return self.push(col).push(" IN ").bind_list(books);
        }
        // PostgreSQL plans `IN (subquery)` as a semi-join, re-matching every scanned row against
        // the grants; `= ANY(ARRAY(subquery))` evaluates the viewer's books once per statement
        // (an InitPlan) and tests each row against that small array. Same rows, same statement.
        let open = if self.backend == DbBackend::Postgres { " = ANY(ARRAY(" } else { " IN (" };
        let close = if self.backend == DbBackend::Postgres { ")))))" } else { "))))" };
        self.push(col)
            .push(open)
            .push("SELECT vg.address_book_id FROM address_book_grants vg WHERE vg.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND vg.level >= ")
            .bind(min.as_i16())
            .push(" AND ((vg.principal_kind = 'USER' AND vg.principal_id = ")
            .bind(v.user_id.0)
            .push(") OR (vg.principal_kind = 'GROUP' AND vg.principal_id IN (SELECT vm.user_group_id FROM user_group_members vm WHERE vm.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND vm.user_id = ")
            .bind(v.user_id.0)
            .push(close)
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

    pub(crate) fn backend(&self) -> DbBackend {
        self.backend
    }

    pub(crate) fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// The contact columns, qualified by `alias`, in entity order (for `FromQueryResult`).
pub(crate) fn contact_columns(alias: &str) -> String {
    use crate::entities::contact;
    use sea_orm::{IdenStatic, Iterable};
    contact::Column::iter().map(|c| format!("{alias}.{}", c.as_str())).collect::<Vec<_>>().join(", ")
}
