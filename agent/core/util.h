/* Ownership helpers: cleanup attributes for fds, heap memory and DIR*, and
 * take_ptr()/take_fd() to hand ownership out of a scope explicitly. */
#ifndef KA_CORE_UTIL_H
#define KA_CORE_UTIL_H

#include <stddef.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void ka_freep(void *p)
{
    free(*(void **)p);
}

static inline void ka_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

static inline void ka_closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}

static inline void ka_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

#define cleanup_free __attribute__((cleanup(ka_freep)))
#define cleanup_close __attribute__((cleanup(ka_closep)))
#define cleanup_dir __attribute__((cleanup(ka_closedirp)))
#define cleanup_file __attribute__((cleanup(ka_fclosep)))

/* Hand a pointer out of a cleanup scope: returns it and leaves NULL behind. */
#define take_ptr(p)                  \
    ({                               \
        __typeof__(p) _taken_ = (p); \
        (p) = NULL;                  \
        _taken_;                     \
    })

/* Hand an fd out of a cleanup scope: returns it and leaves -1 behind. */
#define take_fd(fd)            \
    ({                         \
        int _taken_fd_ = (fd); \
        (fd) = -1;             \
        _taken_fd_;            \
    })

#define KA_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The struct that holds `ptr` as its `member`. */
#define ka_container_of(ptr, type, member) ((type *)(((char *)(ptr)) - offsetof(type, member)))

/* Allocation failure is not recoverable in a meaningful way: abort loudly.
 * Every allocation whose size the host controls is bounded before it is made. */
void *ka_xmalloc(size_t size);
void *ka_xcalloc(size_t n, size_t size);
void *ka_xrealloc(void *p, size_t size);
char *ka_xstrdup(const char *s);
char *ka_xstrndup(const char *s, size_t n);

#endif
