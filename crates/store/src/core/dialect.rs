//! Every place where SQLite and PostgreSQL need different SQL, in one file. Code elsewhere asks
//! the dialect for a fragment instead of branching on the backend itself, so a reader can see at a
//! glance what differs between the engines (and a third engine would be one more arm here).

use sea_orm::DbBackend;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// How strongly a read locks the rows it returns until commit (PostgreSQL only: SQLite has one
/// writer at a time, and every write transaction takes the write lock up front).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// Rows may not change or disappear; other readers and sharers proceed.
    Share,
    /// Serialises writers of the row without blocking foreign-key checks that reference it.
    NoKeyUpdate,
    /// The row is about to be deleted: everyone else waits.
    Update,
}

impl Dialect {
    pub(crate) fn of(backend: DbBackend) -> Dialect {
        match backend {
            DbBackend::Postgres => Dialect::Postgres,
            // sea-orm is compiled with the SQLite and PostgreSQL drivers only; MySQL never reaches here.
            _ => Dialect::Sqlite,
        }
    }

    pub(crate) fn backend(self) -> DbBackend {
        match self {
            Dialect::Sqlite => DbBackend::Sqlite,
            Dialect::Postgres => DbBackend::Postgres,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// The `n`-th (1-based) bind placeholder.
    pub(crate) fn placeholder(self, n: usize, out: &mut String) {
        match self {
            Dialect::Postgres => {
                out.push('$');
                out.push_str(&n.to_string());
            }
            Dialect::Sqlite => out.push('?'),
        }
    }

    /// The suffix that locks the rows of `alias` (a `&'static str` table alias) until commit, or
    /// nothing where the engine serialises writers anyway.
    /// A transaction-scoped lock on an arbitrary 64-bit key (PostgreSQL's advisory locks), for
    /// serialising writers of something that has no row yet (a contact about to be created for
    /// an e-mail address). `None` on SQLite, whose writers are serialised already.
    pub(crate) fn advisory_xact_lock(self) -> Option<&'static str> {
        match self {
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock("),
            Dialect::Sqlite => None,
        }
    }

    pub(crate) fn lock_rows(self, lock: RowLock) -> &'static str {
        match (self, lock) {
            (Dialect::Sqlite, _) => "",
            (Dialect::Postgres, RowLock::Share) => " FOR SHARE",
            (Dialect::Postgres, RowLock::NoKeyUpdate) => " FOR NO KEY UPDATE",
            (Dialect::Postgres, RowLock::Update) => " FOR UPDATE",
        }
    }

    /// `book IN (the viewer's books)` when the books are bound inline: PostgreSQL takes one
    /// array parameter behind an InitPlan (in a cached generic plan it would rebuild
    /// `ARRAY[$1, …, $n]` for every row it tests — perf: construct_md_array — which cost more than
    /// the scan itself; `ANY((SELECT …))` would be the row-subquery form of ANY, hence the outer
    /// CAST, which costs nothing: same type). SQLite takes a plain list.
    pub(crate) fn inline_books(self) -> InlineBooks {
        match self {
            Dialect::Postgres => InlineBooks::PgArray(" = ANY(CAST((SELECT CAST(", " AS uuid[])) AS uuid[]))"),
            Dialect::Sqlite => InlineBooks::List,
        }
    }

    /// Opening and closing of "book in (books from the grants subquery)". PostgreSQL plans
    /// `IN (subquery)` as a semi-join, re-matching every scanned row against the grants;
    /// `= ANY(ARRAY(subquery))` evaluates the viewer's books once per statement (an InitPlan).
    pub(crate) fn books_subquery(self) -> (&'static str, &'static str) {
        match self {
            Dialect::Postgres => (" = ANY(ARRAY(", "))"),
            Dialect::Sqlite => (" IN (", ")"),
        }
    }

    /// `expr` with the ASCII letters A–Z folded to a–z and nothing else changed: the same on every
    /// engine. (SQL's `lower()` is not: SQLite folds only ASCII, PostgreSQL follows the locale.)
    pub(crate) fn fold_ascii_case(self, expr: sea_orm::sea_query::Expr) -> sea_orm::sea_query::Expr {
        let mut template = String::from(match self {
            Dialect::Postgres => "translate(",
            Dialect::Sqlite => "lower(",
        });
        self.placeholder(1, &mut template);
        template.push_str(match self {
            Dialect::Postgres => ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')",
            Dialect::Sqlite => ")",
        });
        sea_orm::sea_query::Expr::cust_with_exprs(template, [expr])
    }

    /// A fence that keeps a correlated subquery correlated (PostgreSQL would otherwise flatten an
    /// EXISTS into a join, which a generic plan may turn into a merge join over a whole group).
    pub(crate) fn keeps_subquery_correlated(self) -> bool {
        self == Dialect::Postgres
    }

    /// The column expression for a member page's book filter: on SQLite the unary `+` keeps the
    /// book list from choosing the (group, book) index — it would collect every visible member and
    /// sort them, where walking the order index and skipping invisible entries stops after one
    /// page (22 ms vs 2 ms for group 1 of dataset M).
    /// How many ids one statement takes ([`crate::core::sql::Sql::in_ids`]): all of them on
    /// PostgreSQL (one bound array), chunks on SQLite (it binds at most 32,766 values).
    pub(crate) fn id_chunk(self) -> usize {
        match self {
            Dialect::Postgres => usize::MAX,
            Dialect::Sqlite => 2000,
        }
    }

    pub(crate) fn member_page_book_column(self) -> &'static str {
        match self {
            Dialect::Sqlite => "+m.address_book_id",
            Dialect::Postgres => "m.address_book_id",
        }
    }

    /// The statement that refreshes planner statistics after a bulk load.
    pub(crate) fn analyze(self) -> &'static str {
        match self {
            Dialect::Postgres => "VACUUM ANALYZE",
            Dialect::Sqlite => "ANALYZE",
        }
    }

    /// Lists the tables of the current schema as rows with one column `name`.
    pub(crate) fn table_names(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
            }
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
            }
        }
    }
}

/// How inline books are written (see [`Dialect::inline_books`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum InlineBooks {
    /// Text before and after the one array parameter.
    PgArray(&'static str, &'static str),
    List,
}

/// A PostgreSQL array literal (`{id,id,…}`) of uuids, bound as one text parameter.
pub(crate) fn pg_uuid_array(ids: &[uuid::Uuid]) -> String {
    let mut s = String::with_capacity(2 + ids.len() * 37);
    s.push('{');
    for (i, b) in ids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&b.hyphenated().to_string());
    }
    s.push('}');
    s
}
