/*
 * What zkrouterd needs from the registry, behind one object: a ZooKeeper
 * session, the watched table of apps (published as route_table snapshots)
 * and this router's own ephemeral /routers/<node-id> node.
 *
 * on_table runs inside the event loop each time a new snapshot is
 * complete; the callee takes its own reference if it keeps the table.
 * While ZooKeeper is unreachable nothing is published and the last table
 * stays in force (fail static).
 *
 * With on_cert_add set, the router also watches /certs (certwatch.h) and
 * reports each TLS certificate record as it comes and goes, in the loop.
 */
#ifndef ZKR_ROUTER_H
#define ZKR_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "registry/certwatch.h"
#include "registry/table.h"
#include "registry/ticketkeys.h"

struct zkr_router_opts {
	const char *connect;       /* ZooKeeper connect string, with optional /chroot */
	const char *auth;          /* digest "user:password", or NULL */
	int session_timeout_ms;
	const char *node_id;
	const char *const *listen; /* advertised client addresses */
	size_t n_listen;
	const char *const *tls_listen; /* advertised HTTPS client addresses */
	size_t n_tls_listen;
	const char *admin;         /* admin address, or NULL */
	const char *version;
	/* Certificates from /certs; NULL: /certs is not watched (a router
	 * without TLS listeners has no use for private keys). */
	zkr_cert_add_cb on_cert_add;
	zkr_cert_remove_cb on_cert_remove;
	void *cert_arg;
	/* Session-ticket keys (ticketkeys.h): handed to on_ticket_keys at
	 * start and on every change; NULL: the router has no TLS listener
	 * and does not take part. */
	zkr_ticketkeys_cb on_ticket_keys;
	void *ticket_keys_arg;
	unsigned ticket_rotate_s;
	/* false: /routers/<node-id> reports each table as it is read. true:
	 * only once the caller says it serves it (zkr_router_serving), e.g.
	 * after every worker thread swapped it in. */
	bool report_when_serving;
};

struct zkr_router;

typedef void (*zkr_router_table_cb)(struct route_table *t, void *arg);

struct zkr_router *zkr_router_new(struct event_base *base, const struct zkr_router_opts *opts,
				  zkr_router_table_cb on_table, void *arg, char *why, size_t whylen);

/* Removes /routers/<node-id> now (start of a drain); the session stays. */
void zkr_router_leave(struct zkr_router *r);

/* With report_when_serving: `t` (one that on_table got) is in service;
 * /routers/<node-id> now reports its generation and digest. */
void zkr_router_serving(struct zkr_router *r, const struct route_table *t);

/* Closes the session (which also removes the node) and frees everything. */
void zkr_router_free(struct zkr_router *r);

/* True once a complete table has been published at least once. */
bool zkr_router_has_table(const struct zkr_router *r);
bool zkr_router_connected(const struct zkr_router *r);

/* True while connected with a complete, current read published: the table
 * in force is ZooKeeper's view as of now. */
bool zkr_router_synced(const struct zkr_router *r);

/* The session as /metrics shows it. */
struct zkr_router_zk_stats {
	const char *state;         /* zkr_session_state() */
	uint64_t sessions;         /* sessions made: the first, and one after each expiry */
	uint64_t expirations;      /* sessions lost (expired, refused) */
	uint64_t disconnects;      /* connections lost (the session may survive) */
	uint64_t reconnects;       /* connections regained on the same session */
	/* Since the table in force was last known to be ZooKeeper's view:
	 * 0 while connected and synced; since start when it never was. */
	uint64_t unconfirmed_ms;
};
void zkr_router_zk_stats(const struct zkr_router *r, struct zkr_router_zk_stats *out);

/* Counters of the certificate watcher; all zero when /certs is not watched. */
void zkr_router_cert_stats(const struct zkr_router *r, struct zkr_certwatch_stats *out);
/* The ticket keys' rotation period (SIGHUP); nothing without on_ticket_keys. */
void zkr_router_set_ticket_rotate_s(struct zkr_router *r, unsigned rotate_s);

/* False when the router takes no part in the ticket keys. */
bool zkr_router_ticket_stats(const struct zkr_router *r, struct zkr_ticketkeys_stats *out);

/* The ZooKeeper chroot in use ("/zkrouter" by default). */
const char *zkr_router_chroot(const struct zkr_router *r);

#endif
