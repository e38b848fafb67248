/* CopyFile and the guest operations (SetGuestDateTime, ReseedRandomDev,
 * MemHotplugByProbe, AddSwap/AddSwapPath, GetIPTables/SetIPTables,
 * GetVolumeStats, GetMetrics) through the real agent. Root.
 *
 * The agent runs isolated (own mount namespace, private /run): what CopyFile
 * writes is read back through /proc/<agent>/root. Nothing here changes the host:
 * the clock is only sent invalid values, swapon only paths it refuses, iptables
 * only fake helpers from a PATH the test gives a second agent. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "csi.pb-c.h"
#include "ctr.h"

#define SHARED "/run/kata-containers/shared/containers/"

static struct agent_proc agent;
static struct ctr t;
static char outside[64];

static int setup(void **state)
{
    (void)state;
    agent_start_isolated(&agent, NULL);
    ctr_open(&t, &agent);
    snprintf(outside, sizeof(outside), "/tmp/ka-it-out-XXXXXX");
    assert_non_null(mkdtemp(outside));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ctr_close(&t);
    agent_stop(&agent);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", outside);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* The agent's view of a guest path. */
static void in_agent(char *buf, size_t size, const char *path)
{
    snprintf(buf, size, "/proc/%d/root%s", (int)agent.pid, path);
}

/* CopyFile as the runtime sends it for a file of uid 1000, gid 2000. */
static int copy(const char *path, uint32_t mode, int64_t size, int64_t off, const void *data,
                size_t len)
{
    return ctr_copy_file(&t, path, mode, size, off, 1000, 2000, data, len);
}

static int count_entries(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void test_copyfile_tree(void **state)
{
    (void)state;
    char p[PATH_MAX];
    assert_int_equal(copy(SHARED "c1-abc-vol", S_IFDIR | 0750, 0, 0, NULL, 0), 0);
    /* 2.5 MiB in the runtime's 1 MiB chunks. */
    size_t size = (5u << 20) / 2, chunk = 1u << 20;
    uint8_t *data = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 11));
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        assert_int_equal(copy(SHARED "c1-abc-vol/sub/data.bin", S_IFREG | 0640, (int64_t)size,
                              (int64_t)off, data + off, n),
                         0);
    }
    in_agent(p, sizeof(p), SHARED "c1-abc-vol/sub/data.bin");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, (off_t)size);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_gid, 2000);
    uint8_t *back = malloc(size);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, size), (ssize_t)size);
    close(fd);
    assert_memory_equal(back, data, size);
    free(back);
    free(data);
    in_agent(p, sizeof(p), SHARED "c1-abc-vol/sub/data.bin.tmp");
    assert_int_equal(stat(p, &st), -1);

    in_agent(p, sizeof(p), SHARED "c1-abc-vol");
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(st.st_uid, 1000);

    assert_int_equal(copy(SHARED "c1-abc-vol/empty", S_IFREG | 0600, 0, 0, NULL, 0), 0);
    in_agent(p, sizeof(p), SHARED "c1-abc-vol/empty");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    assert_int_equal(copy(SHARED "c1-abc-vol/link", S_IFLNK | 0777, 0, 0, "sub/data.bin", 12), 0);
    in_agent(p, sizeof(p), SHARED "c1-abc-vol/link");
    char target[64] = {0};
    assert_int_equal(readlink(p, target, sizeof(target) - 1), 12);
    assert_string_equal(target, "sub/data.bin");
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_gid, 2000);
}

static void expect(int code, int want, const char *what)
{
    if (code != want)
        fail_msg("%s: code %d (%s), want %d", what, code, t.msg, want);
}

