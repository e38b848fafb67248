/* Issue 14, item 3: process set-up as the 4.1 agent does it, against the real agent.
 *   - every init and exec process leads a session of its own (upstream bf7089f2a9),
 *     with pipes and with a tty: its session id is its pid;
 *   - a cwd the process cannot have inside the container's root is refused with
 *     INVALID_ARGUMENT (e8688684c4): a file, a path under a file, a magic link out
 *     of the root (a bind of the agent's procfs, /hostproc/1/root), for an init and
 *     for an exec; a missing one is still created;
 *   - an exec joins the namespaces the agent pinned when it created the init
 *     (3796ca53dc), not what /proc/<init pid>/ns shows later: an init that unshares
 *     its UTS and mount namespaces and changes them does not take execs along;
 *     the pinned fds go with the container;
 *   - the capability count comes from the kernel (PR_CAPBSET_READ), not from a
 *     /proc the container can forge (3796ca53dc). */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctr.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define INVALID_ARGUMENT 3

static struct agent_proc agent;
static struct ctr t;
static const char *rootfs;
static char out[1 << 16];
static int exec_seq;

static void set_cwd(Grpc__Process *p, const char *cwd)
{
    free(p->cwd);
    p->cwd = strdup(cwd);
}

/* Exec args (with a tty, in cwd when given) into out: ctr_exec_collect's answer. */
static int exec_in(const char *id, const char *const *args, bool tty, const char *cwd)
{
    char eid[32];
    snprintf(eid, sizeof(eid), "e%d", ++exec_seq);
    Grpc__Process *p = process_new(args);
    p->terminal = tty;
    if (cwd)
        set_cwd(p, cwd);
    return ctr_exec_collect(&t, id, eid, p, out, sizeof(out));
}

/* ---- sessions ------------------------------------------------------------------ */

/* The shell's own pid and session id (fields 1 and 6 of its /proc/self/stat: the
 * redirection is opened by the shell itself). */
#define SHOW_SESSION \
    "read pid comm state ppid pgrp sid rest < /proc/self/stat; echo pid=$pid sid=$sid"

static void assert_own_session(const char *text)
{
    int pid = -1, sid = -2;
    const char *line = strstr(text, "pid=");
    if (!line || sscanf(line, "pid=%d sid=%d", &pid, &sid) != 2)
        fail_msg("no pid/sid line in: %s", text);
    if (pid != sid)
        fail_msg("pid %d is not its session's leader (sid %d)", pid, sid);
}

static void test_init_has_own_session(void **state)
{
    (void)state;
    for (int tty = 0; tty < 2; tty++) {
        Grpc__Spec *s = spec_new(rootfs, ARGS("sh", "-c", SHOW_SESSION));
        s->process->terminal = tty;
        const char *id = ctr_unique_id(tty ? "init-sid-tty" : "init-sid");
        assert_int_equal(ctr_run(&t, id, s, out, sizeof(out)), 0);
        spec_free(s);
        assert_own_session(out);
    }
}

static void test_exec_has_own_session(void **state)
{
    (void)state;
    const char *id = ctr_unique_id("exec-sid");
    ctr_create_start(&t, id, spec_new(rootfs, ARGS("ka-payload", "sleep", "1000")));
    for (int tty = 0; tty < 2; tty++) {
        assert_int_equal(exec_in(id, ARGS("sh", "-c", SHOW_SESSION), tty, NULL), 0);
        assert_own_session(out);
    }
    ctr_kill_remove(&t, id);
}

/* ---- cwd ----------------------------------------------------------------------- */

/* CreateContainer with this cwd: refused with INVALID_ARGUMENT, nothing left. */
static void expect_init_cwd_refused(const char *name, const char *cwd, bool hostproc)
{
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "cwd"));
    set_cwd(s->process, cwd);
    if (hostproc)
        spec_add_bind(s, "/hostproc", "/proc", NULL);
    const char *id = ctr_unique_id(name);
    int rc = ctr_create(&t, id, s);
    spec_free(s);
    if (rc != INVALID_ARGUMENT)
        fail_msg("cwd %s: CreateContainer answered %d (%s), want INVALID_ARGUMENT", cwd, rc, t.msg);
    assert_non_null(strstr(t.msg, "cwd"));
    assert_int_not_equal(ctr_remove(&t, id), 0); /* never created */
}

static void test_init_cwd_unreachable(void **state)
{
    (void)state;
    expect_init_cwd_refused("cwd-file", "/etc/passwd", false);
    expect_init_cwd_refused("cwd-under-file", "/etc/passwd/sub", false);
}

