/* CopyFile (storage/copyfile.c) against a temporary root: regular files in chunks,
 * empty files, directories, symlinks, owners and modes; and every way out of the
 * root refused with nothing written outside it. Runs as root (chown). */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/copyfile.h"

static char root[64], outside[64];
static int rootfd = -1;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/ka-copyfile-root-XXXXXX");
    snprintf(outside, sizeof(outside), "/tmp/ka-copyfile-out-XXXXXX");
    assert_non_null(mkdtemp(root));
    assert_non_null(mkdtemp(outside));
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(rootfd >= 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(rootfd);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    nftw(outside, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int copy(const char *path, uint32_t mode, int64_t size, int64_t off, const void *data,
                size_t len, struct ka_error *err)
{
    struct ka_copyfile r = {
        .path = path,
        .file_size = size,
        .file_mode = mode,
        .dir_mode = 0750,
        .uid = 1234,
        .gid = 5678,
        .offset = off,
        .data = data,
        .len = len,
    };
    ka_error_clear(err);
    return ka_copyfile_at(rootfd, &r, err);
}

static void expect_invalid(const char *path, uint32_t mode, int64_t size, int64_t off,
                           const void *data, size_t len)
{
    struct ka_error err;
    assert_true(copy(path, mode, size, off, data, len, &err) < 0);
    if (ka_error_status(&err) != KA_STATUS_INVALID_ARGUMENT)
        fail_msg("%s: status %d (%s), want INVALID_ARGUMENT", path, ka_error_status(&err), err.msg);
}

static void at(char *buf, const char *rel)
{
    snprintf(buf, PATH_MAX, "%s/%s", root, rel);
}

static void test_file_in_chunks(void **state)
{
    (void)state;
    struct ka_error err;
    const char *text = "hello, chunked world";
    size_t n = strlen(text);
    char p[PATH_MAX], tmp[PATH_MAX];
    assert_int_equal(copy("c1/sub/f", S_IFREG | 0640, (int64_t)n, 0, text, 7, &err), 0);
    at(p, "c1/sub/f");
    at(tmp, "c1/sub/f.tmp");
    struct stat st;
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(stat(tmp, &st), 0);
    assert_int_equal(copy("c1/sub/f", S_IFREG | 0640, (int64_t)n, 7, text + 7, 7, &err), 0);
    assert_int_equal(stat(p, &st), -1);
    /* The chunk that ends at file_size completes the file. */
    assert_int_equal(copy("c1/sub/f", S_IFREG | 0640, (int64_t)n, 14, text + 14, n - 14, &err), 0);
    assert_int_equal(stat(tmp, &st), -1);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    assert_int_equal(st.st_size, (off_t)n);
    char got[64] = {0};
    int fd = open(p, O_RDONLY);
    assert_int_equal(read(fd, got, sizeof(got)), (ssize_t)n);
    close(fd);
    assert_string_equal(got, text);
    /* Parents were created with dir_mode. */
    at(p, "c1/sub");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750 & ~umask(022));
    umask(022);
    /* A second copy replaces the file atomically, shorter than before. */
    assert_int_equal(copy("c1/sub/f", S_IFREG | 0600, 2, 0, "ok", 2, &err), 0);
    at(p, "c1/sub/f");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 2);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_empty_file(void **state)
{
    (void)state;
    struct ka_error err;
    assert_int_equal(copy("empty", S_IFREG | 0644, 0, 0, "", 0, &err), 0);
    char p[PATH_MAX];
    at(p, "empty");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    /* No type bits: still a regular file, as the Rust agent takes it. */
    assert_int_equal(copy("empty2", 0600, 0, 0, "", 0, &err), 0);
}

static void test_directory(void **state)
{
    (void)state;
    struct ka_error err;
    assert_int_equal(copy("d/e", S_IFDIR | 0705, 0, 0, NULL, 0, &err), 0);
    assert_int_equal(copy("d/e", S_IFDIR | 0705, 0, 0, NULL, 0, &err), 0); /* EEXIST ok */
    char p[PATH_MAX];
    at(p, "d/e");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0705);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    /* A regular file in the way is not turned into a directory. */
    assert_int_equal(copy("d/f", S_IFREG | 0600, 1, 0, "x", 1, &err), 0);
    expect_invalid("d/f", S_IFDIR | 0755, 0, 0, NULL, 0);
}

static void test_symlink(void **state)
{
    (void)state;
    struct ka_error err;
    assert_int_equal(copy("s/l", S_IFLNK | 0777, 0, 0, "target/one", 10, &err), 0);
    char p[PATH_MAX], buf[PATH_MAX];
    at(p, "s/l");
    ssize_t n = readlink(p, buf, sizeof(buf));
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "target/one", 10);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    /* An existing symlink is replaced. */
    assert_int_equal(copy("s/l", S_IFLNK | 0777, 0, 0, "/abs", 4, &err), 0);
    n = readlink(p, buf, sizeof(buf));
    assert_int_equal(n, 4);
    /* Anything else in the way is not. */
    assert_int_equal(copy("s/file", S_IFREG | 0600, 1, 0, "x", 1, &err), 0);
    expect_invalid("s/file", S_IFLNK | 0777, 0, 0, "t", 1);
    expect_invalid("s/l2", S_IFLNK | 0777, 0, 0, "", 0);
    expect_invalid("s/l2", S_IFLNK | 0777, 0, 0, "a\0b", 3);
}

