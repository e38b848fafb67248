/* OCI config.json → Kata's protobuf Spec, as the runtime would send it. See oci.h. */
#include "oci.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "json.h"
#include "pbjson.h"

/* Notes about dropped keys name them by their place: "process.user.umask". */
#define OCI_PATH_MAX 512

/* ---- renaming the JSON tree ----------------------------------------------- */

/* Go's encoding/json matches case-insensitively; ignoring '_' as well lets a key
 * like "oom_score_adj" (what some tools write) find OOMScoreAdj too. */
static bool key_matches(const char *field, const char *key, size_t key_len)
{
    size_t i = 0;
    for (const char *f = field;; f++) {
        while (*f == '_')
            f++;
        while (i < key_len && key[i] == '_')
            i++;
        if (*f == '\0' || i == key_len)
            return *f == '\0' && i == key_len;
        if (tolower((unsigned char)*f) != tolower((unsigned char)key[i]))
            return false;
        i++;
    }
}

/* protoc turns map<K,V> field "Foo" into a nested message "FooEntry" {key = 1;
 * value = 2}; protobuf-c keeps no map flag, so recognise the shape (as pbjson.c). */
static bool is_map_field(const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    if (!e || e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
        strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
        return false;
    size_t n = strlen(e->short_name);
    return n > 5 && strcmp(e->short_name + n - 5, "Entry") == 0;
}

static const ProtobufCFieldDescriptor *match_field(const ProtobufCMessageDescriptor *desc,
                                                   const char *key)
{
    if (desc == &grpc__spec__descriptor && strcmp(key, "ociVersion") == 0)
        return protobuf_c_message_descriptor_get_field_by_name(desc, "Version");
    /* An exact name first, then the first case-insensitive match (as Go does). */
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (f)
        return f;
    for (unsigned i = 0; i < desc->n_fields; i++)
        if (key_matches(desc->fields[i].name, key, strlen(key)))
            return &desc->fields[i];
    return NULL;
}

/* path + suffix, cut at OCI_PATH_MAX - 1 (it only names things in notes). */
__attribute__((format(printf, 3, 4))) static void sub_path(char sub[OCI_PATH_MAX], const char *path,
                                                           const char *fmt, ...)
{
    size_t n = strnlen(path, OCI_PATH_MAX - 1);
    memcpy(sub, path, n);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sub + n, OCI_PATH_MAX - n, fmt, ap);
    va_end(ap);
}

static void note_dropped(const char *path, const char *key)
{
    char safe[80];
    size_t n = 0;
    for (const char *k = key; *k && n + 1 < sizeof(safe); k++)
        safe[n++] = isprint((unsigned char)*k) ? *k : '?';
    safe[n] = '\0';
    fprintf(stderr, "agent-ctl: config.json: ignoring %s%s%s (not in Kata's OCI protocol)\n", path,
            path[0] ? "." : "", safe);
}

static int rename_message(struct json_object **v, const ProtobufCMessageDescriptor *desc,
                          const char *path, struct ka_error *err);

/* The value of field f at path: recurse into messages, repeated messages and the
 * message values of maps; anything else stays for pbjson to check. */
static int rename_field_value(struct json_object **v, const ProtobufCFieldDescriptor *f,
                              const char *path, struct ka_error *err)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    char sub[OCI_PATH_MAX];
    if (is_map_field(f)) {
        /* Keys are data (annotation names, sysctl names): never renamed. */
        const ProtobufCFieldDescriptor *vf =
            &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[1];
        if (!json_object_is_type(*v, json_type_object) || vf->type != PROTOBUF_C_TYPE_MESSAGE)
            return 0;
        struct json_object_iterator it = json_object_iter_begin(*v);
        struct json_object_iterator end = json_object_iter_end(*v);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            sub_path(sub, path, "[\"%.40s\"]", json_object_iter_peek_name(&it));
            struct json_object *value = json_object_iter_peek_value(&it);
            struct json_object *renamed = json_object_get(value);
            if (rename_message(&renamed, vf->descriptor, sub, err) < 0) {
                json_object_put(renamed);
                return -1;
            }
            /* Replacing the value under the same key keeps the iteration valid. */
            if (renamed != value &&
                json_object_object_add(*v, json_object_iter_peek_name(&it), renamed) < 0)
                ctl_json_ok(NULL);
            else if (renamed == value)
                json_object_put(renamed);
        }
        return 0;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_object_is_type(*v, json_type_array))
            return 0;
        for (size_t i = 0; i < json_object_array_length(*v); i++) {
            sub_path(sub, path, "[%zu]", i);
            struct json_object *item = json_object_get(json_object_array_get_idx(*v, i));
            if (rename_message(&item, f->descriptor, sub, err) < 0) {
                json_object_put(item);
                return -1;
            }
            json_object_array_put_idx(*v, i, item);
        }
        return 0;
    }
    return rename_message(v, f->descriptor, path, err);
}

