/* Hostile-container tests of issue 13 (items 3, 4, 7, 9 and 11): each attack from the
 * adversarial review against the real agent, asserting the safe outcome.
 *
 * The agent runs isolated (own mount namespace and /run) but on this host's cgroup
 * hierarchies; every container id and cgroup path carries our pid, so that another
 * run of this suite (or another suite) at the same moment never meets ours. The
 * cgroup v2 and "no cgroup at all" cases run a second agent in a mount namespace
 * of this process's own, where /sys/fs/cgroup is a cgroup2 subtree we own, or an
 * empty tmpfs. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "ctr.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define CG "/sys/fs/cgroup"
#define INVALID_ARGUMENT 3
#define FAILED_PRECONDITION 9

static const char *rootfs;
static struct agent_proc agent;
static struct ctr t;
static char out[1 << 16];
static char scratch[64]; /* /tmp/ka-hc-<pid>: rootfs copies, bind sources */

/* A second agent in a mount namespace of this process's own (see enter_private_ns). */
static struct agent_proc agent2;
static struct ctr t_main; /* t while t talks to agent2 */
static bool swapped;      /* ... which is now */
static int host_ns = -1;

/* ---- helpers ------------------------------------------------------------------------- */

/* A cgroup path of ours: "/ka-hc-<pid><rest>". */
static const char *cgpath(const char *rest)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "/ka-hc-%d%s", (int)getpid(), rest);
    return b;
}

/* CreateContainer that must fail: returns the code, frees the spec. */
static int create_refused(const char *id, Grpc__Spec *s)
{
    int code = ctr_create(&t, id, s);
    spec_free(s);
    if (code == 0) {
        ctr_kill_remove(&t, id);
        fail_msg("container %s was created", id);
    }
    return code;
}

static int run_spec(const char *id, Grpc__Spec *s)
{
    int status = ctr_run(&t, id, s, out, sizeof(out));
    spec_free(s);
    return status;
}

static bool dir_exists(const char *fmt, const char *a, const char *b)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), fmt, a, b);
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A v1 hierarchy's directory for path on the host: CG/<hier><path>. */
static bool v1_dir(const char *hier, const char *path)
{
    return dir_exists(CG "/%s%s", hier, path);
}

static bool host_is_v1(void)
{
    struct statfs sfs;
    return statfs(CG "/memory", &sfs) == 0 && sfs.f_type != CGROUP2_SUPER_MAGIC &&
           access(CG "/memory/cgroup.procs", F_OK) == 0;
}

static void start_agent(struct agent_proc *p, struct ctr *c)
{
    agent_start_isolated(p, getenv("KA_TEST_AGENT_CMDLINE"));
    ctr_open(c, p);
    if (ctr_create_sandbox(c, "hostile") != 0)
        fail_msg("CreateSandbox: %s", c->msg);
}

/* Our own mount namespace, with prepare() setting up /sys/fs/cgroup, and a second agent
 * started in it; t talks to that agent until leave_private_ns (every test that
 * calls this has it as its teardown, so a failure cannot leave us there). */
static void enter_private_ns(void (*prepare)(const void *), const void *arg)
{
    host_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    assert_true(host_ns >= 0);
    assert_int_equal(unshare(CLONE_NEWNS), 0);
    assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    prepare(arg);
    t_main = t;
    swapped = true;
    memset(&t, 0, sizeof(t));
    t.client.fd = -1;
    start_agent(&agent2, &t);
}

