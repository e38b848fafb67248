/* kabench: the measuring half of bench/run.sh (see bench/README.md).
 *
 *   kabench time CMD [ARG...]      run CMD, print "wall_us cpu_us" (cpu: rusage of children)
 *   kabench pipe PAYLOAD BYTES     PAYLOAD write-bytes BYTES into a pipe read 32 KiB at a
 *                                  time; print "wall_us cpu_us bytes"
 *   kabench agent ADDR PID ROOTFS CGPARENT [no-sandbox]
 *                                  one connection to the agent (as the Kata runtime keeps);
 *                                  CreateSandbox (unless no-sandbox: bench/boot.sh has made
 *                                  one with the shared-fs storage), then commands on stdin,
 *                                  one result line each:
 *       start            Create+Start+Wait+Remove of /bin/true -> "wall_us cpu_us"
 *       exec             ExecProcess+Wait of true in a running container -> "wall_us cpu_us"
 *       stream BYTES     container running ka-payload write-bytes BYTES, ReadStdout (32 KiB)
 *                        to EOF -> "wall_us cpu_us bytes"
 *       fill N           N containers running sleep -> "ok"
 *       clear            kill and remove the fill containers -> "ok"
 *       quit
 *   cpu_us for the agent = delta of the agent's utime+stime+cutime+cstime (/proc/PID/stat,
 *   clock ticks) + this client's own rusage delta.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.pb-c.h"
#include "health.pb-c.h"
#include "ttrpc/client.h"

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long tv_us(struct timeval tv)
{
    return tv.tv_sec * 1000000LL + tv.tv_usec;
}

static long long rusage_us(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return tv_us(ru.ru_utime) + tv_us(ru.ru_stime);
}

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "kabench: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(1);
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static void strv_add(char ***v, size_t *n, const char *s)
{
    *v = realloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = xstrdup(s);
}

/* ---- the agent side ---- */

static struct ttrpc_client cl;
static int agent_pid;
static const char *rootfs;
static const char *cgparent;
static long hz;

static long long agent_cpu_us(void)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", agent_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read %s", path);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long v[20] = {0};
    /* after ")": field 3 is state; utime is 14, stime 15, cutime 16, cstime 17 */
    int field = 3;
    char *save = NULL;
    for (char *t = strtok_r(p + 2, " ", &save); t && field <= 17;
         t = strtok_r(NULL, " ", &save), field++)
        if (field >= 14)
            v[field - 14] = strtoull(t, NULL, 10);
    return (long long)(v[0] + v[1] + v[2] + v[3]) * 1000000LL / hz;
}

static long long total_cpu_us(void)
{
    return agent_cpu_us() + rusage_us(RUSAGE_SELF);
}

static int call(const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp, int fatal)
{
    struct ka_error err;
    ka_error_clear(&err);
    ProtobufCMessage *r = NULL;
    const char *svc = strcmp(method, "Check") == 0 ? "grpc.Health" : "grpc.AgentService";
    int rc = ttrpc_client_call(&cl, svc, method, req,
                               rd ? rd : &google__protobuf__empty__descriptor, &r, &err);
    if (rc < 0) {
        if (fatal) {
            fprintf(stderr, "kabench: %s: %s\n", method, err.msg);
            exit(1);
        }
        return (int)ka_error_status(&err);
    }
    if (resp)
        *resp = r;
    else if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    return 0;
}

static void add_mount(Grpc__Spec *s, const char *dest, const char *type, const char *src,
                      const char *const *opts)
{
    Grpc__Mount *m = malloc(sizeof(*m));
    grpc__mount__init(m);
    m->destination = xstrdup(dest);
    m->type = xstrdup(type);
    m->source = xstrdup(src);
    for (const char *const *o = opts; o && *o; o++)
        strv_add(&m->options, &m->n_options, *o);
    s->mounts = realloc(s->mounts, (s->n_mounts + 1) * sizeof(*s->mounts));
    s->mounts[s->n_mounts++] = m;
}

static void add_ns(Grpc__Linux *l, const char *type)
{
    Grpc__LinuxNamespace *ns = malloc(sizeof(*ns));
    grpc__linux_namespace__init(ns);
    ns->type = xstrdup(type);
    ns->path = xstrdup("");
    l->namespaces = realloc(l->namespaces, (l->n_namespaces + 1) * sizeof(*l->namespaces));
    l->namespaces[l->n_namespaces++] = ns;
}

