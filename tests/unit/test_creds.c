/* Container credentials: passwd/group parsing, user resolution, and the real
 * credential switch (user, groups, capabilities, rlimits, oom_score_adj, signals)
 * done in forked children and read back from /proc/self/status.
 *
 * Must run as root with the usual capabilities: it does not skip otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

#include "container/creds.h"
#include "core/util.h"

static char tmpdir[] = "/tmp/test_creds.XXXXXX";
static int real_last_cap; /* /proc/sys/kernel/cap_last_cap, read by the test itself */

static void write_file(const char *name, const char *content, mode_t mode)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static const char *tpath(const char *name)
{
    static char path[4][PATH_MAX];
    static int i;
    i = (i + 1) % 4;
    snprintf(path[i], sizeof(path[i]), "%s/%s", tmpdir, name);
    return path[i];
}

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_error("test_creds must run as root (it switches uids, groups and "
                    "capabilities in forked children); euid is %u\n",
                    geteuid());
        return -1;
    }
    if (!mkdtemp(tmpdir)) {
        print_error("mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (!f || fscanf(f, "%d", &real_last_cap) != 1) {
        print_error("cannot read /proc/sys/kernel/cap_last_cap\n");
        return -1;
    }
    fclose(f);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- passwd ---------------------------------------------------------------- */

static const char passwd_text[] =
    "# a comment line\n"
    "\n"
    "   \t\n"
    "root:x:0:0:root:/root:/bin/bash\n"
    "  alice:x:1000:1000:Alice A:/home/alice:/bin/sh  \n"
    "bob:x:1001:1001::/home/bob:/bin/sh\r\n"
    "+nisuser::::::\n"
    "-nisother::::::\n"
    "+nisnum:x:77:77::/:/bin/sh\n"    /* NIS compat entries are never users */
    "short:x:5\n"                     /* missing gid: skipped */
    "four:x:1002:1003\n"              /* no gecos/home/shell: accepted */
    ":x:1004:1004::/nobody:/bin/sh\n" /* empty name: skipped */
    "badnum:x:12a:1:::\n"
    "negative:x:-1:1:::\n"
    "toobig:x:4294967295:1:::\n"
    "emptyid:x::1:::\n"
    "extra:x:1005:1005:g:/home/extra:/bin/sh:more:fields\n"
    "alice:x:2000:2000::/home/alice2:/bin/sh\n" /* duplicate name: first wins */
    "alias:x:1000:3000::/home/alias:/bin/sh\n"  /* duplicate uid: first wins */
    "1000:x:4242:4242::/home/numeric:/bin/sh\n" /* a name made of digits */
    "last:x:1006:1006::/home/last:/bin/false";  /* no final newline */

static void test_passwd_lookup(void **state)
{
    (void)state;
    write_file("passwd", passwd_text, 0644);
    const char *p = tpath("passwd");
    struct ka_passwd_entry e;
    struct ka_error err = {0};

    assert_int_equal(ka_passwd_lookup(p, "root", 0, &e, &err), 1);
    assert_string_equal(e.name, "root");
    assert_int_equal(e.uid, 0);
    assert_string_equal(e.home, "/root");
    assert_string_equal(e.shell, "/bin/bash");
    ka_passwd_entry_free(&e);

    /* Leading and trailing whitespace ignored; duplicate name: the first line. */
    assert_int_equal(ka_passwd_lookup(p, "alice", 0, &e, &err), 1);
    assert_int_equal(e.uid, 1000);
    assert_int_equal(e.gid, 1000);
    assert_string_equal(e.home, "/home/alice");
    assert_string_equal(e.shell, "/bin/sh");
    ka_passwd_entry_free(&e);

    /* CRLF line ending. */
    assert_int_equal(ka_passwd_lookup(p, "bob", 0, &e, &err), 1);
    assert_string_equal(e.shell, "/bin/sh");
    ka_passwd_entry_free(&e);

    /* By uid: the first line with that uid. */
    assert_int_equal(ka_passwd_lookup(p, NULL, 1000, &e, &err), 1);
    assert_string_equal(e.name, "alice");
    ka_passwd_entry_free(&e);
    assert_int_equal(ka_passwd_lookup(p, NULL, 1001, &e, &err), 1);
    assert_string_equal(e.name, "bob");
    ka_passwd_entry_free(&e);

    /* Names made of digits are names to this function. */
    assert_int_equal(ka_passwd_lookup(p, "1000", 0, &e, &err), 1);
    assert_int_equal(e.uid, 4242);
    ka_passwd_entry_free(&e);

    /* Missing optional fields; extra fields ignored; last line without newline. */
    assert_int_equal(ka_passwd_lookup(p, "four", 0, &e, &err), 1);
    assert_int_equal(e.uid, 1002);
    assert_int_equal(e.gid, 1003);
    assert_string_equal(e.home, "");
    assert_string_equal(e.shell, "");
    ka_passwd_entry_free(&e);
    assert_int_equal(ka_passwd_lookup(p, "extra", 0, &e, &err), 1);
    assert_string_equal(e.home, "/home/extra");
    assert_string_equal(e.shell, "/bin/sh");
    ka_passwd_entry_free(&e);
    assert_int_equal(ka_passwd_lookup(p, "last", 0, &e, &err), 1);
    assert_string_equal(e.shell, "/bin/false");
    ka_passwd_entry_free(&e);

    /* Malformed, comment and NIS lines never match. */
    const char *skipped[] = {"short",    "badnum",  "negative",  "toobig",           "emptyid",
                             "+nisuser", "nisuser", "-nisother", "# a comment line", "",
                             "nobody"};
    for (size_t i = 0; i < KA_ARRAY_SIZE(skipped); i++) {
        assert_int_equal(ka_passwd_lookup(p, skipped[i], 0, &e, &err), 0);
        assert_null(e.name);
    }
    assert_int_equal(ka_passwd_lookup(p, NULL, 1004, &e, &err), 0);
    assert_int_equal(ka_passwd_lookup(p, NULL, 77, &e, &err), 0);
    assert_int_equal(ka_passwd_lookup(p, NULL, 4294967295u, &e, &err), 0);
    assert_int_equal(ka_passwd_lookup(p, NULL, 12, &e, &err), 0);
}

static void test_passwd_long_lines(void **state)
{
    (void)state;
    /* A line over the limit is skipped whole (not split into a bogus second
     * line), and parsing resumes at the next one. */
    size_t pad = KA_CREDS_LINE_MAX + 100;
    char *text = ka_xmalloc(3 * pad + 256);
    char *t = text;
    t += sprintf(t, "long:x:7:7:");
    memset(t, 'g', pad);
    t += pad;
    t += sprintf(t, ":/home/long:/bin/sh\n");
    /* A line that looks valid from its tail end; must not be seen either. */
    memset(t, 'z', pad);
    t += pad;
    t += sprintf(t, "\ntail:x:8:8::/home/tail:/bin/sh\n");
    /* Exactly at the limit is fine. */
    const char *head = "edge:x:9:9:";
    const char *tail = ":/home/edge:/bin/sh";
    size_t fill = KA_CREDS_LINE_MAX - strlen(head) - strlen(tail);
    t += sprintf(t, "%s", head);
    memset(t, 'e', fill);
    t += fill;
    t += sprintf(t, "%s\n", tail);
    *t = '\0';
    write_file("passwd_long", text, 0644);
    free(text);

    struct ka_passwd_entry e;
    struct ka_error err = {0};
    const char *p = tpath("passwd_long");
    assert_int_equal(ka_passwd_lookup(p, "long", 0, &e, &err), 0);
    assert_int_equal(ka_passwd_lookup(p, NULL, 7, &e, &err), 0);
    assert_int_equal(ka_passwd_lookup(p, "tail", 0, &e, &err), 1);
    assert_int_equal(e.uid, 8);
    ka_passwd_entry_free(&e);
    assert_int_equal(ka_passwd_lookup(p, "edge", 0, &e, &err), 1);
    assert_string_equal(e.home, "/home/edge");
    ka_passwd_entry_free(&e);
}

static void test_passwd_file_errors(void **state)
{
    (void)state;
    struct ka_passwd_entry e;
    struct ka_error err = {0};

    assert_int_equal(ka_passwd_lookup(tpath("absent"), "root", 0, &e, &err), -ENOENT);
    assert_int_equal(err.errnum, ENOENT);
    assert_non_null(strstr(err.msg, "absent"));

    /* A FIFO must be refused, not block in open() or read(). */
    assert_int_equal(mkfifo(tpath("fifo"), 0644), 0);
    assert_int_equal(ka_passwd_lookup(tpath("fifo"), "root", 0, &e, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));

    /* A directory. */
    assert_int_equal(mkdir(tpath("dir"), 0755), 0);
    assert_int_equal(ka_passwd_lookup(tpath("dir"), "root", 0, &e, &err), -EINVAL);

    /* Over the size bound (sparse: costs nothing on disk). */
    int fd = open(tpath("huge"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "root:x:0:0::/root:/bin/sh\n", 26), 26);
    assert_int_equal(ftruncate(fd, (off_t)KA_CREDS_FILE_MAX + 1), 0);
    close(fd);
    assert_int_equal(ka_passwd_lookup(tpath("huge"), "root", 0, &e, &err), -EFBIG);
    assert_int_equal(err.errnum, EFBIG);

    /* Empty file: no entry, no error. */
    write_file("empty", "", 0644);
    assert_int_equal(ka_passwd_lookup(tpath("empty"), "root", 0, &e, &err), 0);

    /* Embedded NUL bytes do not confuse the line splitting. */
    static const char nul_text[] = "ab\0cd:x:1:1::/x:/y\nreal:x:3:3::/home/real:/bin/sh\n";
    fd = open(tpath("nul"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, nul_text, sizeof(nul_text) - 1), (ssize_t)sizeof(nul_text) - 1);
    close(fd);
    assert_int_equal(ka_passwd_lookup(tpath("nul"), "real", 0, &e, &err), 1);
    ka_passwd_entry_free(&e);
    assert_int_equal(ka_passwd_lookup(tpath("nul"), "cd", 0, &e, &err), 0);
    assert_int_equal(ka_passwd_lookup(tpath("nul"), NULL, 1, &e, &err), 0);
}

/* ---- group ----------------------------------------------------------------- */

static const char group_text[] = "# groups\n"
                                 "root:x:0:\n"
                                 "wheel:x:10:root, alice ,bob\n"
                                 "audio:x:20:alice\n"
                                 "nomembers:x:30\n"
                                 "dup:x:20:alice\n" /* same gid as audio: listed once */
                                 "broken:x:notanumber:alice\n"
                                 "short:x\n"
                                 "staff:x:50:carol,alicex,xalice\n"
                                 "staff:x:51:alice\n" /* duplicate name: lookup takes the first */
                                 "4000:x:60:\n"
                                 "video:x:44:bob,alice";

static void test_group_lookup(void **state)
{
    (void)state;
    write_file("group", group_text, 0644);
    const char *g = tpath("group");
    struct ka_group_entry e;
    struct ka_error err = {0};

    assert_int_equal(ka_group_lookup(g, "wheel", 0, &e, &err), 1);
    assert_int_equal(e.gid, 10);
    ka_group_entry_free(&e);
    assert_int_equal(ka_group_lookup(g, "nomembers", 0, &e, &err), 1);
    assert_int_equal(e.gid, 30);
    ka_group_entry_free(&e);
    assert_int_equal(ka_group_lookup(g, "staff", 0, &e, &err), 1);
    assert_int_equal(e.gid, 50);
    ka_group_entry_free(&e);
    assert_int_equal(ka_group_lookup(g, "4000", 0, &e, &err), 1);
    assert_int_equal(e.gid, 60);
    ka_group_entry_free(&e);
    assert_int_equal(ka_group_lookup(g, NULL, 20, &e, &err), 1);
    assert_string_equal(e.name, "audio");
    ka_group_entry_free(&e);
    assert_int_equal(ka_group_lookup(g, "broken", 0, &e, &err), 0);
    assert_int_equal(ka_group_lookup(g, "short", 0, &e, &err), 0);
    assert_int_equal(ka_group_lookup(g, "nope", 0, &e, &err), 0);
    assert_int_equal(ka_group_lookup(tpath("absent"), "root", 0, &e, &err), -ENOENT);

    uint32_t *gids;
    size_t n;
    assert_int_equal(ka_group_user_gids(g, "alice", &gids, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(gids[0], 10);
    assert_int_equal(gids[1], 20);
    assert_int_equal(gids[2], 51);
    assert_int_equal(gids[3], 44);
    free(gids);
    assert_int_equal(ka_group_user_gids(g, "bob", &gids, &n, &err), 0);
    assert_int_equal(n, 2);
    free(gids);
    assert_int_equal(ka_group_user_gids(g, "nobody", &gids, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(gids);
    assert_int_equal(ka_group_user_gids(tpath("absent"), "alice", &gids, &n, &err), -ENOENT);

    /* More memberships than a process may be given is an error, not a truncation. */
    size_t size = (KA_SPEC_MAX_GROUPS + 10) * 32;
    char *many = ka_xmalloc(size);
    size_t off = 0;
    for (int i = 0; i < KA_SPEC_MAX_GROUPS + 5; i++)
        off += (size_t)snprintf(many + off, size - off, "g%d:x:%d:alice\n", i, 100 + i);
    write_file("group_many", many, 0644);
    free(many);
    assert_int_equal(ka_group_user_gids(tpath("group_many"), "alice", &gids, &n, &err), -E2BIG);
    assert_null(gids);
}

/* ---- user resolution --------------------------------------------------------- */

static void make_etc(const char *dir, const char *passwd, const char *group)
{
    char sub[PATH_MAX];
    snprintf(sub, sizeof(sub), "%s/%s", tmpdir, dir);
    mkdir(sub, 0755);
    char name[PATH_MAX];
    if (passwd) {
        snprintf(name, sizeof(name), "%s/passwd", dir);
        write_file(name, passwd, 0644);
    }
    if (group) {
        snprintf(name, sizeof(name), "%s/group", dir);
        write_file(name, group, 0644);
    }
}

struct resolved {
    int rc;
    uint32_t uid, gid;
    size_t n_gids;
    uint32_t gids[8];
    char home[256];
    char msg[KA_ERROR_MSG_MAX];
};

static struct resolved resolve(const char *etc, const char *username, uint32_t uid, uint32_t gid,
                               const uint32_t *extra, size_t n_extra)
{
    struct ka_user u = {.uid = uid, .gid = gid};
    u.username = username ? ka_xstrdup(username) : NULL;
    if (n_extra) {
        u.additional_gids = ka_xmalloc(n_extra * sizeof(uint32_t));
        memcpy(u.additional_gids, extra, n_extra * sizeof(uint32_t));
        u.n_additional_gids = n_extra;
    }
    struct resolved r = {0};
    struct ka_error err = {0};
    char *home = NULL;
    r.rc = ka_user_resolve(&u, tpath(etc), &home, &err);
    r.uid = u.uid;
    r.gid = u.gid;
    r.n_gids = u.n_additional_gids;
    assert_true(r.n_gids <= KA_ARRAY_SIZE(r.gids));
    if (r.n_gids)
        memcpy(r.gids, u.additional_gids, r.n_gids * sizeof(uint32_t));
    if (home)
        snprintf(r.home, sizeof(r.home), "%s", home);
    snprintf(r.msg, sizeof(r.msg), "%s", err.msg);
    if (r.rc < 0)
        assert_null(home);
    free(home);
    free(u.username);
    free(u.additional_gids);
    return r;
}

static void test_user_resolve(void **state)
{
    (void)state;
    make_etc("etc", passwd_text, group_text);
    struct resolved r;

    /* A name: uid, gid and home from passwd; the groups listing it appended. */
    const uint32_t extra[] = {20, 99};
    r = resolve("etc", "alice", 0, 0, extra, 2);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1000);
    assert_int_equal(r.gid, 1000);
    assert_string_equal(r.home, "/home/alice");
    assert_int_equal(r.n_gids, 5); /* 20, 99 as given, then 10, 51, 44 */
    assert_int_equal(r.gids[0], 20);
    assert_int_equal(r.gids[1], 99);
    assert_int_equal(r.gids[2], 10);
    assert_int_equal(r.gids[3], 51);
    assert_int_equal(r.gids[4], 44);

    /* Digits are a uid even when a user is named "1000" (runc). */
    r = resolve("etc", "1000", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1000);
    assert_int_equal(r.gid, 1000);
    assert_string_equal(r.home, "/home/alice");
    assert_int_equal(r.n_gids, 4);

    /* A uid without a passwd entry: taken as is, gid kept, home "/". */
    r = resolve("etc", "777", 5, 6, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 777);
    assert_int_equal(r.gid, 6);
    assert_string_equal(r.home, "/");
    assert_int_equal(r.n_gids, 0);

    /* Explicit groups: by name and by number; no groups from /etc/group then. */
    r = resolve("etc", "alice:video", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1000);
    assert_int_equal(r.gid, 44);
    assert_int_equal(r.n_gids, 0);
    r = resolve("etc", "bob:12345", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1001);
    assert_int_equal(r.gid, 12345);
    assert_string_equal(r.home, "/home/bob");
    r = resolve("etc", "1001:1001", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1001);
    assert_int_equal(r.gid, 1001);
    r = resolve("etc", "4242:wheel", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 4242);
    assert_int_equal(r.gid, 10);
    assert_string_equal(r.home, "/home/numeric");
    r = resolve("etc", ":audio", 1001, 0, NULL, 0); /* empty user part: keep uid */
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1001);
    assert_int_equal(r.gid, 20);

    /* No username: uid/gid untouched, home from the uid. */
    r = resolve("etc", NULL, 1001, 7, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1001);
    assert_int_equal(r.gid, 7);
    assert_string_equal(r.home, "/home/bob");
    r = resolve("etc", "", 1002, 7, NULL, 0); /* empty home field -> "/" */
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.home, "/");

    /* Names that cannot be found, and bad forms. */
    r = resolve("etc", "ghost", 0, 0, NULL, 0);
    assert_true(r.rc < 0);
    assert_non_null(strstr(r.msg, "unable to find user ghost"));
    r = resolve("etc", "alice:nogroup", 0, 0, NULL, 0);
    assert_true(r.rc < 0);
    assert_non_null(strstr(r.msg, "unable to find group nogroup"));
    r = resolve("etc", "alice:", 0, 0, NULL, 0);
    assert_true(r.rc < 0);
    r = resolve("etc", "a:b:c", 0, 0, NULL, 0);
    assert_true(r.rc < 0);
    r = resolve("etc", "4294967295", 0, 0, NULL, 0); /* (uid_t)-1 is not a uid */
    assert_true(r.rc < 0);
}

/* Issue 13: a hostile image's /etc files cannot hand out (uid_t)-1 (setresuid's
 * "unchanged": the process would stay root) or any id above INT32_MAX. */
static void test_user_resolve_hostile_ids(void **state)
{
    (void)state;
    make_etc("hostile",
             "evil:x:4294967295:4294967295::/root:/bin/sh\n"
             "big:x:2147483648:0::/:/bin/sh\n"
             "biggid:x:1000:2147483648::/:/bin/sh\n"
             "edge:x:2147483647:2147483647::/edge:/bin/sh\n",
             "evilgrp:x:4294967295:edge\n"
             "biggrp:x:2147483648:edge\n"
             "ok:x:7:edge\n");
    struct resolved r;
    static const char *const refused[] = {"evil",         "big",          "biggid",
                                          "4294967295",   "2147483648",   "edge:evilgrp",
                                          "edge:biggrp",  "0:4294967295", "0:2147483648",
                                          "4294967295:0", "2147483648:0"};
    for (size_t i = 0; i < KA_ARRAY_SIZE(refused); i++) {
        r = resolve("hostile", refused[i], 0, 0, NULL, 0);
        if (r.rc >= 0)
            fail_msg("user \"%s\" resolved to uid %u gid %u", refused[i], r.uid, r.gid);
    }
    /* INT32_MAX itself is a valid id; the groups above it are left out. */
    r = resolve("hostile", "edge", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 2147483647u);
    assert_int_equal(r.gid, 2147483647u);
    assert_int_equal(r.n_gids, 1);
    assert_int_equal(r.gids[0], 7);
    /* HOME of a uid: no entry above INT32_MAX matches. */
    r = resolve("hostile", NULL, 1000, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.home, "/");
}

static void test_user_resolve_missing_files(void **state)
{
    (void)state;
    make_etc("noetc", NULL, NULL);
    struct resolved r;

    r = resolve("noetc", "1000", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1000);
    assert_int_equal(r.gid, 0);
    assert_string_equal(r.home, "/");
    r = resolve("noetc", "1000:2000", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.gid, 2000);
    r = resolve("noetc", NULL, 33, 33, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.home, "/");
    r = resolve("noetc", "alice", 0, 0, NULL, 0);
    assert_true(r.rc < 0);
    r = resolve("noetc", "1000:wheel", 0, 0, NULL, 0);
    assert_true(r.rc < 0);

    /* passwd present, group missing: a name still resolves, with no groups. */
    make_etc("nogroup", passwd_text, NULL);
    r = resolve("nogroup", "alice", 0, 0, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.uid, 1000);
    assert_int_equal(r.n_gids, 0);

    /* An unreadable passwd only costs the home when no name must be resolved. */
    make_etc("badetc", NULL, NULL);
    assert_int_equal(mkfifo(tpath("badetc/passwd"), 0644), 0);
    r = resolve("badetc", NULL, 1000, 1000, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.home, "/");
    r = resolve("badetc", "alice", 0, 0, NULL, 0);
    assert_true(r.rc < 0);
    assert_non_null(strstr(r.msg, "not a regular file"));
}

/* ---- Running things in a child ------------------------------------------- */

/* What a child sends back: its /proc/self/status, or "ERR <message>". */
struct child_out {
    int status;
    char text[16384];
};

typedef int (*child_fn)(void *ctx, int out_fd, struct ka_error *err);

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w <= 0)
            _exit(3);
        buf += w;
        len -= (size_t)w;
    }
}

