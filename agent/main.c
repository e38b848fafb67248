/* kata-agent: the Kata Containers guest agent. */
#include "agent.h"
#include "memagent/memagent.h"
#include "device/listener.h"
#include "core/child.h"
#include "core/log.h"
#include "core/util.h"
#include "core/version.h"
#include "guest/console.h"
#include "guest/logport.h"
#include "init/init.h"
#include "storage/storage.h"
#include "ttrpc/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* How long after the listener is up the deferred start-up steps begin when no call
 * came first (a call starts them at once after it is answered). Short: it only
 * matters for a host that does not call, e.g. one using only the debug console. */
#define KA_DEFER_DELAY_MS 100

struct flags {
    const char *server_addr;
    const char *log_level;
    const char *cmdline_file;
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: kata-agent [OPTIONS]\n"
                 "  --server-addr ADDR   serve ttrpc on ADDR (vsock://CID:PORT, unix:///path,\n"
                 "                       serial:///dev/vportNpM or serial://PORT-NAME)\n"
                 "  --log-level LEVEL    critical|error|warn|info|debug|trace\n"
                 "  --cmdline-file FILE  read agent.* options from FILE instead of /proc/cmdline\n"
                 "  -v, --version        print the version and exit\n"
                 "  -h, --help           this text\n");
}

