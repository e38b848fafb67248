/* Declarations shared by the RPC area files. */
#ifndef KA_RPC_RPC_UTIL_H
#define KA_RPC_RPC_UTIL_H

#include "agent.pb-c.h"
#include "rpc/devices.h"
#include "sandbox/sandbox.h"
#include "ttrpc/server.h"

/* The park cancel function for a call waiting on a child's sync pipe. */
void rpc_cancel_spawn_call(struct ttrpc_call *call);
/* A container finished its removal: a DestroySandbox may be waiting for that. */
void rpc_sandbox_container_gone(struct ka_sandbox *sb);

/* Mount (or take references on) a request's storages, block ones from the
 * device nodes rpc_await_devices found; cid names the container (NULL for the
 * sandbox's storages). */
int rpc_add_storages(struct ka_storage_ref **refs, Grpc__Storage **st, size_t n,
                     const struct rpc_dev_set *devs, const int *storage_need, const char *cid,
                     struct ka_error *err);

#endif