/* A path in the agent's procfs (bound at /hostproc in the container). */
static const char *hostproc(const char *fmt_tail, int pid)
{
    static char path[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(path[i], sizeof(path[i]), "/hostproc/%d/%s", pid, fmt_tail);
    return path[i];
}

/* /proc/<pid>/root and /proc/<pid>/cwd are magic links: chdir follows them to that
 * process's root or cwd, the agent's here, out of the container. (Pid 1 of this
 * host may be out of our reach, EACCES: refused all the same.) */
static void test_init_cwd_out_of_root(void **state)
{
    (void)state;
    expect_init_cwd_refused("cwd-magic", hostproc("root", (int)agent.pid), true);
    expect_init_cwd_refused("cwd-magic-cwd", hostproc("cwd", (int)agent.pid), true);
    expect_init_cwd_refused("cwd-magic-sub", hostproc("root/tmp", (int)agent.pid), true);
    expect_init_cwd_refused("cwd-magic-1", "/hostproc/1/root", true);
}

/* ExecProcess with these cwds: each refused with INVALID_ARGUMENT, and the
 * container goes on (an exec with a good cwd still runs). */
static void expect_exec_cwd_refused(const char *name, const char *const *bad, size_t n)
{
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "sleep", "1000"));
    spec_add_bind(s, "/hostproc", "/proc", NULL);
    const char *id = ctr_unique_id(name);
    ctr_create_start(&t, id, s);
    for (size_t i = 0; i < n; i++) {
        int rc = exec_in(id, ARGS("ka-payload", "cwd"), false, bad[i]);
        if (rc != -1000 - INVALID_ARGUMENT)
            fail_msg("exec with cwd %s: %d (%s), want INVALID_ARGUMENT", bad[i], rc,
                     rc <= -1000 ? t.msg : out);
        assert_non_null(strstr(t.msg, "cwd"));
    }
    assert_int_equal(exec_in(id, ARGS("ka-payload", "cwd"), false, "/tmp"), 0);
    assert_string_equal(out, "/tmp\n");
    ctr_kill_remove(&t, id);
}

static void test_exec_cwd_unreachable(void **state)
{
    (void)state;
    const char *bad[] = {"/etc/passwd", "/etc/passwd/sub"};
    expect_exec_cwd_refused("exec-cwd", bad, 2);
}

/* Out through the agent's procfs: the agent's root and cwd. */
static void test_exec_cwd_out_of_root(void **state)
{
    (void)state;
    const char *bad[] = {hostproc("root", (int)agent.pid), hostproc("cwd", (int)agent.pid),
                         hostproc("root/tmp", (int)agent.pid), "/hostproc/1/root"};
    expect_exec_cwd_refused("exec-cwd-magic", bad, 4);
}

/* A missing cwd is created, as before and as upstream does. */
static void test_missing_cwd_created(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "cwd"));
    char cwd[64];
    snprintf(cwd, sizeof(cwd), "/tmp/procsetup-%d/a/b", (int)getpid());
    set_cwd(s->process, cwd);
    assert_int_equal(ctr_run(&t, ctr_unique_id("cwd-new"), s, out, sizeof(out)), 0);
    spec_free(s);
    char want[80];
    snprintf(want, sizeof(want), "%s\n", cwd);
    assert_string_equal(out, want);
    sh("rm -rf %s/tmp/procsetup-%d", rootfs, (int)getpid()); /* the rootfs is shared */
}

/* ---- pinned namespaces ---------------------------------------------------------- */

/* The init moves itself into new UTS, mount and network namespaces (busybox unshare
 * execs in the same process), names the new UTS "moved" and mounts a tmpfs with a
 * marker on /tmp there, says so, and sleeps. An exec must land where the agent put
 * the init. */
static void test_exec_joins_pinned_namespaces(void **state)
{
    (void)state;
    Grpc__Spec *s =
        spec_new(rootfs,
                 ARGS("unshare", "-u", "-m", "-n", "sh", "-c",
                      "hostname moved && mount -t tmpfs none /tmp && touch /tmp/moved-marker && "
                      "echo moved && exec ka-payload sleep 1000"));
    caps_add(s->process->capabilities, "CAP_SYS_ADMIN");
    const char *id = ctr_unique_id("ns-mover");
    ctr_create_start(&t, id, s);
    /* Wait for the init to have moved. */
    size_t got = 0;
    out[0] = '\0';
    for (int i = 0; i < 50 && !strstr(out, "moved"); i++) {
        size_t n = 0;
        if (ctr_read(&t, id, "", false, out + got, sizeof(out) - 1 - got, &n) != 0)
            fail_msg("init output: %s (read so far: %s)", t.msg, out);
        got += n;
        out[got] = '\0';
    }
    assert_non_null(strstr(out, "moved"));

    for (int tty = 0; tty < 2; tty++) {
        assert_int_equal(exec_in(id, ARGS("ka-payload", "hostname"), tty, NULL), 0);
        if (strncmp(out, "procsetup-sandbox", 17) != 0)
            fail_msg("exec's hostname is \"%s\": not the sandbox's UTS namespace", out);
        assert_int_equal(exec_in(id,
                                 ARGS("sh", "-c",
                                      "test -e /tmp/moved-marker && echo seen || "
                                      "echo unseen"),
                                 tty, NULL),
                         0);
        if (strncmp(out, "unseen", 6) != 0)
            fail_msg("exec sees the init's new mount namespace: %s", out);
    }
    /* The network namespace stays the agent's, as for every container. */
    char path[64], agent_net[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)agent.pid);
    assert_true(readlink(path, agent_net, sizeof(agent_net) - 1) > 0);
    assert_int_equal(exec_in(id, ARGS("ka-payload", "ns", "net"), false, NULL), 0);
    if (!strstr(out, agent_net))
        fail_msg("exec's network namespace %s is not the agent's %s", out, agent_net);
    ctr_kill_remove(&t, id);
}