static int leave_private_ns(void **state)
{
    (void)state;
    if (swapped) {
        ctr_close(&t);
        t = t_main;
        swapped = false;
    }
    agent_stop(&agent2); /* nothing when it is not running */
    if (host_ns >= 0) {
        assert_int_equal(setns(host_ns, CLONE_NEWNS), 0);
        close(host_ns);
        host_ns = -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    rootfs = ctr_test_rootfs();
    if (!rootfs)
        return -1;
    snprintf(scratch, sizeof(scratch), "/tmp/ka-hc-%d", (int)getpid());
    if (mkdir(scratch, 0755) < 0 && errno != EEXIST)
        return -1;
    start_agent(&agent, &t);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ctr_suite_teardown(&agent, &t);
    sh("rm -rf %s", scratch);
    return 0;
}

static void make_rootfs(const char *name, char *path, size_t size);

/* ---- item 3: user ids ---------------------------------------------------------------- */

/* User {UID: 4294967295} ran as root: setresuid(-1, ...) means "unchanged". */
static void test_user_id_minus_one_refused(void **state)
{
    (void)state;
    static const uint32_t bad[] = {4294967295u, 2147483648u};
    for (size_t i = 0; i < 2; i++) {
        Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "id"));
        s->process->user->uid = bad[i];
        s->process->user->gid = bad[i];
        assert_int_equal(create_refused(ctr_unique_id("uid-bad"), s), INVALID_ARGUMENT);
        assert_non_null(strstr(t.msg, "uid"));

        s = spec_new(rootfs, ARGS("ka-payload", "id"));
        s->process->user->uid = 1000;
        s->process->user->gid = bad[i];
        assert_int_equal(create_refused(ctr_unique_id("gid-bad"), s), INVALID_ARGUMENT);
        assert_non_null(strstr(t.msg, "gid"));

        s = spec_new(rootfs, ARGS("ka-payload", "id"));
        s->process->user->uid = 1000;
        s->process->user->gid = 1000;
        s->process->user->additionalgids = malloc(2 * sizeof(uint32_t));
        s->process->user->additionalgids[0] = 10;
        s->process->user->additionalgids[1] = bad[i];
        s->process->user->n_additionalgids = 2;
        assert_int_equal(create_refused(ctr_unique_id("agid-bad"), s), INVALID_ARGUMENT);
        assert_non_null(strstr(t.msg, "additional gid"));
    }
    /* USER 4294967295 in an image comes as a username: no passwd entry can give
     * it, so it is an unknown user, not root. */
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "id"));
    free(s->process->user->username);
    s->process->user->username = xstrdup("4294967295");
    assert_int_equal(create_refused(ctr_unique_id("uname-bad"), s), INVALID_ARGUMENT);

    /* An image's own /etc/passwd cannot hand those ids out either. */
    char root[PATH_MAX];
    make_rootfs("rootfs-users", root, sizeof(root));
    assert_int_equal(sh("printf 'evil:x:4294967295:4294967295::/:/bin/sh\\n"
                        "big:x:2147483648:0::/:/bin/sh\\n' >> %s/etc/passwd",
                        root),
                     0);
    static const char *const image_users[] = {"evil", "big", "0:4294967295"};
    for (size_t i = 0; i < 3; i++) {
        s = spec_new(root, ARGS("ka-payload", "id"));
        free(s->process->user->username);
        s->process->user->username = xstrdup(image_users[i]);
        assert_int_equal(create_refused(ctr_unique_id("image-user"), s), INVALID_ARGUMENT);
    }

    /* ExecProcess goes through the same check. */
    ctr_create_start(&t, ctr_unique_id("uid-host"), spec_new(rootfs, ARGS("ka-payload", "pause")));
    Grpc__Process *p = process_new(ARGS("ka-payload", "id"));
    p->user->uid = 4294967295u;
    p->user->gid = 4294967295u;
    assert_int_equal(ctr_exec(&t, ctr_unique_id("uid-host"), "e-bad", p), INVALID_ARGUMENT);
    process_free(p);
    p = process_new(ARGS("ka-payload", "id"));
    free(p->user->username);
    p->user->username = xstrdup("4294967295");
    assert_int_not_equal(ctr_exec(&t, ctr_unique_id("uid-host"), "e-bad2", p), 0);
    process_free(p);
    ctr_kill_remove(&t, ctr_unique_id("uid-host"));
}

/* ---- item 4: device cgroup per container ---------------------------------------------- */

/* A with "a *:* rwm", then B with the defaults: B cannot read a block device node
 * it made (an unbound loop device: allowed shows as no EPERM). */
