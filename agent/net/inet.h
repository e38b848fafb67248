/* IP addresses, prefixes and hardware addresses as the agent protocol writes them
 * ("10.0.0.2", "2001:db8::/64", "02:42:ac:11:00:02"): strict parsing of host
 * input, formatting for replies, and the prefix arithmetic route validation needs.
 * No netlink, no protobuf: unit-tested on its own. */
#ifndef KA_NET_INET_H
#define KA_NET_INET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address with a prefix length: a host address has the full length. */
struct ka_inet {
    uint8_t family; /* AF_INET or AF_INET6; 0 = none */
    uint8_t plen;   /* prefix length, 0..32 or 0..128 */
    uint8_t addr[16];
};

/* Room for any formatted address with "/128". */
#define KA_INET_STRLEN (INET6_ADDRSTRLEN + 4)
/* The longest address text we look at ("ffff:...:255.255.255.255/128" fits). */
#define KA_INET_TEXT_MAX 64

/* IFNAMSIZ without <net/if.h>, which clashes with <linux/if.h>. */
#define KA_IFNAMSIZ 16

#define KA_MAC_LEN 6
#define KA_HWADDR_MAX 32
/* Room for a formatted KA_HWADDR_MAX-byte hardware address. */
#define KA_HWADDR_STRLEN (KA_HWADDR_MAX * 3)

static inline unsigned ka_inet_size(int family)
{
    return family == AF_INET6 ? 16 : family == AF_INET ? 4 : 0;
}

static inline unsigned ka_inet_maxlen(int family)
{
    return ka_inet_size(family) * 8;
}

/* "ADDR", or "ADDR/LEN" when allow_prefix; a bare address gets the full length.
 * family AF_UNSPEC takes either. inet_pton rules: no zone ids, no spaces. 0 or -1. */
int ka_inet_parse(const char *s, int family, bool allow_prefix, struct ka_inet *out);

/* A prefix length written on its own ("24"): decimal digits only, at most the
 * family's length. 0 or -1. */
int ka_inet_parse_plen(const char *s, int family, uint8_t *out);

/* "10.0.0.2", or "10.0.0.0/24" with with_prefix. Returns buf ("" for family 0). */
const char *ka_inet_format(const struct ka_inet *a, bool with_prefix, char *buf, size_t size);

/* Fill an address from raw bytes (len must be 4 or 16 and match family). 0 or -1. */
int ka_inet_from_bytes(struct ka_inet *out, int family, const void *bytes, size_t len,
                       unsigned plen);

/* ip lies inside net (same family, first net->plen bits equal). */
bool ka_inet_contains(const struct ka_inet *net, const struct ka_inet *ip);
/* Same family and address bytes (prefix lengths ignored). */
bool ka_inet_same_addr(const struct ka_inet *a, const struct ka_inet *b);
/* Bits set past the prefix length ("10.0.0.5/24"). */
bool ka_inet_host_bits_set(const struct ka_inet *net);
/* fe80::/10 */
bool ka_inet_is_v6_link_local(const struct ka_inet *a);

/* "aa:bb:cc:dd:ee:ff": six groups of one or two hex digits separated by ':' (or
 * all by '-'), case-insensitive. 0 or -1. */
int ka_mac_parse(const char *s, uint8_t mac[KA_MAC_LEN]);
/* Parse a hardware address of 1..KA_HWADDR_MAX bytes in the same notation; *len is
 * set. Used for neighbour link-layer addresses, which need not be Ethernet's. */
int ka_hwaddr_parse(const char *s, uint8_t *out, size_t *len);
/* Lowercase "aa:bb:..." (Go's net.HardwareAddr and iproute2 spelling). */
const char *ka_hwaddr_format(const uint8_t *a, size_t len, char *buf, size_t size);

/* A name the kernel accepts for a link (dev_valid_name): 1..15 bytes, not "." or
 * "..", no '/', ':' or whitespace. */
bool ka_ifname_valid(const char *name);

#endif
