/* PID 1 duties, natively: the mount table and cgroups in a private mount namespace
 * under a temporary root, /dev/ptmx, the hostname in a UTS namespace, lo up in a fresh
 * network namespace, and module planning against a fake modules.dep (a real
 * finit_module cannot be tried on the host). Runs as root. Anything that touches a
 * namespace does so in a forked child, which reports the first failed check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "init/init.h"

/* In a child: report the first failed check and exit with its line. */
#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: check failed: %s (errno: %s)\n", __FILE__, __LINE__, #cond, \
                    strerror(errno));                                                           \
            return __LINE__;                                                                    \
        }                                                                                       \
    } while (0)

/* snprintf into a PATH_MAX buffer (vsnprintf, which gcc does not second-guess). */
static void __attribute__((format(printf, 2, 3))) pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && n < PATH_MAX);
}

static int run_in_child(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg) == 0 ? 0 : 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* A private mount namespace, so nothing mounted here is seen outside. */
static int private_mounts(void)
{
    if (unshare(CLONE_NEWNS) < 0)
        return -1;
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *path)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void rm_rf(const char *path)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

static int count_lines_of(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* ---- the mount table ----------------------------------------------------------- */

static int mount_table_child(void *arg)
{
    const char *root = arg;
    CHECK(private_mounts() == 0);
    struct ka_error err;
    unsigned mounted = 99;
    CHECK(ka_init_mount_table_at(root, &mounted, &err) == 0);
    CHECK(mounted == 6);
    static const struct {
        const char *path, *fstype;
    } want[] = {{"/proc", "proc"},     {"/sys", "sysfs"},      {"/dev", "devtmpfs"},
                {"/dev/shm", "tmpfs"}, {"/dev/pts", "devpts"}, {"/run", "tmpfs"}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char p[PATH_MAX];
        pathf(p, "%s%s", root, want[i].path);
        CHECK(ka_init_is_mounted(p, want[i].fstype) == 1);
        /* mountinfo, parsed by hand, agrees with statx + statfs */
        char type[64];
        CHECK(ka_init_mount_fstype(p, type, sizeof(type)) == 1);
        CHECK(strcmp(type, want[i].fstype) == 0);
    }
    char p[PATH_MAX];
    /* Not a mount point, or another type there. */
    CHECK(ka_init_is_mounted(root, "tmpfs") == 0);
    char type[64];
    CHECK(ka_init_mount_fstype(root, type, sizeof(type)) == 0);
    pathf(p, "%s/proc", root);
    CHECK(ka_init_is_mounted(p, "sysfs") == 0);
    /* A mount point whose name mountinfo escapes (\040 for the space). */
    pathf(p, "%s/run/with space", root);
    CHECK(mkdir(p, 0755) == 0 && mount("tmpfs", p, "tmpfs", 0, NULL) == 0);
    CHECK(ka_init_mount_fstype(p, type, sizeof(type)) == 1 && strcmp(type, "tmpfs") == 0);
    CHECK(ka_init_is_mounted(p, "tmpfs") == 1);
    CHECK(umount(p) == 0);
    pathf(p, "%s/proc/self/stat", root);
    CHECK(access(p, R_OK) == 0); /* a real proc */
    pathf(p, "%s/dev/null", root);
    CHECK(access(p, F_OK) == 0); /* a real devtmpfs */
    struct statvfs sv;
    pathf(p, "%s/proc", root);
    CHECK(statvfs(p, &sv) == 0 && (sv.f_flag & ST_NOSUID) && (sv.f_flag & ST_NOEXEC));

    /* Again: everything is there with the same fstype, so nothing is mounted twice. */
    int before = count_lines_of("/proc/self/mountinfo");
    CHECK(ka_init_mount_table_at(root, &mounted, &err) == 0);
    CHECK(mounted == 0);
    CHECK(count_lines_of("/proc/self/mountinfo") == before);

    /* /dev/ptmx into the devpts instance, on the devtmpfs we mounted. */
    CHECK(ka_init_ptmx_at(root, &err) == 0);
    pathf(p, "%s/dev/ptmx", root);
    char target[64] = {0};
    CHECK(readlink(p, target, sizeof(target) - 1) > 0);
    CHECK(strcmp(target, "pts/ptmx") == 0);
    return 0;
}

static void test_mount_table(void **state)
{
    (void)state;
    char root[] = "/tmp/ka-init-XXXXXX";
    assert_non_null(mkdtemp(root));
    assert_int_equal(run_in_child(mount_table_child, root), 0);
    rm_rf(root); /* the mounts died with the child's namespace */
}

/* The real entry points, in a private namespace: /proc, /sys and /dev are already
 * there (skipped), closed std fds come back; then the late ones, /run may get a tmpfs. */
static int early_mounts_child(void *arg)
{
    (void)arg;
    CHECK(private_mounts() == 0);
    close(STDIN_FILENO);
    struct ka_error err;
    CHECK(ka_init_early_mounts(&err) == 0);
    CHECK(fcntl(STDIN_FILENO, F_GETFD) >= 0);
    CHECK(ka_init_is_mounted("/proc", "proc") == 1);
    /* the rest (a deferred step in the agent) */
    CHECK(ka_init_late_mounts(&err) == 0);
    CHECK(ka_init_is_mounted("/dev/pts", "devpts") == 1);
    CHECK(ka_init_is_mounted("/run", "tmpfs") == 1);
    return 0;
}

static void test_early_mounts(void **state)
{
    (void)state;
    assert_int_equal(run_in_child(early_mounts_child, NULL), 0);
}

static void test_ptmx_replaces_a_node(void **state)
{
    (void)state;
    char root[] = "/tmp/ka-init-XXXXXX";
    assert_non_null(mkdtemp(root));
    char p[PATH_MAX];
    pathf(p, "%s/dev", root);
    mkdirs(p);
    pathf(p, "%s/dev/ptmx", root);
    write_file(p, "not a device\n");
    struct ka_error err;
    assert_int_equal(ka_init_ptmx_at(root, &err), 0);
    char target[64] = {0};
    assert_true(readlink(p, target, sizeof(target) - 1) > 0);
    assert_string_equal(target, "pts/ptmx");
    rm_rf(root);
}

/* ---- cgroups ------------------------------------------------------------------- */

static void test_cgroup_choose(void **state)
{
    (void)state;
    const char *all = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                      "cpuset\t3\t1\t1\ncpu\t1\t1\t1\nmemory\t4\t26\t1\ndevices\t5\t1\t1\n";
    assert_int_equal(ka_cgroup_choose(all, false), KA_CGROUP_V1);
    assert_int_equal(ka_cgroup_choose(all, true), KA_CGROUP_V2);
    assert_int_equal(ka_cgroup_choose(NULL, false), KA_CGROUP_V2);
    /* memory absent, or present but disabled: v2 */
    assert_int_equal(ka_cgroup_choose("cpu\t1\t1\t1\ndevices\t5\t1\t1\n", false), KA_CGROUP_V2);
    assert_int_equal(ka_cgroup_choose("memory\t0\t1\t0\ndevices\t5\t1\t1\n", false), KA_CGROUP_V2);
    /* memory but no devices controller: no cgroups at all */
    assert_int_equal(ka_cgroup_choose("memory\t4\t1\t1\ndevices\t5\t1\t0\n", false),
                     KA_CGROUP_NONE);
    assert_int_equal(ka_cgroup_choose("memory\t4\t1\t1\n", false), KA_CGROUP_NONE);
}

struct cg_args {
    const char *root;
    const char *proc_cgroups;
    const char *const *controllers;
};

static int cgroups_v1_child(void *arg)
{
    const struct cg_args *a = arg;
    CHECK(private_mounts() == 0);
    struct ka_error err;
    enum ka_cgroup_mode mode;
    for (int round = 0; round < 2; round++) { /* the second run finds everything there */
        int rc = ka_init_cgroups_at(a->root, a->proc_cgroups, false, &mode, &err);
        if (rc < 0)
            fprintf(stderr, "round %d: %s\n", round, err.msg);
        CHECK(rc == 0);
        CHECK(mode == KA_CGROUP_V1);
    }
    char base[PATH_MAX], p[PATH_MAX];
    snprintf(base, sizeof(base), "%s/sys/fs/cgroup", a->root);
    CHECK(ka_init_is_mounted(base, "tmpfs") == 1);
    for (const char *const *c = a->controllers; *c; c++) {
        pathf(p, "%s/%s", base, *c);
        CHECK(ka_init_is_mounted(p, "cgroup") == 1);
    }
    pathf(p, "%s/net_cls", base); /* disabled in the file */
    CHECK(ka_init_is_mounted(p, "cgroup") == 0);
    /* read-only tmpfs: no new hierarchies; the controllers themselves stay writable */
    pathf(p, "%s/extra", base);
    CHECK(mkdir(p, 0755) < 0 && errno == EROFS);
    pathf(p, "%s/memory/memory.use_hierarchy", base);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    int v = -1;
    CHECK(fscanf(f, "%d", &v) == 1);
    fclose(f);
    CHECK(v == 1);
    return 0;
}

/* The controllers this host has as v1 hierarchies of their own (mounting one of them
 * again reuses the hierarchy and changes nothing on the host). */
static size_t host_v1_controllers(const char **out, size_t max, char *text, size_t size)
{
    size_t n = 0, off = 0;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return 0;
    char line[1024];
    while (fgets(line, sizeof(line), f) && n < max) {
        const char *sep = strstr(line, " - cgroup cgroup ");
        if (!sep)
            continue;
        const char *opts = sep + strlen(" - cgroup cgroup ");
        static const char *const single[] = {"cpu", "memory", "devices", "pids", "freezer"};
        for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
            char want[32];
            snprintf(want, sizeof(want), "rw,%s\n", single[i]);
            if (strcmp(opts, want) == 0) {
                out[n++] = single[i];
                off += (size_t)snprintf(text + off, size - off, "%s\t1\t1\t1\n", single[i]);
            }
        }
    }
    fclose(f);
    snprintf(text + off, size - off, "net_cls\t0\t1\t0\nbogus\t0\t1\t1\n");
    out[n] = NULL;
    return n;
}

