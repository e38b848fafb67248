/* OCI spec conversion (rpc/oci_convert.c) and validation (container/spec.c):
 * a realistic Kata spec end to end, every mount option, rlimits, capabilities,
 * namespaces, each validation failure, host-controlled counts, container ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include "container/spec.h"
#include "core/log.h"
#include "rpc/oci_convert.h"

#ifndef MS_LAZYTIME
#define MS_LAZYTIME (1 << 25)
#endif

#define S(x) ((char *)(x))
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a spec as the 3.3.0 Go runtime sends it for `ctr run` / a k8s pod ---- */

#define CID "3f1c2a9d8e7b"
#define SHARED "/run/kata-containers/shared/containers/"

static char *args[] = {S("sh"), S("-c"), S("echo hello")};
static char *env[] = {S("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
                      S("TERM=xterm"), S("HOSTNAME=kata-pod"), S("EMPTY="), S("A=b=c")};
static uint32_t gids[] = {0, 10, 1000};
static char *default_caps[] = {
    S("CAP_CHOWN"),   S("CAP_DAC_OVERRIDE"), S("CAP_FSETID"),           S("CAP_FOWNER"),
    S("CAP_MKNOD"),   S("CAP_NET_RAW"),      S("CAP_SETGID"),           S("CAP_SETUID"),
    S("CAP_SETFCAP"), S("CAP_SETPCAP"),      S("CAP_NET_BIND_SERVICE"), S("CAP_SYS_CHROOT"),
    S("CAP_KILL"),    S("CAP_AUDIT_WRITE"),
};
static char *ambient_caps[] = {S("CAP_NET_BIND_SERVICE")};

static char *o_proc[] = {S("nosuid"), S("noexec"), S("nodev")};
static char *o_dev[] = {S("nosuid"), S("strictatime"), S("mode=755"), S("size=65536k")};
static char *o_pts[] = {S("nosuid"),        S("noexec"),    S("newinstance"),
                        S("ptmxmode=0666"), S("mode=0620"), S("gid=5")};
static char *o_shm[] = {S("nosuid"), S("noexec"), S("nodev"), S("mode=1777"), S("size=65536k")};
static char *o_mqueue[] = {S("nosuid"), S("noexec"), S("nodev")};
static char *o_sys[] = {S("nosuid"), S("noexec"), S("nodev"), S("ro")};
static char *o_cgroup[] = {S("nosuid"), S("noexec"), S("nodev"), S("relatime"), S("ro")};
static char *o_bind_ro[] = {S("rbind"), S("rprivate"), S("ro")};
static char *o_bind_rw[] = {S("rbind"), S("rprivate"), S("rw")};

static char *masked[] = {S("/proc/acpi"),          S("/proc/kcore"),      S("/proc/keys"),
                         S("/proc/latency_stats"), S("/proc/timer_list"), S("/proc/timer_stats"),
                         S("/proc/sched_debug"),   S("/proc/scsi"),       S("/sys/firmware")};
static char *readonly[] = {S("/proc/asound"), S("/proc/bus"), S("/proc/fs"),
                           S("/proc/irq"),    S("/proc/sys"), S("/proc/sysrq-trigger")};

enum {
    M_PROC,
    M_DEV,
    M_PTS,
    M_SHM,
    M_MQUEUE,
    M_SYS,
    M_CGROUP,
    M_HOSTNAME,
    M_RESOLV,
    M_VOLUME,
    M_COUNT
};

struct fixture {
    Grpc__Spec spec;
    Grpc__Process proc;
    Grpc__Box box;
    Grpc__User user;
    Grpc__LinuxCapabilities caps;
    Grpc__POSIXRlimit rl[2];
    Grpc__POSIXRlimit *rlp[2];
    Grpc__Root root;
    Grpc__Mount m[M_COUNT];
    Grpc__Mount *mp[M_COUNT];
    Grpc__Linux linux;
    Grpc__LinuxNamespace ns[3];
    Grpc__LinuxNamespace *nsp[3];
    Grpc__LinuxDevice dev[2];
    Grpc__LinuxDevice *devp[2];
    Grpc__Linux__SysctlEntry sc[3];
    Grpc__Linux__SysctlEntry *scp[3];
};

static void set_mount(Grpc__Mount *m, const char *dst, const char *type, const char *src,
                      char **opts, size_t n)
{
    *m = (Grpc__Mount)GRPC__MOUNT__INIT;
    m->destination = S(dst);
    m->type = S(type);
    m->source = S(src);
    m->options = opts;
    m->n_options = n;
}

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->spec = (Grpc__Spec)GRPC__SPEC__INIT;
    f->spec.version = S("1.0.2-dev");
    f->spec.hostname = S("kata-pod");

    f->proc = (Grpc__Process)GRPC__PROCESS__INIT;
    f->proc.terminal = true;
    f->box = (Grpc__Box)GRPC__BOX__INIT;
    f->box.height = 24;
    f->box.width = 80;
    f->proc.consolesize = &f->box;
    f->user = (Grpc__User)GRPC__USER__INIT;
    f->user.uid = 1000;
    f->user.gid = 1001;
    f->user.additionalgids = gids;
    f->user.n_additionalgids = N(gids);
    f->proc.user = &f->user;
    f->proc.args = args;
    f->proc.n_args = N(args);
    f->proc.env = env;
    f->proc.n_env = N(env);
    f->proc.cwd = S("/work");
    f->caps = (Grpc__LinuxCapabilities)GRPC__LINUX_CAPABILITIES__INIT;
    f->caps.bounding = f->caps.effective = f->caps.permitted = default_caps;
    f->caps.n_bounding = f->caps.n_effective = f->caps.n_permitted = N(default_caps);
    f->caps.ambient = ambient_caps;
    f->caps.n_ambient = N(ambient_caps);
    f->proc.capabilities = &f->caps;
    for (int i = 0; i < 2; i++) {
        f->rl[i] = (Grpc__POSIXRlimit)GRPC__POSIXRLIMIT__INIT;
        f->rlp[i] = &f->rl[i];
    }
    f->rl[0].type = S("RLIMIT_NOFILE");
    f->rl[0].soft = 1024;
    f->rl[0].hard = 1048576;
    f->rl[1].type = S("RLIMIT_CORE");
    f->rl[1].soft = 0;
    f->rl[1].hard = UINT64_MAX; /* RLIM_INFINITY */
    f->proc.rlimits = f->rlp;
    f->proc.n_rlimits = 2;
    f->proc.nonewprivileges = true;
    f->proc.oomscoreadj = -997; /* Guaranteed QoS pod */
    f->proc.apparmorprofile = S("cri-containerd.apparmor.d");
    f->spec.process = &f->proc;

    f->root = (Grpc__Root)GRPC__ROOT__INIT;
    f->root.path = S(SHARED CID "/rootfs");
    f->root.readonly = true;
    f->spec.root = &f->root;

    set_mount(&f->m[M_PROC], "/proc", "proc", "proc", o_proc, N(o_proc));
    set_mount(&f->m[M_DEV], "/dev", "tmpfs", "tmpfs", o_dev, N(o_dev));
    set_mount(&f->m[M_PTS], "/dev/pts", "devpts", "devpts", o_pts, N(o_pts));
    set_mount(&f->m[M_SHM], "/dev/shm", "tmpfs", "shm", o_shm, N(o_shm));
    set_mount(&f->m[M_MQUEUE], "/dev/mqueue", "mqueue", "mqueue", o_mqueue, N(o_mqueue));
    set_mount(&f->m[M_SYS], "/sys", "sysfs", "sysfs", o_sys, N(o_sys));
    set_mount(&f->m[M_CGROUP], "/sys/fs/cgroup", "cgroup", "cgroup", o_cgroup, N(o_cgroup));
    set_mount(&f->m[M_HOSTNAME], "/etc/hostname", "bind", SHARED CID "-8f2e-hostname", o_bind_ro,
              N(o_bind_ro));
    set_mount(&f->m[M_RESOLV], "/etc/resolv.conf", "bind", SHARED CID "-a61c-resolv.conf",
              o_bind_ro, N(o_bind_ro));
    set_mount(&f->m[M_VOLUME], "/data", "bind", SHARED CID "-0b7d-data", o_bind_rw, N(o_bind_rw));
    for (int i = 0; i < M_COUNT; i++)
        f->mp[i] = &f->m[i];
    f->spec.mounts = f->mp;
    f->spec.n_mounts = M_COUNT;

    f->linux = (Grpc__Linux)GRPC__LINUX__INIT;
    const char *ns_types[] = {"ipc", "uts", "mount"};
    for (int i = 0; i < 3; i++) {
        f->ns[i] = (Grpc__LinuxNamespace)GRPC__LINUX_NAMESPACE__INIT;
        f->ns[i].type = S(ns_types[i]);
        f->nsp[i] = &f->ns[i];
    }
    f->linux.namespaces = f->nsp;
    f->linux.n_namespaces = 3;
    for (int i = 0; i < 2; i++) {
        f->dev[i] = (Grpc__LinuxDevice)GRPC__LINUX_DEVICE__INIT;
        f->devp[i] = &f->dev[i];
    }
    f->dev[0].path = S("/dev/vdb");
    f->dev[0].type = S("b");
    f->dev[0].major = 254;
    f->dev[0].minor = 16;
    f->dev[0].filemode = 0660;
    f->dev[0].gid = 6;
    f->dev[1].path = S("/dev/fuse");
    f->dev[1].type = S("u");
    f->dev[1].major = 10;
    f->dev[1].minor = 229;
    f->linux.devices = f->devp;
    f->linux.n_devices = 2;
    const char *keys[] = {"net.ipv4.ip_unprivileged_port_start", "kernel.shmmax",
                          "net.ipv4.ping_group_range"};
    const char *vals[] = {"0", "68719476736", "0 2147483647"};
    for (int i = 0; i < 3; i++) {
        f->sc[i] = (Grpc__Linux__SysctlEntry)GRPC__LINUX__SYSCTL_ENTRY__INIT;
        f->sc[i].key = S(keys[i]);
        f->sc[i].value = S(vals[i]);
        f->scp[i] = &f->sc[i];
    }
    f->linux.sysctl = f->scp;
    f->linux.n_sysctl = 3;
    f->linux.cgroupspath = S("/kubepods/burstable/pod0a1b/" CID);
    f->linux.rootfspropagation = S("");
    f->linux.maskedpaths = masked;
    f->linux.n_maskedpaths = N(masked);
    f->linux.readonlypaths = readonly;
    f->linux.n_readonlypaths = N(readonly);
    f->spec.linux = &f->linux;
}

