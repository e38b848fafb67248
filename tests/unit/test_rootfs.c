/* Rootfs setup (container/rootfs.c) and path resolution inside a root (core/path.c).
 *
 * Needs root: every rootfs test runs in a forked child that unshares its mount,
 * pid, uts and ipc namespaces, so the host's mounts are never touched (the test
 * checks /proc/self/mountinfo is the same before and after). The child reports a
 * failure as text through a pipe and its exit status. Each path test and the main
 * rootfs test run twice: with openat2 and with the user-space walk forced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container/rootfs.h"
#include "core/path.h"

/* ---- Host-side helpers ---------------------------------------------------------- */

static void xmkdir(const char *dir, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", p, strerror(errno));
}

static void xwrite(const char *dir, const char *rel, const char *content)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("create %s: %s", p, strerror(errno));
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

static void xsymlink(const char *dir, const char *rel, const char *target)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    if (symlink(target, p) < 0)
        fail_msg("symlink %s: %s", p, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* FTW_MOUNT: should a mount have leaked, never delete through it. */
static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void assert_same_file(int fd, const char *path)
{
    struct stat a, b;
    assert_int_equal(fstat(fd, &a), 0);
    if (lstat(path, &b) < 0)
        fail_msg("lstat %s: %s", path, strerror(errno));
    assert_int_equal(a.st_dev, b.st_dev);
    assert_int_equal(a.st_ino, b.st_ino);
}

static int mountinfo_lines(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    assert_non_null(f);
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* ---- ka_openat_in_root / ka_mkdir_p_in_root / ka_create_file_in_root -------------- */

struct tree {
    char dir[64];
    int rootfd;
};

#define CHAIN_LEN 45

/* root/
 *   a/b/file ("inside")    abs -> /a/b          up -> /         dotdot -> ../../..
 *   a/esc -> ../../../../etc                    etc/marker
 *   loop1 <-> loop2        dang -> /newfile     dangdir -> /nodir/sub
 *   c00 -> c01 -> ... -> c44 -> a               (45 links)                         */
static int tree_setup(void **state)
{
    struct tree *t = calloc(1, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/ka-path-XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    xmkdir(t->dir, "a");
    xmkdir(t->dir, "a/b");
    xwrite(t->dir, "a/b/file", "inside");
    xmkdir(t->dir, "etc");
    xwrite(t->dir, "etc/marker", "");
    xsymlink(t->dir, "abs", "/a/b");
    xsymlink(t->dir, "up", "/");
    xsymlink(t->dir, "dotdot", "../../..");
    xsymlink(t->dir, "a/esc", "../../../../etc");
    xsymlink(t->dir, "loop1", "loop2");
    xsymlink(t->dir, "loop2", "loop1");
    xsymlink(t->dir, "dang", "/newfile");
    xsymlink(t->dir, "dangdir", "/nodir/sub");
    for (int i = 0; i < CHAIN_LEN; i++) {
        char name[8], target[8];
        snprintf(name, sizeof(name), "c%02d", i);
        snprintf(target, sizeof(target), "c%02d", i + 1);
        xsymlink(t->dir, name, i == CHAIN_LEN - 1 ? "a" : target);
    }
    t->rootfd = open(t->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    *state = t;
    return t->rootfd < 0 ? -1 : 0;
}

static int tree_teardown(void **state)
{
    struct tree *t = *state;
    close(t->rootfd);
    rm_rf(t->dir);
    free(t);
    return 0;
}

static char *tp(const struct tree *t, const char *rel)
{
    static char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s/%s", t->dir, rel);
    return buf;
}

static int open_in(const struct tree *t, const char *path, int flags)
{
    struct ka_error err = {0};
    int fd = ka_openat_in_root(t->rootfd, path, flags, 0, &err);
    if (fd < 0) {
        assert_int_equal(fd, -err.errnum);
        assert_non_null(strstr(err.msg, path));
    }
    return fd;
}

static void test_plain_and_dotdot(void **state)
{
    struct tree *t = *state;
    const char *same[] = {"a/b/file",          "/a/b/file",
                          "../../../a/b/file", "a/../../../a/b/file",
                          "./a/./b//file",     "/../a/b/../b/file"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        int fd = open_in(t, same[i], O_RDONLY);
        if (fd < 0)
            fail_msg("%s: %s", same[i], strerror(-fd));
        char buf[16] = {0};
        assert_int_equal(read(fd, buf, sizeof(buf)), 6);
        assert_string_equal(buf, "inside");
        close(fd);
    }
    /* "/", "..", "a/.." are the root itself. */
    const char *roots[] = {"/", "..", "a/..", "a/b/../../..", "."};
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        int fd = open_in(t, roots[i], O_PATH | O_DIRECTORY);
        assert_true(fd >= 0);
        assert_same_file(fd, t->dir);
        close(fd);
    }
}

static void test_symlinks_stay_inside(void **state)
{
    struct tree *t = *state;
    int fd = open_in(t, "abs/file", O_RDONLY);
    assert_true(fd >= 0);
    assert_same_file(fd, tp(t, "a/b/file"));
    close(fd);

    fd = open_in(t, "up/a/b/file", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    fd = open_in(t, "dotdot/a/b/file", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);

    /* The host's /etc/passwd exists; from the root, "up/etc" is root/etc. */
    assert_int_equal(access("/etc/passwd", F_OK), 0);
    assert_int_equal(open_in(t, "up/etc/passwd", O_RDONLY), -ENOENT);
    assert_int_equal(open_in(t, "dotdot/etc/passwd", O_RDONLY), -ENOENT);
    assert_int_equal(open_in(t, "a/esc/passwd", O_RDONLY), -ENOENT);
    fd = open_in(t, "a/esc/marker", O_RDONLY);
    assert_true(fd >= 0);
    assert_same_file(fd, tp(t, "etc/marker"));
    close(fd);
    fd = open_in(t, "up", O_PATH | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_same_file(fd, t->dir);
    close(fd);
}

static void test_symlink_loops_and_hops(void **state)
{
    struct tree *t = *state;
    assert_int_equal(open_in(t, "loop1", O_RDONLY), -ELOOP);
    assert_int_equal(open_in(t, "loop1/x", O_RDONLY), -ELOOP);
    assert_int_equal(open_in(t, "a/b/../../loop2", O_PATH), -ELOOP);
    /* c05 -> ... -> c44 -> a is 40 links: the most the kernel follows. */
    int fd = open_in(t, "c05/b/file", O_RDONLY);
    if (fd < 0)
        fail_msg("40 symlinks: %s", strerror(-fd));
    close(fd);
    assert_int_equal(open_in(t, "c04/b/file", O_RDONLY), -ELOOP);
    assert_int_equal(open_in(t, "c00", O_PATH), -ELOOP);
}

static void test_nofollow_and_errors(void **state)
{
    struct tree *t = *state;
    int fd = open_in(t, "abs", O_PATH | O_NOFOLLOW);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    close(fd);
    assert_int_equal(open_in(t, "abs", O_RDONLY | O_NOFOLLOW), -ELOOP);
    assert_int_equal(open_in(t, "a/b/file/x", O_RDONLY), -ENOTDIR);
    assert_int_equal(open_in(t, "a/b/file/", O_RDONLY), -ENOTDIR);
    assert_int_equal(open_in(t, "missing/x", O_RDONLY), -ENOENT);
    assert_int_equal(open_in(t, "a/b/file", O_RDONLY | O_DIRECTORY), -ENOTDIR);
    struct ka_error err = {0};
    assert_int_equal(ka_openat_in_root(t->rootfd, "", O_RDONLY, 0, &err), -ENOENT);
}

static void test_create_through_dangling_symlink(void **state)
{
    struct tree *t = *state;
    assert_int_equal(access("/newfile", F_OK), -1);
    struct ka_error err = {0};
    int fd = ka_openat_in_root(t->rootfd, "dang", O_CREAT | O_WRONLY, 0600, &err);
    if (fd < 0)
        fail_msg("%s", err.msg);
    close(fd);
    struct stat st;
    assert_int_equal(stat(tp(t, "newfile"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(access("/newfile", F_OK), -1);
    /* O_EXCL never follows the final symlink. */
    assert_int_equal(ka_openat_in_root(t->rootfd, "abs", O_CREAT | O_EXCL | O_WRONLY, 0600, &err),
                     -EEXIST);
}

/* Magic links need a procfs inside the root: use "/" as the root. */
static void test_magic_links(void **state)
{
    (void)state;
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(root >= 0);
    int probe = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    assert_true(probe >= 0);
    char path[64];
    struct ka_error err = {0};

    snprintf(path, sizeof(path), "/proc/self/fd/%d", probe);
    assert_int_equal(ka_openat_in_root(root, path, O_RDONLY, 0, &err), -ELOOP);
    assert_int_equal(ka_openat_in_root(root, "/proc/self/exe", O_RDONLY, 0, &err), -ELOOP);
    assert_int_equal(ka_openat_in_root(root, "/proc/self/root/etc/passwd", O_RDONLY, 0, &err),
                     -ELOOP);
    assert_int_equal(ka_openat_in_root(root, "/proc/thread-self/cwd", O_PATH, 0, &err), -ELOOP);
    /* "self" itself is an ordinary symlink. */
    int fd = ka_openat_in_root(root, "/proc/self/status", O_RDONLY, 0, &err);
    if (fd < 0)
        fail_msg("%s", err.msg);
    close(fd);
    /* A magic link as the last component can still be had as itself. */
    fd = ka_openat_in_root(root, "/proc/self/exe", O_PATH | O_NOFOLLOW, 0, &err);
    assert_true(fd >= 0);
    close(fd);
    close(probe);
    close(root);
}

static void test_mkdir_p(void **state)
{
    struct tree *t = *state;
    struct ka_error err = {0};
    struct stat st;

    int fd = ka_mkdir_p_in_root(t->rootfd, "/x/y/z", 0755, &err);
    if (fd < 0)
        fail_msg("%s", err.msg);
    assert_same_file(fd, tp(t, "x/y/z"));
    close(fd);
    /* Again: all there. */
    fd = ka_mkdir_p_in_root(t->rootfd, "x/y/z/", 0755, &err);
    assert_true(fd >= 0);
    close(fd);

    fd = ka_mkdir_p_in_root(t->rootfd, "/up/m/n", 0755, &err);
    assert_true(fd >= 0);
    assert_same_file(fd, tp(t, "m/n"));
    close(fd);
    fd = ka_mkdir_p_in_root(t->rootfd, "/dotdot/p", 0755, &err);
    assert_true(fd >= 0);
    assert_same_file(fd, tp(t, "p"));
    close(fd);
    fd = ka_mkdir_p_in_root(t->rootfd, "abs/newdir", 0755, &err);
    assert_true(fd >= 0);
    assert_same_file(fd, tp(t, "a/b/newdir"));
    close(fd);

    /* A file in the way, a dangling symlink in the way. */
    assert_int_equal(ka_mkdir_p_in_root(t->rootfd, "a/b/file/q", 0755, &err), -ENOTDIR);
    assert_non_null(strstr(err.msg, "a/b/file/q"));
    assert_true(ka_mkdir_p_in_root(t->rootfd, "dangdir/q", 0755, &err) < 0);
    assert_int_equal(stat("/nodir", &st), -1);
    assert_int_equal(stat(tp(t, "nodir"), &st), -1);
}

static void test_create_file(void **state)
{
    struct tree *t = *state;
    struct ka_error err = {0};
    struct stat st;

    int fd = ka_create_file_in_root(t->rootfd, "/up/new/dir/f1", 0644, &err);
    if (fd < 0)
        fail_msg("%s", err.msg);
    assert_same_file(fd, tp(t, "new/dir/f1"));
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    close(fd);
    /* Existing: returned as is, a directory too. */
    fd = ka_create_file_in_root(t->rootfd, "a/b", 0644, &err);
    assert_true(fd >= 0);
    assert_same_file(fd, tp(t, "a/b"));
    close(fd);
    fd = ka_create_file_in_root(t->rootfd, "dang", 0644, &err);
    assert_true(fd >= 0);
    assert_same_file(fd, tp(t, "newfile"));
    close(fd);
    assert_int_equal(access("/newfile", F_OK), -1);
    assert_true(ka_create_file_in_root(t->rootfd, "a/b/file/x", 0644, &err) < 0);
}

static int use_openat2(void **state)
{
    (void)state;
    ka_path_set_openat2(true);
    return 0;
}

static int use_walk(void **state)
{
    (void)state;
    ka_path_set_openat2(false);
    return 0;
}

/* ---- Rootfs: running ka_rootfs_setup in a child ------------------------------------ */

struct ct {
    char dir[64];     /* temp dir */
    char rootfs[128]; /* dir/rootfs */
    char src[128];    /* dir/src: bind sources */
};

static int report_fd = -1;
static bool pre_slave; /* the child makes "/" rslave before ka_rootfs_setup */

static void __attribute__((format(printf, 1, 2))) report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdprintf(report_fd, fmt, ap);
    va_end(ap);
    dprintf(report_fd, "\n");
}

#define CHECK(cond, ...)                                      \
    do {                                                      \
        if (!(cond)) {                                        \
            report("%s:%d: %s: ", __FILE__, __LINE__, #cond); \
            report(__VA_ARGS__);                              \
            return false;                                     \
        }                                                     \
    } while (0)

static void ct_create(struct ct *ct)
{
    snprintf(ct->dir, sizeof(ct->dir), "/tmp/ka-rootfs-XXXXXX");
    assert_non_null(mkdtemp(ct->dir));
    snprintf(ct->rootfs, sizeof(ct->rootfs), "%s/rootfs", ct->dir);
    snprintf(ct->src, sizeof(ct->src), "%s/src", ct->dir);
    xmkdir(ct->dir, "rootfs");
    xmkdir(ct->dir, "src");
    for (const char *const *d = (const char *const[]){"proc", "sys", "dev", "etc", "tmp", NULL}; *d;
         d++)
        xmkdir(ct->rootfs, *d);
    xwrite(ct->rootfs, "marker", "rootfs");
}

/* Fixture: the temp dir goes even when a test fails (fail_msg longjmps). */
static int ct_setup(void **state)
{
    struct ct *ct = calloc(1, sizeof(*ct));
    if (!ct)
        return -1;
    ct_create(ct);
    *state = ct;
    return 0;
}

static int ct_teardown(void **state)
{
    struct ct *ct = *state;
    rm_rf(ct->dir);
    free(ct);
    return 0;
}

typedef bool (*check_fn)(const struct ct *ct);

/* Fork; the child unshares mount/pid/uts/ipc namespaces and forks pid 1 of the new
 * pid namespace, which runs ka_rootfs_setup (expecting `expect_err` in the error, or
 * success when NULL) and then `check`, from inside the container. */
static void run_container(const struct ct *ct, const struct ka_spec *spec, bool no_pivot,
                          const char *expect_err, check_fn check)
{
    int before = mountinfo_lines();
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        report_fd = p[1];
        if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC) < 0) {
            report("unshare: %s", strerror(errno));
            _exit(1);
        }
        pid_t g = fork();
        if (g < 0) {
            report("fork: %s", strerror(errno));
            _exit(1);
        }
        if (g == 0) {
            if (pre_slave && mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
                report("make / rslave: %s", strerror(errno));
                _exit(1);
            }
            struct ka_error err = {0};
            int ret = ka_rootfs_setup(spec, ct->rootfs, no_pivot, &err);
            if (expect_err) {
                if (ret >= 0) {
                    report("ka_rootfs_setup succeeded; expected an error with \"%s\"", expect_err);
                    _exit(1);
                }
                if (!strstr(err.msg, expect_err)) {
                    report("error \"%s\" does not contain \"%s\"", err.msg, expect_err);
                    _exit(1);
                }
            } else if (ret < 0) {
                report("ka_rootfs_setup: %s", err.msg);
                _exit(1);
            }
            _exit(!check || check(ct) ? 0 : 1);
        }
        int st;
        if (waitpid(g, &st, 0) < 0)
            _exit(1);
        if (WIFSIGNALED(st))
            report("container pid 1 killed by signal %d", WTERMSIG(st));
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
    }
    close(p[1]);
    char msg[8192];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(msg) - 1 && (n = read(p[0], msg + len, sizeof(msg) - 1 - len)) > 0)
        len += (size_t)n;
    msg[len] = '\0';
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("container child failed:\n%s", msg);
    assert_int_equal(mountinfo_lines(), before);
}

#define M(dst_, src_, type_, fl_, data_)                                                  \
    {                                                                                     \
        .destination = (char *)(dst_), .source = (char *)(src_), .type = (char *)(type_), \
        .flags = (fl_), .data = (char *)(data_)                                           \
    }
#define BIND(dst_, src_, fl_)                                                    \
    {                                                                            \
        .destination = (char *)(dst_), .source = (src_), .type = (char *)"bind", \
        .flags = (fl_) | MS_BIND, .bind = true                                   \
    }

#ifndef MQUEUE_MAGIC
#define MQUEUE_MAGIC 0x19800202
#endif

static bool is_fs(const char *path, long magic)
{
    struct statfs sfs;
    return statfs(path, &sfs) == 0 && sfs.f_type == magic;
}

static bool is_ro(const char *path)
{
    struct statvfs sv;
    return statvfs(path, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

static bool check_node(const char *path, mode_t type, unsigned maj, unsigned min, mode_t perm,
                       uid_t uid, gid_t gid)
{
    struct stat st;
    CHECK(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
    CHECK((st.st_mode & S_IFMT) == type, "%s: type %o", path, st.st_mode & S_IFMT);
    if (type != S_IFIFO)
        CHECK(major(st.st_rdev) == maj && minor(st.st_rdev) == min, "%s: %u:%u", path,
              major(st.st_rdev), minor(st.st_rdev));
    CHECK((st.st_mode & 07777) == perm, "%s: mode %o", path, st.st_mode & 07777);
    CHECK(st.st_uid == uid && st.st_gid == gid, "%s: owner %u:%u", path, st.st_uid, st.st_gid);
    return true;
}

static bool check_link(const char *path, const char *target)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof(buf) - 1);
    CHECK(n >= 0, "readlink %s: %s", path, strerror(errno));
    buf[n] = '\0';
    CHECK(strcmp(buf, target) == 0, "%s -> %s, expected %s", path, buf, target);
    return true;
}

static bool check_erofs_create(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd < 0 && errno == EROFS, "create %s: fd %d, %s (expected EROFS)", path, fd,
          strerror(errno));
    return true;
}

static bool check_reads_empty(const char *path)
{
    char buf[16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    CHECK(n == 0, "%s read %zd bytes, expected none", path, n);
    return true;
}

static bool check_empty_dir(const char *path)
{
    DIR *d = opendir(path);
    CHECK(d, "opendir %s: %s", path, strerror(errno));
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    CHECK(n == 0, "%s has %d entries", path, n);
    return true;
}

/* The line of /proc/self/mountinfo for mount point `mp` has an optional field
 * starting with `tag` ("shared:", "master:"). */
static bool check_mount_optional(const char *mp, const char *tag)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    CHECK(f, "open mountinfo: %s", strerror(errno));
    char line[4096];
    bool found = false, tagged = false;
    while (fgets(line, sizeof(line), f)) {
        char point[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 && strcmp(point, mp) == 0) {
            found = true;
            char *sep = strstr(line, " - ");
            char *t = strstr(line, tag);
            tagged = t && sep && t < sep;
        }
    }
    fclose(f);
    CHECK(found && tagged, "%s: mounted %d, \"%s\" %d", mp, found, tag, tagged);
    return true;
}

/* What every successful container sees: its rootfs, a fresh /proc, /dev. */
static bool check_basics(const struct ct *ct)
{
    CHECK(access("/marker", F_OK) == 0, "no /marker: not in the rootfs");
    CHECK(access(ct->dir, F_OK) < 0, "the host's %s is visible", ct->dir);
    CHECK(is_fs("/proc", PROC_SUPER_MAGIC), "/proc is not a procfs");
    CHECK(getpid() == 1, "pid %d", getpid());
    char self[16] = {0};
    CHECK(readlink("/proc/self", self, sizeof(self) - 1) > 0 && strcmp(self, "1") == 0,
          "/proc/self -> %s: not this pid namespace's proc", self);
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof(cwd)) && strcmp(cwd, "/") == 0, "cwd %s", cwd);

    const struct {
        const char *path;
        unsigned maj, min;
    } nodes[] = {{"/dev/null", 1, 3}, {"/dev/zero", 1, 5},   {"/dev/full", 1, 7},
                 {"/dev/tty", 5, 0},  {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}};
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
        if (!check_node(nodes[i].path, S_IFCHR, nodes[i].maj, nodes[i].min, 0666, 0, 0))
            return false;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1, "write /dev/null: %s", strerror(errno));
    close(fd);
    if (!check_link("/dev/fd", "/proc/self/fd") || !check_link("/dev/stdin", "/proc/self/fd/0") ||
        !check_link("/dev/stdout", "/proc/self/fd/1") ||
        !check_link("/dev/stderr", "/proc/self/fd/2") || !check_link("/dev/ptmx", "pts/ptmx"))
        return false;
    struct stat st;
    CHECK(stat("/dev/fd/0", &st) == 0, "/dev/fd/0: %s", strerror(errno));
    return true;
}

/* ---- The full container --------------------------------------------------------- */

static char host_kcore;

static bool check_full(const struct ct *ct)
{
    if (!check_basics(ct))
        return false;
    CHECK(is_fs("/dev", TMPFS_MAGIC), "/dev is not the spec's tmpfs");
    CHECK(is_fs("/dev/pts", DEVPTS_SUPER_MAGIC), "/dev/pts is not a devpts");
    CHECK(is_fs("/dev/mqueue", MQUEUE_MAGIC), "/dev/mqueue is not an mqueue");
    if (host_kcore && !check_link("/dev/kcore", "/proc/kcore"))
        return false;

    /* tmpfs with flags and data. */
    struct statvfs sv;
    CHECK(is_fs("/scratch", TMPFS_MAGIC), "/scratch is not a tmpfs");
    CHECK(statvfs("/scratch", &sv) == 0, "statvfs /scratch");
    CHECK((sv.f_flag & (ST_NOSUID | ST_NODEV)) == (ST_NOSUID | ST_NODEV) &&
              !(sv.f_flag & ST_RDONLY),
          "/scratch flags %#lx", sv.f_flag);
    CHECK(sv.f_blocks * sv.f_frsize == 1024 * 1024, "/scratch size %llu",
          (unsigned long long)(sv.f_blocks * sv.f_frsize));
    struct stat st;
    CHECK(stat("/scratch", &st) == 0 && (st.st_mode & 07777) == 01777, "/scratch mode %o",
          st.st_mode & 07777);
    int fd = open("/scratch/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd >= 0, "/scratch is not writable: %s", strerror(errno));
    close(fd);

    /* Read-only bind of a directory; bind of a file onto a missing path. */
    CHECK(access("/data/hello", R_OK) == 0, "/data/hello: %s", strerror(errno));
    if (!check_erofs_create("/data/new"))
        return false;
    CHECK(statvfs("/data", &sv) == 0 && (sv.f_flag & ST_NOEXEC), "/data lost noexec");
    char buf[64] = {0};
    fd = open("/etc/bound.txt", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 5 && strcmp(buf, "bound") == 0,
          "/etc/bound.txt: '%s'", buf);
    close(fd);

    /* sysfs ro and the cgroup mount. */
    CHECK(is_fs("/sys", SYSFS_MAGIC) && is_ro("/sys"), "/sys is not a read-only sysfs");
    if (is_fs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC)) {
        CHECK(is_ro("/sys/fs/cgroup"), "cgroup2 not read-only");
        CHECK(access("/sys/fs/cgroup/cgroup.procs", F_OK) == 0, "no cgroup.procs");
    } else {
        CHECK(is_fs("/sys/fs/cgroup", TMPFS_MAGIC) && is_ro("/sys/fs/cgroup"),
              "v1: /sys/fs/cgroup is not a ro tmpfs");
        CHECK(is_fs("/sys/fs/cgroup/memory", CGROUP_SUPER_MAGIC), "v1: no memory hierarchy");
        CHECK(is_ro("/sys/fs/cgroup/memory"), "v1: memory hierarchy writable");
        CHECK(access("/sys/fs/cgroup/memory/cgroup.procs", F_OK) == 0,
              "v1: no memory/cgroup.procs");
        CHECK(is_fs("/sys/fs/cgroup/cpu", CGROUP_SUPER_MAGIC), "v1: no cpu hierarchy (or symlink)");
    }

    /* Destinations through symlinks to "/" and ".." landed inside. */
    CHECK(is_fs("/ka-test-x", TMPFS_MAGIC), "/evil/ka-test-x did not land on /ka-test-x");
    CHECK(is_fs("/ka-test-y", TMPFS_MAGIC), "/dotdot/ka-test-y did not land on /ka-test-y");

    /* Spec devices. */
    if (!check_node("/dev/net/tun", S_IFCHR, 10, 200, 0620, 1000, 1001) ||
        !check_node("/dev/kafifo", S_IFIFO, 0, 0, 0600, 0, 0) ||
        !check_node("/dev/null", S_IFCHR, 1, 3, 0666, 0, 0))
        return false;

    /* Sysctl, in this uts namespace (read-only now: /proc/sys is a readonly path). */
    char dn[64] = {0};
    CHECK(getdomainname(dn, sizeof(dn) - 1) == 0 && strcmp(dn, "ka-test") == 0, "domainname '%s'",
          dn);

    /* Masked and read-only paths. */
    if ((host_kcore && !check_reads_empty("/proc/kcore")) || !check_reads_empty("/proc/version") ||
        !check_reads_empty("/etc/secret") || !check_empty_dir("/secret-dir") ||
        !check_erofs_create("/secret-dir/x"))
        return false;
    fd = open("/proc/sys/kernel/domainname", O_WRONLY | O_CLOEXEC);
    CHECK(fd < 0 && errno == EROFS, "/proc/sys is writable (fd %d, %s)", fd, strerror(errno));
    /* The spec's per-mount propagation ("shared" on /rw). */
    if (!check_mount_optional("/rw", "shared:"))
        return false;

    /* /rw is a writable bind, /rw/sub a read-only path in it (kept nosuid). */
    fd = open("/rw/x", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd >= 0, "/rw is not writable: %s", strerror(errno));
    close(fd);
    if (!check_erofs_create("/rw/sub/x"))
        return false;
    CHECK(statvfs("/rw/sub", &sv) == 0 && (sv.f_flag & ST_RDONLY) && (sv.f_flag & ST_NOSUID),
          "/rw/sub flags %#lx", sv.f_flag);

    /* Read-only root. */
    if (!check_erofs_create("/newfile") || !check_erofs_create("/etc/newfile"))
        return false;
    CHECK(statvfs("/", &sv) == 0 && (sv.f_flag & ST_RDONLY) && (sv.f_flag & ST_NODEV),
          "/ flags %#lx", sv.f_flag);
    return true;
}

static void test_full_container(void **state)
{
    struct ct ct = *(struct ct *)*state;
    host_kcore = access("/proc/kcore", F_OK) == 0;
    xmkdir(ct.src, "data");
    xwrite(ct.src, "data/hello", "hello");
    xwrite(ct.src, "file.txt", "bound");
    xsymlink(ct.rootfs, "evil", "/");
    xsymlink(ct.rootfs, "dotdot", "../../..");
    xwrite(ct.rootfs, "etc/secret", "secret");
    xmkdir(ct.rootfs, "secret-dir");
    xwrite(ct.rootfs, "secret-dir/inside", "secret");
    xmkdir(ct.src, "rw");
    xmkdir(ct.src, "rw/sub");
    /* A /dev/null the image ships (a regular file) is replaced by the node. */
    xwrite(ct.rootfs, "dev/null", "not a device");

    struct stat st;
    assert_int_equal(stat("/ka-test-x", &st), -1);
    assert_int_equal(stat("/ka-test-y", &st), -1);

    char data[PATH_MAX], file[PATH_MAX], rw[PATH_MAX];
    snprintf(data, sizeof(data), "%s/data", ct.src);
    snprintf(rw, sizeof(rw), "%s/rw", ct.src);
    snprintf(file, sizeof(file), "%s/file.txt", ct.src);
    struct ka_mount mounts[] = {
        M("/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL),
        M("/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        M("/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=0620"),
        M("/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL),
        M("/sys", "sysfs", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL),
        M("/sys/fs/cgroup", "cgroup", "cgroup",
          MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY, NULL),
        M("/scratch", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777"),
        BIND("/data", data, MS_RDONLY | MS_NOEXEC),
        BIND("/etc/bound.txt", file, 0),
        {.destination = (char *)"/rw",
         .source = rw,
         .type = (char *)"bind",
         .flags = MS_BIND | MS_NOSUID,
         .bind = true,
         .propagation = MS_SHARED},
        M("/evil/ka-test-x", "tmpfs", "tmpfs", 0, NULL),
        M("/dotdot/ka-test-y", "tmpfs", "tmpfs", 0, NULL),
    };
    struct ka_device devices[] = {
        {.path = (char *)"/dev/net/tun",
         .type = 'c',
         .major = 10,
         .minor = 200,
         .has_file_mode = true,
         .file_mode = 0620,
         .uid = 1000,
         .gid = 1001},
        {.path = (char *)"/dev/kafifo", .type = 'p', .has_file_mode = true, .file_mode = 0600},
        /* Also among the defaults: created once more, not an error. */
        {.path = (char *)"/dev/null", .type = 'c', .major = 1, .minor = 3},
    };
    struct ka_sysctl sysctls[] = {{.key = (char *)"kernel.domainname", .value = (char *)"ka-test"}};
    char *masked[] = {"/proc/kcore", "/proc/version",   "/etc/secret",
                      "/secret-dir", "/does/not/exist", "/etc/secret/notdir"};
    char *readonly[] = {"/proc/sys", "/rw/sub", "/does/not/exist"};
    struct ka_spec spec = {
        .root_readonly = true,
        .mounts = mounts,
        .n_mounts = sizeof(mounts) / sizeof(mounts[0]),
        .devices = devices,
        .n_devices = sizeof(devices) / sizeof(devices[0]),
        .sysctls = sysctls,
        .n_sysctls = 1,
        .rootfs_propagation = MS_SLAVE | MS_REC,
        .masked_paths = masked,
        .n_masked_paths = sizeof(masked) / sizeof(masked[0]),
        .readonly_paths = readonly,
        .n_readonly_paths = sizeof(readonly) / sizeof(readonly[0]),
    };
    run_container(&ct, &spec, false, NULL, check_full);

    /* Nothing landed on the host; the mount points were made inside the rootfs. */
    assert_int_equal(stat("/ka-test-x", &st), -1);
    assert_int_equal(stat("/ka-test-y", &st), -1);
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/ka-test-x", ct.rootfs);
    assert_int_equal(stat(p, &st), 0);
    snprintf(p, sizeof(p), "%s/etc/bound.txt", ct.rootfs);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

/* ---- No /dev mount: nodes go into the image's /dev; no_pivot ------------------------ */

static bool check_no_pivot(const struct ct *ct)
{
    if (!check_basics(ct))
        return false;
    CHECK(!is_fs("/dev", TMPFS_MAGIC), "/dev should be the image's directory");
    if (!check_reads_empty("/etc/secret") || !check_erofs_create("/newfile"))
        return false;
    struct statvfs sv;
    /* /dev is not a mount of its own, so "/" keeps dev for the nodes on it. */
    CHECK(statvfs("/", &sv) == 0 && !(sv.f_flag & ST_NODEV), "/ is nodev with the nodes on it");
    return true;
}

static void test_no_pivot(void **state)
{
    struct ct ct = *(struct ct *)*state;
    xwrite(ct.rootfs, "etc/secret", "secret");
    struct ka_mount mounts[] = {M("/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL)};
    char *masked[] = {"/etc/secret"};
    struct ka_spec spec = {
        .root_readonly = true,
        .mounts = mounts,
        .n_mounts = 1,
        .rootfs_propagation = MS_PRIVATE | MS_REC,
        .masked_paths = masked,
        .n_masked_paths = 1,
    };
    run_container(&ct, &spec, true, NULL, check_no_pivot);
    /* The nodes were made in the image's /dev, on disk. */
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof(p), "%s/dev/null", ct.rootfs);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

/* ---- rootfsPropagation "rshared" ---------------------------------------------------- */

static bool check_rshared(const struct ct *ct)
{
    if (!check_basics(ct))
        return false;
    return check_mount_optional("/", "shared:");
}

/* pivot_root refuses a rootfs whose parent mount is shared: the parent is made
 * private first (runc, rustjail). The child slaves "/" before, so that nothing can
 * propagate to the host even where the host's mounts are shared (systemd). */
static void test_rshared(void **state)
{
    struct ct ct = *(struct ct *)*state;
    struct ka_mount mounts[] = {M("/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL)};
    struct ka_spec spec = {.mounts = mounts,
                           .n_mounts = 1,
                           .rootfs_propagation = MS_SHARED | MS_REC};
    pre_slave = true;
    run_container(&ct, &spec, false, NULL, check_rshared);
    pre_slave = false;
}

/* ---- /proc as a symlink ----------------------------------------------------------- */

static char proc_symlink_etc[PATH_MAX];

static bool check_proc_symlink_refused(const struct ct *ct)
{
    (void)ct;
    /* Still in the agent's root: nothing was mounted on rootfs/etc or the host's /etc. */
    CHECK(!is_fs(proc_symlink_etc, PROC_SUPER_MAGIC), "proc mounted on %s", proc_symlink_etc);
    CHECK(!is_fs("/etc", PROC_SUPER_MAGIC), "proc mounted on the host's /etc");
    return true;
}

/* runc, crun and rustjail's intent (§6.2: "the target must be a real directory"):
 * refused, not followed, so no later step on "/proc/..." can be redirected. */
static void test_proc_symlink(void **state)
{
    struct ct ct = *(struct ct *)*state;
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/proc", ct.rootfs);
    assert_int_equal(rmdir(p), 0);
    xsymlink(ct.rootfs, "proc", "/etc");
    snprintf(proc_symlink_etc, sizeof(proc_symlink_etc), "%s/etc", ct.rootfs);
    struct ka_mount mounts[] = {M("/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL)};
    struct ka_spec spec = {.mounts = mounts,
                           .n_mounts = 1,
                           .rootfs_propagation = MS_SLAVE | MS_REC};
    run_container(&ct, &spec, false,
                  "mount proc on /proc: must be mounted on an ordinary directory, not a symlink",
                  check_proc_symlink_refused);

    /* sysfs too, and a symlink to something other than "/etc". */
    snprintf(p, sizeof(p), "%s/sys", ct.rootfs);
    assert_int_equal(rmdir(p), 0);
    xsymlink(ct.rootfs, "sys", "tmp");
    struct ka_mount sys[] = {M("/sys", "sysfs", "sysfs", MS_RDONLY, NULL)};
    struct ka_spec spec2 = {.mounts = sys, .n_mounts = 1, .rootfs_propagation = MS_SLAVE | MS_REC};
    run_container(&ct, &spec2, false,
                  "mount sysfs on /sys: must be mounted on an ordinary directory", NULL);
}

/* ---- binds that an image's symlinks lead onto procfs or sysfs ---------------------- */

static bool check_uptime_bound(const struct ct *ct)
{
    (void)ct;
    char buf[64] = "";
    int fd = open("/proc/uptime", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open /proc/uptime: %s", strerror(errno));
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    CHECK(n > 0 && strcmp(buf, "bound\n") == 0, "/proc/uptime reads \"%s\"", buf);
    return true;
}

/* Issue 13: an image's /etc/hostname -> /proc/sys/kernel/domainname put the host's
 * file over the container's procfs file. The target is judged where it resolves. */
static void test_bind_through_image_symlink(void **state)
{
    struct ct ct = *(struct ct *)*state;
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/hostname", ct.src);
    xwrite(ct.src, "hostname", "bound\n");
    xsymlink(ct.rootfs, "etc/hostname", "/proc/sys/kernel/domainname");
    xsymlink(ct.rootfs, "etc/rel", "../proc/sys/kernel/hostname");
    xsymlink(ct.rootfs, "etc/sysfile", "/sys/kernel/profiling");
    xsymlink(ct.rootfs, "etc/uptime", "/proc/uptime");
    static const char *const refused[][2] = {
        {"/etc/hostname", "the target is /proc/sys/kernel/domainname on a procfs"},
        {"/etc/rel", "the target is /proc/sys/kernel/hostname on a procfs"},
        {"/etc/sysfile", "on a sysfs"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct ka_mount mounts[] = {
            M("/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL),
            M("/sys", "sysfs", "sysfs", MS_RDONLY, NULL),
            BIND(refused[i][0], src, 0),
        };
        struct ka_spec spec = {.mounts = mounts,
                               .n_mounts = 3,
                               .rootfs_propagation = MS_SLAVE | MS_REC};
        run_container(&ct, &spec, false, refused[i][1], NULL);
    }
    /* An allowed procfs file (lxcfs style) may still be reached that way. */
    struct ka_mount ok[] = {
        M("/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL),
        BIND("/etc/uptime", src, 0),
    };
    struct ka_spec spec = {.mounts = ok, .n_mounts = 2, .rootfs_propagation = MS_SLAVE | MS_REC};
    run_container(&ct, &spec, false, NULL, check_uptime_bound);
}

/* ---- Error messages say what and where -------------------------------------------- */

static void test_errors(void **state)
{
    struct ct ct = *(struct ct *)*state;
    struct ka_mount missing[] = {BIND("/data", (char *)"/nonexistent-ka-source", 0)};
    struct ka_spec spec = {.mounts = missing,
                           .n_mounts = 1,
                           .rootfs_propagation = MS_SLAVE | MS_REC};
    run_container(
        &ct, &spec, false,
        "bind mount /nonexistent-ka-source on /data: stat the source: No such file or directory",
        NULL);

    struct ka_mount nofs[] = {M("/x", "none", "nosuchfs", 0, NULL)};
    spec.mounts = nofs;
    run_container(&ct, &spec, false, "mount nosuchfs on /x: No such device", NULL);

    struct ka_mount inproc[] = {BIND("/proc/sys/kernel", ct.src, 0)};
    spec.mounts = inproc;
    run_container(&ct, &spec, false, "binds inside /proc are not allowed", NULL);

    struct ka_sysctl bad[] = {{.key = (char *)"kernel..domainname", .value = (char *)"x"}};
    struct ka_spec spec2 = {.sysctls = bad,
                            .n_sysctls = 1,
                            .rootfs_propagation = MS_SLAVE | MS_REC};
    run_container(&ct, &spec2, false, "sysctl kernel..domainname: invalid key", NULL);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr,
                "test_rootfs: must run as root (it creates mount, pid, uts and ipc namespaces "
                "and mounts inside them); refusing to skip\n");
        return 1;
    }
    const struct CMUnitTest path_tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_and_dotdot, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_symlinks_stay_inside, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_symlink_loops_and_hops, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_nofollow_and_errors, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_create_through_dangling_symlink, tree_setup,
                                        tree_teardown),
        cmocka_unit_test(test_magic_links),
        cmocka_unit_test_setup_teardown(test_mkdir_p, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_create_file, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_full_container, ct_setup, ct_teardown),
    };
    const struct CMUnitTest rootfs_tests[] = {
        cmocka_unit_test_setup_teardown(test_no_pivot, ct_setup, ct_teardown),
        cmocka_unit_test_setup_teardown(test_rshared, ct_setup, ct_teardown),
        cmocka_unit_test_setup_teardown(test_proc_symlink, ct_setup, ct_teardown),
        cmocka_unit_test_setup_teardown(test_bind_through_image_symlink, ct_setup, ct_teardown),
        cmocka_unit_test_setup_teardown(test_errors, ct_setup, ct_teardown),
    };
    int rc = cmocka_run_group_tests_name("openat2", path_tests, use_openat2, NULL);
    rc += cmocka_run_group_tests_name("user-space walk", path_tests, use_walk, use_openat2);
    rc += cmocka_run_group_tests_name("rootfs", rootfs_tests, NULL, NULL);
    return rc;
}
