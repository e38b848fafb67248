/* The ttrpc server on the reactor, in process: parked calls answered later while
 * other calls on the same connection are answered at once; a dropped connection
 * cancels its parked calls; a serial port (a pty here) carries ttrpc too; bytes
 * replies built in place encode as protobuf-c would; ReadStdout's stream code on a
 * real pipe (read at once, parked, short, EOF told once empty then as an error,
 * drained after the exit within a bound, closed under reads, cancelled). The client side runs in
 * a thread with the blocking client. Frames of other types (Data, Response, unknown)
 * are skipped and the connection stays usable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "sandbox/stream.h"
#include "ttrpc/client.h"
#include "ttrpc/frame.h"
#include "ttrpc/server.h"
#include "ttrpc/transport.h"

struct fixture {
    struct ka_reactor reactor;
    struct ttrpc_server server;
    struct ttrpc_call *parked[TTRPC_MAX_CALLS_PER_CONN + 8];
    int nparked;
    int cancelled;
    int client_fd;
    int results[8];
    int nresults;
    volatile int client_done;
    struct ka_stream stream; /* read end of a pipe, for "Read" */
    int pipe_w;
    struct ka_stream in; /* write end of a pipe, for "Write" */
    int pipe_r;
    int released; /* objects kept with "Write" calls and released */
};

static uint32_t get_u32(const uint8_t *p, size_t len, size_t at)
{
    uint32_t v = 0;
    if (len >= at + 4)
        memcpy(&v, p + at, 4);
    return v;
}

static void on_cancel(struct ttrpc_call *call)
{
    struct fixture *f = call->park_data;
    for (int i = 0; i < f->nparked; i++)
        if (f->parked[i] == call)
            f->parked[i] = f->parked[--f->nparked];
    f->cancelled++;
}

struct held_write {
    struct fixture *f;
    uint8_t data[];
};

static void release_write(void *obj)
{
    struct held_write *h = obj;
    h->f->released++;
    free(h);
}

/* Test service: Park waits for Release; Ping answers at once; Done stops the loop. */
static void dispatch(void *ctx, struct ttrpc_call *call, const uint8_t *payload, size_t len)
{
    struct fixture *f = ctx;
    if (strcmp(call->method, "Park") == 0) {
        f->parked[f->nparked++] = call;
        ttrpc_call_park(call, on_cancel, f);
    } else if (strcmp(call->method, "Release") == 0) {
        while (f->nparked > 0)
            ttrpc_call_reply(f->parked[--f->nparked], NULL);
        ttrpc_call_reply(call, NULL);
    } else if (strcmp(call->method, "Ping") == 0) {
        ttrpc_call_reply(call, NULL);
    } else if (strcmp(call->method, "Bytes") == 0) {
        /* payload: u32 n, u32 cap; answers n pattern bytes as field 1, built in place */
        uint32_t n = get_u32(payload, len, 0), cap = get_u32(payload, len, 4);
        struct ttrpc_bytes_reply r;
        uint8_t *buf = ttrpc_bytes_reply_begin(call, cap, &r);
        for (uint32_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(i * 7);
        ttrpc_bytes_reply_send(call, 1, &r, n);
    } else if (strcmp(call->method, "BytesDrop") == 0) {
        struct ttrpc_bytes_reply r;
        ttrpc_bytes_reply_begin(call, get_u32(payload, len, 0), &r);
        ttrpc_bytes_reply_drop(&r);
        ttrpc_call_reply(call, NULL); /* the call is untouched by begin + drop */
    } else if (strcmp(call->method, "Read") == 0) {
        /* payload: u32 len, u32 reader (0 stdout, 1 stderr) */
        ka_stream_read(&f->stream, call, get_u32(payload, len, 0),
                       get_u32(payload, len, 4) ? KA_STREAM_READ_STDERR : KA_STREAM_READ_STDOUT);
    } else if (strcmp(call->method, "Exit") == 0) {
        /* The process behind the stream was reaped. */
        ka_stream_source_done(&f->stream);
        ttrpc_call_reply(call, NULL);
    } else if (strcmp(call->method, "Close") == 0) {
        /* The process record goes (WaitProcess, RemoveContainer). */
        ka_stream_close(&f->stream);
        ttrpc_call_reply(call, NULL);
    } else if (strcmp(call->method, "Write") == 0) {
        /* As WriteStdin does: an object owning the bytes (here a copy standing in for
         * the decoded request) is kept with the call until it is answered. */
        struct held_write *h = malloc(sizeof(*h) + len);
        h->f = f;
        memcpy(h->data, payload, len);
        ttrpc_call_hold(call, h, len, release_write);
        ka_stream_write(&f->in, call, h->data, len);
    } else if (strcmp(call->method, "FailHeld") == 0) {
        /* Fails with a message that lives in what the call holds: the answer must be
         * encoded before the held object is released (ASan sees it otherwise). */
        struct held_write *h = malloc(sizeof(*h) + len + 1);
        h->f = f;
        memcpy(h->data, payload, len);
        h->data[len] = '\0';
        ttrpc_call_hold(call, h, len, release_write);
        ttrpc_call_fail(call, KA_STATUS_INVALID_ARGUMENT, (const char *)h->data);
    } else {
        ttrpc_call_fail(call, KA_STATUS_UNIMPLEMENTED, "no such method");
    }
}

static void setup_server(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&f->reactor, &err), 0);
    ttrpc_server_init(&f->server, &f->reactor, dispatch, f);
}

