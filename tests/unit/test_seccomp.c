/* seccomp filters from OCI specs: names, what is refused, and filters loaded for
 * real in forked children (errnoRet, argument conditions ANDed and ORed, kill
 * actions, no_new_privs left to the spec). Root is needed for loading without
 * no_new_privs; those cases are skipped otherwise. Also the proto conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container/seccomp.h"
#include "core/log.h"
#include "rpc/oci_convert.h"

#define NAMES(...) ((char *[]){__VA_ARGS__})
#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct ka_seccomp_syscall rule(char **names, size_t n, enum ka_seccomp_action a,
                                      int errno_ret)
{
    struct ka_seccomp_syscall r = {.names = names, .n_names = n, .action = a};
    if (errno_ret >= 0) {
        r.has_errno_ret = true;
        r.errno_ret = (uint32_t)errno_ret;
    }
    return r;
}

static void test_names(void **state)
{
    (void)state;
    enum ka_seccomp_action a;
    assert_true(ka_seccomp_action_parse("SCMP_ACT_ERRNO", &a));
    assert_int_equal(a, KA_SCMP_ACT_ERRNO);
    assert_true(ka_seccomp_action_parse("SCMP_ACT_KILL_PROCESS", &a));
    assert_int_equal(a, KA_SCMP_ACT_KILL_PROCESS);
    assert_true(ka_seccomp_action_parse("SCMP_ACT_NOTIFY", &a));
    assert_false(ka_seccomp_action_parse("scmp_act_errno", &a));
    assert_false(ka_seccomp_action_parse("", &a));
    enum ka_seccomp_op op;
    assert_true(ka_seccomp_op_parse("SCMP_CMP_MASKED_EQ", &op));
    assert_int_equal(op, KA_SCMP_CMP_MASKED_EQ);
    assert_false(ka_seccomp_op_parse("SCMP_CMP_XX", &op));
    unsigned flag;
    assert_true(ka_seccomp_flag_parse("SECCOMP_FILTER_FLAG_LOG", &flag));
    assert_int_equal(flag, KA_SECCOMP_FLAG_LOG);
    assert_false(ka_seccomp_flag_parse("SECCOMP_FILTER_FLAG_NOPE", &flag));
}

static void test_refused(void **state)
{
    (void)state;
    struct ka_seccomp_filter *f;
    struct ka_error err;
    struct ka_seccomp_syscall r = rule(NAMES("mkdir"), 1, KA_SCMP_ACT_NOTIFY, -1);
    struct ka_seccomp sc = {.default_action = KA_SCMP_ACT_ALLOW, .syscalls = &r, .n_syscalls = 1};
    assert_true(ka_seccomp_build(&sc, &f, &err) < 0);
    assert_null(f);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "SCMP_ACT_NOTIFY"));
    sc.default_action = KA_SCMP_ACT_NOTIFY;
    sc.n_syscalls = 0;
    assert_true(ka_seccomp_build(&sc, &f, &err) < 0);
    r = rule(NAMES("mkdir"), 1, KA_SCMP_ACT_ERRNO, 70000);
    sc = (struct ka_seccomp){.default_action = KA_SCMP_ACT_ALLOW, .syscalls = &r, .n_syscalls = 1};
    assert_true(ka_seccomp_build(&sc, &f, &err) < 0);
    assert_non_null(strstr(err.msg, "70000"));
}

static void test_lenient(void **state)
{
    (void)state;
    /* Syscalls and architectures libseccomp does not know are skipped; a rule
     * with the default action is dropped. */
    struct ka_seccomp_syscall r[] = {
        rule(NAMES("no_such_syscall_ever", "mkdir"), 2, KA_SCMP_ACT_ERRNO, 1),
        rule(NAMES("getpid"), 1, KA_SCMP_ACT_ALLOW, -1),
    };
    char *arches[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64", "SCMP_ARCH_RISCV64",
                      "SCMP_ARCH_NOPE"};
    struct ka_seccomp sc = {.default_action = KA_SCMP_ACT_ALLOW,
                            .arches = arches,
                            .n_arches = N(arches),
                            .flags = KA_SECCOMP_FLAG_LOG,
                            .syscalls = r,
                            .n_syscalls = N(r)};
    struct ka_seccomp_filter *f;
    struct ka_error err;
    if (ka_seccomp_build(&sc, &f, &err) < 0)
        fail_msg("%s", err.msg);
    int fd = memfd_create("bpf", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ka_seccomp_export_bpf(f, fd, &err), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(st.st_size >= 8 * 8); /* some instructions of 8 bytes */
    close(fd);
    ka_seccomp_filter_free(f);
}

