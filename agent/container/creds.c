#include "container/creds.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

/* ---- Reading the container's /etc files ------------------------------------ */

/* Read a whole passwd/group file, bounded. O_NONBLOCK so that a FIFO planted by
 * the image cannot hang the child in open(); anything but a regular file is
 * refused after fstat(). */
static int read_small_file(const char *path, char **data, size_t *len, struct ka_error *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return ka_error_set(err, errno, "open %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ka_error_set(err, errno, "stat %s", path);
    if (!S_ISREG(st.st_mode))
        return ka_error_set(err, EINVAL, "%s is not a regular file", path);
    if (st.st_size > (off_t)KA_CREDS_FILE_MAX)
        return ka_error_set(err, EFBIG, "%s is larger than %u bytes", path, KA_CREDS_FILE_MAX);

    /* The size can change under us: read at most one byte past the bound. */
    size_t cap = (size_t)st.st_size + 1;
    cleanup_free char *buf = ka_xmalloc(cap + 1);
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (cap > KA_CREDS_FILE_MAX)
                return ka_error_set(err, EFBIG, "%s is larger than %u bytes", path,
                                    KA_CREDS_FILE_MAX);
            cap = cap * 2 > KA_CREDS_FILE_MAX + 1 ? KA_CREDS_FILE_MAX + 1 : cap * 2;
            buf = ka_xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return ka_error_set(err, errno, "read %s", path);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > KA_CREDS_FILE_MAX)
        return ka_error_set(err, EFBIG, "%s is larger than %u bytes", path, KA_CREDS_FILE_MAX);
    buf[n] = '\0';
    *len = n;
    *data = take_ptr(buf);
    return 0;
}

/* Iterate over the usable lines of buf (modified in place): each returned line is
 * NUL-terminated, trimmed, non-empty, not a comment or NIS entry, and at most
 * KA_CREDS_LINE_MAX bytes. *pos is the cursor. Returns NULL at the end. */
static char *next_line(char *buf, size_t len, size_t *pos)
{
    while (*pos < len) {
        char *start = buf + *pos;
        char *nl = memchr(start, '\n', len - *pos);
        size_t raw = nl ? (size_t)(nl - start) : len - *pos;
        *pos += raw + (nl ? 1 : 0);
        if (raw > KA_CREDS_LINE_MAX)
            continue;
        start[raw] = '\0';
        /* An embedded NUL ends the line early: the rest of it is ignored, which is
         * what a C parser would see anyway. */
        while (isspace((unsigned char)*start))
            start++;
        char *end = start + strlen(start);
        while (end > start && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*start == '\0' || *start == '#' || *start == '+' || *start == '-')
            continue;
        return start;
    }
    return NULL;
}

