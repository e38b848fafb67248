/* The mem-agent's parsers and decisions: pure functions over text and numbers. */
#include "memagent/memagent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ka_psi_parse_some_total(const char *text, uint64_t *total_us)
{
    /* "some avg10=0.00 avg60=0.00 avg300=0.00 total=37820" */
    if (strncmp(text, "some ", 5) != 0)
        return -EINVAL;
    const char *eol = strchr(text, '\n');
    const char *t = strstr(text, " total=");
    if (!t || (eol && t > eol))
        return -EINVAL;
    t += 7;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(t, &end, 10);
    if (end == t || errno != 0 || (*end != '\0' && *end != '\n' && *end != ' '))
        return -EINVAL;
    *total_us = v;
    return 0;
}

uint64_t ka_psi_period_percent(struct ka_psi_period *p, uint64_t total_us, uint64_t now_us)
{
    uint64_t percent = 0;
    if (p->last_total_us != 0 && p->last_total_us < total_us && p->last_sample_us < now_us) {
        uint64_t elapsed = now_us - p->last_sample_us;
        percent = (total_us - p->last_total_us) * 100 / elapsed;
    }
    p->last_total_us = total_us;
    p->last_sample_us = now_us;
    return percent;
}

/* The number after `key` at the start of a line, skipping `sep` and blanks. */
static int line_value(const char *text, const char *key, uint64_t *value)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, klen) != 0)
            continue;
        const char *v = line + klen;
        if (*v != ' ' && *v != '\t')
            continue;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (end == v || errno != 0)
            return -EINVAL;
        *value = n;
        return 0;
    }
    return -ENOENT;
}

int ka_meminfo_get(const char *text, const char *key, uint64_t *value)
{
    char k[64];
    if (snprintf(k, sizeof(k), "%s:", key) >= (int)sizeof(k))
        return -EINVAL;
    return line_value(text, k, value);
}

int ka_memstat_get(const char *text, const char *key, uint64_t *value)
{
    return line_value(text, key, value);
}

uint64_t ka_pagetypeinfo_free_movable(const char *text, unsigned order)
{
    uint64_t total = 0;
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        /* "Node    0, zone   Normal, type      Movable    699   2806 ..." */
        const char *m = strstr(line, " Movable ");
        const char *eol = strchr(line, '\n');
        if (!m || (eol && m > eol) || strncmp(line, "Node", 4) != 0)
            continue;
        const char *p = m + 9;
        for (unsigned o = 0; o < order && o < 64; o++) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(p, &end, 10);
            if (end == p || errno != 0 || (eol && end > eol))
                break;
            /* Saturate: a hostile or broken file must not wrap the sum. */
            uint64_t pages = (o < 64 && n <= (UINT64_MAX >> o)) ? (uint64_t)n << o : UINT64_MAX;
            total = (UINT64_MAX - total < pages) ? UINT64_MAX : total + pages;
            p = end;
        }
    }
    return total;
}

bool ka_compact_threshold_reached(const struct ka_compact_config *c,
                                  const struct ka_compact_state *s, uint64_t memfree_kb,
                                  uint64_t free_movable)
{
    /* threshold is in pages; upstream compares it to kB as threshold << 2 (4 KiB pages). */
    uint64_t drop_kb =
        c->compact_threshold > (UINT64_MAX >> 2) ? UINT64_MAX : c->compact_threshold << 2;
    if (memfree_kb <= UINT64_MAX - drop_kb && s->prev_memfree_kb > memfree_kb + drop_kb)
        return true;
    uint64_t threshold = c->compact_threshold > UINT64_MAX - s->prev_free_movable
                             ? UINT64_MAX
                             : c->compact_threshold + s->prev_free_movable;
    return free_movable > threshold;
}

bool ka_compact_force_due(const struct ka_compact_config *c, const struct ka_compact_state *s)
{
    if (c->compact_force_times >= (uint64_t)INT64_MAX)
        return false;
    return s->force_counter >= c->compact_force_times;
}

unsigned ka_memcg_swappiness(const struct ka_memcg_config *c, bool swap_usable, uint64_t anon,
                             uint64_t file)
{
    if (!c->swap || !swap_usable || anon == 0)
        return 0;
    if (file == 0)
        return 200;
    /* 200 * anon / (anon + file), rounded; computed without overflow for any sizes. */
    long double r = 200.0L * (long double)anon / ((long double)anon + (long double)file);
    unsigned s = (unsigned)(r + 0.5L);
    return s > c->swappiness_max ? c->swappiness_max : s;
}

bool ka_memcg_config_apply(struct ka_memcg_config *cur, const struct ka_memcg_config *next)
{
    bool reset = cur->period_secs != next->period_secs || cur->disabled != next->disabled;
    *cur = *next;
    return reset;
}

bool ka_compact_config_apply(struct ka_compact_config *cur, const struct ka_compact_config *next)
{
    bool reset = cur->period_secs != next->period_secs || cur->disabled != next->disabled;
    *cur = *next;
    return reset;
}
