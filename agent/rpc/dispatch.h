/* Routes a ttrpc call to its handler by "/service/method", using the protobuf-c
 * service descriptors so every method Kata defines is known: a method without a
 * handler answers UNIMPLEMENTED (12), which the runtime tolerates where it
 * matters (UpdateEphemeralMounts, AddARPNeighbors). Protobuf stays at this edge:
 * the request is decoded here and handlers turn it into validated internal structs. */
#ifndef KA_RPC_DISPATCH_H
#define KA_RPC_DISPATCH_H

#include <protobuf-c/protobuf-c.h>

#include "core/deferred.h"
#include "core/error.h"
#include "ttrpc/server.h"

struct agent;

/* A handler answers the call itself (rpc_reply), parks it, or returns a negative
 * value with err filled, and the dispatcher answers with err's status. The request
 * is freed when the handler returns, unless the handler keeps it with the call
 * (rpc_keep_request); otherwise a parked call copies what it needs. */
typedef int (*rpc_handler_fn)(struct agent *agent, struct ttrpc_call *call,
                              const ProtobufCMessage *request, struct ka_error *err);

struct rpc_handler {
    const char *method;
    rpc_handler_fn fn;
};

struct rpc_service {
    const ProtobufCServiceDescriptor *desc;
    rpc_handler_fn *handlers; /* indexed like desc->methods */
};

#define RPC_MAX_SERVICES 4

struct rpc_device_gate;

struct rpc_dispatcher {
    struct agent *agent;
    struct rpc_service services[RPC_MAX_SERVICES];
    unsigned nservices;
    /* The request being handled, so a handler that must wait for a device can
     * keep a copy and be run again later (rpc/devices.h). */
    const uint8_t *cur_payload;
    size_t cur_len;
    /* Its call and decoded message; cur_request is NULL once rpc_keep_request took it. */
    struct ttrpc_call *cur_call;
    ProtobufCMessage *cur_request;
    struct rpc_device_gate *replaying; /* set while a parked call is run again */
    /* Start-up steps still queued (may be NULL): run before any call but Health's. */
    struct ka_deferred *setup;
};

void rpc_dispatcher_init(struct rpc_dispatcher *d, struct agent *agent);
void rpc_dispatcher_fini(struct rpc_dispatcher *d);

/* Register a service (once) and add handlers to it (a table ending with {NULL, NULL};
 * several tables may add to one service). A handler naming a method the service
 * lacks is a programming error: -1 and err. */
int rpc_dispatcher_add(struct rpc_dispatcher *d, const ProtobufCServiceDescriptor *desc,
                       const struct rpc_handler *handlers, struct ka_error *err);

/* The ttrpc_dispatch_fn for the server; ctx is the dispatcher. */
void rpc_dispatch(void *ctx, struct ttrpc_call *call, const uint8_t *payload, size_t len);

/* Answer a call with a reply message (NULL for google.protobuf.Empty). */
void rpc_reply(struct ttrpc_call *call, const ProtobufCMessage *reply);
/* Answer a call with err's status and message, logging it once. */
void rpc_fail(struct ttrpc_call *call, const struct ka_error *err);

/* For a handler that must keep using its decoded request after it returns (WriteStdin
 * into a full pipe): the request stays with the call, not copied, until the call is
 * answered, failed or cancelled, and counts against the connection's and the server's
 * memory bounds meanwhile (ttrpc_call_hold). False when request is not the one being
 * dispatched for call (a programming error; nothing is kept). */
bool rpc_keep_request(struct rpc_dispatcher *d, struct ttrpc_call *call,
                      const ProtobufCMessage *request);

/* Register every service the agent serves. */
int rpc_register_all(struct rpc_dispatcher *d, struct ka_error *err);

extern const struct rpc_handler rpc_health_handlers[];
extern const struct rpc_handler rpc_sandbox_handlers[];
extern const struct rpc_handler rpc_container_handlers[];
extern const struct rpc_handler rpc_io_handlers[];
extern const struct rpc_handler rpc_cgroup_handlers[];
extern const struct rpc_handler rpc_network_handlers[];
extern const struct rpc_handler rpc_guest_handlers[];
extern const struct rpc_handler rpc_iptables_handlers[];
extern const struct rpc_handler rpc_memagent_handlers[];

#endif
