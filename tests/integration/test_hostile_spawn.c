/* Issue 13, item 2 (and item 11's rlimit order) against the real agent: a container
 * process must not reach anything of the agent while it is being set up.
 *
 * The agent is started with two fds left open without CLOEXEC (10 and 251, what a
 * careless launcher passes along). The first container, "attacker", owns the
 * sandbox pid namespace and has CAP_SYS_PTRACE; its /etc/passwd is a large file
 * bound over the image's, so that a process being exec'd into it spends a while
 * reading it (the old child did that in the container's pid namespace with every
 * agent fd in hand). Checks:
 *   - an init, an exec (pipes and a tty) and an init joining the sandbox pid
 *     namespace run with fds 0, 1, 2 only; the latter sees a procfs of its own
 *     pid namespace;
 *   - an init joining the sandbox pid namespace, created and waiting for
 *     StartContainer, is out of reach of a container process without
 *     CAP_SYS_PTRACE (not dumpable), and holds only its stdio and the two pipes
 *     to the agent for one with it;
 *   - the attack itself: the attacker watches for new pids and tries pidfd_getfd
 *     on every fd and a write through /proc/<pid>/root while processes are exec'd
 *     into it and an init with many mounts joins its pid namespace: nothing but
 *     pipes and ttys is taken, no foreign root is seen, nothing is written;
 *   - RLIMIT_NOFILE 4 and 8 (init and exec) do not break the setup and hold. */
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

#include "ctr.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static struct agent_proc agent;
static struct ctr t;
static const char *rootfs;
static char out[1 << 18];
static char scratch[64]; /* our files: the big passwd */
static int exec_seq;

static void add_rlimit(Grpc__Process *p, const char *type, uint64_t soft, uint64_t hard)
{
    Grpc__POSIXRlimit *r = malloc(sizeof(*r));
    grpc__posixrlimit__init(r);
    r->type = strdup(type);
    r->soft = soft;
    r->hard = hard;
    p->rlimits = realloc(p->rlimits, (p->n_rlimits + 1) * sizeof(*p->rlimits));
    p->rlimits[p->n_rlimits++] = r;
}

static int create_in_sandbox_pidns(const char *id, Grpc__Spec *spec)
{
    Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)id;
    req.exec_id = (char *)id;
    req.oci = spec;
    req.sandbox_pidns = true;
    return ctr_call(&t, "CreateContainer", &req.base, NULL, NULL);
}

/* Exec args in the attacker with the init's caps (CAP_SYS_PTRACE among them) or,
 * with caps, those; returns the exec id (its stdout is read by the caller). */
static const char *exec_in_attacker(const char *const *args, Grpc__LinuxCapabilities *caps,
                                    bool tty)
{
    static char eid[32];
    snprintf(eid, sizeof(eid), "x%d", ++exec_seq);
    Grpc__Process *p = process_new(args);
    p->terminal = tty;
    p->capabilities = caps;
    if (ctr_exec(&t, ctr_unique_id("attacker"), eid, p) != 0)
        fail_msg("exec %s in the attacker: %s", args[0], t.msg);
    process_free(p);
    return eid;
}

static int wait_exec(const char *eid)
{
    int status = -1;
    if (ctr_wait(&t, ctr_unique_id("attacker"), eid, &status) != 0)
        fail_msg("wait for %s: %s", eid, t.msg);
    return status;
}

/* A passwd of about 3 MiB (under KA_CREDS_FILE_MAX) whose only user of interest is the last line.
 */
static void write_big_passwd(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "root:x:0:0:root:/root:/bin/sh\n");
    for (int i = 0; i < 40000; i++)
        fprintf(f, "filler%05d:x:%d:%d:filler user number %d:/home/filler:/bin/false\n", i,
                100000 + i, 100000 + i, i);
    fprintf(f, "slowuser:x:4242:4242::/:/bin/sh\n");
    assert_int_equal(fclose(f), 0);
}