static void send_status(int fd)
{
    char buf[8192];
    int s = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (s < 0)
        _exit(4);
    ssize_t n = read(s, buf, sizeof(buf));
    if (n <= 0)
        _exit(5);
    close(s);
    write_all(fd, buf, (size_t)n);
}

static struct child_out run_child(child_fn fn, void *ctx)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct ka_error err = {0};
        if (fn(ctx, fds[1], &err) < 0) {
            write_all(fds[1], "ERR ", 4);
            write_all(fds[1], err.msg, strlen(err.msg));
        } else {
            send_status(fds[1]);
        }
        /* _exit: no atexit handlers (LeakSanitizer must not run as uid 1000). */
        _exit(0);
    }
    close(fds[1]);
    struct child_out out = {0};
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], out.text + n, sizeof(out.text) - 1 - n)) > 0)
        n += (size_t)r;
    out.text[n] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &out.status, 0), pid);
    if (!WIFEXITED(out.status) || WEXITSTATUS(out.status) != 0)
        fail_msg("child failed (status %#x): %s", out.status, out.text);
    return out;
}

static void expect_ok(const struct child_out *o)
{
    if (strncmp(o->text, "ERR ", 4) == 0)
        fail_msg("child: %s", o->text + 4);
}

static void expect_err(const struct child_out *o, const char *part)
{
    if (strncmp(o->text, "ERR ", 4) != 0)
        fail_msg("child succeeded; expected an error containing \"%s\"", part);
    if (!strstr(o->text, part))
        fail_msg("child error \"%s\" lacks \"%s\"", o->text + 4, part);
}

