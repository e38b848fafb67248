/* Sandbox-wide behaviour through the real agent: the whole `ctr run` sequence of
 * the protocol reference §8 in order, DestroySandbox with containers still
 * running, and CreateSandbox errors that leave nothing behind. Each test has its
 * own agent, since DestroySandbox ends it. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctr.h"
#include "health.pb-c.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *rootfs;
static char out[1 << 16];

static int group_setup(void **state)
{
    (void)state;
    rootfs = getenv("KA_TEST_ROOTFS");
    if (!rootfs || geteuid() != 0) {
        fprintf(stderr, "needs root and KA_TEST_ROOTFS\n");
        return -1;
    }
    return 0;
}

/* After DestroySandbox the agent exits by itself, with status 0. */
static void expect_agent_exits(struct agent_proc *p)
{
    int status = -1;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
            break;
        usleep(10000);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("agent did not exit cleanly after DestroySandbox (status 0x%x)", status);
    p->pid = 0;
}

/* A file as the agent sees it ("/mountinfo" means the agent's mount table). */
static bool guest_file_contains(const struct agent_proc *p, const char *path, const char *text)
{
    char full[512];
    if (strcmp(path, "/mountinfo") == 0)
        snprintf(full, sizeof(full), "/proc/%d/mountinfo", (int)p->pid);
    else
        snprintf(full, sizeof(full), "/proc/%d/root%s", (int)p->pid, path);
    FILE *f = fopen(full, "r");
    if (!f)
        return false;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static void test_ctr_run_sequence(void **state)
{
    (void)state;
    struct agent_proc a;
    agent_start_isolated(&a, NULL);
    struct ctr t;
    ctr_open(&t, &a);

    /* 1. Health.Check */
    Grpc__CheckRequest check = GRPC__CHECK_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "Check", &check.base, &grpc__health_check_response__descriptor,
                              NULL),
                     0);

    /* 2. CreateSandbox with the sandbox shm storage and DNS */
    Grpc__CreateSandboxRequest cs = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    cs.hostname = (char *)"pod-host";
    cs.sandbox_id = (char *)"sandbox1";
    char *dns[] = {"nameserver 10.11.12.13", "  search example.test  "};
    cs.dns = dns;
    cs.n_dns = 2;
    Grpc__Storage *shm =
        storage_new("ephemeral", "shm", "tmpfs", "/run/kata-containers/sandbox/shm");
    strv_add(&shm->options, &shm->n_options, "noexec");
    strv_add(&shm->options, &shm->n_options, "nosuid");
    strv_add(&shm->options, &shm->n_options, "size=65536k");
    Grpc__Storage *storages[] = {shm};
    cs.storages = storages;
    cs.n_storages = 1;
    if (ctr_call(&t, "CreateSandbox", &cs.base, NULL, NULL) != 0)
        fail_msg("CreateSandbox: %s", t.msg);
    protobuf_c_message_free_unpacked(&shm->base, NULL);
    assert_true(guest_file_contains(&a, "/etc/resolv.conf",
                                    "nameserver 10.11.12.13\nsearch example.test\n"));
    assert_true(guest_file_contains(&a, "/mountinfo", "/run/kata-containers/sandbox/shm"));

    /* 3. GetGuestDetails */
    Grpc__GuestDetailsRequest gd = GRPC__GUEST_DETAILS_REQUEST__INIT;
    gd.mem_block_size = true;
    gd.mem_hotplug_probe = true;
    Grpc__GuestDetailsResponse *details = NULL;
    assert_int_equal(ctr_call(&t, "GetGuestDetails", &gd.base,
                              &grpc__guest_details_response__descriptor,
                              (ProtobufCMessage **)&details),
                     0);
    assert_non_null(details->agent_details);
    assert_string_equal(details->agent_details->version, KA_TEST_VERSION);
    assert_true(details->agent_details->n_storage_handlers >= 2);
    protobuf_c_message_free_unpacked(&details->base, NULL);

    /* 4, 5. Sent on every container creation. */
    Grpc__OnlineCPUMemRequest oc = GRPC__ONLINE_CPUMEM_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "OnlineCPUMem", &oc.base, NULL, NULL), 0);
    Grpc__UpdateEphemeralMountsRequest ue = GRPC__UPDATE_EPHEMERAL_MOUNTS_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "UpdateEphemeralMounts", &ue.base, NULL, NULL), 0);

    /* 6, 7. CreateContainer with /dev/shm bound from the sandbox shm, StartContainer. */
    Grpc__Spec *spec =
        spec_new(rootfs, ARGS("sh", "-c", "hostname; grep -c /dev/shm /proc/self/mountinfo"));
    for (size_t i = 0; i < spec->n_mounts; i++) {
        Grpc__Mount *m = spec->mounts[i];
        if (strcmp(m->destination, "/dev/shm") == 0) {
            free(m->type);
            free(m->source);
            m->type = strdup("bind");
            m->source = strdup("/run/kata-containers/sandbox/shm");
            for (size_t j = 0; j < m->n_options; j++)
                free(m->options[j]);
            m->n_options = 0;
            strv_add(&m->options, &m->n_options, "rbind");
        }
    }
    if (ctr_create(&t, "ctr1", spec) != 0)
        fail_msg("CreateContainer: %s", t.msg);
    spec_free(spec);
    assert_int_equal(ctr_start(&t, "ctr1"), 0);

    /* 8. ReadStdout to its EOF status, then 11. WaitProcess. */
    ctr_read_all(&t, "ctr1", "", false, out, sizeof(out));
    assert_string_equal(out, "pod-host\n1\n");
    int status = -1;
    assert_int_equal(ctr_wait(&t, "ctr1", "", &status), 0);
    assert_int_equal(status, 0);

    /* Container.stop(): SignalProcess KILL (error ignored), WaitProcess (error
     * expected: already collected), RemoveContainer, RemoveStaleVirtiofsShareMounts. */
    ctr_signal(&t, "ctr1", "", SIGKILL);
    assert_int_not_equal(ctr_wait(&t, "ctr1", "ctr1", &status), 0);
    assert_int_equal(ctr_remove(&t, "ctr1"), 0);
    Grpc__RemoveStaleVirtiofsShareMountsRequest rs =
        GRPC__REMOVE_STALE_VIRTIOFS_SHARE_MOUNTS_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "RemoveStaleVirtiofsShareMounts", &rs.base, NULL, NULL), 0);

    /* 16. DestroySandbox: answered, then the agent ends (not PID 1: exits 0). */
    Grpc__DestroySandboxRequest ds = GRPC__DESTROY_SANDBOX_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "DestroySandbox", &ds.base, NULL, NULL), 0);
    ctr_close(&t);
    expect_agent_exits(&a);
    agent_stop(&a); /* removes the scratch dir */
}

