#include "pbjson.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "json.h"

/* A number inside a JSON string ("42", "1e3"): longer only costs time in strtod. */
#define JSON_MAX_NUMBER_LEN 1024

/* Every parse error is the caller's input being wrong. */
#define bad_input(err, ...) ka_error_status_set((err), KA_STATUS_INVALID_ARGUMENT, __VA_ARGS__)

static void pbmsg_freep(ProtobufCMessage **m)
{
    if (*m)
        protobuf_c_message_free_unpacked(*m, NULL);
}
#define cleanup_pbmsg __attribute__((cleanup(pbmsg_freep)))

/* ---- descriptor helpers ---- */

static void *member_at(const void *msg, unsigned offset)
{
    return (char *)msg + offset;
}

/* Size of one element of a repeated field's array, as protobuf-c lays it out. */
static size_t elem_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4; /* 32-bit integers, float, enum (forced to int size) */
    }
}

static const char *type_name(ProtobufCType type)
{
    static const char *const names[] = {
        [PROTOBUF_C_TYPE_INT32] = "int32",       [PROTOBUF_C_TYPE_SINT32] = "sint32",
        [PROTOBUF_C_TYPE_SFIXED32] = "sfixed32", [PROTOBUF_C_TYPE_INT64] = "int64",
        [PROTOBUF_C_TYPE_SINT64] = "sint64",     [PROTOBUF_C_TYPE_SFIXED64] = "sfixed64",
        [PROTOBUF_C_TYPE_UINT32] = "uint32",     [PROTOBUF_C_TYPE_FIXED32] = "fixed32",
        [PROTOBUF_C_TYPE_UINT64] = "uint64",     [PROTOBUF_C_TYPE_FIXED64] = "fixed64",
        [PROTOBUF_C_TYPE_FLOAT] = "float",       [PROTOBUF_C_TYPE_DOUBLE] = "double",
        [PROTOBUF_C_TYPE_BOOL] = "bool",         [PROTOBUF_C_TYPE_ENUM] = "enum",
        [PROTOBUF_C_TYPE_STRING] = "string",     [PROTOBUF_C_TYPE_BYTES] = "bytes",
        [PROTOBUF_C_TYPE_MESSAGE] = "message",
    };
    if ((unsigned)type < KA_ARRAY_SIZE(names) && names[type])
        return names[type];
    return "unknown";
}

/* protobuf-c keeps a has_ member only for optional scalars and bytes; strings and
 * messages signal presence by a non-NULL pointer, oneof members by the case. */
