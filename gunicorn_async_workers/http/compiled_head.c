/* compiled_head: one call that reads the usual HTTP/1.x request head, and one that frames
 * the usual response head (`frame`, below); each declines anything else.
 *
 * `scan(data, limit_line, limit_fields, limit_field_size, decline, scheme_headers)` looks
 * at the start of `data` for a whole request head in the plainest form RFC 9112 allows,
 * and returns
 *
 *     (end, method, target, http_version, headers, host, keep_alive, content_length, scheme)
 *
 * where `end` is the offset just past the head's blank line, `headers` the list of
 * (lower-cased name, value) pairs with the value's surrounding whitespace removed, `host`
 * the Host value or None, `content_length` an int or None, and `scheme` "https" or "http"
 * as the head's scheme headers say (`scheme_headers`, name -> the value that means https,
 * given for a trusted peer: a proxy sends one with every request), or None when it has
 * none. It returns None whenever
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
 *     scheme headers that disagree, and any name in `decline` (the fields the header policy
 *     judges: Transfer-Encoding, Expect, TE...).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *methods[7];
static PyObject *version_11;
static PyObject *version_10;
static PyObject *scheme_https;
static PyObject *scheme_http;

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
    if (nargs != 6 || !PyBytes_CheckExact(args[0]) || !PyAnySet_Check(args[4])
        || !PyDict_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "scan(data: bytes, limit_line, limit_fields, limit_field_size, "
                        "decline: frozenset, scheme_headers: dict)");
        return NULL;
    }
    Py_ssize_t limit_line = PyLong_AsSsize_t(args[1]);
    Py_ssize_t limit_fields = PyLong_AsSsize_t(args[2]);
    Py_ssize_t limit_field_size = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *decline = args[4];
    /* A trusted peer's scheme headers (name -> the value that means https); empty else. */
    PyObject *scheme_headers = PyDict_GET_SIZE(args[5]) ? args[5] : NULL;
    PyObject *scheme = NULL;  /* borrowed: scheme_https or scheme_http, once one is seen */
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
        int special = 0;  /* 1 host, 2 content-length, 3 connection, 4 a scheme header */
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
        if (special == 0 && scheme_headers != NULL) {
            PyObject *https = PyDict_GetItemWithError(scheme_headers, lowered);
            if (https == NULL && PyErr_Occurred()) {
                Py_DECREF(lowered);
                goto failed;
            }
            if (https != NULL) {
                PyObject *said = PyBytes_CheckExact(https)
                    && PyBytes_GET_SIZE(https) == value_size
                    && memcmp(PyBytes_AS_STRING(https), value, (size_t)value_size) == 0
                    ? scheme_https : scheme_http;
                if (scheme != NULL && scheme != said) {
                    Py_DECREF(lowered);
                    goto declined;  /* conflicting scheme headers: the long way's 400 */
                }
                scheme = said;
                special = 4;
            }
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
        "(nOOONOONO)", (Py_ssize_t)(p - data), methods[method], target_bytes,
        http_11 ? version_11 : version_10, headers, host ? host : Py_None,
        keep_alive ? Py_True : Py_False, content_length ? content_length : Py_NewRef(Py_None),
        scheme ? scheme : Py_None);
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

/* -- The response head ---------------------------------------------------------------------
 *
 * `frame(status, line, headers, date_block, kinds, framing, head_request, http10,
 *        keep_alive, body_length)` frames the usual response head as response.py's
 * `frame_response_head` does, setting on `framing` what differs from its defaults, and
 * returns the head's bytes; or returns None, having changed nothing, for anything but the
 * usual (the caller then frames it the long way, which raises every ResponseError):
 *
 *   - a status of 204 or 304, or no cached status line (`line` not bytes);
 *   - headers that are not a list or tuple of 2-item tuples or lists of bytes (an
 *     iterator is never consumed here);
 *   - a name not yet in `kinds` (the long way validates and classifies it), or one whose
 *     kind is other than plain (0) or Content-Length (1): Transfer-Encoding, Connection,
 *     Date, Server;
 *   - a value holding CR, LF or NUL; a Content-Length that is not 1 to 18 digits, or twice.
 */