/* The value of a /proc/self/status line, trimmed ("" when absent). */
static const char *field(const char *text, const char *key)
{
    static char val[4][256];
    static int i;
    i = (i + 1) % 4;
    char pat[64];
    snprintf(pat, sizeof(pat), "\n%s:", key);
    const char *p = text;
    if (strncmp(text, pat + 1, strlen(pat + 1)) != 0) {
        p = strstr(text, pat);
        if (!p)
            fail_msg("no %s line in: %s", key, text);
        p++;
    }
    p += strlen(pat + 1);
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, "\n");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= sizeof(val[i]))
        n = sizeof(val[i]) - 1;
    memcpy(val[i], p, n);
    val[i][n] = '\0';
    return val[i];
}

static uint64_t hexfield(const char *text, const char *key)
{
    return strtoull(field(text, key), NULL, 16);
}

#define BIT(c) ((uint64_t)1 << (c))

/* ---- The credential switch ----------------------------------------------- */

static int do_apply(void *ctx, int out_fd, struct ka_error *err)
{
    (void)out_fd;
    return ka_apply_user_and_caps(ctx, err);
}

static int do_switch_only(void *ctx, int out_fd, struct ka_error *err)
{
    (void)out_fd;
    return ka_switch_user(ctx, err);
}

static struct ka_process proc_with(uint32_t uid, uint32_t gid, uint32_t *gids, size_t n,
                                   uint64_t caps, bool nnp)
{
    struct ka_process p = {0};
    p.user.uid = uid;
    p.user.gid = gid;
    p.user.additional_gids = gids;
    p.user.n_additional_gids = n;
    p.caps.present = true;
    p.caps.bounding = p.caps.effective = p.caps.permitted = p.caps.inheritable = p.caps.ambient =
        caps;
    p.no_new_privileges = nnp;
    return p;
}

