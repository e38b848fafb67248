/* Storage drivers through the real agent (in its own mount namespace): an ext4
 * loop device as a blk storage with its type found by libblkid and fs_group
 * applied, a container whose rootfs is on a block device (the devmapper
 * `rootfs/` convention), a blk storage shared by two containers (mounted once,
 * released with the last), overlayfs, a container whose rootfs is a rw overlay
 * (upper and work under the container's own directory), watchable-bind refreshed
 * on change, a hugetlbfs ephemeral storage with its pages reserved (when the host
 * has 2 MiB hugepages; the pool is put back afterwards), and an unknown driver.
 * Loop devices and images are removed even when a test fails. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define WROOT "/run/kata-containers/shared/containers/watchable"

static const char *rootfs;
static char scratch[] = "/tmp/ka-it-storage-XXXXXX";
static char loops[8][64];
static int n_loops;
static struct agent_proc agent;
static char out[1 << 16];

static int group_setup(void **state)
{
    (void)state;
    rootfs = ctr_test_rootfs();
    if (!rootfs || !have_loop_tools())
        return -1;
    if (!mkdtemp(scratch)) {
        perror(scratch);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sh("rm -rf %s", scratch);
    return 0;
}

/* After each test, whatever happened: the agent gone, then its loop devices. */
static int teardown(void **state)
{
    (void)state;
    agent_kill(&agent);
    for (int i = 0; i < n_loops; i++)
        sh("losetup -d %s 2>/dev/null", loops[i]);
    n_loops = 0;
    sh("rm -rf %s/*", scratch);
    return 0;
}

/* An ext4 image of size_mb holding the tree stage (may be NULL), on a loop device. */
static const char *make_loop(const char *name, const char *stage, int size_mb)
{
    char img[256];
    snprintf(img, sizeof(img), "%s/%s.img", scratch, name);
    assert_int_equal(sh("truncate -s %dM %s && mkfs.ext4 -q -F %s%s %s", size_mb, img,
                        stage ? "-d " : "", stage ? stage : "", img),
                     0);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "losetup -f --show %s", img);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_not_equal(n_loops, 8);
    char *dev = loops[n_loops];
    bool ok = fgets(dev, sizeof(loops[0]), p) != NULL;
    pclose(p);
    assert_true(ok);
    dev[strcspn(dev, "\n")] = '\0';
    assert_int_equal(strncmp(dev, "/dev/loop", 9), 0);
    n_loops++;
    return dev;
}

static void bind_mount(Grpc__Spec *s, const char *dest, const char *src)
{
    Grpc__Mount *m = calloc(1, sizeof(*m));
    grpc__mount__init(m);
    m->destination = strdup(dest);
    m->type = strdup("bind");
    m->source = strdup(src);
    strv_add(&m->options, &m->n_options, "rbind");
    s->mounts = realloc(s->mounts, (s->n_mounts + 1) * sizeof(*s->mounts));
    s->mounts[s->n_mounts++] = m;
}

/* create (with storages) + start + stdout + wait; the container is left to remove. */
static int run_with(struct ctr *t, const char *cid, Grpc__Spec *spec, Grpc__Storage **st, size_t n)
{
    out[0] = '\0';
    if (ctr_create_with_storages(t, cid, spec, st, n) != 0) {
        fprintf(stderr, "CreateContainer %s: %s\n", cid, t->msg);
        return -1;
    }
    assert_int_equal(ctr_start(t, cid), 0);
    ctr_read_all(t, cid, "", false, out, sizeof(out));
    char errbuf[1024];
    ctr_read_all(t, cid, "", true, errbuf, sizeof(errbuf));
    int status = -1;
    assert_int_equal(ctr_wait(t, cid, "", &status), 0);
    if (status != 0)
        fprintf(stderr, "container %s exited %d: %s\n", cid, status, errbuf);
    return status;
}

