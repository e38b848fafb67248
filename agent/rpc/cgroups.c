/* Container cgroups at the RPC edge: setting them up for CreateContainer, joining,
 * signalling and removing them for the lifecycle in rpc/container.c, and the
 * cgroup RPCs UpdateContainer, StatsContainer, PauseContainer, ResumeContainer
 * and GetOOMEvent. Waiting (a freeze to complete, a cgroup to empty, an OOM
 * event to come) is parked on the reactor with timers and watches. */
#include "rpc/cgroups.h"
#include "agent.h"
#include "cgroups/cgroup.h"
#include "cgroups/oom.h"
#include "cgroups/resources.h"
#include "cgroups/stats.h"
#include "core/log.h"
#include "core/util.h"
#include "rpc/dispatch.h"
#include "rpc/oci_convert.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "agent.pb-c.h"

#define MOUNTINFO "/proc/self/mountinfo"
#define FREEZE_POLL_MS 10
#define FREEZE_POLLS 1000 /* 10 s for a freeze to complete */
#define REMOVE_RETRY_MS 20
#define REMOVE_RETRIES 250 /* 5 s of EBUSY before giving up on a cgroup */

struct ka_sandbox_cgroups {
    bool devcg_inited;      /* the pod cgroup's devices were set up (first container) */
    bool devcg_allowed_all; /* ... and allow every device (a privileged container came) */
    /* Cgroup directories the agent made that belong to no container of their own
     * (the pod's, the path's intermediates): removed once no container is below. */
    char **made;
    size_t n_made;
    char queue[KA_OOM_QUEUE_CAP][KA_ID_MAX + 1];
    size_t head, len;
    struct ttrpc_call *waiters; /* GetOOMEvent, oldest first, chained by park_next */
    bool closed;                /* DestroySandbox */
};

struct ka_container_cgroups {
    struct ka_oom_watch *oom;
    bool paused;
    /* A PauseContainer/ResumeContainer waiting for the state to be reached. */
    struct ttrpc_call *freeze_call;
    bool freeze_target;
    int freeze_polls;
    int freeze_timer_fd;
    struct ka_watch freeze_timer;
    struct remover *remover; /* removing c's cgroup, c waits for it */
};

/* ---- state ---------------------------------------------------------------------------- */

static struct ka_sandbox_cgroups *sb_state(struct ka_sandbox *sb)
{
    if (!sb->cg)
        sb->cg = ka_xcalloc(1, sizeof(*sb->cg));
    return sb->cg;
}

static struct ka_container_cgroups *ctr_state(struct ka_container *c)
{
    if (!c->cg) {
        c->cg = ka_xcalloc(1, sizeof(*c->cg));
        c->cg->freeze_timer_fd = -1;
    }
    return c->cg;
}

static struct ka_reactor *reactor_of(struct ka_container *c)
{
    return &c->sandbox->agent->reactor;
}

static int periodic_timer(int *fd, unsigned ms, struct ka_error *err)
{
    *fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (*fd < 0)
        return ka_error_set(err, errno, "timerfd");
    struct itimerspec its = {.it_value.tv_nsec = ms * 1000000L,
                             .it_interval.tv_nsec = ms * 1000000L};
    if (timerfd_settime(*fd, 0, &its, NULL) < 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return ka_error_set(err, e, "timerfd_settime");
    }
    return 0;
}

/* ---- directories the agent made on the way ----------------------------------------------- */

static void note_made(const char *dir, void *data)
{
    struct ka_sandbox_cgroups *st = data;
    for (size_t i = 0; i < st->n_made; i++)
        if (strcmp(st->made[i], dir) == 0)
            return;
    st->made = ka_xrealloc(st->made, (st->n_made + 1) * sizeof(*st->made));
    st->made[st->n_made++] = ka_xstrdup(dir);
}

struct remover;
static struct remover *removers;
static bool dir_in_use(struct ka_sandbox *sb, const char *dir);

