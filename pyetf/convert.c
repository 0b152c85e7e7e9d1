/* convert.c: Erlang External Term Format <-> Python objects (API.md 5).
 *
 * The caller holds the GIL. Nothing here calls back into Go.
 *
 * Decoding (pyx_from_etf) trusts nothing: every length and count is
 * checked against the bytes left before anything is read or allocated
 * (a count of N elements needs at least N bytes left, since every term
 * takes at least one byte), and malformed input gives ValueError with the
 * offset (from the start of the buffer given) where it went wrong.
 *
 * Nesting in both directions goes through Py_EnterRecursiveCall, so a
 * deep term or a self-referencing list gives RecursionError rather than
 * a stack overflow. The depth allowed is Python's: the C recursion limit
 * on 3.12 and later, sys.getrecursionlimit() on 3.11; decoding also stops
 * at PYX_MAX_TERM_DEPTH levels whatever Python's limit (docs/PROTOCOL.md),
 * the limit of the Go decoder (etf.DefaultMaxDepth).
 *
 * Reference conventions: "new" means the function returns a reference
 * the caller owns; "borrowed" means it does not. Every function below
 * says which of its object arguments and results are which. */
#include "pyetf.h"

#include "etfw.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DECODE_WHERE " while converting an Erlang term"
#define ENCODE_WHERE " while converting a Python object to an Erlang term"

/* ------------------------------------------------------------------ */
/* Reading ETF                                                         */
/* ------------------------------------------------------------------ */

/* A cursor over the input. Invariant: pos <= len. */
typedef struct {
    const pyx_types *t;
    const unsigned char *buf;
    size_t len;
    size_t pos;
    int depth; /* containers and funs open around pos */
} reader;

/* Deepest nesting of containers (and funs) decoded; what Erlang sends is
 * refused past it, before Python's own limit, so that a hostile payload
 * gets the same RecursionError on every Python version and thread stack. */
#define PYX_MAX_TERM_DEPTH 1000

/* Py_EnterRecursiveCall plus our own depth count; 0, or -1 with
 * RecursionError. Paired with leave(). */
static int enter(reader *r)
{
    if (r->depth >= PYX_MAX_TERM_DEPTH) {
        PyErr_Format(PyExc_RecursionError,
                     "maximum recursion depth exceeded while converting an Erlang term (%d levels)",
                     PYX_MAX_TERM_DEPTH);
        return -1;
    }
    if (Py_EnterRecursiveCall(DECODE_WHERE))
        return -1;
    r->depth++;
    return 0;
}

static void leave(reader *r)
{
    r->depth--;
    Py_LeaveRecursiveCall();
}

static size_t left(const reader *r) { return r->len - r->pos; }

/* Sets ValueError for what is wrong at offset at; returns -1. */
static int malformed(size_t at, const char *what)
{
    PyErr_Format(PyExc_ValueError, "malformed Erlang term: %s at offset %zu", what, at);
    return -1;
}

/* Sets ValueError for a tag this decoder does not know (or refuses:
 * ATOM_CACHE_REF, the old FUN_EXT, LOCAL_EXT); returns -1. */
static int unsupported(unsigned tag, size_t at)
{
    PyErr_Format(PyExc_ValueError, "malformed Erlang term: unsupported tag %u at offset %zu", tag,
                 at);
    return -1;
}

/* 0 when n more bytes can be read at r->pos, else -1 with ValueError. */
static int need(const reader *r, size_t n)
{
    if (n <= left(r))
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "truncated Erlang term: %zu bytes needed at offset %zu, %zu left", n, r->pos,
                 left(r));
    return -1;
}

/* Checks that count elements, each taking at least min_size bytes, can
 * follow at r->pos; the check to make before allocating for them. */
static int need_elements(const reader *r, size_t count, size_t min_size, const char *what)
{
    if (count <= left(r) / min_size)
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "malformed Erlang term: %s of %zu elements at offset %zu is longer than the "
                 "%zu bytes left",
                 what, count, r->pos, left(r));
    return -1;
}

/* The get_* functions read a big-endian number and advance; the caller
 * has checked with need() first. */
static unsigned get_u8(reader *r) { return r->buf[r->pos++]; }

