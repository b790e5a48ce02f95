//! A tiny builder for the hand-written statements of the hot paths (member pages, set-based
//! membership changes, closure-table maintenance).
//!
//! Text is accepted only as `&'static str`: fragments written in the source, never a string built
//! at run time, so user input cannot be spliced into SQL by construction — values always go
//! through [`Sql::bind`]. The placeholder style follows the dialect (`?` / `$n`).

use crate::core::dialect::Dialect;
use crate::error::StoreResult;
use sea_orm::{ConnectionTrait, Statement, Value};

pub(crate) struct Sql {
    dialect: Dialect,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Sql { dialect, text: String::with_capacity(256), values: Vec::new() }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn push(&mut self, s: &'static str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    pub(crate) fn bind(&mut self, v: impl Into<Value>) -> &mut Self {
        self.values.push(v.into());
        self.dialect.placeholder(self.values.len(), &mut self.text);
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

    /// `<col> in ids`: on PostgreSQL ` = ANY(CAST((SELECT CAST($n AS uuid[])) AS uuid[]))`, one
    /// bound array whatever the count — one statement text, so the driver prepares and caches it
    /// once (a list of n placeholders is a new statement for every n, and each is kept by every
    /// pooled connection); on SQLite ` IN (?, …)` (callers chunk by [`Dialect::id_chunk`]).
    /// `ids` must not be empty.
    ///
    /// The scalar subquery makes the text-to-array cast an InitPlan, run once per statement: a
    /// bare `CAST($n AS uuid[])` is not folded in a generic plan, and where it is a filter
    /// rather than an index condition PostgreSQL parses the whole array again for every row it
    /// tests (a quote's 69 lists against 200 price lists: 2.9 ms instead of 0.07). The outer
    /// CAST keeps `ANY((SELECT …))` from being read as `ANY (subquery)`.
    pub(crate) fn in_ids(&mut self, ids: &[uuid::Uuid]) -> &mut Self {
        match self.dialect {
            Dialect::Postgres => {
                self.push(" = ANY(CAST((SELECT CAST(");
                self.bind(crate::core::dialect::pg_uuid_array(ids));
                self.push(" AS uuid[])) AS uuid[]))")
            }
            Dialect::Sqlite => {
                self.push(" IN ");
                self.bind_list(ids.iter().copied())
            }
        }
    }

    /// `alias.col1, alias.col2, …` from static names (e.g. an entity's column list).
    pub(crate) fn push_columns(
        &mut self,
        alias: &'static str,
        cols: impl IntoIterator<Item = &'static str>,
    ) -> &mut Self {
        for (i, c) in cols.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.text.push_str(alias);
            self.text.push('.');
            self.text.push_str(c);
        }
        self
    }

    pub(crate) fn build(self) -> Statement {
        Statement::from_sql_and_values(self.dialect.backend(), self.text, self.values)
    }
}

/// The contact columns, in entity order (for `FromQueryResult`).
/// Runs a `SELECT COUNT(*) AS n …` statement (a list's `totalCount`).
pub(crate) async fn count<C: ConnectionTrait>(conn: &C, q: Sql) -> StoreResult<u64> {
    let n: i64 = match conn.query_one_raw(q.build()).await? {
        Some(r) => r.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn contact_columns() -> impl Iterator<Item = &'static str> {
    use crate::entities::contact;
    use sea_orm::{IdenStatic, Iterable};
    contact::Column::iter().map(|c| c.as_str())
}

/// Tables that carry a copy of their contact's address book.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Moved {
    Messages,
    Tickets,
}

impl Moved {
    /// `UPDATE <table> SET address_book_id = ` (the caller binds the book and adds the filter).
    pub(crate) fn update_book(self) -> &'static str {
        match self {
            Moved::Messages => "UPDATE messages SET address_book_id = ",
            Moved::Tickets => "UPDATE tickets SET address_book_id = ",
        }
    }
}