static void device_cgroup_per_container(const char *a_path, const char *b_path)
{
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    resources_add_device_rule(spec_resources(s), true, "a", -1, -1, "rwm");
    if (a_path)
        spec_set_cgroups_path(s, a_path);
    ctr_create_start(&t, ctr_unique_id("dev-a"), s);

    s = spec_new(rootfs, ARGS("ka-payload", "read-file", "/dev/ka-loop"));
    spec_add_device(s, "/dev/ka-loop", "b", 7, 0);
    if (b_path)
        spec_set_cgroups_path(s, b_path);
    assert_int_equal(run_spec(ctr_unique_id("dev-b"), s), 1);
    assert_string_equal(out, "EPERM\n");

    /* With CAP_MKNOD it can make the node of the guest's disk (b 8:0) itself, but
     * not open it. */
    s = spec_new(rootfs,
                 ARGS("sh", "-c", "mknod /dev/disk b 8 0 && ka-payload read-file /dev/disk"));
    if (b_path)
        spec_set_cgroups_path(s, b_path);
    assert_int_equal(run_spec(ctr_unique_id("dev-b2"), s), 1);
    assert_string_equal(out, "EPERM\n");

    /* And one in a cgroup of its own (no pod shared with A). */
    s = spec_new(rootfs, ARGS("ka-payload", "read-file", "/dev/ka-loop"));
    spec_add_device(s, "/dev/ka-loop", "b", 7, 0);
    assert_int_equal(run_spec(ctr_unique_id("dev-c"), s), 1);
    assert_string_equal(out, "EPERM\n");
    ctr_kill_remove(&t, ctr_unique_id("dev-a"));
}

static void test_device_cgroup_per_container_v1(void **state)
{
    (void)state;
    if (!host_is_v1())
        skip();
    device_cgroup_per_container(cgpath("/pod/dev-a"), cgpath("/pod/dev-b"));
    assert_false(v1_dir("devices", cgpath("")));
}

static void bind_over_cgroup(const void *dir)
{
    if (mount((const char *)dir, CG, NULL, MS_BIND, NULL) < 0)
        fail_msg("bind %s on " CG ": %s", (const char *)dir, strerror(errno));
}

