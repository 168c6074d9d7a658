"""CSV statement exports, which follow no standard.

Detection runs once per file, then every row is read with what it found: the
encoding (`values.decode_text`), the delimiter (the one giving the most rows the
same number of fields), the header row (the first naming a date and an amount
column, in English, German, French, Spanish or Dutch; else columns are told by
their content), the date format (the candidate that reads every row), the decimal
separator (what the amounts show) and the sign (one signed amount column, an
amount with a D/C column, or debit and credit columns). Lines before the header
and lines without a date after the data (totals) are not transactions; a line
with something like a date that is none, or a date and no amount, is an error."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal

from openagg.statements.model import (
    StatementAccount,
    StatementEntry,
    StatementFile,
    UnreadableFile,
)
from openagg.statements.values import (
    BadValue,
    decode_text,
    guess_decimal_separator,
    parse_money,
)


@dataclass
class CsvOptions:
    """What to use instead of detection. Columns are a header name or a 1-based
    column number, as text."""

    date_column: str | None = None
    description_column: str | None = None
    amount_column: str | None = None
    debit_column: str | None = None
    credit_column: str | None = None
    date_format: str | None = None  # strftime codes, e.g. "%d.%m.%Y"
    decimal_separator: str | None = None  # "." or ","
    encoding: str | None = None
    skip_rows: int = 0  # lines before the header (or the data)
    account_id: str = ""


DELIMITERS = (",", ";", "\t", "|")
ISO = "ISO"  # 2026-01-31, with or without a time after it
DATE_FORMATS = (
    ISO,
    "%d.%m.%Y",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%d.%m.%y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d-%m-%y",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%d. %B %Y",
    "%Y%m%d",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
)
_DATEISH = re.compile(
    r"\d{1,4}[./\- ]?(?:\d{1,2}|[A-Za-z]{3,9})[./\- ,]|\d{8}\s|[A-Za-z]{3,9}\.? \d{1,2},? \d"
)

# Header words by role, after `_norm` (lower case, no accents, words split by spaces).
# A whole cell matches first; then any of its words; `_SUFFIXES` for German compounds.
_ROLE_WORDS: dict[str, set[str]] = {
    "balance": {"balance", "bal", "saldo", "solde", "kontostand", "running balance"},
    "date": {
        "date", "datum", "fecha", "data", "buchungstag", "buchung", "valuta", "wertstellung",
        "boekdatum", "posted", "fecha operacion", "date operation", "dateop", "transactiedatum",
    },
    "indicator": {
        "d c", "c d", "dr cr", "cr dr", "s h", "soll haben", "af bij", "af of bij",
        "debit credit", "credit debit", "cd", "dc", "credit debit indicator",
        "debit credit indicator",
    },
    "debit": {
        "debit", "debits", "soll", "withdrawal", "withdrawals", "money out", "paid out", "debe",
        "cargo", "cargos", "debito", "afschrijving", "af", "ausgang", "ausgaben", "belastung",
    },
    "credit": {
        "credit", "credits", "haben", "deposit", "deposits", "money in", "paid in", "haber",
        "abono", "abonos", "credito", "bijschrijving", "bij", "eingang", "einnahmen", "gutschrift",
    },
    "amount": {
        "amount", "betrag", "montant", "importe", "bedrag", "umsatz", "summe", "importo", "valor",
        "transaction amount", "value",
    },
    "currency": {"currency", "wahrung", "waehrung", "devise", "moneda", "munt", "ccy"},
    "category": {"category", "kategorie", "categorie", "categoria"},
    "check": {"check", "check number", "cheque", "cheque number", "check or slip", "chq"},
    "description": {
        "description", "desc", "verwendungszweck", "libelle", "concepto", "details",
        "narrative", "text", "omschrijving", "particulars", "beschreibung",
        "descripcion", "transaction details", "transaction description", "purpose", "motif",
        "communication", "wording", "detail", "mededelingen", "naam omschrijving",
    },
    "payee": {
        "payee", "name", "beneficiary", "empfanger", "empfaenger", "auftraggeber",
        "begunstigter", "beguenstigter", "zahlungspflichtiger", "naam", "merchant",
        "counterparty", "nom", "beneficiario", "tegenpartij", "payer", "ordenante",
    },
    "memo": {
        "memo", "notes", "note", "reference", "referenz", "mitteilung", "remarks", "buchungstext",
    },
    # only whole names: `Kontonummer/IBAN` in German exports is the other party's
    "account": {"account", "account number", "account no", "auftragskonto", "eigenes konto"},
}  # fmt: skip
_SUFFIXES = {"datum": "date", "betrag": "amount", "saldo": "balance", "zweck": "description"}
_VALUE_DATE = {"valuta", "value", "wertstellung", "valor", "valeur", "valutadatum"}
_MINUS = {"D", "DR", "DEBIT", "DBIT", "S", "SOLL", "AF", "-"}
_PLUS = {"C", "CR", "CREDIT", "CRDT", "H", "HABEN", "BIJ", "+"}
_ACCOUNT_LABEL = re.compile(
    r"(?:account(?: number| no\.?)?|konto(?:nummer)?|iban|compte|cuenta|rekening(?:nummer)?)"
    r"\s*[:#]?\s*(.*)",
    re.I,
)

Row = tuple[int, list[str]]  # (line where the row starts, its cells)


@dataclass
class _Layout:
    header: int | None  # index of the header row in the rows, None without one
    columns: dict[str, int]  # role -> column index
    names: list[str]  # column names for messages
    date_format: str
    decimal: str


def read_csv(data: bytes, options: CsvOptions | None = None) -> StatementFile:
    opts = options or CsvOptions()
    try:
        text = decode_text(data, opts.encoding)
    except BadValue as exc:
        raise UnreadableFile(str(exc)) from None
    first_line = 1
    for _ in range(max(opts.skip_rows, 0)):
        text = text.partition("\n")[2]
        first_line += 1
    rows = _rows(text, _delimiter(text), first_line)
    if not rows:
        raise UnreadableFile("the file has no rows")
    out = StatementFile(format="CSV")
    layout = _layout(rows, opts, out.warnings)
    if opts.account_id:
        layout.columns.pop("account", None)
    account_id = opts.account_id or _preamble_account(rows, layout.header)
    _read_rows(rows, layout, account_id, out)
    if not out.entries:
        raise UnreadableFile("no transaction rows (no line with a date and an amount)")
    return out


def _rows(text: str, delimiter: str, first_line: int) -> list[Row]:
    """Non-blank rows with stripped cells, quoted newlines and delimiters kept."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[Row] = []
    start = first_line
    try:
        for cells in reader:
            if any(cells):
                rows.append((start, [c.strip() for c in cells]))
            start = first_line + reader.line_num
    except csv.Error as exc:
        raise UnreadableFile(f"the CSV cannot be split into fields ({exc})", start) from None
    return rows


