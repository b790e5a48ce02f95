//! The store's contract (DESIGN §4): its public behaviour, tested directly through
//! `Store::connect` + `migrate` + `system().act_as(…)` — no HTTP, no GraphQL — once on SQLite
//! (in memory, a database per test) and once on PostgreSQL (a database per test, cloned from the
//! migrated template, dropped afterwards) when `COHORT_TEST_DATABASE_URL` is set.
//!
//! What it pins down: deny by default (no grant, nothing seen, nothing counted), hidden ids that
//! are indistinguishable from unknown ones, the group hierarchy rules, bulk membership answers,
//! idempotency keys scoped per tenant and user, and the unit of work's atomicity: a committed
//! write leaves exactly its events, a refused one leaves no event and no audit row.

use cohort_domain::contact::{ContactFields, ContactKind};
use cohort_domain::group::MembershipSource;
use cohort_domain::ids::{AddressBookId, ContactId, GroupId};
use cohort_domain::{AccessLevel, Role, Roles};
use cohort_store::{
    AddMembersOutcome, ContactFilter, ContactInput, ContactOrder, ContactPatch, DataHandle, EventFilter, EventRecord,
    EventType, FeedStart, Gate, GroupInput, PageRequest, Principal, RemoveMembersOutcome, Store, StoreError,
    StoreOptions, SubgroupPolicy, Subject, SubjectKind, TokenSettings,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Harness

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A PostgreSQL database of one test, dropped on `Drop` (even when the test panicked).
struct PgDb {
    admin: String,
    name: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop is synchronous; run the async cleanup on a private runtime in its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Err(e) = cohort_store::testing::drop_postgres_database(&admin, &name).await {
                    eprintln!("could not drop test database {name}: {e}");
                }
            })
        })
        .join();
    }
}

/// A migrated store over its own database.
struct TestStore {
    store: Store,
    // Declared after the store: the pool goes first, then the database.
    _pg: Option<PgDb>,
}

impl TestStore {
    async fn open(backend: Backend) -> Option<TestStore> {
        Self::open_with(backend, StoreOptions::default()).await
    }