static struct ka_spec *convert_ok(const Grpc__Spec *in)
{
    struct ka_error err = {0};
    struct ka_spec *spec = NULL;
    int rc = ka_spec_from_proto(in, &spec, &err);
    if (rc != 0)
        fail_msg("conversion failed: %s", err.msg);
    assert_non_null(spec);
    return spec;
}

static void expect_error(const Grpc__Spec *in, const char *substr)
{
    struct ka_error err = {0};
    struct ka_spec *spec = (struct ka_spec *)1;
    int rc = ka_spec_from_proto(in, &spec, &err);
    assert_true(rc < 0);
    assert_null(spec);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    if (!strstr(err.msg, substr))
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, substr);
}

static uint64_t bit(int cap)
{
    return UINT64_C(1) << cap;
}

/* ---- the whole spec ------------------------------------------------------- */

static void check_full_spec(const struct ka_spec *s)
{
    const struct ka_process *p = &s->process;
    assert_true(p->terminal);
    assert_int_equal(p->console_height, 24);
    assert_int_equal(p->console_width, 80);
    assert_int_equal(p->user.uid, 1000);
    assert_int_equal(p->user.gid, 1001);
    assert_int_equal(p->user.n_additional_gids, 3);
    assert_int_equal(p->user.additional_gids[2], 1000);
    assert_null(p->user.username);
    assert_int_equal(p->n_args, 3);
    assert_string_equal(p->args[2], "echo hello");
    assert_int_equal(p->n_env, N(env));
    assert_string_equal(p->env[3], "EMPTY=");
    assert_string_equal(p->env[4], "A=b=c");
    assert_string_equal(p->cwd, "/work");
    assert_true(p->caps.present);
    uint64_t want = bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE) | bit(CAP_FSETID) | bit(CAP_FOWNER) |
                    bit(CAP_MKNOD) | bit(CAP_NET_RAW) | bit(CAP_SETGID) | bit(CAP_SETUID) |
                    bit(CAP_SETFCAP) | bit(CAP_SETPCAP) | bit(CAP_NET_BIND_SERVICE) |
                    bit(CAP_SYS_CHROOT) | bit(CAP_KILL) | bit(CAP_AUDIT_WRITE);
    assert_int_equal(p->caps.bounding, want);
    assert_int_equal(p->caps.effective, want);
    assert_int_equal(p->caps.permitted, want);
    assert_int_equal(p->caps.inheritable, 0);
    assert_int_equal(p->caps.ambient, bit(CAP_NET_BIND_SERVICE));
    assert_int_equal(p->n_rlimits, 2);
    assert_int_equal(p->rlimits[0].resource, RLIMIT_NOFILE);
    assert_int_equal(p->rlimits[0].soft, 1024);
    assert_int_equal(p->rlimits[0].hard, 1048576);
    assert_int_equal(p->rlimits[1].resource, RLIMIT_CORE);
    assert_true(p->rlimits[1].hard == RLIM_INFINITY);
    assert_true(p->no_new_privileges);
    assert_true(p->has_oom_score_adj);
    assert_int_equal(p->oom_score_adj, -997);
    assert_int_equal(p->umask, 0022);

    assert_string_equal(s->root_path, SHARED CID "/rootfs");
    assert_true(s->root_readonly);
    assert_string_equal(s->hostname, "kata-pod");

    assert_int_equal(s->n_mounts, M_COUNT);
    const struct ka_mount *m = s->mounts;
    assert_string_equal(m[M_PROC].destination, "/proc");
    assert_string_equal(m[M_PROC].type, "proc");
    assert_string_equal(m[M_PROC].source, "proc");
    assert_int_equal(m[M_PROC].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV);
    assert_null(m[M_PROC].data);
    assert_false(m[M_PROC].bind);

    assert_string_equal(m[M_DEV].type, "tmpfs");
    assert_int_equal(m[M_DEV].flags, MS_NOSUID | MS_STRICTATIME);
    assert_string_equal(m[M_DEV].data, "mode=755,size=65536k");
    assert_int_equal(m[M_DEV].propagation, 0);

    assert_string_equal(m[M_PTS].type, "devpts");
    assert_int_equal(m[M_PTS].flags, MS_NOSUID | MS_NOEXEC);
    assert_string_equal(m[M_PTS].data, "newinstance,ptmxmode=0666,mode=0620,gid=5");

    assert_string_equal(m[M_SHM].source, "shm");
    assert_int_equal(m[M_SHM].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV);
    assert_string_equal(m[M_SHM].data, "mode=1777,size=65536k");

    assert_string_equal(m[M_MQUEUE].type, "mqueue");
    assert_null(m[M_MQUEUE].data);

    assert_int_equal(m[M_SYS].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY);
    assert_int_equal(m[M_CGROUP].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY);
    assert_string_equal(m[M_CGROUP].type, "cgroup");

    for (int i = M_HOSTNAME; i <= M_VOLUME; i++) {
        assert_true(m[i].bind);
        assert_true(m[i].recursive);
        assert_string_equal(m[i].type, "bind");
        assert_int_equal(m[i].propagation, MS_PRIVATE | MS_REC);
        assert_null(m[i].data);
    }
    assert_string_equal(m[M_HOSTNAME].source, SHARED CID "-8f2e-hostname");
    assert_int_equal(m[M_HOSTNAME].flags, MS_BIND | MS_REC | MS_RDONLY);
    assert_int_equal(m[M_VOLUME].flags, MS_BIND | MS_REC);

    assert_true(s->namespaces[KA_NS_IPC].present);
    assert_true(s->namespaces[KA_NS_UTS].present);
    assert_true(s->namespaces[KA_NS_MOUNT].present);
    assert_null(s->namespaces[KA_NS_MOUNT].path);
    assert_false(s->namespaces[KA_NS_PID].present);
    assert_false(s->namespaces[KA_NS_NETWORK].present);
    assert_false(s->namespaces[KA_NS_USER].present);
    assert_false(s->namespaces[KA_NS_CGROUP].present);

    assert_int_equal(s->n_devices, 2);
    assert_string_equal(s->devices[0].path, "/dev/vdb");
    assert_int_equal(s->devices[0].type, 'b');
    assert_int_equal(s->devices[0].major, 254);
    assert_int_equal(s->devices[0].minor, 16);
    assert_true(s->devices[0].has_file_mode);
    assert_int_equal(s->devices[0].file_mode, 0660);
    assert_int_equal(s->devices[0].gid, 6);
    assert_int_equal(s->devices[1].type, 'c'); /* 'u' */
    assert_false(s->devices[1].has_file_mode);
    assert_int_equal(s->devices[1].file_mode, 0666);

    assert_int_equal(s->n_sysctls, 3);
    assert_string_equal(s->sysctls[1].key, "kernel.shmmax");
    assert_string_equal(s->sysctls[2].value, "0 2147483647");
    assert_int_equal(s->rootfs_propagation, MS_SLAVE | MS_REC);
    assert_int_equal(s->n_masked_paths, N(masked));
    assert_string_equal(s->masked_paths[8], "/sys/firmware");
    assert_int_equal(s->n_readonly_paths, N(readonly));
    assert_string_equal(s->readonly_paths[5], "/proc/sysrq-trigger");
    assert_string_equal(s->cgroups_path, "/kubepods/burstable/pod0a1b/" CID);
}