static void teardown_server(struct fixture *f)
{
    ttrpc_server_shutdown(&f->server);
    ka_reactor_fini(&f->reactor);
}

static void run_until(struct fixture *f, volatile int *flag)
{
    struct ka_error err;
    for (int i = 0; i < 2000 && !*flag; i++)
        assert_true(ka_reactor_run_once(&f->reactor, 5, &err) >= 0);
    assert_true(*flag);
}

/* One end of a socketpair served as a connection; the other is f->client_fd. */
static void connect_client(struct fixture *f)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct ka_error err;
    assert_int_equal(ttrpc_server_adopt_serial(&f->server, sv[0], &err), 0);
    f->client_fd = sv[1];
}

/* Run the client on its own thread while the loop serves it, until it is done. */
static void run_client(struct fixture *f, void *(*client)(void *))
{
    pthread_t t;
    pthread_create(&t, NULL, client, f);
    run_until(f, &f->client_done);
    pthread_join(t, NULL);
}

static void send_call(struct ttrpc_client *c, const char *method)
{
    struct ka_error err;
    assert_int_equal(ttrpc_client_send(c, "test.Svc", method, NULL, 0, 0, NULL, &err), 0);
}

static uint32_t recv_stream(struct ttrpc_client *c, int *code)
{
    struct ka_error err;
    struct ttrpc_reply r;
    assert_int_equal(ttrpc_client_recv(c, &r, &err), 0);
    *code = r.code;
    uint32_t sid = r.stream_id;
    ttrpc_reply_free(&r);
    return sid;
}

static void *park_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    int code;
    send_call(&c, "Park"); /* stream 1: parked */
    send_call(&c, "Ping"); /* stream 3: answered while 1 waits */
    f->results[f->nresults++] = (int)recv_stream(&c, &code);
    send_call(&c, "Release"); /* stream 5: answers 1, then itself */
    f->results[f->nresults++] = (int)recv_stream(&c, &code);
    f->results[f->nresults++] = (int)recv_stream(&c, &code);
    send_call(&c, "Park"); /* stream 7: left parked when the client goes */
    send_call(&c, "Nope"); /* stream 9: unknown method */
    f->results[f->nresults++] = (int)recv_stream(&c, &code);
    f->results[f->nresults++] = code;
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

