#include "sandbox/sandbox.h"
#include "core/child.h"
#include "core/util.h"

#include <string.h>
#include <unistd.h>

#include "agent.pb-c.h"

void ka_sandbox_init(struct ka_sandbox *sb, struct agent *agent, struct ka_reactor *r)
{
    memset(sb, 0, sizeof(*sb));
    sb->agent = agent;
    sb->reactor = r;
    sb->ipc_ns_fd = sb->uts_ns_fd = sb->pid_ns_fd = sb->own_pid_ns_fd = -1;
}

struct ka_container *ka_sandbox_find(struct ka_sandbox *sb, const char *id)
{
    for (struct ka_container *c = sb->containers; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

struct ka_proc *ka_container_find_proc(struct ka_container *c, const char *exec_id)
{
    for (struct ka_proc *p = c->procs; p; p = p->next) {
        if (p->is_init && (exec_id[0] == '\0' || strcmp(exec_id, c->id) == 0))
            return p;
        if (strcmp(p->exec_id, exec_id) == 0)
            return p;
    }
    return NULL;
}

void ka_proc_exited(struct ka_proc *p, int wait_status)
{
    p->exited = true;
    p->exit_code = ka_exit_code(wait_status);
    Grpc__WaitProcessResponse resp = GRPC__WAIT_PROCESS_RESPONSE__INIT;
    resp.status = p->exit_code;
    bool had_waiters = p->waiters != NULL;
    while (p->waiters) {
        struct ttrpc_call *c = p->waiters;
        p->waiters = c->park_next;
        ttrpc_call_reply(c, &resp.base);
    }
    ka_stream_source_done(&p->out);
    ka_stream_source_done(&p->err);
    if (had_waiters) /* the first wait to complete forgets the process (upstream does) */
        ka_container_forget_proc(p->container, p);
}

void ka_proc_free(struct ka_proc *p)
{
    if (!p->exited && p->pid > 0)
        ka_child_unwatch(p->pid);
    while (p->waiters) {
        struct ttrpc_call *c = p->waiters;
        p->waiters = c->park_next;
        ttrpc_call_fail(c, KA_STATUS_INTERNAL, "process removed");
    }
    if (p->spawn_call)
        ttrpc_call_fail(p->spawn_call, KA_STATUS_INTERNAL, "container removed");
    ka_stream_close(&p->in);
    ka_stream_close(&p->out);
    ka_stream_close(&p->err);
    if (p->sync_watch.active)
        ka_reactor_del(&p->sync_watch);
    if (p->sync_fd >= 0)
        close(p->sync_fd);
    if (p->start_fd >= 0)
        close(p->start_fd);
    free(p);
}

void ka_container_forget_proc(struct ka_container *c, struct ka_proc *p)
{
    for (struct ka_proc **pp = &c->procs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    ka_proc_free(p);
}
