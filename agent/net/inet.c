#include "net/inet.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

int ka_inet_parse_plen(const char *s, int family, uint8_t *out)
{
    unsigned max = ka_inet_maxlen(family);
    unsigned v = 0;
    size_t n = 0;
    if (max == 0 || !s)
        return -1;
    for (; s[n]; n++) {
        if (n >= 3 || s[n] < '0' || s[n] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[n] - '0');
    }
    if (n == 0 || v > max)
        return -1;
    *out = (uint8_t)v;
    return 0;
}

int ka_inet_parse(const char *s, int family, bool allow_prefix, struct ka_inet *out)
{
    char text[KA_INET_TEXT_MAX + 1];
    if (!s)
        return -1;
    size_t len = strnlen(s, sizeof(text));
    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len + 1);
    char *slash = strchr(text, '/');
    if (slash) {
        if (!allow_prefix)
            return -1;
        *slash = '\0';
    }
    struct ka_inet a = {0};
    if ((family == AF_UNSPEC || family == AF_INET) && inet_pton(AF_INET, text, a.addr) == 1)
        a.family = AF_INET;
    else if ((family == AF_UNSPEC || family == AF_INET6) && inet_pton(AF_INET6, text, a.addr) == 1)
        a.family = AF_INET6;
    else
        return -1;
    a.plen = (uint8_t)ka_inet_maxlen(a.family);
    if (slash && ka_inet_parse_plen(slash + 1, a.family, &a.plen) < 0)
        return -1;
    *out = a;
    return 0;
}

const char *ka_inet_format(const struct ka_inet *a, bool with_prefix, char *buf, size_t size)
{
    char text[INET6_ADDRSTRLEN];
    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (ka_inet_size(a->family) == 0 || !inet_ntop(a->family, a->addr, text, sizeof(text)))
        return buf;
    if (with_prefix)
        snprintf(buf, size, "%s/%u", text, a->plen);
    else
        snprintf(buf, size, "%s", text);
    return buf;
}

int ka_inet_from_bytes(struct ka_inet *out, int family, const void *bytes, size_t len,
                       unsigned plen)
{
    unsigned size = ka_inet_size(family);
    if (size == 0 || len != size || plen > size * 8)
        return -1;
    memset(out, 0, sizeof(*out));
    out->family = (uint8_t)family;
    out->plen = (uint8_t)plen;
    memcpy(out->addr, bytes, size);
    return 0;
}

/* The first plen bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned plen)
{
    unsigned whole = plen / 8, rest = plen % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

bool ka_inet_contains(const struct ka_inet *net, const struct ka_inet *ip)
{
    return net->family != 0 && net->family == ip->family &&
           net->plen <= ka_inet_maxlen(net->family) && prefix_equal(net->addr, ip->addr, net->plen);
}

bool ka_inet_same_addr(const struct ka_inet *a, const struct ka_inet *b)
{
    return a->family != 0 && a->family == b->family &&
           memcmp(a->addr, b->addr, ka_inet_size(a->family)) == 0;
}

bool ka_inet_host_bits_set(const struct ka_inet *net)
{
    unsigned size = ka_inet_size(net->family);
    for (unsigned bit = net->plen; bit < size * 8; bit++)
        if (net->addr[bit / 8] & (0x80u >> (bit % 8)))
            return true;
    return false;
}

bool ka_inet_is_v6_link_local(const struct ka_inet *a)
{
    return a->family == AF_INET6 && a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int ka_hwaddr_parse(const char *s, uint8_t *out, size_t *len)
{
    size_t n = 0;
    char sep = 0;
    if (!s || !*s)
        return -1;
    for (;;) {
        int hi = hexval(*s);
        if (hi < 0)
            return -1;
        s++;
        int v = hi;
        int lo = hexval(*s);
        if (lo >= 0) {
            v = hi * 16 + lo;
            s++;
        }
        if (n == KA_HWADDR_MAX)
            return -1;
        out[n++] = (uint8_t)v;
        if (*s == '\0')
            break;
        if (*s != ':' && *s != '-')
            return -1;
        if (sep && *s != sep)
            return -1;
        sep = *s++;
    }
    *len = n;
    return 0;
}

int ka_mac_parse(const char *s, uint8_t mac[KA_MAC_LEN])
{
    uint8_t buf[KA_HWADDR_MAX];
    size_t len;
    if (ka_hwaddr_parse(s, buf, &len) < 0 || len != KA_MAC_LEN)
        return -1;
    memcpy(mac, buf, KA_MAC_LEN);
    return 0;
}

const char *ka_hwaddr_format(const uint8_t *a, size_t len, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (size == 0)
        return buf;
    for (size_t i = 0; i < len && o + 3 < size; i++) {
        if (i)
            buf[o++] = ':';
        buf[o++] = hex[a[i] >> 4];
        buf[o++] = hex[a[i] & 15];
    }
    buf[o] = '\0';
    return buf;
}

bool ka_ifname_valid(const char *name)
{
    size_t len = strnlen(name, KA_IFNAMSIZ);
    if (len == 0 || len >= KA_IFNAMSIZ || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
            return false;
    return true;
}
