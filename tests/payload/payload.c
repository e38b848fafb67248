/* ka-payload: the static multi-call program that container integration tests run
 * inside the image-free test rootfs (tests/rootfs/make-rootfs.sh).
 *
 * The command is the basename of argv[0] when that names a command (the rootfs
 * has /payload/bin/<cmd> -> /usr/bin/ka-payload), else the first argument
 * ("ka-payload echo hi"). Output is meant for machines: one fact per line,
 * "key=value" where there is a key. Failures print the bare errno name
 * ("EROFS") on stdout and a human message on stderr, and exit 1. Usage errors
 * (unknown command, missing or bad argument) exit 2.
 *
 * Only libc, and nothing that needs NSS (no getpwnam), so it links with -static.
 * `ka-payload help` prints the command list with each command's synopsis. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *prog = "ka-payload";

struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *args;
    const char *desc;
};

static const struct command *current;

/* ---- helpers ---------------------------------------------------------------- */

static const char *errno_name(int err)
{
    const char *n = strerrorname_np(err);
    static char buf[16];
    if (n)
        return n;
    snprintf(buf, sizeof(buf), "E%d", err);
    return buf;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s %s: ", prog, current->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: ka-payload %s%s%s\n", current->name, *current->args ? " " : "",
            current->args);
    return 2;
}

/* The failure convention: errno name alone on stdout, details on stderr, exit 1. */
static int fail_errno(int err, const char *what, const char *arg)
{
    printf("%s\n", errno_name(err));
    fprintf(stderr, "%s %s: %s%s%s: %s\n", prog, current->name, what, arg ? " " : "",
            arg ? arg : "", strerror(err));
    return 1;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Decimal with an optional binary suffix: K, M, G (or KiB, MiB, GiB). */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    }
    if (shift && strcmp(end, "iB") == 0)
        end += 2;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t *short_writes)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if ((size_t)n < len && short_writes)
            (*short_writes)++;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copy fd to stdout (flushing stdio first). Returns 0 or an errno value. */
static int copy_fd_to_stdout(int fd, uint64_t *count)
{
    static char buf[65536];
    fflush(stdout);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return 0;
        if (write_all(STDOUT_FILENO, buf, (size_t)n, NULL) < 0)
            return errno;
        if (count)
            *count += (uint64_t)n;
    }
}

static int print_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(errno, "open", path);
    int err = copy_fd_to_stdout(fd, NULL);
    close(fd);
    return err ? fail_errno(err, "copy", path) : 0;
}

static void sleep_timespec(struct timespec ts)
{
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* "TERM", "SIGTERM", "sigterm" or "15". Returns 0 when unknown. */
static int parse_signal(const char *s)
{
    long n;
    if (parse_long(s, 1, NSIG - 1, &n))
        return (int)n;
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (int sig = 1; sig < NSIG; sig++) {
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev && strcasecmp(abbrev, s) == 0)
            return sig;
    }
    return 0;
}

static const char *signal_name(int sig)
{
    static char buf[16];
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev)
        snprintf(buf, sizeof(buf), "SIG%s", abbrev);
    else
        snprintf(buf, sizeof(buf), "SIG%d", sig);
    return buf;
}

/* ---- commands ------------------------------------------------------------- */

static int cmd_true(int argc, char **argv)
{
    (void)argc, (void)argv;
    return 0;
}

static int cmd_false(int argc, char **argv)
{
    (void)argc, (void)argv;
    return 1;
}

/* No option parsing at all: "echo -n x" prints "-n x\n". */
static void echo_to(FILE *f, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        fprintf(f, "%s%s", i > 1 ? " " : "", argv[i]);
    fputc('\n', f);
}

static int cmd_echo(int argc, char **argv)
{
    echo_to(stdout, argc, argv);
    return 0;
}

static int cmd_echo_stderr(int argc, char **argv)
{
    echo_to(stderr, argc, argv);
    return 0;
}

static int cmd_cat(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return usage_error("takes no arguments (stdin only)");
    int err = copy_fd_to_stdout(STDIN_FILENO, NULL);
    return err ? fail_errno(err, "copy", "stdin") : 0;
}

static int cmd_sleep(int argc, char **argv)
{
    if (argc != 2)
        return usage_error("needs SECONDS");
    char *end;
    double s = strtod(argv[1], &end);
    if (end == argv[1] || *end || !isfinite(s) || s < 0 || s > 1e9)
        return usage_error("bad SECONDS '%s'", argv[1]);
    struct timespec ts = {.tv_sec = (time_t)s};
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999)
        ts.tv_nsec = 999999999;
    sleep_timespec(ts);
    return 0;
}