    async fn open_with(backend: Backend, options: StoreOptions) -> Option<TestStore> {
        let (url, pg) = match backend {
            Backend::Sqlite => ("sqlite::memory:".to_owned(), None),
            Backend::Postgres => {
                let admin = std::env::var("COHORT_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())?;
                let name = format!("cohort_c_{}", Uuid::new_v4().simple());
                cohort_store::testing::create_migrated_postgres_database(&admin, &name)
                    .await
                    .expect("create test database");
                let url = cohort_store::testing::with_database(&admin, &name);
                (url, Some(PgDb { admin, name }))
            }
        };
        let store = Store::connect(&url, options).await.expect("connect");
        // On PostgreSQL the clone is migrated already: this finds nothing pending.
        store.migrate().await.expect("migrate");
        Some(TestStore { store, _pg: pg })
    }
}

/// Runs each listed `async fn name(db: &TestStore)` once on SQLite and once on PostgreSQL (the
/// latter only when `COHORT_TEST_DATABASE_URL` is set; otherwise it says it was skipped).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::TestStore::open(crate::Backend::Sqlite).await.expect("sqlite store");
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    match crate::TestStore::open(crate::Backend::Postgres).await {
                        Some(db) => super::$name(&db).await,
                        None => eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set"),
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    books_and_contacts_are_denied_by_default,
    contacts_write_and_hidden_ids_are_not_found,
    groups_create_move_delete,
    bulk_members_never_reveal_hidden_contacts,
    idempotency_keys_replay_conflict_and_are_per_user,
    committed_writes_leave_exactly_their_events,
    refused_writes_leave_no_event_and_no_audit_row,
    a_refusal_after_partial_writes_rolls_everything_back,
    events_read_is_admin_only_filtered_and_paged,
    event_feeds_send_each_event_once_late_commits_included,
    writes_that_change_nothing_report_nothing,
);

/// Deny by default once more, for a viewer whose grants are not bound inline into statements
/// (`max_inline_grants: 0`): every filter then derives the books with a grants subquery.
mod grants_subquery {
    fn options() -> cohort_store::StoreOptions {
        cohort_store::StoreOptions { max_inline_grants: 0, ..Default::default() }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn books_and_contacts_are_denied_by_default_sqlite() {
        let db = crate::TestStore::open_with(crate::Backend::Sqlite, options()).await.expect("sqlite store");
        super::books_and_contacts_are_denied_by_default(&db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn books_and_contacts_are_denied_by_default_postgres() {
        match crate::TestStore::open_with(crate::Backend::Postgres, options()).await {
            Some(db) => super::books_and_contacts_are_denied_by_default(&db).await,
            None => eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set"),
        }
    }
}

/// A clone of the template is fully migrated before anyone migrates it: ready, with every table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_clones_of_the_template_are_migrated_already() {
    let Some(admin) = std::env::var("COHORT_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
        return;
    };
    let template = cohort_store::testing::postgres_template(&admin).await.expect("template");
    assert_eq!(template, cohort_store::testing::postgres_template_name());
    assert!(template.starts_with("cohort_tmpl_") && template.len() == "cohort_tmpl_".len() + 16, "{template}");
    let name = format!("cohort_c_{}", Uuid::new_v4().simple());
    cohort_store::testing::create_migrated_postgres_database(&admin, &name).await.expect("clone");
    let _db = PgDb { admin: admin.clone(), name: name.clone() };
    let url = cohort_store::testing::with_database(&admin, &name);
    let store = Store::connect(&url, StoreOptions::default()).await.expect("connect");
    assert!(store.is_ready().await, "a clone has no pending migration");
    let tables = store.table_names().await.expect("tables");
    for t in ["tenants", "contacts", "contact_groups", "idempotency_keys", "events", "audit_log"] {
        assert!(tables.iter().any(|n| n == t), "{t} missing from {tables:?}");
    }
    store.close().await;
}

/// Asserts that a result is the given error (any message).
macro_rules! assert_err {
    ($e:expr, $pat:pat) => {{
        let r = $e;
        assert!(matches!(r, Err($pat)), "expected {}, got {:?}", stringify!($pat), r);
    }};
}

const TENANT: &str = "acme";
const SECRET: &str = "contract-secret-that-is-long-enough-for-hs256";

async fn admin(db: &TestStore) -> DataHandle {
    db.store.system().act_as(TENANT, "admin", Roles::new([Role::Admin])).await.expect("admin")
}

/// A fresh handle for an agent (tenant and user created on first use): grants are read now.
async fn agent(db: &TestStore, subject: &str) -> DataHandle {
    db.store.system().act_as(TENANT, subject, Roles::new([Role::Agent])).await.expect("agent")
}

fn me(h: &DataHandle) -> Principal {
    Principal::User(h.viewer().user_id())
}

fn page(first: i32) -> PageRequest {
    PageRequest::new(Some(first), None).expect("page")
}

fn person(book: AddressBookId, first: &str, last: &str) -> ContactInput {
    ContactInput {
        address_book_id: book,
        kind: ContactKind::Person,
        fields: ContactFields {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            emails: vec![(format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()), None)],
            ..Default::default()
        },
        company_id: None,
        business_status: None,
    }
}

fn group(book: AddressBookId, name: &str, parent: Option<GroupId>) -> GroupInput {
    GroupInput {
        address_book_id: book,
        parent_id: parent,
        name: name.into(),
        description: None,
        precedence: 10,
        public_name: None,
        public_description: None,
    }
}

async fn book(admin: &DataHandle, name: &str) -> AddressBookId {
    admin.create_address_book(name, None).await.expect("book").id
}

async fn contact(h: &DataHandle, book: AddressBookId, first: &str, last: &str) -> ContactId {
    h.create_contact(person(book, first, last)).await.expect("contact").id
}

async fn visible_contact_ids(h: &DataHandle) -> Vec<ContactId> {
    let p = h.contacts(&ContactFilter::default(), ContactOrder::Id, &page(100)).await.expect("contacts");
    p.rows.into_iter().map(|(_, c)| c.id).collect()
}

async fn visible_book_ids(h: &DataHandle) -> Vec<AddressBookId> {
    let p = h.address_books(&page(100)).await.expect("books");
    p.rows.into_iter().map(|(_, b)| b.id).collect()
}

/// Every event of the tenant, oldest first (paged through by the admin).
async fn all_events(admin: &DataHandle) -> Vec<EventRecord> {
    let mut out = vec![];
    let mut after = None;
    loop {
        let p = admin
            .events(&EventFilter::default(), &PageRequest::new(Some(100), after).expect("page"))
            .await
            .expect("events");
        after = p.rows.last().map(|(c, _)| c.clone());
        out.extend(p.rows.into_iter().map(|(_, e)| e));
        if !p.has_next_page {
            return out;
        }
    }
}

/// What the store holds that a refused write must not change: the events and the audit rows.
async fn footprint(db: &TestStore, admin: &DataHandle) -> (Vec<EventRecord>, u64) {
    (all_events(admin).await, cohort_store::testing::audit_row_count(&db.store).await.expect("audit count"))
}

/// Runs `write`, then asserts it added exactly the events `expected` names for its outcome
/// (type and subjects, in order), each by `actor`, with no request id (system handles have none).
async fn expect_events<T>(
    admin: &DataHandle,
    actor: &DataHandle,
    write: impl std::future::Future<Output = T>,
    expected: impl FnOnce(&T) -> Vec<(EventType, Vec<Subject>)>,
) -> T {
    let before = all_events(admin).await.len();
    let out = write.await;
    let new: Vec<EventRecord> = all_events(admin).await.split_off(before);
    let got: Vec<(EventType, Vec<Subject>)> = new.iter().map(|e| (e.event_type, e.subjects.clone())).collect();
    assert_eq!(got, expected(&out), "events of the write");
    for e in &new {
        assert_eq!(e.actor_id, Some(actor.viewer().user_id().0), "actor of {:?}", e.event_type);
        assert_eq!(e.request_id, None);
        assert_eq!(e.schema_version, cohort_store::EVENT_SCHEMA_VERSION);
    }
    out
}

/// The payload of the latest event.
async fn last_payload(admin: &DataHandle) -> serde_json::Value {
    all_events(admin).await.pop().expect("an event").payload
}

fn on_book(id: AddressBookId) -> Vec<Subject> {
    vec![Subject::new(SubjectKind::AddressBook, id.0)]
}
fn on_contact(id: ContactId) -> Vec<Subject> {
    vec![Subject::new(SubjectKind::Contact, id.0)]
}
fn on_group(id: GroupId) -> Vec<Subject> {
    vec![Subject::new(SubjectKind::Group, id.0)]
}

// ---------------------------------------------------------------------------------------------
// Visibility

async fn books_and_contacts_are_denied_by_default(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    let other = book(&a, "Other").await;
    let anna = contact(&a, own, "Anna", "Abbott").await;
    let bruno = contact(&a, own, "Bruno", "Baker").await;
    let secret = contact(&a, other, "Sam", "Secret").await;

    // No grant: nothing at all, and nothing counted.
    let v = agent(db, "agent").await;
    assert!(visible_book_ids(&v).await.is_empty());
    assert!(visible_contact_ids(&v).await.is_empty());
    assert_eq!(v.count_contacts(&ContactFilter::default()).await.expect("count"), 0);
    assert!(v.contacts_by_ids(&[anna, bruno, secret]).await.expect("by ids").is_empty());
    assert!(v.address_books_by_ids(&[own, other]).await.expect("books by ids").is_empty());
    assert_eq!(v.address_book_access(own).await.expect("access"), None);
    let search = ContactFilter { search: Some("anna".into()), ..Default::default() };
    assert_eq!(v.count_contacts(&search).await.expect("count"), 0);

    // A READ grant makes exactly that book visible, on the next handle.
    a.grant_access(own, me(&v), AccessLevel::Read).await.expect("grant");
    let v = agent(db, "agent").await;
    assert_eq!(visible_book_ids(&v).await, vec![own]);
    let books = v.address_books(&page(10)).await.expect("books");
    assert_eq!(books.rows[0].1.my_access, AccessLevel::Read);
    let mut seen = visible_contact_ids(&v).await;
    seen.sort_by_key(|c| c.0);
    let mut want = vec![anna, bruno];
    want.sort_by_key(|c| c.0);
    assert_eq!(seen, want);
    assert_eq!(v.count_contacts(&ContactFilter::default()).await.expect("count"), 2);
    assert_eq!(v.count_contacts(&search).await.expect("count"), 1);
    let by_ids: Vec<ContactId> =
        v.contacts_by_ids(&[anna, secret]).await.expect("by ids").iter().map(|c| c.id).collect();
    assert_eq!(by_ids, vec![anna]);
    // Filtering by a hidden book matches nothing (it is not an error either).
    let hidden_book = ContactFilter { address_books: Some(vec![other]), ..Default::default() };
    assert_eq!(v.count_contacts(&hidden_book).await.expect("count"), 0);

    // Through a user group, too; the highest level wins.
    let support = a.create_user_group("Support", None).await.expect("user group");
    a.add_user_group_members(support.id, &[v.viewer().user_id()]).await.expect("members");
    a.grant_access(other, Principal::UserGroup(support.id), AccessLevel::Write).await.expect("grant");
    let v = agent(db, "agent").await;
    assert_eq!(v.address_book_access(other).await.expect("access"), Some(AccessLevel::Write));
    assert_eq!(v.count_contacts(&ContactFilter::default()).await.expect("count"), 3);

    // Revoking takes effect on the next handle.
    a.revoke_access(own, me(&v)).await.expect("revoke");
    a.revoke_access(other, Principal::UserGroup(support.id)).await.expect("revoke");
    let v = agent(db, "agent").await;
    assert!(visible_book_ids(&v).await.is_empty());
    assert!(visible_contact_ids(&v).await.is_empty());
    assert_eq!(v.count_contacts(&ContactFilter::default()).await.expect("count"), 0);

    // Another agent never saw anything.
    let o = agent(db, "outsider").await;
    assert!(visible_contact_ids(&o).await.is_empty());
}

async fn contacts_write_and_hidden_ids_are_not_found(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    let readonly = book(&a, "Read only").await;
    let hidden = book(&a, "Hidden").await;
    let seed = agent(db, "agent").await;
    a.grant_access(own, me(&seed), AccessLevel::Write).await.expect("grant");
    a.grant_access(readonly, me(&seed), AccessLevel::Read).await.expect("grant");
    let ro = contact(&a, readonly, "Rita", "Reader").await;
    let secret = contact(&a, hidden, "Sam", "Secret").await;
    let v = agent(db, "agent").await;

    // Create, update, delete in a writable book.
    let c = contact(&v, own, "Anna", "Abbott").await;
    assert!(visible_contact_ids(&v).await.contains(&c));
    let patch = ContactPatch { last_name: Some(Some("Zimmer".into())), ..Default::default() };
    let updated = v.update_contact(c, patch.clone()).await.expect("update");
    assert_eq!(updated.display_name, "Anna Zimmer");
    assert_eq!(v.contacts_by_ids(&[c]).await.expect("by id")[0].last_name.as_deref(), Some("Zimmer"));
    assert_eq!(v.delete_contact(c).await.expect("delete"), c);
    assert!(v.contacts_by_ids(&[c]).await.expect("by id").is_empty());
    // Deleted is gone: like an unknown id.
    assert_err!(v.update_contact(c, patch.clone()).await, StoreError::NotFound);
    assert_err!(v.delete_contact(c).await, StoreError::NotFound);

    // A hidden contact and an unknown id answer the same, for every write.
    let unknown = ContactId(Uuid::now_v7());
    for id in [secret, unknown] {
        assert_err!(v.update_contact(id, patch.clone()).await, StoreError::NotFound);
        assert_err!(v.delete_contact(id).await, StoreError::NotFound);
        assert_err!(v.set_business_status(id, Some("customer"), None).await, StoreError::NotFound);
        assert!(v.contacts_by_ids(&[id]).await.expect("by id").is_empty());
    }
    // Creating in a hidden book is NotFound too (the book does not exist for the agent), and
    // linking a hidden company is NotFound.
    assert_err!(v.create_contact(person(hidden, "Eve", "Evil")).await, StoreError::NotFound);
    let mut linked = person(own, "Lia", "Linked");
    linked.company_id = Some(secret);
    assert_err!(v.create_contact(linked).await, StoreError::NotFound);
    // Moving a visible contact into a hidden book: NotFound, and nothing moved.
    let mine = contact(&v, own, "Mia", "Mine").await;
    let to_hidden = ContactPatch { address_book_id: Some(hidden), ..Default::default() };
    assert_err!(v.update_contact(mine, to_hidden).await, StoreError::NotFound);
    assert_eq!(v.contacts_by_ids(&[mine]).await.expect("by id")[0].address_book_id, own);

    // READ is not WRITE: visible, but Forbidden.
    assert_err!(v.update_contact(ro, patch.clone()).await, StoreError::Forbidden(_));
    assert_err!(v.delete_contact(ro).await, StoreError::Forbidden(_));
    assert_err!(v.create_contact(person(readonly, "Ned", "New")).await, StoreError::Forbidden(_));
    assert_eq!(a.contacts_by_ids(&[ro]).await.expect("by id")[0].last_name.as_deref(), Some("Reader"));

    // The admin still sees the hidden contact, unchanged.
    assert_eq!(a.contacts_by_ids(&[secret]).await.expect("by id")[0].display_name, "Sam Secret");
}

// ---------------------------------------------------------------------------------------------
// Groups

async fn groups_create_move_delete(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    let hidden = book(&a, "Hidden").await;
    let top = a.create_group(group(own, "Top", None)).await.expect("top");
    let mid = a.create_group(group(own, "Mid", Some(top.id))).await.expect("mid");
    let leaf = a.create_group(group(own, "Leaf", Some(mid.id))).await.expect("leaf");
    assert_eq!(leaf.parent_id, Some(mid.id));
    let ancestors: Vec<GroupId> = a.group_ancestors(leaf.id).await.expect("ancestors").iter().map(|g| g.id).collect();
    assert_eq!(ancestors.len(), 2);
    assert!(ancestors.contains(&top.id) && ancestors.contains(&mid.id));

    // Cycles are refused.
    assert_err!(a.move_group(top.id, Some(leaf.id)).await, StoreError::Invalid(_));
    assert_err!(a.move_group(top.id, Some(top.id)).await, StoreError::Invalid(_));
    assert_eq!(a.groups_by_ids(&[top.id]).await.expect("top")[0].parent_id, None);

    // A move takes the subtree along.
    let other = a.create_group(group(own, "Other", None)).await.expect("other");
    let moved = a.move_group(mid.id, Some(other.id)).await.expect("move");
    assert_eq!(moved.parent_id, Some(other.id));
    let ancestors: Vec<GroupId> = a.group_ancestors(leaf.id).await.expect("ancestors").iter().map(|g| g.id).collect();
    assert!(ancestors.contains(&other.id) && !ancestors.contains(&top.id), "{ancestors:?}");
    let moved = a.move_group(mid.id, None).await.expect("to the root");
    assert_eq!(moved.parent_id, None);

    // Agents: READ sees, MANAGE configures, nothing hides.
    let seed = agent(db, "agent").await;
    a.grant_access(own, me(&seed), AccessLevel::Read).await.expect("grant");
    let v = agent(db, "agent").await;
    assert_eq!(v.groups_by_ids(&[top.id]).await.expect("visible").len(), 1);
    assert_err!(v.create_group(group(own, "Mine", None)).await, StoreError::Forbidden(_));
    assert_err!(v.move_group(mid.id, Some(top.id)).await, StoreError::Forbidden(_));
    assert_err!(v.create_group(group(hidden, "Mine", None)).await, StoreError::NotFound);
    let secret = a.create_group(group(hidden, "Secret", None)).await.expect("secret");
    assert!(v.groups_by_ids(&[secret.id]).await.expect("hidden").is_empty());
    assert_err!(v.delete_group(secret.id, SubgroupPolicy::Refuse).await, StoreError::NotFound);
    assert_err!(v.delete_group(GroupId(Uuid::now_v7()), SubgroupPolicy::Refuse).await, StoreError::NotFound);

    // Delete: refused with subgroups unless told, then the whole subtree goes.
    assert_err!(a.delete_group(mid.id, SubgroupPolicy::Refuse).await, StoreError::Conflict(_));
    let mut deleted = a.delete_group(mid.id, SubgroupPolicy::Delete).await.expect("delete");
    deleted.sort_by_key(|g| g.0);
    let mut want = vec![mid.id, leaf.id];
    want.sort_by_key(|g| g.0);
    assert_eq!(deleted, want);
    assert!(a.groups_by_ids(&[mid.id, leaf.id]).await.expect("gone").is_empty());
    // Reparenting children on delete.
    let child = a.create_group(group(own, "Child", Some(top.id))).await.expect("child");
    assert_eq!(a.delete_group(top.id, SubgroupPolicy::ReparentTo(Some(other.id))).await.expect("delete"), vec![top.id]);
    assert_eq!(a.groups_by_ids(&[child.id]).await.expect("child")[0].parent_id, Some(other.id));
}

async fn bulk_members_never_reveal_hidden_contacts(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    let hidden = book(&a, "Hidden").await;
    let seed = agent(db, "agent").await;
    a.grant_access(own, me(&seed), AccessLevel::Write).await.expect("grant");
    let g = a.create_group(group(own, "Newsletter", None)).await.expect("group");
    let anna = contact(&a, own, "Anna", "Abbott").await;
    let bruno = contact(&a, own, "Bruno", "Baker").await;
    let secret = contact(&a, hidden, "Sam", "Secret").await;
    // The hidden contact is a member already: the agent must not learn that.
    a.add_group_members(g.id, &[secret], None, None).await.expect("admin adds");
    let unknown = ContactId(Uuid::now_v7());
    let v = agent(db, "agent").await;

    let first = v.add_group_members(g.id, &[anna, secret, unknown, anna], None, None).await.expect("add");
    assert_eq!(
        first,
        AddMembersOutcome { added: 1, already_members: 0, not_found: vec![secret, unknown], suppressed: vec![] }
    );
    let again = v.add_group_members(g.id, &[anna, bruno, secret], None, None).await.expect("add again");
    assert_eq!(again, AddMembersOutcome { added: 1, already_members: 1, not_found: vec![secret], suppressed: vec![] });
    assert_eq!(v.group_member_count(g.id, false).await.expect("count"), 2);
    assert_eq!(a.group_member_count(g.id, false).await.expect("count"), 3);

    let removed = v.remove_group_members(g.id, &[anna, secret, unknown], None, None).await.expect("remove");
    assert_eq!(removed, RemoveMembersOutcome { removed: 1, not_members: 0, not_found: vec![secret, unknown] });
    let again = v.remove_group_members(g.id, &[anna, secret], None, None).await.expect("remove again");
    assert_eq!(again, RemoveMembersOutcome { removed: 0, not_members: 1, not_found: vec![secret] });
    // The hidden member is still there (the agent's call could not touch it).
    assert_eq!(a.group_member_count(g.id, false).await.expect("count"), 2);
    assert_eq!(v.group_member_count(g.id, false).await.expect("count"), 1);

    // WRITE is needed on the group's home book; a hidden group is NotFound.
    let ro_book = book(&a, "Read only").await;
    a.grant_access(ro_book, me(&v), AccessLevel::Read).await.expect("grant");
    let ro_group = a.create_group(group(ro_book, "Read only group", None)).await.expect("group");
    let secret_group = a.create_group(group(hidden, "Secret group", None)).await.expect("group");
    let v = agent(db, "agent").await;
    assert_err!(v.add_group_members(ro_group.id, &[anna], None, None).await, StoreError::Forbidden(_));
    assert_err!(v.add_group_members(secret_group.id, &[anna], None, None).await, StoreError::NotFound);
    // Consent sources are for the public endpoints only.
    assert_err!(
        v.add_group_members(g.id, &[anna], Some(MembershipSource::SelfService), None).await,
        StoreError::Invalid(_)
    );
}

async fn idempotency_keys_replay_conflict_and_are_per_user(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    for s in ["agent", "colleague"] {
        let h = agent(db, s).await;
        a.grant_access(own, me(&h), AccessLevel::Write).await.expect("grant");
    }
    let g = a.create_group(group(own, "Group", None)).await.expect("group");
    let anna = contact(&a, own, "Anna", "Abbott").await;
    let bruno = contact(&a, own, "Bruno", "Baker").await;
    let v = agent(db, "agent").await;
    let w = agent(db, "colleague").await;

    let first = v.add_group_members(g.id, &[anna], None, Some("k-1")).await.expect("first");
    assert_eq!(first.added, 1);
    // A replay answers what the first call answered (not "already a member") and writes nothing.
    let before = footprint(db, &a).await;
    let replay = v.add_group_members(g.id, &[anna], None, Some("k-1")).await.expect("replay");
    assert_eq!(replay, first);
    assert_eq!(footprint(db, &a).await, before);
    // Same key, different request: Conflict (also for another operation), nothing written.
    assert_err!(v.add_group_members(g.id, &[anna, bruno], None, Some("k-1")).await, StoreError::Conflict(_));
    assert_err!(v.remove_group_members(g.id, &[anna], None, Some("k-1")).await, StoreError::Conflict(_));
    assert_eq!(footprint(db, &a).await, before);
    assert_eq!(a.group_member_count(g.id, false).await.expect("count"), 1);

    // Another user's identical key is a different request: computed afresh, not the first
    // user's answer, and not a conflict even for a different request.
    let theirs = w.add_group_members(g.id, &[anna], None, Some("k-1")).await.expect("colleague");
    assert_eq!(theirs, AddMembersOutcome { added: 0, already_members: 1, not_found: vec![], suppressed: vec![] });
    assert_ne!(theirs, first);
    let theirs2 = w.add_group_members(g.id, &[bruno], None, Some("k-2")).await.expect("colleague");
    assert_eq!(theirs2.added, 1);
    // …and each user's key keeps replaying that user's own answer.
    assert_eq!(v.add_group_members(g.id, &[anna], None, Some("k-1")).await.expect("replay"), first);
    assert_eq!(w.add_group_members(g.id, &[anna], None, Some("k-1")).await.expect("replay"), theirs);
    // The order of the ids does not make a different request.
    let removed = v.remove_group_members(g.id, &[anna, bruno], None, Some("r-1")).await.expect("remove");
    assert_eq!(removed.removed, 2);
    let replay = v.remove_group_members(g.id, &[bruno, anna], None, Some("r-1")).await.expect("replay");
    assert_eq!(replay, removed);
    // Keys are checked.
    assert_err!(v.add_group_members(g.id, &[anna], None, Some("")).await, StoreError::Invalid(_));
}

// ---------------------------------------------------------------------------------------------
// Unit of work: events and audit rows

async fn committed_writes_leave_exactly_their_events(db: &TestStore) {
    use EventType::*;
    let a = admin(db).await;
    let own = expect_events(&a, &a, async { book(&a, "Own").await }, |b| vec![(AddressBookCreated, on_book(*b))]).await;
    let seed = agent(db, "agent").await;
    expect_events(&a, &a, async { a.grant_access(own, me(&seed), AccessLevel::Manage).await.expect("grant") }, |_| {
        vec![(AccessGranted, on_book(own))]
    })
    .await;
    assert_eq!(last_payload(&a).await["principalId"], serde_json::json!(seed.viewer().user_id().0));
    let v = agent(db, "agent").await;

    // Contacts.
    let anna = expect_events(&a, &v, async { contact(&v, own, "Anna", "Abbott").await }, |c| {
        vec![(ContactCreated, on_contact(*c))]
    })
    .await;
    assert_eq!(last_payload(&a).await["addressBookId"], serde_json::json!(own.0));
    let patch = ContactPatch { first_name: Some(Some("Annabel".into())), ..Default::default() };
    expect_events(&a, &v, async { v.update_contact(anna, patch).await.expect("update") }, |_| {
        vec![(ContactUpdated, on_contact(anna))]
    })
    .await;
    expect_events(&a, &v, async { v.set_business_status(anna, Some("customer"), None).await.expect("status") }, |_| {
        vec![(ContactStatusChanged, on_contact(anna))]
    })
    .await;
    // Setting the status it already has changes nothing, so it reports nothing.
    expect_events(
        &a,
        &v,
        async { v.set_business_status(anna, Some("customer"), None).await.expect("same") },
        |_| vec![],
    )
    .await;

    // Groups and members.
    let top = expect_events(&a, &v, async { v.create_group(group(own, "Top", None)).await.expect("group") }, |g| {
        vec![(GroupCreated, on_group(g.id))]
    })
    .await;
    let sub =
        expect_events(&a, &v, async { v.create_group(group(own, "Sub", Some(top.id))).await.expect("sub") }, |g| {
            vec![(GroupCreated, on_group(g.id))]
        })
        .await;
    assert_eq!(last_payload(&a).await["parentId"], serde_json::json!(top.id.0));
    expect_events(&a, &v, async { v.add_group_members(top.id, &[anna], None, None).await.expect("add") }, |_| {
        vec![(GroupMembersAdded, on_group(top.id))]
    })
    .await;
    assert_eq!(last_payload(&a).await, serde_json::json!({"count": 1, "source": "ASSIGNED"}));
    // Nothing added, nothing reported.
    expect_events(&a, &v, async { v.add_group_members(top.id, &[anna], None, None).await.expect("again") }, |_| vec![])
        .await;
    let other = v.create_group(group(own, "Other", None)).await.expect("other");
    expect_events(&a, &v, async { v.move_group(sub.id, Some(other.id)).await.expect("move") }, |_| {
        vec![(GroupMoved, on_group(sub.id))]
    })
    .await;
    assert_eq!(last_payload(&a).await, serde_json::json!({"fromParentId": top.id.0, "toParentId": other.id.0}));
    // A move to where it already is: nothing.
    expect_events(&a, &v, async { v.move_group(sub.id, Some(other.id)).await.expect("no move") }, |_| vec![]).await;
    expect_events(
        &a,
        &v,
        async { v.remove_group_members(top.id, &[anna], Some("left"), None).await.expect("remove") },
        |_| vec![(GroupMembersRemoved, on_group(top.id))],
    )
    .await;
    assert_eq!(last_payload(&a).await, serde_json::json!({"count": 1}));
    // One event per deleted group, in the order the call reports them.
    let gone = expect_events(
        &a,
        &v,
        async { v.delete_group(other.id, SubgroupPolicy::Delete).await.expect("delete") },
        |gone| gone.iter().map(|g| (GroupDeleted, on_group(*g))).collect(),
    )
    .await;
    assert_eq!(gone.len(), 2);
    expect_events(&a, &v, async { v.delete_contact(anna).await.expect("delete") }, |_| {
        vec![(ContactDeleted, on_contact(anna))]
    })
    .await;
    expect_events(&a, &a, async { a.revoke_access(own, me(&v)).await.expect("revoke") }, |_| {
        vec![(AccessRevoked, on_book(own))]
    })
    .await;

    // Payloads never carry contact fields: no names, no e-mail addresses anywhere.
    for e in all_events(&a).await {
        let text = e.payload.to_string();
        for needle in ["Anna", "Annabel", "Abbott", "example.com"] {
            assert!(!text.contains(needle), "{:?} payload {text} carries contact data", e.event_type);
        }
    }

    // Through the gate, a request's id is carried into its events.
    let tokens = TokenSettings {
        secret: Some(SECRET.to_owned().into()),
        public_keys: None,
        issuer: "cohort".into(),
        audience: "cohort-api".into(),
        leeway_secs: 0,
    };
    let gate = Gate::new(db.store.clone(), &tokens).expect("gate");
    let token =
        cohort_store::issue_hs256(SECRET.as_bytes(), "cohort", "cohort-api", TENANT, "admin", &["admin".into()], 600)
            .expect("token");
    let h = gate.admit(&token, Some("req-contract-1")).await.expect("admitted");
    let before = all_events(&a).await.len();
    let b = h.create_address_book("Via the gate", None).await.expect("book");
    let evs = all_events(&a).await.split_off(before);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].subjects, on_book(b.id));
    assert_eq!(evs[0].request_id.as_deref(), Some("req-contract-1"));
    assert_eq!(evs[0].actor_id, Some(a.viewer().user_id().0));
}