static int deeper_first(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Remove the directories we made that no container (nor a removal still going on)
 * has at or below it, deepest first; rmdir refuses a cgroup that still has
 * children or tasks, so anything someone else put there keeps it (and it is tried
 * again at the next removal). */
static void prune_made(struct ka_sandbox *sb)
{
    struct ka_sandbox_cgroups *st = sb->cg;
    if (!st || st->n_made == 0)
        return;
    qsort(st->made, st->n_made, sizeof(*st->made), deeper_first);
    size_t kept = 0;
    for (size_t i = 0; i < st->n_made; i++) {
        char *dir = st->made[i];
        if (dir_in_use(sb, dir)) {
            st->made[kept++] = dir;
        } else if (rmdir(dir) == 0 || errno == ENOENT) {
            free(dir);
        } else {
            ka_log(KA_LOG_DEBUG, "cgroups", "keep cgroup %s for now: %s", dir, strerror(errno));
            st->made[kept++] = dir;
        }
    }
    st->n_made = kept;
}

/* ---- removal with retries ------------------------------------------------------------ */

/* Removes a cgroup that was busy, retrying on a timer. Kept on a list so that
 * nothing is lost when the agent exits with some still going. */
struct remover {
    struct remover *next;
    struct ka_sandbox *sb;
    struct ka_cgroup *cg;
    struct ka_container *waiter; /* checked for removal again when done; may be NULL */
    int fd;
    struct ka_watch watch;
    int tries;
};

static bool dir_in_use(struct ka_sandbox *sb, const char *dir)
{
    for (struct ka_container *c = sb->containers; c; c = c->next)
        for (size_t i = 0; c->cgroup && i < c->cgroup->n; i++)
            if (ka_cgroup_paths_overlap(dir, c->cgroup->d[i].dir))
                return true;
    for (struct remover *r = removers; r; r = r->next)
        for (size_t i = 0; i < r->cg->n; i++)
            if (ka_cgroup_paths_overlap(dir, r->cg->d[i].dir))
                return true;
    return false;
}

static void remover_done(struct remover *r)
{
    for (struct remover **pp = &removers; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    ka_reactor_del(&r->watch);
    close(r->fd);
    ka_cgroup_free(r->cg);
    struct ka_container *c = r->waiter;
    struct ka_sandbox *sb = r->sb;
    free(r);
    prune_made(sb);
    if (c) {
        c->cg->remover = NULL;
        ka_container_check_removal(c);
    }
}

static void remover_tick(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct remover *r = w->data;
    uint64_t n;
    if (read(r->fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
        return;
    struct ka_error err;
    int rc = ka_cgroup_destroy(r->cg, &err);
    if (rc == -EBUSY && ++r->tries < REMOVE_RETRIES)
        return;
    if (rc < 0)
        ka_log(KA_LOG_WARN, "cgroups", "giving up on cgroup %s: %s", r->cg->path, err.msg);
    remover_done(r);
}

/* Take cg over and keep trying; false (and cg freed) when no timer can be had. */
static bool remover_start(struct ka_sandbox *sb, struct ka_reactor *reactor, struct ka_cgroup *cg,
                          struct ka_container *waiter)
{
    struct remover *r = ka_xcalloc(1, sizeof(*r));
    struct ka_error err;
    r->sb = sb;
    r->cg = cg;
    r->waiter = waiter;
    if (periodic_timer(&r->fd, REMOVE_RETRY_MS, &err) < 0 ||
        ka_reactor_add(reactor, &r->watch, r->fd, EPOLLIN, remover_tick, r, &err) < 0) {
        ka_log(KA_LOG_WARN, "cgroups", "cannot retry removing cgroup %s: %s", cg->path, err.msg);
        if (r->fd >= 0)
            close(r->fd);
        ka_cgroup_free(cg);
        free(r);
        return false;
    }
    r->next = removers;
    removers = r;
    if (waiter)
        waiter->cg->remover = r;
    return true;
}

/* ---- lifecycle hooks -------------------------------------------------------------------- */

static bool spec_allows_all(const struct ka_resources *r)
{
    return ka_device_rules_allow_all(r->devices, r->n_devices);
}

/* §6.1: the pod cgroup (the container's parent) is set up by the first container
 * (and again whenever the agent makes it anew, having removed it with its last
 * container): deny every device and allow the defaults, or allow all when that
 * container asks for all; a later container asking for all widens it. The spec's
 * rules go to the pod too, so that the container may have them (v1 children cannot
 * exceed their parent). Only the pod is widened: each container starts from its
 * own base. v2 has no such inheritance: the container's program is all there is. */
static int setup_pod(struct ka_sandbox_cgroups *st, const struct ka_cgroup_layout *l,
                     const char *path, const struct ka_resources *res, struct ka_error *err)
{
    char pod[KA_CGROUP_PATH_MAX + 2];
    ka_cgroup_parent(path, pod, sizeof(pod));
    if (l->version != KA_CGROUP_V1 || strcmp(pod, "/") == 0)
        return 0;
    bool all = spec_allows_all(res);
    struct ka_cgroup *pc = ka_cgroup_new(l, pod);
    int rc = ka_cgroup_create(pc, err);
    ka_cgroup_each_made(pc, true, note_made, st);
    bool fresh = false;
    for (size_t i = 0; i < pc->n; i++)
        if ((pc->d[i].controllers & KA_CG_BIT(KA_CG_DEVICES)) && pc->d[i].made_from)
            fresh = true;
    if (rc == 0 && (!st->devcg_inited || fresh)) {
        rc = ka_cgroup_set_devices(pc, all, NULL, 0, true, err);
        if (rc == 0) {
            st->devcg_inited = true;
            st->devcg_allowed_all = all;
        }
    } else if (rc == 0 && !st->devcg_allowed_all && all) {
        rc = ka_cgroup_set_devices(pc, true, NULL, 0, true, err);
        if (rc == 0)
            st->devcg_allowed_all = true;
    }
    if (rc == 0 && res->n_devices)
        rc = ka_cgroup_set_devices(pc, st->devcg_allowed_all, res->devices, res->n_devices, false,
                                   err);
    ka_cgroup_free(pc);
    return rc < 0 ? ka_error_wrap(err, "pod cgroup %s", pod) : 0;
}

/* Issue 13: signalling or removing a container acts on its cgroup and everything
 * below it, so a container whose path is another's, or above or below another's,
 * could kill that one. Refused, against live containers and cgroups still being
 * removed. Siblings under a shared pod cgroup are fine. */
static int check_overlap(struct ka_container *c, const char *path, struct ka_error *err)
{
    for (struct ka_container *o = c->sandbox->containers; o; o = o->next)
        if (o != c && o->cgroup && ka_cgroup_paths_overlap(path, o->cgroup->path))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "cgroups path %s overlaps container %s's cgroup %s", path,
                                       o->id, o->cgroup->path);
    for (struct remover *r = removers; r; r = r->next)
        if (r->sb == c->sandbox && ka_cgroup_paths_overlap(path, r->cg->path))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "cgroups path %s overlaps cgroup %s, still being removed",
                                       path, r->cg->path);
    return 0;
}

int rpc_cgroup_setup(struct ka_container *c, struct ka_error *err)
{
    struct ka_sandbox_cgroups *st = sb_state(c->sandbox);
    struct ka_cgroup_layout l;
    if (ka_cgroup_layout_detect(&l, MOUNTINFO, KA_CGROUP_ROOT, err) < 0)
        return ka_error_wrap(err, "find the cgroup hierarchies");
    int rc = 0;
    struct ka_cgroup *cg = NULL;
    if (l.version == KA_CGROUP_NONE) {
        /* Fail closed (issue 13): without a cgroup there is no device control, no
         * limits and no way to kill everything the container started. */
        rc = ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                 "no cgroup hierarchy is mounted (looked at %s): containers "
                                 "cannot be confined",
                                 KA_CGROUP_ROOT);
        goto out;
    }
    char path[KA_CGROUP_PATH_MAX + 2];
    const struct ka_resources *res = &c->spec->resources;
    if (ka_cgroup_path(c->spec->cgroups_path, c->id, path, sizeof(path), err) < 0 ||
        check_overlap(c, path, err) < 0) {
        rc = -1;
        goto out;
    }
    if (setup_pod(st, &l, path, res, err) < 0) {
        rc = -1;
        prune_made(c->sandbox);
        goto out;
    }
    cg = ka_cgroup_new(&l, path);
    /* The container's own list starts from deny-all + defaults unless its own spec
     * asks for every device: a pod widened by an earlier privileged container
     * must not widen this one (issue 13). */
    bool all = spec_allows_all(res);
    int created = ka_cgroup_create(cg, err);
    ka_cgroup_each_made(cg, false, note_made, st); /* the leaf goes with the container */
    if (created < 0 ||
        ka_cgroup_set_devices(cg, all, res->devices, res->n_devices, true, err) < 0 ||
        ka_cgroup_set_resources(cg, res, err) < 0) {
        struct ka_error derr;
        ka_cgroup_destroy(cg, &derr); /* nothing has joined it yet */
        ka_cgroup_free(cg);
        prune_made(c->sandbox);
        rc = ka_error_wrap(err, "cgroup %s", path);
        goto out;
    }
    c->cgroup = cg;
    ka_log_kv(KA_LOG_DEBUG, "cgroups", "cgroup created", "container_id", c->id, "path", path,
              "version", l.version == KA_CGROUP_V2 ? "2" : "1", NULL);
out:
    ka_cgroup_layout_free(&l);
    return rc;
}

int rpc_cgroup_procs_fds(struct ka_container *c, int *fds, size_t max, size_t *n,
                         struct ka_error *err)
{
    *n = 0;
    if (!c->cgroup)
        return 0;
    return ka_cgroup_open_procs(c->cgroup, fds, max, n, err);
}

static void oom_event(void *data);

void rpc_cgroup_container_started(struct ka_container *c)
{
    struct ka_sandbox *sb = c->sandbox;
    if (!c->cgroup || (sb->id && strcmp(sb->id, c->id) == 0))
        return;
    struct ka_container_cgroups *cs = ctr_state(c);
    if (cs->oom)
        return;
    struct ka_error err;
    if (ka_oom_watch_start(reactor_of(c), c->cgroup, oom_event, c, &cs->oom, &err) < 0)
        ka_log_kv(KA_LOG_WARN, "cgroups", "no OOM events for this container", "container_id", c->id,
                  "error", err.msg, NULL);
}

bool rpc_cgroup_paused(const struct ka_container *c)
{
    return c->cg && c->cg->paused;
}

int rpc_cgroup_signal_all(struct ka_container *c, int sig, pid_t skip)
{
    if (!c->cgroup)
        return -1;
    struct ka_error err;
    int n = ka_cgroup_signal_all(c->cgroup, sig, skip, &err);
    if (n < 0)
        ka_log_kv(KA_LOG_WARN, "cgroups", "signal the processes of the cgroup", "container_id",
                  c->id, "error", err.msg, NULL);
    /* A paused container keeps its signals for the resume, but SIGKILL is meant
     * to end it now: v1 frozen tasks cannot die, so thaw it. */
    if (sig == SIGKILL && rpc_cgroup_paused(c)) {
        if (ka_cgroup_freeze(c->cgroup, false, &err) < 0)
            ka_log(KA_LOG_WARN, "cgroups", "thaw %s: %s", c->cgroup->path, err.msg);
        c->cg->paused = false;
    }
    return n;
}

void rpc_cgroup_kill(struct ka_container *c)
{
    if (!c->cgroup)
        return;
    struct ka_error err;
    ka_cgroup_signal_all(c->cgroup, SIGKILL, 0, &err);
    int state = ka_cgroup_freeze_state(c->cgroup, &err);
    if (state == KA_FREEZE_FROZEN || state == KA_FREEZE_FREEZING) {
        if (ka_cgroup_freeze(c->cgroup, false, &err) < 0)
            ka_log(KA_LOG_WARN, "cgroups", "thaw %s: %s", c->cgroup->path, err.msg);
    }
    if (c->cg)
        c->cg->paused = false;
}

bool rpc_cgroup_release(struct ka_container *c)
{
    if (c->cg && c->cg->remover)
        return false; /* still trying */
    if (!c->cgroup)
        return true;
    if (c->cg && c->cg->oom) {
        /* An OOM kill that ended the container is still reported (the removal can
         * overtake the notification); nothing after that. */
        ka_oom_watch_flush(c->cg->oom);
        ka_oom_watch_stop(c->cg->oom);
        c->cg->oom = NULL;
    }
    struct ka_error err;
    int rc = ka_cgroup_destroy(c->cgroup, &err);
    if (rc == -EBUSY) {
        ctr_state(c);
        struct ka_cgroup *cg = take_ptr(c->cgroup);
        return !remover_start(c->sandbox, reactor_of(c), cg, c);
    }
    if (rc < 0)
        ka_log_kv(KA_LOG_WARN, "cgroups", "remove the container cgroup", "container_id", c->id,
                  "error", err.msg, NULL);
    ka_cgroup_free(take_ptr(c->cgroup));
    prune_made(c->sandbox);
    return true;
}

static void freeze_stop(struct ka_container_cgroups *cs)
{
    if (cs->freeze_timer.active)
        ka_reactor_del(&cs->freeze_timer);
    if (cs->freeze_timer_fd >= 0)
        close(cs->freeze_timer_fd);
    cs->freeze_timer_fd = -1;
}

void rpc_cgroup_container_free(struct ka_container *c)
{
    struct ka_container_cgroups *cs = c->cg;
    if (cs) {
        ka_oom_watch_stop(cs->oom);
        freeze_stop(cs);
        if (cs->freeze_call)
            ttrpc_call_fail(cs->freeze_call, KA_STATUS_INTERNAL, "container removed");
        if (cs->remover)
            cs->remover->waiter = NULL; /* it goes on alone */
        free(cs);
        c->cg = NULL;
    }
    if (c->cgroup) {
        struct ka_error err;
        struct ka_cgroup *cg = take_ptr(c->cgroup);
        int rc = ka_cgroup_destroy(cg, &err);
        if (rc == -EBUSY) {
            remover_start(c->sandbox, reactor_of(c), cg, NULL);
        } else {
            ka_cgroup_free(cg);
            prune_made(c->sandbox);
        }
    }
}

/* ---- OOM events -------------------------------------------------------------------------- */

static void reply_oom(struct ttrpc_call *call, const char *cid)
{
    Grpc__OOMEvent ev = GRPC__OOMEVENT__INIT;
    ev.container_id = (char *)cid;
    rpc_reply(call, &ev.base);
}

static void oom_event(void *data)
{
    struct ka_container *c = data;
    struct ka_sandbox_cgroups *st = sb_state(c->sandbox);
    ka_log_kv(KA_LOG_INFO, "cgroups", "OOM kill in container", "container_id", c->id, NULL);
    if (st->closed)
        return;
    if (st->waiters) {
        struct ttrpc_call *call = st->waiters;
        st->waiters = call->park_next;
        reply_oom(call, c->id);
        return;
    }
    if (st->len == KA_OOM_QUEUE_CAP) {
        ka_log_kv(KA_LOG_WARN, "cgroups", "OOM event queue full: event dropped", "container_id",
                  c->id, NULL);
        return;
    }
    snprintf(st->queue[(st->head + st->len) % KA_OOM_QUEUE_CAP], KA_ID_MAX + 1, "%s", c->id);
    st->len++;
}

static void cancel_oom_wait(struct ttrpc_call *call)
{
    struct ka_sandbox_cgroups *st = call->park_data;
    for (struct ttrpc_call **pp = &st->waiters; *pp; pp = &(*pp)->park_next)
        if (*pp == call) {
            *pp = call->park_next;
            return;
        }
}

static int get_oom_event(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                         struct ka_error *err)
{
    (void)m;
    struct ka_sandbox_cgroups *st = sb_state(&a->sandbox);
    if (st->closed) {
        ttrpc_call_fail(call, KA_STATUS_INTERNAL, ""); /* upstream: the channel is closed */
        return 0;
    }
    (void)err;
    if (st->len > 0) {
        char cid[KA_ID_MAX + 1];
        snprintf(cid, sizeof(cid), "%s", st->queue[st->head]);
        st->head = (st->head + 1) % KA_OOM_QUEUE_CAP;
        st->len--;
        reply_oom(call, cid);
        return 0;
    }
    call->park_next = NULL;
    struct ttrpc_call **tail = &st->waiters;
    while (*tail)
        tail = &(*tail)->park_next;
    *tail = call;
    ttrpc_call_park(call, cancel_oom_wait, st);
    return 0;
}

void rpc_cgroup_sandbox_destroyed(struct ka_sandbox *sb)
{
    struct ka_sandbox_cgroups *st = sb_state(sb);
    st->closed = true;
    st->len = 0;
    while (st->waiters) {
        struct ttrpc_call *call = st->waiters;
        st->waiters = call->park_next;
        ttrpc_call_fail(call, KA_STATUS_INTERNAL, "");
    }
}

/* ---- UpdateContainer ------------------------------------------------------------------------ */

static struct ka_container *find(struct agent *a, const char *id, struct ka_error *err)
{
    struct ka_container *c = ka_sandbox_find(&a->sandbox, id ? id : "");
    if (!c)
        ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid container id %.80s",
                            id ? id : "");
    return c;
}

