/* OOM kills in a container's memory cgroup, watched on the reactor (§5.5).
 *
 * v1: an eventfd registered through cgroup.event_control with memory.oom_control.
 * The kernel signals it when the cgroup hits its limit, before the OOM killer
 * has picked a victim, so a tick whose oom_kill count has not gone up yet is
 * looked at again a few times over half a second (a tick with no kill at all,
 * the OOM killer being disabled, is no event, as upstream skips oom_kill < 1).
 * A kernel without an oom_kill line reports every tick. The eventfd also ticks
 * when the cgroup goes away: the watch then ends.
 * v2: inotify (IN_MODIFY) on memory.events; each rise of oom_kill is one event.
 *
 * Each event calls fn(data) once. */
#ifndef KA_CGROUPS_OOM_H
#define KA_CGROUPS_OOM_H

#include "cgroups/cgroup.h"
#include "core/error.h"
#include "core/reactor.h"

struct ka_oom_watch;
typedef void (*ka_oom_fn)(void *data);

/* Start watching cg's memory cgroup. Without a memory controller there is nothing
 * to watch: 0 with *out NULL. */
int ka_oom_watch_start(struct ka_reactor *r, const struct ka_cgroup *cg, ka_oom_fn fn, void *data,
                       struct ka_oom_watch **out, struct ka_error *err);
/* Report an OOM kill the counter shows but no notification has delivered yet
 * (a container removed right after it was OOM-killed). */
void ka_oom_watch_flush(struct ka_oom_watch *w);
void ka_oom_watch_stop(struct ka_oom_watch *w);

#endif