static int group_setup(void **state)
{
    (void)state;
    agent_inherit_fds_next((const int[]){10, 251}, 2);
    if (ctr_suite_setup(&agent, &t, NULL, "kata-sandbox", &rootfs) != 0)
        return -1;
    snprintf(scratch, sizeof(scratch), "/tmp/ka-hostile-spawn-XXXXXX");
    if (!mkdtemp(scratch))
        return -1;
    char passwd[128];
    snprintf(passwd, sizeof(passwd), "%s/passwd", scratch);
    write_big_passwd(passwd);

    /* The first container: its pid namespace becomes the sandbox's. */
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "sleep", "1000"));
    caps_add(s->process->capabilities, "CAP_SYS_PTRACE");
    spec_add_bind(s, "/etc/passwd", passwd, "ro");
    int rc = ctr_create(&t, ctr_unique_id("attacker"), s);
    spec_free(s);
    if (rc != 0 || ctr_start(&t, ctr_unique_id("attacker")) != 0) {
        fprintf(stderr, "attacker: %s\n", t.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ctr_signal(&t, ctr_unique_id("attacker"), "", 9);
    int status;
    ctr_wait(&t, ctr_unique_id("attacker"), "", &status);
    ctr_remove(&t, ctr_unique_id("attacker"));
    ctr_suite_teardown(&agent, &t);
    sh("rm -rf %s", scratch);
    return 0;
}

/* `ka-payload fds` output ("N -> target" lines, \r\n on a tty): exactly 0, 1, 2. */
static void assert_only_stdio(const char *fds_out)
{
    int n = 0;
    for (const char *line = fds_out; *line; n++) {
        char want[16];
        snprintf(want, sizeof(want), "%d -> ", n);
        if (strncmp(line, want, strlen(want)) != 0)
            fail_msg("fd line %d is not fd %d:\n%s", n, n, fds_out);
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : line + strlen(line);
    }
    if (n != 3)
        fail_msg("%d fds, want 0, 1, 2:\n%s", n, fds_out);
}

/* The agent itself dropped what its launcher left open. */
static void test_agent_closed_inherited_fds(void **state)
{
    (void)state;
    const int leaked[] = {10, 251};
    for (size_t i = 0; i < 2; i++) {
        char path[64], target[256];
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)agent.pid, leaked[i]);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        if (n >= 0 && strncmp(target, "/tmp/ka-it-", 11) == 0)
            fail_msg("the agent still holds inherited fd %d -> %s", leaked[i], target);
    }
}

static void test_init_has_only_stdio(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "fds"));
    assert_int_equal(ctr_run(&t, ctr_unique_id("init-fds"), s, out, sizeof(out)), 0);
    spec_free(s);
    assert_only_stdio(out);
}

static void test_exec_has_only_stdio(void **state)
{
    (void)state;
    for (int tty = 0; tty < 2; tty++) {
        const char *eid = exec_in_attacker(ARGS("ka-payload", "fds"), NULL, tty);
        ctr_read_all(&t, ctr_unique_id("attacker"), eid, false, out, sizeof(out));
        assert_int_equal(wait_exec(eid), 0);
        assert_only_stdio(out);
        if (tty)
            assert_non_null(strstr(out, "0 -> /dev/pts/"));
    }
}

/* Joining the sandbox pid namespace: only stdio, the pid namespace is the
 * attacker's, and its /proc is a procfs of that namespace ($$ is its /proc/self),
 * with the masked and read-only paths of the spec applied to it. */
static void test_sandbox_pidns_init(void **state)
{
    (void)state;
    const char *eid = exec_in_attacker(ARGS("ka-payload", "ns", "pid"), NULL, false);
    char attacker_ns[128];
    ctr_read_all(&t, ctr_unique_id("attacker"), eid, false, attacker_ns, sizeof(attacker_ns));
    assert_int_equal(wait_exec(eid), 0);

    Grpc__Spec *s = spec_new(
        rootfs,
        ARGS(
            "sh", "-c",
            "ka-payload fds; ka-payload ns pid; read a b < /proc/self/stat; "
            "echo self=$$ stat=$a; ka-payload stat /proc/keys | grep -q '^minor=3' && echo keys-masked; "
            "echo x 2>/dev/null > /proc/sys/kernel/hostname || echo sys-ro"));
    const char *id = ctr_unique_id("joiner");
    assert_int_equal(create_in_sandbox_pidns(id, s), 0);
    spec_free(s);
    assert_int_equal(ctr_start(&t, id), 0);
    ctr_read_all(&t, id, "", false, out, sizeof(out));
    int status;
    assert_int_equal(ctr_wait(&t, id, "", &status), 0);
    assert_int_equal(ctr_remove(&t, id), 0);
    assert_int_equal(status, 0);

    char *ns = strstr(out, "pid:[");
    assert_non_null(ns);
    assert_memory_equal(ns, attacker_ns, strlen(attacker_ns));
    *ns = '\0';
    assert_only_stdio(out);
    int self = -1, stat_pid = -2;
    const char *line = strstr(ns + 1, "self=");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "self=%d stat=%d", &self, &stat_pid), 2);
    assert_int_equal(self, stat_pid);
    if (!strstr(line, "keys-masked")) /* /proc/keys masked by /dev/null */
        fail_msg("/proc/keys not masked:\n%s", line);
    assert_non_null(strstr(line, "sys-ro"));
}

