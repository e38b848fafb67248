#include "rpc/devices.h"
#include "agent.h"
#include "core/log.h"
#include "core/util.h"
#include "device/listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* ---- what a request needs --------------------------------------------------------------- */

static struct rpc_dev_need *new_need(struct rpc_dev_set *set, int device, struct ka_error *err)
{
    if (set->n == RPC_MAX_DEVICES) {
        ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                            "a request may name at most %d devices", RPC_MAX_DEVICES);
        return NULL;
    }
    struct rpc_dev_need *need = &set->needs[set->n++];
    memset(need, 0, sizeof(*need));
    need->device = device;
    return need;
}

static bool is_block_node(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISBLK(st.st_mode);
}

int rpc_dev_add_storages(struct rpc_dev_set *set, Grpc__Storage **st, size_t n, int *storage_need,
                         struct ka_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *drv = st[i]->driver, *src = st[i]->source;
        storage_need[i] = -1;
        bool by_name = strcmp(drv, "mmioblk") == 0 || strcmp(drv, "nvdimm") == 0;
        bool blk = strcmp(drv, "blk") == 0;
        if (!by_name && !blk && strcmp(drv, "scsi") != 0)
            continue;
        /* A /dev node that is there already (a loop device, a /dev/mapper name)
         * is used as it is. */
        if ((by_name || blk) && strncmp(src, "/dev/", 5) == 0 && is_block_node(src))
            continue;
        storage_need[i] = (int)set->n;
        struct rpc_dev_need *need = new_need(set, -1, err);
        int rc = !need                      ? -1
                 : strcmp(drv, "scsi") == 0 ? ka_dev_query_scsi(&need->q, src, err)
                 : by_name || src[0] == '/' ? ka_dev_query_blk_name(&need->q, src, err)
                                            : ka_dev_query_pci_blk(&need->q, src, err);
        if (rc < 0)
            return ka_error_wrap(err, "storage %.200s", st[i]->mount_point);
    }
    return 0;
}

const char *rpc_dev_storage_source(const struct rpc_dev_set *set, const int *storage_need,
                                   Grpc__Storage **st, size_t i)
{
    return storage_need[i] < 0 ? st[i]->source : set->needs[storage_need[i]].found.node;
}

static bool is_vfio(const char *type)
{
    return strcmp(type, "vfio-pci") == 0 || strcmp(type, "vfio-pci-gk") == 0;
}

/* "0000:01:00.0=02/00": the host's address of one function, and its guest PCI path. */
static int add_vfio_function(struct rpc_dev_set *set, int device, const char *opt,
                             struct ka_error *err)
{
    const char *eq = strchr(opt, '=');
    if (!eq || eq == opt || (size_t)(eq - opt) >= sizeof(set->needs[0].host_addr))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "invalid vfio option '%.64s' (want <host BDF>=<PCI path>)", opt);
    struct rpc_dev_need *need = new_need(set, device, err);
    if (!need || ka_dev_query_pci(&need->q, eq + 1, err) < 0)
        return -1;
    memcpy(need->host_addr, opt, (size_t)(eq - opt));
    need->host_addr[eq - opt] = '\0';
    return 0;
}

int rpc_dev_add_devices(struct rpc_dev_set *set, Grpc__Device **dev, size_t n, int *device_need,
                        struct ka_error *err)
{
    if (n > RPC_MAX_DEVICES)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "a request may name at most %d devices", RPC_MAX_DEVICES);
    for (size_t i = 0; i < n; i++) {
        const Grpc__Device *d = dev[i];
        device_need[i] = (int)set->n;
        if (!d->container_path[0] && !is_vfio(d->type))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "device '%.64s' has no container_path", d->id);
        int rc;
        if (is_vfio(d->type)) {
            rc = d->n_options == 0 || d->n_options > RPC_MAX_DEVICE_OPTIONS
                     ? ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                           "vfio device '%.64s' needs 1 to %d functions", d->id,
                                           RPC_MAX_DEVICE_OPTIONS)
                     : 0;
            for (size_t k = 0; rc == 0 && k < d->n_options; k++)
                rc = add_vfio_function(set, (int)i, d->options[k], err);
        } else {
            struct rpc_dev_need *need = new_need(set, (int)i, err);
            if (!need)
                return -1;
            if (strcmp(d->type, "blk") == 0 && d->id[0])
                rc = ka_dev_query_pci_blk(&need->q, d->id, err);
            else if (strcmp(d->type, "blk") == 0 || strcmp(d->type, "mmioblk") == 0 ||
                     strcmp(d->type, "nvdimm") == 0)
                rc = ka_dev_query_blk_name(&need->q, d->vm_path, err);
            else if (strcmp(d->type, "scsi") == 0)
                rc = ka_dev_query_scsi(&need->q, d->id, err);
            else if (strcmp(d->type, "vfio-ap") == 0)
                rc = ka_error_status_set(err, KA_STATUS_UNIMPLEMENTED,
                                         "vfio-ap devices are not supported");
            else
                rc = ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                         "unknown device type '%.32s'", d->type);
        }
        if (rc < 0)
            return ka_error_wrap(err, "device %.64s", d->container_path);
    }
    return 0;
}

