#ifndef KA_CORE_VERSION_H
#define KA_CORE_VERSION_H

/* KA_VERSION comes from CMake (project version); the fallback keeps editors happy. */
#ifndef KA_VERSION
#define KA_VERSION "0.0.0-dev"
#endif

/* What Health.Version reports as grpc_version, matching the upstream agent's API version. */
#define KA_API_VERSION "0.0.1"

#endif
