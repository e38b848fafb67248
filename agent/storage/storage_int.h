/* Helpers shared by the storage drivers (storage.c, block.c, watchable.c). */
#ifndef KA_STORAGE_STORAGE_INT_H
#define KA_STORAGE_STORAGE_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"
#include "storage/storage.h"

struct ka_reactor;

/* Options: fsgid= and mode= are the handler's (never passed to mount(2)); the rest
 * are split into MS_* flags and filesystem data by the shared option table. */
struct parsed_options {
    unsigned long flags;
    char *data; /* NULL when none */
    long fsgid;
    long mode;
};

void ka_st_parsed_options_free(struct parsed_options *po);
int ka_st_parse_options(char *const *opts, size_t n, bool mode_is_ours, struct parsed_options *po,
                        struct ka_error *err);
int ka_st_mkdir_p(const char *path, mode_t mode, struct ka_error *err);
bool ka_st_mounted_as(const char *mount_point, const char *fstype);

/* block.c */
int ka_st_mount_block(const struct ka_storage *st, struct ka_error *err);
/* Storage.fs_group: chgrp -R and the §3.3 mode bits. */
int ka_st_apply_fs_group(const struct ka_storage *st, struct ka_error *err);

/* watchable.c: one watched copy per mount point. */
struct ka_watchable;
int ka_watchable_start(struct ka_reactor *r, const struct ka_storage *st, struct ka_watchable **out,
                       struct ka_error *err);
void ka_watchable_stop(struct ka_watchable *w);

#endif
