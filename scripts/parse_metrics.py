#!/usr/bin/env python3
"""An operator's check of /metrics with the reference parsers (`prometheus_client`): the classic
text format (what a plain scrape gets) and OpenMetrics (asked for with `Accept`). Prints one JSON
object: for each format, every family's name and type. Exits non-zero if either parser fails or
any family comes out as "unknown".

Usage: scripts/parse_metrics.py URL
"""
import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_classic


def fetch(url: str, accept: str) -> tuple[str, str]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def main(url: str) -> None:
    out = {}
    for fmt, accept, parse in [
        ("classic", "text/plain;version=0.0.4", parse_classic),
        ("openmetrics", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5", parse_openmetrics),
    ]:
        content_type, text = fetch(url, accept)
        families = {f.name: f.type for f in parse(text)}
        out[fmt] = {"contentType": content_type, "families": families}
    print(json.dumps(out))
    unknown = [(fmt, n) for fmt, v in out.items() for n, t in v["families"].items() if t == "unknown"]
    if unknown:
        sys.exit(f"families parsed as unknown: {unknown}")


if __name__ == "__main__":
    main(sys.argv[1])
