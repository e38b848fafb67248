#include "core/reactor.h"
#include "core/log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int ka_reactor_init(struct ka_reactor *r, struct ka_error *err)
{
    memset(r, 0, sizeof(*r));
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0)
        return ka_error_set(err, errno, "epoll_create1");
    return 0;
}

void ka_reactor_fini(struct ka_reactor *r)
{
    if (r->epfd >= 0)
        close(r->epfd);
    r->epfd = -1;
}

int ka_reactor_add(struct ka_reactor *r, struct ka_watch *w, int fd, uint32_t events,
                   ka_watch_fn fn, void *data, struct ka_error *err)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return ka_error_set(err, errno, "epoll_ctl add fd %d", fd);
    w->reactor = r;
    w->fd = fd;
    w->events = events;
    w->fn = fn;
    w->data = data;
    w->active = true;
    return 0;
}

int ka_reactor_mod(struct ka_watch *w, uint32_t events, struct ka_error *err)
{
    if (!w->active)
        return ka_error_set(err, EINVAL, "reactor: modify an inactive watch");
    if (w->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(w->reactor->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
        return ka_error_set(err, errno, "epoll_ctl mod fd %d", w->fd);
    w->events = events;
    return 0;
}

void ka_reactor_del(struct ka_watch *w)
{
    if (!w->active)
        return;
    struct ka_reactor *r = w->reactor;
    /* The fd may already be closed by the owner; epoll drops closed fds itself. */
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->active = false;
    for (int i = r->batch_pos; i < r->batch_len; i++) {
        if (r->batch[i].data.ptr == w)
            r->batch[i].data.ptr = NULL;
    }
}

int ka_reactor_run_once(struct ka_reactor *r, int timeout_ms, struct ka_error *err)
{
    int n = epoll_wait(r->epfd, r->batch, KA_REACTOR_BATCH, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        return ka_error_set(err, errno, "epoll_wait");
    }
    r->batch_len = n;
    for (r->batch_pos = 0; r->batch_pos < n;) {
        struct epoll_event ev = r->batch[r->batch_pos++];
        struct ka_watch *w = ev.data.ptr;
        if (w && w->active)
            w->fn(w, ev.events);
    }
    r->batch_len = 0;
    r->batch_pos = 0;
    return n;
}

int ka_reactor_run(struct ka_reactor *r)
{
    while (!r->stopping) {
        struct ka_error err;
        if (ka_reactor_run_once(r, -1, &err) < 0) {
            /* epoll_wait only fails on a broken epoll fd: nothing left to serve. */
            ka_log(KA_LOG_CRITICAL, "reactor", "%s", err.msg);
            return 1;
        }
    }
    return r->exit_code;
}

void ka_reactor_stop(struct ka_reactor *r, int exit_code)
{
    r->stopping = true;
    r->exit_code = exit_code;
}