static void test_cgroups_v1(void **state)
{
    (void)state;
    const char *controllers[8];
    char text[512];
    host_v1_controllers(controllers, 6, text, sizeof(text));
    bool mem = false, dev = false;
    for (const char **c = controllers; *c; c++) {
        mem |= strcmp(*c, "memory") == 0;
        dev |= strcmp(*c, "devices") == 0;
    }
    if (!mem || !dev)
        skip(); /* the host has no single-controller v1 memory and devices hierarchies */
    char root[] = "/tmp/ka-init-XXXXXX";
    assert_non_null(mkdtemp(root));
    char pc[PATH_MAX];
    pathf(pc, "%s/cgroups", root);
    write_file(pc, text);
    struct cg_args a = {root, pc, controllers};
    assert_int_equal(run_in_child(cgroups_v1_child, &a), 0);
    rm_rf(root);
}

static int cgroups_v2_child(void *arg)
{
    const struct cg_args *a = arg;
    /* A cgroup namespace too: nsdelegate is only honoured from the initial one, so
     * the host's cgroup2 options stay as they are. */
    CHECK(unshare(CLONE_NEWCGROUP) == 0);
    CHECK(private_mounts() == 0);
    struct ka_error err;
    enum ka_cgroup_mode mode;
    for (int round = 0; round < 2; round++) {
        int rc = ka_init_cgroups_at(a->root, a->proc_cgroups, true, &mode, &err);
        if (rc < 0)
            fprintf(stderr, "round %d: %s\n", round, err.msg);
        CHECK(rc == 0);
        CHECK(mode == KA_CGROUP_V2);
    }
    char p[PATH_MAX];
    pathf(p, "%s/sys/fs/cgroup", a->root);
    CHECK(ka_init_is_mounted(p, "cgroup2") == 1);
    pathf(p, "%s/sys/fs/cgroup/cgroup.controllers", a->root);
    CHECK(access(p, R_OK) == 0);
    /* mounted once, not twice */
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[1024];
    int n = 0;
    pathf(p, " %s/sys/fs/cgroup ", a->root);
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, p) != NULL;
    if (f)
        fclose(f);
    CHECK(n == 1);
    return 0;
}