static int cmd_exit(int argc, char **argv)
{
    long n;
    if (argc != 2 || !parse_long(argv[1], INT_MIN, INT_MAX, &n))
        return usage_error("needs an integer N");
    fflush(NULL);
    _exit((int)(n & 0xff));
}

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_FAULTS 1
#endif

/* Raise sig for real. Plain kill() to oneself cannot kill the init of a pid
 * namespace (the kernel drops signals with default action that init sends
 * itself), so the hardware-fault signals are raised by causing the fault: a
 * forced signal kills even init. Returns only when the process survived. */
static void die_by_signal(int sig)
{
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    /* No core files littering the container's cwd (WCOREDUMP stays false). */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    fflush(NULL);

    long page = sysconf(_SC_PAGESIZE);
    switch (sig) {
    case SIGSEGV: {
        volatile char *p = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED)
            *p = 1;
        break;
    }
    case SIGBUS: {
        int fd = memfd_create("ka-payload-sigbus", MFD_CLOEXEC);
        if (fd >= 0) {
            volatile char *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (p != MAP_FAILED)
                *p = 1; /* beyond the (empty) file's end */
        }
        break;
    }
#ifdef HAVE_FAULTS
    case SIGILL:
        __asm__ volatile("ud2");
        break;
    case SIGTRAP:
        __asm__ volatile("int3");
        break;
    case SIGFPE: {
        volatile int zero = 0, one = 1;
        volatile int r = one / zero;
        (void)r;
        break;
    }
#endif
    }
    /* Delivered before kill() returns, unless ignored: default-ignore signals
     * (SIGCHLD, SIGWINCH, SIGURG), or anything but a fault when we are pid 1.
     * After SIGSTOP we carry on once continued. */
    kill(getpid(), sig);
}

static int cmd_kill_self(int argc, char **argv)
{
    if (argc != 2)
        return usage_error("needs SIGNAME or NUMBER");
    int sig = parse_signal(argv[1]);
    if (!sig)
        return usage_error("unknown signal '%s'", argv[1]);
    die_by_signal(sig);
    printf("survived=%s\n", signal_name(sig));
    fprintf(stderr, "%s kill-self: still alive after %s%s\n", prog, signal_name(sig),
            getpid() == 1 ? " (pid 1 of a pid namespace ignores its own signals; "
                            "SEGV BUS ILL TRAP FPE are raised as real faults and do work)"
                          : "");
    return 1;
}

static int cmd_env(int argc, char **argv)
{
    (void)argc, (void)argv;
    for (char **e = environ; *e; e++)
        printf("%s\n", *e);
    return 0;
}

static int cmd_cwd(int argc, char **argv)
{
    (void)argc, (void)argv;
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof(buf)))
        return fail_errno(errno, "getcwd", NULL);
    printf("%s\n", buf);
    return 0;
}

static int cmd_id(int argc, char **argv)
{
    (void)argc, (void)argv;
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) < 0)
        return fail_errno(errno, "getresuid", NULL);
    if (getresgid(&rgid, &egid, &sgid) < 0)
        return fail_errno(errno, "getresgid", NULL);
    int n = getgroups(0, NULL);
    if (n < 0)
        return fail_errno(errno, "getgroups", NULL);
    gid_t *groups = calloc((size_t)n + 1, sizeof(*groups));
    if (!groups)
        return fail_errno(ENOMEM, "calloc", NULL);
    n = getgroups(n, groups);
    if (n < 0)
        return fail_errno(errno, "getgroups", NULL);
    printf("uid=%u\neuid=%u\nsuid=%u\ngid=%u\negid=%u\nsgid=%u\ngroups=", ruid, euid, suid, rgid,
           egid, sgid);
    for (int i = 0; i < n; i++)
        printf("%s%u", i ? "," : "", groups[i]);
    printf("\n");
    free(groups);
    return 0;
}

/* Print the lines of /proc/self/status whose field name is in names. Returns
 * how many were printed, or -errno. */
static int print_status_fields(const char *const *names, size_t count)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (getline(&line, &cap, f) > 0) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        size_t len = (size_t)(colon - line);
        for (size_t i = 0; i < count; i++) {
            if (strlen(names[i]) == len && strncmp(line, names[i], len) == 0) {
                fputs(line, stdout);
                found++;
                break;
            }
        }
    }
    free(line);
    fclose(f);
    return found;
}