def _delimiter(text: str) -> str:
    """The delimiter that gives the most rows the same number (>1) of fields; on a tie
    the one giving more fields (a `;` file with comma decimals splits on `,` too)."""
    sample = text[:65536]
    if len(text) > len(sample):
        sample = sample[: sample.rfind("\n") + 1] or sample
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
            counts = Counter(len(c) for c in itertools.islice(reader, 60) if any(c))
        except csv.Error:
            continue
        width, rows = max(counts.items(), key=lambda kv: (kv[1], kv[0]), default=(0, 0))
        score = (rows, width) if width > 1 else (0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.split(r"[^a-z0-9]+", text)).strip()


def _header_roles(cells: list[str]) -> dict[str, list[int]]:
    """Column indexes by the role their header words give, best first: a whole
    name before a word of it before a compound (`Betrag` before `Ursprungsbetrag`),
    value dates after booking dates."""
    found: dict[str, list[tuple[int, int]]] = {}
    for i, cell in enumerate(cells):
        name = _norm(cell)
        if not name or len(name) > 40:
            continue
        words = name.split()
        strength, role = 0, next((r for r, ws in _ROLE_WORDS.items() if name in ws), None)
        if role is None:
            strength = 1
            role = next(
                (r for r, ws in _ROLE_WORDS.items() if ws & set(words) and r != "account"), None
            )
        if role is None:
            strength = 2
            role = next(
                (r for s, r in _SUFFIXES.items() if any(w.endswith(s) for w in words)), None
            )
        if role == "date" and any(w in _VALUE_DATE or w.startswith("valuta") for w in words):
            strength = 3
        if role:
            found.setdefault(role, []).append((strength, i))
    return {role: [i for _, i in sorted(found[role])] for role in found}