static void test_destroy_with_running_containers(void **state)
{
    (void)state;
    struct agent_proc a;
    agent_start_isolated(&a, NULL);
    struct ctr t;
    ctr_open(&t, &a);
    assert_int_equal(ctr_create_sandbox(&t, "h"), 0);
    for (int i = 0; i < 3; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "run-%d", i);
        Grpc__Spec *spec = spec_new(rootfs, ARGS("sleep", "1000"));
        assert_int_equal(ctr_create(&t, cid, spec), 0);
        spec_free(spec);
        if (i < 2) /* one stays created, never started */
            assert_int_equal(ctr_start(&t, cid), 0);
    }
    Grpc__DestroySandboxRequest ds = GRPC__DESTROY_SANDBOX_REQUEST__INIT;
    assert_int_equal(ctr_call(&t, "DestroySandbox", &ds.base, NULL, NULL), 0);
    ctr_close(&t);
    expect_agent_exits(&a);
    agent_stop(&a);
}

static void test_create_sandbox_errors_leave_nothing(void **state)
{
    (void)state;
    struct agent_proc a;
    agent_start_isolated(&a, NULL);
    struct ctr t;
    ctr_open(&t, &a);
    Grpc__CreateSandboxRequest cs = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    cs.hostname = (char *)"h";
    Grpc__Storage *good =
        storage_new("ephemeral", "tmpfs", "tmpfs", "/run/kata-containers/sandbox/ephemeral/a");
    Grpc__Storage *bad = storage_new("nfs-magic", "x", "nfs", "/run/kata-containers/sandbox/b");
    Grpc__Storage *storages[] = {good, bad};
    cs.storages = storages;
    cs.n_storages = 2;
    assert_int_equal(ctr_call(&t, "CreateSandbox", &cs.base, NULL, NULL), 3);
    assert_non_null(strstr(t.msg, "storage driver 'nfs-magic' is not supported"));
    /* The ephemeral mount made before the failure is gone again. */
    assert_false(guest_file_contains(&a, "/mountinfo", "/run/kata-containers/sandbox/ephemeral/a"));

    /* The shared fs where the host offers none (no virtio-fs device here): a clear
     * error naming the mount; the real mount is exercised in the guest e2e test. */
    Grpc__Storage *vfs = storage_new("virtio-fs", "kataShared", "virtiofs",
                                     "/run/kata-containers/shared/containers/");
    storages[1] = vfs;
    assert_int_equal(ctr_call(&t, "CreateSandbox", &cs.base, NULL, NULL), 13);
    /* The mount point is named as the registry keeps it: trailing '/' dropped. */
    assert_non_null(
        strstr(t.msg, "mount kataShared (virtiofs) on /run/kata-containers/shared/containers"));
    assert_false(guest_file_contains(&a, "/mountinfo", "/run/kata-containers/sandbox/ephemeral/a"));
    protobuf_c_message_free_unpacked(&vfs->base, NULL);
    storages[1] = bad;

    /* A kernel module that is not there: an error naming it (from modules.dep, or
     * for want of one), and nothing of the sandbox made. */
    Grpc__KernelModule mod = GRPC__KERNEL_MODULE__INIT;
    mod.name = (char *)"ka_no_such_module_xyz";
    Grpc__KernelModule *mods[] = {&mod};
    cs.storages = NULL;
    cs.n_storages = 0;
    cs.kernel_modules = mods;
    cs.n_kernel_modules = 1;
    assert_int_not_equal(ctr_call(&t, "CreateSandbox", &cs.base, NULL, NULL), 0);
    assert_non_null(strstr(t.msg, "kernel module ka_no_such_module_xyz"));

    /* Corrected, it works. */
    cs.kernel_modules = NULL;
    cs.n_kernel_modules = 0;
    storages[1] = NULL;
    cs.storages = storages;
    cs.n_storages = 1;
    assert_int_equal(ctr_call(&t, "CreateSandbox", &cs.base, NULL, NULL), 0);
    assert_true(guest_file_contains(&a, "/mountinfo", "/run/kata-containers/sandbox/ephemeral/a"));
    protobuf_c_message_free_unpacked(&good->base, NULL);
    protobuf_c_message_free_unpacked(&bad->base, NULL);
    ctr_close(&t);
    agent_stop(&a);
}