static void str_replace(char **dst, char **src)
{
    if (*src) {
        free(*dst);
        *dst = take_ptr(*src);
    }
}

/* Keep what UpdateContainer set in the spec: the sections it sent replace the old
 * ones (device rules are added by the caller). */
static void merge_resources(struct ka_resources *into, struct ka_resources *upd)
{
    if (upd->memory.present)
        into->memory = upd->memory;
    if (upd->cpu.present) {
        struct ka_cpu_resources old = into->cpu;
        into->cpu = upd->cpu;
        into->cpu.cpus = old.cpus;
        into->cpu.mems = old.mems;
        str_replace(&into->cpu.cpus, &upd->cpu.cpus);
        str_replace(&into->cpu.mems, &upd->cpu.mems);
    }
    if (upd->has_pids) {
        into->has_pids = true;
        into->pids_limit = upd->pids_limit;
    }
    if (upd->blkio.present) {
        struct ka_resources tmp = {.blkio = into->blkio};
        ka_resources_free(&tmp);
        into->blkio = upd->blkio;
        memset(&upd->blkio, 0, sizeof(upd->blkio));
    }
    if (upd->n_hugepages) {
        free(into->hugepages);
        into->hugepages = take_ptr(upd->hugepages);
        into->n_hugepages = upd->n_hugepages;
        upd->n_hugepages = 0;
    }
}

