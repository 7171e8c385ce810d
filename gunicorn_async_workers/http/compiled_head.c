/* compiled_head: one call that reads the usual HTTP/1.x request head, or declines it.
 *
 * `scan(data, limit_line, limit_fields, limit_field_size, decline)` looks at the start of
 * `data` for a whole request head in the plainest form RFC 9112 allows, and returns
 *
 *     (end, method, target, http_version, headers, host, keep_alive, content_length)
 *
 * where `end` is the offset just past the head's blank line, `headers` the list of
 * (lower-cased name, value) pairs with the value's surrounding whitespace removed, `host`
 * the Host value or None, and `content_length` an int or None. It returns None whenever
 * the head is anything but plain, and the caller then reads it the long way (llhttp and
 * the shared header policy), which gives every refusal its status and message. So this
 * module never refuses a request: everything it accepts, the long way accepts with the
 * same result (tests/unit/test_compiled_head.py holds the two to that), and everything
 * else it declines:
 *
 *   - a head not yet whole, or one that starts with an empty line;
 *   - a method other than GET HEAD POST PUT DELETE OPTIONS PATCH;
 *   - a target that is not origin-form made of RFC 3986 path and query characters;
 *   - a version other than HTTP/1.1 and HTTP/1.0, a request line over `limit_line`;
 *   - a field name that is not a token or holds '_', a value with a control character or
 *     a byte over 0x7e, bare CR or LF, an obsolete line fold, a space before the colon;
 *   - more than `limit_fields` fields, a field over `limit_field_size` as the policy counts;
 *   - a repeated Host or Content-Type, a Content-Length that is not plain digits (up to 18)
 *     or comes twice, a Connection that is not exactly `close` or `keep-alive`, an Upgrade,
 *     and any name in `decline` (the fields the header policy judges: Transfer-Encoding,
 *     Expect, TE, trusted scheme headers...).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *methods[7];
static PyObject *version_11;
static PyObject *version_10;

static const char *const method_names[7] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};

/* RFC 9110 5.6.2 tchar, less '_' (Gunicorn's header_map judges underscores). */
static unsigned char name_char[256];
/* RFC 3986 pchar, '/' and '?': unreserved, pct-encoded's '%', sub-delims, ':' and '@'. */
static unsigned char target_char[256];

static void
fill_tables(void)
{
    const char *tchar = "!#$%&'*+-.^`|~";
    const char *pchar = "-._~%!$&'()*+,;=:@/?";
    for (int c = 0; c < 256; c++) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        name_char[c] = (unsigned char)(alnum || (c && strchr(tchar, c) != NULL));
        target_char[c] = (unsigned char)(alnum || (c && strchr(pchar, c) != NULL));
    }
}

static int
lower_equals(const char *p, Py_ssize_t n, const char *lower)
{
    Py_ssize_t i = 0;
    for (; i < n && lower[i]; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c + 32);
        }
        if (c != lower[i]) {
            return 0;
        }
    }
    return i == n && lower[i] == '\0';
}