/* agent.container_pipe_size: with 1 MiB pipes a process can leave 512 KiB on an
 * unread stdout and still go on to write its stderr (64 KiB pipes would block it). */
static void test_container_pipe_size(void **state)
{
    (void)state;
    struct agent_proc a;
    agent_start_isolated(&a, "agent.container_pipe_size=1048576");
    struct ctr t;
    ctr_open(&t, &a);
    assert_int_equal(ctr_create_sandbox(&t, "h"), 0);
    Grpc__Spec *spec =
        spec_new(rootfs,
                 ARGS("sh", "-c", "ka-payload write-bytes 524288 2>/dev/null; echo done >&2"));
    ctr_create_start(&t, "pipes", spec);
    int fd = raw_connect(&a);
    Grpc__ReadStreamRequest r = GRPC__READ_STREAM_REQUEST__INIT;
    r.container_id = (char *)"pipes";
    r.exec_id = (char *)"";
    r.len = 32768;
    uint8_t buf[256];
    size_t n = grpc__read_stream_request__pack(&r, buf);
    raw_send_request(fd, 1, "grpc.AgentService", "ReadStderr", buf, n);
    uint32_t sid;
    int code;
    /* raw_recv_response gives up after 5 s: stderr must come while stdout is unread. */
    assert_int_equal(raw_recv_response(fd, &sid, &code, NULL, 0), 0);
    assert_int_equal(code, 0);
    close(fd);
    ctr_read_all(&t, "pipes", "", false, out, sizeof(out));
    int status;
    assert_int_equal(ctr_wait(&t, "pipes", "", &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(ctr_remove(&t, "pipes"), 0);
    ctr_close(&t);
    agent_stop(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctr_run_sequence),
        cmocka_unit_test(test_destroy_with_running_containers),
        cmocka_unit_test(test_create_sandbox_errors_leave_nothing),
        cmocka_unit_test(test_container_pipe_size),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
