#include "json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 if the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- tree ---- */

const char *json_type_name(enum json_type type)
{
    switch (type) {
    case JSON_NULL:
        return "null";
    case JSON_BOOL:
        return "boolean";
    case JSON_NUMBER:
        return "number";
    case JSON_STRING:
        return "string";
    case JSON_ARRAY:
        return "array";
    case JSON_OBJECT:
        return "object";
    }
    return "unknown";
}

static struct json_value *new_value(enum json_type type, size_t offset)
{
    struct json_value *v = ka_xcalloc(1, sizeof(*v));
    v->type = type;
    v->offset = offset;
    return v;
}

void json_free(struct json_value *v)
{
    if (!v)
        return;
    switch (v->type) {
    case JSON_NUMBER:
        free(v->u.number.text);
        break;
    case JSON_STRING:
        free(v->u.string.s);
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++)
            json_free(v->u.array.items[i]);
        free(v->u.array.items);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < v->u.object.n; i++) {
            free(v->u.object.members[i].key);
            json_free(v->u.object.members[i].value);
        }
        free(v->u.object.members);
        break;
    case JSON_NULL:
    case JSON_BOOL:
        break;
    }
    free(v);
}

struct json_value *json_new_null(void)
{
    return new_value(JSON_NULL, 0);
}

struct json_value *json_new_bool(bool b)
{
    struct json_value *v = new_value(JSON_BOOL, 0);
    v->u.boolean = b;
    return v;
}

struct json_value *json_new_number(const char *literal)
{
    struct json_value *v = new_value(JSON_NUMBER, 0);
    v->u.number.text = ka_xstrdup(literal);
    v->u.number.len = strlen(literal);
    return v;
}

/* Takes ownership of s, which must hold len bytes plus a NUL. */
static struct json_value *string_value(char *s, size_t len, size_t offset)
{
    struct json_value *v = new_value(JSON_STRING, offset);
    v->u.string.s = s;
    v->u.string.len = len;
    return v;
}

static char *copy_bytes(const char *s, size_t len)
{
    char *p = ka_xmalloc(len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

struct json_value *json_new_string(const char *s, size_t len)
{
    return string_value(copy_bytes(s, len), len, 0);
}

struct json_value *json_new_array(void)
{
    return new_value(JSON_ARRAY, 0);
}

struct json_value *json_new_object(void)
{
    return new_value(JSON_OBJECT, 0);
}

void json_array_append(struct json_value *arr, struct json_value *item)
{
    if (arr->u.array.n == arr->u.array.cap) {
        arr->u.array.cap = arr->u.array.cap ? arr->u.array.cap * 2 : 4;
        arr->u.array.items =
            ka_xrealloc(arr->u.array.items, arr->u.array.cap * sizeof(*arr->u.array.items));
    }
    arr->u.array.items[arr->u.array.n++] = item;
}

/* Takes ownership of key. */
static void object_append_owned(struct json_value *obj, char *key, size_t key_len,
                                struct json_value *value)
{
    if (obj->u.object.n == obj->u.object.cap) {
        obj->u.object.cap = obj->u.object.cap ? obj->u.object.cap * 2 : 4;
        obj->u.object.members =
            ka_xrealloc(obj->u.object.members, obj->u.object.cap * sizeof(*obj->u.object.members));
    }
    obj->u.object.members[obj->u.object.n++] =
        (struct json_member){.key = key, .key_len = key_len, .value = value};
}

void json_object_append(struct json_value *obj, const char *key, size_t key_len,
                        struct json_value *value)
{
    object_append_owned(obj, copy_bytes(key, key_len), key_len, value);
}

const struct json_value *json_object_get(const struct json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    size_t key_len = strlen(key);
    for (size_t i = obj->u.object.n; i-- > 0;) {
        const struct json_member *m = &obj->u.object.members[i];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
            return m->value;
    }
    return NULL;
}

/* ---- parser ---- */

struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    struct ka_error *err;
};

static int __attribute__((format(printf, 3, 4)))
fail(struct parser *ps, size_t at, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return ka_error_status_set(ps->err, KA_STATUS_INVALID_ARGUMENT,
                               "invalid JSON at offset %zu: %s", at, what);
}

/* Say what was found where something else was expected, without echoing raw bytes
 * (the input may hold terminal escapes). */
static int fail_unexpected(struct parser *ps, const char *expected)
{
    if (ps->pos >= ps->len)
        return fail(ps, ps->pos, "unexpected end of input, expected %s", expected);
    unsigned char c = ps->s[ps->pos];
    if (c >= 0x20 && c < 0x7F)
        return fail(ps, ps->pos, "unexpected character '%c', expected %s", c, expected);
    return fail(ps, ps->pos, "unexpected byte 0x%02x, expected %s", c, expected);
}

static void skip_ws(struct parser *ps)
{
    while (ps->pos < ps->len) {
        unsigned char c = ps->s[ps->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        ps->pos++;
    }
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static size_t skip_digits(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && is_digit(s[i]))
        i++;
    return i;
}

/* Length of the number at s per RFC 8259 section 6, or 0 if none starts there.
 * "01" scans as "0": the caller sees what follows and rejects it. */
static size_t scan_number(const unsigned char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || !is_digit(s[i]))
        return 0;
    i = s[i] == '0' ? i + 1 : skip_digits(s, len, i);
    if (i < len && s[i] == '.') {
        size_t j = skip_digits(s, len, i + 1);
        if (j == i + 1)
            return 0;
        i = j;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < len && (s[j] == '+' || s[j] == '-'))
            j++;
        size_t k = skip_digits(s, len, j);
        if (k == j)
            return 0;
        i = k;
    }
    return i;
}