/* Load f in a child, run fn there; the child's exit status comes back. */
static int in_child(struct ka_seccomp_filter *f, bool nnp, int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ka_error err;
        if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            _exit(90);
        if (ka_seccomp_load(f, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            _exit(91);
        }
        _exit(fn());
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static char tmpdir[64];

static int try_mkdir(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/d", tmpdir);
    if (mkdir(path, 0755) == 0)
        return 1;
    if (errno != EPERM)
        return 2;
    /* no_new_privs was not set by the load */
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    int nnp = -1;
    while (f && fgets(line, sizeof(line), f))
        sscanf(line, "NoNewPrivs: %d", &nnp);
    if (f)
        fclose(f);
    return nnp == 0 ? 0 : 10 + nnp;
}

static int try_mkdir_nnp(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/d", tmpdir);
    return mkdir(path, 0755) < 0 && errno == EPERM ? 0 : 1;
}

static int try_open_flags(void)
{
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1; /* reading is allowed */
    close(fd);
    char path[128];
    snprintf(path, sizeof(path), "%s/f", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 && errno == EACCES ? 0 : 2;
}

static int try_conditions(void)
{
    /* getpgid(1) and getpgid(2) are denied (two conditions on one argument: OR),
     * getpgid(0) is not. getpriority(PRIO_PROCESS, 424242) is denied (two
     * arguments: AND); the same who with PRIO_PGRP gets the kernel's answer. */
    errno = 0;
    if (getpgid(1) != -1 || errno != ENOMSG)
        return 1;
    errno = 0;
    if (getpgid(2) != -1 || errno != ENOMSG)
        return 2;
    if (getpgid(0) < 0)
        return 3;
    errno = 0;
    if (getpriority(PRIO_PROCESS, 424242) != -1 || errno != ENOMSG)
        return 4;
    errno = 0;
    getpriority(PRIO_PGRP, 424242);
    if (errno == ENOMSG)
        return 5;
    errno = 0;
    getpriority(PRIO_PROCESS, 0);
    return errno == ENOMSG ? 6 : 0;
}

static int call_getppid(void)
{
    getppid();
    return 0;
}

static void test_loaded(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ka-scmp-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    struct ka_error err;
    struct ka_seccomp_filter *f;

    /* errnoRet, without no_new_privs (root only: needs CAP_SYS_ADMIN). */
    struct ka_seccomp_syscall deny_mkdir =
        rule(NAMES("mkdir", "mkdirat"), 2, KA_SCMP_ACT_ERRNO, EPERM);
    struct ka_seccomp sc = {.default_action = KA_SCMP_ACT_ALLOW,
                            .syscalls = &deny_mkdir,
                            .n_syscalls = 1};
    assert_int_equal(ka_seccomp_build(&sc, &f, &err), 0);
    if (geteuid() == 0) {
        int st = in_child(f, false, try_mkdir);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    int st = in_child(f, true, try_mkdir_nnp);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    ka_seccomp_filter_free(f);

    /* ERRNO without errnoRet: EPERM. As the default action, with an allow list. */
    struct ka_seccomp_syscall allow = rule(NAMES("mkdir"), 1, KA_SCMP_ACT_ERRNO, -1);
    sc = (struct ka_seccomp){.default_action = KA_SCMP_ACT_ALLOW,
                             .syscalls = &allow,
                             .n_syscalls = 1};
    assert_int_equal(ka_seccomp_build(&sc, &f, &err), 0);
    st = in_child(f, true, try_mkdir_nnp);
    assert_int_equal(WEXITSTATUS(st), 0);
    ka_seccomp_filter_free(f);

    /* Masked argument: O_CREAT opens refused. */
    struct ka_seccomp_arg creat_open = {.index = 1,
                                        .value = O_CREAT,
                                        .value_two = O_CREAT,
                                        .op = KA_SCMP_CMP_MASKED_EQ};
    struct ka_seccomp_arg creat_openat = {.index = 2,
                                          .value = O_CREAT,
                                          .value_two = O_CREAT,
                                          .op = KA_SCMP_CMP_MASKED_EQ};
    struct ka_seccomp_syscall opens[] = {rule(NAMES("open"), 1, KA_SCMP_ACT_ERRNO, EACCES),
                                         rule(NAMES("openat"), 1, KA_SCMP_ACT_ERRNO, EACCES)};
    opens[0].args = &creat_open;
    opens[0].n_args = 1;
    opens[1].args = &creat_openat;
    opens[1].n_args = 1;
    sc = (struct ka_seccomp){.default_action = KA_SCMP_ACT_ALLOW,
                             .syscalls = opens,
                             .n_syscalls = 2};
    assert_int_equal(ka_seccomp_build(&sc, &f, &err), 0);
    st = in_child(f, true, try_open_flags);
    assert_int_equal(WEXITSTATUS(st), 0);
    ka_seccomp_filter_free(f);

    /* Same argument twice: OR; different arguments: AND. */
    struct ka_seccomp_arg pgid[] = {{.index = 0, .value = 1, .op = KA_SCMP_CMP_EQ},
                                    {.index = 0, .value = 2, .op = KA_SCMP_CMP_EQ}};
    struct ka_seccomp_arg prio[] = {{.index = 0, .value = PRIO_PROCESS, .op = KA_SCMP_CMP_EQ},
                                    {.index = 1, .value = 424242, .op = KA_SCMP_CMP_EQ}};
    struct ka_seccomp_syscall conds[] = {rule(NAMES("getpgid"), 1, KA_SCMP_ACT_ERRNO, ENOMSG),
                                         rule(NAMES("getpriority"), 1, KA_SCMP_ACT_ERRNO, ENOMSG)};
    conds[0].args = pgid;
    conds[0].n_args = 2;
    conds[1].args = prio;
    conds[1].n_args = 2;
    sc = (struct ka_seccomp){.default_action = KA_SCMP_ACT_ALLOW,
                             .syscalls = conds,
                             .n_syscalls = 2};
    assert_int_equal(ka_seccomp_build(&sc, &f, &err), 0);
    st = in_child(f, true, try_conditions);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("conditions: status 0x%x", st);
    ka_seccomp_filter_free(f);

    /* Kill actions: SIGSYS. */
    struct ka_seccomp_syscall kill_ppid = rule(NAMES("getppid"), 1, KA_SCMP_ACT_KILL_PROCESS, -1);
    sc = (struct ka_seccomp){.default_action = KA_SCMP_ACT_ALLOW,
                             .syscalls = &kill_ppid,
                             .n_syscalls = 1};
    assert_int_equal(ka_seccomp_build(&sc, &f, &err), 0);
    st = in_child(f, true, call_getppid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
    ka_seccomp_filter_free(f);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
}

/* Linux.Seccomp from protobuf, as the runtime sends it. */
static void test_from_proto(void **state)
{
    (void)state;
    Grpc__Spec spec = GRPC__SPEC__INIT;
    Grpc__Process proc = GRPC__PROCESS__INIT;
    Grpc__Root root = GRPC__ROOT__INIT;
    Grpc__Linux lx = GRPC__LINUX__INIT;
    Grpc__LinuxSeccomp sc = GRPC__LINUX_SECCOMP__INIT;
    Grpc__LinuxSyscall s1 = GRPC__LINUX_SYSCALL__INIT, s2 = GRPC__LINUX_SYSCALL__INIT;
    Grpc__LinuxSeccompArg a1 = GRPC__LINUX_SECCOMP_ARG__INIT;
    char *args[] = {"true"};
    proc.args = args;
    proc.n_args = 1;
    proc.cwd = "/";
    root.path = "/rootfs";
    spec.process = &proc;
    spec.root = &root;
    spec.linux = &lx;
    lx.seccomp = &sc;
    sc.defaultaction = "SCMP_ACT_ERRNO";
    char *arches[] = {"SCMP_ARCH_X86_64"};
    sc.architectures = arches;
    sc.n_architectures = 1;
    char *flags[] = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
    sc.flags = flags;
    sc.n_flags = 2;
    char *n1[] = {"read", "write"};
    s1.names = n1;
    s1.n_names = 2;
    s1.action = "SCMP_ACT_ALLOW";
    char *n2[] = {"mkdir"};
    s2.names = n2;
    s2.n_names = 1;
    s2.action = "SCMP_ACT_ERRNO";
    s2.errno_ret_case = GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET;
    s2.errnoret = 0; /* explicitly 0, told apart from absent */
    a1.index = 1;
    a1.value = 0700;
    a1.op = "SCMP_CMP_GT";
    Grpc__LinuxSeccompArg *as[] = {&a1};
    s2.args = as;
    s2.n_args = 1;
    Grpc__LinuxSyscall *rules[] = {&s1, &s2};
    sc.syscalls = rules;
    sc.n_syscalls = 2;

    struct ka_spec *out;
    struct ka_error err;
    if (ka_spec_from_proto(&spec, &out, &err) < 0)
        fail_msg("%s", err.msg);
    assert_non_null(out->seccomp);
    assert_int_equal(out->seccomp->default_action, KA_SCMP_ACT_ERRNO);
    assert_int_equal(out->seccomp->flags, KA_SECCOMP_FLAG_LOG | KA_SECCOMP_FLAG_SPEC_ALLOW);
    assert_int_equal(out->seccomp->n_syscalls, 2);
    assert_false(out->seccomp->syscalls[0].has_errno_ret);
    assert_true(out->seccomp->syscalls[1].has_errno_ret);
    assert_int_equal(out->seccomp->syscalls[1].errno_ret, 0);
    assert_int_equal(out->seccomp->syscalls[1].args[0].op, KA_SCMP_CMP_GT);
    assert_int_equal(out->seccomp->syscalls[1].args[0].value, 0700);
    struct ka_seccomp_filter *f;
    assert_int_equal(ka_seccomp_build(out->seccomp, &f, &err), 0);
    ka_seccomp_filter_free(f);
    ka_spec_free(out);

    /* Unknown names are INVALID_ARGUMENT and say which. */
    s2.action = "SCMP_ACT_WHATEVER";
    assert_true(ka_spec_from_proto(&spec, &out, &err) < 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "SCMP_ACT_WHATEVER"));
    s2.action = "SCMP_ACT_ERRNO";
    a1.op = "SCMP_CMP_ABOUT";
    assert_true(ka_spec_from_proto(&spec, &out, &err) < 0);
    a1.op = "SCMP_CMP_GT";
    a1.index = 6;
    assert_true(ka_spec_from_proto(&spec, &out, &err) < 0);
    a1.index = 1;
    flags[1] = "SECCOMP_FILTER_FLAG_X";
    assert_true(ka_spec_from_proto(&spec, &out, &err) < 0);
    flags[1] = "SECCOMP_FILTER_FLAG_TSYNC";
    s1.n_names = 0;
    assert_true(ka_spec_from_proto(&spec, &out, &err) < 0);
    s1.n_names = 2;
    assert_int_equal(ka_spec_from_proto(&spec, &out, &err), 0);
    ka_spec_free(out);
}

int main(void)
{
    ka_log_set_level(KA_LOG_CRITICAL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),      cmocka_unit_test(test_refused),
        cmocka_unit_test(test_lenient),    cmocka_unit_test(test_loaded),
        cmocka_unit_test(test_from_proto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
