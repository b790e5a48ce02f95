#!/usr/bin/env python3
"""Calls Cohort's REST facade through a client generated from its OpenAPI document.

tests/api/rest.rs generates the client with openapi-python-client (offline, from the document the
server serves) into a temporary directory and runs this script with it:

    python3 scripts/rest_client.py PACKAGE_DIR MODE BASE_URL TOKEN PARAMS_JSON

MODE `prices` resolves a price (and checks that a refusal parses as a `Problem`); MODE `upsert`
upserts two contacts twice (created, then unchanged). The script asserts what it can check alone
and prints what it got as JSON for the test to compare.
"""

import json
import sys


def main() -> None:
    package_dir, mode, base_url, token, params = sys.argv[1:6]
    sys.path.insert(0, package_dir)
    from cohort_client import AuthenticatedClient
    from cohort_client.api.contacts import upsert_contacts
    from cohort_client.api.pricing import resolve_price
    from cohort_client.models import (
        ContactKind,
        EmailInput,
        PriceResolution,
        Problem,
        ResolvePriceRequest,
        UpsertContactInput,
        UpsertContactsRequest,
        UpsertContactsResult,
        UpsertStatus,
    )

    p = json.loads(params)
    client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
    if mode == "prices":
        body = ResolvePriceRequest(contact_id=p["contactId"], sku=p["sku"], quantity=p["quantity"], currency="EUR")
        r = resolve_price.sync_detailed(client=client, body=body)
        assert r.status_code == 200, (r.status_code, r.content)
        price = r.parsed
        assert isinstance(price, PriceResolution), price
        refused = resolve_price.sync_detailed(
            client=client,
            body=ResolvePriceRequest(contact_id=p["hiddenId"], sku=p["sku"], quantity="1", currency="EUR"),
        )
        assert refused.status_code == 404, (refused.status_code, refused.content)
        assert refused.headers["content-type"] == "application/problem+json", refused.headers
        assert isinstance(refused.parsed, Problem) and refused.parsed.code == "NOT_FOUND", refused.parsed
        out = {
            "sku": price.product.sku,
            "quantity": price.quantity,
            "unitPrice": price.unit_price,
            "lineTotal": price.line_total,
            "currency": price.currency,
            "source": price.source.value,
            "priceList": None if price.price_list is None else price.price_list.name,
            "problemType": refused.parsed.type_,
        }
    elif mode == "upsert":
        body = UpsertContactsRequest(
            address_book_id=p["addressBookId"],
            system="erp",
            contacts=[
                UpsertContactInput(
                    external_id="C-1",
                    kind=ContactKind.PERSON,
                    first_name="Ada",
                    last_name="Lovelace",
                    emails=[EmailInput(address="ada@example.com", label="work")],
                ),
                UpsertContactInput(external_id="C-2", kind=ContactKind.COMPANY, company_name="Engines Ltd"),
            ],
        )
        statuses = []
        for _ in range(2):
            r = upsert_contacts.sync_detailed(client=client, body=body)
            assert r.status_code == 200, (r.status_code, r.content)
            res = r.parsed
            assert isinstance(res, UpsertContactsResult) and res.committed, res
            statuses.append([item.status.value for item in res.results])
        first = res.results[0].contact
        assert res.results[1].status == UpsertStatus.UNCHANGED
        out = {
            "statuses": statuses,
            "displayName": first.display_name,
            "emails": [e.address for e in first.emails],
            "externalIds": [[x.system, x.value] for x in first.external_ids],
        }
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
