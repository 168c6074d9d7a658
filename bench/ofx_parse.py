"""Parsing OFX statements: OpenAgg's codec against two open-source peers.

The benchmark writes two bank statements of ``--transactions`` transactions each
(synthetic data of its own, the same transactions in both): an OFX 1.02 file (SGML
header, leaf elements left unclosed, CRLF lines) and an OFX 2.2 file (XML). A checking
account over 90 days: one signon, a realistic mix of TRNTYPEs, DTPOSTED with times
and ``[-5:EST]`` offsets, NAME, MEMO (not always), FITID, CHECKNUM on checks, names
with ``&amp;``, a ledger and an available balance.

Each file is parsed by, in the same run:

- ``openagg.ofx.parse`` (in this process): bytes to a typed ``Document``, with its
  C hot path when it was built, and again without it (``openagg-pure``: what an
  install without a C compiler runs; not compared with the targets);
- ``ofxparse`` (MIT): ``OfxParser.parse(fileobj)``;
- ``ofxtools`` (GPL-3.0): ``OFXTree().parse(fileobj)`` then ``.convert()`` (the typed
  transactions).

The peers are a benchmark-only comparison, never a dependency of OpenAgg: they are
installed into a venv of their own (``bench/.venv-ofx-peers``, made on first use) and
each runs in a subprocess of it (``bench/_ofx_peer.py``, which imports only the peer
and the stdlib). Without them (no network) only OpenAgg's figures are printed.

Each parser's time is the best of N runs (fewer for the slow peers) of parsing the
bytes in memory. Printed per file and parser: seconds, transactions/s, the count of
transactions read and the sum of their amounts (checked against what was written: a
difference is flagged), then the ratios. **Targets: OpenAgg >= 50x ofxtools and
>= 10x ofxparse**, with the same totals from all three.

    python -m bench.ofx_parse                            # 10,000 transactions per file
    python -m bench.ofx_parse --transactions 1000        # quick
    python -m bench.ofx_parse --profile                  # + cProfile of openagg on v1
    python -m bench.ofx_parse --no-peers                 # OpenAgg alone
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import pstats
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import metadata
from pathlib import Path

from bench._common import done, header, show, step, temp_dir
from openagg.ofx import accel, parse

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".venv-ofx-peers"
PEER_PINS = ("ofxparse==0.21", "ofxtools==1.1.1")
PEER_SCRIPT = HERE / "_ofx_peer.py"
PEERS = ("ofxparse", "ofxtools")
TARGETS = {"ofxtools": 50.0, "ofxparse": 10.0}

# --- the statements ------------------------------------------------------------------

# (TRNTYPE, weight, sign, cents low-high, NAMEs, MEMOs). NAME stays within OFX's 32
# characters (ofxtools checks); "" in MEMOs means the transaction has none.
_KINDS: list[tuple[str, int, int, tuple[int, int], tuple[str, ...], tuple[str, ...]]] = [
    (
        "POS",
        34,
        -1,
        (250, 18_000),
        (
            "WHOLEFDS MKT #10233",
            "SHELL OIL 57442183",
            "STARBUCKS STORE 08712",
            "AMAZON MKTPLACE PMTS",
            "TARGET T-1432",
            "CHIPOTLE 2291",
            "TRADER JOE'S #552",
            "CVS/PHARMACY #04417",
            "UBER *TRIP HELP.UBER.COM",
            "H&amp;M 0388 NEW YORK",
        ),
        ("POS PURCHASE CARD 4417", "DEBIT CARD PURCHASE", ""),
    ),
    (
        "DEBIT",
        14,
        -1,
        (1_000, 45_000),
        (
            "COMCAST CABLE COMM",
            "AT&amp;T MOBILITY",
            "VENMO PAYMENT",
            "NETFLIX.COM",
            "SPOTIFY USA",
            "PAYPAL INST XFER",
        ),
        ("ACH DEBIT", "WEB AUTHORIZED PMT", ""),
    ),
    (
        "DIRECTDEBIT",
        8,
        -1,
        (5_000, 60_000),
        ("GEICO AUTO INS", "PSEG UTILITY PMT", "NAVIENT STUDENT LN", "PLANET FITNESS"),
        ("PREAUTHORIZED DEBIT", ""),
    ),
    ("CHECK", 6, -1, (2_000, 250_000), (), ("", "CHECK PAID")),
    (
        "ATM",
        6,
        -1,
        (2_000, 40_000),
        ("ATM WITHDRAWAL", "NON-BANK ATM WITHDRAWAL"),
        ("ATM 5TH AVE &amp; 42ND ST NEW YORK", "ATM 1201 MAIN ST HOBOKEN", ""),
    ),
    (
        "CREDIT",
        8,
        1,
        (1_000, 150_000),
        ("ZELLE FROM J SMITH", "MOBILE DEPOSIT", "REFUND AMAZON.COM", "VENMO CASHOUT"),
        ("DEPOSIT", "ZELLE PAYMENT RECEIVED", ""),
    ),
    (
        "DIRECTDEP",
        6,
        1,
        (180_000, 420_000),
        ("ACME CORP PAYROLL", "IRS TREAS 310 TAX REF"),
        ("DIRECT DEPOSIT PPD", ""),
    ),
    (
        "XFER",
        8,
        -1,
        (5_000, 200_000),
        ("ONLINE TRANSFER TO SAV 1234", "ONLINE TRANSFER REF #IB0X"),
        ("INTERNET BANKING TRANSFER", ""),
    ),
    (
        "FEE",
        3,
        -1,
        (300, 3_500),
        ("MONTHLY SERVICE FEE", "OVERDRAFT FEE", "FOREIGN TRANSACTION FEE"),
        ("FEE", ""),
    ),
    ("SRVCHG", 1, -1, (500, 2_500), ("WIRE TRANSFER FEE",), ("SERVICE CHARGE",)),
    ("INT", 2, 1, (1, 900), ("INTEREST PAYMENT",), ("INTEREST PAID THIS PERIOD", "")),
    (
        "PAYMENT",
        4,
        -1,
        (2_500, 300_000),
        ("CHASE CREDIT CRD AUTOPAY", "CITI CARD ONLINE PYMT"),
        ("BILL PAYMENT", ""),
    ),
]

EST = dt.timezone(dt.timedelta(hours=-5), "EST")
_END = dt.datetime(2024, 3, 29, 23, 59, 59, tzinfo=EST)
_DAYS = 90


@dataclass(frozen=True, slots=True)
class _Trn:
    type: str
    posted: str
    user: str | None
    amount: str
    fitid: str
    check: str | None
    name: str
    memo: str


def _ofx_datetime(t: dt.datetime, millis: bool = True) -> str:
    return t.strftime("%Y%m%d%H%M%S") + (".000" if millis else "") + "[-5:EST]"


def transactions(n: int, seed: int = 17) -> tuple[list[_Trn], Decimal]:
    """``n`` transactions over 90 days, oldest first, and the sum of their amounts."""
    rng = random.Random(seed)
    weights = [k[1] for k in _KINDS]
    start = _END - dt.timedelta(days=_DAYS)
    span = int((_END - start).total_seconds())
    moments = sorted(rng.randrange(span) for _ in range(n))
    out: list[_Trn] = []
    total = 0
    check = 1041
    for i, offset in enumerate(moments):
        kind, _, sign, (low, high), names, memos = rng.choices(_KINDS, weights)[0]
        cents = sign * rng.randint(low, high)
        total += cents
        posted = start + dt.timedelta(seconds=offset)
        number = None
        if kind == "CHECK":
            check += rng.randint(1, 3)
            number = str(check)
            name = f"CHECK {number}"
        else:
            name = rng.choice(names)
        user = None
        if kind == "POS" and rng.random() < 0.5:  # the card swipe, a day or two before
            user = _ofx_datetime(posted - dt.timedelta(hours=rng.randint(20, 60)))
        out.append(
            _Trn(
                type=kind,
                posted=_ofx_datetime(posted, millis=rng.random() < 0.8),
                user=user,
                amount=f"{Decimal(cents) / 100:.2f}",
                fitid=f"{posted:%Y%m%d}{i:07d}{rng.randrange(10**6):06d}",
                check=number,
                name=name,
                memo=rng.choice(memos),
            )
        )
    return out, Decimal(total) / 100


# A tree to render: (tag, text) is a leaf, (tag, [children]) an aggregate.
_Node = tuple[str, "str | list[_Node]"]


def _statement_tree(trns: list[_Trn], total: Decimal) -> _Node:
    now = _ofx_datetime(_END + dt.timedelta(hours=9))
    ok: list[_Node] = [("CODE", "0"), ("SEVERITY", "INFO")]
    txns: list[_Node] = []
    for t in trns:
        leaves: list[_Node] = [("TRNTYPE", t.type), ("DTPOSTED", t.posted)]
        if t.user:
            leaves.append(("DTUSER", t.user))
        leaves += [("TRNAMT", t.amount), ("FITID", t.fitid)]
        if t.check:
            leaves.append(("CHECKNUM", t.check))
        leaves.append(("NAME", t.name))
        if t.memo:
            leaves.append(("MEMO", t.memo))
        txns.append(("STMTTRN", leaves))
    ledger = f"{Decimal('8421.37') + total:.2f}"
    available = f"{Decimal('8421.37') + total - Decimal('125.00'):.2f}"
    return (
        "OFX",
        [
            (
                "SIGNONMSGSRSV1",
                [
                    (
                        "SONRS",
                        [
                            ("STATUS", list(ok)),
                            ("DTSERVER", now),
                            ("LANGUAGE", "ENG"),
                            ("FI", [("ORG", "OPENAGG BENCH BANK"), ("FID", "10898")]),
                        ],
                    )
                ],
            ),
            (
                "BANKMSGSRSV1",
                [
                    (
                        "STMTTRNRS",
                        [
                            ("TRNUID", "1001"),
                            ("STATUS", list(ok)),
                            (
                                "STMTRS",
                                [
                                    ("CURDEF", "USD"),
                                    (
                                        "BANKACCTFROM",
                                        [
                                            ("BANKID", "123456780"),
                                            ("ACCTID", "000012345678"),
                                            ("ACCTTYPE", "CHECKING"),
                                        ],
                                    ),
                                    (
                                        "BANKTRANLIST",
                                        [
                                            (
                                                "DTSTART",
                                                _ofx_datetime(_END - dt.timedelta(days=_DAYS)),
                                            ),
                                            ("DTEND", _ofx_datetime(_END)),
                                            *txns,
                                        ],
                                    ),
                                    ("LEDGERBAL", [("BALAMT", ledger), ("DTASOF", now)]),
                                    ("AVAILBAL", [("BALAMT", available), ("DTASOF", now)]),
                                ],
                            ),
                        ],
                    )
                ],
            ),
        ],
    )


def _lines(node: _Node, xml: bool, depth: int = 0) -> Iterator[str]:
    tag, body = node
    pad = "  " * depth if xml else ""
    if isinstance(body, str):
        yield f"{pad}<{tag}>{body}</{tag}>" if xml else f"<{tag}>{body}"
        return
    yield f"{pad}<{tag}>"
    for child in body:
        yield from _lines(child, xml, depth + 1)
    yield f"{pad}</{tag}>"


V1_HEADER = (
    "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\n"
    "CHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n"
)
V2_HEADER = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    '<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" '
    'NEWFILEUID="NONE"?>\n'
)


def statement_files(n: int) -> tuple[bytes, bytes, int, Decimal]:
    """(OFX 1.02 SGML, OFX 2.2 XML, transactions, sum of amounts): one statement."""
    trns, total = transactions(n)
    tree = _statement_tree(trns, total)
    v1 = V1_HEADER + "\r\n".join(_lines(tree, xml=False)) + "\r\n"
    v2 = V2_HEADER + "\n".join(_lines(tree, xml=True)) + "\n"
    return v1.encode("ascii"), v2.encode("ascii"), len(trns), total


# --- measuring -----------------------------------------------------------------------


@dataclass
class Timing:
    parser: str  # "openagg", "openagg-pure", "ofxparse", "ofxtools"
    version: str
    times: list[float]  # wall seconds of each run
    cpu: list[float]  # CPU seconds of each run
    count: int
    total: Decimal

    @property
    def best(self) -> float:
        return min(self.times)


@dataclass
class FileResult:
    name: str  # "v1" or "v2"
    label: str
    size: int
    count: int  # as written
    total: Decimal
    timings: dict[str, Timing] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # parser -> why it gave nothing

    def rate(self, parser: str) -> float | None:
        t = self.timings.get(parser)
        return self.count / t.best if t else None

    def ratio(self, peer: str, cpu: bool = False) -> float | None:
        """OpenAgg's transactions/s over the peer's (= the peer's best time / OpenAgg's);
        ``cpu``: of their best CPU times (what a machine shared with others blurs less)."""
        ours, theirs = self.timings.get("openagg"), self.timings.get(peer)
        if ours is None or theirs is None:
            return None
        if cpu:
            return min(theirs.cpu) / min(ours.cpu)
        return theirs.best / ours.best

    def mismatches(self) -> list[str]:
        return [
            f"{t.parser} read {t.count:,} transactions totalling {t.total}, "
            f"the file holds {self.count:,} totalling {self.total}"
            for t in self.timings.values()
            if t.count != self.count or t.total != self.total
        ]


@dataclass
class Result:
    files: list[FileResult]
    peers: bool  # whether the peers could be installed

    @property
    def ok(self) -> bool:
        return not any(f.mismatches() or f.failures for f in self.files)

    def summary(self) -> str:
        parts = []
        for f in self.files:
            rate = f.rate("openagg") or 0.0
            bits = [f"{f.name} {rate:,.0f} txn/s"]
            for peer in ("ofxtools", "ofxparse"):
                r = f.ratio(peer)
                if r is not None:
                    bits.append(f"{r:.1f}x {peer} (target >= {TARGETS[peer]:.0f})")
            parts.append(", ".join(bits))
        if not self.peers:
            parts.append("peers not installed")
        return "; ".join(parts) + f"; totals {'OK' if self.ok else 'MISMATCH'}"


def time_openagg(data: bytes, repeat: int, pure: bool = False) -> Timing:
    """Best of ``repeat`` in this process (``pure``: without the C hot path). The heap
    this process already holds (SQLAlchemy, the app) is frozen first, as a peer's small
    process has none: a collection during a parse then walks only what the parse made."""
    native = accel.native
    if pure:
        accel.native = None
    times: list[float] = []
    cpu: list[float] = []
    doc = None
    gc.collect()
    gc.freeze()
    try:
        for _ in range(repeat):
            doc = None  # the last run's objects are freed outside the timing
            gc.collect()
            started, cpu_started = time.perf_counter(), time.process_time()
            doc = parse(data)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    finally:
        gc.unfreeze()
        accel.native = native
    assert doc is not None
    amounts = [t.amount for s in doc.statements for t in s.transactions]
    version = metadata.version("openagg")
    if not pure:
        version += " (C hot path)" if native else " (pure Python: the C path is not built)"
    name = "openagg-pure" if pure else "openagg"
    return Timing(name, version, times, cpu, len(amounts), sum(amounts, Decimal(0)))


def peer_python() -> Path | None:
    """The peers' venv's python, made and filled on first use; None (said why) when
    the peers cannot be installed."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text().split() == list(PEER_PINS):
        return python
    t = step(f"installing {', '.join(PEER_PINS)} into {PEERS_VENV}")
    base = getattr(sys, "_base_executable", sys.executable)
    failed = None
    for args in (
        [base, "-m", "venv", "--clear", str(PEERS_VENV)],
        [
            str(python),
            *("-m", "pip", "install", "-q", "--disable-pip-version-check"),
            *("--timeout", "20", "--retries", "1", *PEER_PINS),
        ],
    ):
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            failed = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
            break
    done(t)
    if failed:
        print(f"  !! the peers could not be installed: {failed[-1]}", flush=True)
        return None
    stamp.write_text("\n".join(PEER_PINS) + "\n")
    return python


