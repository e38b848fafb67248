/* A Kubernetes pod through the real agent, with the requests shaped as CRI
 * containerd and the Kata Go runtime send them (issue 14 item 7):
 *  - CreateSandbox with the hostname and the sandbox shm storage; the pause
 *    container first, then two app containers. The runtime strips the network
 *    and pid namespaces and empties every namespace path, so each container
 *    arrives with "ipc", "uts" and "mount" and the agent puts it in the
 *    sandbox's IPC and UTS namespaces; the pid namespace is the container's own,
 *    or the pause's with sandbox_pidns (shareProcessNamespace);
 *  - CRI's /etc/hosts, /etc/hostname, /etc/resolv.conf and /dev/termination-log
 *    as binds of files the runtime copied into the shared directory, /dev/shm
 *    bound from the sandbox shm, a memory-backed emptyDir as an `ephemeral`
 *    storage both app containers carry (one mount, reference counted), and a
 *    configmap as a `watchable-bind` storage whose source kubelet updates the
 *    way its atomic writer does (a new timestamped directory, `..data` swapped);
 *  - kubelet's stop path: SIGTERM to the init (exec id = container id), wait,
 *    the termination message (in the host's file, and by GetDiagnosticData as a
 *    4.x runtime reads it), remove; the pause killed with SIGKILL to every
 *    process (empty exec id);
 *  - cgroupsPath as containerd writes it for the cgroupfs driver
 *    (/kubepods/burstable/pod<uid>/<id>) and for the systemd driver
 *    (slice:prefix:name, turned into a path as upstream does when the agent is
 *    init), the containers' limits on their own cgroups below the pod parent.
 * Afterwards no container process, mount or cgroup of the pod is left.
 *
 * The host's cgroup hierarchies (v1 here) are used directly: every name carries
 * this test's pid. Both cgroupsPath forms on v2: test_cgroups natively, and a
 * whole pod with the systemd form in the guest (tests/e2e). */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctr.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define FMT(buf, ...)                                                         \
    do {                                                                      \
        if ((size_t)snprintf((buf), sizeof(buf), __VA_ARGS__) >= sizeof(buf)) \
            fail_msg("%s:%d: text too long", __FILE__, __LINE__);             \
    } while (0)

#define SHARED "/run/kata-containers/shared/containers"
#define SANDBOX_SHM "/run/kata-containers/sandbox/shm"
#define EPHEMERAL "/run/kata-containers/sandbox/ephemeral"
#define HOSTS "127.0.0.1\tlocalhost\n10.244.0.7\tpod-host\n"
#define RESOLV "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\n"

static const char *rootfs;
static char out[1 << 16];

struct pod {
    struct agent_proc a;
    struct ctr t;
    bool systemd;   /* cgroupsPath in the systemd driver's form */
    bool share_pid; /* shareProcessNamespace */
    char uid[32];   /* the pod's uid as it appears in cgroup names */
    char pause[64], app1[64], app2[64];
    char empty_dir[128]; /* the emptyDir's mount point in the guest */
    char cm_src[160];    /* the configmap in the shared directory */
    char cm_mp[160];     /* its watchable copy */
};

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

/* A path as the agent sees it (it runs in its own mount namespace). */
static void in_agent(const struct pod *p, const char *path, char *buf, size_t size)
{
    if ((size_t)snprintf(buf, size, "/proc/%d/root%s", (int)p->a.pid, path) >= size)
        fail_msg("path too long: %s", path);
}