bool json_is_number(const char *s, size_t len)
{
    return len > 0 && scan_number((const unsigned char *)s, len) == len;
}

static int parse_number(struct parser *ps, struct json_value **out)
{
    size_t start = ps->pos;
    size_t n = scan_number(ps->s + start, ps->len - start);
    size_t end = start + n;

    /* Anything that could continue a number means the literal is malformed
     * ("01", "1.", "1e", "-"), not that a new token starts. */
    if (n == 0 ||
        (end < ps->len && (is_digit(ps->s[end]) || ps->s[end] == '.' || ps->s[end] == 'e' ||
                           ps->s[end] == 'E' || ps->s[end] == '+' || ps->s[end] == '-')))
        return fail(ps, start, "invalid number");
    if (n > JSON_MAX_NUMBER_LEN)
        return fail(ps, start, "number literal longer than %d bytes", JSON_MAX_NUMBER_LEN);
    struct json_value *v = new_value(JSON_NUMBER, start);
    v->u.number.text = copy_bytes((const char *)ps->s + start, n);
    v->u.number.len = n;
    ps->pos = end;
    *out = v;
    return 0;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Read the four hex digits of a \u escape whose backslash is at i (end bounds it). */
static int read_u_escape(struct parser *ps, size_t i, size_t end, uint32_t *out)
{
    uint32_t v = 0;
    if (end - i < 6)
        return fail(ps, i, "truncated \\u escape");
    for (size_t k = i + 2; k < i + 6; k++) {
        int h = hex_value(ps->s[k]);
        if (h < 0)
            return fail(ps, i, "invalid \\u escape");
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* Decode a \u escape (or surrogate pair) at i into UTF-8 at *dst; returns the
 * number of input bytes consumed, or negative on error. */
static int decode_u_escape(struct parser *ps, size_t i, size_t end, char **dst)
{
    uint32_t cp = 0, lo = 0;
    if (read_u_escape(ps, i, end, &cp) < 0)
        return -1;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(ps, i, "invalid UTF-16 surrogate: lone low surrogate \\u%04X", cp);
    if (cp < 0xD800 || cp > 0xDBFF) {
        *dst += utf8_encode(cp, *dst);
        return 6;
    }
    /* A high surrogate must be followed at once by an escaped low surrogate. */
    if (end - i < 12 || ps->s[i + 6] != '\\' || ps->s[i + 7] != 'u')
        return fail(ps, i, "invalid UTF-16 surrogate: \\u%04X not followed by a low surrogate", cp);
    if (read_u_escape(ps, i + 6, end, &lo) < 0)
        return -1;
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(ps, i, "invalid UTF-16 surrogate pair \\u%04X\\u%04X", cp, lo);
    *dst += utf8_encode(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), *dst);
    return 12;
}

static char simple_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '/':
        return '/';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    }
    return 0;
}

