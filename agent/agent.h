/* The agent's process-wide state, handed to every RPC handler. */
#ifndef KA_AGENT_H
#define KA_AGENT_H

#include <stdbool.h>

#include "core/config.h"
#include "core/deferred.h"
#include "core/reactor.h"
#include "rpc/dispatch.h"
#include "sandbox/sandbox.h"
#include "ttrpc/server.h"

struct ka_mem_agent;

struct agent {
    struct ka_config cfg;
    struct ka_reactor reactor;
    struct ttrpc_server server;
    struct rpc_dispatcher dispatcher;
    struct ka_sandbox sandbox;
    struct ka_watch signal_watch;
    int signal_fd;
    bool init_mode; /* running as PID 1 */
    /* NULL unless agent.mem_agent_enable (memagent/memagent.h) */
    struct ka_mem_agent *mem_agent;
    /* Start-up steps run after the listener is up (core/deferred.h). */
    struct ka_deferred later;
};

#endif
