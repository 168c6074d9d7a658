/* The OFX codec's hot path in C: runs of plain STMTTRN aggregates.
 *
 * `reader.py` and `parsing.py` hold the reference: `_RUN_BLOCK` says what a plain
 * STMTTRN is and `_Parser.run` how one becomes a `Transaction`. This module does the
 * same two steps without a Python object per leaf:
 *
 *   find_runs(text, start)  -> [(p, q, spans, count, tags)] or None
 *   read_run(text, spans, count, zone_tz, raw_when) -> [Transaction | None]
 *
 * `spans` holds, per transaction, the (start, end) of each capture of `_RUN_BLOCK`
 * (SPANS_PER_ROW pairs of int32); `tags`, how many tags the run holds (its `<`s).
 * None in `read_run`'s list: a transaction the general reading must see to (what
 * `_Parser.run` sends to `transaction`).
 *
 * A text with characters above U+00FF is scanned through a one-byte shadow of itself:
 * such a character is `?`, or \x1c when it is a space (one that the expression's
 * `[ \t]` does not take), so every index stays a character's. The leaves' texts come
 * from the text itself. The tests compare both paths. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

enum { TEXT, DATE, AMOUNT, SKIP };

typedef struct {
    const char *tag;
    int kind;
} Field;

/* reader._FIELDS (a test checks they agree). */
static const Field FIELDS[] = {
    {"TRNTYPE", TEXT},       {"DTPOSTED", DATE}, {"DTUSER", DATE},   {"DTAVAIL", SKIP},
    {"TRNAMT", AMOUNT},      {"FITID", TEXT},    {"CORRECTFITID", TEXT},
    {"CORRECTACTION", TEXT}, {"SRVRTID", SKIP},  {"CHECKNUM", TEXT}, {"REFNUM", TEXT},
    {"SIC", TEXT},           {"PAYEEID", SKIP},  {"NAME", TEXT},     {"EXTDNAME", SKIP},
    {"MEMO", TEXT},          {"INV401KSOURCE", SKIP},
};
#define N_FIELDS ((int)(sizeof(FIELDS) / sizeof(FIELDS[0])))

/* The captures, in `_RUN_BLOCK`'s group order (without its last, the lookahead). */
enum {
    S_TRNTYPE, S_POSTED_DAY, S_POSTED_TIME, S_POSTED_ZONE, S_POSTED_OTHER,
    S_USER_DAY, S_USER_TIME, S_USER_ZONE, S_USER_OTHER, S_TRNAMT, S_FITID,
    S_CORRECTFITID, S_CORRECTACTION, S_CHECKNUM, S_REFNUM, S_SIC, S_NAME, S_MEMO,
    SPANS_PER_ROW
};

typedef int32_t Span[2];

/* What `configure` is given once: the classes `read_run` builds and the unescaper. */
static PyObject *Transaction, *Decimal, *InvalidOperation, *Unescape;
static Py_ssize_t slot_offsets[13]; /* Transaction's fields, in order */

/* ---- find_runs --------------------------------------------------------------- */

static inline int is_space(Py_UCS1 c) { return Py_UNICODE_ISSPACE(c); }

typedef struct {
    const Py_UCS1 *s; /* the text, or its shadow: one byte a character */
    Py_ssize_t n;
    const char *data; /* the text's own characters, `kind` bytes each */
    int kind;
} Text;

/* Characters [from, to) of `text` one byte each (above U+00FF: `?`, or \x1c when it
 * is a space), in a buffer of `to` bytes indexed as the text is; NULL on no memory. */
static Py_UCS1 *shadow(PyObject *text, Py_ssize_t from, Py_ssize_t to) {
    Py_UCS1 *out = PyMem_Malloc(to > 0 ? (size_t)to : 1);
    if (out == NULL) return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = from; i < to; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        out[i] = c < 256 ? (Py_UCS1)c : Py_UNICODE_ISSPACE(c) ? 0x1c : '?';
    }
    return out;
}

