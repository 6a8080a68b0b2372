/*
 * The request path of zkrouterd: listeners, client connections, routing by
 * Host against the current route_table snapshot, balancing, backend
 * connections and the streaming of heads and bodies in both directions.
 *
 * main.c creates one proxy per event loop, opens its listeners, feeds it
 * table snapshots from the registry and asks it to stop listening on
 * SIGTERM; admin.c reads the counters and per-instance state below.
 * Everything runs inside the loop's thread.
 */
#ifndef ZKR_PROXY_H
#define ZKR_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "node/config.h"
#include "node/limits.h"
#include "registry/table.h"

struct proxy;
struct accesslog;
struct evdns_base;

/* A proxy on `base` with the limits of `cfg` (copied; the caller keeps
 * cfg). `log` may be NULL (no access log); the proxy does not own it. */
struct proxy *proxy_new(struct event_base *base, const struct zkr_config *cfg,
			struct accesslog *log);

/* Gives the proxy the process's shared state (node/shared.h), in place of
 * the one it made for itself: call right after proxy_new, on the thread
 * that will run the proxy's loop, before any listener or table. `sh`
 * must outlive the proxy. */
struct proxy_shared;
void proxy_set_shared(struct proxy *p, struct proxy_shared *sh);
struct proxy_shared *proxy_get_shared(struct proxy *p);

/* Opens a listener on "ADDR:PORT" ("[v6]:PORT" for IPv6). On failure
 * returns false with a reason in `why`. May be called more than once.
 * With `proxy_header`, every connection must begin with a PROXY protocol
 * header (v1 or v2, proxyproto.h), read before anything else: the client
 * address it names is the one forwarded and logged. A connection whose
 * header is missing, malformed or late (head_timeout_ms) is closed. */
bool proxy_listen(struct proxy *p, const char *addr_port, bool proxy_header, char *why,
		  size_t whylen) __attribute__((warn_unused_result));

/* Before the workers' listeners (each with SO_REUSEPORT): false with a
 * reason when another socket holds "ADDR:PORT" already. */
