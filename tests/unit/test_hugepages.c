/* hugetlbfs ephemeral storages' page reservation against a synthetic
 * /sys/kernel/mm/hugepages: sizes in every spelling the runtime and Kubernetes
 * use, the options as the runtime packs them, the pool written and read back,
 * a kernel that reserved fewer pages, and a page size the kernel does not have. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/hugepages.h"

static char sysfs[] = "/tmp/ka-hugepages-XXXXXX";

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(sysfs))
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/hugepages-2048kB %s/hugepages-1048576kB && "
             "echo 0 > %s/hugepages-2048kB/nr_hugepages && "
             "echo 0 > %s/hugepages-1048576kB/nr_hugepages",
             sysfs, sysfs, sysfs, sysfs);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", sysfs);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(ka_hugepages_parse_size("2097152", &v), 0);
    assert_int_equal(v, 2097152);
    const char *two_mib[] = {"2M", "2m", "2Mi", "2MB", "2MiB", "2048K", "2048Ki"};
    for (size_t i = 0; i < sizeof(two_mib) / sizeof(*two_mib); i++) {
        assert_int_equal(ka_hugepages_parse_size(two_mib[i], &v), 0);
        assert_int_equal(v, 2u << 20);
    }
    assert_int_equal(ka_hugepages_parse_size("1Gi", &v), 0);
    assert_int_equal(v, 1u << 30);
    const char *bad[] = {
        "", "abc", "-2M", "2X", "2Mx", "M", "99999999999999999999", "20000000000000000T"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(ka_hugepages_parse_size(bad[i], &v), -1);
}

static void test_options(void **state)
{
    (void)state;
    uint64_t ps, sz;
    struct ka_error err;
    char *packed[] = {"pagesize=2097152,size=524288000"}; /* how the runtime sends them */
    assert_int_equal(ka_hugepages_options(packed, 1, &ps, &sz, &err), 0);
    assert_int_equal(ps, 2097152);
    assert_int_equal(sz, 524288000);
    char *split[] = {"nodev", "size=4Mi", "mode=0700", "pagesize=2Mi"};
    assert_int_equal(ka_hugepages_options(split, 4, &ps, &sz, &err), 0);
    assert_int_equal(ps, 2u << 20);
    assert_int_equal(sz, 4u << 20);

    char *no_size[] = {"pagesize=2M"};
    assert_true(ka_hugepages_options(no_size, 1, &ps, &sz, &err) < 0);
    assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
    char *not_pow2[] = {"pagesize=3M,size=6M"};
    assert_true(ka_hugepages_options(not_pow2, 1, &ps, &sz, &err) < 0);
    char *too_small[] = {"pagesize=2M,size=1M"};
    assert_true(ka_hugepages_options(too_small, 1, &ps, &sz, &err) < 0);
    char *prefix_only[] = {"size-1=4M,pagesize-1=2M"};
    assert_true(ka_hugepages_options(prefix_only, 1, &ps, &sz, &err) < 0);
}

static void read_pool(const char *pool, char *buf, size_t size)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s/nr_hugepages", sysfs, pool);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void test_reserve(void **state)
{
    (void)state;
    struct ka_error err;
    char buf[64];
    assert_int_equal(ka_hugepages_reserve(sysfs, 2u << 20, 10u << 20, &err), 0);
    read_pool("hugepages-2048kB", buf, sizeof(buf));
    assert_string_equal(buf, "5\n");
    /* A smaller request later writes the smaller number (the file is replaced). */
    assert_int_equal(ka_hugepages_reserve(sysfs, 2u << 20, 2u << 20, &err), 0);
    read_pool("hugepages-2048kB", buf, sizeof(buf));
    assert_string_equal(buf, "1\n");
    assert_int_equal(ka_hugepages_reserve(sysfs, 1u << 30, 3ull << 30, &err), 0);
    read_pool("hugepages-1048576kB", buf, sizeof(buf));
    assert_string_equal(buf, "3\n");

    /* No pool of that size in this kernel. */
    assert_true(ka_hugepages_reserve(sysfs, 64u << 10, 1u << 20, &err) < 0);
    assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "hugepages-64kB"));
}

static void test_check(void **state)
{
    (void)state;
    struct ka_error err;
    char path[256];
    snprintf(path, sizeof(path), "%s/readback", sysfs);
    FILE *f = fopen(path, "w");
    fputs("3\n", f);
    fclose(f);
    assert_int_equal(ka_hugepages_check(path, 3, 2u << 20, &err), 0);
    /* The kernel found only 3 free pages of the 4 asked for. */
    assert_true(ka_hugepages_check(path, 4, 2u << 20, &err) < 0);
    assert_int_equal(err.status, KA_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err.msg, "only 3 of 4 hugepages of 2048 kB"));
    f = fopen(path, "w");
    fputs("junk\n", f);
    fclose(f);
    assert_true(ka_hugepages_check(path, 1, 2u << 20, &err) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