static void test_cgroups_v2(void **state)
{
    (void)state;
    char root[] = "/tmp/ka-init-XXXXXX";
    assert_non_null(mkdtemp(root));
    struct cg_args a = {root, "/nonexistent/cgroups", NULL};
    assert_int_equal(run_in_child(cgroups_v2_child, &a), 0);
    rm_rf(root);
}

static void test_cgroups_none_without_devices(void **state)
{
    (void)state;
    char root[] = "/tmp/ka-init-XXXXXX";
    assert_non_null(mkdtemp(root));
    char pc[PATH_MAX];
    pathf(pc, "%s/cgroups", root);
    write_file(pc, "memory\t4\t1\t1\ncpu\t1\t1\t1\n");
    struct ka_error err;
    enum ka_cgroup_mode mode;
    assert_int_equal(ka_init_cgroups_at(root, pc, false, &mode, &err), 0);
    assert_int_equal(mode, KA_CGROUP_NONE);
    char p[PATH_MAX];
    pathf(p, "%s/sys", root);
    assert_int_equal(access(p, F_OK), -1); /* not even the tmpfs */
    rm_rf(root);
}

/* ---- hostname ------------------------------------------------------------------ */

static void test_hostname_parse(void **state)
{
    (void)state;
    char out[65];
    ka_init_hostname_parse("  kata-vm  other words\n", out, sizeof(out));
    assert_string_equal(out, "kata-vm");
    ka_init_hostname_parse("\n\t \n", out, sizeof(out));
    assert_string_equal(out, "localhost");
    ka_init_hostname_parse(NULL, out, sizeof(out));
    assert_string_equal(out, "localhost");
    char small[4];
    ka_init_hostname_parse("abcdef", small, sizeof(small));
    assert_string_equal(small, "abc");
}