static unsigned get_u16(reader *r)
{
    const unsigned char *p = r->buf + r->pos;
    r->pos += 2;
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get_u32(reader *r)
{
    const unsigned char *p = r->buf + r->pos;
    r->pos += 4;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_atom_tag(unsigned tag)
{
    return tag == ATOM_EXT || tag == SMALL_ATOM_EXT || tag == ATOM_UTF8_EXT ||
           tag == SMALL_ATOM_UTF8_EXT;
}

/* Reads an atom, tag included, at r->pos: *text points into the input
 * (no copy), *n is its length in bytes, *utf8 says whether it is UTF-8
 * (else Latin-1). 0, or -1 with ValueError. */
static int read_atom(reader *r, const unsigned char **text, size_t *n, int *utf8)
{
    size_t at = r->pos;
    if (need(r, 1) < 0)
        return -1;
    unsigned tag = get_u8(r);
    size_t len_size = tag == SMALL_ATOM_EXT || tag == SMALL_ATOM_UTF8_EXT ? 1 : 2;
    if (!is_atom_tag(tag))
        return malformed(at, "atom expected");
    if (need(r, len_size) < 0)
        return -1;
    *n = len_size == 1 ? get_u8(r) : get_u16(r);
    if (need(r, *n) < 0)
        return -1;
    *text = r->buf + r->pos;
    *utf8 = tag == ATOM_UTF8_EXT || tag == SMALL_ATOM_UTF8_EXT;
    r->pos += *n;
    return 0;
}

static int atom_is(const unsigned char *text, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(text, name, n) == 0;
}

/* --- Walking a term without converting it -------------------------- */

static int skip_term(reader *r);

/* Skips count terms. */
static int skip_terms(reader *r, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (skip_term(r) < 0)
            return -1;
    return 0;
}

static int skip_atom(reader *r)
{
    const unsigned char *text;
    size_t n;
    int utf8;
    return read_atom(r, &text, &n, &utf8);
}

/* Skips n fixed bytes. */
static int skip_bytes(reader *r, size_t n)
{
    if (need(r, n) < 0)
        return -1;
    r->pos += n;
    return 0;
}

/* Pids, ports and references: a node atom between fixed-size fields.
 * r->pos is just past the tag. */
static int skip_identifier(reader *r, unsigned tag)
{
    size_t ids = 0;
    if (tag == NEW_REFERENCE_EXT || tag == NEWER_REFERENCE_EXT) {
        if (need(r, 2) < 0)
            return -1;
        ids = get_u16(r);
    }
    if (skip_atom(r) < 0)
        return -1;
    switch (tag) {
    case PID_EXT:
        return skip_bytes(r, 4 + 4 + 1); /* ID, Serial, Creation */
    case NEW_PID_EXT:
        return skip_bytes(r, 4 + 4 + 4);
    case PORT_EXT:
        return skip_bytes(r, 4 + 1); /* ID, Creation */
    case NEW_PORT_EXT:
        return skip_bytes(r, 4 + 4);
    case V4_PORT_EXT:
        return skip_bytes(r, 8 + 4);
    case REFERENCE_EXT:
        return skip_bytes(r, 4 + 1); /* ID, Creation */
    case NEW_REFERENCE_EXT:
        return skip_bytes(r, 1 + 4 * ids); /* Creation, ID ... */
    default: /* NEWER_REFERENCE_EXT */
        return skip_bytes(r, 4 + 4 * ids);
    }
}

/* NEW_FUN_EXT, r->pos just past the tag: Size (which counts itself),
 * Arity, Uniq, Index, NumFree, Module, OldIndex, OldUniq, Pid, then
 * NumFree free variables. The fields are walked inside the Size bytes,
 * and must fill them exactly. */
static int skip_fun_fields(reader *r)
{
    size_t at = r->pos;
    if (need(r, 4) < 0)
        return -1;
    size_t size = get_u32(r);
    if (size < 4 + 1 + 16 + 4 + 4)
        return malformed(at, "fun size too small");
    if (need(r, size - 4) < 0)
        return -1;
    reader sub = *r;
    sub.len = at + size;
    if (skip_bytes(&sub, 1 + 16 + 4) < 0 || need(&sub, 4) < 0) /* Arity, Uniq, Index */
        return -1;
    size_t num_free = get_u32(&sub);
    if (skip_atom(&sub) < 0 || skip_terms(&sub, 3) < 0 || /* OldIndex, OldUniq, Pid */
        need_elements(&sub, num_free, 1, "fun environment") < 0 ||
        skip_terms(&sub, num_free) < 0)
        return -1;
    if (sub.pos != sub.len)
        return malformed(sub.pos, "fun size does not match its contents");
    r->pos = sub.pos;
    return 0;
}

/* A fun's free variables can be funs: one recursion level each. */
static int skip_fun(reader *r)
{
    if (enter(r) < 0)
        return -1;
    int rc = skip_fun_fields(r);
    leave(r);
    return rc;
}

/* Containers, r->pos just past the tag. */
static int skip_container(reader *r, unsigned tag)
{
    size_t count;
    if (tag == SMALL_TUPLE_EXT) {
        if (need(r, 1) < 0)
            return -1;
        count = get_u8(r);
    } else {
        if (need(r, 4) < 0)
            return -1;
        count = get_u32(r);
    }
    if (need_elements(r, count, tag == MAP_EXT ? 2 : 1, "container") < 0)
        return -1;
    if (tag == LIST_EXT)
        count += 1; /* the tail: any term, in a fun's environment */
    else if (tag == MAP_EXT)
        count *= 2;
    if (enter(r) < 0)
        return -1;
    int rc = skip_terms(r, count);
    leave(r);
    return rc;
}

/* Advances r->pos over one complete term (tag first) without making any
 * object: used to find where pids, refs, ports and funs end, and to
 * validate the `_etf` bytes of such objects before they are sent back.
 * 0, or -1 with ValueError or RecursionError. */
static int skip_term(reader *r)
{
    size_t at = r->pos;
    if (need(r, 1) < 0)
        return -1;
    unsigned tag = r->buf[r->pos];
    if (is_atom_tag(tag))
        return skip_atom(r);
    r->pos++;
    switch (tag) {
    case SMALL_INTEGER_EXT:
        return skip_bytes(r, 1);
    case INTEGER_EXT:
        return skip_bytes(r, 4);
    case NEW_FLOAT_EXT:
        return skip_bytes(r, 8);
    case FLOAT_EXT:
        return skip_bytes(r, 31);
    case NIL_EXT:
        return 0;
    case STRING_EXT:
        if (need(r, 2) < 0)
            return -1;
        return skip_bytes(r, get_u16(r));
    case BINARY_EXT:
        if (need(r, 4) < 0)
            return -1;
        return skip_bytes(r, get_u32(r));
    case BIT_BINARY_EXT: {
        if (need(r, 5) < 0)
            return -1;
        size_t n = get_u32(r);
        return skip_bytes(r, 1 + n);
    }
    case SMALL_BIG_EXT:
        if (need(r, 1) < 0)
            return -1;
        return skip_bytes(r, 1 + (size_t)get_u8(r));
    case LARGE_BIG_EXT: {
        if (need(r, 4) < 0)
            return -1;
        size_t n = get_u32(r);
        return skip_bytes(r, 1 + n);
    }
    case SMALL_TUPLE_EXT:
    case LARGE_TUPLE_EXT:
    case LIST_EXT:
    case MAP_EXT:
        return skip_container(r, tag);
    case PID_EXT:
    case NEW_PID_EXT:
    case PORT_EXT:
    case NEW_PORT_EXT:
    case V4_PORT_EXT:
    case REFERENCE_EXT:
    case NEW_REFERENCE_EXT:
    case NEWER_REFERENCE_EXT:
        return skip_identifier(r, tag);
    case NEW_FUN_EXT:
        return skip_fun(r);
    case EXPORT_EXT: /* Module, Function, Arity */
        if (skip_atom(r) < 0 || skip_atom(r) < 0)
            return -1;
        if (need(r, 1) < 0)
            return -1;
        if (r->buf[r->pos] != SMALL_INTEGER_EXT)
            return malformed(r->pos, "export arity is not a small integer");
        return skip_bytes(r, 2);
    case COMPRESSED:
        return malformed(at, "compressed terms are not supported");
    default:
        return unsupported(tag, at);
    }
}

/* --- Converting ------------------------------------------------------ */

static PyObject *decode(reader *r);

/* SMALL_INTEGER_EXT, INTEGER_EXT; r->pos past the tag. New reference. */
static PyObject *decode_int(reader *r, unsigned tag)
{
    if (tag == SMALL_INTEGER_EXT) {
        if (need(r, 1) < 0)
            return NULL;
        return PyLong_FromLong((long)get_u8(r));
    }
    if (need(r, 4) < 0)
        return NULL;
    return PyLong_FromLong((long)(int32_t)get_u32(r));
}

/* SMALL_BIG_EXT, LARGE_BIG_EXT: n digit bytes, little-endian, after a
 * sign byte. r->pos past the tag. New reference. */
static PyObject *decode_big(reader *r, unsigned tag)
{
    size_t n;
    if (tag == SMALL_BIG_EXT) {
        if (need(r, 1) < 0)
            return NULL;
        n = get_u8(r);
    } else {
        if (need(r, 4) < 0)
            return NULL;
        n = get_u32(r);
    }
    if (need(r, 1) < 0)
        return NULL;
    size_t sign_at = r->pos;
    unsigned sign = get_u8(r);
    if (sign > 1) {
        malformed(sign_at, "integer sign is neither 0 nor 1");
        return NULL;
    }
    if (need(r, n) < 0)
        return NULL;
    PyObject *v = _PyLong_FromByteArray(r->buf + r->pos, n, 1 /* little endian */, 0);
    r->pos += n;
    if (v == NULL || !sign)
        return v;
    PyObject *neg = PyNumber_Negative(v);
    Py_DECREF(v);
    return neg;
}

/* NEW_FLOAT_EXT (IEEE 754, big-endian) and the old FLOAT_EXT (31 bytes
 * of printf text, NUL padded). r->pos past the tag. New reference. */
static PyObject *decode_float(reader *r, unsigned tag)
{
    if (tag == NEW_FLOAT_EXT) {
        if (need(r, 8) < 0)
            return NULL;
        double d = PyFloat_Unpack8((const char *)r->buf + r->pos, 0);
        r->pos += 8;
        if (d == -1.0 && PyErr_Occurred())
            return NULL;
        return PyFloat_FromDouble(d);
    }
    if (need(r, 31) < 0)
        return NULL;
    char text[32];
    memcpy(text, r->buf + r->pos, 31);
    text[31] = '\0';
    size_t at = r->pos;
    r->pos += 31;
    char *end = NULL;
    double d = PyOS_string_to_double(text, &end, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        end = text; /* reported below */
    }
    if (end == text || (size_t)(end - text) < strlen(text)) {
        malformed(at, "unreadable FLOAT_EXT text");
        return NULL;
    }
    return PyFloat_FromDouble(d);
}

/* Atoms, r->pos at the tag: true/false -> bool, none/nil/undefined ->
 * None, others -> str. New reference. */
static PyObject *decode_atom(reader *r)
{
    size_t at = r->pos;
    const unsigned char *text;
    size_t n;
    int utf8;
    if (read_atom(r, &text, &n, &utf8) < 0)
        return NULL;
    if (atom_is(text, n, "true"))
        Py_RETURN_TRUE;
    if (atom_is(text, n, "false"))
        Py_RETURN_FALSE;
    if (atom_is(text, n, "none") || atom_is(text, n, "nil") || atom_is(text, n, "undefined"))
        Py_RETURN_NONE;
    if (!utf8)
        return PyUnicode_DecodeLatin1((const char *)text, (Py_ssize_t)n, NULL);
    PyObject *s = PyUnicode_DecodeUTF8((const char *)text, (Py_ssize_t)n, "strict");
    if (s == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        malformed(at, "atom is not valid UTF-8");
    }
    return s;
}

/* BINARY_EXT -> str when valid UTF-8, else (or when as_bytes) bytes.
 * BIT_BINARY_EXT of whole bytes -> bytes; the others are opaque (decode()).
 * r->pos past the tag. New reference. */
static PyObject *decode_binary(reader *r, unsigned tag, int as_bytes)
{
    if (need(r, 4) < 0)
        return NULL;
    size_t n = get_u32(r);
    if (tag == BIT_BINARY_EXT) {
        if (need(r, 1) < 0)
            return NULL;
        size_t bits_at = r->pos;
        unsigned bits = get_u8(r);
        if (n == 0 ? bits != 0 : (bits < 1 || bits > 8)) {
            malformed(bits_at, "bad bit count in bitstring");
            return NULL;
        }
        as_bytes = 1;
    }
    if (need(r, n) < 0)
        return NULL;
    const char *p = (const char *)r->buf + r->pos;
    r->pos += n;
    if (!as_bytes) {
        PyObject *s = PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict");
        if (s != NULL || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            return s;
        PyErr_Clear();
    }
    return PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
}

/* Whether the two elements of a 2-tuple at r->pos are the atom `bytes`
 * and a BINARY_EXT; if so, *bin_at is the binary's offset. Reads only. */
static int is_bytes_pair(const reader *r, size_t *bin_at)
{
    reader peek = *r;
    const unsigned char *text;
    size_t n;
    int utf8;
    if (left(&peek) < 1 || !is_atom_tag(peek.buf[peek.pos]))
        return 0;
    if (read_atom(&peek, &text, &n, &utf8) < 0) { /* truncated: decode() reports it */
        PyErr_Clear();
        return 0;
    }
    if (!atom_is(text, n, "bytes") || left(&peek) < 1 || peek.buf[peek.pos] != BINARY_EXT)
        return 0;
    *bin_at = peek.pos;
    return 1;
}

/* Whether the tuple's first element at r->pos is the atom `py_buffer`
 * (py_buffer's handle). Reads only. */
static int is_buffer_handle(const reader *r)
{
    reader peek = *r;
    const unsigned char *text;
    size_t n;
    int utf8;
    if (left(&peek) < 1 || !is_atom_tag(peek.buf[peek.pos]))
        return 0;
    if (read_atom(&peek, &text, &n, &utf8) < 0) { /* truncated: decode() reports it */
        PyErr_Clear();
        return 0;
    }
    return atom_is(text, n, "py_buffer");
}

/* SMALL_TUPLE_EXT, LARGE_TUPLE_EXT -> tuple, {bytes, Bin} -> bytes, and
 * py_buffer's handle {py_buffer, ...} of 7 -> erlang.PyBuffer(tuple).
 * r->pos past the tag. New reference. */
static PyObject *decode_tuple(reader *r, unsigned tag)
{
    size_t arity;
    if (tag == SMALL_TUPLE_EXT) {
        if (need(r, 1) < 0)
            return NULL;
        arity = get_u8(r);
    } else {
        if (need(r, 4) < 0)
            return NULL;
        arity = get_u32(r);
    }
    size_t bin_at;
    int buffer_handle = arity == 7 && r->t->buffer_type != NULL && is_buffer_handle(r);
    if (arity == 2 && is_bytes_pair(r, &bin_at)) {
        r->pos = bin_at + 1;
        return decode_binary(r, BINARY_EXT, 1);
    }
    if (need_elements(r, arity, 1, "tuple") < 0)
        return NULL;
    PyObject *tuple = PyTuple_New((Py_ssize_t)arity); /* owned until returned */
    if (tuple == NULL)
        return NULL;
    for (size_t i = 0; i < arity; i++) {
        PyObject *item = decode(r);
        if (item == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, (Py_ssize_t)i, item); /* steals item */
    }
    if (buffer_handle) {
        PyObject *buf = PyObject_CallOneArg(r->t->buffer_type, tuple); /* owned */
        Py_DECREF(tuple);
        return buf;
    }
    return tuple;
}

/* STRING_EXT, r->pos past the tag: a list of the byte values. New
 * reference. */
static PyObject *decode_string(reader *r)
{
    if (need(r, 2) < 0)
        return NULL;
    size_t n = get_u16(r);
    if (need(r, n) < 0)
        return NULL;
    PyObject *list = PyList_New((Py_ssize_t)n); /* owned until returned */
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *c = PyLong_FromLong(r->buf[r->pos + i]);
        if (c == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, c); /* steals c */
    }
    r->pos += n;
    return list;
}

/* The elements of a LIST_EXT, r->pos past the tag, tail excluded. New
 * reference. */
static PyObject *decode_elements(reader *r)
{
    if (need(r, 4) < 0)
        return NULL;
    size_t n = get_u32(r);
    if (need_elements(r, n, 1, "list") < 0)
        return NULL;
    PyObject *list = PyList_New((Py_ssize_t)n); /* owned until returned */
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *item = decode(r);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item); /* steals item */
    }
    return list;
}