/* `text` to scan from `from` (its shadow when it is not one byte a character). */
static int open_text(Text *t, PyObject *text, Py_ssize_t from, Py_ssize_t to, Py_UCS1 **owned) {
    t->n = PyUnicode_GET_LENGTH(text);
    t->kind = PyUnicode_KIND(text);
    t->data = PyUnicode_DATA(text);
    *owned = NULL;
    if (t->kind == PyUnicode_1BYTE_KIND) {
        t->s = PyUnicode_1BYTE_DATA(text);
        return 0;
    }
    if ((*owned = shadow(text, from, to)) == NULL) return PyErr_NoMemory(), -1;
    t->s = *owned;
    return 0;
}

static inline Py_ssize_t skip_space(const Text *t, Py_ssize_t i) {
    while (i < t->n && is_space(t->s[i])) i++;
    return i;
}

static inline int starts_with(const Text *t, Py_ssize_t i, const char *lit, Py_ssize_t len) {
    return i + len <= t->n && memcmp(t->s + i, lit, (size_t)len) == 0;
}

/* `<TAG>` at i: the index after it, or -1. */
static inline Py_ssize_t opener(const Text *t, Py_ssize_t i, const char *tag, Py_ssize_t len) {
    if (i + len + 2 > t->n || t->s[i] != '<' || t->s[i + len + 1] != '>') return -1;
    return memcmp(t->s + i + 1, tag, (size_t)len) == 0 ? i + len + 2 : -1;
}

static inline Py_ssize_t until_lt(const Text *t, Py_ssize_t i) {
    const void *p = memchr(t->s + i, '<', (size_t)(t->n - i));
    return p ? (const Py_UCS1 *)p - t->s : t->n;
}

/* The next `<STMTTRN>` from i, or -1 (memchr and memcmp: memmem is not everywhere). */
static Py_ssize_t find_opener(const Text *t, Py_ssize_t i) {
    while (i < t->n) {
        const Py_UCS1 *lt = memchr(t->s + i, '<', (size_t)(t->n - i));
        if (lt == NULL) return -1;
        i = lt - t->s;
        if (starts_with(t, i, "<STMTTRN>", 9)) return i;
        i++;
    }
    return -1;
}

static inline int is_digit(Py_UCS1 c) { return c >= '0' && c <= '9'; }

static void set(Span *row, int k, Py_ssize_t a, Py_ssize_t b) {
    row[k][0] = (int32_t)a;
    row[k][1] = (int32_t)b;
}

/* The split date form at i (`_CAPTURE["date"]`'s first alternative): its end (a `<`)
 * and the day, time and zone, or -1. */
static Py_ssize_t split_date(const Text *t, Py_ssize_t i, Span *row, int first) {
    const Py_UCS1 *s = t->s;
    Py_ssize_t n = t->n;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i + 14 > n) return -1;
    for (Py_ssize_t k = 0; k < 14; k++)
        if (!is_digit(s[i + k])) return -1;
    Py_ssize_t day = i, j = i + 14;
    if (j + 4 <= n && s[j] == '.' && is_digit(s[j + 1]) && is_digit(s[j + 2]) && is_digit(s[j + 3]))
        j += 4;
    Py_ssize_t zone = j, zone_end = j;
    if (j < n && s[j] == '[') {
        Py_ssize_t k = j + 1;
        while (k < n && s[k] != ']' && s[k] != '<' && s[k] != '&' && !is_space(s[k])) k++;
        if (k < n && s[k] == ']') zone_end = j = k + 1;
    }
    j = skip_space(t, j);
    if (j >= n || s[j] != '<') return -1;
    set(row, first, day, day + 8);
    set(row, first + 1, day + 8, day + 14);
    set(row, first + 2, zone, zone_end);
    return j;
}

static const int DATE_SPAN[] = {[1] = S_POSTED_DAY, [2] = S_USER_DAY};
static const int TEXT_SPAN[] = {
    [0] = S_TRNTYPE, [4] = S_TRNAMT, [5] = S_FITID, [6] = S_CORRECTFITID,
    [7] = S_CORRECTACTION, [9] = S_CHECKNUM, [10] = S_REFNUM, [11] = S_SIC,
    [13] = S_NAME, [15] = S_MEMO,
};

