/* The common OTLP trace request read in C: spans become the mapper's raw rows and attribute
 * dicts without a message object or a Python call per attribute.
 *
 * decode(data) -> list of (resource attributes, [(scope name, scope version, [span, ...])])
 * where span is (raw row dict, attributes dict, kind, events, offset, length), events a list
 * of (name, time_unix_nano, attributes dict, dropped_attributes_count), and data[offset:offset
 * + length] the span's own serialized bytes. A span holding anything this reader does not
 * handle exactly as the official parser would (links, unknown or repeated singular fields, a
 * bad id, a value kind other than string, bool, int, double or a flat array of those,
 * malformed bytes, text that is not UTF-8) comes as (None, None, 0, None, offset, length):
 * the mapper parses those bytes with the message classes. The whole result is None when the
 * request, a resource or a scope holds such a thing: then the request is read the usual way
 * (wire.parse), which also refuses what is malformed, with its own message.
 *
 * The raw row has the keys and values of mapping.span.raw_fields, in its order. Attribute maps
 * keep the last value of a repeated key, as upb's maps and the SDKs do.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { FAIL = -1, OTHER = 0, OK = 1 };  /* Python error set / not for this reader / done */
enum { VARINT = 0, I64 = 1, LEN = 2, I32 = 5 };

typedef struct {
    const uint8_t *p, *end;
    int bad;  /* stopped on malformed bytes, not at the end */
} Reader;

typedef struct {
    uint32_t field, wire;
    uint64_t num;            /* VARINT, I64, I32 */
    const uint8_t *data;     /* LEN */
    Py_ssize_t len;
} Field;

static PyObject *KINDS[6], *STATUS[3];
static PyObject *K_TRACE_ID, *K_SPAN_ID, *K_PARENT, *K_TRACE_STATE, *K_NAME, *K_SPAN_KIND, *K_START,
    *K_END, *K_DURATION, *K_STATUS, *K_STATUS_MESSAGE, *K_SCOPE_NAME, *K_SCOPE_VERSION;