async fn refused_writes_leave_no_event_and_no_audit_row(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    let hidden = book(&a, "Hidden").await;
    let seed = agent(db, "agent").await;
    a.grant_access(own, me(&seed), AccessLevel::Write).await.expect("grant");
    let anna = contact(&a, own, "Anna", "Abbott").await;
    let secret = contact(&a, hidden, "Sam", "Secret").await;
    let top = a.create_group(group(own, "Top", None)).await.expect("top");
    let sub = a.create_group(group(own, "Sub", Some(top.id))).await.expect("sub");
    a.add_group_members(top.id, &[anna], None, Some("used")).await.expect("add");
    let v = agent(db, "agent").await;
    let before = footprint(db, &a).await;
    assert!(before.1 > 0, "configuration writes are audited");

    // Forbidden.
    assert_err!(v.create_address_book("Mine", None).await, StoreError::Forbidden(_));
    assert_err!(v.create_group(group(own, "Mine", None)).await, StoreError::Forbidden(_));
    assert_err!(v.grant_access(own, me(&v), AccessLevel::Manage).await, StoreError::Forbidden(_));
    assert_err!(v.delete_group(top.id, SubgroupPolicy::Delete).await, StoreError::Forbidden(_));
    // Invalid.
    assert_err!(a.create_address_book("  ", None).await, StoreError::Invalid(_));
    assert_err!(a.move_group(top.id, Some(sub.id)).await, StoreError::Invalid(_));
    let mut bad = person(own, "Bad", "Status");
    bad.business_status = Some("no_such_status".into());
    assert_err!(v.create_contact(bad).await, StoreError::Invalid(_));
    assert_err!(v.set_business_status(anna, Some("no_such_status"), None).await, StoreError::Invalid(_));
    // NotFound.
    assert_err!(v.update_contact(secret, ContactPatch::default()).await, StoreError::NotFound);
    assert_err!(v.delete_contact(ContactId(Uuid::now_v7())).await, StoreError::NotFound);
    assert_err!(a.grant_access(AddressBookId(Uuid::now_v7()), me(&v), AccessLevel::Read).await, StoreError::NotFound);
    assert_err!(a.move_group(GroupId(Uuid::now_v7()), None).await, StoreError::NotFound);
    // Conflict.
    assert_err!(a.create_address_book("Own", None).await, StoreError::Conflict(_));
    assert_err!(a.delete_group(top.id, SubgroupPolicy::Refuse).await, StoreError::Conflict(_));
    assert_err!(a.add_group_members(top.id, &[anna, secret], None, Some("used")).await, StoreError::Conflict(_));

    assert_eq!(footprint(db, &a).await, before, "a refused write left an event or an audit row");
    // And the data is as it was.
    assert_eq!(a.groups_by_ids(&[top.id, sub.id]).await.expect("groups").len(), 2);
    assert_eq!(a.group_member_count(top.id, false).await.expect("count"), 1);
    assert_eq!(visible_book_ids(&a).await.len(), 2);
}