def _layout(rows: list[Row], opts: CsvOptions, warnings: list[str]) -> _Layout:
    header = _find_header(rows, opts)
    roles: dict[str, list[int]]
    if header is not None:
        names = rows[header][1]
        roles = _header_roles(names)
        columns = {role: indexes[0] for role, indexes in roles.items()}
        data = [cells for _, cells in rows[header + 1 : header + 501]]
    else:
        width = Counter(len(c) for _, c in rows).most_common(1)[0][0]
        names = [f"column {i + 1}" for i in range(width)]
        roles = {}
        data = [cells for _, cells in rows if len(cells) == width][:500]
        columns = _columns_by_content(data, width)
    _apply_options(columns, names, opts)
    if "date" not in columns:
        raise UnreadableFile("cannot tell which column holds the date: pass date_column")
    if not {"amount", "debit", "credit"} & columns.keys():
        raise UnreadableFile(
            "cannot tell which column holds the amount: "
            "pass amount_column, or debit_column and credit_column"
        )
    if "amount" in columns:
        columns.pop("debit", None)
        columns.pop("credit", None)
        _find_indicator(columns, data, roles)
    if "description" not in columns:
        text_column = columns.get("payee", columns.get("memo"))
        if text_column is None:
            text_column = _text_column(data, set(columns.values()))
        if text_column is None:
            raise UnreadableFile(
                "cannot tell which column describes the transaction: pass description_column"
            )
        columns["description"] = text_column
    if header is None:
        described = ", ".join(f"{role}: column {i + 1}" for role, i in sorted(columns.items()))
        warnings.append(f"no header row; columns told by their content ({described})")
    decimal = opts.decimal_separator or _guess_decimal(data, columns)
    date_format = opts.date_format or _date_format(
        [c[columns["date"]] for c in data if len(c) > columns["date"]],
        decimal,
        warnings,
    )
    return _Layout(header, columns, names, date_format, decimal)


def _find_header(rows: list[Row], opts: CsvOptions) -> int | None:
    """The first row naming the columns the options name, or a date and an amount."""
    named = [
        _norm(c)
        for c in (
            opts.date_column,
            opts.description_column,
            opts.amount_column,
            opts.debit_column,
            opts.credit_column,
        )
        if c and not c.strip().isdigit()
    ]
    for index, (_, cells) in enumerate(rows[:50]):
        if named:
            if set(named) <= {_norm(c) for c in cells}:
                return index
            continue
        roles = _header_roles(cells)
        if "date" in roles and {"amount", "debit", "credit"} & roles.keys():
            return index
    if named:
        raise UnreadableFile(f"no header row names the columns {', '.join(named)}")
    return None


def _apply_options(columns: dict[str, int], names: list[str], opts: CsvOptions) -> None:
    normalised = [_norm(n) for n in names]
    given = {
        "date": opts.date_column,
        "description": opts.description_column,
        "amount": opts.amount_column,
        "debit": opts.debit_column,
        "credit": opts.credit_column,
    }
    if opts.amount_column:
        columns.pop("debit", None)
        columns.pop("credit", None)
    elif opts.debit_column or opts.credit_column:
        columns.pop("amount", None)
    for role, ref in given.items():
        if not ref:
            continue
        ref = ref.strip()
        if ref.isdigit():
            index = int(ref) - 1
            if not 0 <= index < len(names):
                raise UnreadableFile(f"{role}_column {ref}: the file has {len(names)} columns")
        elif _norm(ref) in normalised:
            index = normalised.index(_norm(ref))
        else:
            raise UnreadableFile(f"{role}_column {ref!r}: no such column")
        for other, i in list(columns.items()):
            if i == index:
                del columns[other]
        columns[role] = index