/* Returns 0 to go on, 1 to exit successfully (--version/--help), -1 on bad usage. */
static int parse_flags(int argc, char **argv, struct flags *f)
{
    static const struct option opts[] = {
        {"server-addr", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"cmdline-file", required_argument, NULL, 'c'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            f->server_addr = optarg;
            break;
        case 'l':
            f->log_level = optarg;
            break;
        case 'c':
            f->cmdline_file = optarg;
            break;
        case 'v':
            printf("kata-agent version %s (api %s)\n", KA_VERSION, KA_API_VERSION);
            return 1;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

static void load_config(struct agent *a, const struct flags *f)
{
    ka_config_defaults(&a->cfg);
    const char *path = f->cmdline_file ? f->cmdline_file : "/proc/cmdline";
    char cmdline[8192];
    long n = ka_config_read_file(path, cmdline, sizeof(cmdline));
    if (n < 0)
        ka_log(KA_LOG_WARN, "config", "read %s: %s", path, strerror((int)-n));
    else
        ka_config_parse_cmdline(&a->cfg, cmdline);
    ka_config_apply_env(&a->cfg, env_lookup);
    if (f->server_addr && !ka_config_set(&a->cfg, "server_addr", f->server_addr))
        ka_log(KA_LOG_WARN, "config", "ignoring invalid --server-addr");
    if (f->log_level && !ka_config_set(&a->cfg, "log", f->log_level))
        ka_log(KA_LOG_WARN, "config", "ignoring invalid --log-level '%s'", f->log_level);
    if (a->cfg.config_file[0])
        ka_log(KA_LOG_WARN, "config", "agent.config_file is not supported yet; using the cmdline");
    ka_log_set_level(a->cfg.log_level);
}

static void signal_event(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct agent *a = w->data;
    struct signalfd_siginfo si;
    while (read(a->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !a->init_mode) {
            ka_log(KA_LOG_INFO, "signals", "received signal %u, shutting down", si.ssi_signo);
            ka_reactor_stop(&a->reactor, 0);
        }
    }
}

static int setup_signals(struct agent *a, struct ka_error *err)
{
    /* Writes to a vanished peer must fail with EPIPE, not kill PID 1. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return ka_error_set(err, errno, "sigprocmask");
    a->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a->signal_fd < 0)
        return ka_error_set(err, errno, "signalfd");
    return ka_reactor_add(&a->reactor, &a->signal_watch, a->signal_fd, EPOLLIN, signal_event, a,
                          err);
}

static int start_server(struct agent *a, struct ka_error *err)
{
    /* Before the loop runs, so before any listener (console and log port too) accepts. */
    ka_vsock_set_allow_local(a->cfg.vsock_allow_local);
    struct ka_addr addr;
    if (ka_addr_parse(a->cfg.server_addr, &addr, err) < 0)
        return ka_error_wrap(err, "server address");
    if (addr.kind == KA_ADDR_SERIAL) {
        int fd = ka_serial_open(&addr, KA_VIRTIO_PORTS_DIR, err);
        if (fd < 0)
            return fd;
        return ttrpc_server_adopt_serial(&a->server, fd, err);
    }
    return ttrpc_server_listen(&a->server, &addr, err);
}

/* When / is the initramfs ("rootfs"), pivot_root is impossible: containers get
 * MS_MOVE + chroot instead. */
static bool root_is_initramfs(void)
{
    char fstype[64];
    return ka_init_mount_fstype("/", fstype, sizeof(fstype)) == 1 && strcmp(fstype, "rootfs") == 0;
}

static int setup_sandbox(struct agent *a, struct ka_error *err)
{
    ka_sandbox_init(&a->sandbox, a, &a->reactor);
    a->sandbox.container_pipe_size = a->cfg.container_pipe_size;
    a->sandbox.own_pid_ns_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (a->sandbox.own_pid_ns_fd < 0)
        return ka_error_set(err, errno, "open /proc/self/ns/pid");
    return ka_children_init(&a->reactor, err);
}

static void teardown_sandbox(struct agent *a)
{
    struct ka_sandbox *sb = &a->sandbox;
    /* Kill what is left and give the reaper a bounded while to collect it. */
    for (struct ka_container *c = sb->containers, *next; c; c = next) {
        next = c->next;
        if (!c->removing)
            ka_container_remove(c, NULL, 0);
    }
    /* Run the loop, not a sleep: the reaper and the cgroup removal retries are
     * events on it. Bounded: a process stuck in the kernel cannot hold us here. */
    struct ka_error err;
    for (int i = 0; i < 500 && sb->containers; i++)
        if (ka_reactor_run_once(&a->reactor, 10, &err) < 0)
            break;
    int fds[] = {sb->ipc_ns_fd, sb->uts_ns_fd, sb->pid_ns_fd, sb->own_pid_ns_fd};
    for (size_t i = 0; i < KA_ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(sb->id);
    free(sb->hostname);
    ka_children_fini();
}

/* Deferred start-up steps (core/deferred.h); each is never fatal. */
static int start_logport(void *data, struct ka_error *err)
{
    struct agent *a = data;
    /* From here on the log goes to agent.log_vport when set (buffered until the host
     * connects); on failure it stays on the console. */
    if (ka_logport_start(&a->reactor, &a->cfg, err) < 0)
        return ka_error_wrap(err, "log port (logging to the console)");
    return 0;
}

static int start_debug_console(void *data, struct ka_error *err)
{
    struct agent *a = data;
    return ka_debug_console_start(&a->reactor, &a->cfg, err);
}

static int start_uevent_listener(void *data, struct ka_error *err)
{
    struct agent *a = data;
    /* Hotplugged devices; without it a device wait can only time out. */
    if (ka_uevent_listen(&a->reactor, err) < 0)
        return ka_error_wrap(err, "device hotplug waits will time out");
    return 0;
}

/* Read from mountinfo, which would cost the boot milliseconds (deferred: no early
 * request spawns a container). */
static int find_root_kind(void *data, struct ka_error *err)
{
    (void)err;
    struct agent *a = data;
    a->sandbox.no_pivot = root_is_initramfs();
    return 0;
}

static int start_mem_agent(void *data, struct ka_error *err)
{
    struct agent *a = data;
    /* Compaction runs in a child, so this needs the reaper. Upstream refuses to
     * start when it fails; we run without it. */
    a->mem_agent = ka_mem_agent_start(&a->reactor, &a->cfg.mem_agent, NULL, err);
    return a->mem_agent ? 0 : -1;
}

int main(int argc, char **argv)
{
    /* Nothing the launcher left open without CLOEXEC is ours: the agent takes no
     * fd from its launcher (no socket activation), and every such fd would
     * otherwise reach each container child up to its close_range (a started agent
     * was seen passing fds 10 and 251 along). Before anything of ours is open. */
    ka_close_fds_from(STDERR_FILENO + 1);
    ka_boot_mark("start");
    /* PID 1's start-up lines wait for the first answer (core/log.h); released by
     * ka_boot_flush, by the first deferred step, or by an error line. */
    if (getpid() == 1)
        ka_log_hold();
    struct flags flags = {0};
    int rc = parse_flags(argc, argv, &flags);
    if (rc != 0)
        return rc > 0 ? 0 : 2;

    static struct agent agent;
    struct agent *a = &agent;
    a->init_mode = getpid() == 1;
    a->signal_fd = -1;
    /* Everything the teardown touches is valid from the start, so an early failure
     * closes nothing that is not ours (a zeroed struct would say fd 0). */
    ttrpc_server_init(&a->server, &a->reactor, rpc_dispatch, &a->dispatcher);
    ka_sandbox_init(&a->sandbox, a, &a->reactor);
    struct ka_error err;
    /* PID 1: /proc first, since the config is read from /proc/cmdline. */
    if (a->init_mode && ka_init_early_mounts(&err) < 0)
        ka_log(KA_LOG_ERROR, "init", "early mounts: %s", err.msg);
    load_config(a, &flags);
    ka_boot_mark("early mounts and config");
    /* Modules, session, PATH now; cgroups, ptmx, hostname, lo once the listener is up
     * (or before the first request that needs them). Each step logs its own failure
     * and the rest still run. */
    ka_deferred_init(&a->later);
    if (a->init_mode && ka_init_setup_early(&a->cfg, &err) < 0)
        ka_log(KA_LOG_WARN, "init", "init setup incomplete: %s", err.msg);
    if (a->init_mode)
        ka_init_defer_rest(&a->cfg, &a->later);

    rc = 1;
    if (ka_reactor_init(&a->reactor, &err) < 0)
        goto fail;
    ka_log_kv(KA_LOG_INFO, "agent", "announce", "server_addr", a->cfg.server_addr, "init_mode",
              a->init_mode ? "true" : "false", "api_version", KA_API_VERSION, NULL);
    /* The channel first: opening a virtio-serial port tells the host, and its first
     * request travels in while the rest is set up (under TCG that delivery took
     * ms). Nothing is read before the loop runs, when everything below is ready. */
    if (start_server(a, &err) < 0)
        goto fail;
    ka_boot_mark("listener");
    ka_storage_init(&a->reactor); /* watchable-bind refreshes run on the loop */
    /* Deferred: no Health waits for a device, and a device that arrives before the
     * listener is found in sysfs, where every device wait looks first. */
    ka_deferred_add(&a->later, "uevent listener", start_uevent_listener, a);
    /* Deferred: until it runs the log goes to the console. */
    ka_deferred_add(&a->later, "log port", start_logport, a);
    if (setup_signals(a, &err) < 0 || setup_sandbox(a, &err) < 0)
        goto fail;
    ka_boot_mark("signals and reaper");
    ka_deferred_add(&a->later, "root fs kind", find_root_kind, a);
    /* Both need the reaper (setup_sandbox -> ka_children_init); neither is needed
     * by an early request, and the mem-agent reads the cgroups deferred above. */
    ka_deferred_add(&a->later, "debug console", start_debug_console, a);
    if (a->cfg.mem_agent.enable)
        ka_deferred_add(&a->later, "mem-agent", start_mem_agent, a);
    rpc_dispatcher_init(&a->dispatcher, a);
    a->dispatcher.setup = &a->later;
    if (rpc_register_all(&a->dispatcher, &err) < 0)
        goto fail;
    ka_boot_mark("dispatcher");
    ka_log_kv(KA_LOG_INFO, "agent", "ttrpc server started", "address", a->cfg.server_addr, NULL);
    ka_deferred_start(&a->later, &a->reactor, KA_DEFER_DELAY_MS);
    rc = ka_reactor_run(&a->reactor);
    goto out;

fail:
    ka_log(KA_LOG_CRITICAL, "agent", "%s", err.msg);
out:
    ka_log_release();
    ka_deferred_fini(&a->later);
    ka_debug_console_stop();
    ka_mem_agent_stop(a->mem_agent);
    ttrpc_server_shutdown(&a->server);
    teardown_sandbox(a);
    rpc_dispatcher_fini(&a->dispatcher);
    if (a->signal_fd >= 0)
        close(a->signal_fd);
    ka_logport_stop(1000); /* give a connected host a second to take the last lines */
    ka_reactor_fini(&a->reactor);
    if (a->init_mode)
        ka_init_power_off();
    return rc;
}
