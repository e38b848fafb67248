/* seccomp filters from the OCI spec (see seccomp.h for the rules followed). */
#include "container/seccomp.h"
#include "core/log.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>

struct ka_seccomp_filter {
    scmp_filter_ctx ctx;
};

/* ---- OCI names ------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum ka_seccomp_action action;
} action_names[] = {
    {"SCMP_ACT_KILL", KA_SCMP_ACT_KILL},
    {"SCMP_ACT_KILL_PROCESS", KA_SCMP_ACT_KILL_PROCESS},
    {"SCMP_ACT_KILL_THREAD", KA_SCMP_ACT_KILL_THREAD},
    {"SCMP_ACT_TRAP", KA_SCMP_ACT_TRAP},
    {"SCMP_ACT_ERRNO", KA_SCMP_ACT_ERRNO},
    {"SCMP_ACT_TRACE", KA_SCMP_ACT_TRACE},
    {"SCMP_ACT_ALLOW", KA_SCMP_ACT_ALLOW},
    {"SCMP_ACT_LOG", KA_SCMP_ACT_LOG},
    {"SCMP_ACT_NOTIFY", KA_SCMP_ACT_NOTIFY},
};

static const struct {
    const char *name;
    enum ka_seccomp_op op;
    enum scmp_compare scmp;
} op_names[] = {
    {"SCMP_CMP_NE", KA_SCMP_CMP_NE, SCMP_CMP_NE},
    {"SCMP_CMP_LT", KA_SCMP_CMP_LT, SCMP_CMP_LT},
    {"SCMP_CMP_LE", KA_SCMP_CMP_LE, SCMP_CMP_LE},
    {"SCMP_CMP_EQ", KA_SCMP_CMP_EQ, SCMP_CMP_EQ},
    {"SCMP_CMP_GE", KA_SCMP_CMP_GE, SCMP_CMP_GE},
    {"SCMP_CMP_GT", KA_SCMP_CMP_GT, SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", KA_SCMP_CMP_MASKED_EQ, SCMP_CMP_MASKED_EQ},
};

static const struct {
    const char *name;
    unsigned flag;
} flag_names[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", KA_SECCOMP_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", KA_SECCOMP_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", KA_SECCOMP_FLAG_SPEC_ALLOW},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", KA_SECCOMP_FLAG_WAIT_KILLABLE_RECV},
};

bool ka_seccomp_action_parse(const char *name, enum ka_seccomp_action *out)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(action_names); i++)
        if (strcmp(name, action_names[i].name) == 0) {
            *out = action_names[i].action;
            return true;
        }
    return false;
}

bool ka_seccomp_op_parse(const char *name, enum ka_seccomp_op *out)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(op_names); i++)
        if (strcmp(name, op_names[i].name) == 0) {
            *out = op_names[i].op;
            return true;
        }
    return false;
}

bool ka_seccomp_flag_parse(const char *name, unsigned *flag)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(flag_names); i++)
        if (strcmp(name, flag_names[i].name) == 0) {
            *flag = flag_names[i].flag;
            return true;
        }
    return false;
}

/* ---- building ---------------------------------------------------------------------- */