def _columns_by_content(data: list[list[str]], width: int) -> dict[str, int]:
    """Without a header: the first column of dates, then the numeric ones (one is the
    amount; two are debit/credit when each row fills one, else amount and running
    balance when the second follows from the first)."""
    columns: dict[str, int] = {}
    numeric: list[int] = []
    for i in range(width):
        values = [c[i] for c in data if c[i]]
        if not values:
            continue
        if "date" not in columns and _date_formats(values[:200]):
            columns["date"] = i
        elif all(_is_money(v) for v in values):
            numeric.append(i)
    if len(numeric) == 1:
        columns["amount"] = numeric[0]
    elif len(numeric) == 2:
        a, b = numeric
        if all(bool(c[a]) != bool(c[b]) for c in data):
            columns["debit"], columns["credit"] = a, b
        elif _is_running_balance(data, a, b):
            columns["amount"], columns["balance"] = a, b
        elif _is_running_balance(data, b, a):
            columns["amount"], columns["balance"] = b, a
    return columns


def _is_money(text: str) -> bool:
    try:
        parse_money(text)
    except BadValue:
        return False
    return True


def _is_running_balance(data: list[list[str]], amount: int, balance: int) -> bool:
    """Whether each row's balance is the one before plus (or, newest first, minus) its amount."""
    try:
        pairs = [(parse_money(c[amount]), parse_money(c[balance])) for c in data]
    except BadValue:
        return False
    if len(pairs) < 2:
        return False
    forward = all(p[1] + a == b for p, (a, b) in itertools.pairwise(pairs))
    backward = all(b + p[0] == p[1] for p, (_, b) in itertools.pairwise(pairs))
    return forward or backward


def _find_indicator(
    columns: dict[str, int], data: list[list[str]], roles: dict[str, list[int]]
) -> None:
    """A column of D/C (S/H, DR/CR, Debit/Credit) marks, named so or not (a text
    role it took from its header name passes to the next column named for it)."""
    taken = {columns[r] for r in ("date", "amount", "balance") if r in columns}
    candidates = [columns["indicator"]] if "indicator" in columns else []
    candidates += [i for i in range(max((len(c) for c in data), default=0)) if i not in taken]
    for i in candidates:
        values = {c[i].upper() for c in data if len(c) > i and c[i]}
        if values and values <= _MINUS | _PLUS and values & _MINUS and values - {"-", "+"}:
            columns["indicator"] = i
            for role in ("description", "payee", "memo", "category"):
                if columns.get(role) == i:
                    del columns[role]
                    others = [j for j in roles.get(role, []) if j != i]
                    if others:
                        columns[role] = others[0]
            return
    columns.pop("indicator", None)


def _text_column(data: list[list[str]], taken: set[int]) -> int | None:
    """The free column with the longest texts that are not numbers."""
    best, best_length = None, 0.0
    for i in range(max((len(c) for c in data), default=0)):
        values = [c[i] for c in data if len(c) > i and c[i]]
        if i in taken or not values or all(_is_money(v) for v in values[:50]):
            continue
        length = sum(map(len, values)) / len(values)
        if length > best_length:
            best, best_length = i, length
    return best


def _guess_decimal(data: list[list[str]], columns: dict[str, int]) -> str:
    amounts = [columns[r] for r in ("amount", "debit", "credit", "balance") if r in columns]
    return (
        guess_decimal_separator(c[i] for c in data for i in amounts if len(c) > i and c[i]) or "."
    )


def _parse_date(text: str, date_format: str) -> dt.date:
    if date_format == ISO:
        if len(text) > 10 and text[10] not in "T ":
            raise ValueError(text)
        return dt.date.fromisoformat(text[:10])
    return dt.datetime.strptime(text, date_format).date()


def _date_formats(values: list[str]) -> list[str]:
    """The candidate formats that read every value."""
    fits = []
    for candidate in DATE_FORMATS:
        try:
            for value in values:
                _parse_date(value, candidate)
        except ValueError:
            continue
        fits.append(candidate)
    return fits


