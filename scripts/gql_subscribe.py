#!/usr/bin/env python3
"""A script author's live feed with Python `gql` over WebSocket (`graphql-transport-ws`):
subscribe to Cohort's events and print what arrives, one JSON object per line.

Usage: scripts/gql_subscribe.py HTTP_URL TOKEN SPEC_JSON

SPEC_JSON: {"query": "subscription …", "variables": {…},
            "warmup": {"query": "mutation …", "variables": {…}} or null,
            "expect": N, "timeout": seconds}

- The token goes into the `connection_init` payload (`{"authorization": "Bearer …"}`), as a
  browser client (which cannot set WebSocket headers) sends it.
- With `warmup`, the script runs that mutation over HTTP until the subscription has delivered an
  event of it (so the subscription is certainly listening), prints {"ready": true}, and from then
  on leaves out the events whose subjects include an id the warm-up returned.
- Then it prints {"event": …} for each event (up to `expect`), and {"done": true}.
- A refused subscription prints {"error": [the GraphQL errors]}; a refused connection prints
  {"refused": {"exception": …, "code": close code}}.
"""
import asyncio
import json
import sys

from gql import Client, gql
from gql.transport.exceptions import TransportClosed, TransportQueryError
from gql.transport.requests import RequestsHTTPTransport
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed


def say(obj) -> None:
    print(json.dumps(obj), flush=True)


def ids_in(value) -> set:
    """Every string under a key `id` in a mutation's answer."""
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "id" and isinstance(v, str):
                found.add(v)
            else:
                found |= ids_in(v)
    elif isinstance(value, list):
        for v in value:
            found |= ids_in(v)
    return found


def close_code(e: BaseException):
    for x in (e, e.__cause__, e.__context__):
        if isinstance(x, ConnectionClosed):
            return x.code
        code = getattr(x, "code", None)
        if isinstance(code, int):
            return code
    return None


async def main(url: str, token: str, spec: dict) -> None:
    ws_url = "ws" + url[len("http"):]
    transport = WebsocketsTransport(
        url=ws_url, init_payload={"authorization": f"Bearer {token}"}, connect_timeout=10, ack_timeout=10
    )
    warmup = spec.get("warmup")
    http = None
    if warmup:
        http = Client(transport=RequestsHTTPTransport(url=url, headers={"Authorization": f"Bearer {token}"}, retries=0))
    expect = spec.get("expect", 0)
    try:
        async with Client(transport=transport) as session:
            events = session.subscribe(gql(spec["query"]), variable_values=spec.get("variables"))
            warm_ids: set = set()
            ready = not warmup
            got = 0

            stop = asyncio.Event()

            async def warm_up():
                # Never cancelled mid-request: the ids of every warm-up sent are known before
                # {"ready": true}, so their late events can be told apart.
                while not stop.is_set():
                    answer = await asyncio.to_thread(
                        http.execute, gql(warmup["query"]), variable_values=warmup.get("variables")
                    )
                    warm_ids.update(ids_in(answer))
                    try:
                        await asyncio.wait_for(stop.wait(), 0.3)
                    except asyncio.TimeoutError:
                        pass

            warmer = asyncio.ensure_future(warm_up()) if warmup else None
            try:
                async for result in events:
                    event = result["events"]
                    if not ready:
                        # Only a warm-up's event can come first (nothing else is written yet).
                        ready = True
                        stop.set()
                        await warmer
                        say({"ready": True})
                        continue
                    if warm_ids & set(event.get("subjects") or []):
                        continue
                    say({"event": event})
                    got += 1
                    if got >= expect:
                        break
            finally:
                stop.set()
                if warmer and not warmer.done():
                    warmer.cancel()
                # Unsubscribes (`complete`) now rather than whenever the generator is collected.
                await events.aclose()
        say({"done": True})
    except TransportQueryError as e:
        say({"error": e.errors})
    except (TransportClosed, ConnectionClosed, OSError) as e:
        say({"refused": {"exception": type(e).__name__, "code": close_code(e), "message": str(e)}})


if __name__ == "__main__":
    spec = json.loads(sys.argv[3])
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], spec), timeout=spec.get("timeout", 60)))