static int hostname_child(void *arg)
{
    const char *root = arg;
    CHECK(unshare(CLONE_NEWUTS) == 0);
    struct ka_error err;
    char name[65];
    CHECK(ka_init_hostname_at(root, &err) == 0);
    CHECK(gethostname(name, sizeof(name)) == 0 && strcmp(name, "sandbox-7") == 0);
    char p[PATH_MAX];
    pathf(p, "%s/etc/hostname", root);
    CHECK(unlink(p) == 0);
    CHECK(ka_init_hostname_at(root, &err) == 0);
    CHECK(gethostname(name, sizeof(name)) == 0 && strcmp(name, "localhost") == 0);
    return 0;
}

static void test_hostname(void **state)
{
    (void)state;
    char root[] = "/tmp/ka-init-XXXXXX";
    assert_non_null(mkdtemp(root));
    char p[PATH_MAX];
    pathf(p, "%s/etc", root);
    mkdirs(p);
    pathf(p, "%s/etc/hostname", root);
    write_file(p, "sandbox-7 # comment\n");
    assert_int_equal(run_in_child(hostname_child, root), 0);
    rm_rf(root);
}

/* ---- lo ------------------------------------------------------------------------ */

static int lo_flags(short *flags)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    close(s);
    *flags = ifr.ifr_flags;
    return rc;
}

static int lo_child(void *arg)
{
    (void)arg;
    CHECK(unshare(CLONE_NEWNET) == 0);
    short flags;
    CHECK(lo_flags(&flags) == 0);
    CHECK(!(flags & IFF_UP)); /* a new namespace's lo starts down */
    struct ka_error err;
    int rc = ka_init_lo_up(&err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(rc == 0);
    CHECK(lo_flags(&flags) == 0);
    CHECK(flags & IFF_UP);
    CHECK(ka_init_lo_up(&err) == 0); /* idempotent */
    /* and it carries traffic: a UDP datagram to 127.0.0.1 comes back */
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    socklen_t len = sizeof(sa);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &len) == 0);
    CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) == 1);
    char c;
    CHECK(recv(s, &c, 1, 0) == 1 && c == 'x');
    close(s);
    return 0;
}

static void test_lo_up(void **state)
{
    (void)state;
    assert_int_equal(run_in_child(lo_child, NULL), 0);
}

/* ---- modules ------------------------------------------------------------------- */