static void test_copyfile_escapes(void **state)
{
    (void)state;
    char p[PATH_MAX], q[PATH_MAX];
    /* Symlinks the host may create with CopyFile itself, then try to write through. */
    expect(copy(SHARED "c2/out", S_IFLNK | 0777, 0, 0, outside, strlen(outside)), 0, "symlink out");
    expect(copy(SHARED "c2/root", S_IFLNK | 0777, 0, 0, "/", 1), 0, "symlink /");
    expect(copy(SHARED "c2/out/f", S_IFREG | 0644, 1, 0, "x", 1), 3, "through a symlinked parent");
    expect(copy(SHARED "c2/out/d", S_IFDIR | 0755, 0, 0, NULL, 0), 3, "dir through a symlink");
    expect(copy(SHARED "c2/out/l", S_IFLNK | 0777, 0, 0, "x", 1), 3, "symlink through a symlink");
    snprintf(p, sizeof(p), SHARED "c2/root%s/f", outside);
    expect(copy(p, S_IFREG | 0644, 1, 0, "x", 1), 3, "absolute symlink in the middle");
    snprintf(p, sizeof(p), SHARED "c2/../../../../..%s/f", outside);
    expect(copy(p, S_IFREG | 0644, 1, 0, "x", 1), 3, "..");
    assert_non_null(strstr(t.msg, ".."));
    snprintf(p, sizeof(p), "%s/f", outside);
    expect(copy(p, S_IFREG | 0644, 1, 0, "x", 1), 3, "outside the prefix");
    expect(copy("/run/kata-containers/shared/containers-evil/x", S_IFREG | 0644, 1, 0, "x", 1), 3,
           "prefix look-alike");
    assert_non_null(strstr(t.msg, "containers-evil/x"));
    in_agent(q, sizeof(q), "/run/kata-containers/shared/containers-evil");
    assert_int_equal(access(q, F_OK), -1);
    expect(copy("/run/kata-containers/x", S_IFREG | 0644, 1, 0, "x", 1), 3, "/run/kata-containers");
    /* Oversize data, offsets out of range, other file types. */
    size_t big = (1u << 20) + 1;
    uint8_t *data = calloc(1, big);
    expect(copy(SHARED "c2/big", S_IFREG | 0644, (int64_t)big, 0, data, big), 3, "oversize");
    free(data);
    expect(copy(SHARED "c2/f", S_IFREG | 0644, 10, 20, NULL, 0), 3, "offset beyond size");
    expect(copy(SHARED "c2/f", S_IFREG | 0644, 10, 8, "abcd", 4), 3, "offset + len beyond size");
    expect(copy(SHARED "c2/f", S_IFREG | 0644, -5, 0, NULL, 0), 3, "negative size");
    expect(copy(SHARED "c2/fifo", S_IFIFO | 0644, 0, 0, NULL, 0), 3, "fifo");
    expect(copy(SHARED "c2//f", S_IFREG | 0644, 0, 0, NULL, 0), 3, "empty component");
    assert_int_equal(count_entries(outside), 0);
    in_agent(q, sizeof(q), SHARED "c2");
    assert_int_equal(count_entries(q), 2); /* the two symlinks, nothing else */
}

