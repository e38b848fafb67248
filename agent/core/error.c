#include "core/error.h"

#include <stdio.h>
#include <string.h>

static void error_vformat(struct ka_error *err, int errnum, const char *fmt, va_list ap)
{
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (n < 0)
        err->msg[0] = '\0';
    if (errnum != 0) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(errnum));
    }
}

int ka_error_set(struct ka_error *err, int errnum, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->errnum = errnum;
        err->status = KA_STATUS_OK;
        error_vformat(err, errnum, fmt, ap);
        va_end(ap);
    }
    return errnum > 0 ? -errnum : -1;
}

int ka_error_status_set(struct ka_error *err, enum ka_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->errnum = 0;
        err->status = status;
        error_vformat(err, 0, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ka_error_wrap(struct ka_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[KA_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t plen = strnlen(prefix, sizeof(prefix) - 3);
    memcpy(prefix + plen, ": ", 3);
    plen += 2;
    /* Shift the old message right, dropping its tail if the whole would not fit. */
    size_t old = strnlen(err->msg, sizeof(err->msg) - 1);
    if (plen + old >= sizeof(err->msg))
        old = sizeof(err->msg) - 1 - plen;
    memmove(err->msg + plen, err->msg, old);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + old] = '\0';
    return err->errnum > 0 ? -err->errnum : -1;
}

enum ka_status ka_error_status(const struct ka_error *err)
{
    return err->status != KA_STATUS_OK ? err->status : KA_STATUS_INTERNAL;
}

void ka_error_clear(struct ka_error *err)
{
    err->errnum = 0;
    err->status = KA_STATUS_OK;
    err->msg[0] = '\0';
}

const char *ka_status_name(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    return code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]) ? names[code] : "?";
}
