/* Hostile-host tests of issue 13 (item 10): what a host can make the agent hold in
 * memory is bounded. All three attacks of the adversarial review at once against the
 * real agent, as root in its own mount namespace:
 *
 *   1. HALF_FRAME_CONNS connections each send the header of a 4 MiB frame and all but
 *      one byte of it (the agent used to allocate the claimed 4 MiB at the header);
 *   2. METRICS_CONNS connections each send METRICS_CALLS GetMetrics requests and never
 *      read a reply (replies used to pin up to 8 MiB per connection);
 *   3. STDIN_CONNS connections send STDIN_WRITES_PER_CONN WriteStdin calls of almost
 *      4 MiB each to a container that never reads its stdin (each used to be copied and
 *      parked: 100 of them added 426 MB).
 *
 * Bound asserted (the agent's VmRSS and its peak VmHWM over its baseline): RSS_BOUND_KB,
 * i.e. 128 MiB natively: the server's budget for buffered bytes is 64 MiB
 * (TTRPC_BUDGET in agent/ttrpc/server.h), plus what each connection may always buffer,
 * the requests being decoded and the allocator's slack; runs measure 65-85 MB. The
 * agent before the fix reached 338 MB here, and was too busy answering GetMetrics to
 * answer Health in time. Then: a fresh connection is served Health during the
 * attack; connections past TTRPC_MAX_CONNS are closed at once; and when the attackers
 * go, the agent's fds come back to the baseline and its RSS to within
 * RELEASED_BOUND_KB of it, and it still runs containers. */
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
#include <unistd.h>

#include "ctr.h"
#include "ttrpc/frame.h"
#include "ttrpc/server.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

#ifdef KA_TEST_SANITIZED
/* ASan's redzones and its 256 MB quarantine of freed blocks stay resident (one run:
 * 370 MB during the attack), and its allocator does not give memory back: the
 * release is checked by the fd count only. */
#define RSS_BOUND_KB (512 * 1024)
#define RELEASED_BOUND_KB LONG_MAX
#else
#define RSS_BOUND_KB (128 * 1024)
#define RELEASED_BOUND_KB (8 * 1024)
#endif

#define HALF_FRAME_CONNS 100
#define METRICS_CONNS 10
#define METRICS_CALLS 2000
#define STDIN_CONNS 10
#define STDIN_WRITES_PER_CONN 10
#define ATTACK_CONNS (HALF_FRAME_CONNS + METRICS_CONNS + STDIN_CONNS)
#define EXTRA_CONNS 20 /* past the cap: TTRPC_MAX_CONNS < ATTACK_CONNS + 3 + EXTRA_CONNS */

static struct agent_proc agent;
static struct ctr t;
static const char *rootfs;
static int base_fds;
static long base_rss;

static void health_on_new_connection(void)
{
    int fd = raw_connect(&agent);
    raw_send_request(fd, 1, "grpc.Health", "Check", NULL, 0);
    uint32_t sid;
    int code;
    assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
    assert_int_equal(sid, 1);
    assert_int_equal(code, 0);
    close(fd);
}

/* ---- what the attackers send ------------------------------------------------------ */

/* A connection's byte stream as segments, sent without blocking as the agent reads. */
struct seg {
    const uint8_t *p;
    size_t len;
};

struct sender {
    int fd;
    struct seg segs[2 * STDIN_WRITES_PER_CONN];
    uint8_t hdrs[STDIN_WRITES_PER_CONN][TTRPC_HEADER_SIZE];
    size_t nsegs, cur, off;
    size_t sent;
};

static struct sender senders[ATTACK_CONNS];
static uint8_t *zeros;   /* attack 1: the 4 MiB frame's bytes */
static uint8_t *metrics; /* attack 2: METRICS_CALLS GetMetrics frames */
static size_t metrics_len;
static uint8_t *stdin_req; /* attack 3: one Request envelope carrying WriteStdin */
static size_t stdin_req_len;

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A ttrpc Request{service, method, payload} envelope in buf; returns its length. */
static size_t put_request(uint8_t *buf, const char *method, const uint8_t *payload, size_t len)
{
    static const char service[] = "grpc.AgentService";
    size_t n = 0;
    buf[n++] = 0x0a;
    n += put_varint(buf + n, sizeof(service) - 1);
    memcpy(buf + n, service, sizeof(service) - 1);
    n += sizeof(service) - 1;
    buf[n++] = 0x12;
    n += put_varint(buf + n, strlen(method));
    memcpy(buf + n, method, strlen(method));
    n += strlen(method);
    if (len) {
        buf[n++] = 0x1a;
        n += put_varint(buf + n, len);
        memcpy(buf + n, payload, len);
        n += len;
    }
    return n;
}