static Py_ssize_t tag_len[N_FIELDS]; /* set by the module's init */

/* One plain STMTTRN at i (`<STMTTRN>` is there): the end of its match, or -1.
 * Adds the count of its tags to *tags. */
static Py_ssize_t match_row(const Text *t, Py_ssize_t i, Span *row, Py_ssize_t *tags) {
    memset(row, 0, sizeof(Span) * SPANS_PER_ROW);
    Py_ssize_t opened = 2; /* <STMTTRN> and </STMTTRN> */
    const Py_UCS1 *s = t->s;
    Py_ssize_t pos = skip_space(t, i + 9);
    for (int f = 0; f < N_FIELDS; f++) {
        const char *tag = FIELDS[f].tag;
        Py_ssize_t len = tag_len[f];
        Py_ssize_t v = opener(t, pos, tag, len);
        if (v < 0) continue;
        Py_ssize_t end;
        switch (FIELDS[f].kind) {
        case DATE:
            end = split_date(t, v, row, DATE_SPAN[f]);
            if (end < 0) {
                end = until_lt(t, v);
                set(row, DATE_SPAN[f] + 3, v, end);
            }
            break;
        case AMOUNT:
            end = v;
            while (end < t->n && s[end] != '<' && s[end] != '&' &&
                   !((s[end] | 0x20) >= 'a' && (s[end] | 0x20) <= 'z'))
                end++;
            set(row, TEXT_SPAN[f], v, end);
            break;
        case TEXT:
            end = until_lt(t, v);
            set(row, TEXT_SPAN[f], v, end);
            break;
        default:
            end = until_lt(t, v);
        }
        if (end >= t->n || s[end] != '<') return -1; /* nothing else can follow */
        pos = end;
        opened++;
        if (pos + 1 < t->n && s[pos + 1] == '/' && starts_with(t, pos + 2, tag, len) &&
            pos + 2 + len < t->n && s[pos + 2 + len] == '>') {
            pos = skip_space(t, pos + 3 + len);
            opened++;
        }
    }
    if (!starts_with(t, pos, "</STMTTRN>", 10)) return -1;
    *tags += opened;
    return skip_space(t, pos + 10);
}

static int flush_run(PyObject *runs, Py_ssize_t p, Py_ssize_t q, Span *rows, Py_ssize_t count,
                     Py_ssize_t tags) {
    PyObject *spans = PyBytes_FromStringAndSize((const char *)rows,
                                                (Py_ssize_t)sizeof(Span) * SPANS_PER_ROW * count);
    if (spans == NULL) return -1;
    PyObject *run = Py_BuildValue("(nnNnn)", p, q, spans, count, tags);
    if (run == NULL) return -1;
    int rc = PyList_Append(runs, run);
    Py_DECREF(run);
    return rc;
}

static PyObject *find_runs(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *text;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "Un", &text, &start)) return NULL;
    if (PyUnicode_GET_LENGTH(text) >= INT32_MAX) Py_RETURN_NONE;
    Py_ssize_t cap = 64, count = 0, p = -1, q = -1, pos = start < 0 ? 0 : start;
    Py_ssize_t tags = 0, row_tags = 0;
    Text t;
    Py_UCS1 *owned;
    if (pos > PyUnicode_GET_LENGTH(text)) pos = PyUnicode_GET_LENGTH(text);
    if (open_text(&t, text, pos, PyUnicode_GET_LENGTH(text), &owned) < 0) return NULL;
    Span *rows = NULL;
    PyObject *runs = PyList_New(0);
    if (runs == NULL) goto fail;
    rows = PyMem_Malloc(sizeof(Span) * SPANS_PER_ROW * cap);
    if (rows == NULL) goto fail;
    while (pos < t.n) {
        Py_ssize_t i = find_opener(&t, pos);
        if (i < 0) break;
        if (count == cap) {
            Span *more = PyMem_Realloc(rows, sizeof(Span) * SPANS_PER_ROW * cap * 2);
            if (more == NULL) goto fail;
            rows = more, cap *= 2;
        }
        row_tags = 0;
        Py_ssize_t end = match_row(&t, i, rows + SPANS_PER_ROW * count, &row_tags);
        if (end < 0) {
            pos = i + 1;
            continue;
        }
        if (i != q && count) { /* not right after the last one: a run ends */
            if (flush_run(runs, p, q, rows, count, tags) < 0) goto fail;
            memcpy(rows, rows + SPANS_PER_ROW * count, sizeof(Span) * SPANS_PER_ROW);
            count = tags = 0;
        }
        if (count == 0) p = i;
        count++;
        tags += row_tags;
        q = pos = end;
    }
    if (count && flush_run(runs, p, q, rows, count, tags) < 0) goto fail;
    PyMem_Free(rows);
    PyMem_Free(owned);
    return runs;
