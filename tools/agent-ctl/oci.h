/* An OCI bundle's config.json as the Kata runtime would send it to the agent.
 *
 * The runtime decodes config.json with Go's encoding/json into Kata's OCI structs,
 * whose field names (Version, Process, ConsoleSize, UID, OOMScoreAdj, HostID...) are
 * what oci.proto keeps; Go matches JSON keys to them without regard to case. This
 * does the same through the protobuf-c descriptors: each object key of config.json
 * becomes the field of the message at that place whose name matches it ignoring
 * case and '_' ("ociVersion" is the one key renamed outright, to "Version"). Map
 * fields (annotations, sysctl) keep their keys. Keys with no field in Kata's proto
 * (process.user.umask, domainname, linux.personality, vm...) are dropped with a note
 * on stderr, as Go's decoder would ignore them.
 *
 * Then the changes the runtime makes before CreateContainer
 * (AGENT-PROTOCOL.md §3.3 "OCI spec changes by the runtime"):
 *  - Hooks and Linux.Seccomp removed;
 *  - Linux.Resources Devices, Pids, BlockIO and Network cleared, CPU Cpus and Mems
 *    emptied;
 *  - the network and cgroup namespaces removed, the pid namespace removed and turned
 *    into *sandbox_pidns (true when it had a path), every other namespace path
 *    emptied;
 *  - Root.Path set to guest_rootfs, or (NULL) to the absolute real path of the
 *    bundle's root.path (relative paths are relative to the bundle). */
#ifndef KA_AGENT_CTL_OCI_H
#define KA_AGENT_CTL_OCI_H

#include <stdbool.h>

#include "core/error.h"
#include "oci.pb-c.h"

/* config.json larger than this is refused (CreateContainer is capped at 4 MiB). */
#define OCI_MAX_CONFIG_SIZE (4u << 20)

/* Read bundle_dir/config.json into *out (free with protobuf_c_message_free_unpacked
 * (&(*out)->base, NULL)). Returns 0, or -1 with err set ("config.json: ..."). */
int oci_bundle_to_spec(const char *bundle_dir, const char *guest_rootfs_or_null, Grpc__Spec **out,
                       bool *sandbox_pidns, struct ka_error *err);

/* The first two steps alone, for tests and tools: config.json text (len bytes) to
 * JSON whose keys are Kata's proto field names (malloc'd, compact). Dropped keys
 * are noted on stderr. Returns NULL with err set on invalid JSON. */
char *oci_config_to_kata_json(const char *text, size_t len, struct ka_error *err);

/* The runtime's changes to a parsed spec (every step of oci_bundle_to_spec after the
 * parse). root_path, when non-NULL, replaces Root.Path as it is. */
int oci_spec_apply_runtime_changes(Grpc__Spec *spec, const char *root_path, bool *sandbox_pidns,
                                   struct ka_error *err);

#endif
