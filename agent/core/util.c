#include "core/util.h"

#include <string.h>

static void __attribute__((noreturn)) out_of_memory(size_t size)
{
    /* Nothing sane can be done without memory; say so on stderr and abort. */
    fprintf(stderr, "kata-agent: out of memory allocating %zu bytes\n", size);
    abort();
}

void *ka_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *ka_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *ka_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        out_of_memory(size);
    return q;
}

char *ka_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        out_of_memory(strlen(s) + 1);
    return p;
}

char *ka_xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p)
        out_of_memory(n + 1);
    return p;
}
