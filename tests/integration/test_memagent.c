/* GetDiagnosticData and the mem-agent RPCs through the real agent. Root.
 *
 * The termination log is set up as Kubernetes + the Kata runtime do it: the
 * runtime copies the (empty) file into the shared directory (CopyFile), the spec
 * binds it on /dev/termination-log and names it in the
 * io.kubernetes.container.terminationMessagePath annotation; the container
 * writes it, GetDiagnosticData reads it back.
 *
 * The mem-agent runs against this host's kernel: compaction really runs (the
 * host's /proc/sys/vm/compact_memory, a second or so); memcg reclaim needs cgroup
 * v2's memory controller, which this host keeps on v1, so that part is shown on a
 * fake tree in unit/test_memagent and here only that the agent says so. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define SHARED "/run/kata-containers/shared/containers/"
#define TERM_DEST "/dev/termination-log"

static const char *rootfs;

static void add_annotation(Grpc__Spec *s, const char *key, const char *value)
{
    Grpc__Spec__AnnotationsEntry *a = malloc(sizeof(*a));
    grpc__spec__annotations_entry__init(a);
    a->key = xstrdup(key);
    a->value = xstrdup(value);
    s->annotations = realloc(s->annotations, (s->n_annotations + 1) * sizeof(*s->annotations));
    s->annotations[s->n_annotations++] = a;
}

static int copy_file(struct ctr *t, const char *path, uint32_t mode, const void *data, size_t len)
{
    return ctr_copy_file(t, path, mode, (int64_t)len, 0, 0, 0, data, len);
}

/* GetDiagnosticData; returns the status, *data (malloc'ed) on success. */
static int diag(struct ctr *t, const char *type, const char *id, char **data)
{
    Grpc__GetDiagnosticDataRequest req = GRPC__GET_DIAGNOSTIC_DATA_REQUEST__INIT;
    req.log_type = (char *)type;
    req.container_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    int rc = ctr_call(t, "GetDiagnosticData", &req.base,
                      &grpc__get_diagnostic_data_response__descriptor, &resp);
    if (rc == 0 && data)
        *data = xstrdup(((Grpc__GetDiagnosticDataResponse *)resp)->data);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

/* A container that runs `script` with the termination log bound at TERM_DEST
 * from `source` (annotated unless annotate is false). Runs it to its end. */
static void run_with_log(struct ctr *t, const char *id, const char *source, bool annotate,
                         const char *script)
{
    Grpc__Spec *s = spec_new(rootfs, ARGS("sh", "-c", script));
    spec_add_bind(s, TERM_DEST, source, "rw");
    if (annotate)
        add_annotation(s, "io.kubernetes.container.terminationMessagePath", TERM_DEST);
    add_annotation(s, "io.kubernetes.cri.container-type", "container");
    assert_int_equal(ctr_create(t, id, s), 0);
    spec_free(s);
    assert_int_equal(ctr_start(t, id), 0);
    int status = -1;
    assert_int_equal(ctr_wait(t, id, "", &status), 0);
    assert_int_equal(status, 0);
}

/* The runtime's part first: an empty log copied into the shared directory, named
 * as the runtime names it (its path in src); then run_with_log. */
static void run_with_new_log(struct ctr *t, const char *id, bool annotate, const char *script,
                             char *src, size_t size)
{
    snprintf(src, size, SHARED "%s-0123abcd-termination-log", id);
    assert_int_equal(copy_file(t, src, S_IFREG | 0666, NULL, 0), 0);
    run_with_log(t, id, src, annotate, script);
}

static void test_termination_log(void **state)
{
    (void)state;
    struct agent_proc agent;
    struct ctr t;
    assert_int_equal(ctr_suite_setup(&agent, &t, NULL, "kata-sandbox", &rootfs), 0);

    char src[256];
    run_with_new_log(&t, ctr_unique_id("term"), true,
                     "printf 'exit reason: %s\\n' \"done\" > " TERM_DEST, src, sizeof(src));
    char *data = NULL;
    assert_int_equal(diag(&t, "termination_log", ctr_unique_id("term"), &data), 0);
    assert_string_equal(data, "exit reason: done\n");
    free(data);

    /* Other log types are refused; the container is looked up after the type. */
    assert_int_equal(diag(&t, "console", ctr_unique_id("term"), NULL), KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(t.msg, "unsupported diagnostic log_type"));
    assert_int_equal(diag(&t, "", "nope", NULL), KA_STATUS_INVALID_ARGUMENT);
    assert_int_equal(diag(&t, "termination_log", "nope", NULL), KA_STATUS_NOT_FOUND);

    /* Without the annotation there is no log to find (upstream: INTERNAL). */
    run_with_new_log(&t, ctr_unique_id("plain"), false, "echo hi > " TERM_DEST, src, sizeof(src));
    assert_int_equal(diag(&t, "termination_log", ctr_unique_id("plain"), NULL), KA_STATUS_INTERNAL);
    assert_non_null(strstr(t.msg, "terminationMessagePath"));

    assert_int_equal(ctr_remove(&t, ctr_unique_id("term")), 0);
    assert_int_equal(ctr_remove(&t, ctr_unique_id("plain")), 0);
    ctr_suite_teardown(&agent, &t);
}

/* What a container writes is bounded and made valid UTF-8; a source that is not a
 * regular file is refused, not followed. */
static void test_termination_log_hostile(void **state)
{
    (void)state;
    struct agent_proc agent;
    struct ctr t;
    assert_int_equal(ctr_suite_setup(&agent, &t, NULL, "kata-sandbox", &rootfs), 0);

    /* 1 MiB of 'x': the answer is Kubernetes' 4 KiB, not the whole file. */
    char src[256];
    run_with_new_log(&t, ctr_unique_id("big"), true,
                     "dd if=/dev/zero bs=1024 count=1024 2>/dev/null | tr '\\0' x > " TERM_DEST,
                     src, sizeof(src));
    char *data = NULL;
    assert_int_equal(diag(&t, "termination_log", ctr_unique_id("big"), &data), 0);
    assert_int_equal(strlen(data), 4096);
    assert_int_equal(strspn(data, "x"), 4096);
    free(data);

    /* Bytes that are not UTF-8 would make the runtime's protobuf decoder reject the
     * whole answer: each invalid sequence comes back as U+FFFD. */
    run_with_new_log(&t, ctr_unique_id("bin"), true, "printf 'a\\377b\\303' > " TERM_DEST, src,
                     sizeof(src));
    assert_int_equal(diag(&t, "termination_log", ctr_unique_id("bin"), &data), 0);
    assert_string_equal(data, "a\xEF\xBF\xBD"
                              "b\xEF\xBF\xBD");
    free(data);

    /* The source replaced by a symlink to a file of the agent (the shadow file
     * here): refused, nothing of the target comes back. */
    char secret[256];
    snprintf(secret, sizeof(secret), SHARED "%s-secret", ctr_unique_id("link"));
    assert_int_equal(copy_file(&t, secret, S_IFREG | 0600, "top secret", 10), 0);
    run_with_new_log(&t, ctr_unique_id("link"), true, "echo fine > " TERM_DEST, src, sizeof(src));
    char host_path[PATH_MAX];
    snprintf(host_path, sizeof(host_path), "/proc/%d/root%s", (int)agent.pid, src);
    assert_int_equal(unlink(host_path), 0);
    assert_int_equal(symlink(secret, host_path), 0);
    assert_int_not_equal(diag(&t, "termination_log", ctr_unique_id("link"), &data), 0);
    assert_null(strstr(t.msg, "top secret"));
    /* A fifo there would block a plain read forever: refused at once. */
    assert_int_equal(unlink(host_path), 0);
    assert_int_equal(mkfifo(host_path, 0666), 0);
    assert_int_not_equal(diag(&t, "termination_log", ctr_unique_id("link"), NULL), 0);
    assert_non_null(strstr(t.msg, "not a regular file"));
    /* Removed: reads as empty, as upstream (not written yet). */
    assert_int_equal(unlink(host_path), 0);
    assert_int_equal(diag(&t, "termination_log", ctr_unique_id("link"), &data), 0);
    assert_string_equal(data, "");
    free(data);

    /* A directory on the way swapped for a symlink (to a copy holding other text):
     * no component is followed, so that is refused too. */
    char dir[200], real[200], host_dir[PATH_MAX], host_real[PATH_MAX];
    snprintf(dir, sizeof(dir), SHARED "%s-d", ctr_unique_id("dirlink"));
    snprintf(src, sizeof(src), "%s/termination-log", dir);
    assert_int_equal(copy_file(&t, dir, S_IFDIR | 0755, NULL, 0), 0);
    assert_int_equal(copy_file(&t, src, S_IFREG | 0666, NULL, 0), 0);
    run_with_log(&t, ctr_unique_id("dirlink"), src, true, "echo from-the-container > " TERM_DEST);
    assert_int_equal(diag(&t, "termination_log", ctr_unique_id("dirlink"), &data), 0);
    assert_string_equal(data, "from-the-container\n");
    free(data);
    snprintf(real, sizeof(real), SHARED "%s-elsewhere", ctr_unique_id("dirlink"));
    snprintf(host_dir, sizeof(host_dir), "/proc/%d/root%s", (int)agent.pid, dir);
    snprintf(host_real, sizeof(host_real), "/proc/%d/root%s", (int)agent.pid, real);
    assert_int_equal(rename(host_dir, host_real), 0);
    assert_int_equal(symlink(real, host_dir), 0);
    assert_int_not_equal(diag(&t, "termination_log", ctr_unique_id("dirlink"), &data), 0);
    assert_non_null(strstr(t.msg, "symlink"));
    assert_true(agent_alive(&agent));

    assert_int_equal(ctr_remove(&t, ctr_unique_id("dirlink")), 0);
    assert_int_equal(ctr_remove(&t, ctr_unique_id("big")), 0);
    assert_int_equal(ctr_remove(&t, ctr_unique_id("bin")), 0);
    assert_int_equal(ctr_remove(&t, ctr_unique_id("link")), 0);
    ctr_suite_teardown(&agent, &t);
}

static int memcg_set(struct ctr *t, bool set_disabled, bool disabled, int swappiness_max)
{
    Grpc__MemAgentMemcgConfig req = GRPC__MEM_AGENT_MEMCG_CONFIG__INIT;
    if (set_disabled) {
        req.disabled_opt_case = GRPC__MEM_AGENT_MEMCG_CONFIG__DISABLED_OPT_DISABLED;
        req.disabled = disabled;
    }
    if (swappiness_max >= 0) {
        req.swappiness_max_opt_case =
            GRPC__MEM_AGENT_MEMCG_CONFIG__SWAPPINESS_MAX_OPT_SWAPPINESS_MAX;
        req.swappiness_max = (uint32_t)swappiness_max;
    }
    return ctr_call(t, "MemAgentMemcgSet", &req.base, NULL, NULL);
}

static int compact_set(struct ctr *t, int64_t period_secs)
{
    Grpc__MemAgentCompactConfig req = GRPC__MEM_AGENT_COMPACT_CONFIG__INIT;
    if (period_secs >= 0) {
        req.period_secs_opt_case = GRPC__MEM_AGENT_COMPACT_CONFIG__PERIOD_SECS_OPT_PERIOD_SECS;
        req.period_secs = (uint64_t)period_secs;
    }
    return ctr_call(t, "MemAgentCompactSet", &req.base, NULL, NULL);
}

static bool log_has(const struct agent_proc *p, const char *text)
{
    FILE *f = fopen(p->log, "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static bool wait_log(const struct agent_proc *p, const char *text, int ms)
{
    for (int i = 0; i < ms / 50; i++) {
        if (log_has(p, text))
            return true;
        usleep(50000);
    }
    return log_has(p, text);
}

/* Without agent.mem_agent_enable both RPCs answer as upstream's agent does. */
static void test_mem_agent_off(void **state)
{
    (void)state;
    struct agent_proc agent;
    struct ctr t;
    agent_start_isolated(&agent, NULL);
    ctr_open(&t, &agent);
    assert_int_equal(memcg_set(&t, true, true, -1), KA_STATUS_INTERNAL);
    assert_string_equal(t.msg, "mem-agent is disabled");
    assert_int_equal(compact_set(&t, 60), KA_STATUS_INTERNAL);
    assert_string_equal(t.msg, "mem-agent is disabled");
    /* Still not UNIMPLEMENTED for what upstream leaves so. */
    assert_int_equal(ctr_call(&t, "ResizeVolume",
                              &(Grpc__ResizeVolumeRequest)GRPC__RESIZE_VOLUME_REQUEST__INIT.base,
                              NULL, NULL),
                     KA_STATUS_UNIMPLEMENTED);
    assert_false(log_has(&agent, "mem-agent started"));
    ctr_suite_teardown(&agent, &t);
}

static void test_mem_agent_live_config(void **state)
{
    (void)state;
    struct agent_proc agent;
    struct ctr t;
    agent_start_isolated(&agent, "agent.mem_agent_enable=1 agent.mem_agent_compact_disable=1");
    ctr_open(&t, &agent);
    assert_true(wait_log(&agent, "mem-agent started", 2000));
    /* This host keeps the memory controller on cgroup v1: the agent says so. */
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0)
        assert_true(log_has(&agent, "memcg reclaim needs memory.reclaim"));

    assert_int_equal(memcg_set(&t, true, true, -1), 0);
    assert_true(wait_log(&agent, "memcg disabled, period 600s", 2000));
    assert_int_equal(memcg_set(&t, true, false, 80), 0);
    assert_true(wait_log(&agent, "memcg enabled, period 600s", 2000));
    /* Out of range: refused, nothing changed, the agent goes on. */
    assert_int_equal(memcg_set(&t, true, true, 300), KA_STATUS_INVALID_ARGUMENT);
    assert_int_equal(compact_set(&t, 0), KA_STATUS_INVALID_ARGUMENT);
    /* Only the fields set change: an empty request is fine and changes nothing. */
    assert_int_equal(compact_set(&t, -1), 0);
    assert_false(log_has(&agent, "compact enabled"));
    assert_int_equal(memcg_set(&t, false, false, -1), 0);
    assert_true(agent_alive(&agent));
    ctr_suite_teardown(&agent, &t);
}

static uint64_t vmstat(const char *key)
{
    FILE *f = fopen("/proc/vmstat", "r");
    assert_non_null(f);
    char k[64];
    unsigned long long v, found = 0;
    while (fscanf(f, "%63s %llu", k, &v) == 2)
        if (strcmp(k, key) == 0)
            found = v;
    fclose(f);
    return found;
}

/* Forced every period (compact_force_times=0), the first period at start: the
 * agent's child writes this kernel's compact_memory and the kernel compacts. The
 * RPCs keep answering meanwhile (the write never runs on the loop). */
static void test_compaction_runs(void **state)
{
    (void)state;
    if (access("/proc/sys/vm/compact_memory", W_OK) != 0) {
        fprintf(stderr, "no /proc/sys/vm/compact_memory here: skipped\n");
        skip();
    }
    uint64_t scanned = vmstat("compact_migrate_scanned") + vmstat("compact_free_scanned");
    struct agent_proc agent;
    struct ctr t;
    agent_start_isolated(&agent, "agent.mem_agent_enable=1 agent.mem_agent_memcg_disable=1 "
                                 "agent.mem_agent_compact_force_times=0 "
                                 "agent.mem_agent_compact_sec_max=20 "
                                 "agent.mem_agent_compact_period_psi_percent_limit=255 "
                                 "agent.mem_agent_compact_psi_percent_limit=255");
    ctr_open(&t, &agent);
    assert_true(wait_log(&agent, "compaction started", 5000));
    assert_int_equal(compact_set(&t, 3600), 0); /* answered while it may still run */
    assert_true(wait_log(&agent, "compaction done", 30000));
    assert_true(log_has(&agent, "\"exit_code\":\"0\""));
    uint64_t after = vmstat("compact_migrate_scanned") + vmstat("compact_free_scanned");
    fprintf(stderr, "compaction scanned %llu pages\n", (unsigned long long)(after - scanned));
    assert_true(after >= scanned);
    ctr_suite_teardown(&agent, &t);
}

static int group_setup(void **state)
{
    (void)state;
    rootfs = ctr_test_rootfs();
    return rootfs ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_termination_log), cmocka_unit_test(test_termination_log_hostile),
        cmocka_unit_test(test_mem_agent_off),   cmocka_unit_test(test_mem_agent_live_config),
        cmocka_unit_test(test_compaction_runs),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