/* Split line at ':' into at most max fields; returns the number found. */
static size_t split_fields(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

/* A plain decimal id: digits only, at most KA_ID_NUMBER_MAX ((uid_t)-1 means
 * "unchanged" to the kernel, and upstream refuses ids above INT32_MAX: the image
 * writes these files, so an entry naming such an id is malformed). */
static bool parse_id(const char *s, uint32_t *out)
{
    if (*s == '\0')
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > KA_ID_NUMBER_MAX)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

void ka_passwd_entry_free(struct ka_passwd_entry *e)
{
    free(e->name);
    free(e->home);
    free(e->shell);
    e->name = e->home = e->shell = NULL;
}

void ka_group_entry_free(struct ka_group_entry *e)
{
    free(e->name);
    e->name = NULL;
}

int ka_passwd_lookup(const char *passwd_path, const char *name_or_null, uint32_t uid,
                     struct ka_passwd_entry *out, struct ka_error *err)
{
    memset(out, 0, sizeof(*out));
    cleanup_free char *data = NULL;
    size_t len = 0;
    int r = read_small_file(passwd_path, &data, &len, err);
    if (r < 0)
        return r;

    size_t pos = 0;
    char *line;
    while ((line = next_line(data, len, &pos))) {
        char *f[7] = {NULL};
        size_t nf = split_fields(line, f, KA_ARRAY_SIZE(f));
        uint32_t e_uid, e_gid;
        if (nf < 4 || f[0][0] == '\0' || !parse_id(f[2], &e_uid) || !parse_id(f[3], &e_gid))
            continue;
        if (name_or_null ? strcmp(f[0], name_or_null) != 0 : e_uid != uid)
            continue;
        out->name = ka_xstrdup(f[0]);
        out->uid = e_uid;
        out->gid = e_gid;
        out->home = ka_xstrdup(nf > 5 ? f[5] : "");
        out->shell = ka_xstrdup(nf > 6 ? f[6] : "");
        return 1;
    }
    return 0;
}

/* Walk the valid lines of a group file; fn returns true to stop. */
typedef bool (*group_fn)(const char *name, uint32_t gid, char *members, void *ctx);

static int group_walk(const char *path, group_fn fn, void *ctx, struct ka_error *err)
{
    cleanup_free char *data = NULL;
    size_t len = 0;
    int r = read_small_file(path, &data, &len, err);
    if (r < 0)
        return r;
    size_t pos = 0;
    char *line;
    while ((line = next_line(data, len, &pos))) {
        char *f[4] = {NULL};
        size_t nf = split_fields(line, f, KA_ARRAY_SIZE(f));
        uint32_t gid;
        if (nf < 3 || f[0][0] == '\0' || !parse_id(f[2], &gid))
            continue;
        if (fn(f[0], gid, nf > 3 ? f[3] : NULL, ctx))
            return 1;
    }
    return 0;
}

struct group_find {
    const char *name;
    uint32_t gid;
    struct ka_group_entry *out;
};

static bool group_find_fn(const char *name, uint32_t gid, char *members, void *ctx)
{
    (void)members;
    struct group_find *g = ctx;
    if (g->name ? strcmp(name, g->name) != 0 : gid != g->gid)
        return false;
    g->out->name = ka_xstrdup(name);
    g->out->gid = gid;
    return true;
}

int ka_group_lookup(const char *group_path, const char *name_or_null, uint32_t gid,
                    struct ka_group_entry *out, struct ka_error *err)
{
    memset(out, 0, sizeof(*out));
    struct group_find g = {.name = name_or_null, .gid = gid, .out = out};
    return group_walk(group_path, group_find_fn, &g, err);
}

struct group_members {
    const char *user;
    uint32_t *gids;
    size_t n;
    bool too_many;
};

static bool has_gid(const uint32_t *gids, size_t n, uint32_t gid)
{
    for (size_t i = 0; i < n; i++)
        if (gids[i] == gid)
            return true;
    return false;
}

static bool group_members_fn(const char *name, uint32_t gid, char *members, void *ctx)
{
    (void)name;
    struct group_members *g = ctx;
    if (!members)
        return false;
    char *save = NULL;
    for (char *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*m))
            m++;
        size_t l = strlen(m);
        while (l > 0 && isspace((unsigned char)m[l - 1]))
            m[--l] = '\0';
        if (strcmp(m, g->user) != 0)
            continue;
        if (has_gid(g->gids, g->n, gid))
            return false;
        if (g->n == KA_SPEC_MAX_GROUPS) {
            g->too_many = true;
            return true;
        }
        g->gids = ka_xrealloc(g->gids, (g->n + 1) * sizeof(*g->gids));
        g->gids[g->n++] = gid;
        return false;
    }
    return false;
}

int ka_group_user_gids(const char *group_path, const char *user, uint32_t **gids, size_t *n,
                       struct ka_error *err)
{
    struct group_members g = {.user = user};
    *gids = NULL;
    *n = 0;
    int r = group_walk(group_path, group_members_fn, &g, err);
    if (r < 0 || g.too_many) {
        free(g.gids);
        if (r < 0)
            return r;
        return ka_error_set(err, E2BIG, "%s: user %s is in more than %d groups", group_path, user,
                            KA_SPEC_MAX_GROUPS);
    }
    *gids = g.gids;
    *n = g.n;
    return 0;
}

/* ---- User resolution -------------------------------------------------------- */