/* Upstream 1390350d9d: a relative symlink whose target has not been copied yet is
 * made, owned as asked (the chown must not follow it), and works once the target
 * arrives, which keeps its own owner. */
static void test_dangling_symlink(void **state)
{
    (void)state;
    struct ka_error err;
    assert_int_equal(copy("d/symlink_file.txt", S_IFLNK | 0777, 0, 0, "file.txt", 8, &err), 0);
    char p[PATH_MAX], buf[PATH_MAX];
    at(p, "d/symlink_file.txt");
    assert_int_equal(readlink(p, buf, sizeof(buf)), 8);
    assert_memory_equal(buf, "file.txt", 8);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    assert_int_not_equal(stat(p, &st), 0);
    assert_int_equal(errno, ENOENT);

    struct ka_copyfile r = {.path = "d/file.txt",
                            .file_size = 3,
                            .file_mode = S_IFREG | 0644,
                            .dir_mode = 0750,
                            .uid = 10,
                            .gid = 200,
                            .data = (const uint8_t *)"foo",
                            .len = 3};
    assert_int_equal(ka_copyfile_at(rootfd, &r, &err), 0);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, sizeof(buf), f), 3);
    fclose(f);
    assert_memory_equal(buf, "foo", 3);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_uid, 10);
    assert_int_equal(st.st_gid, 200);
    /* Sent again (a refresh), the dangling-then-valid link is replaced in place. */
    assert_int_equal(copy("d/symlink_file.txt", S_IFLNK | 0777, 0, 0, "file.txt", 8, &err), 0);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

static void test_bad_input_writes_nothing(void **state)
{
    (void)state;
    static uint8_t big[KA_COPYFILE_MAX_CHUNK + 1];
    expect_invalid("f", S_IFREG | 0600, sizeof(big), 0, big, sizeof(big));
    expect_invalid("f", S_IFREG | 0600, 10, 11, NULL, 0);  /* offset beyond size */
    expect_invalid("f", S_IFREG | 0600, 10, 8, "abcd", 4); /* offset + len > size */
    expect_invalid("f", S_IFREG | 0600, 10, -1, "a", 1);   /* negative offset */
    expect_invalid("f", S_IFREG | 0600, -1, 0, NULL, 0);   /* negative size */
    expect_invalid("f", S_IFREG | 0600, KA_COPYFILE_MAX_SIZE + 1, 0, NULL, 0);
    expect_invalid("f", S_IFIFO | 0600, 0, 0, NULL, 0); /* other types */
    expect_invalid("f", S_IFCHR | 0600, 0, 0, NULL, 0);
    expect_invalid("f", S_IFSOCK | 0600, 0, 0, NULL, 0);
    expect_invalid("a//b", S_IFREG | 0600, 0, 0, NULL, 0); /* empty components */
    expect_invalid("a/", S_IFREG | 0600, 0, 0, NULL, 0);
    expect_invalid("/a", S_IFREG | 0600, 0, 0, NULL, 0);
    expect_invalid("", S_IFREG | 0600, 0, 0, NULL, 0);
    expect_invalid("a/../../x", S_IFREG | 0600, 0, 0, NULL, 0); /* ".." */
    expect_invalid("..", S_IFDIR | 0700, 0, 0, NULL, 0);
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    expect_invalid(longname, S_IFREG | 0600, 0, 0, NULL, 0);
    assert_int_equal(count_entries(root), 0);
}