/* How many of the agent's fds hold a namespace ("mnt:[...]" and the like). */
static int agent_ns_fds(void)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)agent.pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[PATH_MAX], target[256];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strstr(target, ":[") && strncmp(target, "pipe:", 5) != 0 &&
            strncmp(target, "socket:", 7) != 0 && strncmp(target, "anon_inode:", 11) != 0)
            n++;
    }
    closedir(d);
    return n;
}

/* The pinned fds are the agent's while the container lives, and go with it. */
static void test_pinned_namespaces_released(void **state)
{
    (void)state;
    int before = agent_ns_fds();
    const char *id = ctr_unique_id("ns-release");
    ctr_create_start(&t, id, spec_new(rootfs, ARGS("ka-payload", "sleep", "1000")));
    assert_int_equal(exec_in(id, ARGS("true"), false, NULL), 0);
    int during = agent_ns_fds();
    if (during < before + 5) /* pid, mnt, ipc, uts, and cgroup where there is one */
        fail_msg("the agent holds %d namespace fds with the container, %d without", during, before);
    ctr_kill_remove(&t, id);
    assert_int_equal(agent_ns_fds(), before);
}

/* ---- the capability count ------------------------------------------------------ */

/* Upstream 3796ca53dc's escalation: the init (with CAP_SYS_ADMIN) binds a forged
 * cap_last_cap of 5 over its /proc; an exec that may keep CAP_CHOWN alone must still
 * get a bounding set of CAP_CHOWN alone, not every capability above 5 (as root it
 * would get them all back at execve). */
static void test_exec_bounding_set_despite_forged_proc(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(
        rootfs,
        ARGS("sh", "-c",
             "echo 5 > /tmp/five && mount --bind /tmp/five /proc/sys/kernel/cap_last_cap && "
             "cat /proc/sys/kernel/cap_last_cap && exec ka-payload sleep 1000"));
    caps_add(s->process->capabilities, "CAP_SYS_ADMIN");
    Grpc__Mount *m = malloc(sizeof(*m));
    grpc__mount__init(m);
    m->destination = strdup("/tmp");
    m->type = strdup("tmpfs");
    m->source = strdup("tmpfs");
    s->mounts = realloc(s->mounts, (s->n_mounts + 1) * sizeof(*s->mounts));
    s->mounts[s->n_mounts++] = m;
    const char *id = ctr_unique_id("cap-forger");
    ctr_create_start(&t, id, s);
    char said[64] = "";
    size_t got = 0;
    for (int i = 0; i < 50 && !strchr(said, '\n'); i++) {
        size_t n = 0;
        if (ctr_read(&t, id, "", false, said + got, sizeof(said) - 1 - got, &n) != 0)
            fail_msg("init output: %s (read so far: %s)", t.msg, said);
        got += n;
        said[got] = '\0';
    }
    assert_string_equal(said, "5\n"); /* the forgery is in place */

    char eid[32];
    snprintf(eid, sizeof(eid), "e%d", ++exec_seq);
    Grpc__Process *p = process_new(ARGS("ka-payload", "status-field", "CapBnd"));
    Grpc__LinuxCapabilities *caps = malloc(sizeof(*caps));
    grpc__linux_capabilities__init(caps);
    caps_add(caps, "CAP_CHOWN");
    p->capabilities = caps;
    assert_int_equal(ctr_exec_collect(&t, id, eid, p, out, sizeof(out)), 0);
    const char *v = strchr(out, ':');
    assert_non_null(v);
    unsigned long long bnd = strtoull(v + 1, NULL, 16);
    if (bnd != 1ULL) /* CAP_CHOWN is 0 */
        fail_msg("the exec's bounding set is %#llx, want CAP_CHOWN alone (0x1): %s", bnd, out);
    ctr_kill_remove(&t, id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_has_own_session),
        cmocka_unit_test(test_exec_has_own_session),
        cmocka_unit_test(test_init_cwd_unreachable),
        cmocka_unit_test(test_init_cwd_out_of_root),
        cmocka_unit_test(test_exec_cwd_unreachable),
        cmocka_unit_test(test_exec_cwd_out_of_root),
        cmocka_unit_test(test_missing_cwd_created),
        cmocka_unit_test(test_exec_joins_pinned_namespaces),
        cmocka_unit_test(test_pinned_namespaces_released),
        cmocka_unit_test(test_exec_bounding_set_despite_forged_proc),
    };
    ctr_suite_fixtures(&agent, &t, &rootfs, "procsetup-sandbox");
    return cmocka_run_group_tests(tests, ctr_group_setup, ctr_group_teardown);
}