bool proxy_listen_probe(const char *addr_port, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/* Opens a TLS listener on "ADDR:PORT" serving the certificates of `store`
 * (tls.h: chosen by SNI per handshake; the store outlives the proxy). Requests arriving there
 * are forwarded with X-Forwarded-Proto: https; apps with redirect_https
 * get plain-HTTP requests redirected to the first TLS listener's port.
 * `proxy_header` as for proxy_listen: the header precedes the handshake. */
struct tls_store;
bool proxy_listen_tls(struct proxy *p, const char *addr_port, bool proxy_header,
		      struct tls_store *store, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/* Publishes a new snapshot for new requests; takes its own reference.
 * Requests in flight keep the app they started with. Instances gone from
 * the table stop getting requests and their idle connections close. */
void proxy_set_table(struct proxy *p, struct route_table *t);

/* The current snapshot, borrowed (NULL before the first one). */
struct route_table *proxy_table(struct proxy *p);

/* The resolver of instance host names (--resolver, or the system's): the
 * shared state's, on the control thread's loop (proxy_shared_dns); only
 * that thread may use it. */
struct evdns_base *proxy_resolver(struct proxy *p);

/* Applies the reloadable options of `cfg` (timeouts, limits, pools). */
void proxy_apply_config(struct proxy *p, const struct zkr_config *cfg);

/* SIGTERM (proxy-drain.c): from now on every response says
 * "Connection: close" and its connection closes after it. */
void proxy_drain(struct proxy *p);

/* Closes every listener (the drain's second half); connections in flight
 * go on, each closed after its current response; keep-alive connections
 * idle between two requests are closed now. */
void proxy_stop_listening(struct proxy *p);

/* Once the listeners are closed, and then periodically: closes the
 * client connections that are between two requests and returns what the
 * drain still waits for: requests in flight and tunnels, requests on
 * their way, answers still being written. */
size_t proxy_drain_tick(struct proxy *p);

/* Requests in flight, each open tunnel (upgraded request, WebSocket)
 * counting as one: the SIGTERM drain waits until this is 0. */
size_t proxy_active_requests(const struct proxy *p);
size_t proxy_client_connections(const struct proxy *p);
/* appqueue.c: an app's requests in flight on this router and waiting for
 * a slot (false when the table has no such app), and the totals. */
bool appq_info(struct proxy *p, const char *domain, unsigned *in_flight, unsigned *queued);
void appq_totals(const struct proxy *p, size_t *queued, uint64_t *overloaded);
/* The per-client-address limits' counters (node/limits.h): the table is
 * the process's, so every proxy reports the same totals (do not sum). */
void proxy_limits_stats(const struct proxy *p, struct limits_stats *out);

/* PROXY protocol headers on the listeners that expect them: read, and
 * connections closed without one (for /metrics). */
struct proxy_pp_counters {
	uint64_t headers;          /* read whole, the connection went on */
	uint64_t malformed;        /* not a header, or a malformed one */
	uint64_t timeout;          /* not whole within head_timeout_ms */
	uint64_t closed;           /* the peer closed or reset before the end */
};
void proxy_pp_counters(const struct proxy *p, struct proxy_pp_counters *out);

/* TLS on the client side (proxy-tls.c), for /metrics. */
enum tls_fail {
	TLS_FAIL_TIMEOUT,          /* not done within tls_handshake_timeout_ms */
	TLS_FAIL_EOF,              /* the client closed or reset during it */
	TLS_FAIL_NO_SHARED_CIPHER,
	TLS_FAIL_UNSUPPORTED_PROTOCOL,
	TLS_FAIL_UNRECOGNIZED_NAME,  /* refused by the server-name callback */
	TLS_FAIL_HTTP,             /* plain HTTP sent to the TLS port */
	TLS_FAIL_OTHER,
	TLS_FAIL_N
};
extern const char *const proxy_tls_fail_names[TLS_FAIL_N];
struct proxy_tls_counters {
	uint64_t handshakes_tls12, handshakes_tls13, handshakes_other;
	uint64_t resumed;          /* handshakes that resumed a session */
	uint64_t failures[TLS_FAIL_N];
	uint64_t close_notify_sent;
};
void proxy_tls_counters(const struct proxy *p, struct proxy_tls_counters *out);

/* HTTP/2 to clients (h2.c): what was accepted, and each limit and flood
 * bound that acted, counted where it acted. */
struct proxy_h2_counters {
	uint64_t connections;      /* connections that spoke HTTP/2 */
	uint64_t streams;          /* requests received on them */
	uint64_t refused_streams;  /* past h2-max-concurrent-streams */
	uint64_t malformed;        /* heads refused by the downgrade checks */
	uint64_t header_too_large; /* header lists past max-head-bytes or max-headers */
	uint64_t rapid_reset;      /* connections closed: too many streams reset */
	uint64_t control_flood;    /* closed: PING/SETTINGS/PRIORITY/empty DATA flood */
	uint64_t continuation_flood;   /* closed: too many CONTINUATION frames */
	uint64_t ack_flood;        /* closed: our ACKs unread (nghttp2's bound) */
	uint64_t protocol_error;   /* closed on another protocol error */
	uint64_t stalled;          /* closed: output stuck (a peer that does not read) */
	uint64_t goaway_sent;      /* GOAWAY frames sent (drain, idle, errors) */
	uint64_t parked;           /* idle ones that gave their buffers back (h2_mem_park) */
};
void proxy_h2_counters(const struct proxy *p, struct proxy_h2_counters *out);

/* The pools of idle HTTP/1.1 backend connections (upstream.c), for
 * /metrics. */
struct proxy_pool_counters {
	uint64_t idle;             /* gauge: idle pooled connections now */
	uint64_t opened;           /* connections opened to instances */
	uint64_t reused;           /* requests sent on a pooled connection */
	uint64_t full_closed;      /* back from a request to a full pool: closed */
	uint64_t trimmed;          /* closed by the tick: unused for a whole period */
};
void proxy_pool_counters(const struct proxy *p, struct proxy_pool_counters *out);

/* The pools of HTTP/2 connections to h2c apps' instances (upstream-h2c.c):
 * open connections and streams now, totals since the start (those of
 * pools retired with their instance included). */
struct uh2_pool_stats;
void proxy_h2c_stats(const struct proxy *p, struct uh2_pool_stats *out);

struct backend_info {
	bool ejected;
	uint64_t ejected_until_ms;      /* monotonic ms, 0 when not ejected */
	unsigned outstanding;
	unsigned consecutive_failures;
	bool health_down;
	unsigned idle_pooled;
	bool resolved;                  /* false while a host name has no address */
};

/* Runtime state of one instance; false if the proxy has none for it
 * (never routed to and never health-marked). */
bool proxy_backend_info(struct proxy *p, const char *domain, const char *instance_id,
			struct backend_info *out);

/* Closes every connection and listener and frees the proxy. */
void proxy_free(struct proxy *p);

#endif
