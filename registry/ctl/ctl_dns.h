/*
 * zkrouterctl dns: the A/AAAA records that put the live routers behind a
 * name, computed from /routers (ctl_routers.c), and `dns --watch`, which
 * keeps a DNS server's copy of them current (ctl_dnswatch.c).
 */
#ifndef ZKR_CTL_DNS_H
#define ZKR_CTL_DNS_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/ctl/ctl.h"

struct dns_rr {
	int family;                /* AF_INET or AF_INET6 */
	char addr[INET6_ADDRSTRLEN];
	unsigned char bin[16];
};

/*
 * The records of the live routers' client addresses, each once, sorted
 * (A before AAAA). With a watcher, the reads leave watches on /routers and
 * on each router's node. *out is malloc'd; *live counts the routers with a
 * valid record. Returns a CTL_EXIT_* code.
 */
int ctl_dns_records(struct ctl *c, watcher_fn w, void *ctx, bool warn,
		    struct dns_rr **out, size_t *n, int *live);
/* Two sorted sets hold the same records. */
bool ctl_dns_same(const struct dns_rr *a, size_t na, const struct dns_rr *b, size_t nb);

struct dns_watch_opts {
	const char *zone;          /* checked, no trailing dot */
	const char *owner;         /* absolute, with the trailing dot */
	uint64_t ttl;
	const char *server;        /* the primary that accepts the updates */
	int port;
	const char *key_file;      /* TSIG key for nsupdate -k, or NULL */
	const char *nsupdate;      /* program to run */
};

/* Runs until SIGINT/SIGTERM; returns a CTL_EXIT_* code. */
int ctl_dns_watch(struct ctl *c, const struct dns_watch_opts *o);

#endif