static int scmp_action(enum ka_seccomp_action a, bool has_errno, uint32_t errno_ret, uint32_t *out,
                       struct ka_error *err)
{
    /* The kernel returns the low 16 bits of SECCOMP_RET_DATA; more would wrap. */
    if (has_errno && errno_ret > 0xffff)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "errnoRet %u does not fit seccomp's 16 bits", errno_ret);
    uint32_t e = has_errno ? errno_ret : EPERM;
    switch (a) {
    case KA_SCMP_ACT_KILL:
        *out = SCMP_ACT_KILL;
        return 0;
    case KA_SCMP_ACT_KILL_PROCESS:
        *out = SCMP_ACT_KILL_PROCESS;
        return 0;
    case KA_SCMP_ACT_KILL_THREAD:
        *out = SCMP_ACT_KILL_THREAD;
        return 0;
    case KA_SCMP_ACT_TRAP:
        *out = SCMP_ACT_TRAP;
        return 0;
    case KA_SCMP_ACT_ERRNO:
        *out = SCMP_ACT_ERRNO(e);
        return 0;
    case KA_SCMP_ACT_TRACE:
        *out = SCMP_ACT_TRACE(e);
        return 0;
    case KA_SCMP_ACT_ALLOW:
        *out = SCMP_ACT_ALLOW;
        return 0;
    case KA_SCMP_ACT_LOG:
        *out = SCMP_ACT_LOG;
        return 0;
    case KA_SCMP_ACT_NOTIFY:
        break;
    }
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                               "SCMP_ACT_NOTIFY needs a seccomp listener (listenerPath), which "
                               "this agent does not support");
}

/* "SCMP_ARCH_X86_64" -> libseccomp's "x86_64"; 0 when it does not know it. */
static uint32_t resolve_arch(const char *oci)
{
    const char *p = strncmp(oci, "SCMP_ARCH_", 10) == 0 ? oci + 10 : oci;
    char name[32];
    size_t n = strlen(p);
    if (n == 0 || n >= sizeof(name))
        return 0;
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)tolower((unsigned char)p[i]);
    return seccomp_arch_resolve_name(name);
}

static int set_attr(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value,
                    const char *what, struct ka_error *err)
{
    int r = seccomp_attr_set(ctx, attr, value);
    if (r < 0)
        return ka_error_set(err, -r, "seccomp: %s", what);
    return 0;
}

static int add_arches(scmp_filter_ctx ctx, const struct ka_seccomp *sc, struct ka_error *err)
{
    for (size_t i = 0; i < sc->n_arches; i++) {
        uint32_t arch = resolve_arch(sc->arches[i]);
        if (arch == 0) {
            ka_log(KA_LOG_DEBUG, "seccomp", "skipping architecture %s unknown to libseccomp",
                   sc->arches[i]);
            continue;
        }
        int r = seccomp_arch_add(ctx, arch);
        if (r < 0 && r != -EEXIST)
            return ka_error_set(err, -r, "seccomp: add architecture %s", sc->arches[i]);
    }
    return 0;
}

static enum scmp_compare scmp_op(enum ka_seccomp_op op)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(op_names); i++)
        if (op_names[i].op == op)
            return op_names[i].scmp;
    return SCMP_CMP_EQ; /* not reached: parsed from the same table */
}

static bool same_index_twice(const struct ka_seccomp_syscall *r)
{
    for (size_t i = 0; i < r->n_args; i++)
        for (size_t j = 0; j < i; j++)
            if (r->args[i].index == r->args[j].index)
                return true;
    return false;
}

static int add_rule(scmp_filter_ctx ctx, const struct ka_seccomp_syscall *r, uint32_t action,
                    struct ka_error *err)
{
    struct scmp_arg_cmp conds[KA_SECCOMP_MAX_ARGS];
    for (size_t i = 0; i < r->n_args; i++)
        conds[i] = (struct scmp_arg_cmp){.arg = r->args[i].index,
                                         .op = scmp_op(r->args[i].op),
                                         .datum_a = r->args[i].value,
                                         .datum_b = r->args[i].value_two};
    bool one_each = same_index_twice(r);
    for (size_t n = 0; n < r->n_names; n++) {
        int nr = seccomp_syscall_resolve_name(r->names[n]);
        if (nr == __NR_SCMP_ERROR) {
            ka_log(KA_LOG_DEBUG, "seccomp", "skipping syscall %s unknown to libseccomp",
                   r->names[n]);
            continue;
        }
        int rc;
        if (!one_each) {
            rc = seccomp_rule_add_array(ctx, action, nr, (unsigned)r->n_args, conds);
        } else {
            rc = 0;
            for (size_t i = 0; i < r->n_args && rc == 0; i++)
                rc = seccomp_rule_add_array(ctx, action, nr, 1, &conds[i]);
        }
        if (rc < 0)
            return ka_error_set(err, -rc, "seccomp: rule for %s", r->names[n]);
    }
    return 0;
}