static bool has_presence_member(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

static uint32_t *oneof_case(const void *msg, const ProtobufCFieldDescriptor *f)
{
    return member_at(msg, f->quantifier_offset);
}

static size_t *repeated_count(const void *msg, const ProtobufCFieldDescriptor *f)
{
    return member_at(msg, f->quantifier_offset);
}

/* protoc turns map<K,V> field "foo_bar" into a nested message "FooBarEntry" with
 * fields key = 1 and value = 2; protobuf-c keeps no map flag, so recognise that
 * shape (a hand-written message of the same shape has the same wire form anyway). */
static bool map_entry_name_matches(const char *field_name, const char *short_name)
{
    bool cap_next = true;
    const char *s = short_name;
    for (const char *p = field_name; *p; p++) {
        if (*p == '_') {
            cap_next = true;
            continue;
        }
        char want = (cap_next && *p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
        cap_next = false;
        if (*s++ != want)
            return false;
    }
    return strcmp(s, "Entry") == 0;
}

static bool is_map_field(const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    return e && e->n_fields == 2 && e->fields[0].id == 1 && e->fields[1].id == 2 &&
           strcmp(e->fields[0].name, "key") == 0 && strcmp(e->fields[1].name, "value") == 0 &&
           e->fields[0].label != PROTOBUF_C_LABEL_REPEATED &&
           e->fields[1].label != PROTOBUF_C_LABEL_REPEATED &&
           map_entry_name_matches(f->name, e->short_name);
}

/* Whether key is the lowerCamelCase JSON name protoc derives from a proto name
 * (ToJsonName: drop each '_' and upper-case the letter after it). */
static bool json_name_matches(const char *proto_name, const char *key)
{
    bool cap_next = false;
    for (const char *p = proto_name; *p; p++) {
        if (*p == '_') {
            cap_next = true;
            continue;
        }
        char want = (cap_next && *p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
        cap_next = false;
        if (*key++ != want)
            return false;
    }
    return *key == '\0';
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key, size_t key_len)
{
    if (strlen(key) != key_len) /* an embedded NUL never names a field */
        return NULL;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (f)
        return f;
    for (unsigned i = 0; i < desc->n_fields; i++)
        if (json_name_matches(desc->fields[i].name, key))
            return &desc->fields[i];
    return NULL;
}

/* A JSON key or string for an error message: printable ASCII only (the input may
 * carry terminal escapes), truncated. */
#define PRINTABLE_MAX 64
static const char *printable(const char *s, size_t len, char out[PRINTABLE_MAX + 4])
{
    size_t n = len < PRINTABLE_MAX ? len : PRINTABLE_MAX;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7F) ? s[i] : '?';
    strcpy(out + n, len > PRINTABLE_MAX ? "..." : "");
    return out;
}

/* ---- scalars from JSON ---- */

/* Split an integral number literal into sign and magnitude. Returns 0, or -1 with
 * *why set: the literal is not integral, or its magnitude exceeds 64 bits. */
static int number_to_integer(const char *text, size_t len, bool *neg, uint64_t *mag,
                             const char **why)
{
    if (len == 0) {
        *why = "not a number";
        return -1;
    }
    *neg = text[0] == '-';
    if (!memchr(text, '.', len) && !memchr(text, 'e', len) && !memchr(text, 'E', len)) {
        uint64_t m = 0;
        for (size_t i = *neg; i < len; i++) {
            unsigned d = (unsigned)(text[i] - '0');
            if (m > (UINT64_MAX - d) / 10) {
                *why = "out of range";
                return -1;
            }
            m = m * 10 + d;
        }
        *mag = m;
        return 0;
    }
    /* Exponent or fraction ("1e3", "2.0"): allowed by the canonical mapping when
     * the value is integral. */
    char buf[JSON_MAX_NUMBER_LEN + 1];
    if (len > JSON_MAX_NUMBER_LEN) {
        *why = "too long";
        return -1;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    double d = strtod(buf, NULL); /* agent-ctl never calls setlocale, so '.' is the point */
    double a = d < 0 ? -d : d;
    if (!isfinite(d) || a >= 18446744073709551616.0) { /* 2^64 */
        *why = "out of range";
        return -1;
    }
    /* The cast truncates, so it changes the value only when there is a fraction. */
    uint64_t m = (uint64_t)a;
    if ((double)m != a) {
        *why = "not an integer";
        return -1;
    }
    *mag = m;
    return 0;
}

static bool is_number(struct json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* Whether s[0..len) (a json-c string, so NUL-terminated) is exactly one JSON number,
 * as json-c reads it; values beyond double ("1e400") count, for the caller to call
 * out of range. */
static bool is_number_text(const char *s, size_t len)
{
    if (len == 0 || len > JSON_MAX_NUMBER_LEN || strlen(s) != len)
        return false;
    /* json-c skips whitespace around a value and reads NaN and Infinity; a JSON
     * number starts with '-' or a digit and ends with a digit. */
    bool starts_ok = s[0] == '-' || (s[0] >= '0' && s[0] <= '9');
    if (!starts_ok || s[len - 1] < '0' || s[len - 1] > '9')
        return false;
    struct json_tokener *tok = json_tokener_new_ex(1);
    if (!tok)
        ctl_json_ok(NULL);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    /* The terminating NUL tells json-c the number ends there. */
    cleanup_json struct json_object *v = json_tokener_parse_ex(tok, s, (int)len + 1);
    bool whole = json_tokener_get_parse_end(tok) >= len;
    json_tokener_free(tok);
    return v && whole && is_number(v);
}

/* The numeric text of v: a JSON number, or a string holding one. For a number it
 * is json-c's text: an integer in decimal, a fraction or exponent as written. */
static int numeric_text(struct json_object *v, const char **text, size_t *len, struct ka_error *err)
{
    if (is_number(v)) {
        *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        *len = strlen(*text);
        return 0;
    }
    if (json_object_is_type(v, json_type_string)) {
        *text = json_object_get_string(v);
        *len = (size_t)json_object_get_string_len(v);
        if (is_number_text(*text, *len))
            return 0;
        return bad_input(err, "string is not a number");
    }
    return bad_input(err, "expected a number or numeric string, got %s", ctl_json_type_name(v));
}

struct int_limits {
    bool is_signed;
    uint64_t max_pos; /* largest positive magnitude */
    uint64_t max_neg; /* largest negative magnitude */
};

static struct int_limits limits_of(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return (struct int_limits){true, INT64_MAX, (uint64_t)INT64_MAX + 1};
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return (struct int_limits){false, UINT32_MAX, 0};
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return (struct int_limits){false, UINT64_MAX, 0};
    default: /* int32, sint32, sfixed32, enum */
        return (struct int_limits){true, INT32_MAX, (uint64_t)INT32_MAX + 1};
    }
}

/* Parse v as an integer of the given type; signed results in *s, unsigned in *u. */
static int parse_integer(struct json_object *v, ProtobufCType type, int64_t *s, uint64_t *u,
                         struct ka_error *err)
{
    const char *text = NULL, *why = NULL;
    size_t len = 0;
    bool neg = false;
    uint64_t mag = 0;
    struct int_limits lim = limits_of(type);

    if (numeric_text(v, &text, &len, err) < 0)
        return -1;
    if (number_to_integer(text, len, &neg, &mag, &why) == 0 &&
        mag > (neg ? lim.max_neg : lim.max_pos))
        why = "out of range";
    if (why)
        return bad_input(err, "%.40s%s is %s for %s", text, len > 40 ? "..." : "", why,
                         type_name(type));
    if (lim.is_signed)
        *s = neg && mag ? -(int64_t)(mag - 1) - 1 : (int64_t)mag; /* no overflow at -2^63 */
    else
        *u = mag;
    return 0;
}

static int store_integer(const ProtobufCFieldDescriptor *f, struct json_object *v, void *dst,
                         struct ka_error *err)
{
    int64_t s = 0;
    uint64_t u = 0;
    if (parse_integer(v, f->type, &s, &u, err) < 0)
        return -1;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)dst = s;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)dst = (uint32_t)u;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)dst = u;
        break;
    default:
        *(int32_t *)dst = (int32_t)s;
        break;
    }
    return 0;
}