static int update_container(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                            struct ka_error *err)
{
    const Grpc__UpdateContainerRequest *req = (const Grpc__UpdateContainerRequest *)m;
    struct ka_container *c = find(a, req->container_id, err);
    if (!c)
        return -1;
    struct ka_resources upd;
    if (ka_resources_from_proto(req->resources, &upd, err) < 0)
        return ka_error_wrap(err, "update container %s", c->id);
    int rc = 0;
    if (!c->cgroup && (upd.memory.present || upd.cpu.present || upd.has_pids || upd.blkio.present ||
                       upd.n_hugepages || upd.n_devices))
        rc = ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                 "container %s has no cgroup to update", c->id);
    if (rc == 0 && c->cgroup)
        rc = ka_cgroup_set_resources(c->cgroup, &upd, err);
    struct ka_resources *cur = &c->spec->resources;
    if (rc == 0 && upd.n_devices) {
        /* Rules add up: v1 gets the new ones, v2 a program built from all of them. */
        size_t before = cur->n_devices;
        cur->devices = ka_xrealloc(cur->devices, (before + upd.n_devices) * sizeof(*cur->devices));
        memcpy(cur->devices + before, upd.devices, upd.n_devices * sizeof(*upd.devices));
        cur->n_devices = before + upd.n_devices;
        rc = c->cgroup->version == KA_CGROUP_V2
                 ? ka_cgroup_set_devices(c->cgroup, c->cgroup->devices_allow_all, cur->devices,
                                         cur->n_devices, true, err)
                 : ka_cgroup_set_devices(c->cgroup, false, cur->devices + before, upd.n_devices,
                                         false, err);
    }
    if (rc == 0)
        merge_resources(cur, &upd);
    ka_resources_free(&upd);
    if (rc < 0)
        return ka_error_wrap(err, "update container %s", c->id);
    rpc_reply(call, NULL);
    return 0;
}

