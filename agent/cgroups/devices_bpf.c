/* cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program generated from
 * the rules, the way runc's devicefilter and crun's ebpf.c do it.
 *
 * The program gets struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 |
 * type); u32 major; u32 minor; } in R1 and returns 1 to allow, 0 to deny. After a
 * prologue that unpacks the context into R2 (type), R3 (access), R4 (major) and
 * R5 (minor), each rule is a block that jumps to the next block as soon as one of
 * its conditions fails and otherwise returns the rule's verdict. Blocks run from
 * the last rule to the first, so the last matching rule wins, as in the v1 list;
 * with nothing matching the program denies. A rule matches when the type is the
 * same (or the rule's is 'a'), every access bit asked for is in the rule, and
 * major and minor are equal or wildcards. */
#include "cgroups/resources.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define INSN(c, d, s, o, i) \
    ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define AND32_IMM(dst, imm) INSN(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)
#define RSH32_IMM(dst, imm) INSN(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src) INSN(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV64_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define JNE_REG(dst, src, off) INSN(BPF_JMP | BPF_JNE | BPF_X, dst, src, off, 0)
#define EXIT_INSN() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

enum { R0, R1, R2, R3, R4, R5 };

static int access_bits(const char *access)
{
    int bits = 0;
    if (strchr(access, 'm'))
        bits |= BPF_DEVCG_ACC_MKNOD;
    if (strchr(access, 'r'))
        bits |= BPF_DEVCG_ACC_READ;
    if (strchr(access, 'w'))
        bits |= BPF_DEVCG_ACC_WRITE;
    return bits;
}

/* One rule's block into out (at most 10 instructions); returns its length. */
static size_t rule_block(const struct ka_device_rule *r, struct bpf_insn *out)
{
    struct bpf_insn b[10];
    size_t n = 0;
    /* Jumps are patched below once the block length is known: off = -1 marks them. */
    if (r->type == 'c' || r->type == 'b')
        b[n++] = JNE_IMM(R2, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, -1);
    int bits = access_bits(r->access);
    if (bits != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
        /* (access & bits) != access: something asked for is not in the rule. */
        b[n++] = MOV32_REG(R1, R3);
        b[n++] = AND32_IMM(R1, bits);
        b[n++] = JNE_REG(R1, R3, -1);
    }
    if (r->major >= 0)
        b[n++] = JNE_IMM(R4, (int32_t)r->major, -1);
    if (r->minor >= 0)
        b[n++] = JNE_IMM(R5, (int32_t)r->minor, -1);
    b[n++] = MOV64_IMM(R0, r->allow ? 1 : 0);
    b[n++] = EXIT_INSN();
    for (size_t i = 0; i < n; i++)
        if (b[i].off == -1)
            b[i].off = (int16_t)(n - i - 1); /* to the first instruction after the block */
    memcpy(out, b, n * sizeof(*b));
    return n;
}

size_t ka_devices_bpf_build(bool allow_all, const struct ka_device_rule *rules, size_t n,
                            void *insns, size_t max)
{
    struct bpf_insn *out = insns;
    static const struct ka_device_rule all = {true, 'a', -1, -1, "rwm"};
    size_t len = 0;
    if (max < 8)
        return 0;
    out[len++] = LDX_W(R2, R1, 0);
    out[len++] = AND32_IMM(R2, 0xffff);
    out[len++] = LDX_W(R3, R1, 0);
    out[len++] = RSH32_IMM(R3, 16);
    out[len++] = LDX_W(R4, R1, 4);
    out[len++] = LDX_W(R5, R1, 8);
    /* The list is base then rules; emit from its end. */
    size_t n_base = allow_all ? 1 : ka_n_default_device_rules;
    for (size_t k = n + n_base; k-- > 0;) {
        const struct ka_device_rule *r;
        if (k >= n_base) {
            r = &rules[k - n_base];
            if (ka_device_rule_is_all(r))
                continue; /* stands for the base, as on v1 */
        } else {
            r = allow_all ? &all : &ka_default_device_rules[k];
        }
        if (len + 10 + 2 > max)
            return 0;
        size_t block = rule_block(r, out + len);
        len += block;
        /* A block without conditions (the allow-all base) always returns: the
         * verifier refuses the unreachable code that would follow it. */
        if (block == 2)
            return len;
    }
    out[len++] = MOV64_IMM(R0, 0);
    out[len++] = EXIT_INSN();
    return len;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
    return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int ka_devices_bpf_attach(const char *cgroup_dir, const void *insns, size_t n_insns,
                          int old_prog_fd, struct ka_error *err)
{
    char log[4096] = "";
    union bpf_attr load;
    memset(&load, 0, sizeof(load));
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (uintptr_t)insns;
    load.insn_cnt = (uint32_t)n_insns;
    load.license = (uintptr_t) "GPL";
    /* Without the verifier's log first: at log level 1 the verifier formats a line
     * per instruction it walks (50 ms per container in a TCG guest without a BPF
     * JIT, and twice when the log overflowed). The log is asked for only to explain
     * a refusal. */
    int prog = (int)sys_bpf(BPF_PROG_LOAD, &load);
    if (prog < 0 && errno != ENOMEM && errno != EPERM) {
        int e = errno;
        load.log_buf = (uintptr_t)log;
        load.log_size = sizeof(log);
        load.log_level = 1;
        int again = (int)sys_bpf(BPF_PROG_LOAD, &load);
        if (again >= 0) /* the verifier is deterministic; should it not be */
            close(again);
        log[sizeof(log) - 1] = '\0'; /* a log that overflowed (ENOSPC) is cut */
        errno = e;
    }
    if (prog < 0)
        return ka_error_set(err, errno, "load the device eBPF program%s%.200s", log[0] ? ": " : "",
                            log);
    fcntl(prog, F_SETFD, FD_CLOEXEC);
    cleanup_close int dir = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        int e = errno;
        close(prog);
        return ka_error_set(err, e, "open %s", cgroup_dir);
    }
    union bpf_attr at;
    memset(&at, 0, sizeof(at));
    at.target_fd = (uint32_t)dir;
    at.attach_bpf_fd = (uint32_t)prog;
    at.attach_type = BPF_CGROUP_DEVICE;
    at.attach_flags = BPF_F_ALLOW_MULTI;
    if (sys_bpf(BPF_PROG_ATTACH, &at) < 0) {
        int e = errno;
        close(prog);
        return ka_error_set(err, e, "attach the device eBPF program to %s", cgroup_dir);
    }
    /* The new one is in place before the old one goes: never a moment without. */
    if (old_prog_fd >= 0) {
        memset(&at, 0, sizeof(at));
        at.target_fd = (uint32_t)dir;
        at.attach_bpf_fd = (uint32_t)old_prog_fd;
        at.attach_type = BPF_CGROUP_DEVICE;
        if (sys_bpf(BPF_PROG_DETACH, &at) < 0 && errno != ENOENT) {
            int e = errno;
            /* Leave the old program alone in place, as before the call. */
            at.attach_bpf_fd = (uint32_t)prog;
            sys_bpf(BPF_PROG_DETACH, &at);
            close(prog);
            return ka_error_set(err, e, "detach the previous device eBPF program from %s",
                                cgroup_dir);
        }
    }
    return prog;
}
