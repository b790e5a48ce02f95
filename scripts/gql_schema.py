#!/usr/bin/env python3
"""A script author's first steps with Python `gql`: fetch Cohort's schema by introspection
(`fetch_schema_from_transport`, which sends graphql-core's standard introspection query), then
run a query that gql validates against that schema before sending it.

Usage: scripts/gql_schema.py URL TOKEN   (prints the number of types and the query's answer)
"""
import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport


def main(url: str, token: str) -> None:
    transport = RequestsHTTPTransport(url=url, headers={"Authorization": f"Bearer {token}"}, retries=0)
    with Client(transport=transport, fetch_schema_from_transport=True) as session:
        schema = session.client.schema
        assert schema is not None and schema.query_type is not None, "no schema fetched"
        assert "contacts" in schema.query_type.fields, "Query.contacts missing from the fetched schema"
        answer = session.execute(gql("query Count { contacts(first: 1) { totalCount } }"))
        print(f"types={len(schema.type_map)} totalCount={answer['contacts']['totalCount']}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
