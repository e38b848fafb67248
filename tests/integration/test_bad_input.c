/* The bad-input catalogue of issue 8 against the real agent (root, isolated):
 * each case asserts a clear error status, then that the agent is alive and
 * answers Health, that a bystander container started before everything still
 * runs, and that the agent's fd count and VmRSS are back near where they were.
 * (Oversize frames, even stream ids, garbage, vanishing clients and connection
 * churn are in test_agent.) */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"
#include "ttrpc/frame.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

#ifdef KA_TEST_SANITIZED
#define RSS_BOUND_KB (64 * 1024) /* ASan's quarantine keeps freed memory resident */
#else
#define RSS_BOUND_KB (8 * 1024)
#define UNREAD_BOUND_KB (32 * 1024) /* one client that never reads its replies */
#endif

static struct agent_proc agent;
static struct ctr t;
static const char *rootfs;
static char out[1 << 16];
static char private_root[64];
static int base_fds;
static long base_rss;
static int exec_seq;

static bool bundle_exists(const char *cid)
{
    char path[512];
    snprintf(path, sizeof(path), "/proc/%d/root/run/kata-containers/%s", (int)agent.pid, cid);
    return access(path, F_OK) == 0;
}

static void expect(int code, int want, const char *what)
{
    if (code != want)
        fail_msg("%s: code %d (%s), want %d", what, code, t.msg, want);
}

static void expect_msg(const char *part)
{
    if (!strstr(t.msg, part))
        fail_msg("message '%s' lacks '%s'", t.msg, part);
}

static void expect_status(int fd, uint32_t sid, int code, const char *msg_part)
{
    uint32_t got_sid;
    int got_code;
    char msg[512];
    assert_int_equal(raw_recv_response(fd, &got_sid, &got_code, msg, sizeof(msg)), 0);
    if (got_sid != sid || got_code != code)
        fail_msg("stream %u code %d (%s), want stream %u code %d", got_sid, got_code, msg, sid,
                 code);
    if (msg_part && !strstr(msg, msg_part))
        fail_msg("status message '%s' lacks '%s'", msg, msg_part);
}

/* The checks after every case: Health answers, the bystander still runs (an exec
 * into it succeeds), fds back to the baseline, RSS within the bound. */
static void agent_ok(void)
{
    assert_true(agent_alive(&agent));
    int fd = raw_connect(&agent);
    raw_send_request(fd, 1, "grpc.Health", "Check", NULL, 0);
    expect_status(fd, 1, 0, NULL);
    close(fd);
    char eid[32];
    snprintf(eid, sizeof(eid), "probe-%d", ++exec_seq);
    Grpc__Process *p = process_new(ARGS("true"));
    if (ctr_exec(&t, ctr_unique_id("bystander"), eid, p) != 0) {
        char msg[sizeof(t.msg)];
        snprintf(msg, sizeof(msg), "%s", t.msg);
        int st = -1;
        int rc = ctr_wait(&t, ctr_unique_id("bystander"), "", &st);
        fail_msg("exec into the bystander: %s (its wait: code %d, status %d)", msg, rc, st);
    }
    process_free(p);
    int status;
    expect(ctr_wait(&t, ctr_unique_id("bystander"), eid, &status), 0, "wait for the probe");
    assert_int_equal(status, 0);
    int fds = agent_wait_fd_count(&agent, base_fds, 5000);
    if (fds != base_fds) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)agent.pid);
        if (system(cmd) != 0)
            fprintf(stderr, "(no fd list)\n");
        fail_msg("agent fd count %d, was %d", fds, base_fds);
    }
    long rss = agent_status_kb(&agent, "VmRSS");
    if (rss - base_rss > RSS_BOUND_KB)
        fail_msg("agent RSS %ld kB, was %ld kB", rss, base_rss);
}

static int group_setup(void **state)
{
    (void)state;
    if (ctr_suite_setup(&agent, &t, NULL, "kata-sandbox", &rootfs) != 0)
        return -1;
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    if (ctr_create(&t, ctr_unique_id("bystander"), s) != 0 ||
        ctr_start(&t, ctr_unique_id("bystander")) != 0) {
        fprintf(stderr, "bystander: %s\n", t.msg);
        return -1;
    }
    spec_free(s);
    /* A first exec settles the agent's lazily grown state before the baseline. */
    Grpc__Process *p = process_new(ARGS("true"));
    int status;
    if (ctr_exec(&t, ctr_unique_id("bystander"), "warm-up", p) != 0 ||
        ctr_wait(&t, ctr_unique_id("bystander"), "warm-up", &status) != 0)
        return -1;
    process_free(p);
    /* The agent closes an exec's pipes just after answering its wait: settle. */
    base_fds = agent_fd_count(&agent);
    for (int i = 0, n; i < 50 && (usleep(100000), n = agent_fd_count(&agent)) != base_fds; i++)
        base_fds = n;
    base_rss = agent_status_kb(&agent, "VmRSS");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int status;
    if (ctr_signal(&t, ctr_unique_id("bystander"), "", SIGKILL) == 0 &&
        ctr_wait(&t, ctr_unique_id("bystander"), "", &status) == 0)
        ctr_remove(&t, ctr_unique_id("bystander"));
    ctr_suite_teardown(&agent, &t);
    if (private_root[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", private_root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", private_root);
    }
    return 0;
}