/* Compare with the length: "NaN\u0000x" is not "NaN". */
static bool string_is(struct json_object *v, const char *lit)
{
    size_t n = strlen(lit);
    return json_object_is_type(v, json_type_string) && (size_t)json_object_get_string_len(v) == n &&
           memcmp(json_object_get_string(v), lit, n) == 0;
}

static int store_floating(const ProtobufCFieldDescriptor *f, struct json_object *v, void *dst,
                          struct ka_error *err)
{
    bool is_float = f->type == PROTOBUF_C_TYPE_FLOAT;
    double d;
    const char *text = NULL;
    size_t len = 0;
    char buf[JSON_MAX_NUMBER_LEN + 1];

    if (string_is(v, "NaN"))
        d = NAN;
    else if (string_is(v, "Infinity"))
        d = INFINITY;
    else if (string_is(v, "-Infinity"))
        d = -INFINITY;
    else {
        if (numeric_text(v, &text, &len, err) < 0)
            return -1;
        if (len <= JSON_MAX_NUMBER_LEN) {
            memcpy(buf, text, len);
            buf[len] = '\0';
            /* strtof rounds once from decimal; going through double could round twice. */
            d = is_float ? strtof(buf, NULL) : strtod(buf, NULL);
        } else if (json_object_is_type(v, json_type_double)) {
            d = json_object_get_double(v); /* a long literal json-c has converted */
        } else {
            return bad_input(err, "number is too long for %s", type_name(f->type));
        }
        if (isinf(d))
            return bad_input(err, "%.40s%s is out of range for %s", text, len > 40 ? "..." : "",
                             type_name(f->type));
    }
    if (is_float)
        *(float *)dst = (float)d;
    else
        *(double *)dst = d;
    return 0;
}

