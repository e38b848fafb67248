/* End of stream as every Kata runtime from 3.3 to 4.x reads it, against the real
 * agent (root, isolated) with the busybox + payload rootfs.
 *
 * The 3.3 runtime reads ReadStdout/ReadStderr until the agent answers an error; the
 * 4.x runtimes (runtime-rs container_io.rs, Go readProcessStream) stop at the first
 * empty success. The agent answers the first read at EOF with an empty success and
 * every later one with the error status, so both stop cleanly. Each test here reads
 * with both rules and asserts that both get every byte and stop the way their rule
 * expects: short-lived echo execs under load (50 at once, pipes and tty), a whole
 * lifecycle driven once with each rule, and the drain after exit (output a
 * background child writes shortly after the process exits still arrives; EOF comes
 * within a bound when it holds the pipe longer).
 *
 * Also the other forward-compatible wire behaviour of 4.x peers: a frame of a type
 * the agent does not take (the streaming Data frame, an unknown type) is skipped
 * and the connection stays usable. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"
#include "ttrpc/frame.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static struct agent_proc agent;
static struct ctr t;
static const char *rootfs;

/* Container ids carry our pid: cgroup paths follow the ids and are shared by every
 * agent on this host, so two runs of this test at once must not meet there. */
static const char *cid(const char *name)
{
    static struct {
        const char *name;
        char id[64];
    } ids[16];
    for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
        if (ids[i].name && strcmp(ids[i].name, name) == 0)
            return ids[i].id;
        if (!ids[i].name) {
            ids[i].name = name;
            snprintf(ids[i].id, sizeof(ids[i].id), "eof-%s-%d", name, (int)getpid());
            return ids[i].id;
        }
    }
    fail_msg("too many container names");
    return NULL;
}

/* How a runtime reads a stream to its end. */
enum rule {
    RULE_UNTIL_ERROR, /* 3.3: an error status ends it; an empty success is one more turn */
    RULE_UNTIL_EMPTY, /* 4.x: an empty success ends it; an error is a failed copy */
};

static const char *rule_name(enum rule r)
{
    return r == RULE_UNTIL_ERROR ? "until-error (3.3)" : "until-empty (4.x)";
}

/* One stream read to its end by the rule. Returns NULL and fills buf (NUL-ended),
 * or a description of what went wrong. No cmocka assertion here: it runs on the
 * load test's threads. */
static const char *read_by_rule(struct ctr *c, const char *cid_, const char *eid, bool err_stream,
                                enum rule rule, char *buf, size_t size, char *why, size_t why_size)
{
    size_t n = 0;
    int empties = 0;
    for (int calls = 0;; calls++) {
        if (calls > 10000) {
            snprintf(why, why_size, "no end after %d reads", calls);
            return why;
        }
        size_t got;
        int rc = ctr_read(c, cid_, eid, err_stream, buf + n, size - 1 - n, &got);
        if (rc != 0) {
            buf[n] = '\0';
            if (rule == RULE_UNTIL_EMPTY) {
                /* What the 4.x runtime takes for a failed copy. */
                snprintf(why, why_size, "error %d (%.100s) before an empty read", rc, c->msg);
                return why;
            }
            return NULL;
        }
        if (got == 0) {
            if (rule == RULE_UNTIL_EMPTY) {
                buf[n] = '\0';
                return NULL;
            }
            if (++empties > 1) { /* the 3.3 runtime's copy loop would spin */
                snprintf(why, why_size, "%d empty successes in a row", empties);
                return why;
            }
        }
        n += got;
        if (n + 1 >= size) {
            snprintf(why, why_size, "more output than %zu bytes", size);
            return why;
        }
    }
}

/* ---- short-lived execs under load ------------------------------------------------ */

#define LOAD_EXECS 50

struct load_job {
    int index;
    bool tty;
    enum rule rule;
    const char *cid;
    char eid[32];
    struct ctr c;
    Grpc__Process *proc;
    pthread_barrier_t *start;
    char out[256];
    char err[256];
    int status;
    char fail[512];
};