static void put_file(const struct pod *p, const char *path, const char *text)
{
    char full[512];
    in_agent(p, path, full, sizeof(full));
    char dir[512];
    FMT(dir, "%s", full);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(sh("mkdir -p '%s'", dir), 0);
    FILE *f = fopen(full, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static bool read_whole(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return true;
}

/* The container's cgroup path as containerd writes it into the spec. */
static void cgroups_path(const struct pod *p, const char *cid, char *buf, size_t size)
{
    int n = p->systemd ? snprintf(buf, size, "kubepods-burstable-pod%s.slice:cri-containerd:%s",
                                  p->uid, cid)
                       : snprintf(buf, size, "/kubepods/burstable/pod%s/%s", p->uid, cid);
    if ((size_t)n >= size)
        fail_msg("cgroups path too long");
}

/* The pod-level parent the agent makes of it: upstream turns every ':' into '/'
 * when it has no systemd to ask (the agent as init). */
static void pod_cgroup(const struct pod *p, char *buf, size_t size)
{
    int n = p->systemd
                ? snprintf(buf, size, "/kubepods-burstable-pod%s.slice/cri-containerd", p->uid)
                : snprintf(buf, size, "/kubepods/burstable/pod%s", p->uid);
    if ((size_t)n >= size)
        fail_msg("cgroup path too long");
}

static Grpc__Mount *find_mount(Grpc__Spec *s, const char *dest)
{
    for (size_t i = 0; i < s->n_mounts; i++)
        if (strcmp(s->mounts[i]->destination, dest) == 0)
            return s->mounts[i];
    return NULL;
}

static void add_bind(Grpc__Spec *s, const char *dest, const char *src, bool ro)
{
    Grpc__Mount *m = find_mount(s, dest);
    if (!m) {
        m = malloc(sizeof(*m));
        grpc__mount__init(m);
        m->destination = strdup(dest);
        s->mounts = realloc(s->mounts, (s->n_mounts + 1) * sizeof(*s->mounts));
        s->mounts[s->n_mounts++] = m;
    } else {
        free(m->type);
        free(m->source);
        for (size_t j = 0; j < m->n_options; j++)
            free(m->options[j]);
        free(m->options);
        m->options = NULL;
        m->n_options = 0;
    }
    m->type = strdup("bind");
    m->source = strdup(src);
    strv_add(&m->options, &m->n_options, "rbind");
    strv_add(&m->options, &m->n_options, "rprivate");
    strv_add(&m->options, &m->n_options, ro ? "ro" : "rw");
}

static void add_annotation(Grpc__Spec *s, const char *key, const char *value)
{
    Grpc__Spec__AnnotationsEntry *e = malloc(sizeof(*e));
    grpc__spec__annotations_entry__init(e);
    e->key = strdup(key);
    e->value = strdup(value);
    s->annotations = realloc(s->annotations, (s->n_annotations + 1) * sizeof(*s->annotations));
    s->annotations[s->n_annotations++] = e;
}

/* The spec after containerd's CRI and the runtime's changes (kata_agent.go:
 * handleShm, handleEphemeralStorage, the shared-directory binds). */
static Grpc__Spec *pod_spec(const struct pod *p, const char *cid, const char *const *args,
                            bool sandbox)
{
    Grpc__Spec *s = spec_new(rootfs, args);
    char cg[256];
    cgroups_path(p, cid, cg, sizeof(cg));
    free(s->linux->cgroupspath);
    s->linux->cgroupspath = strdup(cg);
    add_annotation(s, "io.kubernetes.cri.container-type", sandbox ? "sandbox" : "container");
    add_annotation(s, "io.kubernetes.cri.sandbox-id", p->pause);
    add_bind(s, "/dev/shm", SANDBOX_SHM, false);
    s->linux->resources = malloc(sizeof(*s->linux->resources));
    grpc__linux_resources__init(s->linux->resources);
    Grpc__LinuxCPU *cpu = malloc(sizeof(*cpu));
    grpc__linux_cpu__init(cpu);
    cpu->shares = sandbox ? 2 : 512; /* containerd's DefaultSandboxCPUshares for the pause */
    cpu->cpus = strdup("");
    cpu->mems = strdup("");
    s->linux->resources->cpu = cpu;
    if (sandbox)
        return s;
    Grpc__LinuxMemory *mem = malloc(sizeof(*mem));
    grpc__linux_memory__init(mem);
    mem->limit = 64 << 20;
    s->linux->resources->memory = mem;
    char src[256];
    FMT(src, SHARED "/%s-0123456789abcdef-hosts", cid);
    put_file(p, src, HOSTS);
    add_bind(s, "/etc/hosts", src, false);
    FMT(src, SHARED "/%s-0123456789abcdef-hostname", cid);
    put_file(p, src, "pod-host\n");
    add_bind(s, "/etc/hostname", src, false);
    FMT(src, SHARED "/%s-0123456789abcdef-resolv.conf", cid);
    put_file(p, src, RESOLV);
    add_bind(s, "/etc/resolv.conf", src, true);
    FMT(src, SHARED "/%s-0123456789abcdef-termination-log", cid);
    put_file(p, src, "");
    add_bind(s, "/dev/termination-log", src, false);
    add_annotation(s, "io.kubernetes.container.terminationMessagePath", "/dev/termination-log");
    add_bind(s, "/cache", p->empty_dir, false);
    return s;
}

static int create(struct pod *p, const char *cid, Grpc__Spec *spec, Grpc__Storage **storages,
                  size_t n)
{
    Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)cid;
    req.exec_id = (char *)cid;
    req.oci = spec;
    req.storages = storages;
    req.n_storages = n;
    req.sandbox_pidns = p->share_pid && strcmp(cid, p->pause) != 0;
    return ctr_call(&p->t, "CreateContainer", &req.base, NULL, NULL);
}

/* One exec, its stdout in out; returns the exit status. */
static int exec_out(struct pod *p, const char *cid, const char *const *args)
{
    static int n;
    char eid[64];
    FMT(eid, "exec-%d", ++n);
    Grpc__Process *proc = process_new(args);
    if (ctr_exec(&p->t, cid, eid, proc) != 0)
        fail_msg("exec in %s: %s", cid, p->t.msg);
    process_free(proc);
    ctr_read_all(&p->t, cid, eid, false, out, sizeof(out));
    int status = -1;
    if (ctr_wait(&p->t, cid, eid, &status) != 0)
        fail_msg("wait exec in %s: %s", cid, p->t.msg);
    return status;
}

/* Wait up to ms for `cat path` in cid to print want. */
static bool cat_becomes(struct pod *p, const char *cid, const char *path, const char *want, int ms)
{
    double end = now_s() + ms / 1000.0;
    do {
        if (exec_out(p, cid, ARGS("busybox", "cat", path)) == 0 && strcmp(out, want) == 0)
            return true;
        usleep(50000);
    } while (now_s() < end);
    fprintf(stderr, "cat %s in %s: \"%s\", not \"%s\"\n", path, cid, out, want);
    return false;
}

struct ns_ids {
    char host[64], ipc[64], uts[64], pid[64];
};

static void ns_of(struct pod *p, const char *cid, struct ns_ids *ids)
{
    assert_int_equal(
        exec_out(p, cid,
                 ARGS("sh", "-c",
                      "hostname; for n in ipc uts pid; do readlink /proc/self/ns/$n; done")),
        0);
    if (sscanf(out, "%63s %63s %63s %63s", ids->host, ids->ipc, ids->uts, ids->pid) != 4)
        fail_msg("namespaces of %s: %s", cid, out);
}

static unsigned long cg_number(const char *hier, const char *cg, const char *cid, const char *file)
{
    char path[512], text[64];
    FMT(path, "/sys/fs/cgroup/%s%s/%s/%s", hier, cg, cid, file);
    if (!read_whole(path, text, sizeof(text)))
        fail_msg("read %s: %s", path, strerror(errno));
    return strtoul(text, NULL, 10);
}

static bool cg_exists(const char *hier, const char *cg)
{
    char path[512];
    FMT(path, "/sys/fs/cgroup/%s%s", hier, cg);
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* kubelet's StopContainer for an app container: SIGTERM to its init, wait, remove.
 * Before the removal, the termination message as a 4.x runtime asks for it. */
static void stop_app(struct pod *p, const char *cid, const char *message)
{
    assert_int_equal(ctr_signal(&p->t, cid, cid, SIGTERM), 0);
    int status = -1;
    if (ctr_wait(&p->t, cid, cid, &status) != 0)
        fail_msg("wait %s: %s", cid, p->t.msg);
    assert_int_equal(status, 0); /* its TERM trap ran */
    Grpc__GetDiagnosticDataRequest dr = GRPC__GET_DIAGNOSTIC_DATA_REQUEST__INIT;
    dr.container_id = (char *)cid;
    dr.log_type = (char *)"termination_log";
    Grpc__GetDiagnosticDataResponse *diag = NULL;
    if (ctr_call(&p->t, "GetDiagnosticData", &dr.base,
                 &grpc__get_diagnostic_data_response__descriptor, (ProtobufCMessage **)&diag) != 0)
        fail_msg("GetDiagnosticData %s: %s", cid, p->t.msg);
    assert_string_equal(diag->data, message);
    protobuf_c_message_free_unpacked(&diag->base, NULL);
    if (ctr_remove(&p->t, cid) != 0)
        fail_msg("remove %s: %s", cid, p->t.msg);
}

/* kubelet's atomic writer: the data in a new timestamped directory, "..data"
 * swapped to it by a rename, the old directory removed; "key" is a symlink
 * through "..data" throughout. */
static void configmap_write(const struct pod *p, const char *stamp, const char *old,
                            const char *value)
{
    char dir[512];
    in_agent(p, p->cm_src, dir, sizeof(dir));
    assert_int_equal(sh("set -e; mkdir -p '%s'; cd '%s'; mkdir '%s'; printf '%s' > '%s/key'; "
                        "ln -s '%s' ..data_tmp; mv -T ..data_tmp ..data; "
                        "[ -L key ] || ln -s ..data/key key; %s%s%s",
                        dir, dir, stamp, value, stamp, stamp, old ? "rm -rf '" : "", old ? old : "",
                        old ? "'" : ""),
                     0);
}

static struct pod pod;

/* A failed test leaves its agent running: end it (it takes its containers along). */
static int teardown(void **state)
{
    (void)state;
    if (pod.a.pid > 0) {
        kill(pod.a.pid, SIGTERM);
        bool reaped = false;
        for (int i = 0; i < 500 && !(reaped = waitpid(pod.a.pid, NULL, WNOHANG) == pod.a.pid); i++)
            usleep(10000);
        if (!reaped) {
            kill(pod.a.pid, SIGKILL);
            waitpid(pod.a.pid, NULL, 0);
        }
        pod.a.pid = 0;
    }
    return 0;
}

static void run_pod(bool systemd, bool share_pid)
{
    memset(&pod, 0, sizeof(pod));
    pod.systemd = systemd;
    pod.share_pid = share_pid;
    struct pod *p = &pod;
    int me = (int)getpid();
    FMT(p->uid, "ka%d%s", me, systemd ? "s" : "c");
    FMT(p->pause, "pause-%d", me);
    FMT(p->app1, "app1-%d", me);
    FMT(p->app2, "app2-%d", me);
    FMT(p->empty_dir, EPHEMERAL "/cache-%d", me);
    FMT(p->cm_src, SHARED "/%s-0123456789abcdef-config", p->app2);
    FMT(p->cm_mp, SHARED "/watchable/%s-0123456789abcdef-config", p->app2);
    char pod_cg[256];
    pod_cgroup(p, pod_cg, sizeof(pod_cg));

    agent_start_isolated(&p->a, NULL);
    ctr_open(&p->t, &p->a);

    /* CreateSandbox: hostname and the sandbox shm (the runtime's sandbox storage). */
    Grpc__CreateSandboxRequest cs = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    cs.hostname = (char *)"pod-host";
    cs.sandbox_id = p->pause;
    Grpc__Storage *shm = storage_new("ephemeral", "shm", "tmpfs", SANDBOX_SHM);
    strv_add(&shm->options, &shm->n_options, "noexec");
    strv_add(&shm->options, &shm->n_options, "nosuid");
    strv_add(&shm->options, &shm->n_options, "nodev");
    strv_add(&shm->options, &shm->n_options, "mode=1777");
    strv_add(&shm->options, &shm->n_options, "size=67108864");
    cs.storages = &shm;
    cs.n_storages = 1;
    if (ctr_call(&p->t, "CreateSandbox", &cs.base, NULL, NULL) != 0)
        fail_msg("CreateSandbox: %s", p->t.msg);
    storage_free(shm);

    /* The pause container. */
    Grpc__Spec *spec = pod_spec(p, p->pause, ARGS("ka-payload", "pause"), true);
    if (create(p, p->pause, spec, NULL, 0) != 0)
        fail_msg("create pause: %s", p->t.msg);
    spec_free(spec);
    assert_int_equal(ctr_start(&p->t, p->pause), 0);

    /* The configmap as kubelet lays it out, copied into the shared directory. */
    configmap_write(p, "..2026_12_07_10_00_00.000000001", NULL, "v1");

    /* app1 writes into the emptyDir and the shm; both app containers carry the
     * emptyDir storage. The marker is spelt "app1-mark[e]r" when searched for, so
     * that the search does not find itself. */
    Grpc__Storage *empty = storage_new("ephemeral", "tmpfs", "tmpfs", p->empty_dir);
    /* The pod's fsGroup, as the Go runtime passes it (handleEphemeralStorage). */
    strv_add(&empty->options, &empty->n_options, "fsgid=2000");
    spec = pod_spec(p, p->app1,
                    ARGS("sh", "-c",
                         "trap 'echo stopped > /dev/termination-log; exit 0' TERM; "
                         "echo from-app1 > /cache/shared; "
                         "echo shm-app1 > /dev/shm/seg; "
                         "while :; do sleep 1; done # app1-marker"),
                    false);
    Grpc__Storage *st1[] = {empty};
    if (create(p, p->app1, spec, st1, 1) != 0)
        fail_msg("create app1: %s", p->t.msg);
    spec_free(spec);
    assert_int_equal(ctr_start(&p->t, p->app1), 0);

    Grpc__Storage *cm = storage_new("watchable-bind", p->cm_src, "bind", p->cm_mp);
    spec = pod_spec(p, p->app2, ARGS("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"),
                    false);
    add_bind(spec, "/etc/config", p->cm_mp, true);
    Grpc__Storage *st2[] = {empty, cm};
    if (create(p, p->app2, spec, st2, 2) != 0)
        fail_msg("create app2: %s", p->t.msg);
    spec_free(spec);
    storage_free(empty);
    storage_free(cm);
    assert_int_equal(ctr_start(&p->t, p->app2), 0);

    /* emptyDir and /dev/shm: what app1 wrote, read in app2; one emptyDir mount. */
    assert_true(cat_becomes(p, p->app2, "/cache/shared", "from-app1\n", 5000));
    assert_true(cat_becomes(p, p->app2, "/dev/shm/seg", "shm-app1\n", 5000));
    assert_int_equal(agent_mount_count(&p->a, p->empty_dir, "tmpfs"), 1);
    assert_int_equal(exec_out(p, p->app1, ARGS("busybox", "stat", "-c", "%g %a", "/cache")), 0);
    assert_string_equal(out, "2000 3777\n"); /* the fsGroup's, setgid */

    /* CRI's files from the shared directory. */
    assert_int_equal(exec_out(p, p->app1, ARGS("busybox", "cat", "/etc/hosts")), 0);
    assert_string_equal(out, HOSTS);
    assert_int_equal(exec_out(p, p->app1, ARGS("busybox", "cat", "/etc/hostname")), 0);
    assert_string_equal(out, "pod-host\n");
    assert_int_equal(exec_out(p, p->app2, ARGS("busybox", "cat", "/etc/resolv.conf")), 0);
    assert_string_equal(out, RESOLV);
    assert_int_not_equal(exec_out(p, p->app2, ARGS("sh", "-c", "echo x >> /etc/resolv.conf")), 0);

    /* IPC and UTS shared by all three, not the agent's; pid namespaces apart, or
     * the pause's for all with shareProcessNamespace. */
    struct ns_ids np, n1, n2;
    ns_of(p, p->pause, &np);
    ns_of(p, p->app1, &n1);
    ns_of(p, p->app2, &n2);
    assert_string_equal(np.host, "pod-host");
    assert_string_equal(n1.host, "pod-host");
    assert_string_equal(n2.host, "pod-host");
    assert_string_equal(n1.ipc, np.ipc);
    assert_string_equal(n2.ipc, np.ipc);
    assert_string_equal(n1.uts, np.uts);
    assert_string_equal(n2.uts, np.uts);
    char own[512], link[64];
    FMT(own, "/proc/%d/ns/ipc", (int)p->a.pid);
    ssize_t ll = readlink(own, link, sizeof(link) - 1);
    assert_true(ll > 0);
    link[ll] = '\0';
    assert_string_not_equal(np.ipc, link);
    /* A SysV segment made in app1 is seen in app2. */
    assert_int_equal(exec_out(p, p->app1, ARGS("ka-payload", "sysv-shm", "create", "0x6b61")), 0);
    assert_int_equal(exec_out(p, p->app2, ARGS("ka-payload", "sysv-shm", "find", "0x6b61")), 0);
    /* POSIX message queues: /dev/mqueue is the shared IPC namespace's. */
    assert_int_equal(exec_out(p, p->app1, ARGS("busybox", "touch", "/dev/mqueue/ka-pod-q")), 0);
    assert_int_equal(exec_out(p, p->app2, ARGS("busybox", "ls", "/dev/mqueue")), 0);
    assert_string_equal(out, "ka-pod-q\n");
    const char *const seen_app1[] = {
        "sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c 'app1-mark[e]r'",
        NULL};
    int found = exec_out(p, p->app2, seen_app1);
    if (share_pid) {
        assert_string_equal(n1.pid, np.pid);
        assert_string_equal(n2.pid, np.pid);
        assert_int_equal(found, 0); /* app1's shell is visible from app2 */
    } else {
        assert_string_not_equal(n1.pid, np.pid);
        assert_string_not_equal(n2.pid, np.pid);
        assert_string_not_equal(n1.pid, n2.pid);
        assert_int_not_equal(found, 0);
    }

    /* The configmap, then kubelet's update of it, seen inside within a few seconds. */
    assert_true(cat_becomes(p, p->app2, "/etc/config/key", "v1", 3000));
    configmap_write(p, "..2026_12_07_10_01_00.000000002", "..2026_12_07_10_00_00.000000001", "v2");
    assert_true(cat_becomes(p, p->app2, "/etc/config/key", "v2", 5000));

    /* cgroups: each container below the pod parent with its own limits. */
    assert_true(cg_exists("memory", pod_cg));
    assert_int_equal(cg_number("memory", pod_cg, p->app1, "memory.limit_in_bytes"), 64 << 20);
    assert_int_equal(cg_number("cpu", pod_cg, p->app2, "cpu.shares"), 512);
    assert_int_equal(cg_number("cpu", pod_cg, p->pause, "cpu.shares"), 2);
    char devs[4096], path[512];
    FMT(path, "/sys/fs/cgroup/devices%s/devices.list", pod_cg);
    assert_true(read_whole(path, devs, sizeof(devs)));
    assert_null(strstr(devs, "a *:* rwm")); /* the pod parent is not wide open */

    /* Stop path: app1 first; its termination message reaches the host's file. */
    stop_app(p, p->app1, "stopped\n");
    char tlog[256], full[512];
    FMT(tlog, SHARED "/%s-0123456789abcdef-termination-log", p->app1);
    in_agent(p, tlog, full, sizeof(full));
    assert_true(read_whole(full, out, sizeof(out)));
    assert_string_equal(out, "stopped\n");
    assert_int_equal(agent_mount_count(&p->a, p->empty_dir, "tmpfs"), 1); /* app2 holds it */
    assert_int_equal(exec_out(p, p->app2, ARGS("busybox", "cat", "/cache/shared")), 0);
    stop_app(p, p->app2, "");
    assert_int_equal(agent_mount_count(&p->a, p->empty_dir, NULL), 0);
    assert_int_equal(agent_mount_count(&p->a, p->cm_mp, NULL), 0);

    /* StopPodSandbox: SIGKILL to everything of the pause, wait, remove. */
    assert_int_equal(ctr_signal(&p->t, p->pause, "", SIGKILL), 0);
    int status = -1;
    assert_int_equal(ctr_wait(&p->t, p->pause, p->pause, &status), 0);
    assert_int_equal(status, 128 + SIGKILL);
    assert_int_equal(ctr_remove(&p->t, p->pause), 0);

    /* Nothing of the pod left: no process, no container mount, no cgroup. */
    char children[256];
    FMT(path, "/proc/%d/task/%d/children", (int)p->a.pid, (int)p->a.pid);
    assert_true(read_whole(path, children, sizeof(children)));
    assert_string_equal(children, "");
    char mi[512];
    FMT(mi, "/proc/%d/mountinfo", (int)p->a.pid);
    assert_true(read_whole(mi, out, sizeof(out)));
    assert_null(strstr(out, p->pause));
    assert_null(strstr(out, p->app1));
    assert_null(strstr(out, p->app2));
    assert_null(strstr(out, "/ephemeral/"));
    const char *const hiers[] = {"memory", "cpu", "devices", "pids", "freezer"};
    for (size_t i = 0; i < sizeof(hiers) / sizeof(*hiers); i++)
        if (cg_exists(hiers[i], pod_cg))
            fail_msg("pod cgroup %s%s is left", hiers[i], pod_cg);
    if (systemd) {
        char slice[256];
        FMT(slice, "/kubepods-burstable-pod%s.slice", p->uid);
        assert_false(cg_exists("memory", slice));
    }

    Grpc__DestroySandboxRequest ds = GRPC__DESTROY_SANDBOX_REQUEST__INIT;
    assert_int_equal(ctr_call(&p->t, "DestroySandbox", &ds.base, NULL, NULL), 0);
    ctr_close(&p->t);
    for (int i = 0; i < 500 && waitpid(p->a.pid, &status, WNOHANG) != p->a.pid; i++)
        usleep(10000);
    p->a.pid = 0;
    agent_stop(&p->a);
}

static void test_pod_cgroupfs(void **state)
{
    (void)state;
    run_pod(false, false);
}

static void test_pod_systemd_path_shared_pidns(void **state)
{
    (void)state;
    run_pod(true, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pod_cgroupfs, teardown),
        cmocka_unit_test_teardown(test_pod_systemd_path_shared_pidns, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