static int add_groups(struct ka_user *user, const uint32_t *gids, size_t n, struct ka_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (has_gid(user->additional_gids, user->n_additional_gids, gids[i]))
            continue;
        if (user->n_additional_gids >= KA_SPEC_MAX_GROUPS)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "more than %d additional groups", KA_SPEC_MAX_GROUPS);
        user->additional_gids =
            ka_xrealloc(user->additional_gids, (user->n_additional_gids + 1) * sizeof(uint32_t));
        user->additional_gids[user->n_additional_gids++] = gids[i];
    }
    return 0;
}

/* A lookup where a missing file counts as "no entry". */
static int passwd_find(const char *path, const char *name, uint32_t uid, struct ka_passwd_entry *e,
                       struct ka_error *err)
{
    int r = ka_passwd_lookup(path, name, uid, e, err);
    if (r == -ENOENT || r == -ENOTDIR) {
        ka_error_clear(err);
        return 0;
    }
    return r;
}

static int resolve_username(struct ka_user *user, const char *passwd_path, const char *group_path,
                            struct ka_error *err)
{
    cleanup_free char *spec = ka_xstrdup(user->username);
    char *user_arg = spec;
    char *group_arg = strchr(spec, ':');
    if (group_arg) {
        *group_arg++ = '\0';
        if (strchr(group_arg, ':') || *group_arg == '\0')
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "user %s: expected user, uid, user:group or uid:gid",
                                       user->username);
    }

    uint32_t id;
    struct ka_passwd_entry pw = {0};
    int found;
    if (*user_arg == '\0' || parse_id(user_arg, &id)) {
        /* Digits are always a uid (runc); the entry, if any, adds gid and groups. */
        if (*user_arg != '\0')
            user->uid = id;
        found = passwd_find(passwd_path, NULL, user->uid, &pw, err);
        if (found < 0)
            return ka_error_wrap(err, "look up uid %u", user->uid);
    } else {
        found = passwd_find(passwd_path, user_arg, 0, &pw, err);
        if (found < 0)
            return ka_error_wrap(err, "look up user %s", user_arg);
        if (found == 0)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "unable to find user %s in %s", user_arg, passwd_path);
    }
    if (found > 0) {
        user->uid = pw.uid;
        user->gid = pw.gid;
    }

    int r = 0;
    if (group_arg) {
        if (parse_id(group_arg, &id)) {
            user->gid = id;
        } else {
            struct ka_group_entry gr = {0};
            r = ka_group_lookup(group_path, group_arg, 0, &gr, err);
            if (r == 0 || r == -ENOENT || r == -ENOTDIR) {
                r = ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                        "unable to find group %s in %s", group_arg, group_path);
            } else if (r < 0) {
                ka_error_wrap(err, "look up group %s", group_arg);
            } else {
                user->gid = gr.gid;
                r = 0;
            }
            ka_group_entry_free(&gr);
        }
    } else if (found > 0) {
        /* Implicit group: the user's memberships in /etc/group come along, as
         * with runc and containerd's WithUsername. */
        cleanup_free uint32_t *gids = NULL;
        size_t n = 0;
        r = ka_group_user_gids(group_path, pw.name, &gids, &n, err);
        if (r == -ENOENT || r == -ENOTDIR) {
            ka_error_clear(err);
            r = 0;
        } else if (r < 0) {
            ka_error_wrap(err, "groups of user %s", pw.name);
        } else {
            r = add_groups(user, gids, n, err);
        }
    }
    ka_passwd_entry_free(&pw);
    return r;
}

int ka_user_resolve(struct ka_user *user, const char *etc_dir, char **home, struct ka_error *err)
{
    char passwd_path[PATH_MAX], group_path[PATH_MAX];
    if (!etc_dir)
        etc_dir = "/etc";
    if ((size_t)snprintf(passwd_path, sizeof(passwd_path), "%s/passwd", etc_dir) >=
            sizeof(passwd_path) ||
        (size_t)snprintf(group_path, sizeof(group_path), "%s/group", etc_dir) >= sizeof(group_path))
        return ka_error_set(err, ENAMETOOLONG, "resolve user: %s", etc_dir);
    if (home)
        *home = NULL;

    if (user->username && user->username[0] != '\0') {
        int r = resolve_username(user, passwd_path, group_path, err);
        if (r < 0)
            return r;
    }

    if (home) {
        /* Only HOME hangs on this: any failure means "/" (Kata does the same). */
        struct ka_passwd_entry pw = {0};
        struct ka_error ignored;
        if (ka_passwd_lookup(passwd_path, NULL, user->uid, &pw, &ignored) > 0 && pw.home[0] != '\0')
            *home = take_ptr(pw.home);
        else
            *home = ka_xstrdup("/");
        ka_passwd_entry_free(&pw);
    }
    return 0;
}

