#include "rpc/dispatch.h"
#include "core/log.h"
#include "core/util.h"

#include <string.h>

#include "agent.pb-c.h"
#include "health.pb-c.h"

void rpc_dispatcher_init(struct rpc_dispatcher *d, struct agent *agent)
{
    memset(d, 0, sizeof(*d));
    d->agent = agent;
}

void rpc_dispatcher_fini(struct rpc_dispatcher *d)
{
    for (unsigned i = 0; i < d->nservices; i++)
        free(d->services[i].handlers);
    d->nservices = 0;
}

int rpc_dispatcher_add(struct rpc_dispatcher *d, const ProtobufCServiceDescriptor *desc,
                       const struct rpc_handler *handlers, struct ka_error *err)
{
    struct rpc_service *svc = NULL;
    for (unsigned i = 0; i < d->nservices; i++)
        if (d->services[i].desc == desc)
            svc = &d->services[i];
    if (!svc) {
        if (d->nservices == RPC_MAX_SERVICES)
            return ka_error_set(err, 0, "too many services");
        svc = &d->services[d->nservices++];
        svc->desc = desc;
        svc->handlers = ka_xcalloc(desc->n_methods, sizeof(*svc->handlers));
    }
    for (const struct rpc_handler *h = handlers; h && h->method; h++) {
        const ProtobufCMethodDescriptor *m =
            protobuf_c_service_descriptor_get_method_by_name(desc, h->method);
        if (!m)
            return ka_error_set(err, 0, "%s has no method %s", desc->name, h->method);
        svc->handlers[m - desc->methods] = h->fn;
    }
    return 0;
}

int rpc_register_all(struct rpc_dispatcher *d, struct ka_error *err)
{
    static const struct rpc_handler *const agent_tables[] = {
        rpc_sandbox_handlers, rpc_container_handlers, rpc_io_handlers,       rpc_cgroup_handlers,
        rpc_network_handlers, rpc_guest_handlers,     rpc_iptables_handlers, rpc_memagent_handlers,
    };
    if (rpc_dispatcher_add(d, &grpc__health__descriptor, rpc_health_handlers, err) < 0)
        return -1;
    /* Register the service even before any handler: every method answers UNIMPLEMENTED. */
    if (rpc_dispatcher_add(d, &grpc__agent_service__descriptor, NULL, err) < 0)
        return -1;
    for (size_t i = 0; i < KA_ARRAY_SIZE(agent_tables); i++)
        if (rpc_dispatcher_add(d, &grpc__agent_service__descriptor, agent_tables[i], err) < 0)
            return -1;
    return 0;
}

void rpc_reply(struct ttrpc_call *call, const ProtobufCMessage *reply)
{
    if (ka_log_enabled(KA_LOG_DEBUG))
        ka_log_kv(KA_LOG_DEBUG, "rpc", "rpc call done", "method", call->method, NULL);
    ttrpc_call_reply(call, reply);
}

void rpc_fail(struct ttrpc_call *call, const struct ka_error *err)
{
    enum ka_status status = ka_error_status(err);
    char code[16];
    snprintf(code, sizeof(code), "%d", (int)status);
    ka_log_kv(status == KA_STATUS_UNIMPLEMENTED ? KA_LOG_DEBUG : KA_LOG_INFO, "rpc",
              "rpc call failed", "method", call->method, "code", code, "error", err->msg, NULL);
    ttrpc_call_fail(call, status, err->msg);
}

static void free_request(void *request)
{
    protobuf_c_message_free_unpacked(request, NULL);
}

/* What a decoded request costs besides its struct: its bytes and strings are copies
 * of their encoding, so the encoded length bounds them; the rest is allocator
 * overhead for the few blocks a request of a handful of fields has. */
#define RPC_KEPT_OVERHEAD 256

bool rpc_keep_request(struct rpc_dispatcher *d, struct ttrpc_call *call,
                      const ProtobufCMessage *request)
{
    if (d->cur_call != call || !d->cur_request || d->cur_request != request)
        return false;
    size_t bytes = d->cur_len + request->descriptor->sizeof_message + RPC_KEPT_OVERHEAD;
    ttrpc_call_hold(call, d->cur_request, bytes, free_request);
    d->cur_request = NULL;
    return true;
}

static const struct rpc_service *find_service(const struct rpc_dispatcher *d, const char *name)
{
    for (unsigned i = 0; i < d->nservices; i++)
        if (strcmp(d->services[i].desc->name, name) == 0)
            return &d->services[i];
    return NULL;
}

void rpc_dispatch(void *ctx, struct ttrpc_call *call, const uint8_t *payload, size_t len)
{
    struct rpc_dispatcher *d = ctx;
    struct ka_error err;
    const struct rpc_service *svc = find_service(d, call->service);
    if (!svc) {
        ka_error_status_set(&err, KA_STATUS_UNIMPLEMENTED, "service %s does not exist",
                            call->service);
        rpc_fail(call, &err);
        return;
    }
    const ProtobufCMethodDescriptor *m =
        protobuf_c_service_descriptor_get_method_by_name(svc->desc, call->method);
    rpc_handler_fn fn = m ? svc->handlers[m - svc->desc->methods] : NULL;
    if (!fn) {
        ka_error_status_set(&err, KA_STATUS_UNIMPLEMENTED, "/%s/%s is not implemented",
                            call->service, call->method);
        rpc_fail(call, &err);
        return;
    }
    static bool first_call = true;
    if (first_call) {
        first_call = false;
        ka_boot_mark("first request");
    }
    /* An allow-list, so a method added later waits for the set-up by default:
     * grpc.Health needs nothing that is deferred (no cgroup, no mount, no device). */
    if (d->setup && ka_deferred_pending(d->setup) && svc->desc != &grpc__health__descriptor)
        ka_deferred_finish(d->setup);
    ProtobufCMessage *req = protobuf_c_message_unpack(m->input, NULL, len, payload);
    if (!req) {
        ka_error_status_set(&err, KA_STATUS_INVALID_ARGUMENT,
                            "%s: request is not a valid %s message", call->method, m->input->name);
        rpc_fail(call, &err);
        return;
    }
    ka_error_clear(&err);
    const uint8_t *outer_payload = d->cur_payload;
    size_t outer_len = d->cur_len;
    struct ttrpc_call *outer_call = d->cur_call;
    ProtobufCMessage *outer_request = d->cur_request;
    d->cur_payload = payload;
    d->cur_len = len;
    d->cur_call = call;
    d->cur_request = req;
    int rc = fn(d->agent, call, req, &err);
    /* The call may be answered and gone by now: whether the request was kept is
     * known here, not from the call. */
    bool kept = d->cur_request == NULL;
    d->cur_payload = outer_payload;
    d->cur_len = outer_len;
    d->cur_call = outer_call;
    d->cur_request = outer_request;
    if (rc < 0)
        rpc_fail(call, &err);
    if (!kept)
        protobuf_c_message_free_unpacked(req, NULL);
    /* The first call is answered (or parked): the start-up steps may go now, and the
     * boot timeline so far can be logged. */
    ka_boot_flush();
    if (d->setup)
        ka_deferred_kick(d->setup);
}