/* ---- StatsContainer ---------------------------------------------------------------------- */

struct stats_reply {
    Grpc__StatsContainerResponse resp;
    Grpc__CgroupStats cg;
    Grpc__CpuStats cpu;
    Grpc__CpuUsage usage;
    Grpc__ThrottlingData throttling;
    Grpc__MemoryStats mem;
    Grpc__MemoryData mem_usage, swap_usage, kernel_usage;
    Grpc__MemoryStats__StatsEntry *mem_entries;
    Grpc__MemoryStats__StatsEntry **mem_entry_ptrs;
    Grpc__PidsStats pids;
    Grpc__BlkioStats blkio;
    Grpc__BlkioStatsEntry *blkio_entries[KA_BLKIO_LIST_COUNT];
    Grpc__BlkioStatsEntry **blkio_ptrs[KA_BLKIO_LIST_COUNT];
    Grpc__HugetlbStats huge[KA_STATS_MAX_HUGETLB];
    Grpc__CgroupStats__HugetlbStatsEntry huge_entries[KA_STATS_MAX_HUGETLB];
    Grpc__CgroupStats__HugetlbStatsEntry *huge_ptrs[KA_STATS_MAX_HUGETLB];
    Grpc__NetworkStats net[KA_STATS_MAX_IFACES];
    Grpc__NetworkStats *net_ptrs[KA_STATS_MAX_IFACES];
    struct ka_net_stats ifaces[KA_STATS_MAX_IFACES];
};

