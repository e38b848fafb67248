/* Declarations shared by the RPC area files. */
#ifndef KA_RPC_RPC_UTIL_H
#define KA_RPC_RPC_UTIL_H

#include "sandbox/sandbox.h"
#include "ttrpc/server.h"

/* The park cancel function for a call waiting on a child's sync pipe. */
void rpc_cancel_spawn_call(struct ttrpc_call *call);
/* A container finished its removal: a DestroySandbox may be waiting for that. */
void rpc_sandbox_container_gone(struct ka_sandbox *sb);

#endif