fail:
    PyMem_Free(rows);
    PyMem_Free(owned);
    Py_XDECREF(runs);
    return PyErr_NoMemory(), NULL;
}

/* ---- read_run ---------------------------------------------------------------- */

/* Small caches of one call, keyed by a leaf's raw text: its zone or its TRNTYPE. */
#define CACHE_SIZE 16
typedef struct {
    Py_ssize_t len[CACHE_SIZE];
    Py_ssize_t at[CACHE_SIZE];
    PyObject *value[CACHE_SIZE];
    int used;
} Cache;

/* Keyed by the text's own characters (a shadow's `?` stands for many). */
static PyObject *cache_get(Cache *c, const Text *t, Py_ssize_t a, Py_ssize_t b) {
    size_t k_ = (size_t)t->kind;
    for (int k = 0; k < c->used; k++)
        if (c->len[k] == b - a &&
            memcmp(t->data + c->at[k] * k_, t->data + a * k_, (size_t)(b - a) * k_) == 0)
            return c->value[k];
    return NULL;
}

static void cache_put(Cache *c, Py_ssize_t a, Py_ssize_t b, PyObject *value) {
    if (c->used == CACHE_SIZE) return; /* full: the caller looks it up each time */
    c->at[c->used] = a, c->len[c->used] = b - a;
    Py_INCREF(value);
    c->value[c->used++] = value;
}

static void cache_clear(Cache *c) {
    for (int k = 0; k < c->used; k++) Py_DECREF(c->value[k]);
    c->used = 0;
}

typedef struct {
    PyObject *text;
    Text t;
    int ascii;
    PyObject *zone_tz, *raw_when;
    Cache zones, types;
} Reader;

static PyObject *substring(Reader *r, Py_ssize_t a, Py_ssize_t b) {
    if (r->ascii) {
        PyObject *s = PyUnicode_New(b - a, 127);
        if (s) memcpy(PyUnicode_1BYTE_DATA(s), r->t.s + a, (size_t)(b - a));
        return s;
    }
    return PyUnicode_Substring(r->text, a, b);
}

static void strip(const Reader *r, Py_ssize_t *a, Py_ssize_t *b) {
    while (*a < *b && is_space(r->t.s[*a])) (*a)++;
    while (*b > *a && is_space(r->t.s[*b - 1])) (*b)--;
}

static int has_amp(const Reader *r, const int32_t *span) {
    return memchr(r->t.s + span[0], '&', (size_t)(span[1] - span[0])) != NULL;
}

/* A leaf's text as `_Parser.run` reads it: stripped, entities decoded. */
static PyObject *clean_text(Reader *r, const int32_t *span) {
    Py_ssize_t a = span[0], b = span[1];
    strip(r, &a, &b);
    PyObject *s = substring(r, a, b);
    if (s == NULL || memchr(r->t.s + a, '&', (size_t)(b - a)) == NULL) return s;
    PyObject *u = PyObject_CallOneArg(Unescape, s);
    Py_DECREF(s);
    return u;
}

static int digits(const Py_UCS1 *s, int n) {
    int v = 0;
    for (int k = 0; k < n; k++) v = v * 10 + (s[k] - '0');
    return v;
}