static void test_switch_user_and_caps(void **state)
{
    (void)state;
    uint32_t groups[] = {10, 20};
    struct ka_process p = proc_with(1000, 1000, groups, 2, BIT(CAP_NET_BIND_SERVICE), true);
    struct child_out o = run_child(do_apply, &p);
    expect_ok(&o);
    assert_string_equal(field(o.text, "Uid"), "1000\t1000\t1000\t1000");
    assert_string_equal(field(o.text, "Gid"), "1000\t1000\t1000\t1000");
    assert_string_equal(field(o.text, "Groups"), "10 20");
    assert_string_equal(field(o.text, "CapInh"), "0000000000000400");
    assert_string_equal(field(o.text, "CapPrm"), "0000000000000400");
    assert_string_equal(field(o.text, "CapEff"), "0000000000000400");
    assert_string_equal(field(o.text, "CapBnd"), "0000000000000400");
    assert_string_equal(field(o.text, "CapAmb"), "0000000000000400");
    assert_string_equal(field(o.text, "NoNewPrivs"), "1");
}

/* After execve() a non-root process keeps only what the ambient set carries:
 * the point of raising it. */
static int do_apply_and_exec(void *ctx, int out_fd, struct ka_error *err)
{
    int r = ka_apply_user_and_caps(ctx, err);
    if (r < 0)
        return r;
    char path[PATH_MAX];
    if (!ka_find_executable("cat", NULL, path, sizeof(path)))
        return ka_error_set(err, errno, "find cat");
    if (ka_reset_signals(err) < 0)
        return -1;
    if (dup2(out_fd, STDOUT_FILENO) < 0)
        return ka_error_set(err, errno, "dup2");
    char *const argv[] = {"cat", "/proc/self/status", NULL};
    char *const envp[] = {NULL};
    execve(path, argv, envp);
    return ka_error_set(err, errno, "execve %s", path);
}

