/* Kata 4.x wire behaviours (issue 14) through the real agent (root, the agent in
 * its own mount namespace): SignalProcess as 4.x runtimes send it, Storage.shared,
 * the storage handlers GetGuestDetails names and the 4.x drivers not implemented. */
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
#include <unistd.h>

#include "ctr.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static struct agent_proc agent;
static struct ctr t;
static const char *rootfs;

/* Read a stream until its text holds want (or the stream ends). */
static void read_until(const char *id, const char *eid, const char *want, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    while (!strstr(buf, want)) {
        size_t got;
        if (ctr_read(&t, id, eid, false, buf + n, size - 1 - n, &got) != 0 || got == 0)
            fail_msg("%s/%s ended before '%s': '%s'", id, eid, want, buf);
        n += got;
        buf[n] = '\0';
    }
}

/* A shell that reports each SIGTERM on stdout and exits with `code` at the
 * `limit`-th one; exit statuses tell what reached it even if output is lost.
 * (The short sleeps keep it responsive: busybox runs a trap once the foreground
 * command ends.) */
#define TERM_COUNTER(label, limit, code)                                                     \
    "n=0; trap 'n=$((n+1)); echo " label "; [ $n -ge " #limit " ] && exit " #code "' TERM; " \
    "echo ready; while :; do sleep 0.05; done"

/* containerd's graceful stop is SIGTERM with all=false, which the runtimes send as
 * an empty exec id: 4.x (2212dbdd48) gives it to the init alone, once. The init
 * would exit 9 on a second SIGTERM, the exec 7 on its first; both must live on
 * until the SIGKILL that follows. */
static void test_sigterm_empty_exec_id_reaches_init_once(void **state)
{
    (void)state;
    const char *id = ctr_unique_id("k4x-term");
    Grpc__Spec *s = spec_new(rootfs, ARGS("sh", "-c", TERM_COUNTER("init-term", 2, 9)));
    ctr_create_start(&t, id, s);
    char buf[4096];
    read_until(id, "", "ready", buf, sizeof(buf));
    Grpc__Process *p = process_new(ARGS("sh", "-c", TERM_COUNTER("exec-term", 1, 7)));
    assert_int_equal(ctr_exec(&t, id, "e-counter", p), 0);
    process_free(p);
    read_until(id, "e-counter", "ready", buf, sizeof(buf));

    assert_int_equal(ctr_signal(&t, id, "", SIGTERM), 0);
    read_until(id, "", "init-term", buf, sizeof(buf)); /* the init got it */
    usleep(500 * 1000); /* room for a second delivery or one to the exec to act */

    /* SIGKILL with an empty exec id is the forced delete: everything goes. */
    assert_int_equal(ctr_signal(&t, id, "", SIGKILL), 0);
    int status;
    assert_int_equal(ctr_wait(&t, id, "e-counter", &status), 0);
    assert_int_equal(status, 128 + SIGKILL);
    assert_int_equal(ctr_wait(&t, id, "", &status), 0);
    assert_int_equal(status, 128 + SIGKILL);
    assert_int_equal(ctr_remove(&t, id), 0);
}

/* SIGKILL with an empty exec id reaches every process: the exec dies of it even
 * when the init is long gone (no pid namespace here to take the exec with it). */
static void test_sigkill_empty_exec_id_kills_all(void **state)
{
    (void)state;
    const char *id = ctr_unique_id("k4x-kill");
    Grpc__Spec *s = spec_new(rootfs, ARGS("sleep", "1000"));
    ctr_create_start(&t, id, s);
    Grpc__Process *p = process_new(ARGS("sleep", "1000"));
    assert_int_equal(ctr_exec(&t, id, "e-sleep", p), 0);
    process_free(p);
    assert_int_equal(ctr_signal(&t, id, "", SIGKILL), 0);
    int status;
    assert_int_equal(ctr_wait(&t, id, "", &status), 0);
    assert_int_equal(status, 128 + SIGKILL);
    assert_int_equal(ctr_wait(&t, id, "e-sleep", &status), 0);
    assert_int_equal(status, 128 + SIGKILL);
    assert_int_equal(ctr_remove(&t, id), 0);
}