static int cmd_caps(int argc, char **argv)
{
    (void)argc, (void)argv;
    static const char *const names[] = {"CapInh", "CapPrm", "CapEff",
                                        "CapBnd", "CapAmb", "NoNewPrivs"};
    int n = print_status_fields(names, sizeof(names) / sizeof(names[0]));
    if (n < 0)
        return fail_errno(-n, "read", "/proc/self/status");
    return 0;
}

static int cmd_status_field(int argc, char **argv)
{
    if (argc != 2)
        return usage_error("needs NAME");
    char name[64];
    snprintf(name, sizeof(name), "%s", argv[1]);
    size_t len = strlen(name);
    if (len && name[len - 1] == ':')
        name[len - 1] = '\0';
    const char *names[] = {name};
    int n = print_status_fields(names, 1);
    if (n < 0)
        return fail_errno(-n, "read", "/proc/self/status");
    if (n == 0) {
        fprintf(stderr, "%s status-field: no field '%s' in /proc/self/status\n", prog, name);
        return 1;
    }
    return 0;
}

static int cmd_isatty(int argc, char **argv)
{
    long fd = 0;
    if (argc > 2 || (argc == 2 && !parse_long(argv[1], 0, INT_MAX, &fd)))
        return usage_error("needs FD");
    bool tty = isatty((int)fd);
    printf("%s\n", tty ? "tty" : "notty");
    return tty ? 0 : 1;
}

static int cmd_winsize(int argc, char **argv)
{
    long fd = 0;
    if (argc > 2 || (argc == 2 && !parse_long(argv[1], 0, INT_MAX, &fd)))
        return usage_error("takes an optional FD");
    struct winsize ws;
    if (ioctl((int)fd, TIOCGWINSZ, &ws) < 0)
        return fail_errno(errno, "TIOCGWINSZ", NULL);
    printf("rows=%u cols=%u\n", ws.ws_row, ws.ws_col);
    return 0;
}

static int compare_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmd_fds(int argc, char **argv)
{
    (void)argc, (void)argv;
    fflush(stdout);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return fail_errno(errno, "opendir", "/proc/self/fd");
    int self = dirfd(d);
    int *fds = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        long fd;
        if (!parse_long(de->d_name, 0, INT_MAX, &fd) || fd == self)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            int *grown = realloc(fds, cap * sizeof(*fds));
            if (!grown)
                return fail_errno(ENOMEM, "realloc", NULL);
            fds = grown;
        }
        fds[n++] = (int)fd;
    }
    qsort(fds, n, sizeof(*fds), compare_int);
    for (size_t i = 0; i < n; i++) {
        char name[16], target[PATH_MAX + 1];
        snprintf(name, sizeof(name), "%d", fds[i]);
        ssize_t len = readlinkat(self, name, target, sizeof(target) - 1);
        if (len < 0)
            snprintf(target, sizeof(target), "?%s", errno_name(errno));
        else
            target[len] = '\0';
        printf("%d -> %s\n", fds[i], target);
    }
    free(fds);
    closedir(d);
    return 0;
}

static int cmd_ns(int argc, char **argv)
{
    static const char *defaults[] = {"pid", "ipc", "uts", "mnt", "net", "cgroup"};
    const char **names = argc > 1 ? (const char **)argv + 1 : defaults;
    int count = argc > 1 ? argc - 1 : (int)(sizeof(defaults) / sizeof(defaults[0]));
    int rc = 0;
    for (int i = 0; i < count; i++) {
        char path[128], target[256];
        snprintf(path, sizeof(path), "/proc/self/ns/%s", names[i]);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len < 0) {
            printf("%s:%s\n", names[i], errno_name(errno));
            rc = 1;
            continue;
        }
        target[len] = '\0';
        printf("%s\n", target);
    }
    return rc;
}

static const struct {
    const char *name;
    int resource;
} rlimits[] = {
    {"AS", RLIMIT_AS},           {"CORE", RLIMIT_CORE},         {"CPU", RLIMIT_CPU},
    {"DATA", RLIMIT_DATA},       {"FSIZE", RLIMIT_FSIZE},       {"LOCKS", RLIMIT_LOCKS},
    {"MEMLOCK", RLIMIT_MEMLOCK}, {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE},
    {"NOFILE", RLIMIT_NOFILE},   {"NPROC", RLIMIT_NPROC},       {"RSS", RLIMIT_RSS},
    {"RTPRIO", RLIMIT_RTPRIO},   {"RTTIME", RLIMIT_RTTIME},     {"SIGPENDING", RLIMIT_SIGPENDING},
    {"STACK", RLIMIT_STACK},
};