/* Replace *v (an object) by a new object whose keys are the proto field names;
 * other values stay as they are (null is "absent"; other types are pbjson's to
 * refuse). */
static int rename_message(struct json_object **v, const ProtobufCMessageDescriptor *desc,
                          const char *path, struct ka_error *err)
{
    if (!json_object_is_type(*v, json_type_object))
        return 0;
    cleanup_json struct json_object *out = ctl_json_ok(json_object_new_object());
    json_object_object_foreach(*v, key, value)
    {
        const ProtobufCFieldDescriptor *f = match_field(desc, key);
        if (!f) {
            note_dropped(path, key);
            continue;
        }
        /* Go's decoder would fill one field from two keys that both match it; the
         * later would win, silently: say so instead. */
        if (json_object_object_get_ex(out, f->name, NULL))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "config.json: %s%s%.64s: field %s given more than once",
                                       path, path[0] ? "." : "", key, f->name);
        /* Notes name keys as config.json spells them: "process.user.umask". */
        char sub[OCI_PATH_MAX];
        sub_path(sub, path, "%s%.64s", path[0] ? "." : "", key);
        struct json_object *renamed = json_object_get(value);
        if (rename_field_value(&renamed, f, sub, err) < 0) {
            json_object_put(renamed);
            return -1;
        }
        if (json_object_object_add(out, f->name, renamed) < 0)
            ctl_json_ok(NULL);
    }
    json_object_put(*v);
    *v = take_ptr(out);
    return 0;
}

char *oci_config_to_kata_json(const char *text, size_t len, struct ka_error *err)
{
    cleanup_json struct json_object *root = NULL;
    if (ctl_json_parse(text, len, &root, err) < 0)
        return NULL;
    if (!json_object_is_type(root, json_type_object)) {
        ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "expected an object, got %s",
                            ctl_json_type_name(root));
        return NULL;
    }
    if (rename_message(&root, &grpc__spec__descriptor, "", err) < 0)
        return NULL;
    return ctl_json_write(root, false);
}

/* ---- the runtime's changes ------------------------------------------------ */

static void set_string(char **field, const char *value)
{
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = value[0] ? ka_xstrdup(value) : (char *)protobuf_c_empty_string;
}

#define FREE_MSG(p)                                             \
    do {                                                        \
        if (p)                                                  \
            protobuf_c_message_free_unpacked(&(p)->base, NULL); \
        (p) = NULL;                                             \
    } while (0)

static void namespaces_rewrite(Grpc__Linux *l, bool *sandbox_pidns)
{
    size_t keep = 0;
    for (size_t i = 0; i < l->n_namespaces; i++) {
        Grpc__LinuxNamespace *ns = l->namespaces[i];
        const char *type = ns->type ? ns->type : "";
        bool has_path = ns->path && ns->path[0];
        if (strcmp(type, "pid") == 0) {
            *sandbox_pidns = has_path;
            FREE_MSG(ns);
            continue;
        }
        if (strcmp(type, "network") == 0 || strcmp(type, "cgroup") == 0) {
            FREE_MSG(ns);
            continue;
        }
        set_string(&ns->path, "");
        l->namespaces[keep++] = ns;
    }
    l->n_namespaces = keep;
    if (keep == 0) {
        free(l->namespaces);
        l->namespaces = NULL;
    }
}

