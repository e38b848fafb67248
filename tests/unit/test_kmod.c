/* CreateSandbox.kernel_modules resolved against a synthetic /lib/modules tree with
 * the finit_module call stubbed: dependency order from modules.dep, compressed
 * suffixes, parameters joined, an already loaded module, a missing module, a
 * kernel refusing a compressed file, and the bounds on what the host may ask. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/kmod.h"

static char root[] = "/tmp/ka-kmod-XXXXXX";

struct loads {
    char text[2048]; /* "path|params;" per call, relative to the modules dir */
    const char *fail_name;
    int fail_rc;
};

static int record(void *data, const char *path, const char *params)
{
    struct loads *l = data;
    const char *rel = strstr(path, "/kernel/");
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof(l->text) - len, "%s|%s;", rel ? rel + 1 : path, params);
    if (l->fail_name && strstr(path, l->fail_name))
        return l->fail_rc;
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(root))
        return -1;
    struct utsname u;
    uname(&u);
    char dir[300], cmd[1400];
    snprintf(dir, sizeof(dir), "%s/%s", root, u.release);
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/kernel && cd %s && printf '%%s\\n' "
             "'kernel/a.ko: kernel/b.ko.xz kernel/c.ko.zst' "
             "'kernel/b.ko.xz: kernel/c.ko.zst' "
             "'kernel/c.ko.zst:' "
             "'kernel/d-e.ko.gz:' > modules.dep && echo kernel/builtin.ko > modules.builtin",
             dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_order_and_params(void **state)
{
    (void)state;
    char *pa[] = {"x=1", "", "y=two words"}, *pd[] = {"debug"};
    struct ka_kmod_request reqs[] = {
        {.name = "a", .params = pa, .n_params = 3},
        {.name = "d_e", .params = pd, .n_params = 1}, /* '-' and '_' alike */
        {.name = "c"},                                /* already planned as a's dependency */
        {.name = "builtin"},                          /* compiled in: nothing to load */
    };
    struct loads l = {0};
    struct ka_error err;
    assert_int_equal(ka_kmod_load_requests(root, reqs, 4, record, &l, &err), 0);
    assert_string_equal(l.text, "kernel/c.ko.zst|;kernel/b.ko.xz|;kernel/a.ko|x=1 y=two words;"
                                "kernel/d-e.ko.gz|debug;");
}

static void test_already_loaded(void **state)
{
    (void)state;
    struct ka_kmod_request reqs[] = {{.name = "b"}};
    struct loads l = {.fail_name = "c.ko", .fail_rc = -EEXIST};
    struct ka_error err;
    assert_int_equal(ka_kmod_load_requests(root, reqs, 1, record, &l, &err), 0);
    assert_string_equal(l.text, "kernel/c.ko.zst|;kernel/b.ko.xz|;");
}

static void test_failures(void **state)
{
    (void)state;
    struct ka_error err;
    struct loads l = {0};
    /* Not there: nothing loaded, the name in the error. */
    struct ka_kmod_request missing[] = {{.name = "a"}, {.name = "nope"}};
    assert_true(ka_kmod_load_requests(root, missing, 2, record, &l, &err) < 0);
    assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "kernel module nope not found"));
    assert_string_equal(l.text, "");

    /* A kernel without in-kernel decompression. */
    struct ka_kmod_request b[] = {{.name = "b"}};
    l = (struct loads){.fail_name = "c.ko.zst", .fail_rc = -EINVAL};
    assert_true(ka_kmod_load_requests(root, b, 1, record, &l, &err) < 0);
    assert_non_null(strstr(err.msg, "refused the compressed file"));
    assert_string_equal(l.text, "kernel/c.ko.zst|;"); /* stopped there */

    /* Any other failure names the module and the errno. */
    l = (struct loads){.fail_name = "b.ko", .fail_rc = -ENOEXEC};
    assert_true(ka_kmod_load_requests(root, b, 1, record, &l, &err) < 0);
    assert_non_null(strstr(err.msg, "load module b from"));
    assert_non_null(strstr(err.msg, strerror(ENOEXEC)));
}

static void test_bounds(void **state)
{
    (void)state;
    struct ka_error err;
    struct loads l = {0};
    struct ka_kmod_request bad[] = {{.name = "../../etc/passwd"}};
    assert_true(ka_kmod_load_requests(root, bad, 1, record, &l, &err) < 0);
    assert_non_null(strstr(err.msg, "invalid kernel module name"));
    struct ka_kmod_request empty[] = {{.name = ""}};
    assert_true(ka_kmod_load_requests(root, empty, 1, record, &l, &err) < 0);

    char *many[KA_KMOD_MAX_PARAMS + 1];
    for (int i = 0; i <= KA_KMOD_MAX_PARAMS; i++)
        many[i] = "p=1";
    struct ka_kmod_request r[] = {
        {.name = "a", .params = many, .n_params = KA_KMOD_MAX_PARAMS + 1}};
    assert_true(ka_kmod_load_requests(root, r, 1, record, &l, &err) < 0);
    assert_non_null(strstr(err.msg, "parameters"));

    char *big = malloc(KA_KMOD_MAX_PARAMS_BYTES + 10);
    memset(big, 'x', KA_KMOD_MAX_PARAMS_BYTES + 9);
    big[KA_KMOD_MAX_PARAMS_BYTES + 9] = '\0';
    char *one[] = {big};
    r[0] = (struct ka_kmod_request){.name = "a", .params = one, .n_params = 1};
    assert_true(ka_kmod_load_requests(root, r, 1, record, &l, &err) < 0);
    assert_non_null(strstr(err.msg, "longer than"));
    free(big);

    char *nl[] = {"a=1\nb=2"};
    r[0] = (struct ka_kmod_request){.name = "a", .params = nl, .n_params = 1};
    assert_true(ka_kmod_load_requests(root, r, 1, record, &l, &err) < 0);

    struct ka_kmod_request lots[KA_KMOD_MAX_REQUESTS + 1];
    for (int i = 0; i <= KA_KMOD_MAX_REQUESTS; i++)
        lots[i] = (struct ka_kmod_request){.name = "a"};
    assert_true(ka_kmod_load_requests(root, lots, KA_KMOD_MAX_REQUESTS + 1, record, &l, &err) < 0);
    assert_string_equal(l.text, "");
    /* Nothing asked: nothing read, success even without a modules tree. */
    assert_int_equal(ka_kmod_load_requests("/nonexistent", NULL, 0, record, &l, &err), 0);
}

static void test_no_modules_dir(void **state)
{
    (void)state;
    struct ka_error err;
    struct loads l = {0};
    struct ka_kmod_request a[] = {{.name = "a"}};
    assert_true(ka_kmod_load_requests("/nonexistent", a, 1, record, &l, &err) < 0);
    assert_non_null(strstr(err.msg, "kernel module a: read /nonexistent/"));
    assert_non_null(strstr(err.msg, "modules.dep"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_params), cmocka_unit_test(test_already_loaded),
        cmocka_unit_test(test_failures),         cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_no_modules_dir),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
