/* Hostile-storage tests of issue 13 (items 5, 6 and 8), each attack from the
 * adversarial review against the real agent (its own mount namespace, tmpfs /run),
 * asserting the safe outcome:
 *  - fs_group on an ext4 blk volume while another process keeps swapping the
 *    volume's directories for symlinks to a directory outside (the same device
 *    mounted a second time here, so the swaps land on the agent's volume): nothing
 *    outside changes group or mode; a symlink in the volume to an outside file
 *    leaves that file alone;
 *  - local / ephemeral mount points outside /run/kata-containers, through "..", or
 *    through a symlink planted below it: INVALID_ARGUMENT, nothing chmod'ed or
 *    mounted; release leaves a directory the agent did not make;
 *  - UpdateEphemeralMounts on /run and on a tmpfs the agent mounted for something
 *    else (the watchable root): refused, still read-write; on its own ephemeral
 *    storage: remounted;
 *  - watchable-bind at ".../watchable/.": refused, another copy kept;
 *  - CopyFile through a hard link planted at "<name>.tmp", of ".", and of a setuid
 *    file with an owner. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctr.h"

#define KRUN "/run/kata-containers"
#define SHARED KRUN "/shared/containers/"
#define WROOT KRUN "/shared/containers/watchable"
#define RACE_DIRS 40
#define RACE_FILES 50

static char scratch[] = "/tmp/ka-it-hstorage-XXXXXX";
static char loop_dev[64];
static bool mnt_mounted;
static pid_t swapper; /* killed in teardown too, whatever failed first */
static struct agent_proc agent;
static struct ctr t;

static const char *at(const char *rel)
{
    static char buf[8][512];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 512, "%s/%s", scratch, rel);
    return p;
}