static void *load_worker(void *arg)
{
    struct load_job *j = arg;
    char why[256];
    pthread_barrier_wait(j->start);
    if (ctr_exec(&j->c, j->cid, j->eid, j->proc) != 0) {
        snprintf(j->fail, sizeof(j->fail), "exec: %.200s", j->c.msg);
        return NULL;
    }
    /* As the runtimes do: the output streams to their end, then WaitProcess. */
    const char *bad = read_by_rule(&j->c, j->cid, j->eid, false, j->rule, j->out, sizeof(j->out),
                                   why, sizeof(why));
    if (bad) {
        snprintf(j->fail, sizeof(j->fail), "stdout: %s", bad);
        return NULL;
    }
    /* With a tty both calls read the one master: ReadStderr is told EOF on its own. */
    bad = read_by_rule(&j->c, j->cid, j->eid, true, j->rule, j->err, sizeof(j->err), why,
                       sizeof(why));
    if (bad) {
        snprintf(j->fail, sizeof(j->fail), "stderr: %s", bad);
        return NULL;
    }
    if (ctr_wait(&j->c, j->cid, j->eid, &j->status) != 0)
        snprintf(j->fail, sizeof(j->fail), "wait: %.200s", j->c.msg);
    return NULL;
}

static void execs_under_load(const char *name, bool tty)
{
    const char *c_id = cid(name);
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    if (ctr_create(&t, c_id, s) != 0 || ctr_start(&t, c_id) != 0)
        fail_msg("container %s: %s", c_id, t.msg);
    spec_free(s);

    static struct load_job jobs[LOAD_EXECS];
    pthread_t threads[LOAD_EXECS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, LOAD_EXECS);
    for (int i = 0; i < LOAD_EXECS; i++) {
        struct load_job *j = &jobs[i];
        memset(j, 0, sizeof(*j));
        j->index = i;
        j->tty = tty;
        j->rule = i % 2 ? RULE_UNTIL_EMPTY : RULE_UNTIL_ERROR;
        j->cid = c_id;
        j->start = &start;
        snprintf(j->eid, sizeof(j->eid), "e%d", i);
        char word[32], err_word[32];
        snprintf(word, sizeof(word), "out-%d", i);
        snprintf(err_word, sizeof(err_word), "err-%d", i);
        /* A short-lived echo; without a tty, stderr too (each stream on its own). */
        j->proc = tty ? process_new(ARGS("ka-payload", "echo", word))
                      : process_new(ARGS("sh", "-c", "echo $0; echo $1 >&2", word, err_word));
        j->proc->terminal = tty;
        ctr_open(&j->c, &agent);
    }
    for (int i = 0; i < LOAD_EXECS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, load_worker, &jobs[i]), 0);
    for (int i = 0; i < LOAD_EXECS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);

    int failures = 0;
    for (int i = 0; i < LOAD_EXECS; i++) {
        struct load_job *j = &jobs[i];
        char want_out[64], want_err[64];
        snprintf(want_out, sizeof(want_out), tty ? "out-%d\r\n" : "out-%d\n", i);
        snprintf(want_err, sizeof(want_err), tty ? "" : "err-%d\n", i);
        const char *fail = j->fail[0] ? j->fail : NULL;
        if (!fail && strcmp(j->out, want_out) != 0)
            fail = "stdout differs";
        if (!fail && strcmp(j->err, want_err) != 0)
            fail = "stderr differs";
        if (!fail && j->status != 0)
            fail = "non-zero exit status";
        if (fail) {
            fprintf(stderr, "exec %s (%s%s): %s (stdout \"%s\", stderr \"%s\", status %d)\n",
                    j->eid, rule_name(j->rule), tty ? ", tty" : "", fail, j->out, j->err,
                    j->status);
            failures++;
        }
        ctr_close(&j->c);
        process_free(j->proc);
    }
    assert_int_equal(failures, 0);
    assert_int_equal(ctr_signal(&t, c_id, "", 9), 0);
    int status;
    assert_int_equal(ctr_wait(&t, c_id, "", &status), 0);
    assert_int_equal(ctr_remove(&t, c_id), 0);
}

/* 50 echo execs at once, half read until an error, half until an empty read. */
static void test_echo_execs_under_load_pipes(void **state)
{
    (void)state;
    execs_under_load("load-pipes", false);
}

static void test_echo_execs_under_load_tty(void **state)
{
    (void)state;
    execs_under_load("load-tty", true);
}