static void print_rlim(rlim_t v, const char *sep)
{
    if (v == RLIM_INFINITY)
        printf("unlimited%s", sep);
    else
        printf("%llu%s", (unsigned long long)v, sep);
}

static int cmd_rlimit(int argc, char **argv)
{
    if (argc > 2)
        return usage_error("takes at most one NAME");
    const char *want = argc == 2 ? argv[1] : NULL;
    if (want && strncasecmp(want, "RLIMIT_", 7) == 0)
        want += 7;
    bool found = false;
    for (size_t i = 0; i < sizeof(rlimits) / sizeof(rlimits[0]); i++) {
        if (want && strcasecmp(want, rlimits[i].name) != 0)
            continue;
        struct rlimit rl;
        if (getrlimit(rlimits[i].resource, &rl) < 0)
            return fail_errno(errno, "getrlimit", rlimits[i].name);
        if (!want)
            printf("%s ", rlimits[i].name);
        print_rlim(rl.rlim_cur, " ");
        print_rlim(rl.rlim_max, "\n");
        found = true;
    }
    if (!found)
        return usage_error("unknown limit '%s'", argv[1]);
    return 0;
}

/* A SysV shared memory segment: made in one container of a pod and found in
 * another, it shows the two share an IPC namespace. */
static int cmd_sysv_shm(int argc, char **argv)
{
    bool create = argc == 3 && strcmp(argv[1], "create") == 0;
    if (argc != 3 || (!create && strcmp(argv[1], "find") != 0))
        return usage_error("create|find KEY");
    key_t key = (key_t)strtol(argv[2], NULL, 0);
    int id = shmget(key, 4096, create ? IPC_CREAT | 0600 : 0);
    if (id < 0)
        return fail_errno(errno, "shmget", argv[2]);
    printf("id=%d\n", id);
    return 0;
}

static int cmd_hostname(int argc, char **argv)
{
    (void)argc, (void)argv;
    char buf[HOST_NAME_MAX + 1];
    if (gethostname(buf, sizeof(buf)) < 0)
        return fail_errno(errno, "gethostname", NULL);
    buf[HOST_NAME_MAX] = '\0';
    printf("%s\n", buf);
    return 0;
}

/* write-bytes' stream: the byte at offset i is PATTERN[i % PATTERN_LEN]. The
 * period is prime so lost or repeated power-of-two sized chunks show up. */
static const char PATTERN[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy";
#define PATTERN_LEN (sizeof(PATTERN) - 1) /* 61 */

static int cmd_write_bytes(int argc, char **argv)
{
    uint64_t total, chunk = 65536;
    if (argc < 2 || argc > 3 || !parse_size(argv[1], &total))
        return usage_error("needs N (bytes; K, M, G suffixes allowed)");
    if (argc == 3 && (!parse_size(argv[2], &chunk) || chunk == 0 || chunk > (64u << 20)))
        return usage_error("bad CHUNK '%s' (1 to 64M)", argv[2]);
    char *buf = malloc(chunk + PATTERN_LEN);
    if (!buf)
        return fail_errno(ENOMEM, "malloc", NULL);
    for (uint64_t i = 0; i < chunk + PATTERN_LEN; i++)
        buf[i] = PATTERN[i % PATTERN_LEN];
    fflush(stdout);
    uint64_t done = 0, writes = 0, short_writes = 0;
    while (done < total) {
        size_t len = total - done < chunk ? (size_t)(total - done) : (size_t)chunk;
        ssize_t n = write(STDOUT_FILENO, buf + done % PATTERN_LEN, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* stdout was left non-blocking: wait, don't fail */
                struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
                poll(&pfd, 1, -1);
                continue;
            }
            int err = errno;
            fprintf(stderr, "%s write-bytes: wrote=%llu error=%s\n", prog, (unsigned long long)done,
                    errno_name(err));
            return 1;
        }
        writes++;
        if ((size_t)n < len)
            short_writes++;
        done += (uint64_t)n;
    }
    free(buf);
    fprintf(stderr, "%s write-bytes: wrote=%llu writes=%llu short=%llu\n", prog,
            (unsigned long long)done, (unsigned long long)writes, (unsigned long long)short_writes);
    return 0;
}

