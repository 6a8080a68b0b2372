/*
 * Runtime state of app instances, kept across table snapshots.
 *
 * Table snapshots are immutable and replaced on every change, but what the
 * proxy learns about an instance (requests in flight, failures, passive
 * ejection, health, its pool of idle connections) must outlive them. A
 * `backend` holds that state for one instance of one app; an `app_state`
 * pairs a route_app of the table with the backends of its instances (same
 * order). When a new snapshot arrives, apps that did not change keep their
 * app_state; a changed app gets a new one that carries the backends of the
 * instances it still has (matched by id); instances that left are marked
 * removed: no new requests, in-flight ones complete, idle connections close.
 *
 *   proxy --> app map (route_app* -> app_state) --> backends[] --> idle pool
 *
 * Requests hold a reference on their app_state and on the backend they use,
 * so nothing they point at is freed while they run.
 */
#ifndef ZKR_BACKEND_H
#define ZKR_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "node/shared.h"
#include "registry/table.h"

struct proxy_shared;
struct request;
struct upstream;
struct be_h2c;

struct backend {
	unsigned refs;
	char *id;                  /* instance id (znode name) */
	char *domain;              /* the app's domain, for logs */
	char name[300];            /* "host:port", for logs and the access log */
	/* What every worker knows of the instance (node/shared.h): passive
	 * ejection, the health verdict, the resolved address. Read per
	 * request, written only on failures. Reference held. */
	struct shared_instance *si;
	/* This worker's copy of the address, taken at connect time when
	 * si's address generation moved past addr_gen. */
	struct sockaddr_storage addr;
	socklen_t addrlen;         /* 0: not copied yet */
	uint64_t addr_gen;
	char *host;
	uint16_t port;
	uint32_t weight;
	bool draining;             /* instance state DRAINING */
	bool removed;              /* gone from the table */
	unsigned outstanding;      /* requests in flight (this worker's) */
	int64_t swrr_current;      /* smooth weighted round-robin state */
	uint64_t hash_seed;        /* per-instance seed for rendezvous hashing */
	/* Idle keep-alive connections, the most recently used first; the
	 * upstream layer above keeps them (upstream.c). */
	TAILQ_HEAD(upstream_idle_q, upstream) idle;
	unsigned n_idle;
	unsigned idle_low;         /* the fewest idle since the pool's last tick */
	bool pool_listed;          /* in the proxy's pooled list (n_idle > 0) */
	TAILQ_ENTRY(backend) pool_link;
	/* Closes the idle connections (and retires the h2c pool): the pools
	 * belong to the upstream layer above, which sets the hook through
	 * the map (this layer does not call up into it). NULL: no pool. */
	void (*idle_close)(struct backend *b);
	/* Its pool of HTTP/2 connections when its app speaks h2c, made by
	 * the upstream layer at the first request (upstream-h2c.c); the same
	 * hook retires it. NULL: none. */
	struct be_h2c *h2c;
};

/*
 * An app's requests on this worker: in flight and waiting for a slot
 * under its max_concurrent_requests (node/appqueue.c). It outlives each
 * app_state: the next app_state of the same app shares it, so a change of
 * instances or config keeps the count and the queue. The slots are the
 * process's (`sa`, shared by every worker's app_load of the app); the
 * queue is this worker's.
 */
struct app_load {
	unsigned refs;
	struct shared_app *sa;     /* reference held */
	unsigned in_flight;        /* this worker's, admitted, not finished */
	unsigned counted;          /* of those, holding a slot of sa */
	unsigned n_queued;
	uint32_t max_concurrent;   /* from the newest config; 0: no cap */
	uint32_t max_queued;
	bool dispatching;          /* appq_dispatch runs: no nesting */
	TAILQ_HEAD(, request) queue;
	TAILQ_ENTRY(app_load) wlink;   /* in its proxy's waiting_loads while
					* n_queued > 0 (holding a reference) */
};

struct app_state {
	unsigned refs;
	struct route_app *app;     /* reference held */
	size_t n;
	struct backend **bes;      /* parallel to app->instances */
	struct app_load *load;     /* reference held; shared with its successors */
};

/* A backend for `inst` of app `domain`, sharing the instance's state
 * with every worker through `sh` (may be NULL: state of its own, and host
 * names then never resolve). A numeric host is its address at once; a
 * host name is looked up on the control thread (retried with backoff on
 * failure), and the backend takes no request until it resolves. NULL on
 * allocation failure. */
struct backend *backend_new(const char *domain, const struct route_instance *inst,
			    struct proxy_shared *sh);
struct backend *backend_ref(struct backend *b);
void backend_unref(struct backend *b);

/* True when the backend may take a new request at all (not draining, not
 * removed, resolved). Ejection and health are looked at by the balancer. */
bool backend_routable(const struct backend *b);
bool backend_ejected(const struct backend *b, uint64_t now_ms);
/* Marked down by the active health checks. */
bool backend_health_down(const struct backend *b);
/* The address to connect to, refreshed from the shared state when it
 * changed. False while a host name has none. */
bool backend_addr(struct backend *b);

/* Passive ejection: a failed connect or reset ejects the instance for
 * base * 2^(failures-1) ms, capped at max_ms, for every worker at once. A
 * success clears it (a shared write only when failures were recorded). */
void backend_record_failure(struct backend *b, uint64_t now_ms, unsigned base_ms, unsigned max_ms);
void backend_record_success(struct backend *b);

/* Marks a backend removed and closes its idle connections. */
void backend_retire(struct backend *b);

/* ---- app states -------------------------------------------------------- */

struct app_load *app_load_ref(struct app_load *l);
void app_load_unref(struct app_load *l);
struct app_state *app_state_ref(struct app_state *s);
void app_state_unref(struct app_state *s);

/* The backend of instance `id` in `s`, or NULL (binary search by id). */
struct backend *app_state_find(const struct app_state *s, const char *id);

/*
 * A map from the route_app pointers of one snapshot to their app_states.
 * backend_map_update builds the map for `t` from the map of `old` (the
 * previous snapshot, NULL at first): unchanged
 * apps keep their app_state, changed apps get one that carries matching
 * backends over, and backends that left the table are retired. On
 * allocation failure returns false and leaves `m` as it was.
 */
struct backend_map {
	size_t cap;                /* power of two, 0 when empty */
	size_t count;
	struct app_state **slots;
	struct proxy_shared *shared;   /* for new backends and loads; set after init */
	void (*idle_close)(struct backend *b);  /* given to new backends; set after init */
};

void backend_map_init(struct backend_map *m);
bool backend_map_update(struct backend_map *m, const struct route_table *old,
			const struct route_table *t);
struct app_state *backend_map_get(const struct backend_map *m, const struct route_app *app);
/* Retires every backend and empties the map. */
void backend_map_clear(struct backend_map *m);

#endif