/* A guest path as the test sees it. */
static const char *in_agent(const char *path)
{
    static char buf[8][600];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 600, "/proc/%d/root%s", (int)agent.pid, path);
    return p;
}

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0 || !mkdtemp(scratch)) {
        fprintf(stderr, "needs root\n");
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

static int setup(void **state)
{
    (void)state;
    agent_start_isolated(&agent, NULL);
    ctr_open(&t, &agent);
    Grpc__CreateSandboxRequest cs = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    cs.hostname = (char *)"hostile-storage";
    cs.sandbox_id = (char *)ctr_unique_id("sb");
    if (ctr_call(&t, "CreateSandbox", &cs.base, NULL, NULL) != 0)
        fail_msg("CreateSandbox: %s", t.msg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ctr_close(&t);
    agent_kill(&agent);
    if (swapper > 0) {
        kill(swapper, SIGKILL);
        waitpid(swapper, NULL, 0);
    }
    swapper = 0;
    if (mnt_mounted)
        umount2(at("mnt"), MNT_DETACH);
    mnt_mounted = false;
    if (loop_dev[0])
        sh("losetup -d %s 2>/dev/null", loop_dev);
    loop_dev[0] = '\0';
    sh("rm -rf %s/*", scratch);
    return 0;
}

/* Storages sent with a CreateContainer that has no spec: the agent mounts them
 * (or refuses them) before it looks at the spec, so the status tells. Not used for
 * success: a refused request mounts nothing. */
static int add_storages(Grpc__Storage **st, size_t n)
{
    Grpc__Spec *spec = spec_new("/nonexistent-rootfs", (const char *const[]){"true", NULL});
    int rc = ctr_create_with_storages(&t, ctr_unique_id("c"), spec, st, n);
    spec_free(spec);
    return rc;
}

/* One storage through CreateSandbox of a fresh agent (sandbox storages stay until
 * DestroySandbox); returns the status. */
static int sandbox_with(Grpc__Storage **st, size_t n)
{
    ctr_close(&t);
    agent_kill(&agent);
    agent_start_isolated(&agent, NULL);
    ctr_open(&t, &agent);
    Grpc__CreateSandboxRequest cs = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    cs.hostname = (char *)"hostile-storage";
    cs.sandbox_id = (char *)ctr_unique_id("sb");
    cs.storages = st;
    cs.n_storages = n;
    return ctr_call(&t, "CreateSandbox", &cs.base, NULL, NULL);
}

static void expect_status(int got, int want, const char *what)
{
    if (got != want)
        fail_msg("%s: status %d (%s), want %d", what, got, t.msg, want);
}

static void stat_ok(const char *path, struct stat *sb)
{
    if (stat(path, sb) < 0)
        fail_msg("stat %s: %s", path, strerror(errno));
}

/* The options field of mount_point's line in the agent's mountinfo ("" when none). */
static const char *agent_mount_opts(const char *mount_point)
{
    static char opts[256];
    char path[64], line[4096];
    snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)agent.pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    opts[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        char mnt[1024], o[256];
        if (sscanf(line, "%*s %*s %*s %*s %1023s %255s", mnt, o) == 2 &&
            strcmp(mnt, mount_point) == 0)
            snprintf(opts, sizeof(opts), "%s", o); /* the last (top) one wins */
    }
    fclose(f);
    return opts;
}

static Grpc__Storage *with_options(Grpc__Storage *s, const char *const *opts)
{
    for (; *opts; opts++)
        strv_add(&s->options, &s->n_options, *opts);
    return s;
}

/* ---- Item 5: fs_group by file descriptor --------------------------------------- */

/* An ext4 image of the stage tree on a loop device, also mounted at scratch/mnt:
 * one superblock, so what this process changes there the agent's mount shows. */
static void make_volume(void)
{
    assert_int_equal(sh("truncate -s 32M %s && mkfs.ext4 -q -F -d %s %s", at("vol.img"),
                        at("stage"), at("vol.img")),
                     0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "losetup -f --show %s", at("vol.img"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    bool ok = fgets(loop_dev, sizeof(loop_dev), p) != NULL;
    pclose(p);
    assert_true(ok);
    loop_dev[strcspn(loop_dev, "\n")] = '\0';
    assert_int_equal(strncmp(loop_dev, "/dev/loop", 9), 0);
    assert_int_equal(mkdir(at("mnt"), 0755), 0);
    assert_int_equal(mount(loop_dev, at("mnt"), "ext4", 0, NULL), 0);
    mnt_mounted = true;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* The outside directory: RACE_FILES files of the names the volume's directories
 * hold, 0600 root:root; returns how many of them (and the directory) changed. */
static int outside_changed(void)
{
    int changed = 0;
    struct stat sb;
    for (int f = 0; f < RACE_FILES; f++) {
        char name[64];
        snprintf(name, sizeof(name), "outside/f%d", f);
        stat_ok(at(name), &sb);
        changed += sb.st_gid != 0 || (sb.st_mode & 07777) != 0600;
    }
    stat_ok(at("outside"), &sb);
    changed += sb.st_gid != 0 || (sb.st_mode & 07777) != 0755;
    stat_ok(at("outside/victim"), &sb);
    changed += sb.st_gid != 0 || (sb.st_mode & 07777) != 0600;
    return changed;
}

static void test_fs_group_swap_race(void **state)
{
    (void)state;
    char p[600];
    assert_int_equal(mkdir(at("outside"), 0755), 0);
    assert_int_equal(chmod(at("outside"), 0755), 0);
    write_file(at("outside/victim"), "secret", 0600);
    assert_int_equal(mkdir(at("stage"), 0755), 0);
    for (int f = 0; f < RACE_FILES; f++) {
        snprintf(p, sizeof(p), "%s/f%d", at("outside"), f);
        write_file(p, "outside", 0600);
    }
    for (int d = 0; d < RACE_DIRS; d++) {
        snprintf(p, sizeof(p), "%s/d%d", at("stage"), d);
        assert_int_equal(mkdir(p, 0700), 0);
        for (int f = 0; f < RACE_FILES; f++) {
            char q[700];
            snprintf(q, sizeof(q), "%s/f%d", p, f);
            write_file(q, "inside", 0600);
        }
    }
    /* The deterministic case too: a symlink in the volume to an outside file. */
    assert_int_equal(symlink(at("outside/victim"), at("stage/escape")), 0);
    make_volume();

    /* The swapper: each directory in turn moved aside and replaced by a symlink to
     * the outside directory, then put back, until killed. */
    swapper = fork();
    assert_true(swapper >= 0);
    if (swapper == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char dir[700], aside[700];
        for (unsigned i = 0;; i++) {
            snprintf(dir, sizeof(dir), "%s/d%u", at("mnt"), i % RACE_DIRS);
            snprintf(aside, sizeof(aside), "%s/x%u", at("mnt"), i % RACE_DIRS);
            if (rename(dir, aside) == 0) {
                if (symlink(at("outside"), dir) == 0) {
                    sched_yield();
                    unlink(dir);
                }
                rename(aside, dir);
            }
        }
    }
    /* Several walks (each a fresh agent, so each mounts and walks again). */
    int changed = 0;
    for (int round = 0; round < 4 && changed == 0; round++) {
        Grpc__Storage *st =
            storage_new("blk", loop_dev, "ext4", KRUN "/sandbox/storage/hostile-vol");
        Grpc__FSGroup *fsg = calloc(1, sizeof(*fsg));
        grpc__fsgroup__init(fsg);
        fsg->group_id = 4242 + (unsigned)round;
        st->fs_group = fsg;
        int rc = sandbox_with(&st, 1);
        storage_free(st);
        /* The walk may meet a directory mid-swap and say so; either way: */
        if (rc != 0)
            fprintf(stderr, "round %d: CreateSandbox %d (%s)\n", round, rc, t.msg);
        changed = outside_changed();
    }
    kill(swapper, SIGKILL);
    waitpid(swapper, NULL, 0);
    swapper = 0;
    assert_int_equal(changed, 0);
    /* And the walk did reach the volume: its root has the group and setgid. */
    struct stat sb;
    stat_ok(at("mnt"), &sb);
    assert_true(sb.st_gid >= 4242 && sb.st_gid <= 4245);
    assert_true(sb.st_mode & S_ISGID);
}

/* ---- Item 6: mount points confined ---------------------------------------------- */

static void test_local_outside_refused(void **state)
{
    (void)state;
    assert_int_equal(mkdir(at("victim"), 0700), 0);
    assert_int_equal(mkdir(in_agent(KRUN "/sandbox"), 0755) == 0 || errno == EEXIST, 1);
    assert_int_equal(symlink(at("victim"), in_agent(KRUN "/sandbox/evil")), 0);
    char dotdot[600];
    snprintf(dotdot, sizeof(dotdot), KRUN "/../..%s", at("victim"));
    /* And a regular file where a directory is expected: never chmod'ed. */
    write_file(in_agent(KRUN "/sandbox/plain"), "x", 0600);
    const char *const mps[] = {at("victim"), dotdot, KRUN "/sandbox/evil", KRUN "/sandbox/evil/sub",
                               KRUN "/sandbox/plain"};
    for (size_t i = 0; i < sizeof(mps) / sizeof(mps[0]); i++) {
        Grpc__Storage *st = with_options(storage_new("local", "local", "local", mps[i]),
                                         (const char *const[]){"mode=0777", "fsgid=4321", NULL});
        int rc = add_storages(&st, 1);
        storage_free(st);
        expect_status(rc, 3, mps[i]);
    }
    struct stat sb;
    stat_ok(at("victim"), &sb);
    assert_int_equal(sb.st_mode & 07777, 0700);
    assert_int_equal(sb.st_gid, 0);
    assert_int_not_equal(access(at("victim/sub"), F_OK), 0);
    stat_ok(in_agent(KRUN "/sandbox/plain"), &sb);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(sb.st_gid, 0);
}

static void test_ephemeral_outside_refused(void **state)
{
    (void)state;
    assert_int_equal(mkdir(at("target"), 0755), 0);
    write_file(at("target/keep"), "keep", 0644);
    const char *const mps[] = {at("target"), KRUN "/sandbox/ephemeral/..", WROOT "/.", KRUN};
    for (size_t i = 0; i < sizeof(mps) / sizeof(mps[0]); i++) {
        Grpc__Storage *st = storage_new("ephemeral", "tmpfs", "tmpfs", mps[i]);
        int rc = add_storages(&st, 1);
        storage_free(st);
        expect_status(rc, 3, mps[i]);
        assert_int_equal(agent_mount_count(&agent, mps[i], "tmpfs"), 0);
    }
    assert_int_equal(access(in_agent(at("target/keep")), F_OK), 0);
}

/* Release removes the mount points the agent made, and only those: a container
 * with two local storages, one on a directory that was there before, removed. */
static void test_release_keeps_preexisting(void **state)
{
    (void)state;
    const char *rootfs = getenv("KA_TEST_ROOTFS");
    if (!rootfs)
        skip();
    char keep[200], made[200];
    snprintf(keep, sizeof(keep), KRUN "/sandbox/local/%s", ctr_unique_id("keep"));
    snprintf(made, sizeof(made), KRUN "/sandbox/local/%s", ctr_unique_id("made"));
    assert_int_equal(sh("mkdir -p %s", in_agent(keep)), 0);
    Grpc__Storage *st[2] = {storage_new("local", "local", "local", keep),
                            storage_new("local", "local", "local", made)};
    Grpc__Spec *spec = spec_new(rootfs, (const char *const[]){"true", NULL});
    int rc = ctr_create_with_storages(&t, ctr_unique_id("rel"), spec, st, 2);
    spec_free(spec);
    storage_free(st[0]);
    storage_free(st[1]);
    expect_status(rc, 0, "CreateContainer");
    assert_int_equal(access(in_agent(made), F_OK), 0);
    expect_status(ctr_remove(&t, ctr_unique_id("rel")), 0, "RemoveContainer");
    assert_int_equal(access(in_agent(keep), F_OK), 0);
    assert_int_not_equal(access(in_agent(made), F_OK), 0);
}

static int update_ephemeral(const char *mount_point, const char *option)
{
    Grpc__Storage *st = storage_new("ephemeral", "tmpfs", "tmpfs", mount_point);
    strv_add(&st->options, &st->n_options, option);
    Grpc__UpdateEphemeralMountsRequest req = GRPC__UPDATE_EPHEMERAL_MOUNTS_REQUEST__INIT;
    req.storages = &st;
    req.n_storages = 1;
    int rc = ctr_call(&t, "UpdateEphemeralMounts", &req.base, NULL, NULL);
    storage_free(st);
    return rc;
}

static void test_update_ephemeral_only_registered(void **state)
{
    (void)state;
    char eph[200], wcopy[200];
    snprintf(eph, sizeof(eph), KRUN "/sandbox/ephemeral/%s", ctr_unique_id("e"));
    snprintf(wcopy, sizeof(wcopy), WROOT "/%s", ctr_unique_id("w"));
    assert_int_equal(mkdir(at("cm"), 0755), 0);
    write_file(at("cm/key"), "v", 0644);
    Grpc__Storage *st[2] = {storage_new("ephemeral", "tmpfs", "tmpfs", eph),
                            storage_new("watchable-bind", at("cm"), "bind", wcopy)};
    int rc = sandbox_with(st, 2);
    storage_free(st[0]);
    storage_free(st[1]);
    expect_status(rc, 0, "CreateSandbox");
    assert_int_equal(agent_mount_count(&agent, WROOT, "tmpfs"), 1);

    /* The agent's own /run, and a tmpfs it mounted for something else. */
    expect_status(update_ephemeral("/run", "ro"), 3, "remount /run");
    expect_status(update_ephemeral(WROOT, "ro"), 3, "remount the watchable root");
    expect_status(update_ephemeral(KRUN "/sandbox/ephemeral/../../shared/containers/watchable",
                                   "ro"),
                  3, "remount through ..");
    assert_int_equal(strncmp(agent_mount_opts("/run"), "rw", 2), 0);
    assert_int_equal(strncmp(agent_mount_opts(WROOT), "rw", 2), 0);
    /* Its own ephemeral storage: remounted as asked. */
    expect_status(update_ephemeral(eph, "ro"), 0, "remount the ephemeral storage");
    assert_int_equal(strncmp(agent_mount_opts(eph), "ro", 2), 0);
}

/* ---- Item 8: watchable-bind and CopyFile edges ---------------------------------- */

static void test_watchable_dot_refused(void **state)
{
    (void)state;
    char wcopy[200];
    snprintf(wcopy, sizeof(wcopy), WROOT "/%s", ctr_unique_id("a"));
    assert_int_equal(mkdir(at("cma"), 0755), 0);
    write_file(at("cma/key"), "a", 0644);
    assert_int_equal(mkdir(at("cmb"), 0755), 0);
    write_file(at("cmb/other"), "b", 0644);
    Grpc__Storage *a = storage_new("watchable-bind", at("cma"), "bind", wcopy);
    int rc = sandbox_with(&a, 1);
    storage_free(a);
    expect_status(rc, 0, "CreateSandbox");
    char key[300];
    snprintf(key, sizeof(key), "%s/key", wcopy);
    assert_int_equal(access(in_agent(key), F_OK), 0);
    const char *const mps[] = {WROOT "/.", WROOT "/", WROOT "//", WROOT "/./x"};
    for (size_t i = 0; i < sizeof(mps) / sizeof(mps[0]); i++) {
        Grpc__Storage *b = storage_new("watchable-bind", at("cmb"), "bind", mps[i]);
        int rc = add_storages(&b, 1);
        storage_free(b);
        expect_status(rc, 3, mps[i]);
    }
    /* The other copy is still there, and nothing was mirrored onto the root. */
    assert_int_equal(access(in_agent(key), F_OK), 0);
    assert_int_not_equal(access(in_agent(WROOT "/other"), F_OK), 0);
}

/* CopyFile as the runtime sends it for a file of uid 1000, gid 2000. */
static int copy(const char *path, uint32_t mode, int64_t size, int64_t off, const void *data,
                size_t len)
{
    return ctr_copy_file(&t, path, mode, size, off, 1000, 2000, data, len);
}

static void test_copyfile_hard_link(void **state)
{
    (void)state;
    char dir[200], victim[200], tmp[300], name[300];
    snprintf(dir, sizeof(dir), SHARED "%s", ctr_unique_id("hl"));
    snprintf(victim, sizeof(victim), "/run/%s", ctr_unique_id("victim"));
    snprintf(tmp, sizeof(tmp), "%s/f.tmp", dir);
    snprintf(name, sizeof(name), "%s/f", dir);
    /* What a container with its rootfs on the shared fs could plant: a second name
     * for a file of the agent's at the temporary's name. */
    assert_int_equal(sh("mkdir -p %s", in_agent(dir)), 0);
    write_file(in_agent(victim), "original", 0644);
    assert_int_equal(link(in_agent(victim), in_agent(tmp)), 0);
    expect_status(copy(name, S_IFREG | 0644, 8, 4, "EVIL", 4), 3, "a chunk through the link");
    expect_status(copy(name, S_IFREG | 0644, 8, 0, "EVILEVIL", 8), 0, "the whole copy");
    char got[32] = {0};
    FILE *f = fopen(in_agent(victim), "r");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, sizeof(got) - 1, f), 8);
    fclose(f);
    assert_string_equal(got, "original");
    struct stat sb;
    stat_ok(in_agent(victim), &sb);
    assert_int_equal(sb.st_uid, 0);
    assert_int_equal(sb.st_mode & 07777, 0644);
    stat_ok(in_agent(name), &sb);
    assert_int_equal(sb.st_nlink, 1);
    assert_int_equal(sb.st_uid, 1000);
}

static void test_copyfile_dot_refused(void **state)
{
    (void)state;
    /* The shared root exists (one CopyFile makes it). */
    expect_status(copy(SHARED "x", S_IFDIR | 0755, 0, 0, NULL, 0), 0, "mkdir x");
    struct stat before, after;
    stat_ok(in_agent(SHARED), &before);
    expect_status(copy(SHARED ".", S_IFDIR | 0777, 0, 0, NULL, 0), 3, "copy .");
    expect_status(copy(SHARED "./", S_IFDIR | 0777, 0, 0, NULL, 0), 3, "copy ./");
    expect_status(copy(SHARED "x/.", S_IFDIR | 0777, 0, 0, NULL, 0), 3, "copy x/.");
    stat_ok(in_agent(SHARED), &after);
    assert_int_equal(after.st_mode, before.st_mode);
    assert_int_equal(after.st_uid, before.st_uid);
    assert_int_equal(after.st_gid, before.st_gid);
}

static void test_copyfile_setuid_survives(void **state)
{
    (void)state;
    char name[200];
    snprintf(name, sizeof(name), SHARED "%s/su", ctr_unique_id("su"));
    expect_status(copy(name, S_IFREG | 04755, 2, 0, "#!", 2), 0, "copy a setuid file");
    struct stat sb;
    stat_ok(in_agent(name), &sb);
    assert_int_equal(sb.st_mode & 07777, 04755);
    assert_int_equal(sb.st_uid, 1000);
    assert_int_equal(sb.st_gid, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fs_group_swap_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_outside_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ephemeral_outside_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_keeps_preexisting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_ephemeral_only_registered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchable_dot_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copyfile_hard_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copyfile_dot_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copyfile_setuid_survives, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