/* The zone's tzinfo (a new reference; None when unreadable), NULL on error. */
static PyObject *zone_of(Reader *r, const int32_t *span) {
    PyObject *tz = cache_get(&r->zones, &r->t, span[0], span[1]);
    if (tz) return Py_NewRef(tz);
    PyObject *zone = substring(r, span[0], span[1]);
    if (zone == NULL) return NULL;
    tz = PyObject_CallOneArg(r->zone_tz, zone);
    Py_DECREF(zone);
    if (tz) cache_put(&r->zones, span[0], span[1], tz);
    return tz;
}

/* A date of the split form, or other text: a new datetime, None (Py_None, new ref)
 * when it cannot be read as the fast path reads it, NULL on error. */
static PyObject *when(Reader *r, const Span *row, int first) {
    const int32_t *day = row[first];
    if (day[1] > day[0]) {
        PyObject *tz = zone_of(r, row[first + 2]);
        if (tz == NULL) return NULL;
        const Py_UCS1 *d = r->t.s + day[0], *h = r->t.s + row[first + 1][0];
        int hour = digits(h, 2);
        if (tz == Py_None || hour >= 24) {
            Py_DECREF(tz);
            Py_RETURN_NONE;
        }
        PyObject *value = PyDateTimeAPI->DateTime_FromDateAndTime(
            digits(d, 4), digits(d + 4, 2), digits(d + 6, 2), hour, digits(h + 2, 2),
            digits(h + 4, 2), 0, tz, PyDateTimeAPI->DateTimeType);
        Py_DECREF(tz);
        if (value == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        return value;
    }
    const int32_t *other = row[first + 3];
    if (other[1] == other[0]) Py_RETURN_NONE;
    PyObject *s = substring(r, other[0], other[1]);
    if (s == NULL) return NULL;
    PyObject *value = PyObject_CallOneArg(r->raw_when, s);
    Py_DECREF(s);
    return value;
}

static PyObject *trntype(Reader *r, const int32_t *span, PyObject *amount) {
    PyObject *kind = cache_get(&r->types, &r->t, span[0], span[1]);
    if (kind) return Py_NewRef(kind);
    PyObject *text = clean_text(r, span);
    if (text == NULL) return NULL;
    if (PyUnicode_GET_LENGTH(text) == 0) {
        Py_DECREF(text);
        PyObject *zero = PyLong_FromLong(0);
        int credit = zero ? PyObject_RichCompareBool(amount, zero, Py_GE) : -1;
        Py_XDECREF(zero);
        return credit < 0 ? NULL : PyUnicode_FromString(credit ? "CREDIT" : "DEBIT");
    }
    kind = PyObject_CallMethod(text, "upper", NULL);
    Py_DECREF(text);
    if (kind && !has_amp(r, span)) cache_put(&r->types, span[0], span[1], kind);
    return kind;
}

/* An optional leaf (CHECKNUM...): stripped, or None when empty. */
static PyObject *optional(Reader *r, const int32_t *span) {
    Py_ssize_t a = span[0], b = span[1];
    strip(r, &a, &b);
    if (a == b) Py_RETURN_NONE;
    return substring(r, a, b);
}

static PyObject *sic_of(Reader *r, const int32_t *span) {
    Py_ssize_t a = span[0], b = span[1];
    strip(r, &a, &b);
    if (a == b) Py_RETURN_NONE;
    for (Py_ssize_t k = a; k < b; k++)
        if (!is_digit(r->t.s[k])) Py_RETURN_NONE;
    PyObject *s = substring(r, a, b);
    if (s == NULL) return NULL;
    PyObject *value = PyLong_FromUnicodeObject(s, 10);
    Py_DECREF(s);
    return value;
}

/* One row as `_Parser.run` reads it: a new Transaction, Py_None (new ref) for the
 * general reading, NULL on error. */
static PyObject *read_row(Reader *r, const Span *row) {
    PyObject *v[13] = {NULL};
    PyObject *amount = NULL, *posted = NULL, *user = NULL;
    const int32_t *amt = row[S_TRNAMT];
    if (amt[1] > amt[0]) {
        PyObject *s = substring(r, amt[0], amt[1]);
        if (s == NULL) return NULL;
        amount = PyObject_CallOneArg(Decimal, s);
        Py_DECREF(s);
        if (amount == NULL) {
            if (!PyErr_ExceptionMatches(InvalidOperation)) return NULL;
            PyErr_Clear();
        }
    }
    if (amount == NULL) Py_RETURN_NONE;
    if ((posted = when(r, row, S_POSTED_DAY)) == NULL) goto fail;
    if ((user = when(r, row, S_USER_DAY)) == NULL) goto fail;
    if (user == Py_None) {
        const int32_t *day = row[S_USER_DAY], *other = row[S_USER_OTHER];
        Py_ssize_t a = other[0], b = other[1];
        strip(r, &a, &b);
        if (day[1] > day[0] || a < b) Py_SETREF(posted, Py_NewRef(Py_None));
    }
    Py_ssize_t fa = row[S_FITID][0], fb = row[S_FITID][1];
    strip(r, &fa, &fb);
    static const int extras[] = {S_CHECKNUM, S_REFNUM, S_SIC, S_CORRECTFITID, S_CORRECTACTION};
    int general = posted == Py_None || fa == fb || memchr(r->t.s + fa, '&', (size_t)(fb - fa));
    for (int k = 0; k < 5 && !general; k++) general = has_amp(r, row[extras[k]]);
    if (general) {
        Py_DECREF(amount), Py_DECREF(posted), Py_DECREF(user);
        Py_RETURN_NONE;
    }
    v[0] = substring(r, fa, fb);
    v[1] = trntype(r, row[S_TRNTYPE], amount);
    v[2] = posted, v[3] = amount, v[6] = user;
    posted = amount = user = NULL;
    v[4] = clean_text(r, row[S_NAME]);
    v[5] = clean_text(r, row[S_MEMO]);
    v[7] = optional(r, row[S_CHECKNUM]);
    v[8] = optional(r, row[S_REFNUM]);
    v[9] = sic_of(r, row[S_SIC]);
    v[10] = Py_NewRef(Py_None); /* no CURRENCY in a plain STMTTRN */
    v[11] = optional(r, row[S_CORRECTFITID]);
    v[12] = optional(r, row[S_CORRECTACTION]);
    for (int k = 0; k < 13; k++)
        if (v[k] == NULL) goto fail;
    /* Each field into its slot: the dataclass's __init__ would cost three times more. */
    PyObject *t = ((PyTypeObject *)Transaction)->tp_alloc((PyTypeObject *)Transaction, 0);
    if (t == NULL) goto fail;
    for (int k = 0; k < 13; k++) *(PyObject **)((char *)t + slot_offsets[k]) = v[k];
    return t;
fail:
    for (int k = 0; k < 13; k++) Py_XDECREF(v[k]);
    Py_XDECREF(amount), Py_XDECREF(posted), Py_XDECREF(user);
    return NULL;
}

/* Spans as find_runs makes them: within the text, a date's day and time of 8 and 6. */
static int valid(const Span *rows, Py_ssize_t count, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < count * SPANS_PER_ROW; k++) {
        int32_t a = rows[k][0], b = rows[k][1];
        int f = (int)(k % SPANS_PER_ROW);
        if (a < 0 || a > b || b > n) return 0;
        if ((f == S_POSTED_DAY || f == S_USER_DAY) && b != a && b - a != 8) return 0;
        if ((f == S_POSTED_TIME || f == S_USER_TIME) && b - a != (rows[k - 1][1] > rows[k - 1][0] ? 6 : 0))
            return 0;
    }
    return 1;
}