static void test_park_and_answer_later(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f);
    char path[] = "/tmp/ka-test-server-XXXXXX";
    assert_non_null(mkdtemp(path));
    char addr_text[128];
    snprintf(addr_text, sizeof(addr_text), "unix://%s/s.sock", path);
    struct ka_addr addr;
    struct ka_error err;
    assert_int_equal(ka_addr_parse(addr_text, &addr, &err), 0);
    assert_int_equal(ttrpc_server_listen(&f.server, &addr, &err), 0);
    f.client_fd = ka_addr_connect(&addr, &err);
    assert_true(f.client_fd >= 0);

    pthread_t t;
    pthread_create(&t, NULL, park_client, &f);
    run_until(&f, &f.client_done);
    pthread_join(t, NULL);
    /* Let the server see the hang-up. */
    for (int i = 0; i < 100 && f.server.nconns > 0; i++)
        ka_reactor_run_once(&f.reactor, 5, &err);

    assert_int_equal(f.nresults, 5);
    assert_int_equal(f.results[0], 3); /* Ping first, though Park was sent before it */
    assert_int_equal(f.results[1], 1); /* the parked call, answered by Release */
    assert_int_equal(f.results[2], 5);
    assert_int_equal(f.results[3], 9);
    assert_int_equal(f.results[4], KA_STATUS_UNIMPLEMENTED);
    assert_int_equal(f.cancelled, 1); /* stream 7 cancelled with its connection */
    assert_int_equal(f.nparked, 0);
    assert_int_equal(f.server.nconns, 0);
    teardown_server(&f);
    rmdir(path);
}

static void *limits_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    struct ka_error err;
    int code;
    send_call(&c, "Park"); /* stream 1 */
    c.next_stream = 1;     /* reuse it while it is still in flight */
    send_call(&c, "Ping");
    f->results[f->nresults++] = (int)recv_stream(&c, &code);
    f->results[f->nresults++] = code;
    /* Fill the connection's in-flight budget with parked calls (one is parked already). */
    for (int i = 1; i < TTRPC_MAX_CALLS_PER_CONN; i++)
        assert_int_equal(ttrpc_client_send(&c, "test.Svc", "Park", NULL, 0, 0, NULL, &err), 0);
    send_call(&c, "Ping");
    f->results[f->nresults++] = (int)recv_stream(&c, &code);
    f->results[f->nresults++] = code;
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

/* A stream id still in flight is refused; so is a call past the in-flight cap. */
static void test_stream_reuse_and_call_cap(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    connect_client(f);
    run_client(f, limits_client);
    assert_int_equal(f->nresults, 4);
    assert_int_equal(f->results[0], 1);
    assert_int_equal(f->results[1], KA_STATUS_INVALID_ARGUMENT);
    assert_int_equal(f->results[3], KA_STATUS_RESOURCE_EXHAUSTED);
    teardown_server(f);
    /* The client's hang-up (or the shutdown) cancelled every parked call. */
    assert_int_equal(f->nparked, 0);
    assert_int_equal(f->cancelled, TTRPC_MAX_CALLS_PER_CONN);
    free(f);
}

static void *serial_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    int code;
    send_call(&c, "Ping");
    f->results[f->nresults++] = (int)recv_stream(&c, &code);
    f->results[f->nresults++] = code;
    c.fd = -1; /* the pty master is closed by the test */
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

/* The serial transport over a pty: the slave stands in for /dev/vportNpM. */
static void test_serial_transport(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    char text[256];
    snprintf(text, sizeof(text), "serial://%s", ptsname(master));
    struct ka_addr addr;
    struct ka_error err;
    assert_int_equal(ka_addr_parse(text, &addr, &err), 0);
    int fd = ka_serial_open(&addr, KA_VIRTIO_PORTS_DIR, &err);
    assert_true(fd >= 0);
    assert_int_equal(ttrpc_server_adopt_serial(&f.server, fd, &err), 0);
    f.client_fd = master;

    pthread_t t;
    pthread_create(&t, NULL, serial_client, &f);
    run_until(&f, &f.client_done);
    pthread_join(t, NULL);
    assert_int_equal(f.nresults, 2);
    assert_int_equal(f.results[0], 1);
    assert_int_equal(f.results[1], 0);
    close(master);
    /* The host side went away: the port stays adopted, waiting for the next host. */
    for (int i = 0; i < 10; i++)
        ka_reactor_run_once(&f.reactor, 5, &err);
    assert_int_equal(f.server.nconns, 1);
    teardown_server(&f);
}

/* ---- bytes replies and the stream read path ------------------------------------ */

struct answer {
    int code;
    char message[64];
    uint8_t *payload;
    size_t len;
};