static int store_bool(struct json_object *v, void *dst, struct ka_error *err)
{
    if (!json_object_is_type(v, json_type_boolean))
        return bad_input(err, "expected true or false, got %s", ctl_json_type_name(v));
    *(protobuf_c_boolean *)dst = json_object_get_boolean(v);
    return 0;
}

static int store_enum(const ProtobufCFieldDescriptor *f, struct json_object *v, void *dst,
                      struct ka_error *err)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    int64_t s = 0;
    uint64_t u = 0;
    char shown[PRINTABLE_MAX + 4];

    if (json_object_is_type(v, json_type_string)) {
        const char *name = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        const ProtobufCEnumValue *ev = NULL;
        if (strlen(name) == len)
            ev = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
        if (!ev)
            return bad_input(err, "unknown value '%s' for enum %s", printable(name, len, shown),
                             ed->name);
        *(int *)dst = ev->value;
        return 0;
    }
    if (!is_number(v))
        return bad_input(err, "expected an enum name or number, got %s", ctl_json_type_name(v));
    /* proto3 enums are open: a number without a name is kept, as on the wire. */
    if (parse_integer(v, PROTOBUF_C_TYPE_ENUM, &s, &u, err) < 0)
        return -1;
    *(int *)dst = (int)s;
    return 0;
}

static int store_string(struct json_object *v, void *dst, struct ka_error *err)
{
    if (!json_object_is_type(v, json_type_string))
        return bad_input(err, "expected a string, got %s", ctl_json_type_name(v));
    const char *str = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    /* protobuf-c strings are NUL-terminated: a \u0000 would silently cut them. */
    if (strlen(str) != len)
        return bad_input(err, "string contains a NUL character");
    *(char **)dst = ka_xstrndup(str, len);
    return 0;
}

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-') /* standard and URL-safe alphabets */
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decode standard or URL-safe base64, padded or not. Returns 0, or the 1-based
 * position of the first bad character (len + 1 for a bad length). */
static size_t base64_decode(const char *s, size_t len, ProtobufCBinaryData *out)
{
    size_t pad = 0;
    while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
        pad++;
    size_t n = len - pad;
    /* Name a bad character before complaining about the length it causes. */
    for (size_t i = 0; i < n; i++)
        if (base64_value((unsigned char)s[i]) < 0)
            return i + 1;
    if ((pad && len % 4 != 0) || n % 4 == 1)
        return len + 1;
    size_t out_len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    cleanup_free uint8_t *data = out_len ? ka_xmalloc(out_len) : NULL;
    uint32_t acc = 0;
    size_t bits = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6) | (uint32_t)base64_value((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            data[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->len = out_len;
    out->data = take_ptr(data);
    return 0;
}

static int store_bytes(struct json_object *v, void *dst, struct ka_error *err)
{
    ProtobufCBinaryData bd = {0, NULL};
    if (!json_object_is_type(v, json_type_string))
        return bad_input(err, "expected a base64 string, got %s", ctl_json_type_name(v));
    size_t len = (size_t)json_object_get_string_len(v);
    size_t bad = base64_decode(json_object_get_string(v), len, &bd);
    if (bad > len)
        return bad_input(err, "invalid base64: bad length or padding");
    if (bad)
        return bad_input(err, "invalid base64 at character %zu", bad);
    *(ProtobufCBinaryData *)dst = bd;
    return 0;
}

/* ---- messages from JSON ---- */

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc)
{
    /* The system allocator, as protobuf_c_message_free_unpacked(m, NULL) expects. */
    ProtobufCMessage *m = ka_xmalloc(desc->sizeof_message);
    protobuf_c_message_init(desc, m);
    return m;
}

static int parse_message(const ProtobufCMessageDescriptor *desc, struct json_object *v,
                         ProtobufCMessage **out, struct ka_error *err);

/* Parse v as one value of f's type into dst. dst is written only on success, so a
 * failed value never leaves half a pointer for the free. */
static int store_value(const ProtobufCFieldDescriptor *f, struct json_object *v, void *dst,
                       struct ka_error *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return store_floating(f, v, dst, err);
    case PROTOBUF_C_TYPE_BOOL:
        return store_bool(v, dst, err);
    case PROTOBUF_C_TYPE_ENUM:
        return store_enum(f, v, dst, err);
    case PROTOBUF_C_TYPE_STRING:
        return store_string(v, dst, err);
    case PROTOBUF_C_TYPE_BYTES:
        return store_bytes(v, dst, err);
    case PROTOBUF_C_TYPE_MESSAGE:
        return parse_message(f->descriptor, v, (ProtobufCMessage **)dst, err);
    default:
        return store_integer(f, v, dst, err);
    }
}

