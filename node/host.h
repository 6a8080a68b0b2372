/*
 * Host header normalisation: the one place that decides what a Host (or
 * the authority of an absolute-form target) means for routing.
 *
 * "Example.COM.:8080" becomes "example.com"; "[::1]:80" becomes "::1"
 * (canonical text form, no brackets); anything that is neither a DNS name
 * nor an IP literal is refused, so the routing table is only ever asked
 * about well-formed names.
 */
#ifndef ZKR_HOST_H
#define ZKR_HOST_H

#include <stdbool.h>
#include <stddef.h>

/* The longest normalised host: a DNS name (253) or IPv6 text (45). */
#define HOST_MAX 253

/*
 * Lower-cases, strips ":port" (digits only, at most 65535; an empty port is
 * allowed as RFC 3986 does) and one trailing dot, and validates the rest as
 * a DNS name (labels of 1-63 bytes of [a-z0-9-_], at most 253 bytes in all)
 * or as an IPv4 / bracketed IPv6 literal. Writes a NUL-terminated result to
 * out (outsz >= HOST_MAX + 1 always suffices) and its length to *outlen.
 * Returns false for anything invalid, empty or too long; out is then "".
 */
bool host_normalize(const char *in, size_t len, char *out, size_t outsz, size_t *outlen);

#endif
