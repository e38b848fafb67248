/* Start-up work kept off the path to the first answer (issue 16).
 *
 * PID 1 set-up that no early request needs (cgroup hierarchies: an RCU grace period
 * per v1 controller; hostname, lo, ptmx; the debug console, the log port) is queued
 * here instead of run before the listener. The reactor runs them one step per loop
 * iteration (a timerfd left readable while steps remain: no sleep, no polling), from
 * when the first call has been answered (ka_deferred_kick: the host's first Check
 * does not wait behind a step) or a short delay after the listener is up, whichever
 * comes first (the delay: a host that never calls still gets the debug console).
 * Any request that may need what the steps make runs the rest synchronously first
 * (ka_deferred_finish, called by the dispatcher), so nothing is ever answered
 * before what it needs is ready.
 *
 * The boot timeline: ka_boot_mark() notes each start-up step with its own duration and
 * the time since the kernel started (CLOCK_BOOTTIME); ka_boot_flush() logs what was
 * noted, at debug level, once the first call is answered and when the deferred steps
 * are done, so a guest console log shows where boot time goes (bench/boot.sh prints
 * it) without the log lines' own cost (ms each on an emulated UART) in the figures. */
#ifndef KA_CORE_DEFERRED_H
#define KA_CORE_DEFERRED_H

#include <stdbool.h>

#include "core/error.h"
#include "core/reactor.h"

/* Note a step: its name, the milliseconds since the previous mark (0 for the first),
 * and since the kernel booted. The first 32 are kept. */
void ka_boot_mark(const char *step);
/* The next mark's duration counts from now, not from the previous mark (a deferred
 * step: the loop may have idled between). */
void ka_boot_mark_restart(void);
/* Release the held start-up log (ka_log_hold), then log the marks not logged yet as
 * "boot step" lines (debug level). */
void ka_boot_flush(void);

/* A step: returns < 0 with err filled on failure (logged, never fatal). */
typedef int (*ka_deferred_fn)(void *data, struct ka_error *err);

#define KA_DEFERRED_MAX 12

struct ka_deferred_step {
    const char *name;
    ka_deferred_fn fn;
    void *data;
};

struct ka_deferred {
    struct ka_deferred_step steps[KA_DEFERRED_MAX];
    unsigned n, next;
    int efd; /* a timerfd */
    bool kicked;
    struct ka_watch watch;
};

void ka_deferred_init(struct ka_deferred *d);
/* Queue a step (in order); more than KA_DEFERRED_MAX is a programming error and
 * runs the step at once instead. */
void ka_deferred_add(struct ka_deferred *d, const char *name, ka_deferred_fn fn, void *data);
/* Run the queued steps on the reactor, one per loop iteration, from delay_ms on (or
 * from a kick). On failure to set that up (no timerfd), runs them all now: late is
 * fine, never is not. */
void ka_deferred_start(struct ka_deferred *d, struct ka_reactor *r, unsigned delay_ms);
/* Start the steps now rather than at the delay (once; no-op when not started). */
void ka_deferred_kick(struct ka_deferred *d);
/* Run every step not run yet, now. */
void ka_deferred_finish(struct ka_deferred *d);
bool ka_deferred_pending(const struct ka_deferred *d);
void ka_deferred_fini(struct ka_deferred *d);

#endif