static int cmd_read_bytes(int argc, char **argv)
{
    bool verify = argc == 2 && strcmp(argv[1], "--verify") == 0;
    if (argc > 2 || (argc == 2 && !verify))
        return usage_error("takes only --verify");
    static char buf[65536], expect[sizeof(buf) + PATTERN_LEN];
    for (size_t i = 0; verify && i < sizeof(expect); i++)
        expect[i] = PATTERN[i % PATTERN_LEN];
    uint64_t count = 0, bad_at = UINT64_MAX;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail_errno(errno, "read", "stdin");
        }
        if (n == 0)
            break;
        const char *want = expect + count % PATTERN_LEN;
        if (verify && bad_at == UINT64_MAX && memcmp(buf, want, (size_t)n) != 0) {
            ssize_t i = 0;
            while (buf[i] == want[i])
                i++;
            bad_at = count + (uint64_t)i;
        }
        count += (uint64_t)n;
    }
    printf("%llu\n", (unsigned long long)count);
    if (!verify)
        return 0;
    if (bad_at == UINT64_MAX) {
        printf("pattern=ok\n");
        return 0;
    }
    printf("pattern=mismatch offset=%llu\n", (unsigned long long)bad_at);
    return 1;
}

static volatile sig_atomic_t got_signal;

static void note_signal(int sig)
{
    got_signal = sig;
}

/* Wait (with sig blocked beforehand) until a handled signal arrives. */
static int wait_for_signal(const sigset_t *orig)
{
    while (!got_signal)
        sigsuspend(orig);
    return got_signal;
}

