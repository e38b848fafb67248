/* Soak client for bench/soak.sh: N create/start/wait/remove cycles of a `true`
 * container against a running agent, printing the agent's VmRSS and open fd
 * count at the start and the end, and cycles per second.
 *
 *   soak ADDR AGENT_PID ROOTFS CYCLES
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "ttrpc/client.h"

static struct ttrpc_client cli;
static int agent_pid;

static long rss_kb(void)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", agent_pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static int fd_count(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", agent_pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void call(const char *method, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
    struct ka_error err;
    ka_error_clear(&err);
    ProtobufCMessage *r = NULL;
    if (ttrpc_client_call(&cli, "grpc.AgentService", method, req,
                          resp_desc ? resp_desc : &google__protobuf__empty__descriptor, &r,
                          &err) < 0) {
        fprintf(stderr, "soak: %s: %s\n", method, err.msg);
        exit(1);
    }
    if (resp)
        *resp = r;
    else if (r)
        protobuf_c_message_free_unpacked(r, NULL);
}

static Grpc__Mount *mount_of(const char *dest, const char *type, char **opts, size_t n)
{
    static Grpc__Mount m[2];
    static int i;
    Grpc__Mount *x = &m[i++ % 2];
    grpc__mount__init(x);
    x->destination = (char *)dest;
    x->type = (char *)type;
    x->source = (char *)type;
    x->options = opts;
    x->n_options = n;
    return x;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: soak ADDR AGENT_PID ROOTFS CYCLES\n");
        return 2;
    }
    agent_pid = atoi(argv[2]);
    long cycles = atol(argv[4]);
    struct ka_error err;
    if (ttrpc_client_open(&cli, argv[1], &err) < 0) {
        fprintf(stderr, "soak: connect %s: %s\n", argv[1], err.msg);
        return 1;
    }
    Grpc__CreateSandboxRequest sb = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    sb.hostname = (char *)"soak";
    sb.sandbox_id = (char *)"soak";
    call("CreateSandbox", &sb.base, NULL, NULL);

    /* The spec: `true` in the rootfs with proc and a /dev tmpfs, ipc/uts/mount namespaces. */
    char *args[] = {(char *)"true"};
    char *env[] = {(char *)"PATH=/payload/bin:/usr/bin:/bin:/usr/sbin:/sbin"};
    Grpc__User user = GRPC__USER__INIT;
    user.username = (char *)"";
    Grpc__Process proc = GRPC__PROCESS__INIT;
    proc.args = args;
    proc.n_args = 1;
    proc.env = env;
    proc.n_env = 1;
    proc.cwd = (char *)"/";
    proc.user = &user;
    proc.apparmorprofile = (char *)"";
    proc.selinuxlabel = (char *)"";
    Grpc__Root root = GRPC__ROOT__INIT;
    root.path = argv[3];
    char *proc_opts[] = {(char *)"nosuid", (char *)"noexec", (char *)"nodev"};
    char *dev_opts[] = {(char *)"nosuid", (char *)"mode=755", (char *)"size=65536k"};
    Grpc__Mount *mounts[2];
    mounts[0] = mount_of("/proc", "proc", proc_opts, 3);
    mounts[1] = mount_of("/dev", "tmpfs", dev_opts, 3);
    Grpc__LinuxNamespace ns[3];
    Grpc__LinuxNamespace *nsp[3];
    const char *kinds[] = {"ipc", "uts", "mount"};
    for (int i = 0; i < 3; i++) {
        grpc__linux_namespace__init(&ns[i]);
        ns[i].type = (char *)kinds[i];
        ns[i].path = (char *)"";
        nsp[i] = &ns[i];
    }
    Grpc__Linux lin = GRPC__LINUX__INIT;
    lin.cgroupspath = (char *)"";
    lin.rootfspropagation = (char *)"";
    lin.mountlabel = (char *)"";
    lin.namespaces = nsp;
    lin.n_namespaces = 3;
    Grpc__Spec spec = GRPC__SPEC__INIT;
    spec.version = (char *)"1.0.2";
    spec.hostname = (char *)"";
    spec.process = &proc;
    spec.root = &root;
    spec.mounts = mounts;
    spec.n_mounts = 2;
    spec.linux = &lin;

    long rss_cold = rss_kb();
    int fd_cold = fd_count();
    printf("start: agent pid %d, VmRSS %ld kB, %d open fds (sandbox created, no container yet)\n",
           agent_pid, rss_cold, fd_cold);
    fflush(stdout);
    /* The first containers open what the sandbox keeps (its pid namespace fd and
     * the like): growth is measured from after them. */
    long warm = cycles < 10 ? cycles : 10;
    long rss0 = 0;
    int fd0 = 0;
    double t0 = now_s();
    long rss_max = rss_cold;
    for (long i = 0; i < cycles; i++) {
        if (i == warm) {
            rss0 = rss_kb();
            fd0 = fd_count();
            printf("warm:  after %ld cycles, VmRSS %ld kB, %d open fds\n", warm, rss0, fd0);
            fflush(stdout);
        }
        char cid[32];
        snprintf(cid, sizeof(cid), "soak-%ld", i);
        Grpc__CreateContainerRequest cr = GRPC__CREATE_CONTAINER_REQUEST__INIT;
        cr.container_id = cid;
        cr.exec_id = cid;
        cr.oci = &spec;
        call("CreateContainer", &cr.base, NULL, NULL);
        Grpc__StartContainerRequest st = GRPC__START_CONTAINER_REQUEST__INIT;
        st.container_id = cid;
        call("StartContainer", &st.base, NULL, NULL);
        Grpc__WaitProcessRequest w = GRPC__WAIT_PROCESS_REQUEST__INIT;
        w.container_id = cid;
        w.exec_id = (char *)"";
        Grpc__WaitProcessResponse *wr = NULL;
        call("WaitProcess", &w.base, &grpc__wait_process_response__descriptor,
             (ProtobufCMessage **)&wr);
        if (wr->status != 0) {
            fprintf(stderr, "soak: %s exited %d\n", cid, wr->status);
            return 1;
        }
        protobuf_c_message_free_unpacked(&wr->base, NULL);
        Grpc__RemoveContainerRequest rm = GRPC__REMOVE_CONTAINER_REQUEST__INIT;
        rm.container_id = cid;
        call("RemoveContainer", &rm.base, NULL, NULL);
        if ((i + 1) % 1000 == 0 || i + 1 == cycles) {
            long rss = rss_kb();
            if (rss > rss_max)
                rss_max = rss;
            fprintf(stderr, "soak: %ld cycles, %.1f/s, VmRSS %ld kB, %d fds\n", i + 1,
                    (double)(i + 1) / (now_s() - t0), rss, fd_count());
        }
    }
    double dt = now_s() - t0;
    long rss1 = rss_kb();
    int fd1 = fd_count();
    if (warm == cycles) {
        rss0 = rss_cold;
        fd0 = fd_cold;
    }
    printf("end:   VmRSS %ld kB (%+ld kB since warm, peak %ld kB), %d open fds (%+d since warm)\n",
           rss1, rss1 - rss0, rss_max, fd1, fd1 - fd0);
    printf("%ld cycles in %.1f s: %.1f cycles/s\n", cycles, dt, (double)cycles / dt);
    ttrpc_client_close(&cli);
    return 0;
}