int rpc_dev_add_vfio_groups(struct rpc_dev_set *set, Grpc__Device **dev, size_t n,
                            struct ka_error *err)
{
    size_t functions = set->n;
    for (size_t i = 0; i < functions; i++) {
        struct rpc_dev_need *f = &set->needs[i];
        if (f->device < 0 || (size_t)f->device >= n || f->q.kind != KA_DEV_PCI ||
            strcmp(dev[f->device]->type, "vfio-pci") != 0)
            continue;
        unsigned group;
        if (ka_device_vfio_bind(&ka_dev_real_roots, &f->found, &group, err) < 0)
            return -1;
        char text[16];
        snprintf(text, sizeof(text), "%u", group);
        bool have = false;
        for (size_t k = functions; k < set->n; k++)
            have |= set->needs[k].device == f->device && strcmp(set->needs[k].q.name, text) == 0;
        if (have)
            continue;
        struct rpc_dev_need *g = new_need(set, f->device, err);
        if (!g || ka_dev_query_vfio_group(&g->q, text, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- parking and replaying ---------------------------------------------------------------- */

struct rpc_device_gate {
    struct agent *agent;
    struct ttrpc_call *call;
    uint8_t *payload;
    size_t len;
    struct ka_uevent_waiter waiter;
    int timer_fd;
    struct ka_watch timer;
    bool expired;
    bool reparked;
    struct ka_dev_query missing[RPC_MAX_DEVICES];
    size_t n_missing;
};

static void gate_free(struct rpc_device_gate *g)
{
    ka_uevent_unwait(&g->waiter);
    ka_reactor_del(&g->timer);
    if (g->timer_fd >= 0)
        close(g->timer_fd);
    free(g->payload);
    free(g);
}

static void gate_cancel(struct ttrpc_call *call)
{
    gate_free(call->park_data);
}

static void gate_replay(struct rpc_device_gate *g)
{
    struct rpc_dispatcher *d = &g->agent->dispatcher;
    ka_uevent_unwait(&g->waiter);
    g->reparked = false;
    struct rpc_device_gate *outer = d->replaying;
    d->replaying = g;
    rpc_dispatch(d, g->call, g->payload, g->len); /* answers, parks elsewhere, or reparks */
    d->replaying = outer;
    if (!g->reparked)
        gate_free(g);
}

static void gate_on_uevent(struct ka_uevent_waiter *w, const struct ka_uevent *ev)
{
    struct rpc_device_gate *g = ka_container_of(w, struct rpc_device_gate, waiter);
    bool relevant = ev == NULL;
    for (size_t i = 0; !relevant && i < g->n_missing; i++)
        relevant = ka_device_match(&ka_dev_real_roots, &g->missing[i], ev);
    if (relevant)
        gate_replay(g);
}

static void gate_on_timer(struct ka_watch *w, uint32_t events)
{
    (void)events;
    struct rpc_device_gate *g = w->data;
    ka_reactor_del(&g->timer);
    g->expired = true;
    gate_replay(g);
}

static struct rpc_device_gate *gate_new(struct agent *a, struct ttrpc_call *call,
                                        struct ka_error *err)
{
    struct rpc_dispatcher *d = &a->dispatcher;
    struct rpc_device_gate *g = ka_xcalloc(1, sizeof(*g));
    g->agent = a;
    g->call = call;
    g->len = d->cur_len;
    g->payload = ka_xmalloc(g->len ? g->len : 1);
    memcpy(g->payload, d->cur_payload, g->len);
    unsigned secs = a->cfg.hotplug_timeout_s ? a->cfg.hotplug_timeout_s : 3;
    struct itimerspec its = {.it_value = {.tv_sec = secs}};
    g->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g->timer_fd < 0 || timerfd_settime(g->timer_fd, 0, &its, NULL) < 0 ||
        ka_reactor_add(&a->reactor, &g->timer, g->timer_fd, EPOLLIN, gate_on_timer, g, err) < 0) {
        ka_error_set(err, errno, "arm the device wait timer");
        gate_free(g);
        return NULL;
    }
    return g;
}

int rpc_await_devices(struct agent *a, struct ttrpc_call *call, struct rpc_dev_set *set,
                      struct ka_error *err)
{
    struct rpc_device_gate *g = a->dispatcher.replaying;
    if (g && g->call != call)
        g = NULL; /* a different call being answered from inside a replay */
    struct ka_dev_query missing[RPC_MAX_DEVICES];
    size_t n_missing = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (!g)
            ka_device_prepare(&ka_dev_real_roots, &set->needs[i].q);
        int rc = ka_device_find(&ka_dev_real_roots, &set->needs[i].q, &set->needs[i].found, err);
        if (rc < 0)
            return ka_error_wrap(err, "device %.128s", set->needs[i].q.arg);
        if (rc == 0)
            missing[n_missing++] = set->needs[i].q;
    }
    if (n_missing == 0)
        return 1;
    if (g && g->expired)
        return ka_error_status_set(err, KA_STATUS_DEADLINE_EXCEEDED,
                                   "timeout after %us waiting for device %.128s%s",
                                   a->cfg.hotplug_timeout_s, missing[0].arg,
                                   ka_uevent_listening() ? "" : " (no uevent listener)");
    if (!g && !(g = gate_new(a, call, err)))
        return -1;
    memcpy(g->missing, missing, n_missing * sizeof(missing[0]));
    g->n_missing = n_missing;
    g->reparked = true;
    ka_uevent_wait(&g->waiter, gate_on_uevent);
    ttrpc_call_park(call, gate_cancel, g);
    ka_log(KA_LOG_INFO, "device", "%s waits for device %s", call->method, missing[0].arg);
    return 0;
}

/* ---- the spec ----------------------------------------------------------------------------- */

static void add_allow_rule(struct ka_spec *spec, char type, unsigned major, unsigned minor)
{
    struct ka_resources *r = &spec->resources;
    r->devices = ka_xrealloc(r->devices, (r->n_devices + 1) * sizeof(*r->devices));
    r->devices[r->n_devices++] = (struct ka_device_rule){.allow = true,
                                                         .type = type,
                                                         .major = major,
                                                         .minor = minor,
                                                         .access = "rwm"};
}

static int update_one(struct ka_spec *spec, const Grpc__Device *d, const struct ka_dev_found *f,
                      const char *guest_path, struct ka_error *err)
{
    struct ka_device *sd = NULL;
    for (size_t i = 0; i < spec->n_devices && !sd; i++)
        if (strcmp(spec->devices[i].path, d->container_path) == 0)
            sd = &spec->devices[i];
    if (!sd)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "device %.200s is not in the OCI spec's Linux.Devices",
                                   d->container_path);
    char type = f->is_block ? 'b' : 'c';
    int64_t host_major = sd->major, host_minor = sd->minor;
    struct ka_resources *r = &spec->resources;
    for (size_t i = 0; i < r->n_devices; i++)
        if (r->devices[i].type == sd->type && r->devices[i].major == host_major &&
            r->devices[i].minor == host_minor) {
            r->devices[i].major = f->major;
            r->devices[i].minor = f->minor;
        }
    sd->type = type;
    sd->major = f->major;
    sd->minor = f->minor;
    if (guest_path) {
        free(sd->path);
        sd->path = ka_xstrdup(guest_path);
    }
    add_allow_rule(spec, type, f->major, f->minor);
    ka_log(KA_LOG_INFO, "device", "%s -> %s (%u:%u)", d->container_path, f->node, f->major,
           f->minor);
    return 0;
}

/* PCIDEVICE_<resource>=<host BDF>[,<host BDF>...] -> the guest's addresses. */
static void rewrite_pci_env(struct ka_spec *spec, const struct rpc_dev_set *set)
{
    for (size_t e = 0; e < spec->process.n_env; e++) {
        char *kv = spec->process.env[e];
        char *eq = strchr(kv, '=');
        if (strncmp(kv, "PCIDEVICE_", 10) != 0 || !eq)
            continue;
        char out[1024];
        size_t len = (size_t)(eq - kv + 1);
        if (len >= sizeof(out))
            continue;
        memcpy(out, kv, len);
        bool changed = false;
        for (char *tok = eq + 1; *tok;) {
            size_t tl = strcspn(tok, ",");
            const char *repl = NULL;
            for (size_t i = 0; i < set->n && !repl; i++)
                if (set->needs[i].host_addr[0] && strlen(set->needs[i].host_addr) == tl &&
                    strncmp(set->needs[i].host_addr, tok, tl) == 0)
                    repl = set->needs[i].found.pci_addr;
            int n = repl ? snprintf(out + len, sizeof(out) - len, "%s%s", repl, tok[tl] ? "," : "")
                         : snprintf(out + len, sizeof(out) - len, "%.*s%s", (int)tl, tok,
                                    tok[tl] ? "," : "");
            if (n < 0 || (size_t)n >= sizeof(out) - len)
                return;
            len += (size_t)n;
            changed |= repl != NULL;
            tok += tl + (tok[tl] ? 1 : 0);
        }
        if (changed) {
            free(spec->process.env[e]);
            spec->process.env[e] = ka_xstrdup(out);
        }
    }
}

int rpc_dev_update_spec(struct ka_spec *spec, Grpc__Device **dev, size_t n,
                        const struct rpc_dev_set *set, const int *device_need, struct ka_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (is_vfio(dev[i]->type)) {
            /* vfio mode: the container's /dev/vfio/<host group> becomes the guest's
             * group node; guest-kernel mode ("-gk") exposes no node. */
            for (size_t k = 0; k < set->n; k++)
                if (set->needs[k].device == (int)i && set->needs[k].q.kind == KA_DEV_VFIO_GROUP &&
                    dev[i]->container_path[0] &&
                    update_one(spec, dev[i], &set->needs[k].found, set->needs[k].found.node, err) <
                        0)
                    return -1;
            continue;
        }
        if (update_one(spec, dev[i], &set->needs[device_need[i]].found, NULL, err) < 0)
            return -1;
    }
    rewrite_pci_env(spec, set);
    return 0;
}