def _date_format(values: list[str], decimal: str, warnings: list[str]) -> str:
    """The format that reads every date-like value of the sample; when several read
    them differently (`01/02/2026`), the one putting the rows in order, else day
    first with comma decimals and month first with dot decimals, with a warning."""
    values = [v for v in values if _DATEISH.match(v + " ")]
    distinct = list(dict.fromkeys(values))
    fits = _date_formats(distinct)
    if not fits:
        # The format reading the most: the rows it cannot read are errors named by line.
        best = max(DATE_FORMATS, key=lambda f: sum(_reads(v, f) for v in distinct))
        if not any(_reads(v, best) for v in distinct):
            shown = ", ".join(repr(v) for v in distinct[:3])
            raise UnreadableFile(f"the dates ({shown}) are in no known format: pass date_format")
        return best
    readings = {f: [_parse_date(v, f) for v in values] for f in fits}
    distinct_readings = {tuple(r): f for f, r in reversed(readings.items())}
    if len(distinct_readings) == 1:
        return fits[0]
    ordered = [f for f in fits if _monotonic(readings[f])]
    if len(ordered) == 1:
        choice, why = ordered[0], "the only one that keeps the rows in date order"
    else:
        day_first = decimal == ","
        choice = next((f for f in fits if _is_day_first(f) == day_first), fits[0])
        why = "decimal commas" if day_first else "decimal points"
    warnings.append(
        f"the dates can be read as {' or '.join(fits)}; read as {choice} ({why}): "
        "pass date_format if that is wrong"
    )
    return choice


def _reads(value: str, date_format: str) -> bool:
    try:
        _parse_date(value, date_format)
    except ValueError:
        return False
    return True


def _monotonic(dates: list[dt.date]) -> bool:
    pairs = list(itertools.pairwise(dates))
    return all(a <= b for a, b in pairs) or all(a >= b for a, b in pairs)


def _is_day_first(date_format: str) -> bool:
    return (
        "%d" in date_format
        and "%m" in date_format
        and date_format.index("%d") < date_format.index("%m")
    )


def _preamble_account(rows: list[Row], header: int | None) -> str:
    """An account number a preamble line names (`Account: 12345678`, `Konto;DE12...`)."""
    for _, cells in rows[: header or 0]:
        for i, cell in enumerate(cells):
            m = _ACCOUNT_LABEL.fullmatch(cell)
            if m:
                value = m[1] or next((c for c in cells[i + 1 :] if c), "")
                if any(ch.isdigit() for ch in value):
                    return value.strip()
    return ""


def _read_rows(rows: list[Row], layout: _Layout, default_account: str, out: StatementFile) -> None:
    col = layout.columns
    width = max(col.values()) + 1
    parse_date = _cached_date_parser(layout.date_format)
    money = _money_parser(layout.decimal, layout.names)
    date_i, desc_i = col["date"], col["description"]
    amount_i, debit_i, credit_i = col.get("amount"), col.get("debit"), col.get("credit")
    sign_i, balance_i = col.get("indicator"), col.get("balance")
    account_i = col.get("account")
    payee_i, memo_i, category_i, check_i = (
        col.get(r) for r in ("payee", "memo", "category", "check")
    )
    currencies: set[str] = set()
    balances: list[tuple[dt.date, Decimal]] = []
    skipped: list[int] = []
    start = 0 if layout.header is None else layout.header + 1
    for line, cells in rows[start:]:
        short = len(cells) < width
        if short:
            cells = cells + [""] * (width - len(cells))
        date_text = cells[date_i]
        try:
            date = parse_date(date_text)
        except ValueError:
            # Something like a date in a full row is a transaction we cannot read; a
            # short row (a period in a preamble, a note) is no transaction at all.
            if _DATEISH.match(date_text + " ") and not short:
                raise UnreadableFile(
                    f"{date_text!r} is not a date in the file's format ({layout.date_format})",
                    line,
                ) from None
            if out.entries:
                skipped.append(line)
            continue
        balance = (
            money(cells[balance_i], balance_i, line)
            if balance_i is not None and cells[balance_i]
            else None
        )
        if amount_i is not None:
            if not cells[amount_i]:
                if balance is not None:
                    skipped.append(line)  # a balance line
                    continue
                raise UnreadableFile(f"no amount in column {layout.names[amount_i]!r}", line)
            amount = money(cells[amount_i], amount_i, line)
            if sign_i is not None:
                mark = cells[sign_i].upper()
                if mark in _MINUS:
                    amount = -abs(amount)
                elif mark in _PLUS:
                    amount = abs(amount)
        else:
            debit = cells[debit_i] if debit_i is not None else ""
            credit = cells[credit_i] if credit_i is not None else ""
            if not debit and not credit:
                if balance is not None:
                    skipped.append(line)
                    continue
                raise UnreadableFile("no amount in the debit or the credit column", line)
            amount = Decimal(0)
            if credit:
                amount += abs(money(credit, credit_i, line))
            if debit:
                amount -= abs(money(debit, debit_i, line))
        if balance is not None:
            balances.append((date, balance))
        if "currency" in col and cells[col["currency"]]:
            currencies.add(cells[col["currency"]].upper())
        payee = _one_line(cells[payee_i]) if payee_i is not None else ""
        memo = _one_line(cells[memo_i]) if memo_i is not None else ""
        out.entries.append(
            StatementEntry(
                account_id=(cells[account_i] or default_account)
                if account_i is not None
                else default_account,
                date=date,
                amount=amount,
                description=_one_line(cells[desc_i]) or payee or memo,
                payee=payee or None,
                memo=memo or None,
                check_number=(cells[check_i] or None) if check_i is not None else None,
                category=(cells[category_i] or None) if category_i is not None else None,
                line=line,
            )
        )
    if skipped:
        out.warnings.append(
            f"{len(skipped)} lines without a transaction skipped (totals, balances, notes): "
            + ", ".join(f"line {n}" for n in skipped[:5])
            + (" ..." if len(skipped) > 5 else "")
        )
    ids = dict.fromkeys(e.account_id for e in out.entries) or {default_account: None}
    out.accounts = [StatementAccount(i) for i in ids]
    if len(out.accounts) > 1:
        return  # an export of several accounts: no per-account currency or balance
    account = out.accounts[0]
    if len(currencies) == 1:
        account.currency = currencies.pop()
    if balances:
        # The latest row's running balance: the last row, or the first when newest first.
        newest_first = balances[0][0] > balances[-1][0]
        account.balance_date, account.balance = balances[0] if newest_first else balances[-1]