/* NIL_EXT, STRING_EXT, LIST_EXT -> list. r->pos past the tag. A tail
 * other than [] is an improper list: ValueError. A tail that is itself
 * a list (Erlang never writes one, but it is a proper list) is
 * appended. New reference. */
static PyObject *decode_list(reader *r, unsigned tag)
{
    if (tag == NIL_EXT)
        return PyList_New(0);
    if (tag == STRING_EXT)
        return decode_string(r);
    PyObject *list = decode_elements(r); /* owned until returned */
    while (list != NULL) {
        if (need(r, 1) < 0)
            break;
        size_t tail_at = r->pos;
        tag = get_u8(r);
        if (tag == NIL_EXT)
            return list;
        if (tag != LIST_EXT && tag != STRING_EXT) {
            malformed(tail_at, "improper list");
            break;
        }
        PyObject *more = tag == LIST_EXT ? decode_elements(r) : decode_string(r);
        Py_ssize_t end = PyList_GET_SIZE(list);
        int rc = more == NULL ? -1 : PyList_SetSlice(list, end, end, more);
        Py_XDECREF(more);
        if (rc < 0)
            break;
        if (tag == STRING_EXT)
            return list;
    }
    Py_XDECREF(list);
    return NULL;
}

/* MAP_EXT -> dict; keys are converted like any term, so atom keys
 * become str, and keys that Python sees as equal (a => 1, <<"a">> => 2)
 * collapse to one, the later winning. A key Python cannot hash (a
 * list, a map) gives TypeError. r->pos past the tag. New reference. */
