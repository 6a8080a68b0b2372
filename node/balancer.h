/*
 * Load-balancing policies: which backend of an app gets the next request.
 *
 * - least outstanding with two random choices (default): two distinct
 *   candidates at random, the one with fewer requests in flight per unit of
 *   weight wins. Cheap, and it sees queueing that pure random hides.
 * - smooth weighted round-robin: spreads each instance's share evenly
 *   through the cycle instead of in bursts.
 * - consistent hashing (header or cookie value): weighted rendezvous
 *   hashing, so when an instance leaves only its own keys move and every
 *   router picks alike without building a ring.
 *
 * Candidates are the app's routable backends that the request has not
 * tried yet, that are not ejected and not marked down by health checks.
 * When that leaves none, the ejected and down ones are tried anyway (fail
 * open): a flaky check must not turn a live app into a 503. An instance at
 * the app's max_connections takes nothing more, even failing open.
 */
#ifndef ZKR_BALANCER_H
#define ZKR_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/backend.h"

struct balancer_args {
	Zkrouter__AppConfig__Balance policy;
	struct backend *const *bes;     /* the app's backends */
	size_t n;
	struct backend *const *tried;   /* already tried by this request */
	size_t n_tried;
	bool has_key;                   /* HASH_*: the request carried the key */
	uint64_t key_hash;              /* balancer_hash_key of its value */
	uint64_t now_ms;
	uint64_t *rng;                  /* PRNG state, updated */
	unsigned max_outstanding;       /* AppConfig max_connections; 0: no cap */
};

/* The chosen backend, or NULL when no routable untried backend exists. */
struct backend *balancer_pick(const struct balancer_args *a);

/* The hash of a header or cookie value, as the hash policies use it. */
uint64_t balancer_hash_key(const char *key, size_t len);

/*
 * The hash key of a request for HASH_COOKIE: the value of cookie `name` in
 * a Cookie header value, or false when absent.
 */
bool balancer_cookie_value(const char *cookie, size_t len, const char *name,
			   const char **val, size_t *vlen);

#endif