static void test_time_random_probe_swap(void **state)
{
    (void)state;
    Grpc__SetGuestDateTimeRequest tm = GRPC__SET_GUEST_DATE_TIME_REQUEST__INIT;
    tm.sec = 1700000000;
    tm.usec = 1000000;
    expect(ctr_call(&t, "SetGuestDateTime", &tm.base, NULL, NULL), 3, "usec 1e6");
    tm.usec = -1;
    expect(ctr_call(&t, "SetGuestDateTime", &tm.base, NULL, NULL), 3, "usec -1");
    tm.usec = 0;
    tm.sec = -1;
    expect(ctr_call(&t, "SetGuestDateTime", &tm.base, NULL, NULL), 3, "sec -1");

    Grpc__ReseedRandomDevRequest rr = GRPC__RESEED_RANDOM_DEV_REQUEST__INIT;
    uint8_t seed[64];
    for (size_t i = 0; i < sizeof(seed); i++)
        seed[i] = (uint8_t)(i * 37);
    rr.data.data = seed;
    rr.data.len = sizeof(seed);
    expect(ctr_call(&t, "ReseedRandomDev", &rr.base, NULL, NULL), 0, "reseed 64 bytes");
    uint8_t *big = calloc(1, (64u << 10) + 1);
    rr.data.data = big;
    rr.data.len = (64u << 10) + 1;
    expect(ctr_call(&t, "ReseedRandomDev", &rr.base, NULL, NULL), 3, "reseed too much");
    free(big);

    Grpc__MemHotplugByProbeRequest mp = GRPC__MEM_HOTPLUG_BY_PROBE_REQUEST__INIT;
    expect(ctr_call(&t, "MemHotplugByProbe", &mp.base, NULL, NULL), 0, "probe nothing");
    if (access("/sys/devices/system/memory/probe", F_OK) != 0) {
        uint64_t addr = 0x100000000ull;
        mp.n_memhotplugprobeaddr = 1;
        mp.memhotplugprobeaddr = &addr;
        expect(ctr_call(&t, "MemHotplugByProbe", &mp.base, NULL, NULL), 9, "probe missing");
        assert_non_null(strstr(t.msg, "/sys/devices/system/memory/probe"));
    }

    Grpc__AddSwapRequest as = GRPC__ADD_SWAP_REQUEST__INIT;
    /* A disk behind bridges this machine does not have: the wait runs out after
     * the default agent.hotplug_timeout (3 s). */
    uint32_t pci[] = {0x1f, 0x1f, 0x1f};
    as.n_pcipath = 3;
    as.pcipath = pci;
    expect(ctr_call(&t, "AddSwap", &as.base, NULL, NULL), 4, "AddSwap");
    Grpc__AddSwapPathRequest ap = GRPC__ADD_SWAP_PATH_REQUEST__INIT;
    ap.path = "swapfile";
    expect(ctr_call(&t, "AddSwapPath", &ap.base, NULL, NULL), 3, "relative swap path");
    ap.path = "/run/no-such-swapfile";
    expect(ctr_call(&t, "AddSwapPath", &ap.base, NULL, NULL), 5, "missing swap file");
    ap.path = "/run";
    expect(ctr_call(&t, "AddSwapPath", &ap.base, NULL, NULL), 3, "swap on a directory");
}

static void test_volume_stats(void **state)
{
    (void)state;
    Grpc__VolumeStatsRequest req = GRPC__VOLUME_STATS_REQUEST__INIT;
    req.volume_guest_path = "/run"; /* the agent's own tmpfs */
    Grpc__VolumeStatsResponse *r = NULL;
    expect(ctr_call(&t, "GetVolumeStats", &req.base, &grpc__volume_stats_response__descriptor,
                    (ProtobufCMessage **)&r),
           0, "stats /run");
    assert_int_equal(r->n_usage, 2);
    assert_int_equal(r->usage[0]->unit, GRPC__VOLUME_USAGE__UNIT__BYTES);
    assert_int_equal(r->usage[1]->unit, GRPC__VOLUME_USAGE__UNIT__INODES);
    assert_true(r->usage[0]->total > 0);
    assert_true(r->usage[0]->available <= r->usage[0]->total);
    assert_true(r->usage[0]->used <= r->usage[0]->total);
    assert_true(r->usage[1]->total > 0);
    assert_true(r->usage[1]->used > 0); /* /run/kata-containers at least */
    assert_non_null(r->volume_condition);
    assert_false(r->volume_condition->abnormal);
    assert_string_equal(r->volume_condition->message, "OK");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    req.volume_guest_path = "/run/no-such-volume";
    expect(ctr_call(&t, "GetVolumeStats", &req.base, &grpc__volume_stats_response__descriptor,
                    NULL),
           5, "missing volume");
    req.volume_guest_path = "";
    expect(ctr_call(&t, "GetVolumeStats", &req.base, &grpc__volume_stats_response__descriptor,
                    NULL),
           3, "empty path");
}

/* Every line: "# HELP name text", "# TYPE name gauge|counter", or a sample
 * `name{label="value",...} number` of a family whose TYPE came before. */