static void call_u32s(struct ttrpc_client *c, const char *method, uint32_t a, uint32_t b)
{
    uint32_t v[2] = {a, b};
    struct ka_error err;
    int rc = ttrpc_client_send(c, "test.Svc", method, (const uint8_t *)v, sizeof(v), 0, NULL, &err);
    assert_int_equal(rc, 0);
}

static void answer_recv(struct ttrpc_client *c, struct answer *a)
{
    struct ka_error err;
    struct ttrpc_reply r;
    assert_int_equal(ttrpc_client_recv(c, &r, &err), 0);
    a->code = r.code;
    snprintf(a->message, sizeof(a->message), "%s", r.message);
    a->payload = r.payload;
    a->len = r.payload_len;
    r.payload = NULL;
    ttrpc_reply_free(&r);
}

/* The payload protobuf-c packs for ReadStreamResponse{data}: field 1, length, bytes. */
static void assert_bytes_message(const struct answer *a, const uint8_t *data, size_t n)
{
    assert_int_equal(a->code, 0);
    if (n == 0) {
        assert_int_equal(a->len, 0); /* proto3 leaves an empty bytes field out */
        return;
    }
    uint8_t head[8];
    size_t h = 0;
    head[h++] = 0x0a;
    for (size_t v = n;; v >>= 7) {
        head[h++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
        if (v < 0x80)
            break;
    }
    assert_int_equal(a->len, h + n);
    assert_memory_equal(a->payload, head, h);
    assert_memory_equal(a->payload + h, data, n);
}

static void *bytes_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    static uint8_t pattern[300000];
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 7);
    /* 1-, 2- and 3-byte lengths; a spare frame reused; one too big to keep as spare;
     * an empty reply; a frame over the 4 MiB cap. */
    const uint32_t cases[][2] = {{5, 100},         {100, 32768}, {32768, 32768}, {200, 32768},
                                 {300000, 300000}, {0, 64},      {10, 10}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct answer a;
        call_u32s(&c, "Bytes", cases[i][0], cases[i][1]);
        answer_recv(&c, &a);
        assert_bytes_message(&a, pattern, cases[i][0]);
        free(a.payload);
    }
    struct answer a;
    call_u32s(&c, "BytesDrop", 32768, 0);
    answer_recv(&c, &a);
    assert_int_equal(a.code, 0);
    assert_int_equal(a.len, 0);
    free(a.payload);
    call_u32s(&c, "Bytes", TTRPC_MAX_DATA, TTRPC_MAX_DATA);
    answer_recv(&c, &a);
    assert_int_equal(a.code, KA_STATUS_RESOURCE_EXHAUSTED);
    free(a.payload);
    call_u32s(&c, "Bytes", 3, 3); /* the connection is still fine */
    answer_recv(&c, &a);
    assert_bytes_message(&a, pattern, 3);
    free(a.payload);
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

static void test_bytes_reply(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    connect_client(f);
    run_client(f, bytes_client);
    teardown_server(f);
    free(f);
}

static void setup_stream(struct fixture *f)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    ka_stream_init(&f->stream, &f->reactor, p[0], false);
    f->pipe_w = p[1];
    /* Best effort in the agent; here (root or not, default limits) it takes. */
    assert_true(fcntl(p[0], F_GETPIPE_SZ) >= (int)KA_STREAM_PIPE_SIZE);
    connect_client(f);
}

static void read_expect(struct ttrpc_client *c, uint32_t len, const char *data, size_t n)
{
    struct answer a;
    call_u32s(c, "Read", len, 0);
    answer_recv(c, &a);
    assert_bytes_message(&a, (const uint8_t *)data, n);
    free(a.payload);
}

/* The first read at EOF: an empty success (ReadStreamResponse with no data). */
static void read_expect_empty(struct ttrpc_client *c, uint32_t reader)
{
    struct answer a;
    call_u32s(c, "Read", 32768, reader);
    answer_recv(c, &a);
    assert_int_equal(a.code, 0);
    assert_int_equal(a.len, 0);
    free(a.payload);
}

/* Every later read at EOF: the error status. */
static void read_expect_eof(struct ttrpc_client *c, uint32_t reader)
{
    struct answer a;
    call_u32s(c, "Read", 32768, reader);
    answer_recv(c, &a);
    assert_int_equal(a.code, KA_STATUS_INTERNAL);
    assert_string_equal(a.message, "eof");
    free(a.payload);
}