/* Its procfs is mounted by the process in the pid namespace, after pivot_root, where
 * a bind source is out of reach: anything but proc on or under a proc mount is
 * refused for an init joining the sandbox pid namespace, and nothing is left. */
static void test_sandbox_pidns_refuses_mounts_in_proc(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("true"));
    spec_add_mount(s, "/proc/driver", "tmpfs", "tmpfs", ARGS("size=64k"));
    const char *id = ctr_unique_id("proc-sub");
    assert_int_equal(create_in_sandbox_pidns(id, s), 3 /* INVALID_ARGUMENT */);
    spec_free(s);
    assert_non_null(strstr(t.msg, "only proc may be mounted on or under a proc mount"));
    assert_int_not_equal(ctr_remove(&t, id), 0); /* never created */
}

/* The pid lines ("pid=N comm=C root=R") and fd lines of a snoop, checked: nothing of
 * the agent. Returns the number of fds taken from processes named comm (NULL: all). */
static int check_snoop(const char *snoop_out, const char *comm, const char *want_root)
{
    int taken = 0;
    char key[64];
    snprintf(key, sizeof(key), "comm=%s ", comm ? comm : "");
    for (const char *line = snoop_out; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char l[PATH_MAX + 128];
        snprintf(l, sizeof(l), "%.*s", (int)len, line);
        line += len + (nl ? 1 : 0);
        bool ours = !comm || strstr(l, key);
        if (strncmp(l, "wrote ", 6) == 0)
            fail_msg("wrote through a foreign root: %s", l);
        if (strncmp(l, "pid=", 4) == 0 && strstr(l, "root=other"))
            fail_msg("a process with a foreign root in the container: %s", l);
        if (ours && want_root && strncmp(l, "pid=", 4) == 0) {
            const char *r = strstr(l, "root=");
            if (!r || strcmp(r + 5, want_root) != 0)
                fail_msg("want root=%s: %s", want_root, l);
        }
        if (strncmp(l, "fd ", 3) == 0) {
            const char *target = strstr(l, "target=");
            if (!target)
                fail_msg("an fd line without its target: '%s'", l);
            target += 7;
            /* stdio pipes or a tty, the pipes to the agent, or a file of the
             * container's own tree (the passwd being read) */
            if (strncmp(target, "pipe:", 5) != 0 && !strstr(l, " own=1 "))
                fail_msg("took an fd of the agent: %s", l);
            if (ours)
                taken++;
        }
    }
    return taken;
}

/* An init joining the sandbox pid namespace, created, waits for StartContainer in
 * the attacker's pid namespace: out of reach without CAP_SYS_PTRACE (not dumpable:
 * /proc/<pid>/root and pidfd_getfd are refused), and with it, nothing to take but
 * its stdio and its two pipes to the agent. */
static void test_waiting_init_out_of_reach(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("true"));
    const char *id = ctr_unique_id("waiting");
    assert_int_equal(create_in_sandbox_pidns(id, s), 0);
    spec_free(s);

    /* The default caps: no CAP_SYS_PTRACE. */
    Grpc__Spec *caps_from = spec_new(rootfs, ARGS("true"));
    Grpc__LinuxCapabilities *caps = caps_from->process->capabilities;
    caps_from->process->capabilities = NULL;
    spec_free(caps_from);
    const char *eid = exec_in_attacker(ARGS("ka-payload", "snoop", "0"), caps, false);
    ctr_read_all(&t, ctr_unique_id("attacker"), eid, false, out, sizeof(out));
    assert_int_equal(wait_exec(eid), 0);
    if (!strstr(out, "comm=kata-agent "))
        fail_msg("the waiting init is not in the sandbox pid namespace:\n%s", out);
    assert_int_equal(check_snoop(out, "kata-agent", "EACCES"), 0);

    eid = exec_in_attacker(ARGS("ka-payload", "snoop", "0"), NULL, false);
    ctr_read_all(&t, ctr_unique_id("attacker"), eid, false, out, sizeof(out));
    assert_int_equal(wait_exec(eid), 0);
    /* stdio, the sync pipe and the start pipe */
    assert_int_equal(check_snoop(out, "kata-agent", "same"), 5);

    assert_int_equal(ctr_remove(&t, id), 0);
}

/* The race: the attacker watches its pid namespace while processes are exec'd into
 * it (each reads the large passwd first) and an init with a hundred mounts joins it.
 * A marker write through any foreign root would land in the agent's /run. */
