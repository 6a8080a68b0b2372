/*
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and
 * 2) that an L4 load balancer puts in front of a connection to say whom it
 * carries: a pure parser, bytes in and a result out, with no I/O, so that
 * the accept path (proxy-pp.c), the unit suite and the fuzzer share it.
 *
 * The caller hands the bytes received so far, from the first byte of the
 * connection; the answer is one of:
 *   PROXYPROTO_NEED_MORE  every byte given can still begin a valid header
 *                         (so a caller may consume them all), read more;
 *   PROXYPROTO_ERROR      not a header, or a malformed or oversized one;
 *   PROXYPROTO_DONE       a whole header of res->len bytes: whatever follows
 *                         is the client's own stream (HTTP, or a TLS
 *                         ClientHello).
 * Version 1 is the text line "PROXY TCP4|TCP6|UNKNOWN ...\r\n" (at most
 * 107 bytes), parsed strictly: single spaces, canonical addresses, decimal
 * ports 0-65535 without leading zeros. Version 2 is binary: LOCAL or PROXY
 * over TCP on IPv4 or IPv6, its TLVs checked for framing and skipped; a
 * header longer than PROXYPROTO_MAX is refused rather than buffered.
 */
#ifndef ZKR_PROXYPROTO_H
#define ZKR_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXYPROTO_V1_MAX 107   /* the longest v1 line, CRLF included */
/* The longest v2 header we accept: its 16 fixed bytes, the addresses and
 * room for the TLVs load balancers send (a few hundred bytes at most). */
#define PROXYPROTO_MAX 4096

enum proxyproto_status {
	PROXYPROTO_NEED_MORE,
	PROXYPROTO_ERROR,
	PROXYPROTO_DONE,
};

struct proxyproto_result {
	size_t len;                /* DONE: bytes of the header */
	int version;               /* 1 or 2, once known */
	/* DONE: true when the header names the client (TCP over IPv4 or
	 * IPv6): src and dst are then sockaddr_in or sockaddr_in6. False
	 * for v2 LOCAL, v1 UNKNOWN and v2 families or transports we do not
	 * route (UNSPEC, UNIX, UDP): the socket's own addresses stand. */
	bool has_addr;
	struct sockaddr_storage src, dst;
	const char *why;           /* ERROR: a short reason, static text */
};

/* Parses the start of a connection (see above). `res` is always filled. */
enum proxyproto_status proxyproto_parse(const uint8_t *buf, size_t len,
					struct proxyproto_result *res);

#endif
