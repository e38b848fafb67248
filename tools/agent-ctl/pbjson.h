/* JSON <-> protobuf-c messages, driven only by descriptors, so agent-ctl can call any
 * AgentService method without per-method code.
 *
 * Input follows the protobuf canonical JSON mapping (proto3 JSON):
 *  - a field is named by its proto name ("container_id") or its lowerCamelCase JSON
 *    name ("containerId"); naming the same field twice (either way) is an error, as
 *    is naming two members of one oneof;
 *  - null for a field means "leave it at its default";
 *  - integers are JSON numbers or strings holding a number ("42", "-1", "1e3"); the
 *    value must be integral and fit the field's type; 64-bit values beyond 2^53
 *    should be strings for other JSON tools, but both forms are exact here;
 *  - float/double are numbers or strings, including "NaN", "Infinity", "-Infinity";
 *  - bool is true/false; enums are the value name or an int32 number (proto3 enums
 *    are open, so unknown numbers are kept);
 *  - bytes are base64, standard or URL-safe alphabet, padding optional;
 *  - map<K,V> is an object whose keys are strings ("1", "true" for integer and bool
 *    keys); repeated fields are arrays.
 * google.protobuf well-known types get no special form: Empty is {}, others are
 * ordinary messages.
 *
 * Output uses the proto field names (as kata-agent-ctl's serde output does). 64-bit
 * integers are written as JSON numbers, not strings as canonical proto3 JSON would,
 * to match kata-agent-ctl and keep values readable; this parser reads them back
 * exactly. Bytes are standard base64 with padding, enums their value name (or the
 * number when the descriptor has no name for it), maps objects, float/double
 * non-finite values the strings "NaN"/"Infinity"/"-Infinity". Unknown fields kept
 * from the wire are not shown. */
#ifndef KA_AGENT_CTL_PBJSON_H
#define KA_AGENT_CTL_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "core/error.h"

/* Deeper messages are refused on output (input is bounded by JSON_MAX_DEPTH). */
#define PBJSON_MAX_DEPTH 64

/* Flags for pbjson_from_message(). PBJSON_PRETTY is 1 so a plain "pretty" boolean
 * still works as the flags argument. */
#define PBJSON_PRETTY 0x1u
/* Emit every field, also those at their default: scalars as 0/""/false/first enum
 * value, repeated as [], maps as {}, absent messages as null. Members of a oneof
 * that is not set stay out (at most one member may appear when parsing). */
#define PBJSON_EMIT_DEFAULTS 0x2u

/* Parse json[0..len) (no NUL needed) as a message of type desc. On success *out is
 * a message allocated with the system allocator, freed by
 * protobuf_c_message_free_unpacked(*out, NULL). On failure *out is NULL, nothing
 * leaks, and err says what is wrong and where ("field 'nested': field 'count':
 * 300 is out of range for uint32"), with status INVALID_ARGUMENT. */
int pbjson_to_message(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                      ProtobufCMessage **out, struct ka_error *err);

/* The message as JSON (malloc'd, no trailing newline). Returns NULL only when msg is
 * NULL or nests deeper than PBJSON_MAX_DEPTH. */
char *pbjson_from_message(const ProtobufCMessage *msg, unsigned flags);

#endif