static void test_attacker_races_spawns(void **state)
{
    (void)state;
    char marker[64], agent_marker[128];
    snprintf(marker, sizeof(marker), "run/ka-hostile-%d", (int)getpid());
    snprintf(agent_marker, sizeof(agent_marker), "/proc/%d/root/%s", (int)agent.pid, marker);
    const char *snooper = exec_in_attacker(ARGS("ka-payload", "snoop", "8", marker), NULL, false);
    char snooper_id[32];
    snprintf(snooper_id, sizeof(snooper_id), "%s", snooper);
    usleep(200 * 1000); /* let it list what runs already */

    Grpc__Spec *s = spec_new(rootfs, ARGS("true"));
    for (int i = 0; i < 100; i++)
        spec_add_mount(s, "/tmp", "tmpfs", "tmpfs", ARGS("size=64k"));
    const char *id = ctr_unique_id("slow-init");
    assert_int_equal(create_in_sandbox_pidns(id, s), 0);
    spec_free(s);
    assert_int_equal(ctr_start(&t, id), 0);

    double until = now_s() + 6;
    int execs = 0;
    while (now_s() < until) {
        Grpc__Process *p = process_new(ARGS("true"));
        free(p->user->username);
        p->user->username = strdup("slowuser");
        char eid[32];
        snprintf(eid, sizeof(eid), "race%d", execs++);
        if (ctr_exec(&t, ctr_unique_id("attacker"), eid, p) != 0)
            fail_msg("exec %s: %s", eid, t.msg);
        process_free(p);
        assert_int_equal(wait_exec(eid), 0);
    }
    int status;
    assert_int_equal(ctr_wait(&t, id, "", &status), 0);
    assert_int_equal(ctr_remove(&t, id), 0);

    /* A line per pid seen and per fd taken: on a fast machine the snooper sees many
     * processes, so read it whole into a buffer that cannot fill, and say so if it did. */
    size_t snoop_size = 16u << 20;
    char *snoop_out = malloc(snoop_size);
    assert_non_null(snoop_out);
    size_t n =
        ctr_read_all(&t, ctr_unique_id("attacker"), snooper_id, false, snoop_out, snoop_size);
    if (n >= snoop_size - 1)
        fail_msg("the snooper's output filled %zu bytes: not checked whole", snoop_size);
    assert_int_equal(wait_exec(snooper_id), 0);
    struct stat st;
    if (stat(agent_marker, &st) == 0)
        fail_msg("the attacker wrote %s into the agent's root", marker);
    check_snoop(snoop_out, NULL, NULL);
    /* The attack ran: it saw the new processes and took their stdio. */
    long seen = 0, taken = 0;
    const char *end = strstr(snoop_out, "seen=");
    assert_non_null(end);
    assert_int_equal(sscanf(end, "seen=%ld taken=%ld", &seen, &taken), 2);
    fprintf(stderr, "race: %d execs; the attacker saw %ld new pids, took %ld fds\n", execs, seen,
            taken);
    if (seen < execs / 2 || taken == 0)
        fail_msg("the snooper saw %ld pids and took %ld fds in %d execs:\n%.2000s", seen, taken,
                 execs, snoop_out);
    free(snoop_out);
}

static void assert_nofile(const char *got, unsigned n)
{
    char want[32];
    snprintf(want, sizeof(want), "%u %u\n", n, n);
    assert_string_equal(got, want);
}

static void test_small_nofile(void **state)
{
    (void)state;
    const unsigned limits[] = {4, 8};
    for (size_t i = 0; i < 2; i++) {
        Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "rlimit", "NOFILE"));
        add_rlimit(s->process, "RLIMIT_NOFILE", limits[i], limits[i]);
        char name[32];
        snprintf(name, sizeof(name), "nofile%u", limits[i]);
        assert_int_equal(ctr_run(&t, ctr_unique_id(name), s, out, sizeof(out)), 0);
        spec_free(s);
        assert_nofile(out, limits[i]);

        Grpc__Process *p = process_new(ARGS("ka-payload", "rlimit", "NOFILE"));
        add_rlimit(p, "RLIMIT_NOFILE", limits[i], limits[i]);
        char eid[32];
        snprintf(eid, sizeof(eid), "nofile%u", limits[i]);
        assert_int_equal(ctr_exec_collect(&t, ctr_unique_id("attacker"), eid, p, out, sizeof(out)),
                         0);
        assert_nofile(out, limits[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_closed_inherited_fds),
        cmocka_unit_test(test_init_has_only_stdio),
        cmocka_unit_test(test_exec_has_only_stdio),
        cmocka_unit_test(test_sandbox_pidns_init),
        cmocka_unit_test(test_sandbox_pidns_refuses_mounts_in_proc),
        cmocka_unit_test(test_waiting_init_out_of_reach),
        cmocka_unit_test(test_attacker_races_spawns),
        cmocka_unit_test(test_small_nofile),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
