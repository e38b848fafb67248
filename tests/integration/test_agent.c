/* The real agent on a unix socket, driven by agent-ctl and by raw ttrpc frames:
 * Health, unimplemented methods, concurrency on one connection, oversize and
 * malformed input, vanishing clients and connection churn without fd leaks. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "health.pb-c.h"
#include "ttrpc/frame.h"

static struct agent_proc agent;
static char out[1 << 16], err[1 << 16];

static int group_setup(void **state)
{
    (void)state;
    agent_start(&agent);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    agent_stop(&agent);
    return 0;
}

static void assert_health_ok(void)
{
    const char *args[] = {"check", NULL};
    assert_int_equal(run_ctl(&agent, out, sizeof(out), err, sizeof(err), args), 0);
    assert_non_null(strstr(out, "\"status\": \"SERVING\""));
}

static void test_health_check(void **state)
{
    (void)state;
    assert_health_ok();
}

static void test_health_version(void **state)
{
    (void)state;
    const char *args[] = {"version", NULL};
    assert_int_equal(run_ctl(&agent, out, sizeof(out), err, sizeof(err), args), 0);
    assert_non_null(strstr(out, "\"agent_version\": \"" KA_TEST_VERSION "\""));
    assert_non_null(strstr(out, "\"grpc_version\": \"0.0.1\""));
}

/* Every AgentService method is known; one with no handler yet answers UNIMPLEMENTED. */
static void test_unimplemented_method(void **state)
{
    (void)state;
    const char *args[] = {"call", "ResizeVolume", "{\"volume_guest_path\": \"/x\", \"size\": 1}",
                          NULL};
    assert_int_equal(run_ctl(&agent, out, sizeof(out), err, sizeof(err), args), 1);
    assert_non_null(strstr(err, "UNIMPLEMENTED (12)"));
    assert_non_null(strstr(err, "/grpc.AgentService/ResizeVolume is not implemented"));
}

static void expect_status(int fd, uint32_t sid, int code, const char *msg_part)
{
    uint32_t got_sid;
    int got_code;
    char msg[512];
    assert_int_equal(raw_recv_response(fd, &got_sid, &got_code, msg, sizeof(msg)), 0);
    assert_int_equal(got_sid, sid);
    assert_int_equal(got_code, code);
    if (msg_part && !strstr(msg, msg_part))
        fail_msg("status message '%s' lacks '%s'", msg, msg_part);
}

static void test_unknown_service_and_method(void **state)
{
    (void)state;
    int fd = raw_connect(&agent);
    raw_send_request(fd, 1, "grpc.NoSuchService", "Check", NULL, 0);
    expect_status(fd, 1, 12, "service grpc.NoSuchService does not exist");
    raw_send_request(fd, 3, "grpc.AgentService", "NoSuchMethod", NULL, 0);
    expect_status(fd, 3, 12, "NoSuchMethod is not implemented");
    close(fd);
}

static void test_200_concurrent_requests(void **state)
{
    (void)state;
    const char *args[] = {"--repeat", "200", "check", NULL};
    assert_int_equal(run_ctl(&agent, out, sizeof(out), err, sizeof(err), args), 0);
    assert_non_null(strstr(out, "{\"sent\":200,\"ok\":200,\"failed\":0}"));

    /* The same on a raw connection, checking every stream id comes back once. */
    int fd = raw_connect(&agent);
    for (uint32_t i = 0; i < 200; i++)
        raw_send_request(fd, 2 * i + 1, "grpc.Health", "Check", NULL, 0);
    bool seen[200] = {false};
    for (int i = 0; i < 200; i++) {
        uint32_t sid;
        int code;
        assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
        assert_int_equal(code, 0);
        assert_true(sid % 2 == 1 && sid < 400);
        assert_false(seen[sid / 2]);
        seen[sid / 2] = true;
    }
    close(fd);
}

/* An oversize frame is answered RESOURCE_EXHAUSTED on its stream and the
 * connection goes on serving. */
