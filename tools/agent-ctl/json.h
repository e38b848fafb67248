/* A small, strict JSON (RFC 8259) parser into a tree, and a writer.
 *
 * The parser takes untrusted input and is bounded: input size, nesting depth and
 * number-literal length all have caps, every byte is checked (UTF-8 is validated,
 * \uXXXX escapes and surrogate pairs are decoded to UTF-8, raw control characters
 * in strings are refused), and anything after the top-level value is an error.
 * Errors name the byte offset where the input went wrong.
 *
 * Numbers are kept as their validated literal text so that 64-bit integers keep
 * their precision; the reader of the tree decides how to convert them. */
#ifndef KA_AGENT_CTL_JSON_H
#define KA_AGENT_CTL_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

/* Deep enough for any request (an OCI spec nests about eight levels), shallow enough
 * that the recursive parser, writer and free cannot exhaust the stack. */
#define JSON_MAX_DEPTH 64
/* A double written out in full decimal takes a few hundred digits; anything longer
 * only costs time in strtod. */
#define JSON_MAX_NUMBER_LEN 1024
/* Requests are capped at 4 MiB on the wire; JSON for them is a few times larger. */
#define JSON_MAX_INPUT_LEN (64u << 20)

enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

struct json_value;

struct json_member {
    char *key; /* UTF-8, NUL-terminated, may hold an embedded NUL from \u0000 */
    size_t key_len;
    struct json_value *value;
};

struct json_value {
    enum json_type type;
    size_t offset; /* byte offset of the value in the parsed input (0 for built values) */
    union {
        bool boolean;
        struct {
            char *text; /* the literal, NUL-terminated, matching the RFC 8259 grammar */
            size_t len;
        } number;
        struct {
            char *s; /* UTF-8, NUL-terminated, may hold an embedded NUL from \u0000 */
            size_t len;
        } string;
        struct {
            struct json_value **items;
            size_t n;
            size_t cap; /* allocated slots, private to json.c */
        } array;
        struct {
            struct json_member *members; /* in input order; duplicate keys are kept */
            size_t n;
            size_t cap; /* allocated slots, private to json.c */
        } object;
    } u;
};

/* Parse exactly one JSON value from text[0..len) (no NUL terminator needed).
 * On success *out owns the tree (free with json_free) and 0 is returned; on failure
 * err says "invalid JSON at offset N: ..." with status INVALID_ARGUMENT. */
int json_parse(const char *text, size_t len, struct json_value **out, struct ka_error *err);

void json_free(struct json_value *v);

static inline void json_freep(struct json_value **v)
{
    json_free(*v);
}
#define cleanup_json __attribute__((cleanup(json_freep)))

/* "null", "boolean", "number", "string", "array" or "object", for messages. */
const char *json_type_name(enum json_type type);

/* Whether s[0..len) is exactly one number in RFC 8259 grammar (no whitespace). */
bool json_is_number(const char *s, size_t len);

/* The last member named key, or NULL (also when obj is not an object). */
const struct json_value *json_object_get(const struct json_value *obj, const char *key);

/* Building trees (abort on allocation failure). The string and key constructors
 * copy their input; json_new_number() trusts its caller to pass a valid literal. */
struct json_value *json_new_null(void);
struct json_value *json_new_bool(bool b);
struct json_value *json_new_number(const char *literal);
struct json_value *json_new_string(const char *s, size_t len);
struct json_value *json_new_array(void);
struct json_value *json_new_object(void);
/* Take ownership of item / value. */
void json_array_append(struct json_value *arr, struct json_value *item);
void json_object_append(struct json_value *obj, const char *key, size_t key_len,
                        struct json_value *value);

/* A growable output buffer; data is always NUL-terminated once anything is appended. */
struct json_buf {
    char *data;
    size_t len;
    size_t cap;
};

void json_buf_append(struct json_buf *b, const char *s, size_t len);
/* Append s as a quoted JSON string. Invalid UTF-8 is replaced by U+FFFD so the
 * output is always valid JSON whatever bytes a protobuf string field held. */
void json_buf_append_string(struct json_buf *b, const char *s, size_t len);

#define JSON_WRITE_PRETTY 0x1u /* two-space indentation, one member per line */

/* Serialise a tree; returns a malloc'd NUL-terminated string without a final newline.
 * Compact output has no whitespace at all. */
char *json_write(const struct json_value *v, unsigned flags);

#endif