/* A singular field (plain, optional, required or oneof member); v is not null.
 * Errors from the value itself are not wrapped with the field name. */
static int store_singular(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                          struct json_object *v, struct ka_error *err)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    bool in_oneof = f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF;

    /* Members of a oneof share storage: a second one would overwrite (and leak) the
     * first. protobuf-c keeps no oneof names, so name the other member. */
    if (in_oneof && *oneof_case(msg, f) != 0) {
        const ProtobufCFieldDescriptor *other =
            protobuf_c_message_descriptor_get_field(desc, *oneof_case(msg, f));
        return bad_input(err, "field '%s' is in the same oneof as '%s', which is already set",
                         f->name, other ? other->name : "?");
    }
    if (store_value(f, v, member_at(msg, f->offset), err) < 0)
        return -1;
    if (in_oneof)
        *oneof_case(msg, f) = f->id;
    else if (has_presence_member(f))
        *(protobuf_c_boolean *)member_at(msg, f->quantifier_offset) = 1;
    return 0;
}

static int set_singular(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                        struct json_object *v, struct ka_error *err)
{
    if (store_singular(msg, f, v, err) < 0)
        return ka_error_wrap(err, "field '%s'", f->name);
    return 0;
}

/* Allocate a repeated field's array of n zeroed elements and attach it at once, so
 * protobuf_c_message_free_unpacked() frees whatever is filled in if a later
 * element fails (it skips NULL strings and messages). */
static void *attach_array(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, size_t n)
{
    void *arr = ka_xcalloc(n, elem_size(f->type));
    *(void **)member_at(msg, f->offset) = arr;
    *repeated_count(msg, f) = n;
    return arr;
}

static int set_repeated(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                        struct json_object *v, struct ka_error *err)
{
    if (!json_object_is_type(v, json_type_array))
        return bad_input(err, "field '%s': expected an array, got %s", f->name,
                         ctl_json_type_name(v));
    size_t n = json_object_array_length(v);
    if (n == 0)
        return 0;
    char *arr = attach_array(msg, f, n);
    for (size_t i = 0; i < n; i++) {
        struct json_object *item = json_object_array_get_idx(v, i);
        if (!item) /* json-c's null */
            return bad_input(err, "field '%s[%zu]': null is not allowed in a repeated field",
                             f->name, i);
        if (store_value(f, item, arr + i * elem_size(f->type), err) < 0)
            return ka_error_wrap(err, "field '%s[%zu]'", f->name, i);
    }
    return 0;
}

/* Map keys are JSON strings; integer keys are their decimal text, bool keys
 * "true"/"false". */
static int set_map_key(ProtobufCMessage *entry, const char *name, struct ka_error *err)
{
    const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
    cleanup_json struct json_object *key = NULL;

    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        bool is_true = strcmp(name, "true") == 0;
        if (!is_true && strcmp(name, "false") != 0)
            return bad_input(err, "map key must be \"true\" or \"false\"");
        key = ctl_json_ok(json_object_new_boolean(is_true));
    } else {
        key = ctl_json_ok(json_object_new_string(name));
    }
    return store_singular(entry, kf, key, err);
}