static void test_oversize_then_valid(void **state)
{
    (void)state;
    int fd = raw_connect(&agent);
    const uint32_t big = TTRPC_MAX_DATA + 4096;
    uint8_t *junk = calloc(1, big);
    raw_send_frame(fd, 1, TTRPC_TYPE_REQUEST, 0, junk, big);
    free(junk);
    raw_send_request(fd, 3, "grpc.Health", "Check", NULL, 0);
    expect_status(fd, 1, 8, "4 MiB");
    expect_status(fd, 3, 0, NULL);
    close(fd);
}

static void test_bad_requests_keep_connection(void **state)
{
    (void)state;
    int fd = raw_connect(&agent);
    raw_send_request(fd, 2, "grpc.Health", "Check", NULL, 0); /* even stream id */
    expect_status(fd, 2, 3, "stream id must be odd");
    raw_send_frame(fd, 5, TTRPC_TYPE_REQUEST, 0, "\xff\xff\xff", 3); /* not a Request */
    expect_status(fd, 5, 3, "invalid ttrpc request");
    raw_send_request(fd, 7, "grpc.Health", "Check", "\x0a\xff", 2); /* bad CheckRequest */
    expect_status(fd, 7, 3, "not a valid grpc.CheckRequest");
    raw_send_frame(fd, 9, TTRPC_TYPE_DATA, 0, "x", 1); /* Data frames are ignored */
    raw_send_request(fd, 11, "grpc.Health", "Check", NULL, 0);
    expect_status(fd, 11, 0, NULL);
    close(fd);
}

/* Bytes that are not ttrpc: that connection is closed, the others keep working. */
static void test_garbage_closes_only_that_connection(void **state)
{
    (void)state;
    int good = raw_connect(&agent);
    int bad = raw_connect(&agent);
    raw_send(bad, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    assert_true(raw_wait_closed(bad, 5000));
    close(bad);
    raw_send_request(good, 1, "grpc.Health", "Check", NULL, 0);
    expect_status(good, 1, 0, NULL);
    close(good);
    assert_health_ok();
}

static void test_client_vanishes_mid_frame(void **state)
{
    (void)state;
    int base = agent_fd_count(&agent);
    int fd = raw_connect(&agent);
    uint8_t hdr[TTRPC_HEADER_SIZE];
    struct ttrpc_header h = {.length = 1000, .stream_id = 1, .type = TTRPC_TYPE_REQUEST};
    ttrpc_header_encode(&h, hdr);
    raw_send(fd, hdr, sizeof(hdr));
    raw_send(fd, "partial", 7);
    close(fd);
    fd = raw_connect(&agent);
    raw_send(fd, hdr, 4); /* half a header */
    close(fd);
    assert_int_equal(agent_wait_fd_count(&agent, base, 5000), base);
    assert_true(agent_alive(&agent));
    assert_health_ok();
}

/* 10,000 connections opened and dropped (some mid-request, some with replies
 * unread): the agent's fd count comes back to where it started. */
static void test_connection_churn(void **state)
{
    (void)state;
    int base = agent_fd_count(&agent);
    for (int i = 0; i < 10000; i++) {
        int fd = raw_connect(&agent);
        if (i % 3 == 1)
            raw_send_request(fd, 1, "grpc.Health", "Check", NULL, 0);
        else if (i % 3 == 2)
            raw_send(fd, "\0\0\0", 3);
        close(fd);
    }
    assert_int_equal(agent_wait_fd_count(&agent, base, 10000), base);
    assert_health_ok();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_check),
        cmocka_unit_test(test_health_version),
        cmocka_unit_test(test_unimplemented_method),
        cmocka_unit_test(test_unknown_service_and_method),
        cmocka_unit_test(test_200_concurrent_requests),
        cmocka_unit_test(test_oversize_then_valid),
        cmocka_unit_test(test_bad_requests_keep_connection),
        cmocka_unit_test(test_garbage_closes_only_that_connection),
        cmocka_unit_test(test_client_vanishes_mid_frame),
        cmocka_unit_test(test_connection_churn),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