static void mem_data(Grpc__MemoryData *out, const struct ka_mem_data *in)
{
    grpc__memory_data__init(out);
    out->usage = in->usage;
    out->max_usage = in->max_usage;
    out->failcnt = in->failcnt;
    out->limit = in->limit;
}

static void fill_blkio(struct stats_reply *r, const struct ka_cgroup_stats *st)
{
    Grpc__BlkioStatsEntry ***lists[KA_BLKIO_LIST_COUNT] = {
        &r->blkio.io_service_bytes_recursive, &r->blkio.io_serviced_recursive,
        &r->blkio.io_queued_recursive,        &r->blkio.io_service_time_recursive,
        &r->blkio.io_wait_time_recursive,     &r->blkio.io_merged_recursive,
        &r->blkio.io_time_recursive,          &r->blkio.sectors_recursive};
    size_t *counts[KA_BLKIO_LIST_COUNT] = {
        &r->blkio.n_io_service_bytes_recursive, &r->blkio.n_io_serviced_recursive,
        &r->blkio.n_io_queued_recursive,        &r->blkio.n_io_service_time_recursive,
        &r->blkio.n_io_wait_time_recursive,     &r->blkio.n_io_merged_recursive,
        &r->blkio.n_io_time_recursive,          &r->blkio.n_sectors_recursive};
    for (int l = 0; l < KA_BLKIO_LIST_COUNT; l++) {
        size_t n = st->n_blkio[l];
        if (n == 0)
            continue;
        r->blkio_entries[l] = ka_xcalloc(n, sizeof(Grpc__BlkioStatsEntry));
        r->blkio_ptrs[l] = ka_xcalloc(n, sizeof(Grpc__BlkioStatsEntry *));
        for (size_t i = 0; i < n; i++) {
            Grpc__BlkioStatsEntry *e = &r->blkio_entries[l][i];
            grpc__blkio_stats_entry__init(e);
            e->major = st->blkio[l][i].major;
            e->minor = st->blkio[l][i].minor;
            e->op = (char *)st->blkio[l][i].op;
            e->value = st->blkio[l][i].value;
            r->blkio_ptrs[l][i] = e;
        }
        *lists[l] = r->blkio_ptrs[l];
        *counts[l] = n;
    }
}