static void start_pause(const char *cid)
{
    ctr_create_start(&t, cid, spec_new(rootfs, ARGS("ka-payload", "pause")));
}

static void kill_and_remove(const char *cid, int want_status)
{
    int status;
    expect(ctr_signal(&t, cid, "", SIGKILL), 0, "kill");
    expect(ctr_wait(&t, cid, "", &status), 0, "wait");
    assert_int_equal(status, want_status);
    expect(ctr_remove(&t, cid), 0, "remove");
}

/* ---- frames ------------------------------------------------------------------------------- */

/* A frame cut off, then the connection closed: in the header, in the payload,
 * in the middle of a valid Request. Then a truncated frame followed by nothing
 * on a connection kept open while another connection works. */
static void test_truncated_frames(void **state)
{
    (void)state;
    uint8_t hdr[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = 64, .stream_id = 1, .type = TTRPC_TYPE_REQUEST};
    ttrpc_header_encode(&h, hdr);
    for (size_t cut = 1; cut < sizeof(hdr); cut += 3) {
        int fd = raw_connect(&agent);
        raw_send(fd, hdr, cut);
        close(fd);
    }
    int fd = raw_connect(&agent);
    raw_send(fd, hdr, sizeof(hdr));
    raw_send(fd, "0123456789", 10);
    close(fd);

    /* Half of a real WaitProcess request. */
    Grpc__WaitProcessRequest w = GRPC__WAIT_PROCESS_REQUEST__INIT;
    w.container_id = (char *)ctr_unique_id("bystander");
    w.exec_id = (char *)"";
    uint8_t pl[128];
    size_t pn = grpc__wait_process_request__pack(&w, pl);
    uint8_t frame[512];
    int keep = raw_connect(&agent);
    fd = raw_connect(&agent);
    {
        /* Build the full frame in memory by hand: header + Request. */
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        raw_send_request(sv[0], 1, "grpc.AgentService", "WaitProcess", pl, pn);
        ssize_t n = read(sv[1], frame, sizeof(frame));
        assert_true(n > TTRPC_HEADER_SIZE);
        close(sv[0]);
        close(sv[1]);
        raw_send(fd, frame, (size_t)n / 2);
        raw_send(keep, frame, (size_t)n - 1); /* all but the last byte, left open */
    }
    close(fd);
    /* The open one with a pending partial frame does not hold up others. */
    int other = raw_connect(&agent);
    raw_send_request(other, 1, "grpc.Health", "Check", NULL, 0);
    expect_status(other, 1, 0, NULL);
    close(other);
    close(keep);
    agent_ok();
}

/* A second request on a stream id that is still parked: INVALID_ARGUMENT, and the
 * parked call is still answered later on that stream. */
static void test_reused_stream_id(void **state)
{
    (void)state;
    start_pause(ctr_unique_id("c-reuse"));
    int fd = raw_connect(&agent);
    Grpc__WaitProcessRequest w = GRPC__WAIT_PROCESS_REQUEST__INIT;
    w.container_id = (char *)ctr_unique_id("c-reuse");
    w.exec_id = (char *)"";
    uint8_t buf[128];
    size_t n = grpc__wait_process_request__pack(&w, buf);
    raw_send_request(fd, 1, "grpc.AgentService", "WaitProcess", buf, n);
    raw_send_request(fd, 1, "grpc.Health", "Check", NULL, 0);
    expect_status(fd, 1, 3, "already in use");
    raw_send_request(fd, 1, "grpc.AgentService", "WaitProcess", buf, n);
    expect_status(fd, 1, 3, "already in use");
    raw_send_request(fd, 3, "grpc.Health", "Check", NULL, 0);
    expect_status(fd, 3, 0, NULL);
    expect(ctr_signal(&t, ctr_unique_id("c-reuse"), "", SIGKILL), 0, "kill");
    expect_status(fd, 1, 0, NULL); /* the parked wait */
    /* The stream id is free again once answered. */
    raw_send_request(fd, 1, "grpc.Health", "Check", NULL, 0);
    expect_status(fd, 1, 0, NULL);
    close(fd);
    expect(ctr_remove(&t, ctr_unique_id("c-reuse")), 0, "remove");
    agent_ok();
}