/// A refusal that comes after the unit of work already wrote: deleting a group whose children
/// are reparented one by one, where the agent may configure the first child but not the second.
/// Whatever was rewritten before the refusal is rolled back with it.
async fn a_refusal_after_partial_writes_rolls_everything_back(db: &TestStore) {
    let a = admin(db).await;
    let managed = book(&a, "Managed").await;
    let readable = book(&a, "Readable").await;
    let seed = agent(db, "agent").await;
    a.grant_access(managed, me(&seed), AccessLevel::Manage).await.expect("grant");
    a.grant_access(readable, me(&seed), AccessLevel::Read).await.expect("grant");
    let parent = a.create_group(group(managed, "Parent", None)).await.expect("parent");
    // Created first, so it is reparented first (ids are time-ordered).
    let mine = a.create_group(group(managed, "Mine", Some(parent.id))).await.expect("child 1");
    let theirs = a.create_group(group(readable, "Theirs", Some(parent.id))).await.expect("child 2");
    let v = agent(db, "agent").await;
    let before = footprint(db, &a).await;

    assert_err!(v.delete_group(parent.id, SubgroupPolicy::ReparentTo(None)).await, StoreError::Forbidden(_));

    assert_eq!(footprint(db, &a).await, before);
    let groups = a.groups_by_ids(&[parent.id, mine.id, theirs.id]).await.expect("groups");
    assert_eq!(groups.len(), 3);
    for g in &groups {
        if g.id != parent.id {
            assert_eq!(g.parent_id, Some(parent.id), "{} was reparented", g.name);
        }
    }
    // The closure rows too.
    let ancestors: Vec<GroupId> = a.group_ancestors(mine.id).await.expect("ancestors").iter().map(|g| g.id).collect();
    assert_eq!(ancestors, vec![parent.id]);
}