static PyObject *decode_map(reader *r)
{
    if (need(r, 4) < 0)
        return NULL;
    size_t arity = get_u32(r);
    if (need_elements(r, arity, 2, "map") < 0)
        return NULL;
    PyObject *dict = PyDict_New(); /* owned until returned */
    if (dict == NULL)
        return NULL;
    for (size_t i = 0; i < arity; i++) {
        PyObject *key = decode(r);
        PyObject *value = key == NULL ? NULL : decode(r);
        int rc = value == NULL ? -1 : PyDict_SetItem(dict, key, value);
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (rc < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

/* Pids, references, ports, funs, exports, r->pos at the tag: calls
 * cls (borrowed) with the term's own bytes. New reference. */
static PyObject *decode_opaque(reader *r, PyObject *cls)
{
    size_t start = r->pos;
    if (skip_term(r) < 0)
        return NULL;
    if (cls == NULL) {
        PyErr_SetString(PyExc_SystemError, "pyx_types is not initialised");
        return NULL;
    }
    PyObject *etf = PyBytes_FromStringAndSize((const char *)r->buf + start,
                                              (Py_ssize_t)(r->pos - start));
    if (etf == NULL)
        return NULL;
    PyObject *obj = PyObject_CallOneArg(cls, etf);
    Py_DECREF(etf);
    return obj;
}

/* Converts the term at r->pos and advances past it. New reference. */
static PyObject *decode(reader *r)
{
    size_t at = r->pos;
    if (need(r, 1) < 0)
        return NULL;
    unsigned tag = r->buf[at];
    if (is_atom_tag(tag))
        return decode_atom(r);
    switch (tag) {
    case PID_EXT:
    case NEW_PID_EXT:
        return decode_opaque(r, r->t->pid_type);
    case REFERENCE_EXT:
    case NEW_REFERENCE_EXT:
    case NEWER_REFERENCE_EXT:
        return decode_opaque(r, r->t->ref_type);
    case PORT_EXT:
    case NEW_PORT_EXT:
    case V4_PORT_EXT:
    case NEW_FUN_EXT:
    case EXPORT_EXT:
        return decode_opaque(r, r->t->opaque_type);
    case BIT_BINARY_EXT: { /* no Python type keeps a bit count: opaque too */
        if (need(r, 6) < 0)
            return NULL;
        const unsigned char *h = r->buf + at; /* tag, Len:32, Bits:8 */
        if ((h[1] | h[2] | h[3] | h[4]) != 0 && h[5] >= 1 && h[5] <= 7)
            return decode_opaque(r, r->t->opaque_type);
        break; /* whole bytes, or a bad bit count: decode_binary() says */
    }
    }
    r->pos++;
    switch (tag) {
    case SMALL_INTEGER_EXT:
    case INTEGER_EXT:
        return decode_int(r, tag);
    case SMALL_BIG_EXT:
    case LARGE_BIG_EXT:
        return decode_big(r, tag);
    case NEW_FLOAT_EXT:
    case FLOAT_EXT:
        return decode_float(r, tag);
    case BINARY_EXT:
    case BIT_BINARY_EXT:
        return decode_binary(r, tag, 0);
    case SMALL_TUPLE_EXT:
    case LARGE_TUPLE_EXT:
    case NIL_EXT:
    case STRING_EXT:
    case LIST_EXT:
    case MAP_EXT: {
        if (enter(r) < 0)
            return NULL;
        PyObject *obj = tag == MAP_EXT   ? decode_map(r)
                        : tag == SMALL_TUPLE_EXT || tag == LARGE_TUPLE_EXT ? decode_tuple(r, tag)
                                                                           : decode_list(r, tag);
        leave(r);
        return obj;
    }
    case COMPRESSED:
        malformed(at, "compressed terms are not supported");
        return NULL;
    default:
        unsupported(tag, at);
        return NULL;
    }
}

PyObject *pyx_from_etf(const pyx_types *t, const unsigned char *buf, size_t len, size_t *pos)
{
    if (*pos > len) {
        PyErr_SetString(PyExc_ValueError, "malformed Erlang term: offset past the end");
        return NULL;
    }
    reader r = {t, buf, len, *pos, 0};
    PyObject *obj = decode(&r);
    if (obj != NULL)
        *pos = r.pos;
    return obj;
}

/* ------------------------------------------------------------------ */
/* Writing ETF                                                         */
/* ------------------------------------------------------------------ */

typedef struct {
    const pyx_types *t;
    pyx_buf *out;
    /* Counts the objects written whose term another Python object,
     * one Python does not see as equal, can also give: bytes (like
     * str), Atom (like None, bool), non-finite floats (like Atom; and
     * nan != nan), Pid/Ref/Opaque (same bytes, other class), instances
     * of subclasses of int, float, str, tuple (their own __eq__). Exact
     * str, int, float, bool, None and tuples of those map one to one.
     * Only a dict with such a key can end up with two equal Erlang keys,
     * a map binary_to_term refuses, so only those are checked. */
    size_t ambiguous;
} writer;

static int encode(writer *w, PyObject *obj);

static int put(writer *w, const void *p, size_t n)
{
    if (pyx_buf_append(w->out, p, n) == 0)
        return 0;
    PyErr_NoMemory();
    return -1;
}

static int put_u8(writer *w, unsigned v)
{
    unsigned char c = (unsigned char)v;
    return put(w, &c, 1);
}

/* A tag followed by a 32-bit big-endian number. */
static int put_tag_u32(writer *w, unsigned tag, uint32_t v)
{
    unsigned char b[5] = {(unsigned char)tag, (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    return put(w, b, 5);
}

/* Checks that a size fits the 32 bits ETF has for it. */
static int fits_u32(Py_ssize_t n, const char *what)
{
    if ((uint64_t)n <= UINT32_MAX)
        return 0;
    PyErr_Format(PyExc_OverflowError, "%s too large for an Erlang term", what);
    return -1;
}

/* An atom from n bytes of UTF-8 text (at most 255 characters). */
static int put_atom(writer *w, const char *text, size_t n)
{
    if (n <= 255) {
        unsigned char hdr[2] = {SMALL_ATOM_UTF8_EXT, (unsigned char)n};
        return put(w, hdr, 2) < 0 ? -1 : put(w, text, n);
    }
    unsigned char hdr[3] = {ATOM_UTF8_EXT, (unsigned char)(n >> 8), (unsigned char)n};
    return put(w, hdr, 3) < 0 ? -1 : put(w, text, n);
}

static int put_atom_cstr(writer *w, const char *name) { return put_atom(w, name, strlen(name)); }

/* An erlang.Atom (borrowed): the atom of its text. */
static int encode_atom(writer *w, PyObject *obj)
{
    Py_ssize_t chars = PyUnicode_GET_LENGTH(obj);
    if (chars > 255) {
        PyErr_Format(PyExc_ValueError,
                     "atom too long: %zd characters, Erlang allows at most 255", chars);
        return -1;
    }
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(obj, &n);
    if (text == NULL)
        return -1;
    w->ambiguous++;
    return put_atom(w, text, (size_t)n);
}

/* An erlang.Pid, Ref or Opaque (borrowed): its `_etf` bytes as they
 * are, once checked to be exactly one well-formed term. */
static int encode_term_object(writer *w, PyObject *obj)
{
    PyObject *etf = PyObject_GetAttrString(obj, "_etf"); /* new */
    if (etf == NULL)
        return -1;
    int rc = -1;
    if (!PyBytes_Check(etf)) {
        PyErr_Format(PyExc_TypeError, "%s._etf must be bytes, not %s", Py_TYPE(obj)->tp_name,
                     Py_TYPE(etf)->tp_name);
        goto done;
    }
    reader r = {w->t, (const unsigned char *)PyBytes_AS_STRING(etf),
                (size_t)PyBytes_GET_SIZE(etf), 0};
    if (skip_term(&r) < 0)
        goto done;
    if (r.pos != r.len) {
        PyErr_Format(PyExc_ValueError, "%s._etf has %zu bytes after its term",
                     Py_TYPE(obj)->tp_name, r.len - r.pos);
        goto done;
    }
    rc = put(w, r.buf, r.len);
done:
    Py_DECREF(etf);
    return rc;
}

/* Magnitude bytes of a big integer: SMALL_BIG_EXT or LARGE_BIG_EXT. */
static int put_big_header(writer *w, size_t n, int negative)
{
    if (n <= 255) {
        unsigned char hdr[3] = {SMALL_BIG_EXT, (unsigned char)n, (unsigned char)negative};
        return put(w, hdr, 3);
    }
    return put_tag_u32(w, LARGE_BIG_EXT, (uint32_t)n) < 0 ? -1 : put_u8(w, (unsigned)negative);
}

/* An int too big for a long long (borrowed): its two's complement bytes
 * from _PyLong_AsByteArray (no Python code runs, even for subclasses),
 * turned into sign and magnitude in place in the output buffer. */
static int encode_huge_int(writer *w, PyObject *obj)
{
    size_t bits = _PyLong_NumBits(obj); /* of the absolute value */
    if (bits == (size_t)-1 && PyErr_Occurred())
        return -1;
    size_t n = (bits + 7) / 8; /* magnitude bytes */
    if (n > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "int too large for an Erlang term");
        return -1;
    }
    int negative = _PyLong_Sign(obj) < 0;
    if (put_big_header(w, n, negative) < 0)
        return -1;
    if (pyx_buf_reserve(w->out, n + 1) < 0) { /* +1: room for the sign bit */
        PyErr_NoMemory();
        return -1;
    }
    unsigned char *p = w->out->data + w->out->len;
#if PY_VERSION_HEX >= 0x030D0000
    int rc = _PyLong_AsByteArray((PyLongObject *)obj, p, n + 1, 1, 1, 1);
#else
    int rc = _PyLong_AsByteArray((PyLongObject *)obj, p, n + 1, 1, 1);
#endif
    if (rc < 0)
        return -1;
    if (negative) { /* magnitude = ~v + 1 */
        unsigned carry = 1;
        for (size_t i = 0; i < n; i++) {
            unsigned v = (unsigned)(unsigned char)~p[i] + carry;
            p[i] = (unsigned char)v;
            carry = v >> 8;
        }
    }
    w->out->len += n; /* drops the sign byte */
    return 0;
}

/* An int or int subclass other than bool (borrowed). */
static int encode_int(writer *w, PyObject *obj)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && !overflow && PyErr_Occurred())
        return -1;
    if (overflow)
        return encode_huge_int(w, obj);
    if (v >= 0 && v <= 255) {
        unsigned char b[2] = {SMALL_INTEGER_EXT, (unsigned char)v};
        return put(w, b, 2);
    }
    if (v >= INT32_MIN && v <= INT32_MAX)
        return put_tag_u32(w, INTEGER_EXT, (uint32_t)(int32_t)v);
    unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    unsigned char digits[8];
    size_t n = 0;
    for (; mag != 0; mag >>= 8)
        digits[n++] = (unsigned char)mag;
    return put_big_header(w, n, v < 0) < 0 ? -1 : put(w, digits, n);
}

/* A float (borrowed): NEW_FLOAT_EXT, or an atom for what Erlang floats
 * cannot be. */
static int encode_float(writer *w, PyObject *obj)
{
    double d = PyFloat_AS_DOUBLE(obj);
    if (isnan(d) || isinf(d)) {
        w->ambiguous++;
        return put_atom_cstr(w, isnan(d) ? "nan" : d > 0 ? "infinity" : "neg_infinity");
    }
    unsigned char b[9] = {NEW_FLOAT_EXT};
    if (PyFloat_Pack8(d, (char *)b + 1, 0) < 0)
        return -1;
    return put(w, b, 9);
}

/* A binary from n bytes. */
static int put_binary(writer *w, const void *p, Py_ssize_t n)
{
    if (fits_u32(n, "binary") < 0 || put_tag_u32(w, BINARY_EXT, (uint32_t)n) < 0)
        return -1;
    return put(w, p, (size_t)n);
}

/* str (borrowed) -> binary of its UTF-8. Lone surrogates give
 * UnicodeEncodeError. */
static int encode_str(writer *w, PyObject *obj)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
    return s == NULL ? -1 : put_binary(w, s, n);
}

/* bytes, bytearray, memoryview (borrowed) -> binary. A memoryview must
 * be contiguous; its raw bytes are written whatever its format. */
static int encode_bytes_like(writer *w, PyObject *obj)
{
    if (PyBytes_Check(obj))
        return put_binary(w, PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj));
    if (PyByteArray_Check(obj))
        return put_binary(w, PyByteArray_AS_STRING(obj), PyByteArray_GET_SIZE(obj));
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return -1;
    int rc = put_binary(w, view.buf, view.len);
    PyBuffer_Release(&view);
    return rc;
}