static int cmd_forkbomb(int argc, char **argv)
{
    long max = 4096;
    bool hold = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--hold") == 0)
            hold = true;
        else if (!parse_long(argv[i], 0, 1 << 22, &max))
            return usage_error("bad argument '%s'", argv[i]);
    }
    pid_t *pids = calloc((size_t)max + 1, sizeof(*pids));
    if (!pids)
        return fail_errno(ENOMEM, "calloc", NULL);
    fflush(NULL);
    pid_t parent = getpid();
    long forks = 0;
    int err = 0;
    while (forks < max) {
        pid_t pid = fork();
        if (pid < 0) {
            err = errno;
            break;
        }
        if (pid == 0) {
            /* Pause with default dispositions, so any fatal signal kills us, and
             * die with the parent should it go without reaping us. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(0);
            for (;;)
                pause();
        }
        pids[forks++] = pid;
    }
    printf("forks=%ld\nerrno=%s\n", forks, err ? errno_name(err) : "none");
    fflush(stdout);
    if (hold) {
        /* Keep the children until SIGTERM or SIGINT, then clean up. */
        sigset_t set, orig;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, &orig);
        struct sigaction sa = {.sa_handler = note_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        printf("holding\n");
        fflush(stdout);
        wait_for_signal(&orig);
    }
    for (long i = 0; i < forks; i++)
        kill(pids[i], SIGKILL);
    for (long i = 0; i < forks; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    free(pids);
    return 0;
}

static int cmd_memhog(int argc, char **argv)
{
    long mb;
    bool hold = argc == 3 && strcmp(argv[2], "--hold") == 0;
    if ((argc != 2 && !hold) || !parse_long(argv[1], 1, 1 << 24, &mb))
        return usage_error("needs MB");
    size_t size = (size_t)mb << 20;
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return fail_errno(errno, "mmap", NULL);
    /* Progress goes out unbuffered-per-line so it survives the OOM killer. */
    for (long m = 0; m < mb; m++) {
        char *base = p + ((size_t)m << 20);
        for (size_t off = 0; off < (1u << 20); off += (size_t)page)
            base[off] = (char)(m + 1);
        printf("mb=%ld\n", m + 1);
        fflush(stdout);
    }
    printf("done\n");
    fflush(stdout);
    if (hold)
        for (;;)
            pause();
    munmap(p, size);
    return 0;
}

static int cmd_pause(int argc, char **argv)
{
    bool handle = argc == 2 && strcmp(argv[1], "--handle-term") == 0;
    if (argc > 2 || (argc == 2 && !handle))
        return usage_error("takes only --handle-term");
    if (!handle) {
        printf("ready\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    sigset_t set, orig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &orig);
    struct sigaction sa = {.sa_handler = note_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigdelset(&orig, SIGTERM);
    printf("ready\n");
    fflush(stdout);
    wait_for_signal(&orig);
    printf("SIGTERM\n");
    return 0;
}

static int cmd_pid(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("pid=%d\nppid=%d\n", getpid(), getppid());
    return 0;
}

static int cmd_mounts(int argc, char **argv)
{
    (void)argc, (void)argv;
    return print_file("/proc/self/mountinfo");
}

static const char *file_type(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return "reg";
    case S_IFDIR:
        return "dir";
    case S_IFLNK:
        return "lnk";
    case S_IFCHR:
        return "chr";
    case S_IFBLK:
        return "blk";
    case S_IFIFO:
        return "fifo";
    case S_IFSOCK:
        return "sock";
    default:
        return "unknown";
    }
}

static int cmd_stat(int argc, char **argv)
{
    bool nofollow = argc == 3 && strcmp(argv[1], "--no-follow") == 0;
    if (argc != 2 && !nofollow)
        return usage_error("needs PATH");
    const char *path = argv[argc - 1];
    struct stat st;
    if ((nofollow ? lstat(path, &st) : stat(path, &st)) < 0)
        return fail_errno(errno, "stat", path);
    printf(
        "type=%s\nmode=%04o\nuid=%u\ngid=%u\nsize=%lld\nmajor=%u\nminor=%u\ndev=%u:%u\nino=%llu\n",
        file_type(st.st_mode), (unsigned)(st.st_mode & 07777), st.st_uid, st.st_gid,
        (long long)st.st_size, major(st.st_rdev), minor(st.st_rdev), major(st.st_dev),
        minor(st.st_dev), (unsigned long long)st.st_ino);
    return 0;
}

static int cmd_write_file(int argc, char **argv)
{
    if (argc != 3)
        return usage_error("needs PATH TEXT");
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail_errno(errno, "open", argv[1]);
    if (write_all(fd, argv[2], strlen(argv[2]), NULL) < 0) {
        int err = errno;
        close(fd);
        return fail_errno(err, "write", argv[1]);
    }
    if (close(fd) < 0)
        return fail_errno(errno, "close", argv[1]);
    printf("ok\n");
    return 0;
}

static int cmd_read_file(int argc, char **argv)
{
    if (argc != 2)
        return usage_error("needs PATH");
    return print_file(argv[1]);
}

/* ---- snoop: a hostile container with CAP_SYS_PTRACE (issue 13) --------------- */

#define SNOOP_MAX_PIDS 4096
#define SNOOP_MAX_FD 64

/* Try to take over one process: its root (and through it, write MARKER when it
 * is not ours) and every fd it has, with pidfd_getfd. */
static void snoop_one(int pid, const struct stat *own_root, const char *marker, long *taken)
{
    char path[64], comm[64] = "?";
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    int cfd = open(path, O_RDONLY | O_CLOEXEC);
    if (cfd >= 0) {
        ssize_t n = read(cfd, comm, sizeof(comm) - 1);
        comm[n > 0 ? n : 0] = '\0';
        comm[strcspn(comm, "\n")] = '\0';
        close(cfd);
    }
    snprintf(path, sizeof(path), "/proc/%d/root", pid);
    int root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    const char *verdict;
    if (root < 0)
        verdict = errno_name(errno);
    else if (fstat(root, &st) < 0)
        verdict = "?";
    else
        verdict = st.st_dev == own_root->st_dev && st.st_ino == own_root->st_ino ? "same" : "other";
    printf("pid=%d comm=%s root=%s\n", pid, comm, verdict);
    if (root >= 0 && strcmp(verdict, "other") == 0 && marker) {
        int w = openat(root, marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (w >= 0) {
            printf("wrote pid=%d %s\n", pid, marker);
            close(w);
        }
    }
    if (root >= 0)
        close(root);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return;
    for (int fd = 0; fd < SNOOP_MAX_FD; fd++) {
        int got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        if (got < 0)
            continue;
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", got);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        target[len > 0 ? len : 0] = '\0';
        /* A file of this container's own tree is nothing new; anything else is. */
        struct stat got_st, path_st;
        bool have_st = fstat(got, &got_st) == 0;
        bool own = target[0] == '/' && have_st && stat(target, &path_st) == 0 &&
                   got_st.st_dev == path_st.st_dev && got_st.st_ino == path_st.st_ino;
        /* Or the directory a mount of this container covers (its /proc, held open by
         * the set-up child to mount onto): a directory whose parent is this root. */
        if (!own && have_st && S_ISDIR(got_st.st_mode)) {
            int parent = openat(got, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
            struct stat parent_st;
            own = parent >= 0 && fstat(parent, &parent_st) == 0 &&
                  parent_st.st_dev == own_root->st_dev && parent_st.st_ino == own_root->st_ino;
            if (parent >= 0)
                close(parent);
        }
        printf("fd pid=%d comm=%s fd=%d own=%d target=%s\n", pid, comm, fd, own, target);
        (*taken)++;
        close(got);
    }
    close(pidfd);
}

static int cmd_snoop(int argc, char **argv)
{
    double secs;
    char *end;
    if (argc < 2 || argc > 3 || (secs = strtod(argv[1], &end), *end || secs < 0))
        return usage_error("needs SECONDS [MARKER]");
    const char *marker = argc == 3 ? argv[2] : NULL;
    struct stat own_root;
    if (stat("/", &own_root) < 0)
        return fail_errno(errno, "stat", "/");
    static int seen[SNOOP_MAX_PIDS];
    size_t n_seen = 0;
    long taken = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    /* What runs already is not news, except in a single pass (SECONDS 0). */
    bool first = secs > 0;
    for (;;) {
        DIR *d = opendir("/proc");
        if (!d)
            return fail_errno(errno, "opendir", "/proc");
        struct dirent *de;
        while ((de = readdir(d))) {
            long pid;
            if (!parse_long(de->d_name, 1, INT_MAX, &pid) || pid == getpid())
                continue;
            bool known = false;
            for (size_t i = 0; i < n_seen && !known; i++)
                known = seen[i] == (int)pid;
            if (known)
                continue;
            if (n_seen < SNOOP_MAX_PIDS)
                seen[n_seen++] = (int)pid;
            if (!first)
                snoop_one((int)pid, &own_root, marker, &taken);
        }
        closedir(d);
        first = false;
        fflush(stdout);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 >= secs)
            break;
    }
    printf("seen=%zu taken=%ld\n", n_seen, taken);
    return 0;
}

/* ---- vsock-probe: can a container reach a vsock listener in its own guest? ------ */

/* Connect to vsock CID:PORT (CID 1 is the guest itself, over vsock loopback), send
 * a ttrpc grpc.Health/Check request (to a debug console it is just input), and say
 * what came back within 5 s: answered=N (bytes), closed (EOF or reset: refused
 * after accept), silent, or connect=ERRNO. Exit 0 only for answered. */
static int cmd_vsock_probe(int argc, char **argv)
{
    long cid, port;
    if (argc != 3 || !parse_long(argv[1], 0, UINT32_MAX, &cid) ||
        !parse_long(argv[2], 0, UINT32_MAX, &port))
        return usage_error("vsock-probe CID PORT");
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail_errno(errno, "socket", "AF_VSOCK");
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
                             .svm_cid = (unsigned)cid,
                             .svm_port = (unsigned)port};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        printf("connect=%s\n", errno_name(errno));
        close(fd);
        return 1;
    }
    /* A ttrpc frame: length, stream 1, type 1 (request); then Request{service,
     * method} in protobuf. */
    static const char service[] = "grpc.Health", method[] = "Check";
    uint8_t req[64];
    size_t n = 0;
    req[n++] = 0x0a;
    req[n++] = (uint8_t)(sizeof(service) - 1);
    memcpy(req + n, service, sizeof(service) - 1);
    n += sizeof(service) - 1;
    req[n++] = 0x12;
    req[n++] = (uint8_t)(sizeof(method) - 1);
    memcpy(req + n, method, sizeof(method) - 1);
    n += sizeof(method) - 1;
    uint8_t frame[80] = {0, 0, 0, (uint8_t)n, 0, 0, 0, 1, 1, 0};
    memcpy(frame + 10, req, n);
    ssize_t w = send(fd, frame, 10 + n, MSG_NOSIGNAL);
    int rc = 1;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, 5000);
    if (pr == 0) {
        printf("silent\n");
    } else {
        uint8_t buf[256];
        ssize_t r = pr > 0 ? read(fd, buf, sizeof(buf)) : -1;
        if (r > 0) {
            printf("answered=%zd\n", r);
            rc = 0;
        } else {
            printf("closed%s%s\n", r < 0 ? " errno=" : "", r < 0 ? errno_name(errno) : "");
        }
    }
    if (w < 0)
        printf("send=%s\n", errno_name(errno));
    close(fd);
    return rc;
}

static int cmd_list(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"true", cmd_true, "", "exit 0"},
    {"false", cmd_false, "", "exit 1"},
    {"echo", cmd_echo, "[ARG...]", "args joined by spaces, newline; no options"},
    {"echo-stderr", cmd_echo_stderr, "[ARG...]", "the same on stderr"},
    {"cat", cmd_cat, "", "stdin to stdout until EOF"},
    {"sleep", cmd_sleep, "SECONDS", "fractional allowed"},
    {"exit", cmd_exit, "N", "exit status N & 255"},
    {"kill-self", cmd_kill_self, "SIGNAME|NUMBER",
     "die by that signal; prints survived=SIGX, exit 1 if not"},
    {"env", cmd_env, "", "environ, one NAME=value per line"},
    {"cwd", cmd_cwd, "", "getcwd()"},
    {"id", cmd_id, "", "uid= euid= suid= gid= egid= sgid= groups=a,b (lines)"},
    {"caps", cmd_caps, "",
     "CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs lines of /proc/self/status"},
    {"status-field", cmd_status_field, "NAME", "that /proc/self/status line; exit 1 if absent"},
    {"isatty", cmd_isatty, "[FD]", "tty (exit 0) or notty (exit 1); FD defaults to 0"},
    {"winsize", cmd_winsize, "[FD]", "rows=R cols=C (TIOCGWINSZ, FD defaults to 0)"},
    {"fds", cmd_fds, "", "open fds: 'N -> target' per line"},
    {"ns", cmd_ns, "[NAME...]", "/proc/self/ns/NAME targets (default pid ipc uts mnt net cgroup)"},
    {"rlimit", cmd_rlimit, "[NAME]",
     "'soft hard' (unlimited or a number); no NAME: 'NAME soft hard' for all"},
    {"hostname", cmd_hostname, "", "gethostname()"},
    {"sysv-shm", cmd_sysv_shm, "create|find KEY", "shmget KEY (IPC_CREAT with create): id=N"},
    {"write-bytes", cmd_write_bytes, "N [CHUNK]",
     "N pattern bytes to stdout in CHUNK (64K) writes; summary on stderr"},
    {"read-bytes", cmd_read_bytes, "[--verify]",
     "count stdin bytes; --verify: also pattern=ok|mismatch offset=K"},
    {"forkbomb", cmd_forkbomb, "[MAX] [--hold]",
     "fork until failure (MAX 4096): forks=N errno=E; --hold: until SIGTERM"},
    {"memhog", cmd_memhog, "MB [--hold]", "touch MB MiB: mb=1..MB then done; --hold: then pause"},
    {"pause", cmd_pause, "[--handle-term]",
     "print ready, wait for a signal; --handle-term: SIGTERM -> SIGTERM, exit 0"},
    {"pid", cmd_pid, "", "pid= ppid="},
    {"mounts", cmd_mounts, "", "/proc/self/mountinfo"},
    {"stat", cmd_stat, "[--no-follow] PATH", "type= mode= uid= gid= size= major= minor= dev= ino="},
    {"write-file", cmd_write_file, "PATH TEXT", "write TEXT (no newline added), print ok"},
    {"read-file", cmd_read_file, "PATH", "the file's bytes"},
    {"snoop", cmd_snoop, "SECONDS [MARKER]",
     "watch /proc for new pids (0: every pid, once) and try to take each over: pid=N comm=C "
     "root=same|other|ERRNO, fd pid=N comm=C fd=M own=0|1 target=T per fd got with pidfd_getfd "
     "(own: a file of this container's tree), "
     "wrote pid=N MARKER when MARKER could be created under a foreign root; then seen=N taken=M"},
    {"vsock-probe", cmd_vsock_probe, "CID PORT",
     "ttrpc Health to vsock CID:PORT: answered=N, closed, silent or connect=ERRNO"},
    {"list", cmd_list, "", "the command names, one per line"},
    {"help", cmd_help, "", "this text"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static int cmd_list(int argc, char **argv)
{
    (void)argc, (void)argv;
    for (size_t i = 0; i < N_COMMANDS; i++)
        printf("%s\n", commands[i].name);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ka-payload COMMAND [ARG...], or COMMAND [ARG...] via a symlink named COMMAND\n"
            "Failures print the errno name on stdout and exit 1; usage errors exit 2.\n"
            "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %-19s %s\n", commands[i].name, commands[i].args, commands[i].desc);
}

static int cmd_help(int argc, char **argv)
{
    (void)argc, (void)argv;
    usage(stdout);
    return 0;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
    base = base ? base + 1 : (argc > 0 ? argv[0] : "");

    current = find_command(base);
    if (!current) {
        if (argc < 2 || !(current = find_command(argv[1]))) {
            if (argc >= 2)
                fprintf(stderr, "ka-payload: unknown command '%s'\n", argv[1]);
            usage(stderr);
            return 2;
        }
        argc--;
        argv++;
    }

    /* Line-buffered even on pipes, so output keeps its order with stderr and
     * survives a kill between lines. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = current->run(argc, argv);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: writing stdout: %s\n", prog, strerror(errno));
        if (rc == 0)
            rc = 1;
    }
    return rc;
}
