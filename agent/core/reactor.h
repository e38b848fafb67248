/* The one event loop: every fd the agent waits on (listeners, connections,
 * signalfd, process stdio, timers, netlink) is a watch on one epoll instance.
 * Handlers never block; a request that must wait is parked on what it waits for.
 *
 * A watch removed while the loop is dispatching a batch is struck out of that
 * batch, so a handler may free any object (its own or another's) safely. */
#ifndef KA_CORE_REACTOR_H
#define KA_CORE_REACTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "core/error.h"

struct ka_reactor;
struct ka_watch;

typedef void (*ka_watch_fn)(struct ka_watch *w, uint32_t events);

struct ka_watch {
    struct ka_reactor *reactor;
    int fd;
    uint32_t events;
    ka_watch_fn fn;
    void *data;
    bool active;
};

#define KA_REACTOR_BATCH 64

struct ka_reactor {
    int epfd;
    bool stopping;
    int exit_code;
    /* The batch being dispatched, so ka_reactor_del can strike entries out. */
    struct epoll_event batch[KA_REACTOR_BATCH];
    int batch_len;
    int batch_pos;
};

int ka_reactor_init(struct ka_reactor *r, struct ka_error *err);
void ka_reactor_fini(struct ka_reactor *r);

/* Start watching fd for events (EPOLLIN, EPOLLOUT, EPOLLET...). The watch must
 * stay valid until ka_reactor_del; the fd stays owned by the caller. */
int ka_reactor_add(struct ka_reactor *r, struct ka_watch *w, int fd, uint32_t events,
                   ka_watch_fn fn, void *data, struct ka_error *err);
int ka_reactor_mod(struct ka_watch *w, uint32_t events, struct ka_error *err);
/* Stop watching; safe to call on an inactive watch and from inside a handler. */
void ka_reactor_del(struct ka_watch *w);

/* Wait up to timeout_ms (-1 = forever) and dispatch one batch. */
int ka_reactor_run_once(struct ka_reactor *r, int timeout_ms, struct ka_error *err);
/* Loop until ka_reactor_stop; returns the exit code given to it. */
int ka_reactor_run(struct ka_reactor *r);
void ka_reactor_stop(struct ka_reactor *r, int exit_code);

#endif