static void test_unknown_service_and_method(void **state)
{
    (void)state;
    int fd = raw_connect(&agent);
    raw_send_request(fd, 1, "grpc.NoSuchService", "Check", "\x0a\x01x", 3);
    expect_status(fd, 1, 12, "does not exist");
    raw_send_request(fd, 3, "grpc.AgentService", "NoSuchMethod", "\x0a\x01x", 3);
    expect_status(fd, 3, 12, "not implemented");
    raw_send_request(fd, 5, "", "", NULL, 0);
    expect_status(fd, 5, 12, NULL);
    raw_send_request(fd, 7, "grpc.Health", "check", NULL, 0); /* case matters */
    expect_status(fd, 7, 12, NULL);
    raw_send_request(fd, 9, "grpc.Health", "Check", NULL, 0);
    expect_status(fd, 9, 0, NULL);
    close(fd);
    agent_ok();
}

/* Payloads that are not protobuf (a truncated varint, a length past the end, a
 * wire type 7 field) for several AgentService requests: INVALID_ARGUMENT. */
static void test_bad_protobuf_payloads(void **state)
{
    (void)state;
    static const char *const methods[] = {"CreateContainer", "StartContainer", "ExecProcess",
                                          "WaitProcess",     "SignalProcess",  "WriteStdin",
                                          "CopyFile",        "CreateSandbox",  "UpdateInterface"};
    static const struct {
        const char *data;
        size_t len;
    } bad[] = {{"\x0a\xff", 2}, {"\x0a\x10xy", 4}, {"\x0f\x00", 2}, {"\x08\xff\xff\xff", 4}};
    int fd = raw_connect(&agent);
    uint32_t sid = 1;
    for (size_t m = 0; m < sizeof(methods) / sizeof(*methods); m++)
        for (size_t b = 0; b < sizeof(bad) / sizeof(*bad); b++) {
            raw_send_request(fd, sid, "grpc.AgentService", methods[m], bad[b].data, bad[b].len);
            uint32_t got_sid;
            int code;
            char msg[512];
            assert_int_equal(raw_recv_response(fd, &got_sid, &code, msg, sizeof(msg)), 0);
            assert_int_equal(got_sid, sid);
            if (code != 3 || !strstr(msg, "not a valid"))
                fail_msg("%s with bad payload %zu: code %d (%s)", methods[m], b, code, msg);
            sid += 2;
        }
    close(fd);
    agent_ok();
}

/* ---- container ids and call order ----------------------------------------------------------- */

static void test_bad_container_ids(void **state)
{
    (void)state;
    char long_id[301];
    memset(long_id, 'a', 300);
    long_id[300] = '\0';
    const char *bad_ids[] = {"", "..", ".", "a/b", "/abs", "../x", long_id};
    Grpc__Spec *s = spec_new(rootfs, ARGS("true"));
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(*bad_ids); i++) {
        expect(ctr_create(&t, bad_ids[i], s), 3, bad_ids[i]);
        expect_msg("invalid container id");
    }
    /* The other RPCs refuse them too (not found or invalid, never a crash). */
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(*bad_ids); i++) {
        assert_int_not_equal(ctr_start(&t, bad_ids[i]), 0);
        assert_int_not_equal(ctr_remove(&t, bad_ids[i]), 0);
    }
    assert_false(bundle_exists("a"));
    /* Duplicate ids: the first stays usable. */
    expect(ctr_create(&t, ctr_unique_id("c-dup"), s), 0, "create");
    expect(ctr_create(&t, ctr_unique_id("c-dup"), s), 6, "duplicate");
    expect_msg("already exists");
    expect(ctr_create(&t, ctr_unique_id("bystander"), s), 6, "duplicate of a running one");
    expect(ctr_start(&t, ctr_unique_id("c-dup")), 0, "start the first");
    int status;
    expect(ctr_wait(&t, ctr_unique_id("c-dup"), "", &status), 0, "wait");
    assert_int_equal(status, 0);
    expect(ctr_remove(&t, ctr_unique_id("c-dup")), 0, "remove");
    spec_free(s);
    agent_ok();
}