static int varint(Reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return 0;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* The next field; 0 at the end, or on anything malformed (then r->bad is set). */
static int next(Reader *r, Field *f) {
    uint64_t tag;
    if (r->p >= r->end)
        return 0;
    r->bad = 1;
    if (!varint(r, &tag) || tag > UINT32_MAX || (tag >> 3) == 0)
        return 0;
    f->field = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    switch (f->wire) {
    case VARINT:
        if (!varint(r, &f->num))
            return 0;
        break;
    case I64:
        if (r->end - r->p < 8)
            return 0;
        memcpy(&f->num, r->p, 8);  /* little-endian machines only: checked at import */
        r->p += 8;
        break;
    case I32: {
        uint32_t v;
        if (r->end - r->p < 4)
            return 0;
        memcpy(&v, r->p, 4);
        f->num = v;
        r->p += 4;
        break;
    }
    case LEN: {
        uint64_t n;
        if (!varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return 0;
        f->data = r->p;
        f->len = (Py_ssize_t)n;
        r->p += n;
        break;
    }
    default:
        return 0;  /* groups and invalid wire types: the usual reader decides */
    }
    r->bad = 0;
    return 1;
}

#define DONE(r) (!(r)->bad && (r)->p == (r)->end)

/* Strict UTF-8 to str; NULL without an error set when the bytes are not UTF-8. */
static PyObject *text(const uint8_t *s, Py_ssize_t n) {
    PyObject *o = PyUnicode_DecodeUTF8((const char *)s, n, NULL);
    if (o == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        PyErr_Clear();
    return o;
}

static int utf8_ok(const uint8_t *s, Py_ssize_t n, int *ok) {
    PyObject *o = text(s, n);
    if (o == NULL && PyErr_Occurred())
        return FAIL;
    *ok = o != NULL;
    Py_XDECREF(o);
    return OK;
}

static PyObject *hex(const uint8_t *s, Py_ssize_t n) {
    static const char digits[] = "0123456789abcdef";
    PyObject *o = PyUnicode_New(2 * n, 127);
    if (o == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(o);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
    return o;
}

static int all_zero(const uint8_t *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i])
            return 0;
    return 1;
}

/* One serialized AnyValue of a scalar kind (or, when `arrays`, a flat array of them). */
static int any_value(const uint8_t *s, Py_ssize_t n, int arrays, PyObject **out) {
    Reader r = {s, s + n, 0};
    Field f;
    if (!next(&r, &f) || !DONE(&r))
        return OTHER;  /* no value, two values, or malformed */
    PyObject *v = NULL;
    if (f.field == 1 && f.wire == LEN) {
        v = text(f.data, f.len);
        if (v == NULL)
            return PyErr_Occurred() ? FAIL : OTHER;
    } else if (f.field == 2 && f.wire == VARINT) {
        v = PyBool_FromLong(f.num != 0);
    } else if (f.field == 3 && f.wire == VARINT) {
        v = PyLong_FromLongLong((long long)(int64_t)f.num);
    } else if (f.field == 4 && f.wire == I64) {
        double d;
        memcpy(&d, &f.num, 8);
        v = PyFloat_FromDouble(d);
    } else if (f.field == 5 && f.wire == LEN && arrays) {
        v = PyList_New(0);
        if (v == NULL)
            return FAIL;
        Reader a = {f.data, f.data + f.len, 0};
        Field item;
        while (next(&a, &item)) {
            PyObject *x;
            int rc = item.field == 1 && item.wire == LEN ? any_value(item.data, item.len, 0, &x) : OTHER;
            if (rc != OK || PyList_Append(v, x) < 0) {
                if (rc == OK)
                    Py_DECREF(x);
                Py_DECREF(v);
                return rc == OK ? FAIL : rc;
            }
            Py_DECREF(x);
        }
        if (!DONE(&a)) {
            Py_DECREF(v);
            return OTHER;
        }
    } else {
        return OTHER;
    }
    if (v == NULL)
        return FAIL;
    *out = v;
    return OK;
}

/* Attribute keys repeat on nearly every span: the str made for a key is kept in a small
 * direct-mapped cache by its bytes, so a key seen before costs a hash and a compare, and its
 * str keeps its hash for the dict lookups that follow. (Not interned: from Python 3.12 on,
 * interned strings are never freed, and keys come from clients.) Bounded: KEY_SLOTS entries
 * of at most KEY_BYTES bytes; a colliding key replaces the one in its slot. */
#define KEY_SLOTS 4096
#define KEY_BYTES 96
static struct {
    uint64_t hash;
    Py_ssize_t len;
    PyObject *text;
    uint8_t bytes[KEY_BYTES];
} keys[KEY_SLOTS];

static PyObject *key_text(const uint8_t *s, Py_ssize_t n) {
    if (n > KEY_BYTES)
        return text(s, n);
    uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    size_t slot = (size_t)(h ^ (h >> 29)) & (KEY_SLOTS - 1);
    if (keys[slot].text != NULL && keys[slot].hash == h && keys[slot].len == n && !memcmp(keys[slot].bytes, s, n)) {
        Py_INCREF(keys[slot].text);
        return keys[slot].text;
    }
    PyObject *o = text(s, n);
    if (o == NULL || PyObject_Hash(o) == -1)  /* (a str's hash is kept in it) */
        return o;
    /* The slot is emptied while it changes and the old str released last, so no other thread
     * (with no mapping workers, gRPC's threads read requests) can see a half-written entry. */
    PyObject *old = keys[slot].text;
    keys[slot].text = NULL;
    keys[slot].hash = h;
    keys[slot].len = n;
    memcpy(keys[slot].bytes, s, n);
    keys[slot].text = Py_NewRef(o);
    Py_XDECREF(old);
    return o;
}

/* One KeyValue (a map entry to upb) into `attrs`. */
static int key_value(const uint8_t *s, Py_ssize_t n, PyObject *attrs) {
    Reader r = {s, s + n, 0};
    Field f;
    const uint8_t *key = NULL, *value = NULL;
    Py_ssize_t key_len = 0, value_len = 0;
    while (next(&r, &f)) {
        if (f.wire != LEN || (f.field != 1 && f.field != 2))
            return OTHER;
        if (f.field == 1) {
            if (key != NULL)
                return OTHER;
            key = f.data;
            key_len = f.len;
        } else {
            if (value != NULL)
                return OTHER;
            value = f.data;
            value_len = f.len;
        }
    }
    if (!DONE(&r) || key == NULL || value == NULL)
        return OTHER;
    PyObject *k = key_text(key, key_len);
    if (k == NULL)
        return PyErr_Occurred() ? FAIL : OTHER;
    PyObject *v;
    int rc = any_value(value, value_len, 1, &v);
    if (rc == OK) {
        rc = PyDict_SetItem(attrs, k, v) < 0 ? FAIL : OK;
        Py_DECREF(v);
    }
    Py_DECREF(k);
    return rc;
}

static int set_steal(PyObject *d, PyObject *k, PyObject *v) {
    if (v == NULL)
        return FAIL;
    int rc = PyDict_SetItem(d, k, v);
    Py_DECREF(v);
    return rc < 0 ? FAIL : OK;
}

/* None for an empty string, else `text` (NULL without an error: not UTF-8). */
static PyObject *text_or_none(const uint8_t *s, Py_ssize_t n) {
    if (n == 0)
        Py_RETURN_NONE;
    return text(s, n);
}

/* One Span.Event appended to `*events` (made on the first) as (name, time_unix_nano,
 * attributes, dropped_attributes_count): mapping.span.read_events. */
static int event(const uint8_t *s, Py_ssize_t n, PyObject **events) {
    Reader r = {s, s + n, 0};
    Field f;
    const uint8_t *name = NULL;
    Py_ssize_t name_len = 0;
    uint64_t time = 0, dropped = 0;
    uint32_t seen = 0;
    PyObject *attrs = PyDict_New();
    if (attrs == NULL)
        return FAIL;
    int rc = OK;
    while (rc == OK && next(&r, &f)) {
        if (f.field <= 4 && f.field != 3) {  /* singular fields, each once */
            if (seen & (1u << f.field)) {
                rc = OTHER;
                break;
            }
            seen |= 1u << f.field;
        }
        if (f.field == 1 && f.wire == I64)
            time = f.num;
        else if (f.field == 2 && f.wire == LEN) {
            name = f.data;
            name_len = f.len;
        } else if (f.field == 3 && f.wire == LEN)
            rc = key_value(f.data, f.len, attrs);
        else if (f.field == 4 && f.wire == VARINT && f.num <= UINT32_MAX)
            dropped = f.num;
        else
            rc = OTHER;
    }
    if (rc == OK && !DONE(&r))
        rc = OTHER;
    PyObject *t = NULL;
    if (rc == OK) {
        PyObject *text_name = name_len ? text(name, name_len) : PyUnicode_New(0, 0);
        if (text_name == NULL)
            rc = PyErr_Occurred() ? FAIL : OTHER;
        else if ((t = Py_BuildValue("(NKOK)", text_name, (unsigned long long)time, attrs,
                                    (unsigned long long)dropped)) == NULL)
            rc = FAIL;
    }
    Py_DECREF(attrs);
    if (rc == OK && *events == NULL && (*events = PyList_New(0)) == NULL)
        rc = FAIL;
    if (rc == OK && PyList_Append(*events, t) < 0)
        rc = FAIL;
    Py_XDECREF(t);
    return rc;
}

/* A Span: its raw row (mapping.span.raw_fields), attributes and events. */
static int span(const uint8_t *s, Py_ssize_t n, PyObject *scope_name, PyObject *scope_version,
                PyObject *base, PyObject **row_out, PyObject **attrs_out, PyObject **events_out, long *kind_out) {
    Reader r = {s, s + n, 0};
    Field f;
    const uint8_t *ids[3] = {NULL, NULL, NULL}, *trace_state = NULL, *name = NULL, *message = NULL;
    Py_ssize_t ids_len[3] = {0, 0, 0}, trace_state_len = 0, name_len = 0, message_len = 0;
    uint64_t kind = 0, start = 0, end = 0, code = 0;
    uint32_t seen = 0;
    PyObject *attrs = PyDict_New(), *events = NULL;
    if (attrs == NULL)
        return FAIL;
    int rc = OK;
    while (rc == OK && next(&r, &f)) {
        uint32_t bit = f.field < 32 ? 1u << f.field : 0;
        if (f.field <= 8 || f.field == 15) {  /* singular fields: a repeated one is merged by protobuf */
            if (seen & bit) {
                rc = OTHER;
                break;
            }
            seen |= bit;
        }
        switch (f.field) {
        case 1: case 2: case 4:  /* trace_id, span_id, parent_span_id */
            if (f.wire != LEN)
                rc = OTHER;
            ids[f.field == 4 ? 2 : f.field - 1] = f.data;
            ids_len[f.field == 4 ? 2 : f.field - 1] = f.len;
            break;
        case 3:
            rc = f.wire == LEN ? OK : OTHER;
            trace_state = f.data;
            trace_state_len = f.len;
            break;
        case 5:
            rc = f.wire == LEN ? OK : OTHER;
            name = f.data;
            name_len = f.len;
            break;
        case 6:
            rc = f.wire == VARINT && f.num <= 5 ? OK : OTHER;
            kind = f.num;
            break;
        case 7: case 8:
            rc = f.wire == I64 ? OK : OTHER;
            *(f.field == 7 ? &start : &end) = f.num;
            break;
        case 9:
            rc = f.wire == LEN ? key_value(f.data, f.len, attrs) : OTHER;
            break;
        case 11:
            rc = f.wire == LEN ? event(f.data, f.len, &events) : OTHER;
            break;
        case 10: case 12: case 14:  /* dropped counts: not mapped */
            rc = f.wire == VARINT ? OK : OTHER;
            break;
        case 16:  /* flags: not mapped */
            rc = f.wire == I32 ? OK : OTHER;
            break;
        case 15: {
            if (f.wire != LEN) {
                rc = OTHER;
                break;
            }
            Reader st = {f.data, f.data + f.len, 0};
            Field g;
            uint32_t status_seen = 0;
            while (rc == OK && next(&st, &g)) {
                if (g.field == 2 && g.wire == LEN && !(status_seen & 4)) {
                    message = g.data;
                    message_len = g.len;
                } else if (g.field == 3 && g.wire == VARINT && g.num <= 2 && !(status_seen & 8)) {
                    code = g.num;
                } else {
                    rc = OTHER;
                }
                if (g.field < 32)
                    status_seen |= 1u << g.field;
            }
            if (rc == OK && !DONE(&st))
                rc = OTHER;
            break;
        }
        default:  /* links, fields of a newer OTLP: the usual reader */
            rc = OTHER;
        }
    }
    if (rc == OK && !DONE(&r))
        rc = OTHER;
    if (rc == OK && (ids_len[0] != 16 || all_zero(ids[0], 16) || ids_len[1] != 8 || all_zero(ids[1], 8)
                     || (ids_len[2] != 0 && (ids_len[2] != 8 || all_zero(ids[2], 8)))))
        rc = OTHER;  /* rejected spans are reported by the usual reader */
    if (rc != OK) {
        Py_DECREF(attrs);
        Py_XDECREF(events);
        return rc;
    }
    PyObject *row = PyDict_Copy(base);  /* a template with every key, in raw_fields' order */
    if (row == NULL) {
        Py_DECREF(attrs);
        Py_XDECREF(events);
        return FAIL;
    }
    if (set_steal(row, K_TRACE_ID, hex(ids[0], 16)) != OK || set_steal(row, K_SPAN_ID, hex(ids[1], 8)) != OK
        || (ids_len[2] && set_steal(row, K_PARENT, hex(ids[2], 8)) != OK)
        || set_steal(row, K_TRACE_STATE, text_or_none(trace_state, trace_state_len)) != OK
        || set_steal(row, K_NAME, name_len ? text(name, name_len) : PyUnicode_New(0, 0)) != OK
        || PyDict_SetItem(row, K_SPAN_KIND, KINDS[kind]) < 0
        || (start && set_steal(row, K_START, PyLong_FromUnsignedLongLong(start / 1000)) != OK)
        || (end && set_steal(row, K_END, PyLong_FromUnsignedLongLong(end / 1000)) != OK)
        || (start && end >= start && set_steal(row, K_DURATION, PyFloat_FromDouble((double)(end - start) / 1e6)) != OK)
        || PyDict_SetItem(row, K_STATUS, STATUS[code]) < 0
        || set_steal(row, K_STATUS_MESSAGE, text_or_none(message, message_len)) != OK
        || PyDict_SetItem(row, K_SCOPE_NAME, scope_name) < 0 || PyDict_SetItem(row, K_SCOPE_VERSION, scope_version) < 0) {
        Py_DECREF(row);
        Py_DECREF(attrs);
        Py_XDECREF(events);
        return PyErr_Occurred() ? FAIL : OTHER;  /* no error: a string that is not UTF-8 */
    }
    if (events == NULL)
        events = PyList_New(0);
    if (events == NULL) {
        Py_DECREF(row);
        Py_DECREF(attrs);
        return FAIL;
    }
    *row_out = row;
    *attrs_out = attrs;
    *events_out = events;
    *kind_out = (long)kind;
    return OK;
}

static PyObject *new_base(PyObject *keys[], int n) {
    PyObject *d = PyDict_New();
    for (int i = 0; d != NULL && i < n; i++)
        if (PyDict_SetItem(d, keys[i], Py_None) < 0)
            Py_CLEAR(d);
    return d;
}

/* A ScopeSpans: its scope first, wherever it is, then its spans. */
static int scope_spans(const uint8_t *data, const uint8_t *s, Py_ssize_t n, PyObject *base, PyObject *out) {
    Reader r = {s, s + n, 0};
    Field f;
    const uint8_t *scope = NULL;
    Py_ssize_t scope_len = 0;
    int ok;
    while (next(&r, &f)) {
        if (f.field == 1 && f.wire == LEN && scope == NULL) {
            scope = f.data;
            scope_len = f.len;
        } else if (f.field == 3 && f.wire == LEN) {  /* schema_url: checked, not mapped */
            if (utf8_ok(f.data, f.len, &ok) != OK)
                return FAIL;
            if (!ok)
                return OTHER;
        } else if (!(f.field == 2 && f.wire == LEN)) {
            return OTHER;
        }
    }
    if (!DONE(&r))
        return OTHER;
    const uint8_t *name = NULL, *version = NULL;
    Py_ssize_t name_len = 0, version_len = 0;
    if (scope != NULL) {
        Reader sr = {scope, scope + scope_len, 0};
        while (next(&sr, &f)) {
            if (f.field == 1 && f.wire == LEN && name == NULL) {
                name = f.data;
                name_len = f.len;
            } else if (f.field == 2 && f.wire == LEN && version == NULL) {
                version = f.data;
                version_len = f.len;
            } else if (!(f.field == 4 && f.wire == VARINT)) {  /* scope attributes: the usual reader */
                return OTHER;
            }
        }
        if (!DONE(&sr))
            return OTHER;
    }
    PyObject *scope_name = text_or_none(name, name_len);
    PyObject *scope_version = scope_name ? text_or_none(version, version_len) : NULL;
    PyObject *spans = scope_version ? PyList_New(0) : NULL;
    int rc = spans ? OK : (PyErr_Occurred() ? FAIL : OTHER);  /* no error: a name not UTF-8 */
    r.p = s;
    while (rc == OK && next(&r, &f)) {
        if (f.field != 2)
            continue;
        PyObject *row, *attrs, *events;
        long kind;
        rc = span(f.data, f.len, scope_name, scope_version, base, &row, &attrs, &events, &kind);
        if (rc == FAIL)
            break;
        PyObject *t = rc == OK
            ? Py_BuildValue("(NNlNnn)", row, attrs, kind, events, (Py_ssize_t)(f.data - data), f.len)
            : Py_BuildValue("(OOiOnn)", Py_None, Py_None, 0, Py_None, (Py_ssize_t)(f.data - data), f.len);
        rc = OK;
        if (t == NULL || PyList_Append(spans, t) < 0)
            rc = FAIL;
        Py_XDECREF(t);
    }
    if (rc == OK) {
        PyObject *t = Py_BuildValue("(OOO)", scope_name, scope_version, spans);
        if (t == NULL || PyList_Append(out, t) < 0)
            rc = FAIL;
        Py_XDECREF(t);
    }
    Py_XDECREF(scope_name);
    Py_XDECREF(scope_version);
    Py_XDECREF(spans);
    return rc;
}

static int resource_spans(const uint8_t *data, const uint8_t *s, Py_ssize_t n, PyObject *base, PyObject *out) {
    Reader r = {s, s + n, 0};
    Field f;
    PyObject *attrs = PyDict_New(), *scopes = PyList_New(0);
    int rc = attrs && scopes ? OK : FAIL, resource_seen = 0, ok;
    while (rc == OK && next(&r, &f)) {
        if (f.field == 1 && f.wire == LEN && !resource_seen) {
            resource_seen = 1;
            Reader rr = {f.data, f.data + f.len, 0};
            Field g;
            while (rc == OK && next(&rr, &g)) {
                if (g.field == 1 && g.wire == LEN)
                    rc = key_value(g.data, g.len, attrs);
                else if (!(g.field == 2 && g.wire == VARINT))  /* entity refs, newer fields */
                    rc = OTHER;
            }
            if (rc == OK && !DONE(&rr))
                rc = OTHER;
        } else if (f.field == 2 && f.wire == LEN) {
            rc = scope_spans(data, f.data, f.len, base, scopes);
        } else if (f.field == 3 && f.wire == LEN) {
            rc = utf8_ok(f.data, f.len, &ok);
            if (rc == OK && !ok)
                rc = OTHER;
        } else {
            rc = OTHER;
        }
    }
    if (rc == OK && !DONE(&r))
        rc = OTHER;
    if (rc == OK) {
        PyObject *t = Py_BuildValue("(OO)", attrs, scopes);
        if (t == NULL || PyList_Append(out, t) < 0)
            rc = FAIL;
        Py_XDECREF(t);
    }
    Py_XDECREF(attrs);
    Py_XDECREF(scopes);
    return rc;
}

static PyObject *decode(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer buf;
    if (PyObject_GetBuffer(arg, &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *data = buf.buf;
    Reader r = {data, data + buf.len, 0};
    Field f;
    PyObject *keys[] = {K_TRACE_ID, K_SPAN_ID, K_PARENT, K_TRACE_STATE, K_NAME, K_SPAN_KIND, K_START, K_END,
                        K_DURATION, K_STATUS, K_STATUS_MESSAGE, K_SCOPE_NAME, K_SCOPE_VERSION};
    PyObject *base = new_base(keys, 13), *out = PyList_New(0);
    int rc = base && out ? OK : FAIL;
    while (rc == OK && next(&r, &f))
        rc = f.field == 1 && f.wire == LEN ? resource_spans(data, f.data, f.len, base, out) : OTHER;
    if (rc == OK && !DONE(&r))
        rc = OTHER;
    PyBuffer_Release(&buf);
    Py_XDECREF(base);
    if (rc == OK)
        return out;
    Py_XDECREF(out);
    if (rc == FAIL)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_O,
     "decode(data) -> [(resource attributes, [(scope name, scope version, [(row, attributes, kind, events, "
     "offset, length)])])], or None when the request needs the full reader."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wirec", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__wirec(void) {
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe != 1) {
        PyErr_SetString(PyExc_ImportError, "_wirec reads fixed-width fields as little-endian");
        return NULL;
    }
    static const char *kinds[] = {"UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"};
    static const char *status[] = {"UNSET", "OK", "ERROR"};
    for (int i = 0; i < 6; i++)
        if ((KINDS[i] = PyUnicode_InternFromString(kinds[i])) == NULL)
            return NULL;
    for (int i = 0; i < 3; i++)
        if ((STATUS[i] = PyUnicode_InternFromString(status[i])) == NULL)
            return NULL;
    struct { PyObject **slot; const char *name; } keys[] = {
        {&K_TRACE_ID, "trace_id"}, {&K_SPAN_ID, "span_id"}, {&K_PARENT, "parent_span_id"},
        {&K_TRACE_STATE, "trace_state"}, {&K_NAME, "name"}, {&K_SPAN_KIND, "span_kind"},
        {&K_START, "start_time"}, {&K_END, "end_time"}, {&K_DURATION, "duration_ms"}, {&K_STATUS, "status"},
        {&K_STATUS_MESSAGE, "status_message"}, {&K_SCOPE_NAME, "scope_name"}, {&K_SCOPE_VERSION, "scope_version"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if ((*keys[i].slot = PyUnicode_InternFromString(keys[i].name)) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