static void test_full_spec(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct ka_spec *s = convert_ok(&f.spec);
    check_full_spec(s);
    ka_spec_free(s);
}

/* The same spec through the wire: what protobuf-c hands the handler. */
static void test_full_spec_from_wire(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    size_t len = grpc__spec__get_packed_size(&f.spec);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    grpc__spec__pack(&f.spec, buf);
    Grpc__Spec *wire = grpc__spec__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(wire);
    struct ka_spec *s = convert_ok(wire);
    check_full_spec(s);
    ka_spec_free(s);
    grpc__spec__free_unpacked(wire, NULL);
}

/* ---- mount options -------------------------------------------------------- */

struct opt_case {
    const char *opts[4];
    unsigned long flags;
    unsigned long propagation;
    const char *data;
    bool bind, recursive;
};

static const struct opt_case opt_cases[] = {
    {{"ro"}, MS_RDONLY, 0, NULL, false, false},
    {{"ro", "rw"}, 0, 0, NULL, false, false},
    {{"nosuid"}, MS_NOSUID, 0, NULL, false, false},
    {{"nosuid", "suid"}, 0, 0, NULL, false, false},
    {{"nodev"}, MS_NODEV, 0, NULL, false, false},
    {{"nodev", "dev"}, 0, 0, NULL, false, false},
    {{"noexec"}, MS_NOEXEC, 0, NULL, false, false},
    {{"noexec", "exec"}, 0, 0, NULL, false, false},
    {{"sync"}, MS_SYNCHRONOUS, 0, NULL, false, false},
    {{"sync", "async"}, 0, 0, NULL, false, false},
    {{"dirsync"}, MS_DIRSYNC, 0, NULL, false, false},
    {{"remount"}, MS_REMOUNT, 0, NULL, false, false},
    {{"mand"}, MS_MANDLOCK, 0, NULL, false, false},
    {{"mand", "nomand"}, 0, 0, NULL, false, false},
    {{"noatime"}, MS_NOATIME, 0, NULL, false, false},
    {{"noatime", "atime"}, 0, 0, NULL, false, false},
    {{"nodiratime"}, MS_NODIRATIME, 0, NULL, false, false},
    {{"nodiratime", "diratime"}, 0, 0, NULL, false, false},
    {{"relatime"}, MS_RELATIME, 0, NULL, false, false},
    {{"relatime", "norelatime"}, 0, 0, NULL, false, false},
    {{"strictatime"}, MS_STRICTATIME, 0, NULL, false, false},
    {{"strictatime", "nostrictatime"}, 0, 0, NULL, false, false},
    {{"lazytime"}, MS_LAZYTIME, 0, NULL, false, false},
    {{"lazytime", "nolazytime"}, 0, 0, NULL, false, false},
    {{"silent"}, MS_SILENT, 0, NULL, false, false},
    {{"silent", "loud"}, 0, 0, NULL, false, false},
    {{"iversion"}, MS_I_VERSION, 0, NULL, false, false},
    {{"iversion", "noiversion"}, 0, 0, NULL, false, false},
    {{"rw", "ro"}, MS_RDONLY, 0, NULL, false, false},
    {{"bind"}, MS_BIND, 0, NULL, true, false},
    {{"rbind"}, MS_BIND | MS_REC, 0, NULL, true, true},
    {{"shared"}, 0, MS_SHARED, NULL, false, false},
    {{"rshared"}, 0, MS_SHARED | MS_REC, NULL, false, false},
    {{"slave"}, 0, MS_SLAVE, NULL, false, false},
    {{"rslave"}, 0, MS_SLAVE | MS_REC, NULL, false, false},
    {{"private"}, 0, MS_PRIVATE, NULL, false, false},
    {{"rprivate"}, 0, MS_PRIVATE | MS_REC, NULL, false, false},
    {{"unbindable"}, 0, MS_UNBINDABLE, NULL, false, false},
    {{"runbindable"}, 0, MS_UNBINDABLE | MS_REC, NULL, false, false},
    {{"shared", "rprivate"}, 0, MS_PRIVATE | MS_REC, NULL, false, false}, /* last wins */
    {{"defaults"}, 0, 0, NULL, false, false},
    {{"defaults", "", "ro"}, MS_RDONLY, 0, NULL, false, false},
    {{"mode=755"}, 0, 0, "mode=755", false, false},
    {{"size=1m", "nosuid", "uid=0", "x"}, MS_NOSUID, 0, "size=1m,uid=0,x", false, false},
    {{"RO"}, 0, 0, "RO", false, false}, /* names are case-sensitive, as in mount(8) */
    {{0}, 0, 0, NULL, false, false},
};