static void test_unknown_containers_and_processes(void **state)
{
    (void)state;
    Grpc__Process *p = process_new(ARGS("true"));
    int status;
    expect(ctr_exec(&t, ctr_unique_id("c-nope"), "e1", p), 5, "exec into an unknown container");
    expect(ctr_wait(&t, ctr_unique_id("c-nope"), "", &status), 5, "wait unknown container");
    expect(ctr_signal(&t, ctr_unique_id("c-nope"), "", SIGKILL), 5, "signal unknown container");
    expect(ctr_wait(&t, ctr_unique_id("bystander"), "no-such-exec", &status), 5,
           "wait unknown exec");
    expect(ctr_signal(&t, ctr_unique_id("bystander"), "no-such-exec", SIGKILL), 5,
           "signal unknown exec");
    expect(ctr_write(&t, ctr_unique_id("bystander"), "no-such-exec", "x", 1), 5,
           "write unknown exec");
    size_t got;
    expect(ctr_read(&t, ctr_unique_id("bystander"), "no-such-exec", false, out, sizeof(out), &got),
           5, "read unknown exec");
    /* An exec id already used is refused while it lives. */
    Grpc__Process *pause = process_new(ARGS("ka-payload", "pause"));
    expect(ctr_exec(&t, ctr_unique_id("bystander"), "e-twice", pause), 0, "exec");
    expect(ctr_exec(&t, ctr_unique_id("bystander"), "e-twice", pause), 6, "exec id reused");
    expect(ctr_signal(&t, ctr_unique_id("bystander"), "e-twice", SIGKILL), 0, "kill the exec");
    expect(ctr_wait(&t, ctr_unique_id("bystander"), "e-twice", &status), 0, "wait the exec");
    assert_int_equal(status, 137);
    process_free(pause);
    process_free(p);
    agent_ok();
}

static void test_calls_in_wrong_order(void **state)
{
    (void)state;
    expect(ctr_start(&t, ctr_unique_id("c-order")), 5, "start before create");
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    expect(ctr_create(&t, ctr_unique_id("c-order"), s), 0, "create");
    spec_free(s);
    Grpc__Process *p = process_new(ARGS("true"));
    expect(ctr_exec(&t, ctr_unique_id("c-order"), "e1", p), 9, "exec before start");
    expect(ctr_start(&t, ctr_unique_id("c-order")), 0, "start");
    expect(ctr_start(&t, ctr_unique_id("c-order")), 9, "start twice");
    /* Still the one init, still running: an exec works. */
    int status;
    expect(ctr_exec(&t, ctr_unique_id("c-order"), "e1", p), 0, "exec after start");
    expect(ctr_wait(&t, ctr_unique_id("c-order"), "e1", &status), 0, "wait exec");
    process_free(p);
    kill_and_remove(ctr_unique_id("c-order"), 137);
    expect(ctr_remove(&t, ctr_unique_id("c-order")), 5, "remove twice");
    expect(ctr_start(&t, ctr_unique_id("c-order")), 5, "start after remove");
    assert_false(bundle_exists(ctr_unique_id("c-order")));
    agent_ok();
}

/* ---- paths and storages --------------------------------------------------------------------- */

static int copy(const char *path, uint32_t mode, const void *data, size_t len)
{
    return ctr_copy_file(&t, path, mode, (int64_t)len, 0, 0, 0, data, len);
}

static void test_copyfile_escapes(void **state)
{
    (void)state;
    expect(copy("/etc/ka-bad-input", S_IFREG | 0644, "x", 1), 3, "outside the shared dir");
    expect(copy("/run/kata-containers/shared/containers/../../../../etc/ka-bad-input",
                S_IFREG | 0644, "x", 1),
           3, "..");
    expect(copy("/run/kata-containers/shared/containers/bi/root", S_IFLNK | 0777, "/", 1), 0,
           "a symlink to /");
    expect(copy("/run/kata-containers/shared/containers/bi/root/etc/ka-bad-input", S_IFREG | 0644,
                "x", 1),
           3, "through the symlink");
    char p[128];
    snprintf(p, sizeof(p), "/proc/%d/root/etc/ka-bad-input", (int)agent.pid);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(access("/etc/ka-bad-input", F_OK), -1);
    agent_ok();
}

static void test_storage_unknown_driver(void **state)
{
    (void)state;
    Grpc__Spec *s = spec_new(rootfs, ARGS("true"));
    Grpc__Storage *st =
        storage_new("no-such-driver", "x", "ext4", "/run/kata-containers/sandbox/storage/bi");
    int code = ctr_create_with_storages(&t, ctr_unique_id("c-storage"), s, &st, 1);
    if (code != 3 && code != 12)
        fail_msg("unknown storage driver: code %d (%s)", code, t.msg);
    expect_msg("no-such-driver");
    assert_false(bundle_exists(ctr_unique_id("c-storage")));
    char p[256];
    snprintf(p, sizeof(p), "/proc/%d/root/run/kata-containers/sandbox/storage/bi", (int)agent.pid);
    assert_int_equal(access(p, F_OK), -1);
    protobuf_c_message_free_unpacked(&st->base, NULL);
    /* The id is free: the same container without the storage runs. */
    assert_int_equal(ctr_run(&t, ctr_unique_id("c-storage"), s, out, sizeof(out)), 0);
    spec_free(s);
    agent_ok();
}

/* A private copy of the test rootfs to plant symlinks in. */
static const char *make_private_root(void)
{
    if (!private_root[0]) {
        snprintf(private_root, sizeof(private_root), "/tmp/ka-bad-root-XXXXXX");
        assert_non_null(mkdtemp(private_root));
        char cmd[2 * PATH_MAX + 32];
        snprintf(cmd, sizeof(cmd), "cp -a %s/. %s/", rootfs, private_root);
        assert_int_equal(system(cmd), 0);
    }
    return private_root;
}

