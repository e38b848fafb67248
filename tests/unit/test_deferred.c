/* Deferred start-up steps (issue 16): run one per loop iteration once started, all
 * at once before the first call that is not Health's, each exactly once; Health is
 * answered while they are still queued. The real dispatcher and server, in process,
 * with recording handlers in place of the agent's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/deferred.h"
#include "rpc/dispatch.h"
#include "ttrpc/client.h"
#include "ttrpc/server.h"

#include "agent.pb-c.h"
#include "health.pb-c.h"

static int steps_run[4];
static int order[4], norder;

static int step(void *data, struct ka_error *err)
{
    int i = (int)(intptr_t)data;
    steps_run[i]++;
    order[norder++] = i;
    /* Step 1 fails: the ones after it still run. */
    return i == 1 ? ka_error_set(err, 0, "step 1 fails on purpose") : 0;
}

static void queue_steps(struct ka_deferred *d, int n)
{
    memset(steps_run, 0, sizeof(steps_run));
    norder = 0;
    ka_deferred_init(d);
    for (int i = 0; i < n; i++)
        ka_deferred_add(d, "test step", step, (void *)(intptr_t)i);
}

static void test_steps_run_one_per_iteration(void **state)
{
    (void)state;
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    struct ka_deferred d;
    queue_steps(&d, 3);
    assert_true(ka_deferred_pending(&d));
    assert_int_equal(norder, 0); /* queued, not run */
    ka_deferred_start(&d, &r, 0);
    assert_int_equal(norder, 0); /* started, still not run: the loop runs them */
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(ka_reactor_run_once(&r, 1000, &err), 1);
        assert_int_equal(norder, i);
    }
    assert_false(ka_deferred_pending(&d));
    assert_int_equal(d.efd, -1); /* the timerfd is gone with the last step */
    /* Nothing is left on the loop: it would wait the whole timeout. */
    assert_int_equal(ka_reactor_run_once(&r, 0, &err), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(steps_run[i], 1);
    }
    ka_deferred_fini(&d);
    ka_reactor_fini(&r);
}

/* Started with a long delay, nothing runs until the kick; then one per iteration. */
static void test_kick_starts_steps(void **state)
{
    (void)state;
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    struct ka_deferred d;
    queue_steps(&d, 2);
    ka_deferred_start(&d, &r, 60 * 1000);
    assert_int_equal(ka_reactor_run_once(&r, 50, &err), 0); /* nothing due */
    assert_int_equal(norder, 0);
    ka_deferred_kick(&d);
    assert_int_equal(ka_reactor_run_once(&r, 1000, &err), 1);
    assert_int_equal(norder, 1);
    assert_int_equal(ka_reactor_run_once(&r, 1000, &err), 1);
    assert_int_equal(norder, 2);
    assert_false(ka_deferred_pending(&d));
    ka_deferred_kick(&d); /* after the end: nothing */
    ka_deferred_fini(&d);
    ka_reactor_fini(&r);
}

/* ---- the gate in the dispatcher -------------------------------------------------- */

struct seen {
    char method[TTRPC_MAX_NAME + 1]; /* a copy: the call is freed once it is answered */
    int steps_done;                  /* how many of the queued steps had run when the handler ran */
};
static struct seen seen[8];
static int nseen;
static volatile int client_done;

static int record(struct agent *agent, struct ttrpc_call *call, const ProtobufCMessage *req,
                  struct ka_error *err)
{
    (void)agent;
    (void)req;
    (void)err;
    snprintf(seen[nseen].method, sizeof(seen[nseen].method), "%s", call->method);
    seen[nseen].steps_done = steps_run[0] + steps_run[1] + steps_run[2];
    nseen++;
    rpc_reply(call, NULL);
    return 0;
}

static const struct rpc_handler health[] = {{"Check", record}, {"Version", record}, {NULL, NULL}};
static const struct rpc_handler agent_svc[] = {{"CreateContainer", record},
                                               {"CreateSandbox", record},
                                               {NULL, NULL}};

static void call(struct ttrpc_client *c, const char *service, const char *method)
{
    struct ka_error err;
    struct ttrpc_reply r;
    assert_int_equal(ttrpc_client_send(c, service, method, NULL, 0, 0, NULL, &err), 0);
    assert_int_equal(ttrpc_client_recv(c, &r, &err), 0);
    assert_int_equal(r.code, 0);
    ttrpc_reply_free(&r);
}

static void *client(void *arg)
{
    struct ttrpc_client c;
    ttrpc_client_adopt(&c, *(int *)arg);
    call(&c, "grpc.Health", "Check");
    call(&c, "grpc.Health", "Version");
    call(&c, "grpc.AgentService", "CreateContainer");
    call(&c, "grpc.AgentService", "CreateSandbox");
    call(&c, "grpc.Health", "Check");
    ttrpc_client_close(&c);
    client_done = 1;
    return NULL;
}

static void test_no_call_before_its_setup(void **state)
{
    (void)state;
    struct ka_reactor r;
    struct ka_error err;
    assert_int_equal(ka_reactor_init(&r, &err), 0);
    struct rpc_dispatcher d;
    rpc_dispatcher_init(&d, NULL);
    assert_int_equal(rpc_dispatcher_add(&d, &grpc__health__descriptor, health, &err), 0);
    assert_int_equal(rpc_dispatcher_add(&d, &grpc__agent_service__descriptor, agent_svc, &err), 0);
    struct ka_deferred later;
    queue_steps(&later, 3);
    d.setup = &later;
    /* Not started on the loop, so only the gate can run the steps: whatever the
     * scheduling, Health must come before them and the rest after all of them. */
    struct ttrpc_server server;
    ttrpc_server_init(&server, &r, rpc_dispatch, &d);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(ttrpc_server_adopt_serial(&server, sv[0], &err), 0);
    nseen = 0;
    client_done = 0;
    pthread_t t;
    pthread_create(&t, NULL, client, &sv[1]);
    for (int i = 0; i < 2000 && !client_done; i++)
        assert_true(ka_reactor_run_once(&r, 5, &err) >= 0);
    pthread_join(t, NULL);
    assert_true(client_done);

    assert_int_equal(nseen, 5);
    assert_string_equal(seen[0].method, "Check");
    assert_int_equal(seen[0].steps_done, 0);
    assert_string_equal(seen[1].method, "Version");
    assert_int_equal(seen[1].steps_done, 0);
    assert_string_equal(seen[2].method, "CreateContainer");
    assert_int_equal(seen[2].steps_done, 3);
    assert_string_equal(seen[3].method, "CreateSandbox");
    assert_int_equal(seen[3].steps_done, 3);
    assert_string_equal(seen[4].method, "Check");
    for (int i = 0; i < 3; i++)
        assert_int_equal(steps_run[i], 1); /* once each, in order, the failure included */
    assert_false(ka_deferred_pending(&later));
    ttrpc_server_shutdown(&server);
    rpc_dispatcher_fini(&d);
    ka_deferred_fini(&later);
    ka_reactor_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_run_one_per_iteration),
        cmocka_unit_test(test_kick_starts_steps),
        cmocka_unit_test(test_no_call_before_its_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
