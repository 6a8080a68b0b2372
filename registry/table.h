/*
 * The routing table: an immutable, reference-counted snapshot of every app
 * and its live instances, as the registry last saw them in ZooKeeper.
 *
 * A snapshot never changes once published. The registry builds the next one
 * by sharing every unchanged app with the previous snapshot and replacing
 * only the app that changed, so a change costs work proportional to that
 * app. Readers (the proxy) take a reference for as long as they use a
 * snapshot or an app; requests in flight finish on the app they started
 * with while new requests see the new snapshot.
 *
 * References are atomic so snapshots may cross threads; everything else is
 * read-only after publication.
 *
 *   route_table --> apps[] (sorted by domain) --> route_app --> instances[]
 *        |                                          (refcounted, shared
 *   generation, digest                               between snapshots)
 */
#ifndef ZKR_TABLE_H
#define ZKR_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/record.h"

#define ROUTE_DIGEST_LEN 32
#define ROUTE_DIGEST_HEX_LEN (2 * ROUTE_DIGEST_LEN)

struct route_instance {
	char *id;                  /* znode name, unique within the app */
	char *host;                /* IP literal or DNS name */
	uint16_t port;
	uint32_t weight;           /* 1..10000 */
	char *zone;                /* may be NULL */
	bool draining;             /* state DRAINING: no new requests */
	uint64_t registered_at_ms; /* 0 if the agent did not say */
};

/* AppConfig with the record's optional fields resolved: 0 means "use the
 * router's default" for timeouts and limits, retries < 0 likewise. */
struct route_app_config {
	Zkrouter__AppConfig__Balance balance;
	char *hash_key;            /* header or cookie name for HASH_*, else NULL */
	uint32_t connect_timeout_ms;
	uint32_t response_timeout_ms;
	uint32_t idle_timeout_ms;
	char *health_path;         /* NULL: no active checks */
	uint32_t health_interval_ms;
	char *sticky_cookie;
	bool redirect_https;
	uint32_t max_connections;
	uint64_t max_body_bytes;
	int retries;
	uint32_t max_concurrent_requests;  /* per router, all instances; 0: no cap */
	uint32_t max_queued_requests;      /* waiting past that cap */
	bool backend_h2c;          /* instances speak HTTP/2 cleartext (node/upstream-h2.h) */
};

struct route_app {
	unsigned refs;
	char *domain;              /* lower case; "*.example.com" for a wildcard */
	struct route_app_config config;
	size_t n_instances;
	struct route_instance *instances;  /* sorted by id */
	unsigned char digest[ROUTE_DIGEST_LEN];
};

struct route_table {
	unsigned refs;
	uint64_t generation;       /* +1 per published snapshot on this node */
	unsigned char digest[ROUTE_DIGEST_LEN];
	char digest_hex[ROUTE_DIGEST_HEX_LEN + 1];
	size_t n_apps;
	struct route_app **apps;   /* sorted by domain (strcmp) */
};

/* ---- reading -------------------------------------------------------- */

struct route_table *route_table_ref(struct route_table *t);
void route_table_unref(struct route_table *t);
struct route_app *route_app_ref(struct route_app *a);
void route_app_unref(struct route_app *a);

/* The app whose domain is exactly `domain` (len bytes), or NULL. */
struct route_app *route_table_find(const struct route_table *t, const char *domain, size_t len);

/*
 * The app for a normalized host (lower case, no port, no trailing dot):
 * an exact match first, then the wildcard "*.<parent>" where <parent> is
 * the host minus its first label (one label only: "*.example.com" matches
 * "a.example.com", not "a.b.example.com" nor "example.com").
 */
struct route_app *route_table_match(const struct route_table *t, const char *host, size_t len);

/* ---- building (the registry's side) ---------------------------------- */

/* An empty table, generation 0. */
struct route_table *route_table_new(void);

/*
 * A new app with `cfg` resolved (NULL = every default) and no instances;
 * add them with route_app_add_instance, then route_app_seal it before it
 * goes into a table. Returns NULL on allocation failure.
 */
struct route_app *route_app_new(const char *domain, const record_app_config *cfg);

/* Adds a validated instance record under znode name `id`. Before seal only. */
bool route_app_add_instance(struct route_app *a, const char *id, const record_instance *r);

/* Sorts instances and computes the app's digest. */
void route_app_seal(struct route_app *a);

/*
 * A new snapshot equal to `old` with `app` inserted or replacing the app of
 * the same domain (the table takes the caller's reference to `app`), or
 * with `domain` removed. Generation is old's + 1 and the digest is updated
 * from the app digests, so it equals on every node with the same content.
 * Return NULL on allocation failure (old is untouched).
 */
struct route_table *route_table_with_app(const struct route_table *old, struct route_app *app);

/*
 * A whole table at once, from `n` sealed apps sorted by domain with no
 * domain twice (the table takes the caller's references), generation 0.
 * O(n): for a complete re-read, where n inserts would copy the array n
 * times. Returns NULL on allocation failure or on input out of order; the
 * references are released then too.
 */
struct route_table *route_table_from_apps(struct route_app **apps, size_t n);
struct route_table *route_table_without_app(const struct route_table *old, const char *domain);

#endif