/* Find the closing quote of the string whose opening quote is at ps->pos. */
static int find_string_end(struct parser *ps, size_t *end)
{
    size_t i = ps->pos + 1;
    while (i < ps->len) {
        if (ps->s[i] == '"') {
            *end = i;
            return 0;
        }
        i += ps->s[i] == '\\' ? 2 : 1;
    }
    return fail(ps, ps->pos, "unterminated string");
}

/* Decode one element of a string body at i into *dst; returns bytes consumed. */
static int decode_string_step(struct parser *ps, size_t i, size_t end, char **dst)
{
    unsigned char c = ps->s[i];
    if (c < 0x20)
        return fail(ps, i, "unescaped control character 0x%02x in string", c);
    if (c == '\\') {
        /* find_string_end guarantees a byte after the backslash before end. */
        if (ps->s[i + 1] == 'u')
            return decode_u_escape(ps, i, end, dst);
        char e = simple_escape(ps->s[i + 1]);
        if (!e)
            return fail(ps, i, "invalid escape sequence");
        *(*dst)++ = e;
        return 2;
    }
    size_t n = utf8_seq_len(ps->s + i, end - i);
    if (n == 0)
        return fail(ps, i, "invalid UTF-8 in string");
    memcpy(*dst, ps->s + i, n);
    *dst += n;
    return (int)n;
}

/* Parse the string at ps->pos; *out is malloc'd and NUL-terminated. Decoded text is
 * never longer than the raw text, so one allocation of the raw size suffices. */
static int parse_string_raw(struct parser *ps, char **out, size_t *out_len)
{
    size_t end = 0;
    if (find_string_end(ps, &end) < 0)
        return -1;
    size_t start = ps->pos + 1;
    cleanup_free char *buf = ka_xmalloc(end - start + 1);
    char *dst = buf;
    for (size_t i = start; i < end;) {
        int n = decode_string_step(ps, i, end, &dst);
        if (n < 0)
            return -1;
        i += (size_t)n;
    }
    *dst = '\0';
    *out_len = (size_t)(dst - buf);
    *out = take_ptr(buf);
    ps->pos = end + 1;
    return 0;
}

static int parse_string(struct parser *ps, struct json_value **out)
{
    size_t start = ps->pos, len = 0;
    char *s = NULL;
    if (parse_string_raw(ps, &s, &len) < 0)
        return -1;
    *out = string_value(s, len, start);
    return 0;
}

static int parse_literal(struct parser *ps, struct json_value **out)
{
    static const struct {
        const char *text;
        enum json_type type;
        bool boolean;
    } literals[] = {
        {"true", JSON_BOOL, true},
        {"false", JSON_BOOL, false},
        {"null", JSON_NULL, false},
    };
    for (size_t i = 0; i < KA_ARRAY_SIZE(literals); i++) {
        size_t n = strlen(literals[i].text);
        if (ps->len - ps->pos >= n && memcmp(ps->s + ps->pos, literals[i].text, n) == 0) {
            *out = new_value(literals[i].type, ps->pos);
            (*out)->u.boolean = literals[i].boolean;
            ps->pos += n;
            return 0;
        }
    }
    return fail_unexpected(ps, "a value");
}

static int parse_value(struct parser *ps, unsigned depth, struct json_value **out);

