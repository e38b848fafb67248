/* Kata's protobuf OCI spec (oci.proto) → the validated internal spec (spec.h).
 *
 * Every count the host sends is bounded before anything is allocated for it,
 * and the result is validated (ka_spec_validate / ka_process_validate), so a
 * caller gets either one validated struct or an error. Errors caused by the
 * request carry KA_STATUS_INVALID_ARGUMENT and name the offending item.
 *
 * What is converted, and how proto3's "absent = zero" is read:
 *  - Process: args, env, cwd ("" → "/"), terminal, ConsoleSize, User (uid, gid,
 *    additional gids, Username; "" → NULL), Capabilities (absent → caps.present
 *    false), Rlimits ("RLIMIT_*"), NoNewPrivileges, OOMScoreAdj (0 → not set,
 *    as Kata's own proto→OCI conversion does), umask 0022 (not in the proto).
 *  - Root (path, readonly), Hostname ("" → NULL), Mounts (options split into
 *    MS_* flags, propagation and data), Linux: Namespaces, Devices ('u' → 'c',
 *    FileMode 0 → not given), Sysctl, RootfsPropagation ("" → rslave),
 *    MaskedPaths, ReadonlyPaths, CgroupsPath ("" → NULL).
 *  - Resources (ka_resources_from_proto: zero is "not set", OCI's absent device
 *    major/minor 0:0 is the wildcard, empty device type 'a', empty access "rwm"),
 *    Seccomp (actions, operators and flags by their OCI names; an unknown one is
 *    INVALID_ARGUMENT; errnoRet kept apart from 0 through its oneof).
 *  - Not held by struct ka_spec, so ignored here: Version, Hooks (the runtime
 *    strips them), Annotations (except terminationMessagePath), ApparmorProfile,
 *    SelinuxLabel, MountLabel, IntelRdt. UID/GID mappings are refused: there is
 *    no user namespace support.
 *
 * A capability name must look like "CAP_[A-Z0-9_]+"; one libcap does not know
 * (newer than the library) or above bit 63 is skipped with a debug log line,
 * as the 3.3.0 agent and crun do and as the runtime spec asks ("MUST log a
 * warning ... SHOULD NOT fail"). Any other malformed name is an error.
 *
 * Input is taken as protobuf-c unpacks it: repeated message elements are
 * non-NULL; NULL strings are read as "". */
#ifndef KA_RPC_OCI_CONVERT_H
#define KA_RPC_OCI_CONVERT_H

#include "container/spec.h"
#include "core/error.h"

#include "oci.pb-c.h"

/* On success *out is a new spec (free with ka_spec_free). On failure *out is
 * NULL and err says why. */
int ka_spec_from_proto(const Grpc__Spec *in, struct ka_spec **out, struct ka_error *err);

/* Fills *out (overwritten; free its contents with ka_process_free). On failure
 * *out is left zeroed. Used for ExecProcess. */
int ka_process_from_proto(const Grpc__Process *in, struct ka_process *out, struct ka_error *err);

/* Linux.Resources (also UpdateContainer's); NULL gives an empty set. Fills *out
 * (free its contents with ka_resources_free); on failure *out is left empty. */
int ka_resources_from_proto(const Grpc__LinuxResources *in, struct ka_resources *out,
                            struct ka_error *err);

#endif
