#include "core/child.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

struct child_entry {
    pid_t pid;
    ka_child_exit_fn fn;
    void *data;
};

/* A small open array: the agent has at most a few thousand live children. */
static struct child_entry *entries;
static size_t n_entries, cap_entries;
static int sigchld_fd = -1;
static struct ka_watch sigchld_watch;
static ka_child_unknown_fn unknown_hook;
static void *unknown_hook_data;

static void sigchld_event(struct ka_watch *w, uint32_t events)
{
    (void)w, (void)events;
    struct signalfd_siginfo si;
    while (read(sigchld_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ; /* signals coalesce: the info is useless, waitpid tells all */
    ka_children_reap();
}

int ka_children_init(struct ka_reactor *r, struct ka_error *err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return ka_error_set(err, errno, "block SIGCHLD");
    sigchld_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigchld_fd < 0)
        return ka_error_set(err, errno, "signalfd(SIGCHLD)");
    /* Orphans of containers come to us (PID 1 gets them anyway). */
    if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        ka_log(KA_LOG_WARN, "signals", "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    return ka_reactor_add(r, &sigchld_watch, sigchld_fd, EPOLLIN, sigchld_event, NULL, err);
}

void ka_children_fini(void)
{
    if (sigchld_fd >= 0) {
        ka_reactor_del(&sigchld_watch);
        close(sigchld_fd);
        sigchld_fd = -1;
    }
    free(entries);
    entries = NULL;
    n_entries = cap_entries = 0;
}

void ka_child_watch(pid_t pid, ka_child_exit_fn fn, void *data)
{
    if (n_entries == cap_entries) {
        cap_entries = cap_entries ? cap_entries * 2 : 64;
        entries = ka_xrealloc(entries, cap_entries * sizeof(*entries));
    }
    entries[n_entries++] = (struct child_entry){.pid = pid, .fn = fn, .data = data};
}

void ka_child_unwatch(pid_t pid)
{
    for (size_t i = 0; i < n_entries; i++) {
        if (entries[i].pid == pid) {
            entries[i] = entries[--n_entries];
            return;
        }
    }
}

void ka_child_set_unknown_hook(ka_child_unknown_fn fn, void *data)
{
    unknown_hook = fn;
    unknown_hook_data = data;
}

/* The registration of pid, removed from the table, or false. */
static bool take_entry(pid_t pid, struct child_entry *out)
{
    for (size_t i = 0; i < n_entries; i++) {
        if (entries[i].pid == pid) {
            *out = entries[i];
            entries[i] = entries[--n_entries];
            return true;
        }
    }
    return false;
}

void ka_children_reap(void)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        struct child_entry e;
        bool known = take_entry(pid, &e);
        if (!known && unknown_hook) {
            unknown_hook(unknown_hook_data);
            known = take_entry(pid, &e);
        }
        if (known)
            e.fn(e.data, pid, status);
        else
            ka_log(KA_LOG_DEBUG, "signals", "reaped unknown child %d", (int)pid);
    }
}

void ka_close_fds_from(int first)
{
    if (close_range((unsigned)first, ~0U, 0) == 0 || errno != ENOSYS)
        return;
    /* Before Linux 5.9: every number up to the limit (/proc may not be there). */
    struct rlimit rl;
    rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_max : 65536;
    if (max == RLIM_INFINITY || max > (1u << 20))
        max = 1u << 20;
    for (rlim_t fd = (rlim_t)first; fd < max; fd++)
        close((int)fd);
}

int ka_exit_code(int wait_status)
{
    if (WIFEXITED(wait_status))
        return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status))
        return 128 + WTERMSIG(wait_status);
    return 255;
}

int ka_child_run_sync(char *const argv[], int *wait_status, struct ka_error *err)
{
    pid_t pid = fork();
    if (pid < 0)
        return ka_error_set(err, errno, "fork %s", argv[0]);
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, STDIN_FILENO);
        execvp(argv[0], argv);
        _exit(127);
    }
    for (;;) {
        if (waitpid(pid, wait_status, __WALL) == pid)
            return 0;
        if (errno != EINTR)
            return ka_error_set(err, errno, "wait for %s", argv[0]);
    }
}