/* ---- rlimits, oom_score_adj ------------------------------------------------- */

int ka_apply_rlimits(const struct ka_rlimit *r, size_t n, struct ka_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = ka_rlimit_name(r[i].resource);
        if (r[i].soft > r[i].hard)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "%s (%d): soft limit %llu above hard limit %llu", name,
                                       r[i].resource, (unsigned long long)r[i].soft,
                                       (unsigned long long)r[i].hard);
        /* UINT64_MAX is RLIM_INFINITY on every 64-bit ABI we build for. */
        struct rlimit rl = {.rlim_cur = (rlim_t)r[i].soft, .rlim_max = (rlim_t)r[i].hard};
        if (setrlimit(r[i].resource, &rl) < 0)
            return ka_error_set(err, errno, "setrlimit %s (%d) soft %llu hard %llu", name,
                                r[i].resource, (unsigned long long)r[i].soft,
                                (unsigned long long)r[i].hard);
    }
    return 0;
}

int ka_set_oom_score_adj(int value, struct ka_error *err)
{
    if (value < -1000 || value > 1000)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "oom_score_adj %d outside -1000..1000", value);
    cleanup_close int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open /proc/self/oom_score_adj");
    char buf[16];
    int len = snprintf(buf, sizeof(buf), "%d", value);
    ssize_t w;
    do
        w = write(fd, buf, (size_t)len);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return ka_error_set(err, errno, "write %d to /proc/self/oom_score_adj", value);
    if (w != len)
        return ka_error_set(err, EIO, "short write of %d to /proc/self/oom_score_adj", value);
    return 0;
}

/* ---- Capabilities and user switch ------------------------------------------ */

/* /proc/sys/kernel/cap_last_cap, or -1. Only a fallback: in an exec the /proc seen
 * is the container's, and one with CAP_SYS_ADMIN can bind a forged number over it
 * (a low one would leave every capability above it in the bounding set). */
static int cap_last_cap_from_proc(void)
{
    cleanup_close int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[16];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    return end != buf && v >= 0 && v < 64 ? (int)v : -1;
}

int ka_cap_last_cap(void)
{
    /* Ask the kernel itself, as upstream 3796ca53dc does: PR_CAPBSET_READ answers
     * EINVAL for a number past the last capability it knows. Any other error (a
     * seccomp filter refusing the call) leaves the count unknown: then /proc. */
    int c = 0;
    while (c < 64 && prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) >= 0)
        c++;
    if (c == 64 || (c > 0 && errno == EINVAL))
        return c - 1;
    return cap_last_cap_from_proc();
}

static uint64_t known_caps_mask(int last)
{
    return last >= 63 ? UINT64_MAX : ((uint64_t)1 << (last + 1)) - 1;
}

static bool has_cap(uint64_t mask, int cap)
{
    return (mask >> cap) & 1;
}

/* Only an empty group list is allowed to meet a user namespace whose
 * /proc/self/setgroups says "deny" (rootless-style maps): it changes nothing. */
static bool setgroups_denied(void)
{
    cleanup_close int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
    char buf[8] = {0};
    return fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0 && strncmp(buf, "deny", 4) == 0;
}

static void cap_freep(cap_t *c)
{
    if (*c)
        cap_free(*c);
}
#define cleanup_cap __attribute__((cleanup(cap_freep)))