static void test_modules_parse(void **state)
{
    (void)state;
    struct ka_module_list l = {0};
    ka_modules_parse(&l,
                     "# modules for the guest\n"
                     "virtio-net\n"
                     "  vsock   \n"
                     "\n"
                     "loop max_loop=8 max_part=2   # with parameters\n"
                     "virtio_net\n" /* the same module as virtio-net */
                     "bad/name\n"
                     "9p",
                     " overlay, vsock,,loop ,fuse");
    assert_int_equal(l.n, 6);
    assert_string_equal(l.v[0].name, "virtio-net");
    assert_string_equal(l.v[0].params, "");
    assert_string_equal(l.v[1].name, "vsock");
    assert_string_equal(l.v[2].name, "loop");
    assert_string_equal(l.v[2].params, "max_loop=8 max_part=2");
    assert_string_equal(l.v[3].name, "9p");
    assert_string_equal(l.v[4].name, "overlay");
    assert_string_equal(l.v[5].name, "fuse");
    ka_module_list_free(&l);
    assert_int_equal(l.n, 0);
}

struct load_log {
    char names[32][64];
    char params[32][64];
    size_t n;
    const char *fail;   /* this module fails with ENOEXEC */
    const char *exists; /* this one is already loaded */
};

static int record_load(void *data, const char *path, const char *params)
{
    struct load_log *log = data;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(log->names[log->n], sizeof(log->names[0]), "%s", base);
    snprintf(log->params[log->n], sizeof(log->params[0]), "%s", params);
    log->n++;
    if (log->fail && strstr(base, log->fail) == base)
        return -ENOEXEC;
    if (log->exists && strstr(base, log->exists) == base)
        return -EEXIST;
    return 0;
}

/* a needs b and c, b needs c; d-e needs c; x needs a module with no line of its own. */
static const char fake_dep[] = "kernel/drivers/a.ko: kernel/drivers/b.ko kernel/lib/c.ko\n"
                               "kernel/drivers/b.ko: kernel/lib/c.ko\n"
                               "kernel/lib/c.ko:\n"
                               "kernel/fs/d-e.ko.xz: kernel/lib/c.ko\n"
                               "kernel/net/x.ko: kernel/net/orphan.ko\n"
                               "kernel/net/y.ko: kernel/net/x.ko kernel/net/orphan.ko\n";

static void test_modules_plan_order(void **state)
{
    (void)state;
    char dir[] = "/tmp/ka-mod-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[PATH_MAX];
    pathf(p, "%s/modules.dep", dir);
    write_file(p, fake_dep);
    pathf(p, "%s/modules.builtin", dir);
    write_file(p, "kernel/drivers/virtio/virtio_pci.ko\n");

    struct ka_module_list reqs = {0};
    ka_modules_parse(&reqs, "d_e\na\nc debug=1\nvirtio-pci\nnope\ny\n", "a,x");
    struct ka_module_plan plan;
    struct ka_error err;
    assert_int_equal(ka_modules_plan(dir, &reqs, &plan, &err), 0);
    /* dependencies first, each module once, params from the module's own request even
     * when it is reached as a dependency first; builtins skipped, unknown counted */
    static const char *const want[] = {"c", "d_e", "b", "a", "orphan", "x", "y"};
    assert_int_equal(plan.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < plan.n; i++)
        assert_string_equal(plan.v[i].name, want[i]);
    assert_string_equal(plan.v[0].params, "debug=1");
    assert_string_equal(plan.v[1].params, "");
    char expect[PATH_MAX];
    pathf(expect, "%s/kernel/fs/d-e.ko.xz", dir);
    assert_string_equal(plan.v[1].path, expect);
    assert_int_equal(plan.missing, 1);

    struct load_log log = {.fail = "b.ko", .exists = "c.ko"};
    /* b fails, c is already there: both logged, the rest still loaded, in order */
    assert_int_equal(ka_modules_load(&plan, record_load, &log), 1);
    assert_int_equal(log.n, plan.n);
    assert_string_equal(log.names[0], "c.ko");
    assert_string_equal(log.names[3], "a.ko");
    ka_module_plan_free(&plan);
    ka_module_list_free(&reqs);
    rm_rf(dir);
}

