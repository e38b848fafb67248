/* The ttrpc server on the reactor, in process: parked calls answered later while
 * other calls on the same connection are answered at once; a dropped connection
 * cancels its parked calls; a serial port (a pty here) carries ttrpc too. The
 * client side runs in a thread with the blocking client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "ttrpc/client.h"
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
};

static void on_cancel(struct ttrpc_call *call)
{
    struct fixture *f = call->park_data;
    for (int i = 0; i < f->nparked; i++)
        if (f->parked[i] == call)
            f->parked[i] = f->parked[--f->nparked];
    f->cancelled++;
}

/* Test service: Park waits for Release; Ping answers at once; Done stops the loop. */
static void dispatch(void *ctx, struct ttrpc_call *call, const uint8_t *payload, size_t len)
{
    (void)payload, (void)len;
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
    send_call(&c, "Park");  /* stream 7: left parked when the client goes */
    send_call(&c, "Nope");  /* stream 9: unknown method */
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
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct ka_error err;
    assert_int_equal(ttrpc_server_adopt_serial(&f->server, sv[0], &err), 0);
    f->client_fd = sv[1];
    pthread_t t;
    pthread_create(&t, NULL, limits_client, f);
    run_until(f, &f->client_done);
    pthread_join(t, NULL);
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

int main(void)
{
    int devnull = open("/dev/null", O_WRONLY);
    ka_log_set_fd(devnull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_park_and_answer_later),
        cmocka_unit_test(test_serial_transport),
        cmocka_unit_test(test_stream_reuse_and_call_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