/* A list (borrowed). Each item is held while it is converted; the list
 * is not expected to change meanwhile (only an `_etf` attribute getter
 * could run Python code), and if it does the result is RuntimeError,
 * not a wrong term. */
static int encode_list(writer *w, PyObject *obj)
{
    Py_ssize_t n = PyList_GET_SIZE(obj);
    if (n == 0)
        return put_u8(w, NIL_EXT);
    if (fits_u32(n, "list") < 0 || put_tag_u32(w, LIST_EXT, (uint32_t)n) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_SIZE(obj) != n)
            break;
        PyObject *item = PyList_GET_ITEM(obj, i);
        Py_INCREF(item);
        int rc = encode(w, item);
        Py_DECREF(item);
        if (rc < 0)
            return -1;
    }
    if (PyList_GET_SIZE(obj) != n) {
        PyErr_SetString(PyExc_RuntimeError, "list changed size during conversion");
        return -1;
    }
    return put_u8(w, NIL_EXT);
}

/* A tuple (borrowed; its items are borrowed from it). */
static int encode_tuple(writer *w, PyObject *obj)
{
    Py_ssize_t n = PyTuple_GET_SIZE(obj);
    int rc;
    if (n <= 255) {
        unsigned char hdr[2] = {SMALL_TUPLE_EXT, (unsigned char)n};
        rc = put(w, hdr, 2);
    } else {
        rc = fits_u32(n, "tuple") < 0 ? -1 : put_tag_u32(w, LARGE_TUPLE_EXT, (uint32_t)n);
    }
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++)
        rc = encode(w, PyTuple_GET_ITEM(obj, i));
    return rc;
}

