/* Integration harness: runs the real kata-agent binary on a unix socket (or any
 * address) in a scratch directory, drives it with agent-ctl or raw ttrpc frames,
 * and reads its fd count from /proc. The binaries come from the environment
 * (KA_AGENT_BIN, KA_AGENT_CTL_BIN, optional KA_AGENT_EMULATOR) so the same tests
 * run against the native, sanitizer or riscv64 (under qemu-user) builds. */
#ifndef KA_TEST_HARNESS_H
#define KA_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct agent_proc {
    pid_t pid;
    char dir[64];
    char sock[128];
    char addr[160];
    char log[128];
};

/* Start the agent serving addr (NULL = unix socket in the scratch dir) with the
 * given kernel command line text (NULL = empty) and extra environment
 * ("NAME=value" strings, NULL-terminated list or NULL). Waits until it answers
 * connections when it serves a unix socket. */
void agent_start_full(struct agent_proc *p, const char *addr, const char *cmdline,
                      char *const *extra_env);
/* addr for agent_start_full: pass no --server-addr and do not wait for a socket, so
 * the agent serves its built-in default (vsock://-1:1024). */
#define AGENT_ADDR_BUILTIN "builtin"
/* Start it this way when addr is "": "@SOCK@" in cmdline/env is the scratch socket. */
void agent_start(struct agent_proc *p);
/* Like agent_start, but the agent runs in its own mount namespace with a fresh
 * tmpfs on /run, so containers, /run/kata-containers and the resolv.conf bind of
 * CreateSandbox stay out of the host. Needs root. */
void agent_start_isolated(struct agent_proc *p, const char *cmdline);
/* agent_start_isolated, and also in a new network namespace (only lo, down), so
 * network RPCs change nothing on the host. The namespace is /proc/<pid>/ns/net. */
void agent_start_isolated_netns(struct agent_proc *p, const char *cmdline);
/* The next agent_start* leaves fds open in the agent at these numbers (at most 4),
 * without CLOEXEC, as a careless launcher would: each is the agent's scratch
 * directory (p->dir), opened O_RDONLY. */
void agent_inherit_fds_next(const int *numbers, size_t n);
/* SIGTERM and wait: asserts a clean exit (status 0, which the sanitizers would spoil). */
void agent_stop(struct agent_proc *p);
bool agent_alive(const struct agent_proc *p);
/* SIGKILL and reap, with no verdict on how it ended: for the teardown after a test
 * that may have failed half-way. */
void agent_kill(struct agent_proc *p);
int agent_fd_count(const struct agent_proc *p);
/* Wait (up to ms) for the fd count to come back to want; returns the last count. */
int agent_wait_fd_count(const struct agent_proc *p, int want, int ms);

/* Run agent-ctl against the agent with args (NULL-terminated); stdout and stderr
 * are captured (each up to size-1 bytes). Returns its exit status. */
int run_ctl(const struct agent_proc *p, char *out, size_t out_size, char *err, size_t err_size,
            const char *const *args);

/* Raw ttrpc over a fresh connection. */
int raw_connect(const struct agent_proc *p);
void raw_send(int fd, const void *buf, size_t len);
void raw_send_frame(int fd, uint32_t stream_id, uint8_t type, uint8_t flags, const void *data,
                    uint32_t len);
/* A Request envelope for service/method carrying payload. */
void raw_send_request(int fd, uint32_t stream_id, const char *service, const char *method,
                      const void *payload, size_t len);
/* Read one Response frame (5 s limit). Returns 0 and fills the fields, or -1 on
 * EOF/timeout. message may be NULL. */
int raw_recv_response(int fd, uint32_t *stream_id, int *code, char *message, size_t msg_size);
/* True when the peer has closed the connection within ms. */
bool raw_wait_closed(int fd, int ms);

/* Run a shell command (printf-style); returns system()'s status. */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* mkfs.ext4 and losetup on PATH (the loop-device suites need both); says so when not. */
bool have_loop_tools(void);
/* Seconds on the monotonic clock. */
double now_s(void);
/* The text of a file, NUL-terminated (at most size-1 bytes); false when it cannot be read. */
bool read_text(const char *path, char *buf, size_t size);
/* A kB field of the agent's /proc/<pid>/status ("VmRSS", "VmHWM"), or -1. */
long agent_status_kb(const struct agent_proc *p, const char *field);
/* How many times the agent's mount table has mount_point (of type, when given). */
int agent_mount_count(const struct agent_proc *p, const char *mount_point, const char *type);

#endif