static void start_sandbox(struct ctr *t, Grpc__Storage **st, size_t n)
{
    agent_start_isolated(&agent, NULL);
    ctr_open(t, &agent);
    Grpc__CreateSandboxRequest cs = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    cs.hostname = (char *)"storage-test";
    cs.sandbox_id = (char *)"sandbox-storage";
    cs.storages = st;
    cs.n_storages = n;
    if (ctr_call(t, "CreateSandbox", &cs.base, NULL, NULL) != 0)
        fail_msg("CreateSandbox: %s", t->msg);
}

/* A file as the agent sees it. */
static bool guest_file_is(const char *path, const char *text)
{
    char full[512], buf[256];
    snprintf(full, sizeof(full), "/proc/%d/root%s", (int)agent.pid, path);
    FILE *f = fopen(full, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

static void test_blk_volume_probed(void **state)
{
    (void)state;
    assert_int_equal(sh("mkdir -p %s/vol && echo from-ext4 > %s/vol/hello.txt", scratch, scratch),
                     0);
    char stage[300];
    snprintf(stage, sizeof(stage), "%s/vol", scratch);
    const char *dev = make_loop("vol", stage, 16);
    const char *mp = "/run/kata-containers/sandbox/storage/vol";
    Grpc__Storage *st = storage_new("blk", dev, "", mp); /* no fstype: libblkid says ext4 */
    Grpc__FSGroup *fsg = calloc(1, sizeof(*fsg));
    grpc__fsgroup__init(fsg);
    fsg->group_id = 4321;
    st->fs_group = fsg;
    struct ctr t;
    start_sandbox(&t, &st, 1);
    assert_int_equal(agent_mount_count(&agent, mp, "ext4"), 1);
    char full[300];
    struct stat sb;
    snprintf(full, sizeof(full), "/proc/%d/root%s/hello.txt", (int)agent.pid, mp);
    assert_int_equal(stat(full, &sb), 0);
    assert_int_equal(sb.st_gid, 4321);
    assert_int_equal(sb.st_mode & 0660, 0660);

    Grpc__Spec *spec = spec_new(rootfs, ARGS("busybox", "cat", "/vol/hello.txt"));
    bind_mount(spec, "/vol", mp);
    assert_int_equal(run_with(&t, "blkvol", spec, NULL, 0), 0);
    assert_string_equal(out, "from-ext4\n");
    assert_int_equal(ctr_remove(&t, "blkvol"), 0);
    spec_free(spec);
    /* The sandbox's storage outlives its containers. */
    assert_int_equal(agent_mount_count(&agent, mp, "ext4"), 1);
    storage_free(st);
    ctr_close(&t);
    agent_stop(&agent);
}

static void test_blk_rootfs(void **state)
{
    (void)state;
    assert_int_equal(sh("mkdir -p %s/stage && cp -a %s %s/stage/rootfs", scratch, rootfs, scratch),
                     0);
    char stage[300];
    snprintf(stage, sizeof(stage), "%s/stage", scratch);
    const char *dev = make_loop("rootfs", stage, 64);
    struct ctr t;
    start_sandbox(&t, NULL, 0);
    const char *mp = "/run/kata-containers/shared/containers/blkroot";
    Grpc__Storage *st = storage_new("blk", dev, "ext4", mp);
    Grpc__Spec *spec = spec_new("/run/kata-containers/shared/containers/blkroot/rootfs",
                                ARGS("echo", "hello from a block rootfs"));
    assert_int_equal(run_with(&t, "blkroot", spec, &st, 1), 0);
    assert_string_equal(out, "hello from a block rootfs\n");
    assert_int_equal(agent_mount_count(&agent, mp, "ext4"), 1);
    assert_int_equal(ctr_remove(&t, "blkroot"), 0);
    assert_int_equal(agent_mount_count(&agent, mp, NULL), 0);
    spec_free(spec);
    storage_free(st);
    ctr_close(&t);
    agent_stop(&agent);
}

static void test_blk_refcount(void **state)
{
    (void)state;
    const char *dev = make_loop("shared", NULL, 16);
    struct ctr t;
    start_sandbox(&t, NULL, 0);
    const char *mp = "/run/kata-containers/sandbox/storage/shared";
    Grpc__Storage *st = storage_new("blk", dev, "", mp);
    Grpc__Spec *s1 =
        spec_new(rootfs, ARGS("sh", "-c", "echo one > /data/one && busybox cat /data/one"));
    bind_mount(s1, "/data", mp);
    assert_int_equal(run_with(&t, "ref1", s1, &st, 1), 0);
    assert_string_equal(out, "one\n");
    assert_int_equal(agent_mount_count(&agent, mp, "ext4"), 1);
    Grpc__Spec *s2 = spec_new(rootfs, ARGS("busybox", "cat", "/data/one"));
    bind_mount(s2, "/data", mp);
    assert_int_equal(run_with(&t, "ref2", s2, &st, 1), 0);
    assert_string_equal(out, "one\n");
    assert_int_equal(agent_mount_count(&agent, mp, "ext4"), 1); /* mounted once */
    assert_int_equal(ctr_remove(&t, "ref1"), 0);
    assert_int_equal(agent_mount_count(&agent, mp, "ext4"), 1); /* ref2 still holds it */
    assert_int_equal(ctr_remove(&t, "ref2"), 0);
    assert_int_equal(agent_mount_count(&agent, mp, NULL), 0);
    spec_free(s1);
    spec_free(s2);
    storage_free(st);
    ctr_close(&t);
    agent_stop(&agent);
}

static void test_overlayfs(void **state)
{
    (void)state;
    assert_int_equal(sh("mkdir -p %s/l1 %s/l2 && echo top > %s/l1/f && echo bottom > %s/l2/f "
                        "&& echo only-l2 > %s/l2/g",
                        scratch, scratch, scratch, scratch, scratch),
                     0);
    const char *mp = "/run/kata-containers/sandbox/overlay";
    Grpc__Storage *st = storage_new("overlayfs", "none", "overlay", mp);
    char opt[600];
    snprintf(opt, sizeof(opt), "lowerdir=%s/l1:%s/l2", scratch, scratch);
    strv_add(&st->options, &st->n_options, opt);
    struct ctr t;
    start_sandbox(&t, &st, 1);
    assert_int_equal(agent_mount_count(&agent, mp, "overlay"), 1);
    Grpc__Spec *spec = spec_new(rootfs, ARGS("busybox", "cat", "/ovl/f", "/ovl/g"));
    bind_mount(spec, "/ovl", mp);
    assert_int_equal(run_with(&t, "ovl", spec, NULL, 0), 0);
    assert_string_equal(out, "top\nonly-l2\n");
    assert_int_equal(ctr_remove(&t, "ovl"), 0);
    spec_free(spec);
    storage_free(st);
    ctr_close(&t);
    agent_stop(&agent);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_watchable_bind(void **state)
{
    (void)state;
    assert_int_equal(sh("mkdir -p %s/cm && printf v1 > %s/cm/key", scratch, scratch), 0);
    struct ctr t;
    start_sandbox(&t, NULL, 0);
    char src[300];
    snprintf(src, sizeof(src), "%s/cm", scratch);
#define mp WROOT "/cm"
    Grpc__Storage *st = storage_new("watchable-bind", src, "bind", mp);
    Grpc__Spec *spec = spec_new(rootfs, ARGS("busybox", "cat", "/etc/cm/key"));
    bind_mount(spec, "/etc/cm", mp);
    assert_int_equal(run_with(&t, "watch", spec, &st, 1), 0);
    assert_string_equal(out, "v1");
    assert_true(guest_file_is(mp "/key", "v1"));

    /* Changed in the source: in the copy within a second (inotify, not a 2 s poll). */
    assert_int_equal(sh("printf v2-changed > %s/cm/key.new && mv %s/cm/key.new %s/cm/key", scratch,
                        scratch, scratch),
                     0);
    long t0 = now_ms();
    while (!guest_file_is(mp "/key", "v2-changed") && now_ms() - t0 < 1000)
        usleep(10000);
    assert_true(guest_file_is(mp "/key", "v2-changed"));
    assert_int_equal(sh("printf new > %s/cm/added", scratch), 0);
    t0 = now_ms();
    while (!guest_file_is(mp "/added", "new") && now_ms() - t0 < 1000)
        usleep(10000);
    assert_true(guest_file_is(mp "/added", "new"));

    assert_int_equal(ctr_remove(&t, "watch"), 0);
    char full[300];
    struct stat sb;
    snprintf(full, sizeof(full), "/proc/%d/root%s", (int)agent.pid, mp);
    assert_int_not_equal(stat(full, &sb), 0); /* the last reference removed the copy */
    spec_free(spec);
    storage_free(st);
    ctr_close(&t);
    agent_stop(&agent);
}
#undef mp

/* The runtime's layered rootfs: the image read-only below, the container's writes
 * in an upper directory the agent makes under /run/kata-containers/<cid>/, the
 * directory CreateContainer then uses as the container's bundle. */
static void test_overlay_rw_rootfs(void **state)
{
    (void)state;
    struct ctr t;
    start_sandbox(&t, NULL, 0);
    const char *mp = "/run/kata-containers/shared/containers/ovlrw/rootfs";
    Grpc__Storage *st = storage_new("overlayfs", "none", "overlay", mp);
    char opt[600];
    snprintf(opt, sizeof(opt), "lowerdir=%s", rootfs);
    strv_add(&st->options, &st->n_options, opt);
    strv_add(&st->options, &st->n_options, "io.katacontainers.fs-opt.overlay-rw");
    Grpc__Spec *spec = spec_new(mp, ARGS("sh", "-c",
                                         "echo written > /new-file && "
                                         "busybox cat /new-file"));
    spec->root->readonly = false;
    assert_int_equal(run_with(&t, "ovlrw", spec, &st, 1), 0);
    assert_string_equal(out, "written\n");
    assert_int_equal(agent_mount_count(&agent, mp, "overlay"), 1);
    /* The write went to the upper directory, not to the image. */
    assert_true(guest_file_is("/run/kata-containers/ovlrw/upper/new-file", "written\n"));
    char img[600];
    snprintf(img, sizeof(img), "%s/new-file", rootfs);
    assert_int_not_equal(access(img, F_OK), 0);
    /* The same id again is still refused while the first one exists. */
    assert_int_equal(ctr_create_with_storages(&t, "ovlrw", spec, &st, 1), 6);
    assert_non_null(strstr(t.msg, "already exists"));
    assert_int_equal(ctr_remove(&t, "ovlrw"), 0);
    assert_int_equal(agent_mount_count(&agent, mp, NULL), 0);
    /* Removal takes the container's writes with its directory: the id is free. */
    char dir[100];
    snprintf(dir, sizeof(dir), "/proc/%d/root/run/kata-containers/ovlrw", (int)agent.pid);
    assert_int_not_equal(access(dir, F_OK), 0);
    spec_free(spec);
    storage_free(st);
    ctr_close(&t);
    agent_stop(&agent);
}

#define HUGE_POOL "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f && fscanf(f, "%ld", &v) != 1)
        v = -1;
    if (f)
        fclose(f);
    return v;
}

static void write_long(const char *path, long v)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%ld\n", v);
        fclose(f);
    }
}