static void *read_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    static char big[300];
    memset(big, 'b', sizeof(big));
    /* Data already there: answered at once with what there is, less than asked. */
    assert_int_equal(write(f->pipe_w, "hello", 5), 5);
    read_expect(&c, 32768, "hello", 5);
    /* Less asked than there is: the rest stays for the next call (len 0 = the most). */
    assert_int_equal(write(f->pipe_w, big, sizeof(big)), (ssize_t)sizeof(big));
    read_expect(&c, 10, big, 10);
    read_expect(&c, 0, big, sizeof(big) - 10);
    /* Nothing there: parked until the writer writes. */
    call_u32s(&c, "Read", 32768, 0);
    usleep(20000);
    assert_int_equal(write(f->pipe_w, "late", 4), 4);
    struct answer a;
    answer_recv(&c, &a);
    assert_bytes_message(&a, (const uint8_t *)"late", 4);
    free(a.payload);
    /* Data then EOF: the data first, then one empty success, then the error status,
     * at once, each time. Each reader (ReadStdout, ReadStderr) gets its own empty. */
    assert_int_equal(write(f->pipe_w, "tail", 4), 4);
    close(f->pipe_w);
    f->pipe_w = -1;
    read_expect(&c, 32768, "tail", 4);
    read_expect_empty(&c, 0);
    read_expect_eof(&c, 0);
    read_expect_eof(&c, 0);
    read_expect_empty(&c, 1);
    read_expect_eof(&c, 1);
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

