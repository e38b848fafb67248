/* watchable-bind's choice between inotify and polling, visible to tests. inotify
 * sees only changes made through this kernel: on virtio-fs, 9p or another FUSE
 * filesystem the host changes the files behind its back, so those sources are
 * polled (every KA_WATCHABLE_POLL_MS, comparing sizes and mtimes, as upstream). */
#ifndef KA_STORAGE_WATCHABLE_H
#define KA_STORAGE_WATCHABLE_H

#include <stdbool.h>

#define KA_WATCHABLE_POLL_MS 2000 /* upstream's watcher interval */

struct ka_watchable;

/* Poll even where inotify would do (tests on a tmpfs source). */
extern bool ka_watchable_force_poll;
/* The poll interval in milliseconds (KA_WATCHABLE_POLL_MS). */
extern unsigned ka_watchable_poll_ms;

/* Is a filesystem of this statfs f_type one whose changes inotify misses? */
bool ka_watchable_fs_needs_poll(long f_type);
/* Is this copy kept fresh by polling (rather than inotify)? */
bool ka_watchable_polling(const struct ka_watchable *w);

#endif