static void test_caps_survive_exec(void **state)
{
    (void)state;
    struct ka_process p =
        proc_with(1000, 1000, NULL, 0, BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_CHOWN), true);
    struct child_out o = run_child(do_apply_and_exec, &p);
    expect_ok(&o);
    assert_string_equal(field(o.text, "Name"), "cat");
    assert_string_equal(field(o.text, "Uid"), "1000\t1000\t1000\t1000");
    assert_string_equal(field(o.text, "Groups"), "");
    assert_int_equal(hexfield(o.text, "CapEff"), BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_CHOWN));
    assert_int_equal(hexfield(o.text, "CapPrm"), BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_CHOWN));
    assert_int_equal(hexfield(o.text, "CapAmb"), BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_CHOWN));
    assert_int_equal(hexfield(o.text, "CapBnd"), BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_CHOWN));
    assert_string_equal(field(o.text, "NoNewPrivs"), "1");
}

static void test_switch_keeps_effective_for_seccomp(void **state)
{
    (void)state;
    /* Between the halves the process still has what it had (CAP_SYS_ADMIN for a
     * seccomp filter without no_new_privs), with the bounding set already cut. */
    struct child_out parent = run_child(do_apply, &(struct ka_process){0});
    expect_ok(&parent);
    uint64_t eff = hexfield(parent.text, "CapEff");
    assert_true(eff & BIT(CAP_SYS_ADMIN));

    uint32_t groups[] = {30};
    struct ka_process p = proc_with(1000, 1000, groups, 1, BIT(CAP_KILL), false);
    struct child_out o = run_child(do_switch_only, &p);
    expect_ok(&o);
    assert_string_equal(field(o.text, "Uid"), "1000\t1000\t1000\t1000");
    assert_string_equal(field(o.text, "Groups"), "30");
    assert_int_equal(hexfield(o.text, "CapEff"), eff);
    assert_int_equal(hexfield(o.text, "CapBnd"), BIT(CAP_KILL));
    assert_string_equal(field(o.text, "NoNewPrivs"), "0");
}

