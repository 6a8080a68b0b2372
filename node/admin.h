/*
 * The admin endpoint of zkrouterd, on libevent's evhttp, by default on a
 * loopback address:
 *
 *   GET /healthz   200 "ok" once a routing table is loaded and while not
 *                  draining; 503 with the reason otherwise. Load balancers
 *                  and DNS health checkers poll this. While the table comes
 *                  from the state file, lines "table_from_disk: 1" and
 *                  "table_age_seconds: N" follow the "ok".
 *   GET /routes    JSON: node_id, generation, digest, and every app with
 *                  its config and instances, each with the proxy's runtime
 *                  state (ejection, outstanding requests, health).
 *   GET /metrics   Prometheus text format: requests by status class, bytes,
 *                  retries, a latency histogram, connections, requests in
 *                  flight, table generation, apps, instances, ejections,
 *                  whether the table comes from disk, state-file writes,
 *                  each TLS certificate's not-after, the router's own
 *                  errors by code, per-app series of the busiest apps,
 *                  the ZooKeeper session, and the process_* series.
 *   GET /certs     JSON: the TLS certificates in service (tls.h), each with
 *                  its name, source, DNS names, issuer, not-after, days
 *                  left, key type and whether it is the default.
 */
#ifndef ZKR_ADMIN_H
#define ZKR_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>

struct admin;
struct workers;
struct zkr_router;
struct route_table;

/* Listens on "ADDR:PORT" ("[V6]:PORT"); false with a reason on failure.
 * /routes and /metrics gather the runtime state and counters of the
 * workers `ws` (on their loops, workers_call) and answer once all did:
 * call workers_stop before admin_free. */
struct admin *admin_new(struct event_base *base, const char *addr_port, struct workers *ws,
			const char *node_id, char *why, size_t whylen);

/* /metrics gives series of their own to the `max` busiest apps at most
 * (the rest summed as app="_other"); 0: no per-app series. False on
 * allocation failure (the previous setting stays). */
bool admin_set_app_series(struct admin *a, unsigned max);

/* Lets /healthz and /metrics report the ZooKeeper connection (optional). */
void admin_set_router(struct admin *a, struct zkr_router *router);

/* Lets /metrics report the session tickets and their keys (NULL: no TLS). */
struct tls_tickets;
void admin_set_tls_tickets(struct admin *a, struct tls_tickets *t);

/* The table every worker serves now (a reference is taken; NULL: none):
 * /healthz is ready, and /routes and /metrics report it, only once every
 * worker swapped it in. */
void admin_set_table(struct admin *a, struct route_table *t);

/* Where the table in use comes from: the state file written at
 * written_at_ms (Unix time), or ZooKeeper (from_disk false). */
void admin_set_table_source(struct admin *a, bool from_disk, uint64_t written_at_ms);

/* Lets /routes and /metrics report the state file (optional). */
struct statefile;
void admin_set_statefile(struct admin *a, struct statefile *sf);

/* Lets /certs and /metrics report the TLS certificates (optional). */
struct tls_store;
void admin_set_tls(struct admin *a, struct tls_store *tls);

/* SIGTERM: /healthz answers 503 "draining" from now on. */
void admin_set_draining(struct admin *a, bool draining);

void admin_free(struct admin *a);

/* Appends s as a JSON string literal (quoted, escaped; bytes that are not
 * valid UTF-8 become \u00XX). Exposed for the tests. */
void admin_json_string(struct evbuffer *out, const char *s);

#endif
