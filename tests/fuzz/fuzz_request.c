/* libFuzzer: what the host sends, decoded and validated as the agent does before
 * any side effect: (1) the bytes as a ttrpc Request envelope, its payload decoded
 * as the named method's request; (2) the first byte picking an AgentService method
 * and the rest decoded as its request. Requests that carry a container id, an OCI
 * spec or a process go through the same validation and conversion as the handlers. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.pb-c.h"
#include "container/spec.h"
#include "health.pb-c.h"
#include "rpc/oci_convert.h"
#include "storage/copyfile.h"
#include "storage/storage_int.h"
#include "ttrpc.pb-c.h"

static const ProtobufCServiceDescriptor *const services[] = {
    &grpc__agent_service__descriptor,
    &grpc__health__descriptor,
};

/* The first field named container_id, if the message has one (a string). */
static const char *container_id_of(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "container_id");
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(const char *const *)((const char *)m + f->offset);
}

/* A storage mount point the one check accepts is below the run directory and
 * has no empty, "." or ".." component and no trailing '/'. */
static void check_mount_points(Grpc__Storage *const *st, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char norm[PATH_MAX];
        struct ka_error err;
        if (!st[i]->mount_point ||
            ka_st_mount_point_check(st[i]->mount_point, norm, sizeof(norm), &err) < 0)
            continue;
        size_t len = strlen(norm);
        if (strncmp(norm, KA_STORAGE_RUN_DIR "/", strlen(KA_STORAGE_RUN_DIR) + 1) != 0 ||
            strstr(norm, "//") || strstr(norm, "/./") || strstr(norm, "/../") ||
            norm[len - 1] == '/' || (len >= 2 && strcmp(norm + len - 2, "/.") == 0) ||
            (len >= 3 && strcmp(norm + len - 3, "/..") == 0))
            abort();
    }
}

static void validate(const ProtobufCMethodDescriptor *md, const ProtobufCMessage *m)
{
    const char *cid = container_id_of(m);
    if (cid)
        (void)ka_valid_id(cid);
    struct ka_error err;
    if (md->input == &grpc__create_container_request__descriptor) {
        const Grpc__CreateContainerRequest *r = (const Grpc__CreateContainerRequest *)m;
        struct ka_spec *spec = NULL;
        if (r->oci && ka_spec_from_proto(r->oci, &spec, &err) == 0)
            ka_spec_free(spec);
        check_mount_points(r->storages, r->n_storages);
    } else if (md->input == &grpc__create_sandbox_request__descriptor) {
        const Grpc__CreateSandboxRequest *r = (const Grpc__CreateSandboxRequest *)m;
        check_mount_points(r->storages, r->n_storages);
    } else if (md->input == &grpc__update_ephemeral_mounts_request__descriptor) {
        const Grpc__UpdateEphemeralMountsRequest *r = (const Grpc__UpdateEphemeralMountsRequest *)m;
        check_mount_points(r->storages, r->n_storages);
    } else if (md->input == &grpc__copy_file_request__descriptor) {
        const Grpc__CopyFileRequest *r = (const Grpc__CopyFileRequest *)m;
        struct ka_copyfile c = {.path = r->path,
                                .file_size = r->file_size,
                                .file_mode = r->file_mode,
                                .dir_mode = r->dir_mode,
                                .uid = r->uid,
                                .gid = r->gid,
                                .offset = r->offset,
                                .data = r->data.data,
                                .len = r->data.len};
        (void)ka_copyfile_check(&c, &err);
    } else if (md->input == &grpc__exec_process_request__descriptor) {
        const Grpc__ExecProcessRequest *r = (const Grpc__ExecProcessRequest *)m;
        struct ka_process p;
        if (r->process && ka_process_from_proto(r->process, &p, &err) == 0)
            ka_process_free(&p);
    }
}

static void decode(const ProtobufCMethodDescriptor *md, const uint8_t *data, size_t size)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(md->input, NULL, size, data);
    if (!m)
        return;
    validate(md, m);
    protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Ttrpc__Request *req = ttrpc__request__unpack(NULL, size, data);
    if (req) {
        for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
            if (!req->service || strcmp(req->service, services[i]->name) != 0 || !req->method)
                continue;
            const ProtobufCMethodDescriptor *md =
                protobuf_c_service_descriptor_get_method_by_name(services[i], req->method);
            if (md)
                decode(md, req->payload.data, req->payload.len);
        }
        ttrpc__request__free_unpacked(req, NULL);
    }
    if (size > 0) {
        const ProtobufCServiceDescriptor *svc = services[0];
        decode(&svc->methods[data[0] % svc->n_methods], data + 1, size - 1);
    }
    return 0;
}