static int map_key_cmp(const void *a, const void *b)
{
    const ProtobufCMessage *x = *(ProtobufCMessage *const *)a;
    const ProtobufCMessage *y = *(ProtobufCMessage *const *)b;
    const ProtobufCFieldDescriptor *kf = &x->descriptor->fields[0];
    const void *px = member_at(x, kf->offset), *py = member_at(y, kf->offset);

    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING:
        return strcmp(*(char *const *)px, *(char *const *)py);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return (*(const int64_t *)px > *(const int64_t *)py) -
               (*(const int64_t *)px < *(const int64_t *)py);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return (*(const uint64_t *)px > *(const uint64_t *)py) -
               (*(const uint64_t *)px < *(const uint64_t *)py);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return (*(const uint32_t *)px > *(const uint32_t *)py) -
               (*(const uint32_t *)px < *(const uint32_t *)py);
    default: /* 32-bit signed and bool (an int) */
        return (*(const int32_t *)px > *(const int32_t *)py) -
               (*(const int32_t *)px < *(const int32_t *)py);
    }
}

/* Two JSON keys can name the same map key ("1" and "1e0"); compare parsed keys,
 * sorted, so a big object costs n log n rather than n^2. */
static int check_map_duplicates(const ProtobufCFieldDescriptor *f, ProtobufCMessage **entries,
                                size_t n, struct ka_error *err)
{
    cleanup_free ProtobufCMessage **sorted = ka_xmalloc(n * sizeof(*sorted));
    memcpy(sorted, entries, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), map_key_cmp);
    for (size_t i = 1; i < n; i++)
        if (map_key_cmp(&sorted[i - 1], &sorted[i]) == 0)
            return bad_input(err, "field '%s': duplicate map key", f->name);
    return 0;
}

static int set_map_entry(ProtobufCMessage *entry, const char *key, struct json_object *value,
                         struct ka_error *err)
{
    const ProtobufCFieldDescriptor *vf = &entry->descriptor->fields[1];
    if (set_map_key(entry, key, err) < 0)
        return -1;
    if (!value)
        return bad_input(err, "null is not allowed as a map value");
    return store_singular(entry, vf, value, err);
}

static int set_map(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, struct json_object *v,
                   struct ka_error *err)
{
    char shown[PRINTABLE_MAX + 4];
    if (!json_object_is_type(v, json_type_object))
        return bad_input(err, "field '%s': expected an object for a map, got %s", f->name,
                         ctl_json_type_name(v));
    size_t n = (size_t)json_object_object_length(v), i = 0;
    if (n == 0)
        return 0;
    ProtobufCMessage **entries = attach_array(msg, f, n);
    json_object_object_foreach(v, key, value)
    {
        entries[i] = new_message(f->descriptor);
        if (set_map_entry(entries[i], key, value, err) < 0)
            return ka_error_wrap(err, "field '%s[\"%s\"]'", f->name,
                                 printable(key, strlen(key), shown));
        i++;
    }
    return check_map_duplicates(f, entries, n, err);
}

static int set_field(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                     struct json_object *v, struct ka_error *err)
{
    if (!v) /* json-c's null; the canonical mapping: null means the default */
        return 0;
    if (is_map_field(f))
        return set_map(msg, f, v, err);
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return set_repeated(msg, f, v, err);
    return set_singular(msg, f, v, err);
}

static int parse_message(const ProtobufCMessageDescriptor *desc, struct json_object *v,
                         ProtobufCMessage **out, struct ka_error *err)
{
    char shown[PRINTABLE_MAX + 4];
    if (!json_object_is_type(v, json_type_object))
        return bad_input(err, "expected an object for message %s, got %s", desc->name,
                         ctl_json_type_name(v));
    cleanup_pbmsg ProtobufCMessage *msg = new_message(desc);
    cleanup_free bool *seen = ka_xcalloc(desc->n_fields, sizeof(*seen));

    /* json-c keeps the last of two members with the same key; the proto name and the
     * JSON name of one field are two keys, caught here. */
    json_object_object_foreach(v, key, value)
    {
        const ProtobufCFieldDescriptor *f = find_field(desc, key, strlen(key));
        if (!f)
            return bad_input(err, "unknown field '%s' in message %s",
                             printable(key, strlen(key), shown), desc->name);
        if (seen[f - desc->fields])
            return bad_input(err, "field '%s' given more than once in message %s", f->name,
                             desc->name);
        seen[f - desc->fields] = true;
        if (set_field(msg, f, value, err) < 0)
            return -1;
    }
    *out = take_ptr(msg);
    return 0;
}