/* One container with one storage, run to its end and removed; stdout in out. */
static int run_with_storage(const char *id, const char *script, Grpc__Storage *st, char *out,
                            size_t size)
{
    Grpc__Spec *spec = spec_new(rootfs, ARGS("sh", "-c", script));
    spec_add_bind(spec, "/vol", st->mount_point, NULL);
    if (ctr_create_with_storages(&t, id, spec, &st, 1) != 0)
        fail_msg("CreateContainer %s: %s", id, t.msg);
    spec_free(spec);
    assert_int_equal(ctr_start(&t, id), 0);
    ctr_read_all(&t, id, "", false, out, size);
    int status = -1;
    assert_int_equal(ctr_wait(&t, id, "", &status), 0);
    assert_int_equal(ctr_remove(&t, id), 0);
    return status;
}

/* Storage.shared (4.x): a pod's emptyDir is shared by several containers and kept
 * until the sandbox ends, not released with the container that used it last. */
static void test_shared_storage_outlives_its_containers(void **state)
{
    (void)state;
    char mp[128], out[256];
    snprintf(mp, sizeof(mp), "/run/kata-containers/sandbox/ephemeral/k4x-shared-%d", (int)getpid());
    Grpc__Storage *st = storage_new("ephemeral", "tmpfs", "tmpfs", mp);
    st->shared = true;
    assert_int_equal(run_with_storage(ctr_unique_id("k4x-writer"), "echo kept > /vol/f", st, out,
                                      sizeof(out)),
                     0);
    assert_int_equal(agent_mount_count(&agent, mp, "tmpfs"), 1);
    assert_int_equal(run_with_storage(ctr_unique_id("k4x-reader"), "cat /vol/f", st, out,
                                      sizeof(out)),
                     0);
    assert_string_equal(out, "kept\n");
    assert_int_equal(agent_mount_count(&agent, mp, "tmpfs"), 1);
    storage_free(st);
}

/* GetGuestDetails lists the storage handlers under upstream's names (4.1's
 * STORAGE_HANDLERS, plus 3.3's "9p", which this agent keeps), each once, and
 * only drivers a CreateContainer would take: not 4.x's image_guest_pull or
 * erofs.multi-layer, which answer UNIMPLEMENTED. */
static void test_guest_details_storage_handlers(void **state)
{
    (void)state;
    Grpc__GuestDetailsResponse *resp = ctr_guest_details(&t);
    const Grpc__AgentDetails *d = resp->agent_details;
    assert_non_null(d);
    static const char *const want[] = {"virtio-fs",     "9p",     "ephemeral",
                                       "local",         "blk",    "mmioblk",
                                       "scsi",          "nvdimm", "overlayfs",
                                       "watchable-bind"};
    assert_int_equal(d->n_storage_handlers, sizeof(want) / sizeof(*want));
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        int seen = 0;
        for (size_t j = 0; j < d->n_storage_handlers; j++)
            seen += strcmp(d->storage_handlers[j], want[i]) == 0;
        if (seen != 1)
            fail_msg("storage handler %s listed %d times", want[i], seen);
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);

    /* The 4.x drivers this agent does not have: UNIMPLEMENTED, named. */
    static const char *const later[] = {"image_guest_pull", "erofs.multi-layer"};
    for (size_t i = 0; i < 2; i++) {
        char mp[128];
        snprintf(mp, sizeof(mp), "/run/kata-containers/k4x-later-%d", (int)getpid());
        Grpc__Storage *st = storage_new(later[i], "/dev/null", "erofs", mp);
        Grpc__Spec *spec = spec_new(rootfs, ARGS("true"));
        assert_int_equal(ctr_create_with_storages(&t, ctr_unique_id("k4x-later"), spec, &st, 1),
                         12);
        assert_non_null(strstr(t.msg, later[i]));
        assert_int_equal(agent_mount_count(&agent, mp, NULL), 0);
        spec_free(spec);
        storage_free(st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_empty_exec_id_reaches_init_once),
        cmocka_unit_test(test_sigkill_empty_exec_id_kills_all),
        cmocka_unit_test(test_shared_storage_outlives_its_containers),
        cmocka_unit_test(test_guest_details_storage_handlers),
    };
    ctr_suite_fixtures(&agent, &t, &rootfs, "kata-sandbox");
    return cmocka_run_group_tests(tests, ctr_group_setup, ctr_group_teardown);
}