static void test_mount_options(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(opt_cases); i++) {
        const struct opt_case *c = &opt_cases[i];
        size_t n = 0;
        while (n < 4 && c->opts[n])
            n++;
        struct ka_mount m = {0};
        ka_mount_parse_options((char *const *)c->opts, n, &m);
        if (m.flags != c->flags || m.propagation != c->propagation || m.bind != c->bind ||
            m.recursive != c->recursive || (c->data == NULL) != (m.data == NULL) ||
            (c->data && strcmp(c->data, m.data) != 0))
            fail_msg("case %zu (%s...): flags %#lx prop %#lx data %s bind %d rec %d", i,
                     c->opts[0] ? c->opts[0] : "(none)", m.flags, m.propagation,
                     m.data ? m.data : "(null)", m.bind, m.recursive);
        free(m.data);
    }
}

static void test_mount_bind_marking(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    char *none[] = {S("ro")};
    char *bind_opt[] = {S("bind"), S("nosuid")};
    /* type "bind" alone marks a (non-recursive) bind */
    set_mount(&f.m[M_HOSTNAME], "/etc/hostname", "bind", "/x/hostname", none, 1);
    /* a bind option with another type: the type becomes "bind" */
    set_mount(&f.m[M_RESOLV], "/etc/resolv.conf", "none", "/x/resolv", bind_opt, 2);
    /* no options at all */
    set_mount(&f.m[M_VOLUME], "/mnt/a..b", "tmpfs", "", NULL, 0);
    struct ka_spec *s = convert_ok(&f.spec);
    const struct ka_mount *m = s->mounts;
    assert_true(m[M_HOSTNAME].bind);
    assert_false(m[M_HOSTNAME].recursive);
    assert_string_equal(m[M_HOSTNAME].type, "bind");
    assert_int_equal(m[M_HOSTNAME].flags, MS_BIND | MS_RDONLY);
    assert_true(m[M_RESOLV].bind);
    assert_string_equal(m[M_RESOLV].type, "bind");
    assert_int_equal(m[M_RESOLV].flags, MS_BIND | MS_NOSUID);
    assert_false(m[M_VOLUME].bind);
    assert_int_equal(m[M_VOLUME].flags, 0);
    assert_null(m[M_VOLUME].data);
    assert_string_equal(m[M_VOLUME].source, "");
    assert_string_equal(m[M_VOLUME].destination, "/mnt/a..b"); /* ".." inside a name is fine */
    ka_spec_free(s);
}

/* ---- rlimits -------------------------------------------------------------- */

