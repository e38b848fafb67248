/* The RPC edge of the mem-agent and of GetDiagnosticData: protobuf in, the
 * engine's structs (memagent/memagent.h) out. */
#ifndef KA_RPC_MEMAGENT_H
#define KA_RPC_MEMAGENT_H

#include <stddef.h>

#include "agent.pb-c.h"
#include "core/config.h"
#include "core/error.h"

/* Kubernetes caps termination messages at 4 KiB; upstream reads no more. */
#define RPC_TERMINATION_LOG_MAX 4096

/* Apply the fields a request sets (proto3 optional) to c; the others stay. A
 * value out of range is INVALID_ARGUMENT and leaves c untouched. */
int rpc_memcg_config_update(const Grpc__MemAgentMemcgConfig *m, struct ka_memcg_config *c,
                            struct ka_error *err);
int rpc_compact_config_update(const Grpc__MemAgentCompactConfig *m, struct ka_compact_config *c,
                              struct ka_error *err);

/* in as UTF-8 (a protobuf string must be), every invalid sequence replaced by
 * U+FFFD as Rust's from_utf8_lossy does. out needs len * 3 + 1 bytes. */
size_t rpc_utf8_lossy(const unsigned char *in, size_t len, char *out);

#endif