static void test_mount_destination_escapes(void **state)
{
    (void)state;
    /* ".." in a destination: refused before anything is made. */
    Grpc__Spec *s = spec_new(rootfs, ARGS("true"));
    spec_add_mount(s, "/tmp/../../ka-bad-input-dd", "tmpfs", "tmpfs", NULL);
    expect(ctr_create(&t, ctr_unique_id("c-dotdot"), s), 3, "destination with ..");
    expect_msg("..");
    spec_free(s);
    assert_false(bundle_exists(ctr_unique_id("c-dotdot")));

    /* A symlink in the rootfs to "/": the mount lands inside the root, never on
     * the agent's (or the host's) /. */
    const char *root = make_private_root();
    char link[128];
    snprintf(link, sizeof(link), "%s/escape", root);
    unlink(link);
    assert_int_equal(symlink("/", link), 0);
    s = spec_new(root, ARGS("sh", "-c", "test -d /ka-bad-input-mnt && echo inside"));
    spec_add_mount(s, "/escape/ka-bad-input-mnt", "tmpfs", "tmpfs", NULL);
    Grpc__Spec *keep = s;
    int code = ctr_create(&t, ctr_unique_id("c-symlink"), s);
    if (code == 0) {
        expect(ctr_start(&t, ctr_unique_id("c-symlink")), 0, "start");
        ctr_read_all(&t, ctr_unique_id("c-symlink"), "", false, out, sizeof(out));
        int status;
        expect(ctr_wait(&t, ctr_unique_id("c-symlink"), "", &status), 0, "wait");
        expect(ctr_remove(&t, ctr_unique_id("c-symlink")), 0, "remove");
        assert_string_equal(out, "inside\n");
    } else {
        assert_int_equal(code, 3);
        assert_false(bundle_exists(ctr_unique_id("c-symlink")));
    }
    spec_free(keep);
    char p[256];
    snprintf(p, sizeof(p), "/proc/%d/root/ka-bad-input-mnt", (int)agent.pid);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(access("/ka-bad-input-mnt", F_OK), -1);
    agent_ok();
}

/* A rootfs whose /proc or /dev is a symlink (to the host's): a clear error and
 * nothing left behind, the id free afterwards. */
static void test_rootfs_proc_or_dev_symlink(void **state)
{
    (void)state;
    const char *root = make_private_root();
    const char *dirs[] = {"proc", "dev"};
    for (size_t i = 0; i < 2; i++) {
        char path[128], saved[128];
        snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
        snprintf(saved, sizeof(saved), "%s/%s.saved", root, dirs[i]);
        assert_int_equal(rename(path, saved), 0);
        char target[16];
        snprintf(target, sizeof(target), "/%s", dirs[i]);
        assert_int_equal(symlink(target, path), 0);
        Grpc__Spec *s = spec_new(root, ARGS("true"));
        int code = ctr_create(&t, ctr_unique_id("c-badroot"), s);
        if (code == 0) {
            ctr_start(&t, ctr_unique_id("c-badroot"));
            int status;
            ctr_wait(&t, ctr_unique_id("c-badroot"), "", &status);
            ctr_remove(&t, ctr_unique_id("c-badroot"));
        }
        /* A bad image is the host's mistake: INVALID_ARGUMENT, naming the cause. */
        if (code != 3)
            fail_msg("/%s a symlink: code %d, want 3 (INVALID_ARGUMENT)", dirs[i], code);
        expect_msg(dirs[i]);
        if (!strstr(t.msg, "symlink") && !strstr(t.msg, "symbolic link"))
            fail_msg("/%s a symlink: message '%s' does not say so", dirs[i], t.msg);
        assert_false(bundle_exists(ctr_unique_id("c-badroot")));
        /* The link still points where it did, untouched. */
        char got[32] = "";
        assert_true(readlink(path, got, sizeof(got) - 1) > 0);
        assert_string_equal(got, target);
        unlink(path);
        assert_int_equal(rename(saved, path), 0);
        /* And the repaired root works. (Under another id: reusing the failed one at
         * once races the agent's background removal of its cgroup, see below.) */
        assert_int_equal(ctr_run(&t, ctr_unique_id(i == 0 ? "c-goodroot-proc" : "c-goodroot-dev"),
                                 s, out, sizeof(out)),
                         0);
        spec_free(s);
    }
    agent_ok();
}

/* A CreateContainer that fails in the child frees the id at once. The agent once
 * left the busy cgroup to a background remover that SIGKILLs whatever is in it,
 * so a new container under the same id (the same cgroup path) got killed: exit
 * 137 or "container init exited during setup". Now the failed child is collected
 * before the cgroup is released. */