static void test_caps_absent_keeps_sets(void **state)
{
    (void)state;
    struct child_out parent = run_child(do_apply, &(struct ka_process){0});
    expect_ok(&parent);
    uint64_t eff = hexfield(parent.text, "CapEff");
    uint64_t prm = hexfield(parent.text, "CapPrm");
    uint64_t bnd = hexfield(parent.text, "CapBnd");
    assert_string_equal(field(parent.text, "Groups"), "");

    /* Root, no caps given: unchanged; groups cleared. */
    struct ka_process p = {0};
    p.user.gid = 5;
    struct child_out o = run_child(do_apply, &p);
    expect_ok(&o);
    assert_string_equal(field(o.text, "Gid"), "5\t5\t5\t5");
    assert_int_equal(hexfield(o.text, "CapEff"), eff);
    assert_int_equal(hexfield(o.text, "CapPrm"), prm);
    assert_int_equal(hexfield(o.text, "CapBnd"), bnd);

    /* Non-root, no caps given: the kernel would clear them; we keep them. */
    p.user.uid = 1234;
    p.no_new_privileges = true;
    o = run_child(do_apply, &p);
    expect_ok(&o);
    assert_string_equal(field(o.text, "Uid"), "1234\t1234\t1234\t1234");
    assert_int_equal(hexfield(o.text, "CapEff"), eff);
    assert_int_equal(hexfield(o.text, "CapPrm"), prm);
    assert_string_equal(field(o.text, "NoNewPrivs"), "1");
}

static void test_caps_edge_cases(void **state)
{
    (void)state;
    /* Bits above cap_last_cap are ignored, not errors. */
    int last = ka_cap_last_cap();
    assert_true(last >= CAP_AUDIT_READ && last < 63);
    struct ka_process p = proc_with(0, 0, NULL, 0, BIT(CAP_CHOWN) | BIT(63) | BIT(last + 1), false);
    struct child_out o = run_child(do_apply, &p);
    expect_ok(&o);
    assert_int_equal(hexfield(o.text, "CapBnd"), BIT(CAP_CHOWN));
    assert_int_equal(hexfield(o.text, "CapEff"), BIT(CAP_CHOWN));
    assert_int_equal(hexfield(o.text, "CapAmb"), BIT(CAP_CHOWN));

    /* Ambient caps that are not permitted and inheritable are skipped. */
    p = proc_with(1000, 1000, NULL, 0, BIT(CAP_NET_BIND_SERVICE), false);
    p.caps.bounding |= BIT(CAP_NET_RAW);
    p.caps.permitted |= BIT(CAP_NET_RAW);
    p.caps.ambient |= BIT(CAP_NET_RAW) | BIT(CAP_SYS_ADMIN);
    o = run_child(do_apply, &p);
    expect_ok(&o);
    assert_int_equal(hexfield(o.text, "CapAmb"), BIT(CAP_NET_BIND_SERVICE));
    assert_int_equal(hexfield(o.text, "CapPrm"), BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_NET_RAW));
    assert_int_equal(hexfield(o.text, "CapBnd"), BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_NET_RAW));

    /* Empty sets everywhere: a fully unprivileged process. */
    p = proc_with(1000, 1000, NULL, 0, 0, true);
    o = run_child(do_apply, &p);
    expect_ok(&o);
    assert_int_equal(hexfield(o.text, "CapEff"), 0);
    assert_int_equal(hexfield(o.text, "CapPrm"), 0);
    assert_int_equal(hexfield(o.text, "CapBnd"), 0);

    /* Inconsistent sets are reported: effective outside permitted. */
    p = proc_with(1000, 1000, NULL, 0, BIT(CAP_CHOWN), false);
    p.caps.effective |= BIT(CAP_KILL);
    p.caps.bounding |= BIT(CAP_KILL);
    o = run_child(do_apply, &p);
    expect_err(&o, "set capabilities");

    /* More groups than allowed. */
    static uint32_t many[KA_SPEC_MAX_GROUPS + 1];
    p = proc_with(1000, 1000, many, KA_SPEC_MAX_GROUPS + 1, 0, false);
    o = run_child(do_apply, &p);
    expect_err(&o, "additional groups");
}

/* ---- rlimits, oom_score_adj, signals -------------------------------------- */

static int do_rlimits(void *ctx, int out_fd, struct ka_error *err)
{
    (void)ctx;
    struct rlimit fsize;
    getrlimit(RLIMIT_FSIZE, &fsize);
    struct ka_rlimit r[] = {
        {RLIMIT_NOFILE, 100, 200},
        {RLIMIT_CORE, 0, 0},
        {RLIMIT_NPROC, 50, 60},
        /* Keep the hard limit (raising needs CAP_SYS_RESOURCE); infinity round-trips. */
        {RLIMIT_FSIZE, fsize.rlim_max == RLIM_INFINITY ? UINT64_MAX : fsize.rlim_max,
         fsize.rlim_max == RLIM_INFINITY ? UINT64_MAX : fsize.rlim_max},
    };
    if (ka_apply_rlimits(r, KA_ARRAY_SIZE(r), err) < 0)
        return -1;
    char buf[512];
    size_t n = 0;
    for (size_t i = 0; i < KA_ARRAY_SIZE(r); i++) {
        struct rlimit got;
        if (getrlimit(r[i].resource, &got) < 0)
            return ka_error_set(err, errno, "getrlimit");
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%d %llu %llu\n", r[i].resource,
                              (unsigned long long)got.rlim_cur, (unsigned long long)got.rlim_max);
    }
    write_all(out_fd, "RL\n", 3);
    write_all(out_fd, buf, n);
    _exit(0);
}

static int do_rlimit_bad(void *ctx, int out_fd, struct ka_error *err)
{
    (void)out_fd;
    return ka_apply_rlimits(ctx, 1, err);
}

/* ---- The capability count is the kernel's, not /proc's --------------------- */

/* What an exec sees when the container (with CAP_SYS_ADMIN) bound a forged count
 * over its /proc: cap_last_cap says 5. */
static int forge_cap_last_cap(struct ka_error *err)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return ka_error_set(err, errno, "private mount namespace");
    write_file("forged_last_cap", "5\n", 0644);
    if (mount(tpath("forged_last_cap"), "/proc/sys/kernel/cap_last_cap", NULL, MS_BIND, NULL) < 0)
        return ka_error_set(err, errno, "bind over cap_last_cap");
    char buf[8] = {0};
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0 || strcmp(buf, "5\n") != 0)
        return ka_error_set(err, EIO, "the forged cap_last_cap does not read 5 (%s)", buf);
    close(fd);
    return 0;
}