static int parse_array(struct parser *ps, unsigned depth, struct json_value **out)
{
    cleanup_json struct json_value *arr = new_value(JSON_ARRAY, ps->pos);
    ps->pos++; /* '[' */
    skip_ws(ps);
    if (ps->pos < ps->len && ps->s[ps->pos] == ']') {
        ps->pos++;
        *out = take_ptr(arr);
        return 0;
    }
    for (;;) {
        struct json_value *item = NULL;
        if (parse_value(ps, depth, &item) < 0)
            return -1;
        json_array_append(arr, item);
        skip_ws(ps);
        if (ps->pos < ps->len && ps->s[ps->pos] == ',') {
            ps->pos++;
            continue;
        }
        if (ps->pos < ps->len && ps->s[ps->pos] == ']') {
            ps->pos++;
            *out = take_ptr(arr);
            return 0;
        }
        return fail_unexpected(ps, "',' or ']'");
    }
}

static int parse_member(struct parser *ps, unsigned depth, struct json_value *obj)
{
    cleanup_free char *key = NULL;
    size_t key_len = 0;
    struct json_value *value = NULL;

    skip_ws(ps);
    if (ps->pos >= ps->len || ps->s[ps->pos] != '"')
        return fail_unexpected(ps, "a string key");
    if (parse_string_raw(ps, &key, &key_len) < 0)
        return -1;
    skip_ws(ps);
    if (ps->pos >= ps->len || ps->s[ps->pos] != ':')
        return fail_unexpected(ps, "':' after object key");
    ps->pos++;
    if (parse_value(ps, depth, &value) < 0)
        return -1;
    object_append_owned(obj, take_ptr(key), key_len, value);
    return 0;
}

static int parse_object(struct parser *ps, unsigned depth, struct json_value **out)
{
    cleanup_json struct json_value *obj = new_value(JSON_OBJECT, ps->pos);
    ps->pos++; /* '{' */
    skip_ws(ps);
    if (ps->pos < ps->len && ps->s[ps->pos] == '}') {
        ps->pos++;
        *out = take_ptr(obj);
        return 0;
    }
    for (;;) {
        if (parse_member(ps, depth, obj) < 0)
            return -1;
        skip_ws(ps);
        if (ps->pos < ps->len && ps->s[ps->pos] == ',') {
            ps->pos++;
            continue;
        }
        if (ps->pos < ps->len && ps->s[ps->pos] == '}') {
            ps->pos++;
            *out = take_ptr(obj);
            return 0;
        }
        return fail_unexpected(ps, "',' or '}'");
    }
}

/* depth counts the containers enclosing this value. */
static int parse_value(struct parser *ps, unsigned depth, struct json_value **out)
{
    skip_ws(ps);
    if (ps->pos >= ps->len)
        return fail_unexpected(ps, "a value");
    unsigned char c = ps->s[ps->pos];
    if ((c == '[' || c == '{') && depth >= JSON_MAX_DEPTH)
        return fail(ps, ps->pos, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    if (c == '[')
        return parse_array(ps, depth + 1, out);
    if (c == '{')
        return parse_object(ps, depth + 1, out);
    if (c == '"')
        return parse_string(ps, out);
    if (c == '-' || is_digit(c))
        return parse_number(ps, out);
    return parse_literal(ps, out);
}

int json_parse(const char *text, size_t len, struct json_value **out, struct ka_error *err)
{
    struct parser ps = {.s = (const unsigned char *)text, .len = len, .pos = 0, .err = err};
    cleanup_json struct json_value *v = NULL;

    *out = NULL;
    if (len > JSON_MAX_INPUT_LEN)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "invalid JSON: input of %zu bytes exceeds the %u byte limit",
                                   len, JSON_MAX_INPUT_LEN);
    if (parse_value(&ps, 0, &v) < 0)
        return -1;
    skip_ws(&ps);
    if (ps.pos < ps.len)
        return fail(&ps, ps.pos, "trailing characters after the JSON value");
    *out = take_ptr(v);
    return 0;
}