static long saved_pool = -1;

static int restore_pool(void **state)
{
    if (saved_pool >= 0)
        write_long(HUGE_POOL, saved_pool);
    saved_pool = -1;
    return teardown(state);
}

static void test_hugetlbfs(void **state)
{
    (void)state;
    saved_pool = read_long(HUGE_POOL);
    if (saved_pool < 0 || system("grep -qw hugetlbfs /proc/filesystems") != 0) {
        fprintf(stderr, "skipped: this host has no 2 MiB hugepages or no hugetlbfs\n");
        skip();
    }
    const char *mp = "/run/kata-containers/sandbox/ephemeral/huge";
    /* Two pages more than the pool has now, packed as the runtime sends them. */
    char opt[128];
    snprintf(opt, sizeof(opt), "pagesize=2097152,size=%ld", (saved_pool + 2) * 2097152L);
    Grpc__Storage *st = storage_new("ephemeral", "nodev", "hugetlbfs", mp);
    strv_add(&st->options, &st->n_options, opt);
    struct ctr t;
    start_sandbox(&t, &st, 1);
    assert_int_equal(agent_mount_count(&agent, mp, "hugetlbfs"), 1);
    assert_int_equal(read_long(HUGE_POOL), saved_pool + 2);
    storage_free(st);

    /* A page size the kernel does not have: refused, nothing mounted. */
    st = storage_new("ephemeral", "nodev", "hugetlbfs", "/run/kata-containers/sandbox/huge64k");
    strv_add(&st->options, &st->n_options, "pagesize=64Ki");
    strv_add(&st->options, &st->n_options, "size=1Mi");
    Grpc__Spec *spec = spec_new(rootfs, ARGS("true"));
    assert_int_equal(ctr_create_with_storages(&t, "huge", spec, &st, 1), 3);
    assert_non_null(strstr(t.msg, "no 64 kB hugepages"));
    assert_int_equal(agent_mount_count(&agent, "/run/kata-containers/sandbox/huge64k", NULL), 0);
    spec_free(spec);
    storage_free(st);
    ctr_close(&t);
    agent_stop(&agent);
}