def time_peer(python: Path, peer: str, path: Path, repeat: int) -> Timing:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run(
        [str(python), "-I", str(PEER_SCRIPT), peer, str(path), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {out.returncode}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return Timing(peer, r["version"], r["times"], r["cpu"], r["count"], Decimal(r["total"]))


def profile(data: bytes, top: int = 10) -> None:
    """cProfile of ``openagg.ofx.parse`` on ``data``: the top functions by own time."""
    prof = cProfile.Profile()
    prof.enable()
    parse(data)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    calls = next((line.strip() for line in text.splitlines() if "function calls" in line), "")
    table = text[text.find("   ncalls") :].rstrip().splitlines()
    print("\n".join("  " + line for line in [f"   {calls}", *table]), flush=True)


# --- the run -------------------------------------------------------------------------


def _row(f: FileResult, t: Timing) -> tuple[str, str]:
    rate = f.rate(t.parser) or 0.0
    flag = "OK" if (t.count, t.total) == (f.count, f.total) else "!! MISMATCH"
    return (
        f"  {t.parser} {t.version}",
        f"{t.best:8.4f} s (best of {len(t.times)}; CPU {min(t.cpu):.4f} s)  "
        f"{rate:10,.0f} txn/s   "
        f"count {t.count:,}  total {t.total}  {flag}",
    )


def run(
    transactions: int = 10_000,
    repeat: int = 10,
    peer_repeat: int = 3,
    *,
    peers: bool = True,
    profile_v1: bool = False,
    keep: bool = False,
) -> Result:
    header(
        f"OFX parse: {transactions:,}-transaction statements, OFX 1.02 (SGML) and 2.2 "
        f"(XML); openagg best of {repeat}, peers best of {peer_repeat}"
    )
    t = step("writing the statements")
    v1, v2, count, total = statement_files(transactions)
    done(t)
    python = peer_python() if peers else None
    files = [
        FileResult("v1", "OFX 1.02 SGML, leaves unclosed", len(v1), count, total),
        FileResult("v2", "OFX 2.2 XML", len(v2), count, total),
    ]
    with temp_dir("ofx", keep) as tmp:
        for f, data in zip(files, (v1, v2), strict=True):
            path = tmp / f"statement-{f.name}.ofx"
            path.write_bytes(data)
            for pure in (False, True) if accel.native else (False,):
                name = "openagg-pure" if pure else "openagg"
                t = step(f"{f.name}: {name}")
                try:
                    f.timings[name] = time_openagg(data, repeat, pure)
                except Exception as e:  # a benchmark reports, it does not fail
                    f.failures[name] = f"{type(e).__name__}: {e}"
                done(t)
            for peer in PEERS if python else ():
                assert python is not None
                t = step(f"{f.name}: {peer}")
                try:
                    f.timings[peer] = time_peer(python, peer, path, peer_repeat)
                except Exception as e:
                    f.failures[peer] = f"{type(e).__name__}: {e}"
                done(t)

    rows: list[tuple[str, object]] = []
    for f in files:
        rows.append(
            (
                f"{f.name} ({f.label})",
                f"{f.size:,} bytes; written: {f.count:,} transactions totalling {f.total}",
            )
        )
        rows += [_row(f, t) for t in f.timings.values()]
        rows += [(f"  {p}", f"!! FAILED: {why}") for p, why in f.failures.items()]
        ratios = [
            f"openagg/{peer} {r:.1f}x (CPU {f.ratio(peer, cpu=True):.1f}x; "
            f"target >= {TARGETS[peer]:.0f}x)"
            for peer in ("ofxtools", "ofxparse")
            if (r := f.ratio(peer)) is not None
        ]
        if ratios:
            rows.append(("  ratio", "   ".join(ratios)))
    if not python:
        rows.append(("peers", "not measured" if not peers else "!! not installed"))
    show(rows)
    result = Result(files, python is not None)
    for f in files:
        for m in f.mismatches():
            print(f"  !! MISMATCH in {f.name}: {m}", flush=True)
    if profile_v1:
        print("  cProfile of openagg.ofx.parse on the v1 file (top 10 by own time):")
        profile(v1)
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--transactions", type=int, default=10_000, help="per statement")
    p.add_argument("--repeat", type=int, default=10, help="openagg: best of this many runs")
    p.add_argument("--peer-repeat", type=int, default=3, help="the peers: best of this many")
    p.add_argument("--no-peers", action="store_true", help="measure OpenAgg alone")
    p.add_argument("--profile", action="store_true", help="cProfile openagg on the v1 file")
    p.add_argument("--keep", action="store_true", help="keep the statement files")
    a = p.parse_args(argv)
    run(
        a.transactions,
        a.repeat,
        a.peer_repeat,
        peers=not a.no_peers,
        profile_v1=a.profile,
        keep=a.keep,
    )


if __name__ == "__main__":
    main()