static void check_prometheus(const char *text)
{
    regex_t help, type, sample;
    assert_int_equal(regcomp(&help, "^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&type, "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter)$",
                             REG_EXTENDED),
                     0);
    assert_int_equal(
        regcomp(&sample,
                "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
                "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\})? ([^ ]+)$",
                REG_EXTENDED),
        0);
    char *copy_ = strdup(text), *save = NULL;
    char family[128] = "";
    int samples = 0;
    for (char *line = strtok_r(copy_, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[8];
        if (strncmp(line, "# HELP ", 7) == 0) {
            if (regexec(&help, line, 0, NULL, 0) != 0)
                fail_msg("bad HELP line: %s", line);
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            if (regexec(&type, line, 8, m, 0) != 0)
                fail_msg("bad TYPE line: %s", line);
            snprintf(family, sizeof(family), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                     line + m[1].rm_so);
        } else {
            if (regexec(&sample, line, 8, m, 0) != 0)
                fail_msg("bad sample line: %s", line);
            if ((size_t)(m[1].rm_eo - m[1].rm_so) != strlen(family) ||
                strncmp(line, family, strlen(family)) != 0)
                fail_msg("sample outside its family %s: %s", family, line);
            char *end;
            strtod(line + m[7].rm_so, &end);
            if (*end != '\0')
                fail_msg("bad value: %s", line);
            samples++;
        }
    }
    assert_true(samples > 20);
    free(copy_);
    regfree(&help);
    regfree(&type);
    regfree(&sample);
}