static void test_unknown_driver(void **state)
{
    (void)state;
    struct ctr t;
    start_sandbox(&t, NULL, 0);
    Grpc__Storage *st = storage_new("nfs-magic", "x", "nfs", "/run/kata-containers/sandbox/x");
    Grpc__Spec *spec = spec_new(rootfs, ARGS("true"));
    assert_int_equal(ctr_create_with_storages(&t, "unknown", spec, &st, 1), 3);
    assert_non_null(strstr(t.msg, "storage driver 'nfs-magic' is not supported"));
    storage_free(st);
    /* A disk at a PCI path that never comes: DEADLINE_EXCEEDED after the default
     * agent.hotplug_timeout (3 s). */
    st = storage_new("blk", "1f/1f/1f", "ext4", "/run/kata-containers/shared/containers/pci");
    assert_int_equal(ctr_create_with_storages(&t, "pci", spec, &st, 1), 4);
    assert_non_null(strstr(t.msg, "timeout after 3s waiting for device 1f/1f/1f"));
    storage_free(st);
    spec_free(spec);
    /* Nothing was left behind: the same id works. */
    spec = spec_new(rootfs, ARGS("true"));
    assert_int_equal(run_with(&t, "unknown", spec, NULL, 0), 0);
    assert_int_equal(ctr_remove(&t, "unknown"), 0);
    spec_free(spec);
    ctr_close(&t);
    agent_stop(&agent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_blk_volume_probed, teardown),
        cmocka_unit_test_teardown(test_blk_rootfs, teardown),
        cmocka_unit_test_teardown(test_blk_refcount, teardown),
        cmocka_unit_test_teardown(test_overlayfs, teardown),
        cmocka_unit_test_teardown(test_overlay_rw_rootfs, teardown),
        cmocka_unit_test_teardown(test_watchable_bind, teardown),
        cmocka_unit_test_teardown(test_hugetlbfs, restore_pool),
        cmocka_unit_test_teardown(test_unknown_driver, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