static void test_symlinks_are_not_followed(void **state)
{
    (void)state;
    char p[PATH_MAX], lk[PATH_MAX];
    /* A parent that is a symlink to a directory outside. */
    at(lk, "c1");
    assert_int_equal(mkdir(lk, 0755), 0);
    at(lk, "c1/link");
    assert_int_equal(symlink(outside, lk), 0);
    expect_invalid("c1/link/f", S_IFREG | 0600, 1, 0, "x", 1);
    expect_invalid("c1/link/d", S_IFDIR | 0700, 0, 0, NULL, 0);
    expect_invalid("c1/link/sub/f", S_IFREG | 0600, 1, 0, "x", 1);
    /* An absolute symlink in the middle (to "/"), and a relative one to "..". */
    at(lk, "c1/abs");
    assert_int_equal(symlink("/", lk), 0);
    snprintf(p, sizeof(p), "c1/abs%s/f", outside);
    expect_invalid(p, S_IFREG | 0600, 1, 0, "x", 1);
    at(lk, "c1/up");
    assert_int_equal(symlink("..", lk), 0);
    expect_invalid("c1/up/up/f", S_IFREG | 0600, 1, 0, "x", 1);
    /* A symlink planted as the ".tmp" file: a later chunk refuses it (O_NOFOLLOW);
     * the first chunk only takes its name away (O_EXCL on a fresh file). */
    char victim[PATH_MAX];
    snprintf(victim, sizeof(victim), "%s/victim", outside);
    int fd = open(victim, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    at(lk, "c1/g.tmp");
    assert_int_equal(symlink(victim, lk), 0);
    struct ka_error err;
    assert_true(copy("c1/g", S_IFREG | 0600, 2, 1, "x", 1, &err) < 0);
    assert_int_equal(copy("c1/g", S_IFREG | 0600, 1, 0, "x", 1, &err), 0);
    /* A final symlink is replaced by the file, never written through. */
    at(lk, "c1/h");
    assert_int_equal(symlink(victim, lk), 0);
    assert_int_equal(copy("c1/h", S_IFREG | 0600, 1, 0, "x", 1, &err), 0);
    struct stat st;
    assert_int_equal(lstat(lk, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(count_entries(outside), 1); /* only the victim */
}

static void test_prefix(void **state)
{
    (void)state;
    struct ka_error err;
    const char *rest = ka_copyfile_strip_prefix("/run/kata-containers/shared/containers/c/x", &err);
    assert_non_null(rest);
    assert_string_equal(rest, "c/x");
    static const char *const bad[] = {
        "/run/kata-containers/shared/containers-evil/x",
        "/run/kata-containers/shared/containers",
        "/run/kata-containers/shared/containers/",
        "/run/kata-containers/x",
        "/etc/passwd",
        "run/kata-containers/shared/containers/x",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ka_error_clear(&err);
        if (ka_copyfile_strip_prefix(bad[i], &err))
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    }
    /* ka_copyfile refuses before creating anything. */
    struct ka_copyfile r = {.path = "/run/kata-containers/shared/containers-evil/x",
                            .file_mode = S_IFREG | 0600,
                            .uid = -1,
                            .gid = -1};
    assert_true(ka_copyfile(&r, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "containers-evil/x"));
}

/* Issue 13 item 8: a hard link planted at "<name>.tmp" is never written through. */
static void test_planted_hard_link(void **state)
{
    (void)state;
    char victim[PATH_MAX], lk[PATH_MAX], p[PATH_MAX];
    snprintf(victim, sizeof(victim), "%s/victim", outside);
    int fd = open(victim, O_CREAT | O_WRONLY, 0644);
    assert_int_equal(write(fd, "original", 8), 8);
    close(fd);
    at(p, "c2");
    assert_int_equal(mkdir(p, 0755), 0);
    at(lk, "c2/f.tmp");
    /* outside and root share the scratch filesystem: a real second name. */
    assert_int_equal(link(victim, lk), 0);
    struct ka_error err;
    /* A later chunk finds two names on the temporary: refused. */
    assert_true(copy("c2/f", S_IFREG | 0644, 8, 4, "EVIL", 4, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    /* The first chunk makes its own file; the whole copy lands, the victim is as it was. */
    assert_int_equal(copy("c2/f", S_IFREG | 0644, 8, 0, "EVILEVIL", 8, &err), 0);
    char got[16] = {0};
    fd = open(victim, O_RDONLY);
    assert_int_equal(read(fd, got, sizeof(got)), 8);
    close(fd);
    assert_string_equal(got, "original");
    struct stat st;
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(st.st_uid, 0);
    at(p, "c2/f");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 8);
    assert_int_equal(st.st_nlink, 1);
}

/* "." names the root itself: refused, the root keeps its mode and owner. */
static void test_dot_refused(void **state)
{
    (void)state;
    struct stat before, after;
    assert_int_equal(stat(root, &before), 0);
    expect_invalid(".", S_IFDIR | 0777, 0, 0, NULL, 0);
    expect_invalid("./", S_IFDIR | 0777, 0, 0, NULL, 0);
    expect_invalid("c3/.", S_IFDIR | 0777, 0, 0, NULL, 0);
    expect_invalid("c3/./f", S_IFREG | 0644, 1, 0, "x", 1);
    assert_int_equal(stat(root, &after), 0);
    assert_int_equal(after.st_mode, before.st_mode);
    assert_int_equal(after.st_uid, before.st_uid);
    assert_int_equal(after.st_gid, before.st_gid);
}

/* chown clears setuid/setgid: it goes first, so the bits asked for survive. */
static void test_setuid_survives(void **state)
{
    (void)state;
    struct ka_error err;
    char p[PATH_MAX];
    assert_int_equal(copy("c4/su", S_IFREG | 06755, 2, 0, "#!", 2, &err), 0);
    at(p, "c4/su");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 06755);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(copy("c4/sd", S_IFDIR | 02775, 0, 0, NULL, 0, &err), 0);
    at(p, "c4/sd");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 02775);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("1..0 # SKIP needs root (chown)\n");
        return 0;
    }
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinks_are_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_hard_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dot_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setuid_survives, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
