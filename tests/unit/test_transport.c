/* Address parsing, virtio-serial port lookup by name, and who may connect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ttrpc/transport.h"

static void test_parse_vsock(void **state)
{
    (void)state;
    struct ka_addr a;
    struct ka_error err;
    assert_int_equal(ka_addr_parse("vsock://-1:1024", &a, &err), 0);
    assert_int_equal(a.kind, KA_ADDR_VSOCK);
    assert_int_equal(a.cid, VMADDR_CID_ANY);
    assert_int_equal(a.port, 1024);
    assert_int_equal(ka_addr_parse("vsock://3:5000", &a, &err), 0);
    assert_int_equal(a.cid, 3);
    assert_int_equal(a.port, 5000);
    const char *bad[] = {"vsock://",     "vsock://1",       "vsock://:1",
                         "vsock://1:",   "vsock://a:1",     "vsock://1:99999999999",
                         "vsock://-2:1", "tcp://1.2.3.4:1", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_true(ka_addr_parse(bad[i], &a, &err) < 0);
        assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
    }
}

static void test_parse_unix_and_serial(void **state)
{
    (void)state;
    struct ka_addr a;
    struct ka_error err;
    assert_int_equal(ka_addr_parse("unix:///run/kata.sock", &a, &err), 0);
    assert_int_equal(a.kind, KA_ADDR_UNIX);
    assert_string_equal(a.path, "/run/kata.sock");
    assert_true(ka_addr_parse("unix://relative.sock", &a, &err) < 0);
    char longpath[300] = "unix:///";
    memset(longpath + 8, 'a', 200);
    longpath[208] = '\0';
    assert_true(ka_addr_parse(longpath, &a, &err) < 0); /* sun_path holds 108 bytes */

    /* Abstract: "@name", bound without a file, reached by the same name only. */
    assert_true(ka_addr_parse("unix://@", &a, &err) < 0);
    char name[64];
    snprintf(name, sizeof(name), "unix://@ka-test-transport-%d", (int)getpid());
    assert_int_equal(ka_addr_parse(name, &a, &err), 0);
    assert_int_equal(a.kind, KA_ADDR_UNIX);
    assert_string_equal(a.path, name + 7);
    int l = ka_addr_listen(&a, &err);
    assert_true(l >= 0);
    assert_int_equal(access(a.path, F_OK), -1);
    int c = ka_addr_connect(&a, &err);
    assert_true(c >= 0);
    close(c);
    struct ka_addr other;
    snprintf(name, sizeof(name), "unix://@ka-test-transport-%d-x", (int)getpid());
    assert_int_equal(ka_addr_parse(name, &other, &err), 0);
    assert_true(ka_addr_connect(&other, &err) < 0); /* another name, another socket */
    close(l);

    assert_int_equal(ka_addr_parse("serial:///dev/vport0p1", &a, &err), 0);
    assert_int_equal(a.kind, KA_ADDR_SERIAL);
    assert_string_equal(a.path, "/dev/vport0p1");
    assert_string_equal(a.port_name, "");
    assert_int_equal(ka_addr_parse("serial://agent.channel.0", &a, &err), 0);
    assert_string_equal(a.port_name, "agent.channel.0");
    assert_string_equal(a.path, "");
    assert_true(ka_addr_parse("serial://a/b", &a, &err) < 0);
    assert_true(ka_addr_parse("serial://", &a, &err) < 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_find_port_by_name(void **state)
{
    (void)state;
    char dir[] = "/tmp/ka-vports-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[512];
    const char *ports[][2] = {{"vport0p0", "org.qemu.console\n"},
                              {"vport0p1", "agent.channel.0\n"},
                              {"vport1p1", "agent.channel.1"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, ports[i][0]);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/%s/name", dir, ports[i][0]);
        write_file(p, ports[i][1]);
    }
    snprintf(p, sizeof(p), "%s/vport2p1", dir); /* a port with no name file */
    assert_int_equal(mkdir(p, 0755), 0);

    char out[64];
    struct ka_error err;
    assert_int_equal(ka_serial_find_port(dir, "agent.channel.0", out, sizeof(out), &err), 0);
    assert_string_equal(out, "/dev/vport0p1");
    assert_int_equal(ka_serial_find_port(dir, "agent.channel.1", out, sizeof(out), &err), 0);
    assert_string_equal(out, "/dev/vport1p1");
    assert_true(ka_serial_find_port(dir, "agent.channel", out, sizeof(out), &err) < 0);
    assert_non_null(strstr(err.msg, "no virtio-serial port named 'agent.channel'"));

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_true(ka_serial_find_port(dir, "x", out, sizeof(out), &err) < 0);
}

static bool vsock_peer(unsigned cid, bool allow_local)
{
    struct sockaddr_vm vm = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = 54321};
    return ka_peer_addr_allowed((struct sockaddr *)&vm, sizeof(vm), allow_local);
}

/* Only the host (CID 2) may connect over vsock; the guest's own CID 1 (vsock loopback:
 * a container in the guest) only with the test-only opening; any other CID never. */
static void test_vsock_peer_decision(void **state)
{
    (void)state;
    assert_true(vsock_peer(VMADDR_CID_HOST, false));
    assert_true(vsock_peer(VMADDR_CID_HOST, true));
    assert_false(vsock_peer(VMADDR_CID_LOCAL, false));
    assert_true(vsock_peer(VMADDR_CID_LOCAL, true));
    const unsigned never[] = {0, 3, 4, 1000, VMADDR_CID_ANY};
    for (size_t i = 0; i < sizeof(never) / sizeof(*never); i++) {
        assert_false(vsock_peer(never[i], false));
        assert_false(vsock_peer(never[i], true));
    }
    /* A vsock address cut short proves nothing: refused. */
    struct sockaddr_vm vm = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST};
    assert_false(ka_peer_addr_allowed((struct sockaddr *)&vm, sizeof(vm) - 4, false));
    assert_false(ka_peer_addr_allowed((struct sockaddr *)&vm, 0, false));
    /* Unix sockets (host-side tests) are not vsock: unaffected. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_true(ka_peer_addr_allowed((struct sockaddr *)&un, sizeof(sa_family_t), false));
}

/* The accept-time check on a real connection: a unix peer passes; a socket with no peer
 * (getpeername fails) is refused. */
static void test_accepted_peer(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_true(ka_accepted_peer_allowed(sv[0], "test", "socketpair"));
    close(sv[0]);
    close(sv[1]);
    int lone = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lone >= 0);
    assert_false(ka_accepted_peer_allowed(lone, "test", "unconnected"));
    close(lone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_vsock),       cmocka_unit_test(test_parse_unix_and_serial),
        cmocka_unit_test(test_find_port_by_name), cmocka_unit_test(test_vsock_peer_decision),
        cmocka_unit_test(test_accepted_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