int ka_switch_user(const struct ka_process *p, struct ka_error *err)
{
    const struct ka_user *u = &p->user;
    int last = ka_cap_last_cap();
    if (last < 0)
        return ka_error_set(err, EINVAL, "cannot tell the last capability number");

    /* setresuid() away from uid 0 clears the effective and ambient sets even with
     * keepcaps: note them so the second half still runs with what it had. */
    cleanup_cap cap_t saved = cap_get_proc();
    if (!saved)
        return ka_error_set(err, errno, "read the process capabilities");
    uint64_t saved_ambient = 0;
    for (int c = 0; c <= last; c++)
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, (unsigned long)c, 0, 0) > 0)
            saved_ambient |= (uint64_t)1 << c;

    /* Keep the permitted set across the uid change; the spec's sets are applied
     * afterwards by ka_apply_caps(). */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return ka_error_set(err, errno, "prctl PR_SET_KEEPCAPS 1");

    /* The bounding set first: dropping needs CAP_SETPCAP in the effective set,
     * which setresuid() to a non-zero uid takes away. */
    if (p->caps.present) {
        for (int c = 0; c <= last; c++) {
            if (has_cap(p->caps.bounding, c) ||
                prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) <= 0)
                continue; /* wanted, or already gone (drop needs CAP_SETPCAP) */
            if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0 && errno != EINVAL)
                return ka_error_set(err, errno, "drop capability %d from the bounding set", c);
        }
        /* Read back what the kernel kept, up to the last number there can be: the
         * bounding set must be within the spec's whatever the count above said
         * (upstream checks this too). A set that cannot be read is not trusted. */
        for (int c = 0; c < 64; c++) {
            if (has_cap(p->caps.bounding, c))
                continue;
            int in = prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0);
            if (in < 0 && errno != EINVAL)
                return ka_error_set(err, errno, "read capability %d of the bounding set", c);
            if (in > 0)
                return ka_error_set(err, EPERM,
                                    "capability %d is still in the bounding set after the drop", c);
        }
    }

    /* Groups before the gid, the gid before the uid: each needs CAP_SETGID, which
     * the uid change removes from the effective set. */
    if (u->n_additional_gids > KA_SPEC_MAX_GROUPS)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "%zu additional groups, at most %d", u->n_additional_gids,
                                   KA_SPEC_MAX_GROUPS);
    /* Validation refused these already; checked again because the ids may have
     * come from the image's /etc files since, and -1 here would keep us root. */
    if (!ka_id_number_ok(u->uid) || !ka_id_number_ok(u->gid))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "uid %u / gid %u out of range",
                                   u->uid, u->gid);
    gid_t groups[KA_SPEC_MAX_GROUPS];
    for (size_t i = 0; i < u->n_additional_gids; i++) {
        if (!ka_id_number_ok(u->additional_gids[i]))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "additional gid %u out of range", u->additional_gids[i]);
        groups[i] = (gid_t)u->additional_gids[i];
    }
    if (setgroups(u->n_additional_gids, u->n_additional_gids ? groups : NULL) < 0) {
        int e = errno;
        if (!(e == EPERM && u->n_additional_gids == 0 && setgroups_denied()))
            return ka_error_set(err, e, "setgroups (%zu groups)", u->n_additional_gids);
    }
    if (setresgid(u->gid, u->gid, u->gid) < 0)
        return ka_error_set(err, errno, "setresgid %u", u->gid);
    if (setresuid(u->uid, u->uid, u->uid) < 0)
        return ka_error_set(err, errno, "setresuid %u", u->uid);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return ka_error_set(err, errno, "prctl PR_SET_KEEPCAPS 0");

    /* Permitted and inheritable survived (keepcaps), so the saved sets are valid. */
    if (cap_set_proc(saved) < 0)
        return ka_error_set(err, errno, "restore the effective capabilities after setresuid");
    for (int c = 0; c <= last; c++)
        if (has_cap(saved_ambient, c) &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, 0, 0) < 0)
            return ka_error_set(err, errno, "restore ambient capability %d", c);
    return 0;
}

static int set_flags(cap_t c, cap_flag_t flag, uint64_t mask, int last)
{
    cap_value_t vals[64];
    int n = 0;
    for (int i = 0; i <= last; i++)
        if (has_cap(mask, i))
            vals[n++] = i;
    return n ? cap_set_flag(c, flag, n, vals, CAP_SET) : 0;
}