static PyObject *read_run(PyObject *Py_UNUSED(self), PyObject *args) {
    Reader r = {0};
    Py_buffer spans;
    Py_ssize_t count;
    if (Transaction == NULL) return PyErr_SetString(PyExc_RuntimeError, "configure() first"), NULL;
    if (!PyArg_ParseTuple(args, "Uy*nOO", &r.text, &spans, &count, &r.zone_tz, &r.raw_when))
        return NULL;
    PyObject *out = NULL;
    Py_UCS1 *owned = NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(r.text);
    const Py_ssize_t row_size = (Py_ssize_t)sizeof(Span) * SPANS_PER_ROW;
    if (count < 0 || count > PY_SSIZE_T_MAX / row_size || spans.len != row_size * count) {
        PyErr_SetString(PyExc_ValueError, "spans that find_runs did not make for this text");
        goto done;
    }
    const Span *rows = spans.buf;
    if (!valid(rows, count, n)) {
        PyErr_SetString(PyExc_ValueError, "a span outside the text, or not of a date's shape");
        goto done;
    }
    Py_ssize_t lo = n, hi = 0; /* the characters the spans cover */
    for (Py_ssize_t k = 0; k < count * SPANS_PER_ROW; k++)
        if (rows[k][1] > rows[k][0]) {
            if (rows[k][0] < lo) lo = rows[k][0];
            if (rows[k][1] > hi) hi = rows[k][1];
        }
    if (open_text(&r.t, r.text, lo < hi ? lo : 0, hi, &owned) < 0) goto done;
    r.ascii = PyUnicode_IS_ASCII(r.text);
    if ((out = PyList_New(count)) == NULL) goto done;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *t = read_row(&r, rows + SPANS_PER_ROW * k);
        if (t == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, t);
    }