static void test_id_reuse_after_failed_create(void **state)
{
    (void)state;
    const char *root = make_private_root();
    char path[128], saved[128];
    snprintf(path, sizeof(path), "%s/proc", root);
    snprintf(saved, sizeof(saved), "%s/proc.saved", root);
    Grpc__Spec *s = spec_new(root, ARGS("true"));
    int bad = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rename(path, saved), 0);
        assert_int_equal(symlink("/proc", path), 0);
        assert_int_not_equal(ctr_create(&t, ctr_unique_id("c-reuse-id"), s), 0);
        unlink(path);
        assert_int_equal(rename(saved, path), 0);
        int code = ctr_create(&t, ctr_unique_id("c-reuse-id"), s);
        int status = -1;
        if (code == 0 && (code = ctr_start(&t, ctr_unique_id("c-reuse-id"))) == 0)
            code = ctr_wait(&t, ctr_unique_id("c-reuse-id"), "", &status);
        char msg[sizeof(t.msg)];
        snprintf(msg, sizeof(msg), "%s", t.msg);
        ctr_remove(&t, ctr_unique_id("c-reuse-id"));
        if (code != 0 || status != 0) {
            print_message("round %d: code %d (%s), exit status %d\n", i, code, msg, status);
            bad++;
        }
    }
    spec_free(s);
    assert_int_equal(bad, 0);
}

/* ---- clients that go away or never read ----------------------------------------------------- */

static void test_disconnect_while_parked(void **state)
{
    (void)state;
    Grpc__Spec *sp = spec_new(rootfs, ARGS("sleep", "1000")); /* silent */
    expect(ctr_create(&t, ctr_unique_id("c-parked"), sp), 0, "create");
    spec_free(sp);
    expect(ctr_start(&t, ctr_unique_id("c-parked")), 0, "start");
    for (int round = 0; round < 3; round++) {
        int fd = raw_connect(&agent);
        Grpc__WaitProcessRequest w = GRPC__WAIT_PROCESS_REQUEST__INIT;
        w.container_id = (char *)ctr_unique_id("c-parked");
        w.exec_id = (char *)"";
        uint8_t buf[128];
        size_t n = grpc__wait_process_request__pack(&w, buf);
        raw_send_request(fd, 1, "grpc.AgentService", "WaitProcess", buf, n);
        Grpc__ReadStreamRequest r = GRPC__READ_STREAM_REQUEST__INIT;
        r.container_id = (char *)ctr_unique_id("c-parked");
        r.exec_id = (char *)"";
        r.len = 32768;
        n = grpc__read_stream_request__pack(&r, buf);
        raw_send_request(fd, 3, "grpc.AgentService", "ReadStdout", buf, n);
        raw_send_request(fd, 5, "grpc.AgentService", "ReadStderr", buf, n);
        raw_send_request(fd, 7, "grpc.Health", "Check", NULL, 0);
        expect_status(fd, 7, 0, NULL); /* the others are parked */
        close(fd);
    }
    /* Reconnect: the container still runs, its output still flows, it can be waited for. */
    struct ctr t2;
    ctr_open(&t2, &agent);
    Grpc__Process *p = process_new(ARGS("true"));
    expect(ctr_exec(&t2, ctr_unique_id("c-parked"), "e-alive", p), 0, "exec after the disconnects");
    process_free(p);
    int status;
    expect(ctr_wait(&t2, ctr_unique_id("c-parked"), "e-alive", &status), 0, "wait exec");
    expect(ctr_signal(&t2, ctr_unique_id("c-parked"), "", SIGKILL), 0, "kill");
    expect(ctr_wait(&t2, ctr_unique_id("c-parked"), "", &status), 0, "wait after reconnect");
    assert_int_equal(status, 137);
    expect(ctr_remove(&t2, ctr_unique_id("c-parked")), 0, "remove");
    ctr_close(&t2);
    agent_ok();
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Health checks pipelined without reading a reply (at least 50,000; up to a
 * million, or until the agent stops reading us once its output queue is full):
 * its memory stays bounded and it answers everyone else meanwhile. */
static void pipeline_unread(int round)
{
    long rss_before = agent_status_kb(&agent, "VmRSS");
    int fd = raw_connect(&agent);
    int sz = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* One Health request frame, built once. */
    uint8_t frame[128];
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    raw_send_request(sv[0], 1, "grpc.Health", "Check", NULL, 0);
    ssize_t flen = read(sv[1], frame, sizeof(frame));
    close(sv[0]);
    close(sv[1]);
    assert_true(flen > TTRPC_HEADER_SIZE);
    int sent = 0;
    size_t partial = 0; /* bytes of the current frame already sent */
    long deadline = now_ms() + 20000, stalled_since = 0;
    while (sent < 1000000 && now_ms() < deadline) {
        if (partial == 0) {
            struct ttrpc_header h = {.length = (uint32_t)flen - TTRPC_HEADER_SIZE,
                                     .stream_id = 2 * (uint32_t)sent + 1,
                                     .type = TTRPC_TYPE_REQUEST};
            ttrpc_header_encode(&h, frame);
        }
        ssize_t n = send(fd, frame + partial, (size_t)flen - partial, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!stalled_since)
                stalled_since = now_ms();
            else if (now_ms() - stalled_since > 2000)
                break; /* the agent stopped reading us: that is the backpressure */
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 100);
            continue;
        }
        assert_true(n > 0);
        stalled_since = 0;
        partial += (size_t)n;
        if (partial == (size_t)flen) {
            partial = 0;
            sent++;
        }
    }
    print_message("round %d: pipelined %d Health checks without reading a reply\n", round, sent);
    assert_true(sent >= 50000);
    /* The agent answers others meanwhile. */
    int other = raw_connect(&agent);
    raw_send_request(other, 1, "grpc.Health", "Check", NULL, 0);
    expect_status(other, 1, 0, NULL);
    close(other);
    long rss = agent_status_kb(&agent, "VmRSS");
    print_message("round %d: agent VmRSS %ld kB -> %ld kB\n", round, rss_before, rss);
    close(fd);
    assert_int_equal(agent_wait_fd_count(&agent, base_fds, 5000), base_fds);