int pbjson_to_message(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                      ProtobufCMessage **out, struct ka_error *err)
{
    cleanup_json struct json_object *root = NULL;
    *out = NULL;
    if (ctl_json_parse(json, len, &root, err) < 0)
        return -1;
    return parse_message(desc, root, out, err);
}

/* ---- messages to JSON ---- */

/* Output state: the flags, and whether a message nested too deep (NULL is json-c's
 * null, so it cannot also mean failure). */
struct out_ctx {
    unsigned flags;
    bool too_deep;
};

static struct json_object *int_json(int64_t v)
{
    return ctl_json_ok(json_object_new_int64(v));
}

static struct json_object *uint_json(uint64_t v)
{
    return ctl_json_ok(json_object_new_uint64(v));
}

/* The shortest "%.Ng" text that reads back as the same value, so 0.1f prints as
 * 0.1 rather than 0.100000001; json-c writes a double given with its text as that
 * text. */
static struct json_object *floating_json(double d, bool is_float)
{
    char buf[40];
    if (isnan(d))
        return ctl_json_string("NaN", 3);
    if (isinf(d))
        return d > 0 ? ctl_json_string("Infinity", 8) : ctl_json_string("-Infinity", 9);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (is_float ? strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d)
            break;
    }
    return ctl_json_ok(json_object_new_double_s(d, buf));
}

static struct json_object *bytes_json(const ProtobufCBinaryData *bd)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = bd->len, o = 0;
    cleanup_free char *out = ka_xmalloc((n + 2) / 3 * 4 + 1);

    for (size_t i = 0; i < n; i += 3) {
        uint32_t chunk = (uint32_t)bd->data[i] << 16;
        if (i + 1 < n)
            chunk |= (uint32_t)bd->data[i + 1] << 8;
        if (i + 2 < n)
            chunk |= bd->data[i + 2];
        out[o++] = alphabet[(chunk >> 18) & 63];
        out[o++] = alphabet[(chunk >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(chunk >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[chunk & 63] : '=';
    }
    return ctl_json_string(out, o);
}

static struct json_object *enum_json(const ProtobufCFieldDescriptor *f, int value)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, value);
    if (ev)
        return ctl_json_string(ev->name, strlen(ev->name));
    return int_json(value);
}

static struct json_object *message_json(const ProtobufCMessage *msg, struct out_ctx *cx,
                                        unsigned depth);

/* One value of f's type stored at p (NULL is JSON null). */
static struct json_object *value_json(const ProtobufCFieldDescriptor *f, const void *p,
                                      struct out_ctx *cx, unsigned depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return int_json(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return int_json(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return int_json(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return uint_json(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return floating_json(*(const float *)p, true);
    case PROTOBUF_C_TYPE_DOUBLE:
        return floating_json(*(const double *)p, false);
    case PROTOBUF_C_TYPE_BOOL:
        return ctl_json_ok(json_object_new_boolean(*(const protobuf_c_boolean *)p));
    case PROTOBUF_C_TYPE_ENUM:
        return enum_json(f, *(const int *)p);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s ? ctl_json_string(s, strlen(s)) : ctl_json_string("", 0);
    }
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_json(p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? message_json(sub, cx, depth + 1) : NULL;
    }
    }
    return NULL;
}

/* The text of a map key, which JSON wants as a string, into buf (or a pointer to the
 * entry's own string). */
static const char *map_key_text(const ProtobufCMessage *entry, char buf[32])
{
    const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
    const void *p = member_at(entry, kf->offset);
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s ? s : "";
    }
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p ? "true" : "false";
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, 32, "%" PRId64, *(const int64_t *)p);
        return buf;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, 32, "%" PRIu64, *(const uint64_t *)p);
        return buf;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, 32, "%" PRIu32, *(const uint32_t *)p);
        return buf;
    default:
        snprintf(buf, 32, "%" PRId32, *(const int32_t *)p);
        return buf;
    }
}