static void build_attacks(const char *container)
{
    zeros = calloc(1, TTRPC_MAX_DATA);
    assert_non_null(zeros);

    uint8_t env[128];
    size_t env_len = put_request(env, "GetMetrics", NULL, 0);
    metrics_len = METRICS_CALLS * (TTRPC_HEADER_SIZE + env_len);
    metrics = malloc(metrics_len);
    assert_non_null(metrics);
    for (size_t i = 0, at = 0; i < METRICS_CALLS; i++) {
        struct ttrpc_header h = {.length = (uint32_t)env_len,
                                 .stream_id = (uint32_t)(2 * i + 1),
                                 .type = TTRPC_TYPE_REQUEST};
        ttrpc_header_encode(&h, metrics + at);
        memcpy(metrics + at + TTRPC_HEADER_SIZE, env, env_len);
        at += TTRPC_HEADER_SIZE + env_len;
    }

    /* As large as the 4 MiB frame cap allows, leaving room for the envelope. */
    Grpc__WriteStreamRequest w = GRPC__WRITE_STREAM_REQUEST__INIT;
    w.container_id = (char *)container;
    w.exec_id = (char *)"";
    w.data.data = zeros;
    w.data.len = TTRPC_MAX_DATA - 256;
    size_t plen = grpc__write_stream_request__get_packed_size(&w);
    uint8_t *payload = malloc(plen);
    assert_non_null(payload);
    grpc__write_stream_request__pack(&w, payload);
    stdin_req = malloc(plen + 128);
    assert_non_null(stdin_req);
    stdin_req_len = put_request(stdin_req, "WriteStdin", payload, plen);
    assert_true(stdin_req_len <= TTRPC_MAX_DATA);
    free(payload);
}

static void open_attackers(void)
{
    for (int i = 0; i < ATTACK_CONNS; i++) {
        struct sender *s = &senders[i];
        memset(s, 0, sizeof(*s));
        s->fd = raw_connect(&agent);
        if (i < HALF_FRAME_CONNS) {
            struct ttrpc_header h = {.length = TTRPC_MAX_DATA,
                                     .stream_id = 1,
                                     .type = TTRPC_TYPE_REQUEST};
            ttrpc_header_encode(&h, s->hdrs[0]);
            s->segs[s->nsegs++] = (struct seg){s->hdrs[0], TTRPC_HEADER_SIZE};
            s->segs[s->nsegs++] = (struct seg){zeros, TTRPC_MAX_DATA - 1};
        } else if (i < HALF_FRAME_CONNS + METRICS_CONNS) {
            s->segs[s->nsegs++] = (struct seg){metrics, metrics_len};
        } else {
            for (int k = 0; k < STDIN_WRITES_PER_CONN; k++) {
                struct ttrpc_header h = {.length = (uint32_t)stdin_req_len,
                                         .stream_id = (uint32_t)(2 * k + 1),
                                         .type = TTRPC_TYPE_REQUEST};
                ttrpc_header_encode(&h, s->hdrs[k]);
                s->segs[s->nsegs++] = (struct seg){s->hdrs[k], TTRPC_HEADER_SIZE};
                s->segs[s->nsegs++] = (struct seg){stdin_req, stdin_req_len};
            }
        }
    }
}

/* Send what the agent takes, round robin, until nothing moves for quiet_ms (the agent
 * stopped reading them all), everything is sent, or max_s. Returns the bytes sent. */
static size_t pump(int quiet_ms, double max_s)
{
    size_t total = 0;
    double start = now_s(), idle_since = start;
    while ((now_s() - idle_since) * 1000 < quiet_ms && now_s() - start < max_s) {
        bool moved = false, pending = false;
        for (int i = 0; i < ATTACK_CONNS; i++) {
            struct sender *s = &senders[i];
            if (s->cur == s->nsegs)
                continue;
            pending = true;
            const struct seg *g = &s->segs[s->cur];
            ssize_t n = send(s->fd, g->p + s->off, g->len - s->off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n <= 0)
                continue;
            moved = true;
            s->off += (size_t)n;
            s->sent += (size_t)n;
            total += (size_t)n;
            if (s->off == g->len) {
                s->cur++;
                s->off = 0;
            }
        }
        if (!pending)
            break;
        if (moved)
            idle_since = now_s();
        else
            usleep(10000);
    }
    return total;
}

/* ---- the test ---------------------------------------------------------------------- */