/* Where one encoded key lies in the output: start is an offset while
 * the output may still move, p is set once it no longer will. */
typedef struct {
    size_t start, len;
    const unsigned char *p;
} span;

static int compare_spans(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->p, y->p, x->len);
}

/* Whether two of the n keys at spans encode to the same term. Sorts
 * spans. */
static int has_duplicate_key(const unsigned char *base, span *spans, size_t n)
{
    for (size_t i = 0; i < n; i++)
        spans[i].p = base + spans[i].start;
    qsort(spans, n, sizeof *spans, compare_spans);
    for (size_t i = 1; i < n; i++)
        if (compare_spans(&spans[i - 1], &spans[i]) == 0)
            return 1;
    return 0;
}

/* A dict (borrowed) -> map. Keys and values are held while converted.
 * Distinct keys that give the same Erlang term ("a" and b"a", None and
 * Atom("none"), two nans) would make a map binary_to_term refuses:
 * ValueError instead. */
static int encode_dict(writer *w, PyObject *obj)
{
    Py_ssize_t n = PyDict_GET_SIZE(obj);
    if (fits_u32(n, "dict") < 0 || put_tag_u32(w, MAP_EXT, (uint32_t)n) < 0)
        return -1;
    span *spans = n > 1 ? PyMem_Malloc((size_t)n * sizeof *spans) : NULL;
    if (n > 1 && spans == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t ambiguous_keys = 0;
    Py_ssize_t pos = 0, count = 0;
    PyObject *key, *value; /* borrowed from the dict, held while used */
    int rc = 0;
    while (rc == 0 && PyDict_GET_SIZE(obj) == n && PyDict_Next(obj, &pos, &key, &value)) {
        if (count == n) {
            count++; /* reported below */
            break;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        size_t start = w->out->len, before = w->ambiguous;
        rc = encode(w, key);
        if (spans != NULL)
            spans[count] = (span){start, w->out->len - start, NULL};
        ambiguous_keys += w->ambiguous - before;
        if (rc == 0)
            rc = encode(w, value);
        Py_DECREF(key);
        Py_DECREF(value);
        count++;
    }
    if (rc == 0 && (count != n || PyDict_GET_SIZE(obj) != n)) {
        PyErr_SetString(PyExc_RuntimeError, "dict changed size during conversion");
        rc = -1;
    }
    if (rc == 0 && ambiguous_keys > 0 && spans != NULL &&
        has_duplicate_key(w->out->data, spans, (size_t)n)) {
        PyErr_SetString(PyExc_ValueError,
                        "dict has distinct keys that convert to the same Erlang term");
        rc = -1;
    }
    PyMem_Free(spans);
    return rc;
}

/* Lists, tuples and dicts, one recursion level each. */
static int encode_container(writer *w, PyObject *obj)
{
    if (Py_EnterRecursiveCall(ENCODE_WHERE))
        return -1;
    int rc = PyList_Check(obj) ? encode_list(w, obj)
             : PyTuple_Check(obj) ? encode_tuple(w, obj)
                                  : encode_dict(w, obj);
    Py_LeaveRecursiveCall();
    return rc;
}

static int is_instance(PyObject *obj, PyObject *cls)
{
    return cls != NULL && PyObject_TypeCheck(obj, (PyTypeObject *)cls);
}

/* The atom Python's None becomes: `none' (as the NIF) or `nil' (Elixir
 * apps), set once by --none-as before any interpreter runs. */
static const char *none_atom = "none";

void pyx_set_none_as_nil(int nil) { none_atom = nil ? "nil" : "none"; }

/* Appends the term for obj (borrowed). The order of the checks matters:
 * bool before int, Atom before str. */
static int encode(writer *w, PyObject *obj)
{
    const pyx_types *t = w->t;
    if (obj == Py_True || obj == Py_False)
        return put_atom_cstr(w, obj == Py_True ? "true" : "false");
    if (obj == Py_None)
        return put_atom_cstr(w, none_atom);
    if (is_instance(obj, t->atom_type))
        return encode_atom(w, obj);
    if (is_instance(obj, t->pid_type) || is_instance(obj, t->ref_type) ||
        is_instance(obj, t->opaque_type)) {
        w->ambiguous++;
        return encode_term_object(w, obj);
    }
    if (!PyUnicode_CheckExact(obj) && !PyLong_CheckExact(obj) && !PyFloat_CheckExact(obj) &&
        !PyTuple_CheckExact(obj))
        w->ambiguous++; /* a subclass, bytes-like, or no possible key */
    if (PyLong_Check(obj))
        return encode_int(w, obj);
    if (PyFloat_Check(obj))
        return encode_float(w, obj);
    if (PyUnicode_Check(obj))
        return encode_str(w, obj);
    if (PyBytes_Check(obj) || PyByteArray_Check(obj) || PyMemoryView_Check(obj))
        return encode_bytes_like(w, obj);
    if (PyList_Check(obj) || PyTuple_Check(obj) || PyDict_Check(obj))
        return encode_container(w, obj);
    PyErr_Format(PyExc_TypeError, "cannot convert '%.200s' object to an Erlang term",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

int pyx_to_etf(const pyx_types *t, PyObject *obj, pyx_buf *out)
{
    writer w = {t, out, 0};
    return encode(&w, obj);
}