static int do_apply_forged_last_cap(void *ctx, int out_fd, struct ka_error *err)
{
    (void)out_fd;
    if (forge_cap_last_cap(err) < 0)
        return -1;
    int last = ka_cap_last_cap();
    if (last != real_last_cap)
        return ka_error_set(err, 0, "ka_cap_last_cap() is %d under a forged /proc, not %d", last,
                            real_last_cap);
    return ka_apply_user_and_caps(ctx, err);
}

/* The attack of upstream 3796ca53dc: with cap_last_cap forged to 5, a root exec
 * limited to CAP_CHOWN must not keep CAP_SYS_ADMIN and the rest in its bounding
 * set (as root it would get them all back at execve). */
static void test_cap_last_cap_forged_proc(void **state)
{
    (void)state;
    struct ka_process p = proc_with(0, 0, NULL, 0, BIT(CAP_CHOWN), false);
    struct child_out o = run_child(do_apply_forged_last_cap, &p);
    expect_ok(&o);
    assert_int_equal(hexfield(o.text, "CapBnd"), BIT(CAP_CHOWN));
    assert_int_equal(hexfield(o.text, "CapEff"), BIT(CAP_CHOWN));
    assert_int_equal(hexfield(o.text, "CapPrm"), BIT(CAP_CHOWN));
}

/* prctl(PR_CAPBSET_READ) fails with EPERM from here on (a seccomp filter). */
static int refuse_capbset_read(struct ka_error *err)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prctl, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_CAPBSET_READ, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(*f), .filter = f};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        return ka_error_set(err, errno, "load the seccomp filter");
    if (prctl(PR_CAPBSET_READ, 0UL, 0, 0, 0) >= 0 || errno != EPERM)
        return ka_error_set(err, 0, "the filter does not refuse PR_CAPBSET_READ");
    return 0;
}

static int do_last_cap_fallback(void *ctx, int out_fd, struct ka_error *err)
{
    (void)ctx;
    (void)out_fd;
    if (refuse_capbset_read(err) < 0)
        return -1;
    int last = ka_cap_last_cap();
    if (last != real_last_cap)
        return ka_error_set(err, 0, "fallback gave %d, /proc says %d", last, real_last_cap);
    if (forge_cap_last_cap(err) < 0)
        return -1;
    if (ka_cap_last_cap() != 5) /* nothing else left to ask */
        return ka_error_set(err, 0, "fallback did not read /proc");
    return 0;
}

/* The kernel's count equals /proc's on an honest system, and /proc remains the
 * fallback when PR_CAPBSET_READ itself is refused. */
static void test_cap_last_cap_probe_and_fallback(void **state)
{
    (void)state;
    assert_int_equal(ka_cap_last_cap(), real_last_cap);
    struct child_out o = run_child(do_last_cap_fallback, NULL);
    expect_ok(&o);
}

static int do_switch_unreadable_bounding(void *ctx, int out_fd, struct ka_error *err)
{
    (void)out_fd;
    if (refuse_capbset_read(err) < 0)
        return ka_error_wrap(err, "setup");
    return ka_switch_user(ctx, err);
}

/* A bounding set that cannot be read back cannot be verified: the switch fails
 * rather than go on with whatever is left in it. */
static void test_unreadable_bounding_set_fails_closed(void **state)
{
    (void)state;
    struct ka_process p = proc_with(0, 0, NULL, 0, BIT(CAP_CHOWN), false);
    struct child_out o = run_child(do_switch_unreadable_bounding, &p);
    expect_err(&o, "of the bounding set");
}

static void test_rlimits(void **state)
{
    (void)state;
    struct child_out o = run_child(do_rlimits, NULL);
    expect_ok(&o);
    char want[512];
    struct rlimit fsize;
    getrlimit(RLIMIT_FSIZE, &fsize);
    snprintf(want, sizeof(want), "RL\n%d 100 200\n%d 0 0\n%d 50 60\n%d %llu %llu\n", RLIMIT_NOFILE,
             RLIMIT_CORE, RLIMIT_NPROC, RLIMIT_FSIZE, (unsigned long long)fsize.rlim_max,
             (unsigned long long)fsize.rlim_max);
    assert_string_equal(o.text, want);

    struct ka_rlimit soft_above_hard = {RLIMIT_NOFILE, 300, 200};
    o = run_child(do_rlimit_bad, &soft_above_hard);
    expect_err(&o, "RLIMIT_NOFILE (7): soft limit 300 above hard limit 200");
    struct ka_rlimit unknown = {999, 1, 1};
    o = run_child(do_rlimit_bad, &unknown);
    expect_err(&o, "setrlimit unknown rlimit (999)");
    assert_int_equal(ka_apply_rlimits(NULL, 0, NULL), 0);
}

static int do_oom(void *ctx, int out_fd, struct ka_error *err)
{
    (void)out_fd;
    return ka_set_oom_score_adj(*(int *)ctx, err);
}

static void test_oom_score_adj(void **state)
{
    (void)state;
    int v = 500;
    struct child_out o = run_child(do_oom, &v);
    expect_ok(&o);
    /* /proc/self/status has no oom line: read the file back in another child. */
    v = 733;
    o = run_child(do_oom, &v);
    expect_ok(&o);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ka_error err;
        if (ka_set_oom_score_adj(611, &err) < 0)
            _exit(1);
        int fd = open("/proc/self/oom_score_adj", O_RDONLY);
        char buf[16] = {0};
        if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
            _exit(2);
        write_all(fds[1], buf, strlen(buf));
        _exit(0);
    }
    close(fds[1]);
    char buf[16] = {0};
    assert_true(read(fds[0], buf, sizeof(buf) - 1) > 0);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    assert_string_equal(buf, "611\n");

    v = 1001;
    o = run_child(do_oom, &v);
    expect_err(&o, "outside -1000..1000");
    v = -1001;
    o = run_child(do_oom, &v);
    expect_err(&o, "outside -1000..1000");
}

static void on_usr2(int sig)
{
    (void)sig;
}