static void test_stream_reads(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    setup_stream(f);
    run_client(f, read_client);
    assert_null(f->stream.head);
    ka_stream_close(&f->stream);
    teardown_server(f);
    free(f);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void expect_ok_empty(struct ttrpc_client *c)
{
    struct answer a;
    answer_recv(c, &a);
    assert_int_equal(a.code, 0);
    free(a.payload);
}

/* Drain after exit: the write end stays open (a background child of the process
 * holds it). What it writes within KA_STREAM_DRAIN_MS of the exit is delivered;
 * then the empty pipe is EOF, bounded, not a read that hangs. */
static void *drain_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    assert_int_equal(write(f->pipe_w, "first", 5), 5);
    double exited = mono_s();
    call_u32s(&c, "Exit", 0, 0);
    expect_ok_empty(&c);
    read_expect(&c, 32768, "first", 5); /* what the pipe held at the exit */
    /* Empty but held: parked, and the late write still reaches it. */
    call_u32s(&c, "Read", 32768, 0);
    usleep(100000);
    assert_int_equal(write(f->pipe_w, "late", 4), 4);
    struct answer a;
    answer_recv(&c, &a);
    assert_bytes_message(&a, (const uint8_t *)"late", 4);
    free(a.payload);
    /* Nothing more: EOF at the drain deadline (counted from the exit), not before. */
    read_expect_empty(&c, 0);
    double took = mono_s() - exited;
    assert_true(took >= (KA_STREAM_DRAIN_MS - 20) / 1000.0);
    assert_true(took < 3.0);
    read_expect_eof(&c, 0);
    /* Written after EOF was told: never read (the stream has ended). */
    assert_int_equal(write(f->pipe_w, "after", 5), 5);
    read_expect_eof(&c, 0);
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

static void test_stream_drain_after_exit(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    setup_stream(f);
    run_client(f, drain_client);
    assert_null(f->stream.head);
    assert_false(f->stream.drain_timer.active);
    close(f->pipe_w);
    ka_stream_close(&f->stream);
    teardown_server(f);
    free(f);
}

/* The process record goes while reads wait (WaitProcess, RemoveContainer): the
 * first read is told EOF with an empty success, the one queued behind it with the
 * error status, whatever writer still holds the pipe. */
static void *close_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    call_u32s(&c, "Read", 32768, 0);
    call_u32s(&c, "Read", 32768, 0);
    usleep(20000);
    call_u32s(&c, "Close", 0, 0);
    struct answer a;
    answer_recv(&c, &a); /* the first read */
    assert_int_equal(a.code, 0);
    assert_int_equal(a.len, 0);
    free(a.payload);
    answer_recv(&c, &a); /* the second */
    assert_int_equal(a.code, KA_STATUS_INTERNAL);
    assert_string_equal(a.message, "eof");
    free(a.payload);
    expect_ok_empty(&c); /* Close */
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

static void test_stream_closed_under_reads(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    setup_stream(f);
    run_client(f, close_client);
    assert_null(f->stream.head);
    close(f->pipe_w);
    ka_stream_close(&f->stream);
    teardown_server(f);
    free(f);
}

static void *cancel_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    call_u32s(&c, "Read", 32768, 0); /* parked: the pipe is empty */
    call_u32s(&c, "Read", 32768, 0); /* queued behind it */
    usleep(20000);
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

/* The host goes away with reads parked: they are forgotten and the pipe unwatched. */
static void test_stream_read_cancelled(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    setup_stream(f);
    run_client(f, cancel_client);
    struct ka_error err;
    for (int i = 0; i < 20; i++)
        ka_reactor_run_once(&f->reactor, 5, &err);
    assert_null(f->stream.head);
    assert_false(f->stream.watch.active);
    /* Data arriving later wakes nobody and is still there for the next reader. */
    assert_int_equal(write(f->pipe_w, "x", 1), 1);
    assert_int_equal(ka_reactor_run_once(&f->reactor, 5, &err), 0);
    close(f->pipe_w);
    ka_stream_close(&f->stream);
    teardown_server(f);
    free(f);
}

/* ---- frames of other types: skipped, the connection stays usable ---------------- */

static void send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void send_frame_of(int fd, uint8_t type, uint32_t sid, const uint8_t *data, uint32_t len)
{
    uint8_t hdr[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = len, .stream_id = sid, .type = type};
    ttrpc_header_encode(&h, hdr);
    send_all(fd, hdr, sizeof(hdr));
    send_all(fd, data, len);
}

#define SKIP_SIZE (1u << 20)

static void *skip_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    uint8_t *junk = malloc(SKIP_SIZE);
    memset(junk, 0xa5, SKIP_SIZE);
    /* A streaming Data frame (type 3), a Response, a type no ttrpc has yet, 1 MiB
     * each, one of them on the stream of the Ping that follows: none is answered, and
     * the connection is not closed. */
    send_frame_of(f->client_fd, TTRPC_TYPE_DATA, 1, junk, SKIP_SIZE);
    send_frame_of(f->client_fd, TTRPC_TYPE_RESPONSE, 3, junk, 16);
    send_frame_of(f->client_fd, 9, 5, junk, SKIP_SIZE);
    send_frame_of(f->client_fd, 9, 7, NULL, 0);
    send_call(&c, "Ping");
    struct answer a;
    answer_recv(&c, &a);
    assert_int_equal(a.code, 0);
    free(a.payload);
    free(junk);
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

static void test_other_frame_types_skipped(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    connect_client(f);
    run_client(f, skip_client);
    assert_int_equal(f->server.buffered, 0);
    teardown_server(f);
    free(f);
}

/* ---- WriteStdin into a full pipe: the request is held, the connection paused ---- */

#define WRITE_SIZE (3u << 20)

/* "Write" into the write end of a non-blocking pipe; the test reads f->pipe_r. */
static void setup_input_stream(struct fixture *f)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    ka_stream_init(&f->in, &f->reactor, p[1], true);
    f->pipe_r = p[0];
    connect_client(f);
}

/* The stream, the server and the fixture itself. */
static void teardown_input_stream(struct fixture *f)
{
    ka_stream_close(&f->in);
    close(f->pipe_r);
    teardown_server(f);
    free(f);
}