static PyObject *str_content_length;
static PyObject *str_chunked;
static PyObject *str_keep_alive;
static PyObject *str_no_body;

#define MAX_FIELDS 64

static PyObject *
frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "frame() takes 10 arguments");
        return NULL;
    }
    PyObject *line = args[1], *headers = args[2], *date_block = args[3], *kinds = args[4];
    PyObject *framing = args[5];
    if (!PyLong_CheckExact(args[0]) || !PyBytes_CheckExact(line)
        || !PyBytes_CheckExact(date_block) || !PyDict_CheckExact(kinds)) {
        Py_RETURN_NONE;
    }
    long status = PyLong_AsLong(args[0]);
    if (status == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (status == 204 || status == 304) {
        Py_RETURN_NONE;
    }
    int head_request = PyObject_IsTrue(args[6]);
    int http10 = PyObject_IsTrue(args[7]);
    int keep_alive = PyObject_IsTrue(args[8]);
    if (head_request < 0 || http10 < 0 || keep_alive < 0) {
        return NULL;
    }
    long long body_length = -1;
    if (args[9] != Py_None) {
        int overflow = 0;
        body_length = PyLong_Check(args[9])
            ? PyLong_AsLongLongAndOverflow(args[9], &overflow) : -1;
        if (body_length == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow || body_length < 0) {
            Py_RETURN_NONE;
        }
    }
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(headers);
    if (count > MAX_FIELDS) {
        Py_RETURN_NONE;
    }
    /* Pass 1: judge every field and add up the head's size. */
    PyObject *names[MAX_FIELDS], *values[MAX_FIELDS];
    Py_ssize_t kept = 0;
    Py_ssize_t size = PyBytes_GET_SIZE(line) + PyBytes_GET_SIZE(date_block) + 2;
    long long app_length = -1;
    PyObject *const *items = PySequence_Fast_ITEMS(headers);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = items[i];
        if (!(PyTuple_CheckExact(item) || PyList_CheckExact(item))
            || PySequence_Fast_GET_SIZE(item) != 2) {
            Py_RETURN_NONE;
        }
        PyObject *name = PySequence_Fast_GET_ITEM(item, 0);
        PyObject *value = PySequence_Fast_GET_ITEM(item, 1);
        if (!PyBytes_CheckExact(name) || !PyBytes_CheckExact(value)) {
            Py_RETURN_NONE;
        }
        PyObject *kind = PyDict_GetItemWithError(kinds, name);
        if (kind == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        long k = PyLong_Check(kind) ? PyLong_AsLong(kind) : -1;
        const char *v = PyBytes_AS_STRING(value);
        Py_ssize_t n = PyBytes_GET_SIZE(value);
        if (memchr(v, '\r', n) || memchr(v, '\n', n) || memchr(v, '\0', n)) {
            Py_RETURN_NONE;
        }
        if (k == 1) {  /* Content-Length: the app's, checked */
            if (app_length >= 0 || n == 0 || n > 18) {
                Py_RETURN_NONE;
            }
            app_length = 0;
            for (Py_ssize_t j = 0; j < n; j++) {
                if (v[j] < '0' || v[j] > '9') {
                    Py_RETURN_NONE;
                }
                app_length = app_length * 10 + (v[j] - '0');
            }
        } else if (k != 0) {
            Py_RETURN_NONE;
        }
        names[kept] = name;
        values[kept] = value;
        kept++;
        size += PyBytes_GET_SIZE(name) + n + 4;
    }
    /* The body's delimiting, as frame_response_head decides it (never 204 or 304 here). */
    char length_text[24];
    int length_size = 0;
    int chunked = 0;
    if (app_length < 0 && body_length >= 0 && (body_length || !head_request)) {
        length_size = snprintf(length_text, sizeof length_text, "%lld", body_length);
        size += 16 + length_size + 2;  /* "content-length: " */
    } else if (app_length < 0 && body_length < 0 && !head_request) {
        if (http10) {
            keep_alive = 0;
        } else {
            chunked = 1;
            size += 28;  /* "transfer-encoding: chunked\r\n" */
        }
    }
    if (!keep_alive) {
        size += 19;  /* "connection: close\r\n" */
    } else if (http10) {
        size += 24;  /* "connection: keep-alive\r\n" */
    }
    /* Pass 2: the head in one piece. */
    PyObject *head = PyBytes_FromStringAndSize(NULL, size);
    if (head == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(head);
#define PUT(p, n) do { memcpy(out, (p), (size_t)(n)); out += (n); } while (0)
    PUT(PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
    PUT(PyBytes_AS_STRING(date_block), PyBytes_GET_SIZE(date_block));
    for (Py_ssize_t i = 0; i < kept; i++) {
        PUT(PyBytes_AS_STRING(names[i]), PyBytes_GET_SIZE(names[i]));
        PUT(": ", 2);
        PUT(PyBytes_AS_STRING(values[i]), PyBytes_GET_SIZE(values[i]));
        PUT("\r\n", 2);
    }
    if (length_size) {
        PUT("content-length: ", 16);
        PUT(length_text, length_size);
        PUT("\r\n", 2);
    }
    if (chunked) {
        PUT("transfer-encoding: chunked\r\n", 28);
    }
    if (!keep_alive) {
        PUT("connection: close\r\n", 19);
    } else if (http10) {
        PUT("connection: keep-alive\r\n", 24);
    }
    PUT("\r\n", 2);
#undef PUT
    /* What differs from Framing's class defaults. */
    long long length = app_length >= 0 ? app_length : (length_size ? body_length : -1);
    if (length >= 0) {
        PyObject *number = PyLong_FromLongLong(length);
        if (number == NULL || PyObject_SetAttr(framing, str_content_length, number) < 0) {
            Py_XDECREF(number);
            Py_DECREF(head);
            return NULL;
        }
        Py_DECREF(number);
    }
    if ((chunked && PyObject_SetAttr(framing, str_chunked, Py_True) < 0)
        || (!keep_alive && PyObject_SetAttr(framing, str_keep_alive, Py_False) < 0)
        || (head_request && PyObject_SetAttr(framing, str_no_body, Py_True) < 0)) {
        Py_DECREF(head);
        return NULL;
    }
    return head;
}

static PyMethodDef compiled_head_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(data, limit_line, limit_fields, limit_field_size, decline) -> tuple | None"},
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL,
     "frame(status, line, headers, date_block, kinds, framing, head_request, http10, "
     "keep_alive, body_length) -> bytes | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef compiled_head_module = {
    PyModuleDef_HEAD_INIT, "compiled_head",
    "Reads the usual HTTP/1.x request head, and frames the usual response head, in one call "
    "each; declines anything else.", -1,
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
    str_content_length = PyUnicode_InternFromString("content_length");
    str_chunked = PyUnicode_InternFromString("chunked");
    str_keep_alive = PyUnicode_InternFromString("keep_alive");
    str_no_body = PyUnicode_InternFromString("no_body");
    if (!str_content_length || !str_chunked || !str_keep_alive || !str_no_body) {
        return NULL;
    }
    version_11 = PyUnicode_InternFromString("1.1");
    version_10 = PyUnicode_InternFromString("1.0");
    scheme_https = PyUnicode_InternFromString("https");
    scheme_http = PyUnicode_InternFromString("http");
    if (scheme_https == NULL || scheme_http == NULL) {
        return NULL;
    }
    if (version_11 == NULL || version_10 == NULL) {
        return NULL;
    }
    return PyModule_Create(&compiled_head_module);
}
