//! `cohort-bench generate`: loads dataset M (or `s`) through the store's bulk loader.

use crate::dataset::{self as ds, ContactName, Size};
use anyhow::{Context, bail};
use cohort_domain::contact::ContactKind;
use cohort_domain::group::MembershipSource;
use cohort_domain::ids::{AddressBookId, ContactId, GroupId, PriceItemId, PriceListId, ProductId, UserGroupId, UserId};
use cohort_domain::money::Currency;
use cohort_store::{
    BulkContact, BulkGroup, BulkLoader, BulkMembership, BulkPriceItem, BulkProduct, BulkUser, Principal, Store,
    StoreOptions,
};
use std::time::Instant;

/// Rows handed to the loader per call (each call is one transaction).
const BATCH: usize = 50_000;

pub async fn run(database: &str, size: Size) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = Store::connect(database, StoreOptions::default()).await.context("cannot open the database")?;
    store.migrate().await.context("migration failed")?;
    let loader = store.system().bulk_loader(ds::TENANT).await?;
    if !loader_is_empty(&store, &loader).await? {
        bail!("tenant '{}' already holds data: generate into a fresh database", ds::TENANT);
    }
    let step = |what: &str, n: u64, t: Instant| {
        eprintln!("  {what:<22} {n:>10} rows  {:>7.1} s", t.elapsed().as_secs_f64());
    };
    eprintln!("generating dataset {} into {}", size.name(), store.backend_name());

    let t = Instant::now();
    let users: Vec<BulkUser> = (1..=ds::USERS)
        .map(|u| BulkUser { id: UserId(ds::user_id(u)), subject: ds::subject(u), name: Some(format!("User {u}")) })
        .collect();
    let mut n = loader.users(&users).await?;
    let ugs: Vec<_> =
        (1..=ds::USER_GROUPS).map(|g| (UserGroupId(ds::user_group_id(g)), format!("User group {g}"))).collect();
    n += loader.user_groups(&ugs).await?;
    let ugm: Vec<_> = (1..=ds::USERS)
        .map(|u| (UserGroupId(ds::user_group_id(ds::user_group_of(u))), UserId(ds::user_id(u))))
        .collect();
    n += loader.user_group_members(&ugm).await?;
    let books: Vec<_> = (1..=ds::BOOKS).map(|b| (AddressBookId(ds::book_id(b)), format!("Book {b}"))).collect();
    n += loader.address_books(&books).await?;
    let grants: Vec<_> = ds::grants()
        .into_iter()
        .map(|(b, is_group, p, level)| {
            let principal = if is_group {
                Principal::UserGroup(UserGroupId(ds::user_group_id(p)))
            } else {
                Principal::User(UserId(ds::user_id(p)))
            };
            (AddressBookId(ds::book_id(b)), principal, level)
        })
        .collect();
    n += loader.grants(&grants).await?;
    step("principals and books", n, t);

    let t = Instant::now();
    let mut pipe = Pipe::new(loader.parallel_writes());
    let mut batch = Vec::with_capacity(BATCH);
    for c in 1..=size.contacts {
        let (kind, first, last, company) = match ds::contact_name(c) {
            ContactName::Person { first, last } => (ContactKind::Person, Some(first.to_owned()), Some(last), None),
            ContactName::Company { name } => (ContactKind::Company, None, None, Some(name)),
        };
        batch.push(BulkContact {
            id: ContactId(ds::contact_id(c)),
            address_book_id: AddressBookId(ds::book_id(ds::contact_book(c))),
            kind,
            first_name: first,
            last_name: last,
            company_name: company,
            email: Some(ds::email(c)),
        });
        if batch.len() == BATCH || c == size.contacts {
            let (l, b) = (loader.clone(), std::mem::take(&mut batch));
            pipe.push(async move { l.contacts(&b).await }).await?;
        }
    }
    step("contacts (+ e-mails)", pipe.finish().await?, t);

    let t = Instant::now();
    let groups: Vec<BulkGroup> = (1..=size.groups)
        .map(|g| BulkGroup {
            id: GroupId(ds::group_id(g)),
            address_book_id: AddressBookId(ds::book_id(ds::group_book(g))),
            parent_id: ds::group_parent(g).map(|p| GroupId(ds::group_id(p))),
            name: ds::group_name(g),
            public_name: ds::group_public_name(g),
        })
        .collect();
    let n = loader.groups(&groups).await?;
    step("groups (+ closure)", n, t);

    let t = Instant::now();
    let mut pipe = Pipe::new(loader.parallel_writes());
    let pricing_contact = size.pricing_contact();
    let mut batch = Vec::with_capacity(BATCH);
    for g in 1..=size.groups {
        let mut holds_pricing_contact = false;
        for m in ds::members(&size, g) {
            holds_pricing_contact |= m.contact == pricing_contact;
            batch.push(BulkMembership {
                group_id: GroupId(ds::group_id(g)),
                contact_id: ContactId(ds::contact_id(m.contact)),
                joined_at: m.joined_at,
                source: m.source,
                assigned_by: m.assigned_by.map(|u| UserId(ds::user_id(u))),
            });
        }
        if size.pricing_extra_groups().contains(&g) && !holds_pricing_contact {
            batch.push(BulkMembership {
                group_id: GroupId(ds::group_id(g)),
                contact_id: ContactId(ds::contact_id(pricing_contact)),
                joined_at: chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")?.to_utc(),
                source: MembershipSource::Assigned,
                assigned_by: Some(UserId(ds::user_id(1))),
            });
        }
        if batch.len() >= BATCH || g == size.groups {
            let (l, b) = (loader.clone(), std::mem::take(&mut batch));
            pipe.push(async move { l.memberships(&b).await }).await?;
        }
    }
    step("memberships", pipe.finish().await?, t);

    let t = Instant::now();
    let eur = Currency::parse("EUR")?;
    let products: Vec<BulkProduct> = (1..=ds::PRODUCTS)
        .map(|p| BulkProduct {
            id: ProductId(ds::product_id(p)),
            sku: format!("P{p}"),
            name: format!("Product {p}"),
            list_price: ds::product_list_price(p),
            currency: eur,
        })
        .collect();
    let mut n = loader.products(&products).await?;
    let lists: Vec<_> =
        (1..=ds::PRICE_LISTS).map(|l| (PriceListId(ds::price_list_id(l)), format!("Price list {l}"), eur)).collect();
    n += loader.price_lists(&lists).await?;
    let mut pipe = Pipe::new(loader.parallel_writes());
    let mut items = Vec::with_capacity(BATCH);
    for l in 1..=ds::PRICE_LISTS {
        for (j, p, one, ten) in ds::list_items(l) {
            for (tier, min, price) in [(0, 1, one), (1, 10, ten)] {
                items.push(BulkPriceItem {
                    id: PriceItemId(ds::price_item_id(l, j, tier)),
                    price_list_id: PriceListId(ds::price_list_id(l)),
                    product_id: ProductId(ds::product_id(p)),
                    min_quantity: min.into(),
                    fixed_price: price,
                });
            }
        }
        if items.len() >= BATCH || l == ds::PRICE_LISTS {
            let (ld, b) = (loader.clone(), std::mem::take(&mut items));
            pipe.push(async move { ld.price_items(&b).await }).await?;
        }
    }
    n += pipe.finish().await?;
    let assignments: Vec<_> = (1..=size.groups)
        .flat_map(|g| {
            ds::group_lists(g).map(|(l, prio)| (GroupId(ds::group_id(g)), PriceListId(ds::price_list_id(l)), prio))
        })
        .collect();
    n += loader.group_price_lists(&assignments).await?;
    step("products, price lists", n, t);

    let t = Instant::now();
    loader.analyze().await?;
    step("ANALYZE", 0, t);
    eprintln!("dataset {} loaded in {:.1} s", size.name(), started.elapsed().as_secs_f64());
    println!("load_seconds={:.1}", started.elapsed().as_secs_f64());
    store.close().await;
    Ok(())
}

async fn loader_is_empty(store: &Store, loader: &BulkLoader) -> anyhow::Result<bool> {
    Ok(store.system().tenant_user_count(loader.tenant_id()).await? == 0)
}

/// Up to `limit` loader calls in flight (each its own transaction), so that building the next
/// batch and writing the previous ones overlap.
struct Pipe {
    set: tokio::task::JoinSet<cohort_store::StoreResult<u64>>,
    limit: usize,
    total: u64,
}

impl Pipe {
    fn new(limit: usize) -> Pipe {
        Pipe { set: tokio::task::JoinSet::new(), limit: limit.max(1), total: 0 }
    }

    async fn push<F>(&mut self, call: F) -> anyhow::Result<()>
    where
        F: std::future::Future<Output = cohort_store::StoreResult<u64>> + Send + 'static,
    {
        while self.set.len() >= self.limit {
            if let Some(done) = self.set.join_next().await {
                self.total += done??;
            }
        }
        self.set.spawn(call);
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<u64> {
        while let Some(done) = self.set.join_next().await {
            self.total += done??;
        }
        Ok(self.total)
    }
}
