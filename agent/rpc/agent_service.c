/* grpc.AgentService: every method Kata defines is routed here by the dispatcher.
 * Methods without an entry answer UNIMPLEMENTED until their area lands. */
#include "rpc/dispatch.h"

const struct rpc_handler rpc_agent_handlers[] = {
    {NULL, NULL},
};
