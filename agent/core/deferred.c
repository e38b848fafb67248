/* Deferred start-up steps and the boot timeline; see deferred.h. */
#include "core/deferred.h"

#include "core/log.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The marks are kept and logged later (ka_boot_flush): a log line costs milliseconds
 * on a guest's emulated UART, which would put the timeline's own cost on the path it
 * measures. */
#define BOOT_MARKS_MAX 32
static struct boot_mark {
    const char *step;
    double ms, since_boot;
} marks[BOOT_MARKS_MAX];
static unsigned nmarks, nflushed;

static double last_mark_ms = -1;

void ka_boot_mark_restart(void)
{
    if (last_mark_ms >= 0)
        last_mark_ms = clock_ms(CLOCK_MONOTONIC);
}

void ka_boot_mark(const char *step)
{
    double last = last_mark_ms;
    double now = clock_ms(CLOCK_MONOTONIC);
    /* The first mark has no step before it: 0 ms, and when it happened. (For PID 1,
     * /proc/self/stat's start time is the kernel's, long before /init was run.) */
    if (last < 0)
        last = now;
    if (nmarks < BOOT_MARKS_MAX)
        marks[nmarks++] = (struct boot_mark){step, now - last, clock_ms(CLOCK_BOOTTIME)};
    last_mark_ms = now;
}

void ka_boot_flush(void)
{
    ka_log_release(); /* the start-up lines PID 1 held, first */
    for (; nflushed < nmarks; nflushed++) {
        if (!ka_log_enabled(KA_LOG_DEBUG))
            continue;
        char ms[32], since[32];
        snprintf(ms, sizeof(ms), "%.1f", marks[nflushed].ms);
        snprintf(since, sizeof(since), "%.1f", marks[nflushed].since_boot);
        ka_log_kv(KA_LOG_DEBUG, "boot", "boot step", "step", marks[nflushed].step, "ms", ms,
                  "since_boot_ms", since, NULL);
    }
}

void ka_deferred_init(struct ka_deferred *d)
{
    d->n = d->next = 0;
    d->efd = -1;
    d->kicked = false;
    d->watch.active = false;
}

static void run_step(struct ka_deferred_step *s)
{
    ka_log_release(); /* no longer on the path to the first answer */
    /* A step's own duration, not the idle loop before it. */
    ka_boot_mark_restart();
    struct ka_error err;
    ka_error_clear(&err);
    if (s->fn(s->data, &err) < 0)
        ka_log_kv(KA_LOG_WARN, "init", "deferred step failed, carrying on", "step", s->name,
                  "error", err.msg, NULL);
    ka_boot_mark(s->name);
}

void ka_deferred_add(struct ka_deferred *d, const char *name, ka_deferred_fn fn, void *data)
{
    struct ka_deferred_step s = {name, fn, data};
    if (d->n == KA_DEFERRED_MAX) {
        run_step(&s);
        return;
    }
    d->steps[d->n++] = s;
}

bool ka_deferred_pending(const struct ka_deferred *d)
{
    return d->next < d->n;
}

static void stop_watch(struct ka_deferred *d)
{
    ka_boot_flush(); /* the deferred steps are done, or no longer deferred */
    if (d->watch.active)
        ka_reactor_del(&d->watch);
    if (d->efd >= 0)
        close(d->efd);
    d->efd = -1;
}

void ka_deferred_finish(struct ka_deferred *d)
{
    /* d->next moves before the step runs: a step that ends up dispatching a request
     * (it cannot today) must not run itself again. */
    while (d->next < d->n)
        run_step(&d->steps[d->next++]);
    stop_watch(d);
}

/* Level-triggered on a timerfd that is never read: once expired it stays readable,
 * so a step runs on every iteration until the last one, with whatever else is ready
 * served in the same batches. */
static void step_event(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct ka_deferred *d = w->data;
    if (d->next < d->n)
        run_step(&d->steps[d->next++]);
    if (d->next >= d->n)
        stop_watch(d);
}

static int arm(int fd, unsigned ms)
{
    /* 0 would disarm the timer: 1 ns is "now". */
    struct itimerspec its = {
        .it_value = {.tv_sec = ms / 1000, .tv_nsec = ms ? (long)(ms % 1000) * 1000000L : 1}};
    return timerfd_settime(fd, 0, &its, NULL);
}

void ka_deferred_start(struct ka_deferred *d, struct ka_reactor *r, unsigned delay_ms)
{
    if (!ka_deferred_pending(d))
        return;
    struct ka_error err;
    d->efd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d->efd < 0 || arm(d->efd, delay_ms) < 0 ||
        ka_reactor_add(r, &d->watch, d->efd, EPOLLIN, step_event, d, &err) < 0) {
        ka_log(KA_LOG_WARN, "init", "cannot defer start-up steps; running them now");
        ka_deferred_finish(d);
    }
}

void ka_deferred_kick(struct ka_deferred *d)
{
    if (d->kicked || !d->watch.active)
        return;
    d->kicked = true;
    if (arm(d->efd, 0) < 0)
        ka_deferred_finish(d);
}

void ka_deferred_fini(struct ka_deferred *d)
{
    stop_watch(d);
}