static void test_rlimits(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int res;
    } names[] = {
        {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
        {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
        {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
        {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
        {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    };
    assert_int_equal(N(names), RLIM_NLIMITS);
    Grpc__POSIXRlimit rl[RLIM_NLIMITS + 1];
    Grpc__POSIXRlimit *rlp[RLIM_NLIMITS + 1];
    for (size_t i = 0; i < N(names); i++) {
        rl[i] = (Grpc__POSIXRlimit)GRPC__POSIXRLIMIT__INIT;
        rl[i].type = S(names[i].name);
        rl[i].soft = i;
        rl[i].hard = i + 100;
        rlp[i] = &rl[i];
    }
    struct fixture f;
    fixture_init(&f);
    f.proc.rlimits = rlp;
    f.proc.n_rlimits = N(names);
    struct ka_spec *s = convert_ok(&f.spec);
    assert_int_equal(s->process.n_rlimits, RLIM_NLIMITS);
    for (size_t i = 0; i < N(names); i++) {
        assert_int_equal(s->process.rlimits[i].resource, names[i].res);
        assert_int_equal(s->process.rlimits[i].soft, i);
        assert_int_equal(s->process.rlimits[i].hard, i + 100);
    }
    ka_spec_free(s);

    /* one too many: refused by count, before anything is looked at */
    rl[RLIM_NLIMITS] = rl[0];
    rlp[RLIM_NLIMITS] = &rl[RLIM_NLIMITS];
    f.proc.n_rlimits = RLIM_NLIMITS + 1;
    expect_error(&f.spec, "too many rlimits");

    f.proc.n_rlimits = 2;
    rl[1].type = S("RLIMIT_CPU");
    expect_error(&f.spec, "rlimit RLIMIT_CPU given twice");

    rl[1].type = S("RLIMIT_FOO");
    expect_error(&f.spec, "unknown rlimit \"RLIMIT_FOO\"");
    rl[1].type = S("nofile");
    expect_error(&f.spec, "unknown rlimit \"nofile\"");

    rl[1] = (Grpc__POSIXRlimit)GRPC__POSIXRLIMIT__INIT;
    rl[1].type = S("RLIMIT_NOFILE");
    rl[1].soft = 2048;
    rl[1].hard = 1024;
    expect_error(&f.spec, "rlimit RLIMIT_NOFILE: soft limit 2048 above hard limit 1024");

    f.proc.n_rlimits = 0;
    s = convert_ok(&f.spec);
    assert_int_equal(s->process.n_rlimits, 0);
    assert_null(s->process.rlimits);
    ka_spec_free(s);
}

/* ---- capabilities --------------------------------------------------------- */

static void test_caps(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);

    /* absent: an exec inherits the init's sets */
    f.proc.capabilities = NULL;
    struct ka_spec *s = convert_ok(&f.spec);
    assert_false(s->process.caps.present);
    ka_spec_free(s);

    /* present but empty: drop everything */
    Grpc__LinuxCapabilities empty = GRPC__LINUX_CAPABILITIES__INIT;
    f.proc.capabilities = &empty;
    s = convert_ok(&f.spec);
    assert_true(s->process.caps.present);
    assert_int_equal(s->process.caps.bounding | s->process.caps.effective |
                         s->process.caps.permitted | s->process.caps.inheritable |
                         s->process.caps.ambient,
                     0);
    ka_spec_free(s);

    /* every cap this libcap knows, by name, in each set */
    char names[CAP_LAST_CAP + 1][64];
    char *namep[CAP_LAST_CAP + 2];
    size_t n = 0;
    for (int c = 0; c <= CAP_LAST_CAP; c++) {
        char *lower = cap_to_name(c);
        assert_non_null(lower);
        snprintf(names[n], sizeof(names[n]), "%s", lower);
        cap_free(lower);
        for (char *p = names[n]; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        namep[n] = names[n];
        n++;
    }
    /* a well-formed name newer than libcap: skipped, not an error */
    namep[n++] = S("CAP_FROM_THE_FUTURE");
    Grpc__LinuxCapabilities all = GRPC__LINUX_CAPABILITIES__INIT;
    all.bounding = all.effective = all.inheritable = all.permitted = all.ambient = namep;
    all.n_bounding = all.n_effective = all.n_inheritable = all.n_permitted = all.n_ambient = n;
    f.proc.capabilities = &all;
    s = convert_ok(&f.spec);
    uint64_t want = (UINT64_C(1) << (CAP_LAST_CAP + 1)) - 1;
    assert_int_equal(s->process.caps.bounding, want);
    assert_int_equal(s->process.caps.effective, want);
    assert_int_equal(s->process.caps.inheritable, want);
    assert_int_equal(s->process.caps.permitted, want);
    assert_int_equal(s->process.caps.ambient, want);
    ka_spec_free(s);

    /* not CAP_* names: errors naming the cap and the set */
    static const char *bad[] = {"chown",      "cap_chown", "12", "CAP_", "CAP_CHOWN,CAP_KILL",
                                "CAP_CHOWN ", ""};
    Grpc__LinuxCapabilities one = GRPC__LINUX_CAPABILITIES__INIT;
    char *onep[1];
    one.inheritable = onep;
    one.n_inheritable = 1;
    f.proc.capabilities = &one;
    for (size_t i = 0; i < N(bad); i++) {
        onep[0] = S(bad[i]);
        char want_msg[128];
        snprintf(want_msg, sizeof(want_msg),
                 "capability \"%s\" in the inheritable set is not a CAP_* name", bad[i]);
        expect_error(&f.spec, want_msg);
    }
}

/* ---- namespaces and propagation --------------------------------------------- */

static void test_namespaces(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    Grpc__LinuxNamespace ns[7];
    Grpc__LinuxNamespace *nsp[7];
    static const char *types[] = {"pid", "network", "mount", "ipc", "uts", "cgroup", "user"};
    static const enum ka_ns_type want[] = {KA_NS_PID, KA_NS_NETWORK, KA_NS_MOUNT, KA_NS_IPC,
                                           KA_NS_UTS, KA_NS_CGROUP,  KA_NS_USER};
    for (int i = 0; i < 7; i++) {
        ns[i] = (Grpc__LinuxNamespace)GRPC__LINUX_NAMESPACE__INIT;
        ns[i].type = S(types[i]);
        nsp[i] = &ns[i];
    }
    ns[0].path = S("/proc/42/ns/pid");
    f.linux.namespaces = nsp;
    f.linux.n_namespaces = 6; /* all but user */
    struct ka_spec *s = convert_ok(&f.spec);
    for (int i = 0; i < 6; i++)
        assert_true(s->namespaces[want[i]].present);
    assert_false(s->namespaces[KA_NS_USER].present);
    assert_string_equal(s->namespaces[KA_NS_PID].path, "/proc/42/ns/pid");
    assert_null(s->namespaces[KA_NS_IPC].path);
    ka_spec_free(s);

    f.linux.n_namespaces = 7;
    expect_error(&f.spec, "user namespaces are not supported");

    f.linux.n_namespaces = 6;
    ns[5].type = S("uts");
    expect_error(&f.spec, "namespace \"uts\" given twice");
    ns[5].type = S("time");
    expect_error(&f.spec, "unknown namespace type \"time\"");
    ns[5].type = S("net"); /* the OCI name is "network" */
    expect_error(&f.spec, "unknown namespace type \"net\"");
    ns[5].type = S("cgroup");

    ns[0].path = S("proc/42/ns/pid");
    expect_error(&f.spec, "namespace path \"proc/42/ns/pid\" is not an absolute path");
    ns[0].path = S("");

    /* a user namespace can only come with mappings, and mappings alone are refused too */
    Grpc__LinuxIDMapping map = GRPC__LINUX_IDMAPPING__INIT;
    Grpc__LinuxIDMapping *mapp[] = {&map};
    map.size = 65536;
    f.linux.uidmappings = mapp;
    f.linux.n_uidmappings = 1;
    expect_error(&f.spec, "user namespaces are not supported");
}

static void test_rootfs_propagation(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        unsigned long flags;
    } cases[] = {
        {"", MS_SLAVE | MS_REC},
        {"shared", MS_SHARED | MS_REC},
        {"rshared", MS_SHARED | MS_REC},
        {"slave", MS_SLAVE | MS_REC},
        {"rslave", MS_SLAVE | MS_REC},
        {"private", MS_PRIVATE | MS_REC},
        {"rprivate", MS_PRIVATE | MS_REC},
        {"unbindable", MS_UNBINDABLE | MS_REC},
        {"runbindable", MS_UNBINDABLE | MS_REC},
    };
    struct fixture f;
    fixture_init(&f);
    for (size_t i = 0; i < N(cases); i++) {
        f.linux.rootfspropagation = S(cases[i].name);
        struct ka_spec *s = convert_ok(&f.spec);
        assert_int_equal(s->rootfs_propagation, cases[i].flags);
        ka_spec_free(s);
    }
    f.linux.rootfspropagation = S("rslaves");
    expect_error(&f.spec, "unknown rootfs propagation \"rslaves\"");
}

/* ---- process fields --------------------------------------------------------- */

static void test_process_defaults(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.proc.consolesize = NULL;
    f.proc.user = NULL;
    f.proc.env = NULL;
    f.proc.n_env = 0;
    f.proc.cwd = S("");
    f.proc.oomscoreadj = 0;
    f.proc.terminal = false;
    f.proc.nonewprivileges = false;
    f.spec.hostname = S("");
    f.linux.cgroupspath = S("");
    f.linux.n_maskedpaths = f.linux.n_readonlypaths = f.linux.n_devices = f.linux.n_sysctl = 0;
    f.spec.n_mounts = 0;
    struct ka_spec *s = convert_ok(&f.spec);
    const struct ka_process *p = &s->process;
    assert_false(p->terminal);
    assert_int_equal(p->console_height, 0);
    assert_int_equal(p->user.uid, 0);
    assert_int_equal(p->user.gid, 0);
    assert_int_equal(p->user.n_additional_gids, 0);
    assert_null(p->user.additional_gids);
    assert_null(p->env);
    assert_string_equal(p->cwd, "/");
    assert_false(p->has_oom_score_adj); /* proto3 0 = not set */
    assert_false(p->no_new_privileges);
    assert_int_equal(p->umask, 0022);
    assert_null(s->hostname);
    assert_null(s->cgroups_path);
    assert_null(s->mounts);
    assert_null(s->devices);
    assert_null(s->sysctls);
    assert_null(s->masked_paths);
    ka_spec_free(s);

    Grpc__User user = GRPC__USER__INIT;
    user.username = S("nobody");
    f.proc.user = &user;
    f.proc.oomscoreadj = 1000;
    s = convert_ok(&f.spec);
    assert_string_equal(s->process.user.username, "nobody");
    assert_true(s->process.has_oom_score_adj);
    assert_int_equal(s->process.oom_score_adj, 1000);
    ka_spec_free(s);

    f.proc.oomscoreadj = -1001;
    expect_error(&f.spec, "oom_score_adj -1001 out of range");
    f.proc.oomscoreadj = INT64_MAX;
    expect_error(&f.spec, "oom_score_adj 9223372036854775807 out of range");
}

static void test_process_from_proto(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct ka_process p;
    struct ka_error err = {0};
    assert_int_equal(ka_process_from_proto(&f.proc, &p, &err), 0);
    assert_string_equal(p.args[0], "sh");
    assert_int_equal(p.n_env, N(env));
    assert_true(p.caps.present);
    ka_process_free(&p);
    assert_null(p.args);

    char *bad_env[] = {S("OK=1"), S("=nokey")};
    f.proc.env = bad_env;
    f.proc.n_env = 2;
    memset(&p, 0x5a, sizeof(p));
    assert_true(ka_process_from_proto(&f.proc, &p, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "env[1] \"=nokey\" has an empty key"));
    assert_null(p.args); /* left zeroed */
    assert_null(p.env);

    assert_true(ka_process_from_proto(NULL, &p, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
}

/* ---- validation failures ---------------------------------------------------- */

static void test_missing_sections(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.spec.process = NULL;
    expect_error(&f.spec, "spec has no process");
    fixture_init(&f);
    f.spec.root = NULL;
    expect_error(&f.spec, "spec has no root");
    fixture_init(&f);
    f.spec.linux = NULL;
    expect_error(&f.spec, "spec has no linux section");
    expect_error(NULL, "no spec");
}

static void test_validation_failures(void **state)
{
    (void)state;
    struct fixture f;

    fixture_init(&f);
    f.root.path = S("run/rootfs");
    expect_error(&f.spec, "root path \"run/rootfs\" is not an absolute path");
    f.root.path = S("");
    expect_error(&f.spec, "root path \"\" is not an absolute path");
    f.root.path = S("/run/kata-containers/../etc");
    expect_error(&f.spec, "root path \"/run/kata-containers/../etc\" has a \"..\" component");

    fixture_init(&f);
    f.proc.n_args = 0;
    expect_error(&f.spec, "process has no args");
    char *empty_arg[] = {S(""), S("x")};
    f.proc.args = empty_arg;
    f.proc.n_args = 2;
    expect_error(&f.spec, "process args[0] is empty");

    fixture_init(&f);
    char *e1[] = {S("PATH=/bin"), S("NOEQUALS")};
    f.proc.env = e1;
    f.proc.n_env = 2;
    expect_error(&f.spec, "env[1] \"NOEQUALS\" is not KEY=value");
    char *e2[] = {S("=value")};
    f.proc.env = e2;
    f.proc.n_env = 1;
    expect_error(&f.spec, "env[0] \"=value\" has an empty key");

    fixture_init(&f);
    f.proc.cwd = S("work");
    expect_error(&f.spec, "process cwd \"work\" is not an absolute path");
    f.proc.cwd = S("/work/../..");
    expect_error(&f.spec, "has a \"..\" component");

    fixture_init(&f);
    f.m[M_VOLUME].destination = S("data");
    expect_error(&f.spec, "mount destination \"data\" is not an absolute path");
    f.m[M_VOLUME].destination = S("/data/../../etc");
    expect_error(&f.spec, "mount destination \"/data/../../etc\" has a \"..\" component");
    f.m[M_VOLUME].destination = S("/..");
    expect_error(&f.spec, "has a \"..\" component");
    f.m[M_VOLUME].destination = S("");
    expect_error(&f.spec, "mount destination \"\" is not an absolute path");

    fixture_init(&f);
    char *mp[] = {S("/proc/kcore"), S("proc/keys")};
    f.linux.maskedpaths = mp;
    f.linux.n_maskedpaths = 2;
    expect_error(&f.spec, "masked path \"proc/keys\" is not an absolute path");
    mp[1] = S("/proc/../etc");
    expect_error(&f.spec, "masked path \"/proc/../etc\" has a \"..\" component");

    fixture_init(&f);
    char *rp[] = {S("/proc/sys/..")};
    f.linux.readonlypaths = rp;
    f.linux.n_readonlypaths = 1;
    expect_error(&f.spec, "readonly path \"/proc/sys/..\" has a \"..\" component");

    fixture_init(&f);
    f.dev[1].path = S("/tmp/fuse");
    expect_error(&f.spec, "device path \"/tmp/fuse\" is not under /dev/");
    f.dev[1].path = S("/devfuse");
    expect_error(&f.spec, "device path \"/devfuse\" is not under /dev/");
    f.dev[1].path = S("/dev/");
    expect_error(&f.spec, "device path \"/dev/\" is not under /dev/");
    f.dev[1].path = S("/dev/../etc/shadow");
    expect_error(&f.spec, "device path \"/dev/../etc/shadow\" has a \"..\" component");
    f.dev[1].path = S("dev/fuse");
    expect_error(&f.spec, "device path \"dev/fuse\" is not an absolute path");
    f.dev[1].path = S("/dev/fuse");
    f.dev[1].type = S("x");
    expect_error(&f.spec, "device /dev/fuse: type 'x' is not one of c, b, p, u");
    f.dev[1].type = S("cb");
    expect_error(&f.spec, "device /dev/fuse: type \"cb\" is not one of c, b, p, u");
    f.dev[1].type = S("");
    expect_error(&f.spec, "device /dev/fuse: type \"\" is not one of c, b, p, u");
    f.dev[1].type = S("p");
    struct ka_spec *s = convert_ok(&f.spec);
    assert_int_equal(s->devices[1].type, 'p');
    ka_spec_free(s);

    fixture_init(&f);
    f.linux.n_namespaces = 2; /* ipc, uts: no mount ns is not our call here */
    f.ns[1].type = S("mount");
    expect_error(&f.spec, "hostname needs a uts namespace");
    f.spec.hostname = S("");
    s = convert_ok(&f.spec);
    ka_spec_free(s);
}

static void test_sysctls(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        bool ipc, uts;     /* namespaces in the spec */
        const char *error; /* NULL: accepted */
    } cases[] = {
        {"net.ipv4.ip_forward", false, false, NULL},
        {"net.ipv4.conf.eth0/100.forwarding", false, false, NULL},
        {"net.core.somaxconn", true, true, NULL},
        {"kernel.msgmax", true, false, NULL},
        {"kernel.msgmnb", true, false, NULL},
        {"kernel.msg_next_id", true, false, NULL},
        {"kernel.sem", true, false, NULL},
        {"kernel.shmall", true, false, NULL},
        {"kernel.shm_rmid_forced", true, false, NULL},
        {"fs.mqueue.msg_max", true, false, NULL},
        {"kernel.domainname", false, true, NULL},
        {"kernel.msgmax", false, true, "sysctl \"kernel.msgmax\" needs an ipc namespace"},
        {"kernel.sem", false, false, "sysctl \"kernel.sem\" needs an ipc namespace"},
        {"kernel.shmmax", false, true, "sysctl \"kernel.shmmax\" needs an ipc namespace"},
        {"fs.mqueue.queues_max", false, true, "needs an ipc namespace"},
        {"kernel.domainname", true, false, "sysctl \"kernel.domainname\" needs a uts namespace"},
        {"kernel.hostname", true, true, "sysctl \"kernel.hostname\" is not allowed in a container"},
        {"kernel.semx", true, true, "sysctl \"kernel.semx\" is not allowed"},
        {"vm.swappiness", true, true, "sysctl \"vm.swappiness\" is not allowed"},
        {"fs.mqueue", true, true, "sysctl \"fs.mqueue\" is not allowed"},
        {"net", true, true, "is not allowed"},
        {"", true, true, "sysctl \"\" is malformed"},
        {"net..ipv4", true, true, "sysctl \"net..ipv4\" is malformed"},
        {"net.ipv4.", true, true, "is malformed"},
        {".net.ipv4", true, true, "is malformed"},
        /* with '/' read as '.', these would reach /proc/sys/net/../.. */
        {"net.//.//.//etc", true, true, "sysctl \"net.//.//.//etc\" is malformed"},
        {"net./.x", true, true, "is malformed"},
    };
    struct fixture f;
    for (size_t i = 0; i < N(cases); i++) {
        fixture_init(&f);
        Grpc__Linux__SysctlEntry e = GRPC__LINUX__SYSCTL_ENTRY__INIT;
        Grpc__Linux__SysctlEntry *ep[] = {&e};
        e.key = S(cases[i].key);
        e.value = S("1");
        f.linux.sysctl = ep;
        f.linux.n_sysctl = 1;
        Grpc__LinuxNamespace *nsp[3];
        size_t n = 0;
        nsp[n++] = &f.ns[2]; /* mount */
        if (cases[i].ipc)
            nsp[n++] = &f.ns[0];
        if (cases[i].uts)
            nsp[n++] = &f.ns[1];
        f.linux.namespaces = nsp;
        f.linux.n_namespaces = n;
        if (!cases[i].uts)
            f.spec.hostname = S("");
        if (cases[i].error) {
            expect_error(&f.spec, cases[i].error);
        } else {
            struct ka_error err = {0};
            struct ka_spec *s = NULL;
            if (ka_spec_from_proto(&f.spec, &s, &err) != 0)
                fail_msg("sysctl %s: %s", cases[i].key, err.msg);
            ka_spec_free(s);
        }
    }
}

/* ---- bounds: refused before anything is allocated or read ------------------- */

static void test_bounds(void **state)
{
    (void)state;
    struct fixture f;
    /* The arrays are NULL: touching an element would crash, so an error proves
     * the count was checked first. */
    fixture_init(&f);
    f.proc.args = NULL;
    f.proc.n_args = 100000;
    expect_error(&f.spec, "too many args (100000, at most 4096)");
    fixture_init(&f);
    f.proc.env = NULL;
    f.proc.n_env = KA_SPEC_MAX_ENV + 1;
    expect_error(&f.spec, "too many env entries");
    fixture_init(&f);
    f.user.additionalgids = NULL;
    f.user.n_additionalgids = KA_SPEC_MAX_GROUPS + 1;
    expect_error(&f.spec, "too many additional gids");
    fixture_init(&f);
    f.proc.rlimits = NULL;
    f.proc.n_rlimits = SIZE_MAX;
    expect_error(&f.spec, "too many rlimits");
    fixture_init(&f);
    f.spec.mounts = NULL;
    f.spec.n_mounts = KA_SPEC_MAX_MOUNTS + 1;
    expect_error(&f.spec, "too many mounts");
    fixture_init(&f);
    f.linux.devices = NULL;
    f.linux.n_devices = KA_SPEC_MAX_PATHS + 1;
    expect_error(&f.spec, "too many devices");
    fixture_init(&f);
    f.linux.maskedpaths = NULL;
    f.linux.n_maskedpaths = SIZE_MAX / 2;
    expect_error(&f.spec, "too many masked paths");
    fixture_init(&f);
    f.linux.readonlypaths = NULL;
    f.linux.n_readonlypaths = KA_SPEC_MAX_PATHS + 1;
    expect_error(&f.spec, "too many readonly paths");
    fixture_init(&f);
    f.linux.sysctl = NULL;
    f.linux.n_sysctl = KA_SPEC_MAX_PATHS + 1;
    expect_error(&f.spec, "too many sysctls");

    /* exactly at the limit is fine */
    fixture_init(&f);
    char **many = calloc(KA_SPEC_MAX_ARGS, sizeof(char *));
    assert_non_null(many);
    for (size_t i = 0; i < KA_SPEC_MAX_ARGS; i++)
        many[i] = S("x");
    f.proc.args = many;
    f.proc.n_args = KA_SPEC_MAX_ARGS;
    struct ka_spec *s = convert_ok(&f.spec);
    assert_int_equal(s->process.n_args, KA_SPEC_MAX_ARGS);
    ka_spec_free(s);
    free(many);

    /* ka_spec_validate enforces the same limits on a struct built elsewhere */
    struct ka_process p = {0};
    char *a[] = {S("true")};
    p.args = a;
    p.n_args = KA_SPEC_MAX_ARGS + 1;
    p.cwd = S("/");
    struct ka_error err = {0};
    assert_true(ka_process_validate(&p, &err) < 0);
    assert_non_null(strstr(err.msg, "too many args"));
    p.n_args = 1;
    assert_int_equal(ka_process_validate(&p, &err), 0);
    p.has_oom_score_adj = true;
    p.oom_score_adj = 1001;
    assert_true(ka_process_validate(&p, &err) < 0);
    assert_non_null(strstr(err.msg, "oom_score_adj 1001 out of range"));
}

/* Issue 13: User {UID: 4294967295} ran as root (setresuid(-1) keeps the uid);
 * (uid_t)-1, (gid_t)-1 and anything above INT32_MAX are refused, for the
 * container's process and an exec alike (both go through ka_process_validate). */
static void test_user_ids(void **state)
{
    (void)state;
    struct ka_process p = {0};
    char *a[] = {S("true")};
    p.args = a;
    p.n_args = 1;
    p.cwd = S("/");
    uint32_t gids[] = {5, 2147483647u, 0};
    p.user.additional_gids = gids;
    p.user.n_additional_gids = 2;
    struct ka_error err = {0};
    p.user.uid = p.user.gid = 2147483647u;
    assert_int_equal(ka_process_validate(&p, &err), 0);
    static const uint32_t bad[] = {4294967295u, 2147483648u, 4294967294u};
    for (size_t i = 0; i < N(bad); i++) {
        p.user.uid = bad[i];
        p.user.gid = 0;
        assert_true(ka_process_validate(&p, &err) < 0);
        assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(err.msg, "uid"));
        p.user.uid = 0;
        p.user.gid = bad[i];
        assert_true(ka_process_validate(&p, &err) < 0);
        assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(err.msg, "gid"));
        p.user.gid = 0;
        gids[2] = bad[i];
        p.user.n_additional_gids = 3;
        assert_true(ka_process_validate(&p, &err) < 0);
        assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(err.msg, "additional gid[2]"));
        p.user.n_additional_gids = 2;
    }
    assert_int_equal(ka_process_validate(&p, &err), 0);
}

/* ---- ids -------------------------------------------------------------------- */

static void test_valid_id(void **state)
{
    (void)state;
    char long_id[301];
    memset(long_id, 'a', 300);
    long_id[300] = '\0';
    char max_id[KA_ID_MAX + 2];
    memset(max_id, 'b', KA_ID_MAX + 1);
    max_id[KA_ID_MAX + 1] = '\0';

    assert_false(ka_valid_id(NULL));
    assert_false(ka_valid_id(""));
    assert_false(ka_valid_id("."));
    assert_false(ka_valid_id(".."));
    assert_false(ka_valid_id("a"));
    assert_true(ka_valid_id("ab"));
    assert_false(ka_valid_id("a/b"));
    assert_false(ka_valid_id("-ab"));
    assert_false(ka_valid_id("_ab"));
    assert_false(ka_valid_id(".ab"));
    assert_false(ka_valid_id(long_id));
    assert_true(ka_valid_id("abc.def_g-h"));
    assert_true(ka_valid_id("a.."));
    assert_true(ka_valid_id("3f1c2a9d8e7b4c6d"));
    assert_false(ka_valid_id("ab c"));
    assert_false(ka_valid_id("ab\n"));
    assert_false(ka_valid_id("caf\xc3\xa9")); /* ASCII only */
    assert_false(ka_valid_id(max_id));        /* KA_ID_MAX + 1 bytes */
    max_id[KA_ID_MAX] = '\0';
    assert_true(ka_valid_id(max_id)); /* exactly KA_ID_MAX */
}

int main(void)
{
    /* Skipped capabilities are logged at debug; keep the output clean. */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
        ka_log_set_fd(devnull);
    ka_log_set_level(KA_LOG_TRACE); /* and exercise the log call */

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_spec),        cmocka_unit_test(test_full_spec_from_wire),
        cmocka_unit_test(test_mount_options),    cmocka_unit_test(test_mount_bind_marking),
        cmocka_unit_test(test_rlimits),          cmocka_unit_test(test_caps),
        cmocka_unit_test(test_namespaces),       cmocka_unit_test(test_rootfs_propagation),
        cmocka_unit_test(test_process_defaults), cmocka_unit_test(test_process_from_proto),
        cmocka_unit_test(test_missing_sections), cmocka_unit_test(test_validation_failures),
        cmocka_unit_test(test_sysctls),          cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_valid_id),         cmocka_unit_test(test_user_ids),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (devnull >= 0)
        close(devnull);
    return rc;
}