/* A second agent whose /sys/fs/cgroup is a cgroup2 directory of ours. */
static void test_device_cgroup_per_container_v2(void **state)
{
    (void)state;
    const char *unified = NULL;
    struct statfs sfs;
    if (statfs(CG, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
        unified = CG;
    else if (statfs(CG "/unified", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
        unified = CG "/unified";
    if (!unified)
        skip();
    /* Below our own cgroup2 cgroup, as test_cgroups does. */
    char self[512] = "", line[512];
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "0::", 3) == 0)
            snprintf(self, sizeof(self), "%.*s", (int)strcspn(line + 3, "\n"), line + 3);
    if (f)
        fclose(f);
    static char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s%s/ka-hc-%d-v2", unified, strcmp(self, "/") == 0 ? "" : self,
             (int)getpid());
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        skip();
    enter_private_ns(bind_over_cgroup, dir);
    device_cgroup_per_container("/pod/dev-a", "/pod/dev-b");
    leave_private_ns(NULL);
    /* The agent left nothing behind, the pod included. */
    char pod[PATH_MAX + 8];
    snprintf(pod, sizeof(pod), "%s/pod", dir);
    assert_int_equal(access(pod, F_OK), -1);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- item 7: no host files over /proc through image symlinks -------------------------- */

static void make_rootfs(const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", scratch, name);
    if (sh("cp -a %s %s", rootfs, path) != 0)
        fail_msg("copy the rootfs to %s", path);
}

static void test_proc_symlink_bind_refused(void **state)
{
    (void)state;
    char src[PATH_MAX], before[256], after[256], domain_before[256], domain_after[256];
    snprintf(src, sizeof(src), "%s/hostname-src", scratch);
    assert_int_equal(sh("printf 'from-the-host\\n' > %s", src), 0);
    assert_true(read_text("/proc/sys/kernel/domainname", domain_before, sizeof(domain_before)));

    static const struct {
        const char *link, *fs;
    } cases[] = {
        {"/proc/sys/kernel/domainname", "procfs"},
        {"../proc/sys/kernel/hostname", "procfs"}, /* relative, resolved inside the root */
        {"/sys/kernel/profiling", "sysfs"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char root[PATH_MAX], name[32];
        snprintf(name, sizeof(name), "rootfs-%zu", i);
        make_rootfs(name, root, sizeof(root));
        assert_int_equal(sh("ln -sfn %s %s/etc/hostname", cases[i].link, root), 0);
        Grpc__Spec *s = spec_new(root, ARGS("sh", "-c", "echo pwned > /etc/hostname"));
        spec_add_bind(s, "/etc/hostname", src, "rw");
        assert_int_equal(create_refused(ctr_unique_id("proc-link"), s), INVALID_ARGUMENT);
        if (!strstr(t.msg, cases[i].fs))
            fail_msg("%s: %s", cases[i].link, t.msg);
    }
    assert_true(read_text(src, before, sizeof(before)));
    assert_string_equal(before, "from-the-host\n");
    assert_true(read_text("/proc/sys/kernel/domainname", domain_after, sizeof(domain_after)));
    assert_string_equal(domain_before, domain_after);

    /* The ordinary bind of a file onto /etc/hostname still works. */
    char root[PATH_MAX];
    make_rootfs("rootfs-plain", root, sizeof(root));
    Grpc__Spec *s = spec_new(root, ARGS("sh", "-c", "cat /etc/hostname"));
    spec_add_bind(s, "/etc/hostname", src, "rw");
    int status = run_spec(ctr_unique_id("plain-bind"), s);
    if (status != 0)
        fail_msg("status %d: %s", status, out);
    assert_string_equal(out, "from-the-host\n");
    /* So does an allowed procfs file, even through a symlink (lxcfs style). */
    assert_int_equal(sh("ln -sfn /proc/uptime %s/etc/uptime-link", root), 0);
    s = spec_new(root, ARGS("sh", "-c", "cat /proc/uptime"));
    spec_add_bind(s, "/etc/uptime-link", src, "rw");
    status = run_spec(ctr_unique_id("uptime-bind"), s);
    if (status != 0)
        fail_msg("status %d: %s", status, out);
    assert_string_equal(out, "from-the-host\n");
    assert_true(read_text(src, after, sizeof(after)));
    assert_string_equal(after, "from-the-host\n");
}

/* ---- item 9: overlapping cgroupsPath -------------------------------------------------- */

static void test_overlapping_cgroups_path_refused(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("sh", "-c", "sleep 2; echo survived"));
    spec_set_cgroups_path(s, cgpath("/p9/a"));
    ctr_create_start(&t, ctr_unique_id("ovl-a"), s);

    char colon[256]; /* A's path written the systemd-driver way */
    snprintf(colon, sizeof(colon), "ka-hc-%d:p9:a", (int)getpid());
    const char *bad[] = {cgpath("/p9/a"), cgpath("/p9"), cgpath(""), cgpath("/p9/a/below"), colon};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = spec_new(rootfs, ARGS("true"));
        spec_set_cgroups_path(s, bad[i]);
        assert_int_equal(create_refused(ctr_unique_id("ovl-b"), s), INVALID_ARGUMENT);
        if (!strstr(t.msg, "overlaps"))
            fail_msg("%s: %s", bad[i], t.msg);
    }
    /* A sibling whose name only starts like A's is not A's. */
    s = spec_new(rootfs, ARGS("true"));
    spec_set_cgroups_path(s, cgpath("/p9/ab"));
    assert_int_equal(run_spec(ctr_unique_id("ovl-sibling"), s), 0);

    /* A was never touched: it finishes on its own. */
    char buf[64];
    size_t n = ctr_read_all(&t, ctr_unique_id("ovl-a"), "", false, buf, sizeof(buf));
    assert_true(n > 0);
    assert_string_equal(buf, "survived\n");
    int status = -1;
    assert_int_equal(ctr_wait(&t, ctr_unique_id("ovl-a"), "", &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(ctr_remove(&t, ctr_unique_id("ovl-a")), 0);
}

/* ---- item 11: fail closed, leave nothing behind ---------------------------------------- */

static void empty_cgroup_dir(const void *unused)
{
    (void)unused;
    /* Every hierarchy gone from the namespace, and an empty tmpfs where they were. */
    if (umount2(CG, MNT_DETACH) < 0 && errno != EINVAL)
        fail_msg("umount " CG ": %s", strerror(errno));
    if (mount("tmpfs", CG, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") < 0)
        fail_msg("tmpfs on " CG ": %s", strerror(errno));
}

static void test_no_cgroup_hierarchy_refused(void **state)
{
    (void)state;
    enter_private_ns(empty_cgroup_dir, NULL);
    Grpc__Spec *s = spec_new(rootfs, ARGS("true"));
    assert_int_equal(create_refused(ctr_unique_id("no-cg"), s), FAILED_PRECONDITION);
    if (!strstr(t.msg, "no cgroup hierarchy"))
        fail_msg("%s", t.msg);
}

static void test_intermediate_cgroups_removed(void **state)
{
    (void)state;
    if (!host_is_v1())
        skip();
    static const char *const hiers[] = {"memory", "pids", "devices", "freezer", "cpu"};
    /* Three levels the agent makes, gone with the container. */
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    spec_set_cgroups_path(s, cgpath("/burstable/pod1/c"));
    ctr_create_start(&t, ctr_unique_id("deep"), s);
    for (size_t i = 0; i < 5; i++)
        assert_true(v1_dir(hiers[i], cgpath("/burstable/pod1/c")));
    ctr_kill_remove(&t, ctr_unique_id("deep"));
    for (size_t i = 0; i < 5; i++)
        if (v1_dir(hiers[i], cgpath("")))
            fail_msg("%s%s left behind", hiers[i], cgpath(""));

    /* Two containers in one pod: the pod stays while one of them is there. */
    s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    spec_set_cgroups_path(s, cgpath("/pod2/x"));
    ctr_create_start(&t, ctr_unique_id("pod-x"), s);
    s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    spec_set_cgroups_path(s, cgpath("/pod2/y"));
    ctr_create_start(&t, ctr_unique_id("pod-y"), s);
    ctr_kill_remove(&t, ctr_unique_id("pod-x"));
    for (size_t i = 0; i < 5; i++) {
        assert_false(v1_dir(hiers[i], cgpath("/pod2/x")));
        assert_true(v1_dir(hiers[i], cgpath("/pod2/y")));
    }
    ctr_kill_remove(&t, ctr_unique_id("pod-y"));
    for (size_t i = 0; i < 5; i++)
        assert_false(v1_dir(hiers[i], cgpath("")));

    /* A directory the agent did not make is never removed. */
    char pre[PATH_MAX];
    snprintf(pre, sizeof(pre), CG "/memory%s", cgpath("-pre"));
    assert_int_equal(mkdir(pre, 0755), 0);
    s = spec_new(rootfs, ARGS("true"));
    spec_set_cgroups_path(s, cgpath("-pre/mid/c"));
    assert_int_equal(run_spec(ctr_unique_id("pre"), s), 0);
    assert_true(v1_dir("memory", cgpath("-pre")));
    assert_false(v1_dir("memory", cgpath("-pre/mid")));
    assert_false(v1_dir("pids", cgpath("-pre")));
    assert_int_equal(rmdir(pre), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_id_minus_one_refused),
        cmocka_unit_test(test_device_cgroup_per_container_v1),
        cmocka_unit_test_teardown(test_device_cgroup_per_container_v2, leave_private_ns),
        cmocka_unit_test(test_proc_symlink_bind_refused),
        cmocka_unit_test(test_overlapping_cgroups_path_refused),
        cmocka_unit_test_teardown(test_no_cgroup_hierarchy_refused, leave_private_ns),
        cmocka_unit_test(test_intermediate_cgroups_removed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
