"""Times one peer OFX parser on one file, for ``bench.ofx_parse``.

Run by the peers' own venv (``bench/.venv-ofx-peers``), never by OpenAgg's: it
imports only the stdlib and the peer it is asked for. Prints one JSON line.

    .venv-ofx-peers/bin/python -I bench/_ofx_peer.py ofxtools FILE --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from importlib import metadata
from typing import Any


def _ofxtools() -> tuple[Callable[[bytes], Any], Callable[[Any], list[Decimal]]]:
    from ofxtools.Parser import OFXTree

    def parse(data: bytes) -> Any:
        tree = OFXTree()
        tree.parse(io.BytesIO(data))
        return tree.convert()  # the typed aggregates: what a caller works with

    def amounts(ofx: Any) -> list[Decimal]:
        return [t.trnamt for s in ofx.statements for t in s.transactions]

    return parse, amounts


def _ofxparse() -> tuple[Callable[[bytes], Any], Callable[[Any], list[Decimal]]]:
    from ofxparse import OfxParser

    def parse(data: bytes) -> Any:
        return OfxParser.parse(io.BytesIO(data))

    def amounts(ofx: Any) -> list[Decimal]:
        return [t.amount for a in ofx.accounts for t in a.statement.transactions]

    return parse, amounts


PEERS = {"ofxtools": _ofxtools, "ofxparse": _ofxparse}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("peer", choices=sorted(PEERS))
    p.add_argument("file")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    parse, amounts = PEERS[a.peer]()
    with open(a.file, "rb") as f:
        data = f.read()
    times: list[float] = []
    cpu: list[float] = []
    result: Any = None
    for _ in range(a.repeat):
        result = None  # the last run's objects are freed outside the timing
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = parse(data)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    values = amounts(result)
    json.dump(
        {
            "peer": a.peer,
            "version": metadata.version(a.peer),
            "python": sys.version.split()[0],
            "times": times,
            "cpu": cpu,
            "count": len(values),
            "total": str(sum(values, Decimal(0))),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
