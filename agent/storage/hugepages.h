/* hugetlbfs ephemeral storages: the pages are reserved in sysfs before the mount, as
 * upstream's EphemeralHandler does, so a pod asking for more than the guest can give
 * fails at creation rather than with SIGBUS later. */
#ifndef KA_STORAGE_HUGEPAGES_H
#define KA_STORAGE_HUGEPAGES_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KA_HUGEPAGES_SYSFS "/sys/kernel/mm/hugepages"

/* Where the pools are (KA_HUGEPAGES_SYSFS unless a test points it elsewhere). */
extern const char *ka_hugepages_sysfs;

/* A size as the runtime writes it: bytes, or with a K/M/G/T suffix (KiB... also
 * spelled "Ki", "Mi", "Gi", "Ti", and "KB"/"MB"... read as powers of 1024 as the
 * kernel's memparse does). */
int ka_hugepages_parse_size(const char *s, uint64_t *out);

/* Find pagesize= and size= among the options (each option may itself be a
 * comma-separated list); both are required. */
int ka_hugepages_options(char *const *opts, size_t n, uint64_t *page_size, uint64_t *size,
                         struct ka_error *err);

/* Set <sysfs>/hugepages-<kB>kB/nr_hugepages to size / page_size and read it back:
 * an error when the kernel could not reserve that many pages. */
int ka_hugepages_reserve(const char *sysfs, uint64_t page_size, uint64_t size,
                         struct ka_error *err);

/* The read-back half: nr_path must now say at least pages. */
int ka_hugepages_check(const char *nr_path, uint64_t pages, uint64_t page_size,
                       struct ka_error *err);

#endif
