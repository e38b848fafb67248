/* JSON for agent-ctl, on json-c: parsing untrusted text with the bounds agent-ctl
 * promises, and writing trees in its two output styles. All JSON grammar, escaping
 * and number formatting is json-c's; this only sets its limits and words errors.
 *
 * The parser is json-c's strict tokener with UTF-8 validation, at most
 * JSON_MAX_DEPTH levels deep, on at most JSON_MAX_INPUT_LEN bytes; anything after
 * the top-level value but whitespace is an error. json-c's strict mode still takes
 * NaN and Infinity literals, which JSON has not: they are refused after the parse.
 * Integers are kept as int64/uint64, so every 64-bit value is exact (json-c 0.16
 * clamps literals beyond the 64-bit range to its ends; 0.17 refuses them).
 *
 * Why json-c and not jansson: jansson's integers are long long, so a uint64 above
 * 2^63 (a memory limit of 2^64-1) could be neither read from nor written as a JSON
 * number, which kata-agent-ctl's output and ours use. */
#ifndef KA_AGENT_CTL_JSON_H
#define KA_AGENT_CTL_JSON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

/* Deep enough for any request (an OCI spec nests about eight levels), shallow enough
 * that the recursive walks over a tree cannot exhaust the stack. */
#define JSON_MAX_DEPTH 64
/* Requests are capped at 4 MiB on the wire; JSON for them is a few times larger. */
#define JSON_MAX_INPUT_LEN (64u << 20)

/* Parse exactly one JSON value from text[0..len) (no NUL terminator needed).
 * On success *out owns the tree (json_object_put) and 0 is returned; on failure
 * err says "invalid JSON at offset N: ..." with status INVALID_ARGUMENT. */
int ctl_json_parse(const char *text, size_t len, struct json_object **out, struct ka_error *err);

static inline void ctl_json_putp(struct json_object **v)
{
    json_object_put(*v);
}
#define cleanup_json __attribute__((cleanup(ctl_json_putp)))

/* json-c's constructors return NULL only without memory, which agent-ctl cannot
 * recover from (as ka_xmalloc): abort loudly. Returns v. */
struct json_object *ctl_json_ok(struct json_object *v);

/* "null", "boolean", "number", "string", "array" or "object", for messages. */
const char *ctl_json_type_name(const struct json_object *v);

/* A string value for text that may not be UTF-8 (protobuf strings from the agent):
 * invalid sequences become U+FFFD, so the output is always valid JSON. */
struct json_object *ctl_json_string(const char *s, size_t len);

/* Serialise a tree; returns a malloc'd NUL-terminated string without a final
 * newline. Compact output has no whitespace at all; pretty output indents by two
 * spaces, one member per line. */
char *ctl_json_write(struct json_object *v, bool pretty);

#endif