static void test_metrics(void **state)
{
    (void)state;
    Grpc__GetMetricsRequest req = GRPC__GET_METRICS_REQUEST__INIT;
    Grpc__Metrics *r = NULL;
    for (int i = 1; i <= 2; i++) {
        expect(ctr_call(&t, "GetMetrics", &req.base, &grpc__metrics__descriptor,
                        (ProtobufCMessage **)&r),
               0, "GetMetrics");
        check_prometheus(r->metrics);
        char want[64];
        snprintf(want, sizeof(want), "\nkata_agent_scrape_count %d\n", i);
        assert_non_null(strstr(r->metrics, want));
        assert_non_null(strstr(r->metrics, "\nkata_agent_threads 1\n"));
        assert_non_null(strstr(r->metrics, "kata_agent_total_rss "));
        assert_non_null(strstr(r->metrics, "kata_agent_io_stat{item=\"rchar\"} "));
        assert_non_null(strstr(r->metrics, "kata_agent_proc_status{item=\"vmrss\"} "));
        assert_non_null(strstr(r->metrics, "kata_guest_load{item=\"load1\"} "));
        assert_non_null(strstr(r->metrics, "kata_guest_meminfo{item=\"mem_total\"} "));
        assert_non_null(strstr(r->metrics, "kata_guest_meminfo{item=\"active_anon\"} "));
        assert_non_null(strstr(r->metrics, "kata_guest_cpu_time{cpu=\"total\",item=\"user\"} "));
        assert_non_null(strstr(r->metrics, "kata_guest_vm_stat{item=\"nr_free_pages\"} "));
        assert_non_null(
            strstr(r->metrics, "kata_guest_netdev_stat{interface=\"lo\",item=\"recv_bytes\"} "));
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
}

static bool on_path(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static void test_iptables_absent(void **state)
{
    (void)state;
    if (on_path("iptables-save") || on_path("iptables-restore"))
        skip(); /* the fake-helper test below covers the plumbing */
    Grpc__GetIPTablesRequest g = GRPC__GET_IPTABLES_REQUEST__INIT;
    expect(ctr_call(&t, "GetIPTables", &g.base, &grpc__get_iptables_response__descriptor, NULL), 9,
           "GetIPTables");
    assert_non_null(strstr(t.msg, "iptables-save not found"));
    Grpc__SetIPTablesRequest s = GRPC__SET_IPTABLES_REQUEST__INIT;
    s.is_ipv6 = true;
    s.data.data = (uint8_t *)"*filter\nCOMMIT\n";
    s.data.len = 15;
    expect(ctr_call(&t, "SetIPTables", &s.base, &grpc__set_iptables_response__descriptor, NULL), 9,
           "SetIPTables");
    assert_non_null(strstr(t.msg, "ip6tables-restore not found"));
}

static void write_script(const char *dir, const char *name, const char *body)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    assert_int_equal(chmod(p, 0755), 0);
}

/* A second agent (not isolated: it only runs the fake helpers) with a PATH that
 * finds them first: stdout, stdin and failures of the helpers. */
static void test_iptables_fake_helpers(void **state)
{
    (void)state;
    write_script(outside, "iptables-save",
                 "echo '*filter'; echo ':INPUT ACCEPT [0:0]'; echo COMMIT");
    write_script(outside, "ip6tables-save", "echo 'ip6 rules'");
    /* Echo stdin back with a prefix, and check the --wait argument. */
    write_script(outside, "iptables-restore",
                 "[ \"$1 $2\" = '--wait 5' ] || { echo \"bad args $*\" >&2; exit 2; }\n"
                 "while IFS= read -r l; do echo \"got $l\"; done");
    write_script(outside, "ip6tables-restore",
                 "cat >/dev/null; echo 'bad rules at line 1' >&2; exit 1");
    char path_env[256];
    snprintf(path_env, sizeof(path_env), "PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin", outside);
    char *env[] = {path_env, NULL};
    struct agent_proc a2;
    struct ctr t2;
    agent_start_full(&a2, NULL, NULL, env);
    ctr_open(&t2, &a2);

    Grpc__GetIPTablesRequest g = GRPC__GET_IPTABLES_REQUEST__INIT;
    Grpc__GetIPTablesResponse *gr = NULL;
    assert_int_equal(ctr_call(&t2, "GetIPTables", &g.base, &grpc__get_iptables_response__descriptor,
                              (ProtobufCMessage **)&gr),
                     0);
    assert_int_equal(gr->data.len, strlen("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"));
    assert_memory_equal(gr->data.data, "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", gr->data.len);
    protobuf_c_message_free_unpacked(&gr->base, NULL);
    g.is_ipv6 = true;
    assert_int_equal(ctr_call(&t2, "GetIPTables", &g.base, &grpc__get_iptables_response__descriptor,
                              (ProtobufCMessage **)&gr),
                     0);
    assert_memory_equal(gr->data.data, "ip6 rules\n", gr->data.len);
    protobuf_c_message_free_unpacked(&gr->base, NULL);

    /* 200 KiB of input: more than a pipe holds, so stdin and stdout interleave. */
    size_t lines = 20000;
    char *in = malloc(lines * 11 + 1);
    size_t len = 0;
    for (size_t i = 0; i < lines; i++)
        len += (size_t)sprintf(in + len, "-A X %05zu\n", i);
    Grpc__SetIPTablesRequest s = GRPC__SET_IPTABLES_REQUEST__INIT;
    s.data.data = (uint8_t *)in;
    s.data.len = len;
    Grpc__SetIPTablesResponse *sr = NULL;
    assert_int_equal(ctr_call(&t2, "SetIPTables", &s.base, &grpc__set_iptables_response__descriptor,
                              (ProtobufCMessage **)&sr),
                     0);
    assert_int_equal(sr->data.len, len + lines * 4);
    assert_memory_equal(sr->data.data, "got -A X 00000\ngot -A X 00001\n", 30);
    protobuf_c_message_free_unpacked(&sr->base, NULL);
    free(in);
    s.is_ipv6 = true;
    s.data.data = (uint8_t *)"junk\n";
    s.data.len = 5;
    assert_int_equal(ctr_call(&t2, "SetIPTables", &s.base, &grpc__set_iptables_response__descriptor,
                              NULL),
                     13);
    assert_non_null(strstr(t2.msg, "ip6tables-restore failed (exit code 1): bad rules at line 1"));
    /* The agent is fine and has no helper left behind. */
    Grpc__GetMetricsRequest mreq = GRPC__GET_METRICS_REQUEST__INIT;
    assert_int_equal(ctr_call(&t2, "GetMetrics", &mreq.base, &grpc__metrics__descriptor, NULL), 0);
    ctr_close(&t2);
    agent_stop(&a2);
}

/* A slow helper does not hold the agent: other calls are answered meanwhile, the
 * slow one when the helper is done; a client that leaves takes its helper along. */
static void test_iptables_slow_helper(void **state)
{
    (void)state;
    char body[PATH_MAX + 64];
    write_script(outside, "iptables-save", "sleep 2; echo slow-rules");
    snprintf(body, sizeof(body), "sleep 2; touch %s/ran", outside);
    write_script(outside, "ip6tables-save", body);
    char path_env[256];
    snprintf(path_env, sizeof(path_env), "PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin", outside);
    char *env[] = {path_env, NULL};
    struct agent_proc a2;
    struct ctr t2;
    agent_start_full(&a2, NULL, NULL, env);
    ctr_open(&t2, &a2);
    Grpc__GetMetricsRequest mreq = GRPC__GET_METRICS_REQUEST__INIT;
    /* One round trip first: the agent has accepted t2's connection when counting. */
    assert_int_equal(ctr_call(&t2, "GetMetrics", &mreq.base, &grpc__metrics__descriptor, NULL), 0);
    int fds = agent_fd_count(&a2);

    double t0 = now_s();
    int slow = raw_connect(&a2);
    raw_send_request(slow, 1, "grpc.AgentService", "GetIPTables", "", 0);
    assert_int_equal(ctr_call(&t2, "GetMetrics", &mreq.base, &grpc__metrics__descriptor, NULL), 0);
    assert_true(now_s() - t0 < 1.0); /* answered while the helper sleeps */
    uint32_t sid = 0;
    int code = -1;
    assert_int_equal(raw_recv_response(slow, &sid, &code, NULL, 0), 0);
    assert_int_equal(code, 0);
    assert_true(now_s() - t0 >= 1.9);
    close(slow);

    /* The client goes; its helper is killed and reaped, nothing stays open. */
    int gone = raw_connect(&a2);
    uint8_t v6[] = {0x08, 0x01}; /* is_ipv6: true */
    raw_send_request(gone, 1, "grpc.AgentService", "GetIPTables", v6, sizeof(v6));
    usleep(300 * 1000);
    close(gone);
    usleep(2500 * 1000);
    char ran[PATH_MAX];
    snprintf(ran, sizeof(ran), "%s/ran", outside);
    assert_int_not_equal(access(ran, F_OK), 0);
    assert_int_equal(agent_wait_fd_count(&a2, fds, 2000), fds);
    assert_true(agent_alive(&a2));
    ctr_close(&t2);
    agent_stop(&a2);
}

/* OnlineCPUMem for more CPUs than the machine has: the agent retries on a timer
 * (100 x 50 ms) and answers the failure at the end, serving other calls meanwhile.
 * It only ever writes "1" to CPUs that are offline. */
static void test_online_cpus_wait_off_loop(void **state)
{
    (void)state;
    double t0 = now_s();
    int fd = raw_connect(&agent);
    uint8_t req[] = {0x10, 0xe8, 0x07, 0x18, 0x01}; /* nb_cpus: 1000, cpu_only: true */
    raw_send_request(fd, 1, "grpc.AgentService", "OnlineCPUMem", req, sizeof(req));
    usleep(200 * 1000);
    Grpc__GetMetricsRequest mreq = GRPC__GET_METRICS_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "GetMetrics", &mreq.base, &grpc__metrics__descriptor, NULL), 0);
    assert_true(now_s() - t0 < 1.5);
    uint32_t sid = 0;
    int code = -1;
    char msg[512] = "";
    assert_int_equal(raw_recv_response(fd, &sid, &code, msg, sizeof(msg)), 0);
    assert_int_equal(code, 13);
    assert_non_null(strstr(msg, "of the 1000 CPUs asked for are online"));
    assert_true(now_s() - t0 >= 4.0);
    close(fd);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("1..0 # SKIP needs root\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copyfile_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copyfile_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_random_probe_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iptables_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iptables_fake_helpers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iptables_slow_helper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_online_cpus_wait_off_loop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