static void test_memory_bounded_under_three_attacks(void **state)
{
    (void)state;
    /* The container that never reads its stdin. */
    const char *c = ctr_unique_id("stdin-sink");
    Grpc__Spec *spec = spec_new(rootfs, ARGS("ka-payload", "pause"));
    if (ctr_create(&t, c, spec) != 0 || ctr_start(&t, c) != 0)
        fail_msg("start %s: %s", c, t.msg);
    spec_free(spec);
    /* Settle, then the baseline: one GetMetrics first, so its lazily grown state counts. */
    Grpc__GetMetricsRequest gm = GRPC__GET_METRICS_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "GetMetrics", &gm.base, NULL, NULL), 0);
    base_fds = agent_fd_count(&agent);
    for (int i = 0, n; i < 50 && (usleep(100000), n = agent_fd_count(&agent)) != base_fds; i++)
        base_fds = n;
    base_rss = agent_status_kb(&agent, "VmRSS");
    assert_true(base_rss > 0);

    build_attacks(c);
    open_attackers();
    /* Quiet for 3 s: long enough that an agent busy with the GetMetrics calls is not
     * taken for one that stopped reading. */
    size_t sent = pump(3000, 120);
    long rss = agent_status_kb(&agent, "VmRSS"), hwm = agent_status_kb(&agent, "VmHWM");
    fprintf(stderr, "# attack: %zu MiB sent; agent RSS %ld kB (peak %ld kB), baseline %ld kB\n",
            sent >> 20, rss, hwm, base_rss);
    if (rss - base_rss > RSS_BOUND_KB || hwm - base_rss > RSS_BOUND_KB)
        fail_msg("agent RSS %ld kB (peak %ld kB) over baseline %ld kB + %d kB", rss, hwm, base_rss,
                 RSS_BOUND_KB);
    /* The attack did arrive, and the agent stopped taking it rather than grow: attackers
     * still had bytes to send when it stopped reading them. */
    int unsent[3] = {0, 0, 0};
    for (int i = 0; i < ATTACK_CONNS; i++)
        if (senders[i].cur < senders[i].nsegs)
            unsent[i < HALF_FRAME_CONNS ? 0 : i < HALF_FRAME_CONNS + METRICS_CONNS ? 1 : 2]++;
    fprintf(stderr, "# not fully taken: %d/%d half frames, %d/%d GetMetrics, %d/%d WriteStdin\n",
            unsent[0], HALF_FRAME_CONNS, unsent[1], METRICS_CONNS, unsent[2], STDIN_CONNS);
    assert_true(sent > (size_t)TTRPC_BUDGET / 2);
    assert_true(unsent[0] + unsent[1] + unsent[2] > 0);
    assert_true(agent_alive(&agent));

    /* Small calls are still served on a new connection while all that is held. */
    health_on_new_connection();

    /* Past the connection cap, new connections are closed at once. */
    int extra[EXTRA_CONNS], closed = 0;
    for (int i = 0; i < EXTRA_CONNS; i++)
        extra[i] = raw_connect(&agent);
    for (int i = 0; i < EXTRA_CONNS; i++)
        closed += raw_wait_closed(extra[i], i == 0 ? 2000 : 200);
    /* ATTACK_CONNS + t's connection are open: the rest of the cap is admitted. */
    int admitted = TTRPC_MAX_CONNS - ATTACK_CONNS - 1;
    fprintf(stderr, "# %d of %d connections past the attack closed at once\n", closed, EXTRA_CONNS);
    assert_int_equal(closed, EXTRA_CONNS - admitted);
    for (int i = 0; i < EXTRA_CONNS; i++)
        close(extra[i]);

    /* The attackers go: everything they held is released. */
    for (int i = 0; i < ATTACK_CONNS; i++)
        close(senders[i].fd);
    int fds = agent_wait_fd_count(&agent, base_fds, 10000);
    assert_int_equal(fds, base_fds);
    health_on_new_connection();
    rss = agent_status_kb(&agent, "VmRSS");
    fprintf(stderr, "# released: agent RSS %ld kB, baseline %ld kB\n", rss, base_rss);
    if (rss - base_rss > RELEASED_BOUND_KB)
        fail_msg("agent RSS %ld kB after the attackers left, baseline %ld kB", rss, base_rss);

    /* And it still does its work: the container answers an exec. */
    Grpc__Process *p = process_new(ARGS("true"));
    assert_int_equal(ctr_exec(&t, c, "after", p), 0);
    process_free(p);
    int status;
    assert_int_equal(ctr_wait(&t, c, "after", &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(ctr_signal(&t, c, "", SIGKILL), 0);
    assert_int_equal(ctr_wait(&t, c, "", &status), 0);
    assert_int_equal(ctr_remove(&t, c), 0);
    free(zeros);
    free(metrics);
    free(stdin_req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_bounded_under_three_attacks),
    };
    ctr_suite_fixtures(&agent, &t, &rootfs, "kata-sandbox");
    return cmocka_run_group_tests(tests, ctr_group_setup, ctr_group_teardown);
}