done:
    cache_clear(&r.zones);
    cache_clear(&r.types);
    PyMem_Free(owned);
    PyBuffer_Release(&spans);
    return out;
}

/* ---- configure --------------------------------------------------------------- */

static const char *const TRANSACTION_FIELDS[13] = {
    "fitid", "type", "posted", "amount", "name", "memo", "user_date", "check_number",
    "ref_number", "sic", "currency", "correct_fitid", "correct_action",
};

static PyObject *configure(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *transaction, *decimal, *invalid, *unescape;
    if (!PyArg_ParseTuple(args, "O!OOO", &PyType_Type, &transaction, &decimal, &invalid, &unescape))
        return NULL;
    for (int k = 0; k < 13; k++) {
        PyObject *d = PyObject_GetAttrString(transaction, TRANSACTION_FIELDS[k]);
        if (d == NULL) return NULL;
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
        if (ok) slot_offsets[k] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
        if (!ok)
            return PyErr_Format(PyExc_TypeError, "Transaction.%s is not a slot",
                                TRANSACTION_FIELDS[k]);
    }
    Py_XSETREF(Transaction, Py_NewRef(transaction));
    Py_XSETREF(Decimal, Py_NewRef(decimal));
    Py_XSETREF(InvalidOperation, Py_NewRef(invalid));
    Py_XSETREF(Unescape, Py_NewRef(unescape));
    Py_RETURN_NONE;
}

static PyObject *fields(void) {
    PyObject *out = PyTuple_New(N_FIELDS);
    for (int f = 0; out && f < N_FIELDS; f++) {
        static const char *kinds[] = {"text", "date", "amount", "skip"};
        PyObject *pair = Py_BuildValue("(ss)", FIELDS[f].tag, kinds[FIELDS[f].kind]);
        if (pair == NULL) return Py_DECREF(out), NULL;
        PyTuple_SET_ITEM(out, f, pair);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"find_runs", find_runs, METH_VARARGS, "Plain STMTTRN runs: [(p, q, spans, count, tags)] or None."},
    {"read_run", read_run, METH_VARARGS, "A run's transactions (None: the general reading's)."},
    {"configure", configure, METH_VARARGS, "configure(Transaction, Decimal, InvalidOperation, unescape)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT, .m_name = "_speedups", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    for (int f = 0; f < N_FIELDS; f++) tag_len[f] = (Py_ssize_t)strlen(FIELDS[f].tag);
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    PyObject *f = fields();
    if (f == NULL || PyModule_AddObject(m, "FIELDS", f) < 0 ||
        PyModule_AddIntConstant(m, "SPANS_PER_ROW", SPANS_PER_ROW) < 0) {
        Py_XDECREF(f);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