static int do_reset_signals(void *ctx, int out_fd, struct ka_error *err)
{
    (void)ctx;
    send_status(out_fd); /* before: what the child inherited */
    write_all(out_fd, "----\n", 5);
    return ka_reset_signals(err);
}

static void test_reset_signals(void **state)
{
    (void)state;
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGCHLD);
    assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
    struct sigaction ign = {.sa_handler = SIG_IGN}, handler = {.sa_handler = on_usr2};
    struct sigaction old_pipe, old_usr2;
    assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
    assert_int_equal(sigaction(SIGUSR2, &handler, &old_usr2), 0);

    struct child_out o = run_child(do_reset_signals, NULL);

    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGUSR2, &old_usr2, NULL);

    expect_ok(&o);
    char *after = strstr(o.text, "----\n");
    assert_non_null(after);
    *after = '\0';
    after += 5;
    assert_true(hexfield(o.text, "SigBlk") & BIT(SIGUSR1 - 1));
    assert_true(hexfield(o.text, "SigIgn") & BIT(SIGPIPE - 1));
    assert_true(hexfield(o.text, "SigCgt") & BIT(SIGUSR2 - 1));
    assert_string_equal(field(after, "SigBlk"), "0000000000000000");
    assert_string_equal(field(after, "SigIgn"), "0000000000000000");
    assert_string_equal(field(after, "SigCgt"), "0000000000000000");
}

/* ---- PATH lookup ------------------------------------------------------------ */

static void test_find_executable(void **state)
{
    (void)state;
    char bin[256], bin2[256], path_env[1024];
    snprintf(bin, sizeof(bin), "%s/bin", tmpdir);
    snprintf(bin2, sizeof(bin2), "%s/bin2/", tmpdir);
    assert_int_equal(mkdir(bin, 0755), 0);
    assert_int_equal(mkdir(bin2, 0755), 0);
    write_file("bin/prog", "#!/bin/sh\n", 0755);
    write_file("bin/noexec", "data\n", 0644);
    write_file("bin2/noexec", "#!/bin/sh\n", 0700);
    write_file("bin2/onlyhere", "data\n", 0600);
    assert_int_equal(mkdir(tpath("bin/adir"), 0755), 0);
    snprintf(path_env, sizeof(path_env), "/nonexistent::%s:%s", bin, bin2);

    char buf[PATH_MAX];
    char want[PATH_MAX];
    const char *r;

    r = ka_find_executable("prog", path_env, buf, sizeof(buf));
    snprintf(want, sizeof(want), "%s/prog", bin);
    assert_non_null(r);
    assert_string_equal(r, want);

    /* Not executable in bin: keep looking, find it in bin2 (trailing '/'). */
    r = ka_find_executable("noexec", path_env, buf, sizeof(buf));
    snprintf(want, sizeof(want), "%snoexec", bin2);
    assert_non_null(r);
    assert_string_equal(r, want);

    errno = 0;
    assert_null(ka_find_executable("onlyhere", path_env, buf, sizeof(buf)));
    assert_int_equal(errno, EACCES);
    errno = 0;
    assert_null(ka_find_executable("adir", path_env, buf, sizeof(buf)));
    assert_int_equal(errno, EACCES);
    errno = 0;
    assert_null(ka_find_executable("missing", path_env, buf, sizeof(buf)));
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_null(ka_find_executable("", path_env, buf, sizeof(buf)));
    assert_int_equal(errno, ENOENT);
    /* An empty PATH searches nothing (not the cwd). */
    assert_int_equal(chdir(bin), 0);
    errno = 0;
    assert_null(ka_find_executable("prog", "", buf, sizeof(buf)));
    assert_int_equal(errno, ENOENT);

    /* With a '/', used as is. */
    r = ka_find_executable("./prog", "/nonexistent", buf, sizeof(buf));
    assert_non_null(r);
    assert_string_equal(r, "./prog");
    snprintf(want, sizeof(want), "%s/prog", bin);
    r = ka_find_executable(want, NULL, buf, sizeof(buf));
    assert_string_equal(r, want);
    errno = 0;
    assert_null(ka_find_executable("./noexec", path_env, buf, sizeof(buf)));
    assert_int_equal(errno, EACCES);
    errno = 0;
    assert_null(ka_find_executable("./nothere", path_env, buf, sizeof(buf)));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(chdir("/"), 0);

    /* Default PATH. */
    r = ka_find_executable("sh", NULL, buf, sizeof(buf));
    assert_non_null(r);
    assert_true(strcmp(r, "/usr/bin/sh") == 0 || strcmp(r, "/bin/sh") == 0 ||
                strcmp(r, "/usr/local/bin/sh") == 0);

    /* Buffer too small. */
    char small[8];
    errno = 0;
    assert_null(ka_find_executable("prog", path_env, small, sizeof(small)));
    assert_int_equal(errno, ENAMETOOLONG);
    errno = 0;
    assert_null(ka_find_executable("/usr/bin/env", NULL, small, sizeof(small)));
    assert_int_equal(errno, ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passwd_lookup),
        cmocka_unit_test(test_passwd_long_lines),
        cmocka_unit_test(test_passwd_file_errors),
        cmocka_unit_test(test_group_lookup),
        cmocka_unit_test(test_user_resolve),
        cmocka_unit_test(test_user_resolve_hostile_ids),
        cmocka_unit_test(test_user_resolve_missing_files),
        cmocka_unit_test(test_switch_user_and_caps),
        cmocka_unit_test(test_caps_survive_exec),
        cmocka_unit_test(test_switch_keeps_effective_for_seccomp),
        cmocka_unit_test(test_caps_absent_keeps_sets),
        cmocka_unit_test(test_caps_edge_cases),
        cmocka_unit_test(test_cap_last_cap_forged_proc),
        cmocka_unit_test(test_cap_last_cap_probe_and_fallback),
        cmocka_unit_test(test_unreadable_bounding_set_fails_closed),
        cmocka_unit_test(test_rlimits),
        cmocka_unit_test(test_oom_score_adj),
        cmocka_unit_test(test_reset_signals),
        cmocka_unit_test(test_find_executable),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
