//! Price lists and resolution over HTTP (issue 4's named cases that the current slice covers).

use crate::groups::{ADD, group};
use crate::on_both_backends;
use crate::support::{Actor, CREATE_CONTACT, TestApp, World, statements};
use serde_json::{Value, json};

const RESOLVE: &str = "query($i: ResolvePriceInput!) { resolvePrice(input: $i) { unitPrice lineTotal currency source
    priceList { name } group { name } explanation { step priceList { name } priority group { name } definedOn { name } outcome skipReason } } }";

async fn product(admin: &Actor<'_>, sku: &str, price: &str, currency: &str) -> String {
    let d = admin
        .ok(
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { id listPrice } } }",
            json!({"i": {"sku": sku, "name": format!("Product {sku}"), "listPrice": price, "currency": currency}}),
        )
        .await;
    d["createProduct"]["product"]["id"].as_str().unwrap().to_owned()
}

async fn price_list(admin: &Actor<'_>, name: &str, extra: Value) -> String {
    let mut i = json!({"name": name, "currency": "EUR"});
    if let (Some(o), Some(e)) = (i.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    let d = admin
        .ok("mutation($i: CreatePriceListInput!) { createPriceList(input: $i) { priceList { id } } }", json!({"i": i}))
        .await;
    d["createPriceList"]["priceList"]["id"].as_str().unwrap().to_owned()
}

async fn items(admin: &Actor<'_>, list: &str, items: Value) {
    admin
        .ok(
            "mutation($i: SetPriceListItemsInput!) { setPriceListItems(input: $i) { itemCount } }",
            json!({"i": {"priceListId": list, "items": items}}),
        )
        .await;
}

async fn assign_group(admin: &Actor<'_>, g: &str, l: &str, priority: i32) {
    admin
        .ok(
            "mutation($i: AssignGroupPriceListInput!) { assignGroupPriceList(input: $i) { group { id } } }",
            json!({"i": {"groupId": g, "priceListId": l, "priority": priority}}),
        )
        .await;
}

async fn resolution_follows_the_design_order(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let p = product(&admin, "P-1", "100", "EUR").await;
    let l1 = price_list(&admin, "Gold", json!({})).await;
    let l2 = price_list(&admin, "Silver", json!({})).await;
    items(
        &admin,
        &l1,
        json!([{"productId": p, "fixedPrice": "80"}, {"productId": p, "minQuantity": "10", "fixedPrice": "75"}]),
    )
    .await;
    items(&admin, &l2, json!([{"productId": p, "fixedPrice": "70"}])).await;
    let g1 = group(&admin, &w.own, "Gold customers", None).await;
    let g2 = group(&admin, &w.own, "Silver customers", None).await;
    assign_group(&admin, &g1, &l1, 1).await;
    assign_group(&admin, &g2, &l2, 2).await;
    admin.ok(ADD, json!({"i": {"groupId": g1, "contactIds": [w.id("anna")]}})).await;
    admin.ok(ADD, json!({"i": {"groupId": g2, "contactIds": [w.id("anna")]}})).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let ask = |q: &str| json!({"i": {"contactId": w.id("anna"), "productId": p, "quantity": q, "currency": "EUR"}});
    // Priority 1 beats priority 2 (although priority 2 is cheaper).
    let d = agent.ok(RESOLVE, ask("9")).await;
    let r = &d["resolvePrice"];
    assert_eq!(
        (r["unitPrice"].as_str(), r["lineTotal"].as_str(), r["source"].as_str()),
        (Some("80"), Some("720.00"), Some("GROUP_LIST"))
    );
    assert_eq!(r["priceList"]["name"], "Gold");
    assert_eq!(r["group"]["name"], "Gold customers");
    assert_eq!(r["explanation"][0]["outcome"], "APPLIED");
    assert_eq!(
        r["explanation"][1],
        json!({"step": "GROUP_LIST", "priceList": {"name": "Silver"}, "priority": 2, "group": {"name": "Silver customers"}, "definedOn": {"name": "Silver customers"}, "outcome": "NOT_REACHED", "skipReason": null})
    );
    // Tiers at 9 and 10.
    assert_eq!(agent.ok(RESOLVE, ask("10")).await["resolvePrice"]["unitPrice"], "75");
    // An individual list beats group lists.
    let mine = price_list(&admin, "Anna special", json!({})).await;
    items(&admin, &mine, json!([{"productId": p, "fixedPrice": "90"}])).await;
    admin
        .ok(
            "mutation($i: AssignContactPriceListInput!) { assignContactPriceList(input: $i) { contact { id } } }",
            json!({"i": {"contactId": w.id("anna"), "priceListId": mine, "priority": 5}}),
        )
        .await;
    let d = agent.ok(RESOLVE, ask("10")).await;
    assert_eq!(
        (d["resolvePrice"]["unitPrice"].as_str(), d["resolvePrice"]["source"].as_str()),
        (Some("90"), Some("CONTACT_LIST"))
    );
    // Prices are strings; a float is refused.
    let bad = agent
        .gql(RESOLVE, json!({"i": {"contactId": w.id("anna"), "productId": p, "quantity": 1.5, "currency": "EUR"}}))
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    for q in ["0", "-1"] {
        assert_eq!(agent.err(RESOLVE, ask(q)).await, "BAD_USER_INPUT", "quantity {q}");
    }
}

async fn validity_inheritance_bases_and_rounding(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let p = product(&admin, "P-2", "33.335", "EUR").await;
    let ask = |c: &str, q: &str, at: Option<&str>| json!({"i": {"contactId": c, "sku": "P-2", "quantity": q, "currency": "EUR", "at": at}});
    // No list at all: the list price, rounded half away from zero: 33.335 × 3 = 100.01.
    let d = admin.ok(RESOLVE, ask(w.id("bruno"), "3", None)).await;
    assert_eq!(
        (d["resolvePrice"]["source"].as_str(), d["resolvePrice"]["lineTotal"].as_str()),
        (Some("LIST_PRICE"), Some("100.01"))
    );
    // A future-dated default list: ignored today, applied at its date.
    let future = price_list(&admin, "2027 prices", json!({"validFrom": "2027-01-01T00:00:00Z"})).await;
    items(&admin, &future, json!([{"productId": p, "fixedPrice": "30"}])).await;
    admin
        .ok(
            "mutation($l: ID) { setDefaultPriceList(input: {priceListId: $l}) { priceList { name } } }",
            json!({"l": future}),
        )
        .await;
    let today = admin.ok(RESOLVE, ask(w.id("bruno"), "1", Some("2026-11-23T12:00:00Z"))).await;
    assert_eq!(today["resolvePrice"]["source"], "LIST_PRICE");
    assert_eq!(today["resolvePrice"]["explanation"][0]["skipReason"], "NOT_VALID_AT_DATE");
    let later = admin.ok(RESOLVE, ask(w.id("bruno"), "1", Some("2027-01-01T00:00:00Z"))).await;
    assert_eq!(
        (later["resolvePrice"]["source"].as_str(), later["resolvePrice"]["unitPrice"].as_str()),
        (Some("DEFAULT_LIST"), Some("30"))
    );
    // A subgroup inherits its parent's lists; a list based on another: 10% off the base price.
    let base = price_list(&admin, "Base", json!({})).await;
    items(&admin, &base, json!([{"productId": p, "fixedPrice": "20"}])).await;
    let derived = price_list(&admin, "Partners", json!({"basePriceListId": base})).await;
    items(&admin, &derived, json!([{"productId": p, "discountPercent": "10"}])).await;
    let parent = group(&admin, &w.own, "Partners", None).await;
    let child = group(&admin, &w.own, "Partners DE", Some(&parent)).await;
    assign_group(&admin, &parent, &derived, 1).await;
    admin.ok(ADD, json!({"i": {"groupId": child, "contactIds": [w.id("clara")]}})).await;
    let d = admin.ok("query($g: ID!) { group(id: $g) { priceLists { priority } effectivePriceLists { priceList { name } priority definedOn { name } } } }", json!({"g": child})).await;
    assert_eq!(d["group"]["priceLists"], json!([]));
    assert_eq!(
        d["group"]["effectivePriceLists"],
        json!([{"priceList": {"name": "Partners"}, "priority": 1, "definedOn": {"name": "Partners"}}])
    );
    let d = admin.ok(RESOLVE, ask(w.id("clara"), "2", None)).await;
    let r = &d["resolvePrice"];
    assert_eq!(
        (r["unitPrice"].as_str(), r["lineTotal"].as_str(), r["group"]["name"].as_str()),
        (Some("18"), Some("36.00"), Some("Partners DE"))
    );
    assert_eq!(r["explanation"][0]["definedOn"]["name"], "Partners");
    // Updates persist (name and base of a list, price and state of a product).
    let upd_ok = "mutation($i: UpdatePriceListInput!) { updatePriceList(input: $i) { priceList { name basePriceList { name } } } }";
    admin
        .ok(upd_ok, json!({"i": {"id": derived, "name": "Partners 2027", "currency": "EUR", "basePriceListId": base}}))
        .await;
    let d =
        admin.ok("query($l: ID!) { priceList(id: $l) { name basePriceList { name } } }", json!({"l": derived})).await;
    assert_eq!(d["priceList"], json!({"name": "Partners 2027", "basePriceList": {"name": "Base"}}));
    admin
        .ok(
            "mutation($p: ID!) { updateProduct(input: {id: $p, listPrice: \"40\"}) { product { id } } }",
            json!({"p": p}),
        )
        .await;
    let d = admin.ok("query($p: ID!) { product(id: $p) { listPrice } }", json!({"p": p})).await;
    assert_eq!(d["product"]["listPrice"], "40");
    // Base-list cycles are refused.
    let upd = "mutation($i: UpdatePriceListInput!) { updatePriceList(input: $i) { priceList { id } } }";
    assert_eq!(
        admin.err(upd, json!({"i": {"id": base, "name": "Base", "currency": "EUR", "basePriceListId": derived}})).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        admin.err(upd, json!({"i": {"id": base, "name": "Base", "currency": "EUR", "basePriceListId": base}})).await,
        "BAD_USER_INPUT"
    );
    // Currency mismatch: no list in CHF and a list price in EUR.
    let chf = json!({"i": {"contactId": w.id("clara"), "sku": "P-2", "quantity": "1", "currency": "CHF"}});
    assert_eq!(admin.err(RESOLVE, chf).await, "NO_PRICE");
}

async fn agents_cannot_read_lists_and_explanations_hide_groups(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let p = product(&admin, "P-3", "50", "EUR").await;
    let secret_list = price_list(&admin, "Purchasing", json!({})).await;
    items(&admin, &secret_list, json!([{"productId": p, "fixedPrice": "21.5"}])).await;
    let hidden = group(&admin, &w.hidden, "Secret segment", None).await;
    assign_group(&admin, &hidden, &secret_list, 1).await;
    admin.ok(ADD, json!({"i": {"groupId": hidden, "contactIds": [w.id("anna")]}})).await;
    // The price is right (every group counts), but the hidden group is never named.
    let d = agent
        .ok(RESOLVE, json!({"i": {"contactId": w.id("anna"), "productId": p, "quantity": "1", "currency": "EUR"}}))
        .await;
    let r = &d["resolvePrice"];
    assert_eq!((r["unitPrice"].as_str(), r["group"].clone()), (Some("21.5"), Value::Null));
    assert_eq!(r["explanation"][0]["group"], Value::Null);
    assert_eq!(r["explanation"][0]["definedOn"], Value::Null);
    assert!(!d.to_string().contains("Secret segment"));
    // List contents are for admins.
    assert_eq!(agent.err("{ priceLists { edges { node { name } } } }", json!({})).await, "FORBIDDEN");
    assert_eq!(
        agent.err("query($l: ID!) { priceList(id: $l) { items { fixedPrice } } }", json!({"l": secret_list})).await,
        "FORBIDDEN"
    );
    assert_eq!(
        agent
            .err(
                "mutation($i: SetPriceListItemsInput!) { setPriceListItems(input: $i) { itemCount } }",
                json!({"i": {"priceListId": secret_list, "items": []}})
            )
            .await,
        "FORBIDDEN"
    );
    // The catalogue is readable.
    let d = agent.ok("{ products(search: \"p-3\") { edges { node { sku listPrice currency } } } }", json!({})).await;
    assert_eq!(d["products"]["edges"], json!([{"node": {"sku": "P-3", "listPrice": "50", "currency": "EUR"}}]));
    // Hidden contacts cannot be priced: NOT_FOUND like unknown ones.
    let code = agent
        .err(
            RESOLVE,
            json!({"i": {"contactId": w.id("anna_hidden"), "productId": p, "quantity": "1", "currency": "EUR"}}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    // Bad item sets change nothing.
    let bad = json!({"i": {"priceListId": secret_list, "items": [{"productId": p, "fixedPrice": "1"}, {"productId": p, "fixedPrice": "1", "discountPercent": "5"}]}});
    assert_eq!(
        admin.err("mutation($i: SetPriceListItemsInput!) { setPriceListItems(input: $i) { itemCount } }", bad).await,
        "BAD_USER_INPUT"
    );
    let d = admin.ok("query($l: ID!) { priceList(id: $l) { items { fixedPrice } } }", json!({"l": secret_list})).await;
    assert_eq!(d["priceList"]["items"], json!([{"fixedPrice": "21.5"}]));
    assert_eq!(admin.err("mutation { createProduct(input: {sku: \"P-3\", name: \"Dup\", listPrice: \"1\", currency: \"EUR\"}) { product { id } } }", json!({})).await, "CONFLICT");
    assert_eq!(admin.err("mutation { createProduct(input: {sku: \"P-4\", name: \"X\", listPrice: \"1\", currency: \"EURO\"}) { product { id } } }", json!({})).await, "BAD_USER_INPUT");
}

async fn quoting_is_batched(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let list = price_list(&admin, "Volume", json!({})).await;
    let mut list_items = vec![];
    for i in 0..40 {
        let p = product(&admin, &format!("Q-{i}"), "10", "EUR").await;
        list_items.push(json!({"productId": p, "fixedPrice": "9"}));
    }
    items(&admin, &list, Value::Array(list_items)).await;
    for i in 0..20 {
        let g = group(&admin, &w.own, &format!("Segment {i:02}"), None).await;
        assign_group(&admin, &g, &list, 10 + i).await;
        admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [w.id("anna")]}})).await;
    }
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let q =
        "query($i: QuoteOrderInput!) { quoteOrder(input: $i) { total currency lines { unitPrice lineTotal source } } }";
    let quote = |n: usize| json!({"i": {"contactId": w.id("anna"), "currency": "EUR", "lines": (0..n).map(|i| json!({"sku": format!("Q-{}", i % 40), "quantity": "2"})).collect::<Vec<_>>()}});
    agent.ok(q, quote(1)).await;
    let mut costs = vec![];
    for n in [1, 40] {
        let before = statements(&app).await;
        let d = agent.ok(q, quote(n)).await;
        assert_eq!(d["quoteOrder"]["lines"].as_array().unwrap().len(), n);
        costs.push(statements(&app).await - before);
    }
    // Issue 16 pins the count too: the contact with its candidate lists (and the group
    // visibility that names them), the products, and the lists with their base chains and
    // items — three statements whatever the number of lines, groups or lists (it was 9).
    assert_eq!(costs, [3, 3], "a quote's statements do not grow with its lines and stay at three");
    let d = agent.ok(q, quote(40)).await;
    assert_eq!(d["quoteOrder"]["total"], "720.00");
    // A quote writes nothing: READ is enough (like resolvePrice). Placing the order needs WRITE,
    // and Clara's book is READ-only for the agent.
    let d = agent
        .ok(
            q,
            json!({"i": {"contactId": w.id("clara"), "currency": "EUR", "lines": [{"sku": "Q-1", "quantity": "1"}]}}),
        )
        .await;
    assert_eq!(d["quoteOrder"]["lines"].as_array().map(Vec::len), Some(1));
    let code = agent
        .err(
            PLACE,
            json!({"i": {"contactId": w.id("clara"), "currency": "EUR", "lines": [{"sku": "Q-1", "quantity": "1"}]}}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    // A hidden contact is NOT_FOUND for a quote too.
    let code = agent
        .err(
            q,
            json!({"i": {"contactId": w.id("anna_hidden"), "currency": "EUR", "lines": [{"sku": "Q-1", "quantity": "1"}]}}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let _ = CREATE_CONTACT;
}

const PLACE: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { order { id total currency lineCount lines { lineNo sku quantity unitPrice lineTotal source priceList { name } } } } }";

async fn placed_orders_keep_their_prices_and_group_views_see_visible_members_only(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let p = product(&admin, "O-1", "10", "EUR").await;
    let list = price_list(&admin, "Shop", json!({})).await;
    items(&admin, &list, json!([{"productId": p, "fixedPrice": "8.5"}])).await;
    let g = group(&admin, &w.own, "Buyers", None).await;
    assign_group(&admin, &g, &list, 1).await;
    admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [w.id("anna"), w.id("bruno"), w.id("anna_hidden")]}})).await;
    let order =
        |c: &str, q: &str| json!({"i": {"contactId": c, "currency": "EUR", "lines": [{"sku": "O-1", "quantity": q}]}});
    let d = agent.ok(PLACE, order(w.id("anna"), "3")).await;
    let o = d["placeOrder"]["order"].clone();
    assert_eq!(
        (o["total"].as_str(), o["lines"][0]["unitPrice"].as_str(), o["lines"][0]["source"].as_str()),
        (Some("25.50"), Some("8.5"), Some("GROUP_LIST"))
    );
    agent.ok(PLACE, order(w.id("bruno"), "1")).await;
    // The list changes: the placed order does not.
    items(&admin, &list, json!([{"productId": p, "fixedPrice": "99"}])).await;
    let again = agent
        .ok(
            "query($id: ID!) { order(id: $id) { total lines { unitPrice lineTotal priceList { name } } } }",
            json!({"id": o["id"]}),
        )
        .await;
    assert_eq!(
        again["order"],
        json!({"total": "25.50", "lines": [{"unitPrice": "8.5", "lineTotal": "25.50", "priceList": {"name": "Shop"}}]})
    );
    // What the agent sees of the group's orders.
    let view = "query($g: ID!) { group(id: $g) { orderSummary { currency orderCount total } orders(first: 10) { edges { cursor node { total contact { displayName } } } } } }";
    let before = agent.ok(view, json!({"g": g})).await;
    assert_eq!(before["group"]["orderSummary"], json!([{"currency": "EUR", "orderCount": 2, "total": "34.00"}]));
    // Orders of a contact the agent cannot see — a member of the same group — change nothing.
    admin.ok(PLACE, order(w.id("anna_hidden"), "100")).await;
    admin.ok(PLACE, order(w.id("anna_hidden"), "7")).await;
    assert_eq!(agent.ok(view, json!({"g": g})).await, before, "hidden contacts' orders must not show");
    let d = admin.ok(view, json!({"g": g})).await;
    assert_eq!(d["group"]["orderSummary"][0]["orderCount"], 4);
    // A hidden contact's order answers like an order that never existed.
    let hidden = admin
        .ok(
            "query($c: ID!) { contact(id: $c) { orders { edges { node { id } } } } }",
            json!({"c": w.id("anna_hidden")}),
        )
        .await;
    let hidden_id = hidden["contact"]["orders"]["edges"][0]["node"]["id"].clone();
    let unknown = "T3JkZXI6MDE5YTAwMDAwMDAwNzAwMDgwMDAwMDAwMDAwMDAwMDA";
    let a = agent.gql("query($id: ID!) { order(id: $id) { total } }", json!({"id": hidden_id})).await;
    let b = agent.gql("query($id: ID!) { order(id: $id) { total } }", json!({"id": unknown})).await;
    assert_eq!(a, b);
    assert_eq!(a["errors"][0]["extensions"]["code"], "NOT_FOUND");
    // Date windows on the summary.
    let d = agent
        .ok(
            "query($g: ID!) { group(id: $g) { orderSummary(from: \"2099-01-01T00:00:00Z\") { orderCount } } }",
            json!({"g": g}),
        )
        .await;
    assert_eq!(d["group"]["orderSummary"], json!([]));
    // Placing needs WRITE; bad lines write nothing.
    assert_eq!(agent.err(PLACE, order(w.id("clara"), "1")).await, "FORBIDDEN");
    assert_eq!(agent.err(PLACE, order(w.id("anna"), "0")).await, "BAD_USER_INPUT");
    let d = agent
        .ok("query($c: ID!) { contact(id: $c) { orders { edges { node { total } } } } }", json!({"c": w.id("anna")}))
        .await;
    assert_eq!(d["contact"]["orders"]["edges"].as_array().unwrap().len(), 1);
    // Only admins may price an order for another date (an expired promotion must stay expired).
    let mut backdated = order(w.id("anna"), "1");
    backdated["i"]["at"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(agent.err(PLACE, backdated.clone()).await, "FORBIDDEN");
    admin.ok(PLACE, backdated).await;
    // Totals that do not fit are refused with a code — never clamped, never a crash.
    product(&admin, "BIG", "999999999999", "EUR").await;
    let huge = json!({"i": {"contactId": w.id("anna"), "currency": "EUR", "lines": [{"sku": "BIG", "quantity": "999999999"}]}});
    assert_eq!(agent.err(PLACE, huge).await, "BAD_USER_INPUT");
    // Trailing zeros are just zeros; inactive products cannot be ordered.
    agent.ok(PLACE, order(w.id("anna"), "1.0000")).await;
    admin
        .ok(
            "mutation($p: ID!) { updateProduct(input: {id: $p, active: false}) { product { active } } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(agent.err(PLACE, order(w.id("anna"), "1")).await, "BAD_USER_INPUT");
}

/// `Product` and `PriceList` are Relay `Node`s: `node(id:)` resolves them for whoever may read
/// them (the catalogue: every member of the tenant; price lists: admins only — for others a list
/// id answers `null`, exactly like an id that never existed), and ids are type-checked: a
/// product's id where a price list's is expected is `NOT_FOUND`, and the reverse.
async fn products_and_price_lists_are_nodes(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let p = product(&admin, "NODE-1", "12.50", "EUR").await;
    let l = price_list(&admin, "Node list", json!({})).await;
    const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id
        ... on Product { sku currency } ... on PriceList { name currency } } }";
    let d = admin.ok(NODE, json!({"id": p})).await;
    assert_eq!(d["node"], json!({"__typename": "Product", "id": p, "sku": "NODE-1", "currency": "EUR"}));
    assert_eq!(agent.ok(NODE, json!({"id": p})).await, d, "the catalogue is the tenant's");
    let d = admin.ok(NODE, json!({"id": l})).await;
    assert_eq!(d["node"], json!({"__typename": "PriceList", "id": l, "name": "Node list", "currency": "EUR"}));
    // Price lists are the admins': to an agent the id is no node at all, like an unknown one.
    let unknown = "UHJpY2VMaXN0OjAxOWEwMDAwMDAwMDcwMDA4MDAwMDAwMDAwMDAwMDAw"; // PriceList:019a…
    assert_eq!(agent.ok(NODE, json!({"id": l})).await["node"], Value::Null);
    assert_eq!(agent.ok(NODE, json!({"id": unknown})).await["node"], Value::Null);
    assert_eq!(admin.ok(NODE, json!({"id": unknown})).await["node"], Value::Null);
    // Another tenant's admin sees neither.
    let stranger = app.actor("globex", "admin", &["admin"]);
    for id in [&p, &l] {
        assert_eq!(stranger.ok(NODE, json!({"id": id})).await["node"], Value::Null, "{id}");
    }
    // Type-checked ids: the typed lookups refuse ids of the other type (and of a contact).
    let product_q = "query($id: ID!) { product(id: $id) { id } }";
    let list_q = "query($id: ID!) { priceList(id: $id) { id } }";
    assert_eq!(admin.ok(product_q, json!({"id": p})).await["product"]["id"], json!(p));
    assert_eq!(admin.ok(list_q, json!({"id": l})).await["priceList"]["id"], json!(l));
    assert_eq!(admin.err(product_q, json!({"id": l})).await, "NOT_FOUND");
    assert_eq!(admin.err(list_q, json!({"id": p})).await, "NOT_FOUND");
    assert_eq!(admin.err(product_q, json!({"id": w.id("anna")})).await, "NOT_FOUND");
    assert_eq!(admin.err(list_q, json!({"id": w.id("anna")})).await, "NOT_FOUND");
}

on_both_backends!(
    products_and_price_lists_are_nodes,
    placed_orders_keep_their_prices_and_group_views_see_visible_members_only,
    resolution_follows_the_design_order,
    validity_inheritance_bases_and_rounding,
    agents_cannot_read_lists_and_explanations_hide_groups,
    quoting_is_batched,
);
