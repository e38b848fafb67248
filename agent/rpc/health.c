/* grpc.Health: the runtime's liveness probe (every 5 s for the sandbox's life;
 * one failure stops the sandbox), so it answers straight from the loop. */
#include "core/version.h"
#include "rpc/dispatch.h"

#include "health.pb-c.h"

static int health_check(struct agent *agent, struct ttrpc_call *call,
                        const ProtobufCMessage *request, struct ka_error *err)
{
    (void)agent, (void)request, (void)err;
    Grpc__HealthCheckResponse resp = GRPC__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_reply(call, &resp.base);
    return 0;
}

static int health_version(struct agent *agent, struct ttrpc_call *call,
                          const ProtobufCMessage *request, struct ka_error *err)
{
    (void)agent, (void)request, (void)err;
    Grpc__VersionCheckResponse resp = GRPC__VERSION_CHECK_RESPONSE__INIT;
    resp.grpc_version = (char *)KA_API_VERSION;
    resp.agent_version = (char *)KA_VERSION;
    rpc_reply(call, &resp.base);
    return 0;
}

const struct rpc_handler rpc_health_handlers[] = {
    {"Check", health_check},
    {"Version", health_version},
    {NULL, NULL},
};
