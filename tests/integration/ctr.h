/* A typed test client for the container RPCs, over the project's ttrpc client,
 * and a builder for the OCI spec the Kata runtime sends. */
#ifndef KA_TEST_CTR_H
#define KA_TEST_CTR_H

#include <stdbool.h>
#include <stddef.h>

#include "agent.pb-c.h"
#include "harness.h"
#include "ttrpc/client.h"

struct ctr {
    struct ttrpc_client client;
    char msg[1024]; /* the last error's message */
    int code;       /* the last call's status code */
};

void ctr_open(struct ctr *t, const struct agent_proc *p);
void ctr_close(struct ctr *t);

/* One call; returns the status code (0 = OK), fills *resp when asked and OK. */
int ctr_call(struct ctr *t, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp);

/* A spec like the one the Kata runtime sends for `ctr run`: the usual mounts
 * (proc, /dev tmpfs, devpts, shm, mqueue, sysfs ro), mount/ipc/uts namespaces,
 * a default PATH, cwd "/", uid 0 and the default capability set. args ends with NULL. */
Grpc__Spec *spec_new(const char *rootfs, const char *const *args);
void spec_free(Grpc__Spec *s);
Grpc__Process *process_new(const char *const *args);
void process_free(Grpc__Process *p);
/* Append one string to a repeated string field. */
void strv_add(char ***v, size_t *n, const char *s);

/* A Storage as the runtime sends it (heap-allocated; storage_free frees it all,
 * options and fs_group included). */
Grpc__Storage *storage_new(const char *driver, const char *source, const char *fstype,
                           const char *mount_point);
void storage_free(Grpc__Storage *s);

int ctr_create_sandbox(struct ctr *t, const char *hostname);
int ctr_create(struct ctr *t, const char *cid, Grpc__Spec *spec);
int ctr_start(struct ctr *t, const char *cid);
int ctr_exec(struct ctr *t, const char *cid, const char *eid, Grpc__Process *proc);
int ctr_wait(struct ctr *t, const char *cid, const char *eid, int *status);
int ctr_signal(struct ctr *t, const char *cid, const char *eid, unsigned sig);
int ctr_remove(struct ctr *t, const char *cid);
int ctr_write(struct ctr *t, const char *cid, const char *eid, const void *data, size_t len);
int ctr_close_stdin(struct ctr *t, const char *cid, const char *eid);
/* One ReadStdout/ReadStderr; returns the status, copies at most size bytes (OK with
 * *got 0 is the empty success that tells EOF first). */
int ctr_read(struct ctr *t, const char *cid, const char *eid, bool err_stream, char *buf,
             size_t size, size_t *got);
/* Read a stream until its EOF error status (3.3's rule: past the one empty success);
 * returns the bytes read (NUL-terminated). */
size_t ctr_read_all(struct ctr *t, const char *cid, const char *eid, bool err_stream, char *buf,
                    size_t size);

/* create + start + read stdout to EOF + wait + remove. Returns the exit status. */
int ctr_run(struct ctr *t, const char *cid, Grpc__Spec *spec, char *out, size_t out_size);

#endif
