/* Spec conversion and validation (rpc/oci_convert.c, container/spec.c) on any bytes;
 * what passes must hold the invariants the engine relies on (issue 13): no user id
 * above INT32_MAX ((uid_t)-1 would keep the agent's uid), and a cgroup path that the
 * overlap check compares consistently. */
#include <stdint.h>
#include <stddef.h>
#include "cgroups/cgroup.h"
#include "rpc/oci_convert.h"

static void check_user(const struct ka_user *u)
{
    if (!ka_id_number_ok(u->uid) || !ka_id_number_ok(u->gid))
        __builtin_trap();
    for (size_t i = 0; i < u->n_additional_gids; i++)
        if (!ka_id_number_ok(u->additional_gids[i]))
            __builtin_trap();
}

static void check_cgroup_path(const struct ka_spec *s)
{
    char path[KA_CGROUP_PATH_MAX + 2];
    struct ka_error err = {0};
    if (ka_cgroup_path(s->cgroups_path, "fuzz", path, sizeof(path), &err) < 0)
        return;
    static const char *const others[] = {"/kubepods/pod1/c1", "/kubepods", "/fuzz", "/a/b"};
    if (!ka_cgroup_paths_overlap(path, path))
        __builtin_trap();
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        if (ka_cgroup_paths_overlap(path, others[i]) != ka_cgroup_paths_overlap(others[i], path))
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Grpc__Spec *in = grpc__spec__unpack(NULL, size, data);
    if (!in)
        return 0;
    struct ka_spec *s = NULL;
    struct ka_error err = {0};
    if (ka_spec_from_proto(in, &s, &err) == 0) {
        check_user(&s->process.user);
        check_cgroup_path(s);
        ka_spec_free(s);
    }
    if (in->process) {
        struct ka_process p;
        if (ka_process_from_proto(in->process, &p, &err) == 0) {
            check_user(&p.user);
            ka_process_free(&p);
        }
    }
    grpc__spec__free_unpacked(in, NULL);
    return 0;
}