def _one_line(text: str) -> str:
    """Quoted newlines and runs of spaces as one space (most cells have none)."""
    return " ".join(text.split()) if "\n" in text or "  " in text or "\t" in text else text


def _cached_date_parser(date_format: str) -> Callable[[str], dt.date]:
    """Dates repeat down a statement: each distinct text is parsed once (a numeric
    format such as ``%m/%d/%Y`` by a regular expression, ten years of days cost
    ``strptime`` a tenth of a 100,000-row file's reading)."""
    cache: dict[str, dt.date] = {}
    numeric = _numeric_date(date_format)

    def parse(text: str) -> dt.date:
        date = cache.get(text)
        if date is None:
            found = numeric.fullmatch(text) if numeric else None
            if found:
                with suppress(ValueError):  # no such day: strptime says why below
                    date = dt.date(int(found["Y"]), int(found["m"]), int(found["d"]))
            if date is None:
                date = _parse_date(text, date_format)
            cache[text] = date
        return date

    return parse


_NUMERIC_FIELDS = {"%d": "(?P<d>[0-9]{1,2})", "%m": "(?P<m>[0-9]{1,2})", "%Y": "(?P<Y>[0-9]{4})"}


def _numeric_date(date_format: str) -> re.Pattern[str] | None:
    """A pattern reading what ``strptime`` reads with ``date_format`` when that is a
    day, a month and a four-digit year between separators (`.`, `/`, `-`); None for
    any other format. (A text it matches that is no date goes to ``strptime``.)"""
    parts = re.split(r"(%[dmY])", date_format)
    fields, between = parts[1::2], parts[2:-1:2]
    if sorted(fields) != ["%Y", "%d", "%m"] or parts[0] or parts[-1]:
        return None
    if any(len(sep) != 1 or sep not in "./-" for sep in between):
        return None
    return re.compile(
        "".join(_NUMERIC_FIELDS[p] if i % 2 else re.escape(p) for i, p in enumerate(parts))
    )


def _money_parser(decimal: str, names: list[str]) -> Callable[[str, int | None, int], Decimal]:
    def money(text: str, column: int | None, line: int) -> Decimal:
        try:
            return parse_money(text, decimal)
        except BadValue:
            column = column or 0
            name = names[column] if column < len(names) else f"column {column + 1}"
            raise UnreadableFile(f"{text!r} in column {name!r} is not an amount", line) from None

    return money