static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5 || !PyBytes_CheckExact(args[0]) || !PyAnySet_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "scan(data: bytes, limit_line, limit_fields, limit_field_size, "
                        "decline: frozenset)");
        return NULL;
    }
    Py_ssize_t limit_line = PyLong_AsSsize_t(args[1]);
    Py_ssize_t limit_fields = PyLong_AsSsize_t(args[2]);
    Py_ssize_t limit_field_size = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *decline = args[4];
    const char *data = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);

    /* The request line: method SP target SP version CRLF. */
    const char *p = data;
    const char *stop = data + size;
    int method = -1;
    for (int m = 0; m < 7; m++) {
        size_t n = strlen(method_names[m]);
        if ((Py_ssize_t)n < size && memcmp(p, method_names[m], n) == 0 && p[n] == ' ') {
            method = m;
            p += n + 1;
            break;
        }
    }
    if (method < 0 || p >= stop || *p != '/') {
        Py_RETURN_NONE;
    }
    const char *target = p;
    while (p < stop && target_char[(unsigned char)*p]) {
        p++;
    }
    Py_ssize_t target_size = p - target;
    if (stop - p < 11 || memcmp(p, " HTTP/1.", 8) != 0 || (p[8] != '1' && p[8] != '0')
        || p[9] != '\r' || p[10] != '\n') {
        Py_RETURN_NONE;
    }
    int http_11 = p[8] == '1';
    if ((Py_ssize_t)strlen(method_names[method]) + target_size + 10 > limit_line) {
        Py_RETURN_NONE;
    }
    p += 11;

    /* The fields, up to the blank line. */
    PyObject *headers = PyList_New(0);
    if (headers == NULL) {
        return NULL;
    }
    PyObject *host = NULL;          /* borrowed from `headers` */
    PyObject *content_length = NULL; /* owned */
    int content_type_seen = 0;
    int connection = 0;  /* 0: none, 1: close, 2: keep-alive */
    for (;;) {
        if (stop - p < 2) {
            goto declined;  /* the head is not whole yet */
        }
        if (p[0] == '\r' && p[1] == '\n') {
            p += 2;
            break;
        }
        const char *name = p;
        while (p < stop && name_char[(unsigned char)*p]) {
            p++;
        }
        Py_ssize_t name_size = p - name;
        if (name_size == 0 || p >= stop || *p != ':') {
            goto declined;
        }
        p++;
        while (p < stop && (*p == ' ' || *p == '\t')) {
            p++;
        }
        const char *value = p;
        const char *value_end = p;  /* past the last character that is not whitespace */
        while (p < stop) {
            unsigned char c = (unsigned char)*p;
            if (c > 0x20 && c < 0x7f) {
                value_end = ++p;
            } else if (c == ' ' || c == '\t') {
                p++;
            } else {
                break;
            }
        }
        if (stop - p < 2 || p[0] != '\r' || p[1] != '\n') {
            goto declined;  /* not whole yet, or a character the long way judges */
        }
        Py_ssize_t value_size = value_end - value;
        /* The policy's count: name, value, ": " and CRLF, the value with its trailing
           whitespace (llhttp's value keeps it; the policy counts before stripping). */
        if (PyList_GET_SIZE(headers) >= limit_fields
            || name_size + (p - value) + 4 > limit_field_size) {
            goto declined;
        }
        p += 2;
        PyObject *lowered = PyBytes_FromStringAndSize(NULL, name_size);
        if (lowered == NULL) {
            goto failed;
        }
        char *out = PyBytes_AS_STRING(lowered);
        for (Py_ssize_t i = 0; i < name_size; i++) {
            char c = name[i];
            out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        int special = 0;  /* 1 host, 2 content-length, 3 connection */
        switch (name_size) {
        case 4:
            special = memcmp(out, "host", 4) == 0;
            break;
        case 7:
            if (memcmp(out, "upgrade", 7) == 0) {
                Py_DECREF(lowered);
                goto declined;
            }
            break;
        case 10:
            special = memcmp(out, "connection", 10) == 0 ? 3 : 0;
            break;
        case 12:
            if (memcmp(out, "content-type", 12) == 0) {
                if (content_type_seen) {
                    Py_DECREF(lowered);
                    goto declined;
                }
                content_type_seen = 1;
            }
            break;
        case 14:
            special = memcmp(out, "content-length", 14) == 0 ? 2 : 0;
            break;
        }
        if (special == 0) {
            int listed = PySet_Contains(decline, lowered);
            if (listed != 0) {
                Py_DECREF(lowered);
                if (listed < 0) {
                    goto failed;
                }
                goto declined;
            }
        } else if (special == 1 && host != NULL) {
            Py_DECREF(lowered);
            goto declined;
        } else if (special == 2) {
            if (content_length != NULL || value_size == 0 || value_size > 18) {
                Py_DECREF(lowered);
                goto declined;
            }
            long long length = 0;
            for (Py_ssize_t i = 0; i < value_size; i++) {
                if (value[i] < '0' || value[i] > '9') {
                    Py_DECREF(lowered);
                    goto declined;
                }
                length = length * 10 + (value[i] - '0');
            }
            content_length = PyLong_FromLongLong(length);
            if (content_length == NULL) {
                Py_DECREF(lowered);
                goto failed;
            }
        } else if (special == 3) {
            if (connection != 0) {
                Py_DECREF(lowered);
                goto declined;
            }
            if (lower_equals(value, value_size, "close")) {
                connection = 1;
            } else if (lower_equals(value, value_size, "keep-alive")) {
                connection = 2;
            } else {
                Py_DECREF(lowered);
                goto declined;
            }
        }
        PyObject *text = PyBytes_FromStringAndSize(value, value_size);
        if (text == NULL) {
            Py_DECREF(lowered);
            goto failed;
        }
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(lowered);
            Py_DECREF(text);
            goto failed;
        }
        PyTuple_SET_ITEM(pair, 0, lowered);
        PyTuple_SET_ITEM(pair, 1, text);
        int appended = PyList_Append(headers, pair);
        Py_DECREF(pair);
        if (appended < 0) {
            goto failed;
        }
        if (special == 1) {
            host = text;
        }
    }

    PyObject *target_bytes = PyBytes_FromStringAndSize(target, target_size);
    if (target_bytes == NULL) {
        goto failed;
    }
    int keep_alive = http_11 ? connection != 1 : connection == 2;
    PyObject *result = Py_BuildValue(
        "(nOOONOON)", (Py_ssize_t)(p - data), methods[method], target_bytes,
        http_11 ? version_11 : version_10, headers, host ? host : Py_None,
        keep_alive ? Py_True : Py_False, content_length ? content_length : Py_NewRef(Py_None));
    Py_DECREF(target_bytes);
    return result;

declined:
    Py_DECREF(headers);
    Py_XDECREF(content_length);
    Py_RETURN_NONE;

failed:
    Py_DECREF(headers);
    Py_XDECREF(content_length);
    return NULL;
}

static PyMethodDef compiled_head_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(data, limit_line, limit_fields, limit_field_size, decline) -> tuple | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef compiled_head_module = {
    PyModuleDef_HEAD_INIT, "compiled_head",
    "Reads the usual HTTP/1.x request head in one call, or declines it.", -1,
    compiled_head_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit_compiled_head(void)
{
    fill_tables();
    for (int m = 0; m < 7; m++) {
        methods[m] = PyUnicode_InternFromString(method_names[m]);
        if (methods[m] == NULL) {
            return NULL;
        }
    }
    version_11 = PyUnicode_InternFromString("1.1");
    version_10 = PyUnicode_InternFromString("1.0");
    if (version_11 == NULL || version_10 == NULL) {
        return NULL;
    }
    return PyModule_Create(&compiled_head_module);
}
