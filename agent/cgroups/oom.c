/* OOM watchers on the reactor (see oom.h). */
#include "cgroups/oom.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define RECHECK_MS 20
#define RECHECKS 25 /* half a second for the kill to follow the v1 notification */

struct ka_oom_watch {
    enum ka_cgroup_version version;
    char *dir;
    int fd;       /* v1: eventfd; v2: inotify */
    int oc_fd;    /* v1: memory.oom_control, kept open while registered */
    int timer_fd; /* v1: re-check after a tick without a kill yet */
    struct ka_watch watch, timer;
    uint64_t kills; /* oom_kill last seen */
    bool has_kill_count;
    int rechecks_left;
    ka_oom_fn fn;
    void *data;
};

static int read_kills(struct ka_oom_watch *w, uint64_t *kills)
{
    struct ka_error err;
    return ka_cg_read_key(w->dir,
                          w->version == KA_CGROUP_V2 ? "memory.events" : "memory.oom_control",
                          "oom_kill", kills, &err);
}

/* True when oom_kill went up (and records it). */
static bool kill_seen(struct ka_oom_watch *w)
{
    uint64_t k;
    if (read_kills(w, &k) < 0)
        return !w->has_kill_count; /* old kernel: every notification counts */
    bool up = k > w->kills;
    w->kills = k;
    return up;
}

static void arm_recheck(struct ka_oom_watch *w)
{
    struct itimerspec its = {.it_value.tv_nsec = RECHECK_MS * 1000000L};
    if (w->timer_fd >= 0)
        timerfd_settime(w->timer_fd, 0, &its, NULL);
}

static void timer_event(struct ka_watch *watch, uint32_t events)
{
    (void)events;
    struct ka_oom_watch *w = watch->data;
    uint64_t ticks;
    if (read(w->timer_fd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
        return;
    if (kill_seen(w)) {
        w->rechecks_left = 0;
        w->fn(w->data);
    } else if (w->rechecks_left > 0 && --w->rechecks_left > 0) {
        arm_recheck(w);
    }
}

static void fd_event(struct ka_watch *watch, uint32_t events)
{
    (void)events;
    struct ka_oom_watch *w = watch->data;
    if (w->version == KA_CGROUP_V1) {
        uint64_t count;
        if (read(w->fd, &count, sizeof(count)) != sizeof(count))
            return;
        if (!ka_cg_exists(w->dir, "cgroup.event_control")) {
            /* The cgroup is gone; nothing more will come. */
            ka_reactor_del(&w->watch);
            return;
        }
        if (kill_seen(w)) {
            w->fn(w->data);
        } else if (w->rechecks_left == 0) {
            w->rechecks_left = RECHECKS;
            arm_recheck(w);
        }
        return;
    }
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    bool modified = false;
    while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_MODIFY)
                modified = true;
            if (ev->mask & IN_IGNORED) /* the file (and so the cgroup) went away */
                ka_reactor_del(&w->watch);
            p += sizeof(*ev) + ev->len;
        }
    }
    if (modified && kill_seen(w))
        w->fn(w->data);
}

void ka_oom_watch_flush(struct ka_oom_watch *w)
{
    /* The kill may have happened a moment ago, its notification not read yet: the
     * counter says so whatever the fd has delivered. */
    if (w && kill_seen(w))
        w->fn(w->data);
}

void ka_oom_watch_stop(struct ka_oom_watch *w)
{
    if (!w)
        return;
    if (w->watch.active)
        ka_reactor_del(&w->watch);
    if (w->timer.active)
        ka_reactor_del(&w->timer);
    int fds[] = {w->fd, w->oc_fd, w->timer_fd};
    for (size_t i = 0; i < KA_ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(w->dir);
    free(w);
}

static int start_v1(struct ka_reactor *r, struct ka_oom_watch *w, struct ka_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/memory.oom_control", w->dir);
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0)
        return ka_error_set(err, errno, "eventfd");
    w->oc_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (w->oc_fd < 0)
        return ka_error_set(err, errno, "open %s", path);
    if (ka_cg_writef(w->dir, "cgroup.event_control", err, "%d %d", w->fd, w->oc_fd) < 0)
        return -1;
    w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->timer_fd < 0)
        return ka_error_set(err, errno, "timerfd");
    if (ka_reactor_add(r, &w->timer, w->timer_fd, EPOLLIN, timer_event, w, err) < 0)
        return -1;
    return ka_reactor_add(r, &w->watch, w->fd, EPOLLIN, fd_event, w, err);
}

static int start_v2(struct ka_reactor *r, struct ka_oom_watch *w, struct ka_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/memory.events", w->dir);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0)
        return ka_error_set(err, errno, "inotify_init1");
    if (inotify_add_watch(w->fd, path, IN_MODIFY) < 0)
        return ka_error_set(err, errno, "watch %s", path);
    return ka_reactor_add(r, &w->watch, w->fd, EPOLLIN, fd_event, w, err);
}

int ka_oom_watch_start(struct ka_reactor *r, const struct ka_cgroup *cg, ka_oom_fn fn, void *data,
                       struct ka_oom_watch **out, struct ka_error *err)
{
    *out = NULL;
    const char *dir = ka_cgroup_has(cg, KA_CG_MEMORY) ? ka_cgroup_dir_of(cg, KA_CG_MEMORY) : NULL;
    if (!dir ||
        !ka_cg_exists(dir, cg->version == KA_CGROUP_V2 ? "memory.events" : "memory.oom_control"))
        return 0;
    struct ka_oom_watch *w = ka_xcalloc(1, sizeof(*w));
    w->version = cg->version;
    w->dir = ka_xstrdup(dir);
    w->fd = w->oc_fd = w->timer_fd = -1;
    w->fn = fn;
    w->data = data;
    uint64_t k;
    w->has_kill_count = read_kills(w, &k) == 0;
    w->kills = w->has_kill_count ? k : 0;
    int rc = cg->version == KA_CGROUP_V2 ? start_v2(r, w, err) : start_v1(r, w, err);
    if (rc < 0) {
        ka_oom_watch_stop(w);
        return ka_error_wrap(err, "watch OOM events of %s", cg->path);
    }
    *out = w;
    return 0;
}
