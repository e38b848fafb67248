/* One error type for the whole agent.
 *
 * Functions that can fail return a negative value and fill a struct ka_error.
 * Each layer on the way up adds context with ka_error_wrap(), so the message
 * reads outermost first: "mount storage kataShared: mount virtiofs on /x: No such device".
 * Only the RPC layer turns an error into a ttrpc status code (ka_error_status()).
 */
#ifndef KA_CORE_ERROR_H
#define KA_CORE_ERROR_H

#include <stdarg.h>

#define KA_ERROR_MSG_MAX 1024

/* gRPC status codes we answer with (google.rpc.Code). */
enum ka_status {
    KA_STATUS_OK = 0,
    KA_STATUS_UNKNOWN = 2,
    KA_STATUS_INVALID_ARGUMENT = 3,
    KA_STATUS_DEADLINE_EXCEEDED = 4,
    KA_STATUS_NOT_FOUND = 5,
    KA_STATUS_ALREADY_EXISTS = 6,
    KA_STATUS_PERMISSION_DENIED = 7,
    KA_STATUS_RESOURCE_EXHAUSTED = 8,
    KA_STATUS_FAILED_PRECONDITION = 9,
    KA_STATUS_UNIMPLEMENTED = 12,
    KA_STATUS_INTERNAL = 13,
    KA_STATUS_UNAVAILABLE = 14,
};

struct ka_error {
    int errnum;            /* errno value behind the failure, 0 when none */
    enum ka_status status; /* 0 = let the RPC layer choose (INTERNAL) */
    char msg[KA_ERROR_MSG_MAX];
};

/* Set err (if non-NULL) from a format; appends ": strerror(errnum)" when errnum != 0.
 * Returns -errnum, or -1 when errnum is 0, so callers can `return ka_error_set(...)`. */
int ka_error_set(struct ka_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ka_error_set() but also records the status code the RPC layer should answer. */
int ka_error_status_set(struct ka_error *err, enum ka_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix context to an error already set: "context: previous message". Returns the
 * same negative value ka_error_set() returned for it. */
int ka_error_wrap(struct ka_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The status an RPC answer should carry for this error (INTERNAL unless set). */
enum ka_status ka_error_status(const struct ka_error *err);

void ka_error_clear(struct ka_error *err);

/* "NOT_FOUND" for 5 and so on (google.rpc.Code names); "?" when out of range. */
const char *ka_status_name(int code);

#endif