#ifndef KA_TEST_SANITIZED
    /* ASan's quarantine (256 MB) holds every freed request here: native only. */
    if (rss - rss_before > UNREAD_BOUND_KB)
        fail_msg("agent RSS %ld kB with an unread client, was %ld kB", rss, rss_before);
#endif
}

static void test_client_never_reads(void **state)
{
    (void)state;
    pipeline_unread(1);
    /* The queue's memory stays with the allocator once the client goes (about
     * 25 MB for 8 MiB of queued replies, glibc does not trim it), but a second
     * client doing the same reuses it rather than growing the agent again. */
    long rss1 = agent_status_kb(&agent, "VmRSS");
    pipeline_unread(2);
    long rss2 = agent_status_kb(&agent, "VmRSS");
    print_message("after both rounds: agent VmRSS %ld kB -> %ld kB\n", rss1, rss2);
    base_rss = rss2 > base_rss ? rss2 : base_rss;
#ifndef KA_TEST_SANITIZED
    if (rss2 - rss1 > RSS_BOUND_KB)
        fail_msg("agent RSS grew from %ld kB to %ld kB on the second unread client", rss1, rss2);
#endif
    agent_ok();
}

/* 4 MiB to the stdin of a process that never reads: the WriteStdin calls park,
 * Health answers, killing the process fails them. */
static void test_stdin_never_read(void **state)
{
    (void)state;
    start_pause(ctr_unique_id("c-stdin"));
    int fd = raw_connect(&agent);
    static uint8_t chunk[32768];
    Grpc__WriteStreamRequest w = GRPC__WRITE_STREAM_REQUEST__INIT;
    w.container_id = (char *)ctr_unique_id("c-stdin");
    w.exec_id = (char *)"";
    w.data.data = chunk;
    w.data.len = sizeof(chunk);
    static uint8_t buf[sizeof(chunk) + 256];
    size_t n = grpc__write_stream_request__pack(&w, buf);
    enum { WRITES = 128 }; /* 4 MiB */
    for (uint32_t i = 0; i < WRITES; i++)
        raw_send_request(fd, 2 * i + 1, "grpc.AgentService", "WriteStdin", buf, n);
    raw_send_request(fd, 1001, "grpc.Health", "Check", NULL, 0);
    uint32_t sid;
    int code, answered = 0;
    for (;;) {
        assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
        if (sid == 1001)
            break;
        assert_int_equal(code, 0);
        answered++;
    }
    assert_true(answered < WRITES);
    int h = raw_connect(&agent);
    raw_send_request(h, 1, "grpc.Health", "Check", NULL, 0);
    expect_status(h, 1, 0, NULL);
    close(h);
    int status;
    expect(ctr_signal(&t, ctr_unique_id("c-stdin"), "", SIGKILL), 0, "kill");
    expect(ctr_wait(&t, ctr_unique_id("c-stdin"), "", &status), 0, "wait");
    assert_int_equal(status, 137);
    for (int i = answered; i < WRITES; i++) {
        assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
        assert_int_not_equal(code, 0);
    }
    close(fd);
    expect(ctr_remove(&t, ctr_unique_id("c-stdin")), 0, "remove");
    agent_ok();
}

/* Large writes to a process that never reads: the requests kept by the parked calls
 * count against the connection (TTRPC_HELD_MAX, 8 MiB), so past it the connection is
 * not read, and a Health behind the writes waits until the writes are answered. */
