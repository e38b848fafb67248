/* The hugepage pool behind a hugetlbfs ephemeral storage. */
#include "storage/hugepages.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *ka_hugepages_sysfs = KA_HUGEPAGES_SYSFS;

#define MAX_PAGE_SIZE (16ull << 30) /* the largest hugepage any architecture has */

int ka_hugepages_parse_size(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    if (*end) {
        const char *units = "KMGT";
        const char *u = strchr(units, end[0] >= 'a' ? end[0] - 32 : end[0]);
        if (!u || !end[0])
            return -1;
        shift = 10 * (unsigned)(u - units + 1);
        end++;
        /* "Mi" (Kubernetes quantities), "MB" (the runtime's sysfs-style names) */
        if (strcasecmp(end, "i") == 0 || strcasecmp(end, "b") == 0 || strcasecmp(end, "ib") == 0)
            end += strlen(end);
        if (*end)
            return -1;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int ka_hugepages_options(char *const *opts, size_t n, uint64_t *page_size, uint64_t *size,
                         struct ka_error *err)
{
    const char *ps = NULL, *sz = NULL;
    char ps_buf[64], sz_buf[64];
    for (size_t i = 0; i < n; i++) {
        /* The runtime sends "pagesize=2097152,size=524288000" as one option. */
        for (const char *p = opts[i]; *p;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len > 9 && strncmp(p, "pagesize=", 9) == 0 && len - 9 < sizeof(ps_buf)) {
                snprintf(ps_buf, sizeof(ps_buf), "%.*s", (int)(len - 9), p + 9);
                ps = ps_buf;
            } else if (len > 5 && strncmp(p, "size=", 5) == 0 && len - 5 < sizeof(sz_buf)) {
                snprintf(sz_buf, sizeof(sz_buf), "%.*s", (int)(len - 5), p + 5);
                sz = sz_buf;
            }
            p += len + (comma ? 1 : 0);
        }
    }
    if (!ps || !sz)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "hugetlbfs storage needs pagesize= and size= options");
    if (ka_hugepages_parse_size(ps, page_size) < 0 || *page_size < 4096 ||
        *page_size > MAX_PAGE_SIZE || (*page_size & (*page_size - 1)) != 0)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "hugetlbfs: invalid pagesize '%s'", ps);
    if (ka_hugepages_parse_size(sz, size) < 0 || *size < *page_size)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "hugetlbfs: invalid size '%s' (at least one page of %" PRIu64
                                   " bytes)",
                                   sz, *page_size);
    return 0;
}

int ka_hugepages_reserve(const char *sysfs, uint64_t page_size, uint64_t size, struct ka_error *err)
{
    char path[PATH_MAX];
    /* sysfs names every pool hugepages-<size in kB>kB. */
    snprintf(path, sizeof(path), "%s/hugepages-%" PRIu64 "kB/nr_hugepages", sysfs,
             page_size / 1024);
    uint64_t pages = size / page_size;
    char before[32] = "";
    {
        cleanup_close int rfd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = rfd >= 0 ? read(rfd, before, sizeof(before) - 1) : -1;
        before[n > 0 ? n : 0] = '\0';
    }
    cleanup_close int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                                     "the guest kernel has no %" PRIu64
                                                     " kB hugepages (%s is missing)",
                                                     page_size / 1024, path)
                               : ka_error_set(err, errno, "open %s", path);
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", pages);
    if (write(fd, buf, (size_t)len) != len)
        return ka_error_set(err, errno, "write %" PRIu64 " pages to %s", pages, path);
    if (ka_hugepages_check(path, pages, page_size, err) < 0) {
        /* Give back what an impossible request took (the kernel keeps whatever it
         * managed to allocate, which could be all of the guest's memory). */
        cleanup_close int back = before[0] ? open(path, O_WRONLY | O_TRUNC | O_CLOEXEC) : -1;
        if (back >= 0 && write(back, before, strlen(before)) < 0)
            ka_log(KA_LOG_WARN, "storage", "could not give the pool back: %s", path);
        return -1;
    }
    return 0;
}

int ka_hugepages_check(const char *nr_path, uint64_t pages, uint64_t page_size,
                       struct ka_error *err)
{
    /* The write succeeds even when the kernel found fewer free pages: look. */
    char buf[32];
    cleanup_close int fd = open(nr_path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return ka_error_set(err, n < 0 ? errno : EIO, "read back %s", nr_path);
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long got = strtoull(buf, &end, 10);
    if (errno || end == buf || (*end && *end != '\n'))
        return ka_error_set(err, EINVAL, "unexpected text '%.20s' in %s", buf, nr_path);
    if (got < pages)
        return ka_error_status_set(err, KA_STATUS_RESOURCE_EXHAUSTED,
                                   "only %llu of %" PRIu64 " hugepages of %" PRIu64
                                   " kB could be reserved",
                                   got, pages, page_size / 1024);
    return 0;
}