/* Add value under key; a key that is not UTF-8 gets U+FFFD like any string. */
static void object_add(struct json_object *obj, const char *key, struct json_object *value)
{
    cleanup_json struct json_object *safe = ctl_json_string(key, strlen(key));
    if (json_object_object_add(obj, json_object_get_string(safe), value) < 0)
        ctl_json_ok(NULL);
}

static struct json_object *map_json(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                                    struct out_ctx *cx, unsigned depth)
{
    size_t n = *repeated_count(msg, f);
    ProtobufCMessage *const *entries = *(ProtobufCMessage *const **)member_at(msg, f->offset);
    cleanup_json struct json_object *obj = ctl_json_ok(json_object_new_object());

    for (size_t i = 0; i < n && !cx->too_deep; i++) {
        const ProtobufCMessage *e = entries[i];
        if (!e)
            continue;
        const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
        const void *vp = member_at(e, vf->offset);
        struct json_object *val;
        /* An absent message value is the empty message, as in the canonical mapping. */
        if (vf->type == PROTOBUF_C_TYPE_MESSAGE && !*(ProtobufCMessage *const *)vp)
            val = ctl_json_ok(json_object_new_object());
        else
            val = value_json(vf, vp, cx, depth);
        char buf[32];
        object_add(obj, map_key_text(e, buf), val);
    }
    return take_ptr(obj);
}

static struct json_object *repeated_json(const ProtobufCMessage *msg,
                                         const ProtobufCFieldDescriptor *f, struct out_ctx *cx,
                                         unsigned depth)
{
    size_t n = *repeated_count(msg, f);
    const char *arr = *(char *const *)member_at(msg, f->offset);
    cleanup_json struct json_object *out = ctl_json_ok(json_object_new_array_ext((int)n));

    for (size_t i = 0; i < n && !cx->too_deep; i++)
        if (json_object_array_add(out, value_json(f, arr + i * elem_size(f->type), cx, depth)) < 0)
            ctl_json_ok(NULL);
    return take_ptr(out);
}

static bool is_zero_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0 && !signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0 && !signbit(*(const double *)p);
    default: {
        /* Integers, bool and enum: all bytes zero is the default. */
        static const char zero[8];
        return memcmp(p, zero, elem_size(f->type)) == 0;
    }
    }
}

/* Whether a field would go on the wire, which is when it is shown by default. */
static bool field_is_set(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    const void *p = member_at(msg, f->offset);
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *repeated_count(msg, f) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *oneof_case(msg, f) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (has_presence_member(f))
        return *(const protobuf_c_boolean *)member_at(msg, f->quantifier_offset);
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) /* proto2 string or message */
        return *(void *const *)p && *(void *const *)p != f->default_value;
    return !is_zero_value(f, p);
}

static struct json_object *field_json(const ProtobufCMessage *msg,
                                      const ProtobufCFieldDescriptor *f, struct out_ctx *cx,
                                      unsigned depth)
{
    if (is_map_field(f))
        return map_json(msg, f, cx, depth);
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return repeated_json(msg, f, cx, depth);
    return value_json(f, member_at(msg, f->offset), cx, depth);
}

static struct json_object *message_json(const ProtobufCMessage *msg, struct out_ctx *cx,
                                        unsigned depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    if (depth > PBJSON_MAX_DEPTH) {
        cx->too_deep = true;
        return NULL;
    }
    cleanup_json struct json_object *obj = ctl_json_ok(json_object_new_object());

    for (unsigned i = 0; i < desc->n_fields && !cx->too_deep; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        bool unset_oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !field_is_set(msg, f);
        if (unset_oneof || (!(cx->flags & PBJSON_EMIT_DEFAULTS) && !field_is_set(msg, f)))
            continue;
        object_add(obj, f->name, field_json(msg, f, cx, depth));
    }
    return take_ptr(obj);
}

char *pbjson_from_message(const ProtobufCMessage *msg, unsigned flags)
{
    if (!msg || !msg->descriptor)
        return NULL;
    struct out_ctx cx = {.flags = flags};
    cleanup_json struct json_object *root = message_json(msg, &cx, 1);
    if (cx.too_deep)
        return NULL;
    return ctl_json_write(root, flags & PBJSON_PRETTY);
}