static void test_stdin_held_bound_pauses_connection(void **state)
{
    (void)state;
    const char *cid = ctr_unique_id("c-held");
    start_pause(cid);
    int fd = raw_connect(&agent);
    size_t len = 3u << 20;
    uint8_t *data = calloc(1, len);
    Grpc__WriteStreamRequest w = GRPC__WRITE_STREAM_REQUEST__INIT;
    w.container_id = (char *)cid;
    w.exec_id = (char *)"";
    w.data.data = data;
    w.data.len = len;
    uint8_t *buf = malloc(len + 256);
    size_t n = grpc__write_stream_request__pack(&w, buf);
    /* 9 MiB: the third passes the mark once it is kept. (A fourth would block this
     * sender, as the agent reads no more of it.) */
    enum { WRITES = 3 };
    for (uint32_t i = 0; i < WRITES; i++)
        raw_send_request(fd, 2 * i + 1, "grpc.AgentService", "WriteStdin", buf, n);
    raw_send_request(fd, 1001, "grpc.Health", "Check", NULL, 0);
    free(buf);
    free(data);
    /* Not a timing claim: nothing at all comes while the writes are held. */
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 1000), 0);
    /* Another connection is served meanwhile. */
    int h = raw_connect(&agent);
    raw_send_request(h, 1, "grpc.Health", "Check", NULL, 0);
    expect_status(h, 1, 0, NULL);
    close(h);
    /* The process goes: the held writes fail, and then the rest is read and answered. */
    int status;
    expect(ctr_signal(&t, cid, "", SIGKILL), 0, "kill");
    expect(ctr_wait(&t, cid, "", &status), 0, "wait");
    bool health = false;
    for (int i = 0; i < WRITES + 1; i++) {
        uint32_t sid;
        int code;
        assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
        if (sid == 1001) {
            assert_int_equal(code, 0);
            health = true;
        }
    }
    assert_true(health);
    close(fd);
    expect(ctr_remove(&t, cid), 0, "remove");
    agent_ok();
}

/* ---- resource limits ------------------------------------------------------------------------ */

static bool have_controller(const char *name)
{
    char p[128];
    snprintf(p, sizeof(p), "/sys/fs/cgroup/%s", name);
    if (access(p, F_OK) == 0)
        return true;
    FILE *f = fopen("/sys/fs/cgroup/cgroup.controllers", "r");
    char line[512] = "";
    bool ok = f && fgets(line, sizeof(line), f) && strstr(line, name);
    if (f)
        fclose(f);
    return ok;
}

static void test_forkbomb_with_pids_limit(void **state)
{
    (void)state;
    if (!have_controller("pids"))
        skip();
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "forkbomb", "4096"));
    Grpc__LinuxResources *r = spec_resources(s);
    r->pids = malloc(sizeof(*r->pids));
    grpc__linux_pids__init(r->pids);
    r->pids->limit = 32;
    assert_int_equal(ctr_run(&t, ctr_unique_id("c-forkbomb"), s, out, sizeof(out)), 0);
    spec_free(s);
    int forks = -1;
    char err_name[32] = "";
    assert_int_equal(sscanf(out, "forks=%d\nerrno=%31s", &forks, err_name), 2);
    assert_int_equal(forks, 31);
    assert_string_equal(err_name, "EAGAIN");
    agent_ok();
}

static void test_memhog_over_limit(void **state)
{
    (void)state;
    if (!have_controller("memory"))
        skip();
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "memhog", "256"));
    Grpc__LinuxResources *r = spec_resources(s);
    r->memory = malloc(sizeof(*r->memory));
    grpc__linux_memory__init(r->memory);
    r->memory->limit = 32 << 20;
    assert_int_equal(ctr_run(&t, ctr_unique_id("c-memhog"), s, out, sizeof(out)), 137);
    spec_free(s);
    assert_null(strstr(out, "done"));
    agent_ok();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_frames),
        cmocka_unit_test(test_reused_stream_id),
        cmocka_unit_test(test_unknown_service_and_method),
        cmocka_unit_test(test_bad_protobuf_payloads),
        cmocka_unit_test(test_bad_container_ids),
        cmocka_unit_test(test_unknown_containers_and_processes),
        cmocka_unit_test(test_calls_in_wrong_order),
        cmocka_unit_test(test_copyfile_escapes),
        cmocka_unit_test(test_storage_unknown_driver),
        cmocka_unit_test(test_mount_destination_escapes),
        cmocka_unit_test(test_rootfs_proc_or_dev_symlink),
        cmocka_unit_test(test_id_reuse_after_failed_create),
        cmocka_unit_test(test_disconnect_while_parked),
        cmocka_unit_test(test_client_never_reads),
        cmocka_unit_test(test_stdin_never_read),
        cmocka_unit_test(test_stdin_held_bound_pauses_connection),
        cmocka_unit_test(test_forkbomb_with_pids_limit),
        cmocka_unit_test(test_memhog_over_limit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