static void test_modules_whole_step(void **state)
{
    (void)state;
    char root[] = "/tmp/ka-mod-XXXXXX";
    assert_non_null(mkdtemp(root));
    struct utsname u;
    uname(&u);
    char moddir[PATH_MAX], p[PATH_MAX];
    pathf(moddir, "%s/lib/modules/%s", root, u.release);
    mkdirs(moddir);
    pathf(p, "%s/etc/kata-agent", root);
    mkdirs(p);

    struct ka_config cfg;
    ka_config_defaults(&cfg);
    ka_config_parse_cmdline(&cfg, "quiet agent.modules=x");
    struct load_log log = {0};
    struct ka_error err;

    /* Modules asked for but no modules.dep: nothing loaded, an error to log. */
    assert_true(ka_init_load_modules_at(root, &cfg, record_load, &log, &err) < 0);
    assert_int_equal(log.n, 0);

    pathf(p, "%s/modules.dep", moddir);
    write_file(p, fake_dep);
    pathf(p, "%s/etc/kata-agent/modules", root);
    write_file(p, "a\n");
    assert_int_equal(ka_init_load_modules_at(root, &cfg, record_load, &log, &err), 0);
    static const char *const want[] = {"c.ko", "b.ko", "a.ko", "orphan.ko", "x.ko"};
    assert_int_equal(log.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < log.n; i++)
        assert_string_equal(log.names[i], want[i]);

    /* Nothing asked: nothing done, whatever the tree holds. */
    ka_config_defaults(&cfg);
    unlink(p);
    log.n = 0;
    assert_int_equal(ka_init_load_modules_at(root, &cfg, record_load, &log, &err), 0);
    assert_int_equal(log.n, 0);
    rm_rf(root);
}

/* The real loader's error path (a real module cannot be loaded on the host). */
static void test_module_finit_errors(void **state)
{
    (void)state;
    assert_int_equal(ka_module_finit(NULL, "/nonexistent/m.ko", ""), -ENOENT);
}

static void test_config_keys(void **state)
{
    (void)state;
    struct ka_config c;
    ka_config_defaults(&c);
    assert_string_equal(c.modules, "");
    assert_string_equal(c.debug_console_port, "");
    ka_config_parse_cmdline(&c,
                            "agent.modules=virtio_net,vsock agent.debug_console_port=console.0");
    assert_int_equal(c.warnings, 0);
    assert_string_equal(c.modules, "virtio_net,vsock");
    assert_string_equal(c.debug_console_port, "console.0");
    ka_config_parse_cmdline(&c, "agent.debug_console_port=");
    assert_int_equal(c.warnings, 1); /* empty: rejected, previous value kept */
    assert_string_equal(c.debug_console_port, "console.0");
}

/* The soft open-file limit goes up to the hard one (a kernel's init starts at 1024
 * of 4096, which 100 containers exceed). */
static void test_raise_nofile(void **state)
{
    (void)state;
    struct rlimit saved, rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    rl = saved;
    rl.rlim_cur = rl.rlim_max > 64 ? 64 : rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    struct ka_error err;
    assert_int_equal(ka_init_raise_nofile(&err), 0);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(rl.rlim_cur == rl.rlim_max);
    assert_int_equal(ka_init_raise_nofile(&err), 0); /* already there: nothing to do */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

int main(void)
{
    /* Expected warnings (missing modules, failed loads) stay out of the test output
     * unless asked for. */
    if (!getenv("KA_TEST_VERBOSE")) {
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        ka_log_set_fd(devnull);
    }
    ka_log_set_level(KA_LOG_DEBUG);
    if (geteuid() != 0) {
        fprintf(stderr, "test_init needs root (namespaces, mounts)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mount_table),
        cmocka_unit_test(test_early_mounts),
        cmocka_unit_test(test_ptmx_replaces_a_node),
        cmocka_unit_test(test_cgroup_choose),
        cmocka_unit_test(test_cgroups_v1),
        cmocka_unit_test(test_cgroups_v2),
        cmocka_unit_test(test_cgroups_none_without_devices),
        cmocka_unit_test(test_hostname_parse),
        cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_lo_up),
        cmocka_unit_test(test_modules_parse),
        cmocka_unit_test(test_modules_plan_order),
        cmocka_unit_test(test_modules_whole_step),
        cmocka_unit_test(test_module_finit_errors),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_raise_nofile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