/* ---- writer ---- */

void json_buf_append(struct json_buf *b, const char *s, size_t len)
{
    if (b->cap - b->len <= len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= len)
            cap *= 2;
        b->data = ka_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void buf_puts(struct json_buf *b, const char *s)
{
    json_buf_append(b, s, strlen(s));
}

static const char *escape_for(unsigned char c)
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    }
    return NULL;
}

void json_buf_append_string(struct json_buf *b, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of bytes that need no escaping, copied in one go */

    json_buf_append(b, "\"", 1);
    for (size_t i = 0; i < len;) {
        const char *esc = escape_for(u[i]);
        char hex[8];
        size_t n = u[i] < 0x80 ? 1 : utf8_seq_len(u + i, len - i);

        if (!esc && u[i] >= 0x20 && n != 0) {
            i += n;
            continue;
        }
        json_buf_append(b, s + run, i - run);
        if (esc)
            buf_puts(b, esc);
        else if (u[i] < 0x20) {
            snprintf(hex, sizeof(hex), "\\u%04x", u[i]);
            buf_puts(b, hex);
        } else
            buf_puts(b, "\xEF\xBF\xBD"); /* U+FFFD for a byte that is not UTF-8 */
        i++;
        run = i;
    }
    json_buf_append(b, s + run, len - run);
    json_buf_append(b, "\"", 1);
}

static void write_indent(struct json_buf *b, unsigned flags, unsigned level)
{
    if (!(flags & JSON_WRITE_PRETTY))
        return;
    json_buf_append(b, "\n", 1);
    for (unsigned i = 0; i < level; i++)
        json_buf_append(b, "  ", 2);
}

static void write_value(struct json_buf *b, const struct json_value *v, unsigned flags,
                        unsigned level);

static void write_array(struct json_buf *b, const struct json_value *v, unsigned flags,
                        unsigned level)
{
    if (v->u.array.n == 0) {
        buf_puts(b, "[]");
        return;
    }
    buf_puts(b, "[");
    for (size_t i = 0; i < v->u.array.n; i++) {
        if (i)
            buf_puts(b, ",");
        write_indent(b, flags, level + 1);
        write_value(b, v->u.array.items[i], flags, level + 1);
    }
    write_indent(b, flags, level);
    buf_puts(b, "]");
}

static void write_object(struct json_buf *b, const struct json_value *v, unsigned flags,
                         unsigned level)
{
    if (v->u.object.n == 0) {
        buf_puts(b, "{}");
        return;
    }
    buf_puts(b, "{");
    for (size_t i = 0; i < v->u.object.n; i++) {
        const struct json_member *m = &v->u.object.members[i];
        if (i)
            buf_puts(b, ",");
        write_indent(b, flags, level + 1);
        json_buf_append_string(b, m->key, m->key_len);
        buf_puts(b, (flags & JSON_WRITE_PRETTY) ? ": " : ":");
        write_value(b, m->value, flags, level + 1);
    }
    write_indent(b, flags, level);
    buf_puts(b, "}");
}

static void write_value(struct json_buf *b, const struct json_value *v, unsigned flags,
                        unsigned level)
{
    switch (v->type) {
    case JSON_NULL:
        buf_puts(b, "null");
        break;
    case JSON_BOOL:
        buf_puts(b, v->u.boolean ? "true" : "false");
        break;
    case JSON_NUMBER:
        json_buf_append(b, v->u.number.text, v->u.number.len);
        break;
    case JSON_STRING:
        json_buf_append_string(b, v->u.string.s, v->u.string.len);
        break;
    case JSON_ARRAY:
        write_array(b, v, flags, level);
        break;
    case JSON_OBJECT:
        write_object(b, v, flags, level);
        break;
    }
}

char *json_write(const struct json_value *v, unsigned flags)
{
    struct json_buf b = {0};
    write_value(&b, v, flags, 0);
    return b.data;
}
