#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "core/util.h"

#define bad_json(err, off, ...)                                                              \
    ka_error_status_set((err), KA_STATUS_INVALID_ARGUMENT, "invalid JSON at offset %zu: %s", \
                        (off), __VA_ARGS__)

struct json_object *ctl_json_ok(struct json_object *v)
{
    if (!v) {
        fputs("agent-ctl: out of memory\n", stderr);
        abort();
    }
    return v;
}

/* json-c reads "NaN", "Infinity" and overflowing exponents ("1e400") as doubles
 * even in strict mode; none of them is a JSON number. */
static bool has_non_finite(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_double:
        return !isfinite(json_object_get_double(v));
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (has_non_finite(json_object_array_get_idx(v, i)))
                return true;
        return false;
    case json_type_object: {
        json_object_object_foreach(v, key, member)
        {
            (void)key;
            if (has_non_finite(member))
                return true;
        }
        return false;
    }
    default:
        return false;
    }
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 (RFC 3629: shortest form,
 * no surrogates, at most U+10FFFF). */
static size_t utf8_sequence_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Offset of the first byte of s[0..len) that is not valid UTF-8, or len. json-c's
 * own check lets overlong forms and encoded surrogates through. */
static size_t utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_sequence_len(u + i, len - i);
        if (!n)
            break;
        i += n;
    }
    return i;
}

int ctl_json_parse(const char *text, size_t len, struct json_object **out, struct ka_error *err)
{
    *out = NULL;
    if (len > JSON_MAX_INPUT_LEN)
        return bad_json(err, (size_t)JSON_MAX_INPUT_LEN, "input larger than 64 MiB");
    size_t valid = utf8_valid_prefix(text, len);
    if (valid < len)
        return bad_json(err, valid, "invalid UTF-8");
    struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    if (!tok)
        ctl_json_ok(NULL);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

    struct json_object *v = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    /* A top-level number or literal is complete only at the end of the input, which
     * json-c learns from a NUL. */
    if (!v && e == json_tokener_continue) {
        v = json_tokener_parse_ex(tok, "", 1);
        e = json_tokener_get_error(tok);
        end = len;
    }
    json_tokener_free(tok);

    if (!v) {
        if (e == json_tokener_success) /* "null" parses to NULL */
            return end < len ? bad_json(err, end, "trailing characters after the JSON value") : 0;
        if (e == json_tokener_continue || e == json_tokener_error_parse_eof)
            return bad_json(err, len, "unexpected end of input");
        return bad_json(err, end, json_tokener_error_desc(e));
    }
    if (end < len) {
        json_object_put(v);
        return bad_json(err, end, "trailing characters after the JSON value");
    }
    if (has_non_finite(v)) {
        json_object_put(v);
        return bad_json(err, (size_t)0, "NaN, Infinity and numbers beyond double are not JSON");
    }
    *out = v;
    return 0;
}

const char *ctl_json_type_name(const struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "boolean";
    case json_type_int:
    case json_type_double:
        return "number";
    case json_type_string:
        return "string";
    case json_type_array:
        return "array";
    case json_type_object:
        return "object";
    }
    return "unknown";
}

struct json_object *ctl_json_string(const char *s, size_t len)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *u = (const unsigned char *)s;
    struct json_object *v;
    if (utf8_valid_prefix(s, len) == len) {
        v = json_object_new_string_len(s, (int)len);
    } else {
        /* Each bad byte grows to at most three. */
        cleanup_free char *fixed = ka_xmalloc(len * 3 + 1);
        size_t o = 0;
        for (size_t i = 0; i < len;) {
            size_t n = utf8_sequence_len(u + i, len - i);
            if (n) {
                memcpy(fixed + o, s + i, n);
                o += n;
                i += n;
            } else {
                memcpy(fixed + o, replacement, 3);
                o += 3;
                i++;
            }
        }
        v = json_object_new_string_len(fixed, (int)o);
    }
    return ctl_json_ok(v);
}

/* json-c's pretty output puts the braces of an empty object or array on two lines;
 * agent-ctl has always written "{}" and "[]", which scripts and people expect. */
static int write_empty_object(struct json_object *v, struct printbuf *pb, int level, int flags)
{
    (void)v, (void)level, (void)flags;
    return printbuf_strappend(pb, "{}");
}

static int write_empty_array(struct json_object *v, struct printbuf *pb, int level, int flags)
{
    (void)v, (void)level, (void)flags;
    return printbuf_strappend(pb, "[]");
}

static void compact_empty_containers(struct json_object *v)
{
    if (json_object_is_type(v, json_type_object)) {
        if (json_object_object_length(v) == 0)
            json_object_set_serializer(v, write_empty_object, NULL, NULL);
        json_object_object_foreach(v, key, member)
        {
            (void)key;
            compact_empty_containers(member);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        if (n == 0)
            json_object_set_serializer(v, write_empty_array, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            compact_empty_containers(json_object_array_get_idx(v, i));
    }
}

char *ctl_json_write(struct json_object *v, bool pretty)
{
    int flags =
        JSON_C_TO_STRING_NOSLASHESCAPE |
        (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);
    if (pretty)
        compact_empty_containers(v);
    const char *s = json_object_to_json_string_ext(v, flags);
    if (!s)
        ctl_json_ok(NULL);
    return ka_xstrdup(s);
}