static void *write_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    struct ka_error err;
    uint8_t *data = malloc(WRITE_SIZE);
    for (size_t i = 0; i < WRITE_SIZE; i++)
        data[i] = (uint8_t)(i * 13 + (i >> 16));
    /* Three writes the pipe (64 KiB, nobody reading) cannot take: 9 MiB held passes
     * TTRPC_HELD_MAX, so the Ping behind them is not even read. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ttrpc_client_send(&c, "test.Svc", "Write", data, WRITE_SIZE, 0, NULL,
                                           &err),
                         0);
    send_call(&c, "Ping");
    struct pollfd pfd = {.fd = f->client_fd, .events = POLLIN};
    int pr = poll(&pfd, 1, 300);
    assert_int_equal(pr, 0); /* no answer at all while held */
    /* The reader drains the pipe: each write completes whole and in order, then the
     * connection is read again and the Ping answered. */
    uint8_t *got = malloc(WRITE_SIZE);
    for (int i = 0; i < 3; i++) {
        size_t have = 0;
        while (have < WRITE_SIZE) {
            ssize_t n = read(f->pipe_r, got + have, WRITE_SIZE - have);
            assert_true(n > 0);
            have += (size_t)n;
        }
        assert_memory_equal(got, data, WRITE_SIZE);
    }
    /* Three WriteStreamResponse{len: 3 MiB} and the Ping (answered as soon as the held
     * bytes fall back under the mark, so perhaps before the last writes). */
    int writes = 0, pings = 0;
    for (int i = 0; i < 4; i++) {
        struct answer a;
        answer_recv(&c, &a);
        assert_int_equal(a.code, 0);
        const uint8_t want[] = {0x08, 0x80, 0x80, 0xc0, 0x01};
        if (a.len == 0) {
            pings++;
        } else {
            assert_int_equal(a.len, sizeof(want));
            assert_memory_equal(a.payload, want, sizeof(want));
            writes++;
        }
        free(a.payload);
    }
    assert_int_equal(writes, 3);
    assert_int_equal(pings, 1);
    free(data);
    free(got);
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

static void test_write_held_not_copied(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    setup_input_stream(f);
    run_client(f, write_client);
    assert_null(f->in.head);
    assert_int_equal(f->released, 3);
    assert_int_equal(f->server.buffered, 0); /* everything held was released */
    teardown_input_stream(f);
}

/* A held write whose host goes away: the park is cancelled and the object released. */
static void *write_gone_client(void *arg)
{
    struct fixture *f = arg;
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, f->client_fd);
    struct ka_error err;
    size_t n = 1u << 20; /* more than the pipe takes */
    uint8_t *data = calloc(1, n);
    assert_int_equal(ttrpc_client_send(&c, "test.Svc", "Write", data, n, 0, NULL, &err), 0);
    const char msg[] = "kept message";
    assert_int_equal(ttrpc_client_send(&c, "test.Svc", "FailHeld", (const uint8_t *)msg,
                                       sizeof(msg) - 1, 0, NULL, &err),
                     0);
    struct answer a;
    answer_recv(&c, &a);
    assert_int_equal(a.code, KA_STATUS_INVALID_ARGUMENT);
    assert_string_equal(a.message, msg);
    free(a.payload);
    free(data);
    ttrpc_client_close(&c);
    f->client_done = 1;
    return NULL;
}

static void test_write_held_released_when_cancelled(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof(*f));
    setup_server(f);
    setup_input_stream(f);
    run_client(f, write_gone_client);
    /* FailHeld's at its answer, the parked Write's when the host left (perhaps only
     * seen by the loop now). */
    struct ka_error err;
    for (int i = 0; i < 200 && f->released < 2; i++)
        assert_true(ka_reactor_run_once(&f->reactor, 5, &err) >= 0);
    assert_int_equal(f->released, 2);
    assert_null(f->in.head);
    assert_int_equal(f->server.buffered, 0);
    teardown_input_stream(f);
}

int main(void)
{
    int devnull = open("/dev/null", O_WRONLY);
    ka_log_set_fd(devnull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_park_and_answer_later),
        cmocka_unit_test(test_serial_transport),
        cmocka_unit_test(test_stream_reuse_and_call_cap),
        cmocka_unit_test(test_bytes_reply),
        cmocka_unit_test(test_stream_reads),
        cmocka_unit_test(test_stream_read_cancelled),
        cmocka_unit_test(test_stream_drain_after_exit),
        cmocka_unit_test(test_stream_closed_under_reads),
        cmocka_unit_test(test_write_held_not_copied),
        cmocka_unit_test(test_write_held_released_when_cancelled),
        cmocka_unit_test(test_other_frame_types_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