static void fill_cgroup_stats(struct stats_reply *r, struct ka_cgroup_stats *st)
{
    grpc__cgroup_stats__init(&r->cg);
    r->resp.cgroup_stats = &r->cg;
    if (st->has_cpu || st->has_throttling) {
        grpc__cpu_stats__init(&r->cpu);
        grpc__cpu_usage__init(&r->usage);
        grpc__throttling_data__init(&r->throttling);
        r->usage.total_usage = st->cpu_total_ns;
        r->usage.usage_in_kernelmode = st->cpu_kernel_ns;
        r->usage.usage_in_usermode = st->cpu_user_ns;
        r->usage.percpu_usage = st->percpu_ns;
        r->usage.n_percpu_usage = st->n_percpu;
        r->throttling.periods = st->throttle_periods;
        r->throttling.throttled_periods = st->throttled_periods;
        r->throttling.throttled_time = st->throttled_ns;
        r->cpu.cpu_usage = &r->usage;
        r->cpu.throttling_data = &r->throttling;
        r->cg.cpu_stats = &r->cpu;
    }
    if (st->has_memory) {
        grpc__memory_stats__init(&r->mem);
        r->mem.cache = st->mem_cache;
        r->mem.use_hierarchy = st->use_hierarchy;
        mem_data(&r->mem_usage, &st->mem_usage);
        mem_data(&r->swap_usage, &st->swap_usage);
        mem_data(&r->kernel_usage, &st->kernel_usage);
        r->mem.usage = &r->mem_usage;
        r->mem.swap_usage = &r->swap_usage;
        r->mem.kernel_usage = &r->kernel_usage;
        if (st->n_mem_stats) {
            r->mem_entries = ka_xcalloc(st->n_mem_stats, sizeof(*r->mem_entries));
            r->mem_entry_ptrs = ka_xcalloc(st->n_mem_stats, sizeof(*r->mem_entry_ptrs));
            for (size_t i = 0; i < st->n_mem_stats; i++) {
                grpc__memory_stats__stats_entry__init(&r->mem_entries[i]);
                r->mem_entries[i].key = st->mem_stats[i].key;
                r->mem_entries[i].value = st->mem_stats[i].value;
                r->mem_entry_ptrs[i] = &r->mem_entries[i];
            }
            r->mem.stats = r->mem_entry_ptrs;
            r->mem.n_stats = st->n_mem_stats;
        }
        r->cg.memory_stats = &r->mem;
    }
    if (st->has_pids) {
        grpc__pids_stats__init(&r->pids);
        r->pids.current = st->pids_current;
        r->pids.limit = st->pids_limit;
        r->cg.pids_stats = &r->pids;
    }
    if (st->has_blkio) {
        grpc__blkio_stats__init(&r->blkio);
        fill_blkio(r, st);
        r->cg.blkio_stats = &r->blkio;
    }
    for (size_t i = 0; i < st->n_hugetlb; i++) {
        grpc__hugetlb_stats__init(&r->huge[i]);
        r->huge[i].usage = st->hugetlb[i].usage;
        r->huge[i].max_usage = st->hugetlb[i].max_usage;
        r->huge[i].failcnt = st->hugetlb[i].failcnt;
        grpc__cgroup_stats__hugetlb_stats_entry__init(&r->huge_entries[i]);
        r->huge_entries[i].key = st->hugetlb[i].size;
        r->huge_entries[i].value = &r->huge[i];
        r->huge_ptrs[i] = &r->huge_entries[i];
    }
    r->cg.hugetlb_stats = r->huge_ptrs;
    r->cg.n_hugetlb_stats = st->n_hugetlb;
}

static int stats_container(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                           struct ka_error *err)
{
    const Grpc__StatsContainerRequest *req = (const Grpc__StatsContainerRequest *)m;
    struct ka_container *c = find(a, req->container_id, err);
    if (!c)
        return -1;
    cleanup_free struct stats_reply *r = ka_xcalloc(1, sizeof(*r));
    grpc__stats_container_response__init(&r->resp);
    struct ka_cgroup_stats st;
    ka_cgroup_stats_read(c->cgroup, &st);
    if (c->cgroup)
        fill_cgroup_stats(r, &st);
    size_t n = 0;
    struct ka_error nerr;
    if (ka_net_stats_read("/proc/net/dev", r->ifaces, KA_STATS_MAX_IFACES, &n, &nerr) < 0)
        ka_log(KA_LOG_DEBUG, "cgroups", "no network stats: %s", nerr.msg);
    for (size_t i = 0; i < n; i++) {
        Grpc__NetworkStats *ns = &r->net[i];
        const struct ka_net_stats *in = &r->ifaces[i];
        grpc__network_stats__init(ns);
        ns->name = (char *)in->name;
        ns->rx_bytes = in->rx_bytes;
        ns->rx_packets = in->rx_packets;
        ns->rx_errors = in->rx_errors;
        ns->rx_dropped = in->rx_dropped;
        ns->tx_bytes = in->tx_bytes;
        ns->tx_packets = in->tx_packets;
        ns->tx_errors = in->tx_errors;
        ns->tx_dropped = in->tx_dropped;
        r->net_ptrs[i] = ns;
    }
    r->resp.network_stats = r->net_ptrs;
    r->resp.n_network_stats = n;
    rpc_reply(call, &r->resp.base);
    free(r->mem_entries);
    free(r->mem_entry_ptrs);
    for (int l = 0; l < KA_BLKIO_LIST_COUNT; l++) {
        free(r->blkio_entries[l]);
        free(r->blkio_ptrs[l]);
    }
    ka_cgroup_stats_free(&st);
    return 0;
}