async fn events_read_is_admin_only_filtered_and_paged(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    let g = a.create_group(group(own, "Top", None)).await.expect("group");
    let c = contact(&a, own, "Anna", "Abbott").await;
    a.add_group_members(g.id, &[c], None, None).await.expect("add");
    a.create_group(group(own, "Second", Some(g.id))).await.expect("group");

    let v = agent(db, "agent").await;
    a.grant_access(own, me(&v), AccessLevel::Manage).await.expect("grant");
    let v = agent(db, "agent").await;
    assert_err!(v.events(&EventFilter::default(), &page(10)).await, StoreError::Forbidden(_));

    let types = |ts: &[&str]| EventFilter { types: ts.iter().map(|s| s.to_string()).collect() };
    let only = |f: EventFilter| {
        let a = a.clone();
        async move {
            let p = a.events(&f, &page(100)).await.expect("events");
            p.rows.into_iter().map(|(_, e)| e.event_type).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only(types(&["group.*"])).await,
        vec![EventType::GroupCreated, EventType::GroupMembersAdded, EventType::GroupCreated]
    );
    assert_eq!(only(types(&["group.created"])).await, vec![EventType::GroupCreated, EventType::GroupCreated]);
    assert_eq!(
        only(types(&["contact.*", "address_book.created"])).await,
        vec![EventType::AddressBookCreated, EventType::ContactCreated]
    );
    for bad in ["nope", "group.exploded", "grou.*", "*", "group.", ".*"] {
        assert_err!(a.events(&types(&[bad]), &page(10)).await, StoreError::Invalid(_));
    }
    assert_err!(
        a.events(&EventFilter::default(), &PageRequest::new(Some(1), Some("garbage".into())).expect("page")).await,
        StoreError::Invalid(_)
    );

    // Paging one at a time returns every event exactly once, in order.
    let all = all_events(&a).await;
    assert_eq!(all.len(), 6);
    let mut paged = vec![];
    let mut after = None;
    loop {
        let p =
            a.events(&EventFilter::default(), &PageRequest::new(Some(1), after).expect("page")).await.expect("page");
        assert!(p.rows.len() <= 1);
        after = p.rows.last().map(|(c, _)| c.clone());
        paged.extend(p.rows.into_iter().map(|(_, e)| e));
        if !p.has_next_page {
            break;
        }
    }
    assert_eq!(paged, all);
    // Another tenant's admin sees none of them.
    let stranger = db.store.system().act_as("other-tenant", "admin", Roles::new([Role::Admin])).await.expect("admin");
    assert!(stranger.events(&EventFilter::default(), &page(10)).await.expect("events").rows.is_empty());
}

/// A live feed (GraphQL subscriptions) sends each event once: new ones in id order, and one whose
/// transaction took its id before others yet committed after them had been sent (PostgreSQL,
/// concurrent writers) once it appears — never one from before the feed's start. Opening and
/// reading a feed is checked as `events` is; resuming after a position replays what followed it.
async fn event_feeds_send_each_event_once_late_commits_included(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    let types = |ts: &[&str]| EventFilter { types: ts.iter().map(|s| s.to_string()).collect() };
    let v = agent(db, "agent").await;
    assert_err!(v.open_event_feed(EventFilter::default(), FeedStart::Now).await, StoreError::Forbidden(_));
    assert_err!(a.open_event_feed(types(&["nope"]), FeedStart::Now).await, StoreError::Invalid(_));
    assert_err!(
        a.open_event_feed(EventFilter::default(), FeedStart::AfterCursor("garbage".into())).await,
        StoreError::Invalid(_)
    );

    let mut feed = a.open_event_feed(EventFilter::default(), FeedStart::Now).await.expect("feed");
    let start = feed.position().expect("starts at the newest event");
    let mut groups = a.open_event_feed(types(&["group.*"]), FeedStart::Now).await.expect("feed");
    let kinds = |es: Vec<EventRecord>| es.into_iter().map(|e| e.event_type).collect::<Vec<_>>();
    assert!(a.poll_event_feed(&mut feed, 100).await.expect("poll").is_empty(), "nothing before the start");
    a.create_group(group(own, "Top", None)).await.expect("group");
    contact(&a, own, "Anna", "Abbott").await;
    let sent = kinds(a.poll_event_feed(&mut feed, 100).await.expect("poll"));
    assert_eq!(sent, vec![EventType::GroupCreated, EventType::ContactCreated]);
    assert!(a.poll_event_feed(&mut feed, 100).await.expect("poll").is_empty(), "each once");
    assert!(a.sweep_event_feed(&mut feed).await.expect("sweep").is_empty(), "nothing late");
    assert_eq!(kinds(a.poll_event_feed(&mut groups, 100).await.expect("poll")), vec![EventType::GroupCreated]);

    // Committed late: an id just below the newest one sent. And one from before the start.
    let tenant = a.viewer().tenant_id().0;
    let newest = feed.position().expect("position");
    let late = Uuid::from_u128(newest.as_u128() - 1);
    cohort_store::testing::insert_event_unchecked(&db.store, tenant, late, EventType::ContactUpdated)
        .await
        .expect("late event");
    let early = Uuid::from_u128(start.as_u128() - 1);
    cohort_store::testing::insert_event_unchecked(&db.store, tenant, early, EventType::ContactUpdated)
        .await
        .expect("early event");
    assert!(a.poll_event_feed(&mut feed, 100).await.expect("poll").is_empty(), "a cursor alone misses it");
    let swept = a.sweep_event_feed(&mut feed).await.expect("sweep");
    assert_eq!(swept.iter().map(|e| e.id).collect::<Vec<_>>(), vec![late], "the sweep finds it, not the early one");
    assert!(a.sweep_event_feed(&mut feed).await.expect("sweep").is_empty(), "sent once");
    assert!(a.sweep_event_feed(&mut groups).await.expect("sweep").is_empty(), "the filter holds");

    // Read on by another handle: a fresh one of the tenant, yes; another tenant's, never.
    let fresh = admin(db).await;
    contact(&fresh, own, "Bruno", "Baker").await;
    assert_eq!(kinds(fresh.poll_event_feed(&mut feed, 100).await.expect("poll")), vec![EventType::ContactCreated]);
    let stranger = db.store.system().act_as("other-tenant", "admin", Roles::new([Role::Admin])).await.expect("admin");
    assert_err!(stranger.poll_event_feed(&mut feed, 100).await, StoreError::Forbidden(_));

    // Resuming after the start (an event id, or an `events` cursor) replays in id order, one page
    // at a time.
    let mut resumed = a.open_event_feed(EventFilter::default(), FeedStart::AfterEvent(start)).await.expect("feed");
    let replay = kinds(a.poll_event_feed(&mut resumed, 2).await.expect("poll"));
    assert_eq!(replay, vec![EventType::GroupCreated, EventType::ContactUpdated]);
    let replay = kinds(a.poll_event_feed(&mut resumed, 100).await.expect("poll"));
    assert_eq!(replay, vec![EventType::ContactCreated, EventType::ContactCreated]);
    let first = a.events(&EventFilter::default(), &page(1)).await.expect("events");
    let cursor = first.rows[0].0.clone();
    let mut from_cursor =
        a.open_event_feed(EventFilter::default(), FeedStart::AfterCursor(cursor)).await.expect("feed");
    let all = all_events(&a).await;
    let replay = a.poll_event_feed(&mut from_cursor, 100).await.expect("poll");
    assert_eq!(replay, all[1..].to_vec(), "everything after the oldest event (the early one)");
}

/// A write that changes nothing (revoking a grant nobody holds, unassigning a list that was never
/// assigned, re-adding a member, moving a group where it is) commits no event and no audit row:
/// the outbox reports changes, and a webhook consumer must not act on ones that never happened.
async fn writes_that_change_nothing_report_nothing(db: &TestStore) {
    let a = admin(db).await;
    let own = book(&a, "Own").await;
    let v = agent(db, "agent").await;
    let team = a.create_user_group("Team", None).await.expect("user group");
    a.add_user_group_members(team.id, &[v.viewer().user_id()]).await.expect("members");
    let g = a.create_group(group(own, "Top", None)).await.expect("group");
    let anna = contact(&a, own, "Anna", "Abbott").await;
    a.add_group_members(g.id, &[anna], None, None).await.expect("add");
    a.set_business_status(anna, Some("customer"), None).await.expect("status");
    let list = a
        .create_price_list(cohort_store::PriceListInput {
            name: "Members".into(),
            currency: "EUR".into(),
            valid_from: None,
            valid_to: None,
            base_price_list_id: None,
        })
        .await
        .expect("price list");
    let before = footprint(db, &a).await;

    assert!(!a.revoke_access(own, me(&v)).await.expect("revoke nothing"));
    assert!(!a.unassign_group_price_list(g.id, list.id).await.expect("unassign nothing"));
    assert!(!a.unassign_contact_price_list(anna, list.id).await.expect("unassign nothing"));
    assert_eq!(a.add_user_group_members(team.id, &[v.viewer().user_id()]).await.expect("again"), 0);
    assert_eq!(a.remove_user_group_members(team.id, &[a.viewer().user_id()]).await.expect("not a member"), 0);
    assert_eq!(a.add_group_members(g.id, &[anna], None, None).await.expect("again").added, 0);
    assert_eq!(a.remove_group_members(g.id, &[ContactId(Uuid::now_v7())], None, None).await.expect("none").removed, 0);
    a.move_group(g.id, None).await.expect("stay");
    a.set_business_status(anna, Some("customer"), None).await.expect("same status");

    let after = footprint(db, &a).await;
    let new: Vec<EventType> = after.0[before.0.len()..].iter().map(|e| e.event_type).collect();
    assert_eq!(new, vec![], "no-op writes reported events");
    assert_eq!(after.1, before.1, "no-op writes left audit rows");
}