static int build(const struct ka_seccomp *sc, scmp_filter_ctx *ctxp, struct ka_error *err)
{
    uint32_t def;
    if (scmp_action(sc->default_action, false, 0, &def, err) < 0)
        return ka_error_wrap(err, "seccomp default action");
    scmp_filter_ctx ctx = seccomp_init(def);
    if (!ctx)
        return ka_error_set(err, EINVAL, "seccomp_init");
    *ctxp = ctx;
    /* no_new_privs is the spec's to set (ka_apply_caps); loading without it is
     * allowed with CAP_SYS_ADMIN, which the child still has at that point. */
    if (set_attr(ctx, SCMP_FLTATR_CTL_NNP, 0, "clear no_new_privs", err) < 0)
        return -1;
    if ((sc->flags & KA_SECCOMP_FLAG_TSYNC) &&
        set_attr(ctx, SCMP_FLTATR_CTL_TSYNC, 1, "flag SECCOMP_FILTER_FLAG_TSYNC", err) < 0)
        return -1;
    if ((sc->flags & KA_SECCOMP_FLAG_LOG) &&
        set_attr(ctx, SCMP_FLTATR_CTL_LOG, 1, "flag SECCOMP_FILTER_FLAG_LOG", err) < 0)
        return -1;
    if ((sc->flags & KA_SECCOMP_FLAG_SPEC_ALLOW) &&
        set_attr(ctx, SCMP_FLTATR_CTL_SSB, 1, "flag SECCOMP_FILTER_FLAG_SPEC_ALLOW", err) < 0)
        return -1;
    /* WAIT_KILLABLE_RECV only changes how a notify listener's target waits; with
     * SCMP_ACT_NOTIFY refused below there is none, so it has nothing to do. */
    if (add_arches(ctx, sc, err) < 0)
        return -1;
    for (size_t i = 0; i < sc->n_syscalls; i++) {
        const struct ka_seccomp_syscall *r = &sc->syscalls[i];
        uint32_t action;
        if (scmp_action(r->action, r->has_errno_ret, r->errno_ret, &action, err) < 0)
            return ka_error_wrap(err, "seccomp rule %zu (%s)", i, r->names[0]);
        if (action == def)
            continue; /* libseccomp refuses it, and it changes nothing */
        if (add_rule(ctx, r, action, err) < 0)
            return -1;
    }
    return 0;
}

int ka_seccomp_build(const struct ka_seccomp *sc, struct ka_seccomp_filter **out,
                     struct ka_error *err)
{
    *out = NULL;
    scmp_filter_ctx ctx = NULL;
    if (build(sc, &ctx, err) < 0) {
        if (ctx)
            seccomp_release(ctx);
        return -1;
    }
    struct ka_seccomp_filter *f = ka_xcalloc(1, sizeof(*f));
    f->ctx = ctx;
    *out = f;
    return 0;
}

int ka_seccomp_load(struct ka_seccomp_filter *f, struct ka_error *err)
{
    int r = seccomp_load(f->ctx);
    if (r < 0)
        return ka_error_set(err, -r, "load the seccomp filter");
    return 0;
}

int ka_seccomp_export_bpf(struct ka_seccomp_filter *f, int fd, struct ka_error *err)
{
    int r = seccomp_export_bpf(f->ctx, fd);
    if (r < 0)
        return ka_error_set(err, -r, "export the seccomp filter");
    return 0;
}

void ka_seccomp_filter_free(struct ka_seccomp_filter *f)
{
    if (!f)
        return;
    seccomp_release(f->ctx);
    free(f);
}