/* ---- PauseContainer / ResumeContainer -------------------------------------------------------- */

static void finish_freeze(struct ka_container *c, enum ka_status status, const char *msg)
{
    struct ka_container_cgroups *cs = c->cg;
    freeze_stop(cs);
    struct ttrpc_call *call = take_ptr(cs->freeze_call);
    if (status == KA_STATUS_OK)
        cs->paused = cs->freeze_target;
    if (!call)
        return;
    if (status == KA_STATUS_OK) {
        ka_log_kv(KA_LOG_INFO, "cgroups", cs->paused ? "container paused" : "container resumed",
                  "container_id", c->id, NULL);
        rpc_reply(call, NULL);
    } else {
        struct ka_error err;
        ka_error_status_set(&err, status, "%s", msg);
        rpc_fail(call, &err);
    }
}

static void freeze_tick(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_container *c = w->data;
    struct ka_container_cgroups *cs = c->cg;
    uint64_t n;
    if (read(cs->freeze_timer_fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
        return;
    struct ka_error err;
    int state = ka_cgroup_freeze_state(c->cgroup, &err);
    int want = cs->freeze_target ? KA_FREEZE_FROZEN : KA_FREEZE_THAWED;
    if (state == want) {
        finish_freeze(c, KA_STATUS_OK, NULL);
        return;
    }
    if (state < 0) {
        finish_freeze(c, ka_error_status(&err), err.msg);
        return;
    }
    if (--cs->freeze_polls > 0)
        return;
    /* Never leave it half frozen. */
    if (cs->freeze_target)
        ka_cgroup_freeze(c->cgroup, false, &err);
    char msg[128];
    snprintf(msg, sizeof(msg), "the cgroup was not %s after %d ms",
             cs->freeze_target ? "frozen" : "thawed", FREEZE_POLLS * FREEZE_POLL_MS);
    finish_freeze(c, KA_STATUS_DEADLINE_EXCEEDED, msg);
}

static void cancel_freeze(struct ttrpc_call *call)
{
    struct ka_container *c = call->park_data;
    c->cg->freeze_call = NULL; /* the freeze goes on; nobody to tell */
}

static int pause_resume(struct agent *a, struct ttrpc_call *call, const char *cid, bool freeze,
                        struct ka_error *err)
{
    struct ka_container *c = find(a, cid, err);
    if (!c)
        return -1;
    if (!c->cgroup)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "container %s has no cgroup to freeze", c->id);
    if (c->removing)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "container %s is being removed", c->id);
    struct ka_container_cgroups *cs = ctr_state(c);
    if (cs->freeze_call)
        return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                   "a pause or resume of container %s is in progress", c->id);
    if (ka_cgroup_freeze(c->cgroup, freeze, err) < 0)
        return ka_error_wrap(err, "%s container %s", freeze ? "pause" : "resume", c->id);
    cs->freeze_target = freeze;
    int state = ka_cgroup_freeze_state(c->cgroup, err);
    if (state < 0)
        return ka_error_wrap(err, "%s container %s", freeze ? "pause" : "resume", c->id);
    if (state == (freeze ? KA_FREEZE_FROZEN : KA_FREEZE_THAWED)) {
        cs->paused = freeze;
        rpc_reply(call, NULL);
        return 0;
    }
    /* Not there yet (tasks leave the kernel one by one): look again on a timer. */
    if (periodic_timer(&cs->freeze_timer_fd, FREEZE_POLL_MS, err) < 0 ||
        ka_reactor_add(reactor_of(c), &cs->freeze_timer, cs->freeze_timer_fd, EPOLLIN, freeze_tick,
                       c, err) < 0) {
        freeze_stop(cs);
        return -1;
    }
    cs->freeze_polls = FREEZE_POLLS;
    cs->freeze_call = call;
    ttrpc_call_park(call, cancel_freeze, c);
    return 0;
}

static int pause_container(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                           struct ka_error *err)
{
    const Grpc__PauseContainerRequest *req = (const Grpc__PauseContainerRequest *)m;
    return pause_resume(a, call, req->container_id, true, err);
}

static int resume_container(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                            struct ka_error *err)
{
    const Grpc__ResumeContainerRequest *req = (const Grpc__ResumeContainerRequest *)m;
    return pause_resume(a, call, req->container_id, false, err);
}

const struct rpc_handler rpc_cgroup_handlers[] = {
    {"UpdateContainer", update_container}, {"StatsContainer", stats_container},
    {"PauseContainer", pause_container},   {"ResumeContainer", resume_container},
    {"GetOOMEvent", get_oom_event},        {NULL, NULL},
};