int oci_spec_apply_runtime_changes(Grpc__Spec *spec, const char *root_path, bool *sandbox_pidns,
                                   struct ka_error *err)
{
    (void)err;
    *sandbox_pidns = false;
    FREE_MSG(spec->hooks);
    Grpc__Linux *l = spec->linux;
    if (l) {
        FREE_MSG(l->seccomp);
        Grpc__LinuxResources *r = l->resources;
        if (r) {
            for (size_t i = 0; i < r->n_devices; i++)
                FREE_MSG(r->devices[i]);
            free(r->devices);
            r->devices = NULL;
            r->n_devices = 0;
            FREE_MSG(r->pids);
            FREE_MSG(r->blockio);
            FREE_MSG(r->network);
            if (r->cpu) {
                set_string(&r->cpu->cpus, "");
                set_string(&r->cpu->mems, "");
            }
        }
        namespaces_rewrite(l, sandbox_pidns);
    }
    if (root_path) {
        if (!spec->root) {
            spec->root = ka_xmalloc(sizeof(*spec->root));
            grpc__root__init(spec->root);
        }
        set_string(&spec->root->path, root_path);
    }
    return 0;
}

/* ---- the bundle ----------------------------------------------------------- */

static char *read_config(const char *path, size_t *len, struct ka_error *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ka_error_set(err, errno, "open %s", path), NULL;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ka_error_set(err, errno, "stat %s", path), NULL;
    if (!S_ISREG(st.st_mode))
        return ka_error_set(err, 0, "%s is not a regular file", path), NULL;
    if (st.st_size > (off_t)OCI_MAX_CONFIG_SIZE)
        return ka_error_set(err, 0, "%s is larger than %u bytes", path, OCI_MAX_CONFIG_SIZE), NULL;
    /* Read to EOF (the size may change under us), still within the cap. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    cleanup_free char *buf = ka_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap > OCI_MAX_CONFIG_SIZE)
                return ka_error_set(err, 0, "%s is larger than %u bytes", path,
                                    OCI_MAX_CONFIG_SIZE),
                       NULL;
            cap *= 2;
            buf = ka_xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ka_error_set(err, errno, "read %s", path), NULL;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > OCI_MAX_CONFIG_SIZE)
        return ka_error_set(err, 0, "%s is larger than %u bytes", path, OCI_MAX_CONFIG_SIZE), NULL;
    *len = n;
    return take_ptr(buf);
}

int oci_bundle_to_spec(const char *bundle_dir, const char *guest_rootfs_or_null, Grpc__Spec **out,
                       bool *sandbox_pidns, struct ka_error *err)
{
    *out = NULL;
    *sandbox_pidns = false;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/config.json", bundle_dir) >= (int)sizeof(path))
        return ka_error_set(err, ENAMETOOLONG, "bundle %.64s...", bundle_dir);
    size_t len = 0;
    cleanup_free char *text = read_config(path, &len, err);
    if (!text)
        return -1;
    cleanup_free char *json = oci_config_to_kata_json(text, len, err);
    if (!json)
        return ka_error_wrap(err, "%s", path);
    ProtobufCMessage *msg = NULL;
    if (pbjson_to_message(&grpc__spec__descriptor, json, strlen(json), &msg, err) < 0)
        return ka_error_wrap(err, "%s", path);
    Grpc__Spec *spec = (Grpc__Spec *)msg;

    char root[PATH_MAX];
    const char *root_path = guest_rootfs_or_null;
    if (!root_path) {
        const char *rel = spec->root && spec->root->path ? spec->root->path : "";
        char joined[PATH_MAX];
        int n = rel[0] == '/' ? snprintf(joined, sizeof(joined), "%s", rel)
                              : snprintf(joined, sizeof(joined), "%s/%s", bundle_dir, rel);
        int rc = 0;
        if (rel[0] == '\0')
            rc = ka_error_set(err, 0, "%s: root.path is not set (or use --guest-rootfs)", path);
        else if (n >= (int)sizeof(joined))
            rc = ka_error_set(err, ENAMETOOLONG, "%s: root.path", path);
        else if (!realpath(joined, root))
            rc = ka_error_set(err, errno, "%s: root.path %s", path, joined);
        if (rc < 0) {
            protobuf_c_message_free_unpacked(msg, NULL);
            return rc;
        }
        root_path = root;
    }
    if (oci_spec_apply_runtime_changes(spec, root_path, sandbox_pidns, err) < 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return -1;
    }
    *out = spec;
    return 0;
}