int ka_apply_caps(const struct ka_process *p, struct ka_error *err)
{
    if (p->caps.present) {
        int last = ka_cap_last_cap();
        if (last < 0)
            return ka_error_set(err, EINVAL, "cannot tell the last capability number");
        uint64_t known = known_caps_mask(last);
        uint64_t eff = p->caps.effective & known;
        uint64_t prm = p->caps.permitted & known;
        uint64_t inh = p->caps.inheritable & known;
        uint64_t amb = p->caps.ambient & known;

        cleanup_cap cap_t c = cap_init();
        if (!c)
            return ka_error_set(err, errno, "cap_init");
        if (set_flags(c, CAP_EFFECTIVE, eff, last) < 0 ||
            set_flags(c, CAP_PERMITTED, prm, last) < 0 ||
            set_flags(c, CAP_INHERITABLE, inh, last) < 0)
            return ka_error_set(err, errno, "build the capability sets");
        /* EPERM here means the spec is inconsistent: effective not within
         * permitted, or inheritable outside the bounding set. */
        if (cap_set_proc(c) < 0)
            return ka_error_set(err, errno,
                                "set capabilities effective %#llx permitted %#llx "
                                "inheritable %#llx",
                                (unsigned long long)eff, (unsigned long long)prm,
                                (unsigned long long)inh);

        /* Ambient last: the kernel takes only caps already permitted and
         * inheritable. EINVAL on the clear means a kernel without ambient caps. */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
            if (errno != EINVAL)
                return ka_error_set(err, errno, "clear the ambient capabilities");
        } else {
            amb &= prm & inh;
            for (int i = 0; i <= last; i++)
                if (has_cap(amb, i) &&
                    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)i, 0, 0) < 0)
                    return ka_error_set(err, errno, "raise ambient capability %d", i);
        }
    }
    if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return ka_error_set(err, errno, "prctl PR_SET_NO_NEW_PRIVS");
    return 0;
}

int ka_apply_user_and_caps(const struct ka_process *p, struct ka_error *err)
{
    int r = ka_switch_user(p, err);
    if (r < 0)
        return r;
    return ka_apply_caps(p, err);
}

/* ---- Signals ------------------------------------------------------------------ */

int ka_reset_signals(struct ka_error *err)
{
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        return ka_error_set(err, errno, "unblock signals");
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        /* glibc keeps two real-time signals for itself and answers EINVAL. */
        if (sigaction(sig, &dfl, NULL) < 0 && errno != EINVAL)
            return ka_error_set(err, errno, "reset the disposition of signal %d", sig);
    }
    return 0;
}

/* ---- PATH lookup ------------------------------------------------------------- */

/* 0 when path is an executable regular file; ENOENT when nothing is there (or
 * cannot be reached); EACCES when something is there that cannot be run. */
static int check_executable(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return errno == EACCES ? EACCES : ENOENT;
    if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
        return EACCES;
    return 0;
}

const char *ka_find_executable(const char *name, const char *path_env, char *buf, size_t size)
{
    if (!name || name[0] == '\0') {
        errno = ENOENT;
        return NULL;
    }
    size_t name_len = strlen(name);
    if (strchr(name, '/')) {
        if (name_len >= size) {
            errno = ENAMETOOLONG;
            return NULL;
        }
        int e = check_executable(name);
        if (e) {
            errno = e;
            return NULL;
        }
        memcpy(buf, name, name_len + 1);
        return buf;
    }

    if (!path_env)
        path_env = KA_DEFAULT_PATH;
    int seen = ENOENT;
    const char *p = path_env;
    for (;;) {
        const char *colon = strchrnul(p, ':');
        size_t dir_len = (size_t)(colon - p);
        if (dir_len > 0) {
            bool slash = p[dir_len - 1] == '/';
            size_t total = dir_len + (slash ? 0 : 1) + name_len;
            if (total >= size) {
                if (seen == ENOENT)
                    seen = ENAMETOOLONG;
            } else {
                memcpy(buf, p, dir_len);
                if (!slash)
                    buf[dir_len] = '/';
                memcpy(buf + total - name_len, name, name_len + 1);
                int e = check_executable(buf);
                if (e == 0)
                    return buf;
                /* Like execvp: remember that something was there but could not
                 * be run, and keep looking. */
                if (e == EACCES)
                    seen = EACCES;
            }
        }
        if (*colon == '\0')
            break;
        p = colon + 1;
    }
    errno = seen;
    return NULL;
}
