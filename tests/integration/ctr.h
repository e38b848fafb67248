/* A typed test client for the container RPCs, over the project's ttrpc client,
 * and a builder for the OCI spec the Kata runtime sends. */
#ifndef KA_TEST_CTR_H
#define KA_TEST_CTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- what the container suites share ---------------------------------------------------- */

/* "name-<pid>", the same string each time for the same name. Container ids (and the
 * cgroup paths that follow them) are global on this host, so two runs of a suite at
 * once must not meet there. */
const char *ctr_unique_id(const char *name);
/* strdup that fails the test instead of returning NULL. */
char *xstrdup(const char *s);

/* KA_TEST_ROOTFS when it exists and we are root; otherwise NULL, after saying why on
 * stderr. */
const char *ctr_test_rootfs(void);
/* A group set-up: ctr_test_rootfs into *rootfs, the agent in its own namespaces
 * (agent_start_isolated with cmdline, NULL for none), t connected to it and
 * CreateSandbox(hostname). 0, or -1 after saying why (what cmocka wants back). */
int ctr_suite_setup(struct agent_proc *agent, struct ctr *t, const char *cmdline,
                    const char *hostname, const char **rootfs);
/* The matching teardown: close t, stop the agent (asserting a clean exit). */
void ctr_suite_teardown(struct agent_proc *agent, struct ctr *t);
/* For a suite that needs no more than that: main names the suite's agent, client,
 * rootfs variable and sandbox hostname once, and passes ctr_group_setup and
 * ctr_group_teardown to cmocka_run_group_tests. */
void ctr_suite_fixtures(struct agent_proc *agent, struct ctr *t, const char **rootfs,
                        const char *hostname);
int ctr_group_setup(void **state);
int ctr_group_teardown(void **state);

/* create + start of a container that keeps running; frees spec; fails the test on
 * an error. */
void ctr_create_start(struct ctr *t, const char *cid, Grpc__Spec *spec);
/* ExecProcess of proc (freed) as eid, its stdout read to EOF into out, its wait: returns
 * its exit status, or -1000 - code when ExecProcess itself failed. A failed wait fails
 * the test. */
int ctr_exec_collect(struct ctr *t, const char *cid, const char *eid, Grpc__Process *proc,
                     char *out, size_t out_size);
/* CreateContainer with storages (n of them), as the runtime sends a volume's; returns the
 * status. */
int ctr_create_with_storages(struct ctr *t, const char *cid, Grpc__Spec *spec, Grpc__Storage **st,
                             size_t n);
/* SIGKILL to the init, its wait, and RemoveContainer, which must succeed. */
void ctr_kill_remove(struct ctr *t, const char *cid);
/* One CopyFile (dir_mode 0755): len bytes of data at offset, in a file of size bytes
 * owned by uid:gid. Returns the status. */
int ctr_copy_file(struct ctr *t, const char *path, uint32_t mode, int64_t size, int64_t offset,
                  uint32_t uid, uint32_t gid, const void *data, size_t len);

/* GetGuestDetails (no memory details asked); fails the test on an error. Free the answer
 * with protobuf_c_message_free_unpacked. */
Grpc__GuestDetailsResponse *ctr_guest_details(struct ctr *t);

/* Spec builders (everything they add is heap-allocated, freed by spec_free). */
/* A mount with options (NULL-terminated list, or NULL for none). */
void spec_add_mount(Grpc__Spec *s, const char *dest, const char *type, const char *src,
                    const char *const *opts);
/* A bind mount as the runtime sends one: "rbind", then mode ("rw", "ro") when given. */
void spec_add_bind(Grpc__Spec *s, const char *dest, const char *src, const char *mode);
/* One capability in the bounding, effective and permitted sets. */
void caps_add(Grpc__LinuxCapabilities *caps, const char *cap);
/* linux.resources, created empty the first time. */
Grpc__LinuxResources *spec_resources(Grpc__Spec *s);
void spec_set_cgroups_path(Grpc__Spec *s, const char *path);
/* A device node for the container (mode 0600). */
void spec_add_device(Grpc__Spec *s, const char *path, const char *type, int64_t major,
                     int64_t minor);
/* A device cgroup rule (major/minor -1 for any). */
void resources_add_device_rule(Grpc__LinuxResources *r, bool allow, const char *type, int64_t major,
                               int64_t minor, const char *access);

#endif