/* ---- a lifecycle, once with each rule --------------------------------------------- */

static void lifecycle(enum rule rule, const char *name)
{
    const char *c_id = cid(name);
    char out[4096], why[256];
    const char *bad;
    Grpc__Spec *s =
        spec_new(rootfs, ARGS("sh", "-c", "echo init-out; echo init-err >&2; read x; exit 0"));
    ctr_create_start(&t, c_id, s);

    Grpc__Process *p = process_new(
        ARGS("sh", "-c", "echo exec-out; ka-payload write-bytes 100000 >&2 2>/dev/null"));
    assert_int_equal(ctr_exec(&t, c_id, "e1", p), 0);
    process_free(p);
    if ((bad = read_by_rule(&t, c_id, "e1", false, rule, out, sizeof(out), why, sizeof(why))))
        fail_msg("%s: exec stdout: %s", rule_name(rule), bad);
    assert_string_equal(out, "exec-out\n");
    static char big[200000];
    if ((bad = read_by_rule(&t, c_id, "e1", true, rule, big, sizeof(big), why, sizeof(why))))
        fail_msg("%s: exec stderr: %s", rule_name(rule), bad);
    assert_int_equal(strlen(big), 100000);
    int status = -1;
    assert_int_equal(ctr_wait(&t, c_id, "e1", &status), 0);
    assert_int_equal(status, 0);

    /* The init ends when its stdin does. */
    assert_int_equal(ctr_close_stdin(&t, c_id, ""), 0);
    if ((bad = read_by_rule(&t, c_id, "", false, rule, out, sizeof(out), why, sizeof(why))))
        fail_msg("%s: init stdout: %s", rule_name(rule), bad);
    assert_string_equal(out, "init-out\n");
    if ((bad = read_by_rule(&t, c_id, "", true, rule, out, sizeof(out), why, sizeof(why))))
        fail_msg("%s: init stderr: %s", rule_name(rule), bad);
    assert_string_equal(out, "init-err\n");
    assert_int_equal(ctr_wait(&t, c_id, "", &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(ctr_remove(&t, c_id), 0);
}

static void test_lifecycle_with_each_rule(void **state)
{
    (void)state;
    lifecycle(RULE_UNTIL_ERROR, "life-33");
    lifecycle(RULE_UNTIL_EMPTY, "life-4x");
}

/* ---- drain after exit ----------------------------------------------------------- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The exec's shell exits at once; a background child of it keeps both pipes and
 * writes 150 ms later. The agent waits up to 500 ms after the exit for such
 * writers, so the late lines arrive (with either rule) before EOF. (A tty has no
 * such case: the exit of the session leader hangs the pty up, and the master gives
 * what was written, then EIO, which the load test above covers.) */
static void test_drain_after_exit(void **state)
{
    (void)state;
    const char *c_id = cid("drain");
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    ctr_create_start(&t, c_id, s);
    for (int r = 0; r < 2; r++) {
        enum rule rule = r ? RULE_UNTIL_EMPTY : RULE_UNTIL_ERROR;
        char eid[16], out[256], err[256], why[256];
        const char *bad;
        snprintf(eid, sizeof(eid), "late-%d", r);
        Grpc__Process *p = process_new(
            ARGS("sh", "-c",
                 "echo a; echo A >&2; (ka-payload sleep 0.15; echo b; echo B >&2) & exit 0"));
        assert_int_equal(ctr_exec(&t, c_id, eid, p), 0);
        process_free(p);
        if ((bad = read_by_rule(&t, c_id, eid, false, rule, out, sizeof(out), why, sizeof(why))))
            fail_msg("%s: stdout: %s", rule_name(rule), bad);
        if ((bad = read_by_rule(&t, c_id, eid, true, rule, err, sizeof(err), why, sizeof(why))))
            fail_msg("%s: stderr: %s", rule_name(rule), bad);
        assert_string_equal(out, "a\nb\n");
        assert_string_equal(err, "A\nB\n");
        int status = -1;
        assert_int_equal(ctr_wait(&t, c_id, eid, &status), 0);
        assert_int_equal(status, 0);
    }
    assert_int_equal(ctr_signal(&t, c_id, "", 9), 0);
    int status;
    assert_int_equal(ctr_wait(&t, c_id, "", &status), 0);
    assert_int_equal(ctr_remove(&t, c_id), 0);
}

/* A background child that holds the pipes for 5 s and never writes: the waiting is
 * bounded, EOF comes about 500 ms after the exit, not when the child ends. */
static void test_drain_is_bounded(void **state)
{
    (void)state;
    const char *c_id = cid("bound");
    Grpc__Spec *s = spec_new(rootfs, ARGS("ka-payload", "pause"));
    ctr_create_start(&t, c_id, s);
    for (int r = 0; r < 2; r++) {
        enum rule rule = r ? RULE_UNTIL_EMPTY : RULE_UNTIL_ERROR;
        char eid[16], out[256], why[256];
        const char *bad;
        snprintf(eid, sizeof(eid), "hold-%d", r);
        Grpc__Process *p = process_new(ARGS("sh", "-c", "echo start; ka-payload sleep 5 & exit 0"));
        double t0 = mono_s();
        assert_int_equal(ctr_exec(&t, c_id, eid, p), 0);
        process_free(p);
        if ((bad = read_by_rule(&t, c_id, eid, false, rule, out, sizeof(out), why, sizeof(why))))
            fail_msg("%s: stdout: %s", rule_name(rule), bad);
        if ((bad = read_by_rule(&t, c_id, eid, true, rule, out + strlen(out),
                                sizeof(out) - strlen(out), why, sizeof(why))))
            fail_msg("%s: stderr: %s", rule_name(rule), bad);
        double took = mono_s() - t0;
        assert_string_equal(out, "start\n");
        if (took > 3.0)
            fail_msg("%s: EOF after %.2f s: the drain is not bounded", rule_name(rule), took);
        int status = -1;
        assert_int_equal(ctr_wait(&t, c_id, eid, &status), 0);
        assert_int_equal(status, 0);
    }
    assert_int_equal(ctr_signal(&t, c_id, "", 9), 0);
    int status;
    assert_int_equal(ctr_wait(&t, c_id, "", &status), 0);
    assert_int_equal(ctr_remove(&t, c_id), 0);
}

/* ---- ttrpc forward compatibility ------------------------------------------------ */

/* Frames of a type the agent does not take, 1 MiB each (the streaming Data frame a
 * newer runtime may send, a type no ttrpc has yet), then a Health request on the
 * same connection: it is answered; the skipped frames are not. */
static void test_unknown_frame_types_skipped(void **state)
{
    (void)state;
    const uint32_t size = 1u << 20;
    uint8_t *junk = malloc(size);
    assert_non_null(junk);
    memset(junk, 0x5a, size);
    int fd = raw_connect(&agent);
    raw_send_frame(fd, 1, TTRPC_TYPE_DATA, 0, junk, size);
    raw_send_frame(fd, 3, 9, 0, junk, size);
    raw_send_frame(fd, 5, 0xff, 0, NULL, 0);
    raw_send_request(fd, 7, "grpc.Health", "Check", NULL, 0);
    uint32_t sid;
    int code;
    assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
    assert_int_equal(sid, 7);
    assert_int_equal(code, 0);
    close(fd);
    free(junk);
}

static int group_setup(void **state)
{
    (void)state;
    rootfs = getenv("KA_TEST_ROOTFS");
    if (!rootfs || access(rootfs, F_OK) != 0) {
        fprintf(stderr, "KA_TEST_ROOTFS (%s) is missing\n", rootfs ? rootfs : "unset");
        return -1;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "container tests need root\n");
        return -1;
    }
    agent_start_isolated(&agent, NULL);
    ctr_open(&t, &agent);
    if (ctr_create_sandbox(&t, "kata-sandbox") != 0) {
        fprintf(stderr, "CreateSandbox: %s\n", t.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ctr_close(&t);
    agent_stop(&agent);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_execs_under_load_pipes),
        cmocka_unit_test(test_echo_execs_under_load_tty),
        cmocka_unit_test(test_lifecycle_with_each_rule),
        cmocka_unit_test(test_drain_after_exit),
        cmocka_unit_test(test_drain_is_bounded),
        cmocka_unit_test(test_unknown_frame_types_skipped),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