static const char *const caps_default[] = {"CAP_CHOWN",
                                           "CAP_DAC_OVERRIDE",
                                           "CAP_FSETID",
                                           "CAP_FOWNER",
                                           "CAP_MKNOD",
                                           "CAP_NET_RAW",
                                           "CAP_SETGID",
                                           "CAP_SETUID",
                                           "CAP_SETFCAP",
                                           "CAP_SETPCAP",
                                           "CAP_NET_BIND_SERVICE",
                                           "CAP_SYS_CHROOT",
                                           "CAP_KILL",
                                           "CAP_AUDIT_WRITE",
                                           NULL};

static Grpc__Process *process_new(const char *const *args)
{
    Grpc__Process *p = malloc(sizeof(*p));
    grpc__process__init(p);
    for (const char *const *a = args; *a; a++)
        strv_add(&p->args, &p->n_args, *a);
    strv_add(&p->env, &p->n_env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
    strv_add(&p->env, &p->n_env, "TERM=xterm");
    p->cwd = xstrdup("/");
    p->user = malloc(sizeof(*p->user));
    grpc__user__init(p->user);
    p->user->username = xstrdup("");
    p->apparmorprofile = xstrdup("");
    p->selinuxlabel = xstrdup("");
    Grpc__LinuxCapabilities *caps = malloc(sizeof(*caps));
    grpc__linux_capabilities__init(caps);
    for (const char *const *c = caps_default; *c; c++) {
        strv_add(&caps->bounding, &caps->n_bounding, *c);
        strv_add(&caps->effective, &caps->n_effective, *c);
        strv_add(&caps->permitted, &caps->n_permitted, *c);
    }
    p->capabilities = caps;
    return p;
}

/* The same mounts and namespaces (pid, ipc, uts, mount) as bench/run.sh gives crun/runc. */
static Grpc__Spec *spec_new(const char *cid, const char *const *args)
{
    Grpc__Spec *s = malloc(sizeof(*s));
    grpc__spec__init(s);
    s->version = xstrdup("1.0.2");
    s->hostname = xstrdup("");
    s->process = process_new(args);
    s->root = malloc(sizeof(*s->root));
    grpc__root__init(s->root);
    s->root->path = xstrdup(rootfs);
    s->root->readonly = true;
    add_mount(s, "/proc", "proc", "proc", (const char *const[]){"nosuid", "noexec", "nodev", NULL});
    add_mount(s, "/dev", "tmpfs", "tmpfs",
              (const char *const[]){"nosuid", "strictatime", "mode=755", "size=65536k", NULL});
    add_mount(s, "/dev/pts", "devpts", "devpts",
              (const char *const[]){"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                                    "gid=5", NULL});
    add_mount(s, "/dev/shm", "tmpfs", "shm",
              (const char *const[]){"nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL});
    add_mount(s, "/dev/mqueue", "mqueue", "mqueue",
              (const char *const[]){"nosuid", "noexec", "nodev", NULL});
    add_mount(s, "/sys", "sysfs", "sysfs",
              (const char *const[]){"nosuid", "noexec", "nodev", "ro", NULL});
    s->linux = malloc(sizeof(*s->linux));
    grpc__linux__init(s->linux);
    char cg[256];
    snprintf(cg, sizeof(cg), "%s/%s", cgparent, cid);
    s->linux->cgroupspath = xstrdup(cg);
    s->linux->rootfspropagation = xstrdup("");
    s->linux->mountlabel = xstrdup("");
    add_ns(s->linux, "pid");
    add_ns(s->linux, "ipc");
    add_ns(s->linux, "uts");
    add_ns(s->linux, "mount");
    const char *masked[] = {"/proc/acpi",
                            "/proc/asound",
                            "/proc/kcore",
                            "/proc/keys",
                            "/proc/latency_stats",
                            "/proc/timer_list",
                            "/proc/timer_stats",
                            "/proc/sched_debug",
                            "/sys/firmware",
                            "/proc/scsi",
                            NULL};
    for (const char *const *m = masked; *m; m++)
        strv_add(&s->linux->maskedpaths, &s->linux->n_maskedpaths, *m);
    const char *ro[] = {"/proc/bus",           "/proc/fs", "/proc/irq", "/proc/sys",
                        "/proc/sysrq-trigger", NULL};
    for (const char *const *m = ro; *m; m++)
        strv_add(&s->linux->readonlypaths, &s->linux->n_readonlypaths, *m);
    return s;
}

static void create(const char *cid, const char *const *args)
{
    Grpc__Spec *s = spec_new(cid, args);
    Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)cid;
    req.exec_id = (char *)cid;
    req.oci = s;
    call("CreateContainer", &req.base, NULL, NULL, 1);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void start(const char *cid)
{
    Grpc__StartContainerRequest req = GRPC__START_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)cid;
    call("StartContainer", &req.base, NULL, NULL, 1);
}

static int wait_proc(const char *cid, const char *eid)
{
    Grpc__WaitProcessRequest req = GRPC__WAIT_PROCESS_REQUEST__INIT;
    req.container_id = (char *)cid;
    req.exec_id = (char *)eid;
    Grpc__WaitProcessResponse *r = NULL;
    call("WaitProcess", &req.base, &grpc__wait_process_response__descriptor,
         (ProtobufCMessage **)&r, 1);
    int st = r->status;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return st;
}

static void remove_ctr(const char *cid)
{
    Grpc__RemoveContainerRequest req = GRPC__REMOVE_CONTAINER_REQUEST__INIT;
    req.container_id = (char *)cid;
    call("RemoveContainer", &req.base, NULL, NULL, 1);
}

static void signal_ctr(const char *cid, unsigned sig)
{
    Grpc__SignalProcessRequest req = GRPC__SIGNAL_PROCESS_REQUEST__INIT;
    req.container_id = (char *)cid;
    req.exec_id = (char *)"";
    req.signal = sig;
    call("SignalProcess", &req.base, NULL, NULL, 0);
}

static int seq;
static int nfill;

static void cmd_start(void)
{
    char cid[64];
    snprintf(cid, sizeof(cid), "kb-start-%d", ++seq);
    long long c0 = total_cpu_us(), t0 = now_us();
    create(cid, (const char *const[]){"/bin/true", NULL});
    start(cid);
    int st = wait_proc(cid, "");
    remove_ctr(cid);
    long long t1 = now_us(), c1 = total_cpu_us();
    if (st != 0)
        die("/bin/true exited %s", st == 0 ? "0" : "non-zero");
    printf("%lld %lld\n", t1 - t0, c1 - c0);
}

static int exec_ready;

static void cmd_exec(void)
{
    if (!exec_ready) {
        create("kb-exec", (const char *const[]){"/bin/sleep", "100000", NULL});
        start("kb-exec");
        exec_ready = 1;
    }
    char eid[64];
    snprintf(eid, sizeof(eid), "kb-e-%d", ++seq);
    long long c0 = total_cpu_us(), t0 = now_us();
    Grpc__Process *p = process_new((const char *const[]){"true", NULL});
    Grpc__ExecProcessRequest req = GRPC__EXEC_PROCESS_REQUEST__INIT;
    req.container_id = (char *)"kb-exec";
    req.exec_id = eid;
    req.process = p;
    call("ExecProcess", &req.base, NULL, NULL, 1);
    int st = wait_proc("kb-exec", eid);
    long long t1 = now_us(), c1 = total_cpu_us();
    protobuf_c_message_free_unpacked(&p->base, NULL);
    if (st != 0)
        die("exec of true exited %s", "non-zero");
    printf("%lld %lld\n", t1 - t0, c1 - c0);
}

static void cmd_stream(const char *bytes)
{
    char cid[64];
    snprintf(cid, sizeof(cid), "kb-stream-%d", ++seq);
    create(cid, (const char *const[]){"/usr/bin/ka-payload", "write-bytes", bytes, NULL});
    long long c0 = total_cpu_us(), t0 = now_us(), self0 = rusage_us(RUSAGE_SELF);
    start(cid);
    unsigned long long total = 0;
    for (;;) {
        Grpc__ReadStreamRequest req = GRPC__READ_STREAM_REQUEST__INIT;
        req.container_id = cid;
        req.exec_id = (char *)"";
        req.len = 32768;
        Grpc__ReadStreamResponse *r = NULL;
        if (call("ReadStdout", &req.base, &grpc__read_stream_response__descriptor,
                 (ProtobufCMessage **)&r, 0) != 0)
            break; /* EOF comes as an error status */
        total += r->data.len;
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    int st = wait_proc(cid, "");
    long long t1 = now_us(), c1 = total_cpu_us(), self1 = rusage_us(RUSAGE_SELF);
    remove_ctr(cid);
    if (st != 0)
        die("payload exited %s", "non-zero");
    /* wall, CPU of all (agent, its writer, this client), bytes, this client's CPU */
    printf("%lld %lld %llu %lld\n", t1 - t0, c1 - c0, total, self1 - self0);
}

static void cmd_fill(int n)
{
    for (int i = 0; i < n; i++) {
        char cid[64];
        snprintf(cid, sizeof(cid), "kb-fill-%d", nfill++);
        create(cid, (const char *const[]){"/bin/sleep", "100000", NULL});
        start(cid);
    }
    printf("ok\n");
}

static void cmd_clear(void)
{
    for (int i = 0; i < nfill; i++) {
        char cid[64];
        snprintf(cid, sizeof(cid), "kb-fill-%d", i);
        signal_ctr(cid, SIGKILL);
        wait_proc(cid, "");
        remove_ctr(cid);
    }
    nfill = 0;
    if (exec_ready) {
        signal_ctr("kb-exec", SIGKILL);
        wait_proc("kb-exec", "");
        remove_ctr("kb-exec");
        exec_ready = 0;
    }
    printf("ok\n");
}

static int agent_main(char **argv)
{
    hz = sysconf(_SC_CLK_TCK);
    agent_pid = atoi(argv[1]);
    rootfs = argv[2];
    cgparent = argv[3];
    struct ka_error err;
    ka_error_clear(&err);
    if (ttrpc_client_open(&cl, argv[0], &err) < 0)
        die("connect: %s", err.msg);
    if (!argv[4] || strcmp(argv[4], "no-sandbox") != 0) {
        Grpc__CreateSandboxRequest sb = GRPC__CREATE_SANDBOX_REQUEST__INIT;
        sb.hostname = (char *)"bench";
        sb.sandbox_id = (char *)"bench";
        call("CreateSandbox", &sb.base, NULL, NULL, 1);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    char line[256];
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "start") == 0)
            cmd_start();
        else if (strcmp(line, "exec") == 0)
            cmd_exec();
        else if (strncmp(line, "stream ", 7) == 0)
            cmd_stream(line + 7);
        else if (strncmp(line, "fill ", 5) == 0)
            cmd_fill(atoi(line + 5));
        else if (strcmp(line, "clear") == 0)
            cmd_clear();
        else if (strcmp(line, "quit") == 0)
            break;
        else
            die("unknown command %s", line);
    }
    ttrpc_client_close(&cl);
    return 0;
}

/* ---- host-side references ---- */

static int time_main(char **argv)
{
    /* stderr kept in memory, to be shown if the command fails (a bare status says
     * nothing about why crun refused a host). */
    int errfd = memfd_create("kabench-stderr", MFD_CLOEXEC);
    long long t0 = now_us();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        dup2(errfd >= 0 ? errfd : null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0)
        die("wait: %s", strerror(errno));
    long long t1 = now_us();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "kabench: %s failed (status %d)\n", argv[0], st);
        char msg[4096];
        ssize_t n = errfd >= 0 ? pread(errfd, msg, sizeof(msg) - 1, 0) : -1;
        if (n > 0)
            fprintf(stderr, "kabench: its stderr: %.*s\n", (int)n, msg);
        return 1;
    }
    if (errfd >= 0)
        close(errfd);
    printf("%lld %lld\n", t1 - t0, tv_us(ru.ru_utime) + tv_us(ru.ru_stime));
    return 0;
}

static int pipe_main(char **argv)
{
    int fds[2];
    if (pipe(fds) < 0)
        die("pipe: %s", strerror(errno));
    long long c0 = rusage_us(RUSAGE_SELF), t0 = now_us();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(argv[0], argv[0], "write-bytes", argv[1], (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    static char buf[32768];
    unsigned long long total = 0;
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += (unsigned long long)n;
    }
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    long long t1 = now_us(), c1 = rusage_us(RUSAGE_SELF);
    printf("%lld %lld %llu\n", t1 - t0, c1 - c0 + tv_us(ru.ru_utime) + tv_us(ru.ru_stime), total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "time") == 0)
        return time_main(argv + 2);
    if (argc == 4 && strcmp(argv[1], "pipe") == 0)
        return pipe_main(argv + 2);
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "agent") == 0)
        return agent_main(argv + 2);
    fprintf(stderr, "usage: see the comment at the top of bench/kabench.c\n");
    return 2;
}
