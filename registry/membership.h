/*
 * Router membership: this router's ephemeral /routers/<node-id> znode,
 * holding a RouterNode record (addresses, version, start time, and the
 * generation and digest of the table it serves), so operators and
 * zkrouterctl can see which routers are live and whether they agree.
 *
 * The node is created on every new session (it dies with the old one),
 * kept current as the table changes (writes rate-limited, the last state
 * always written), and re-created if someone deletes it. /apps and
 * /routers are created (persistent) when missing.
 */
#ifndef ZKR_MEMBERSHIP_H
#define ZKR_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "registry/session.h"
#include "registry/table.h"

struct zkr_membership_opts {
	const char *node_id;       /* znode name; required */
	const char *const *listen; /* advertised client addresses */
	size_t n_listen;
	const char *const *tls_listen; /* advertised HTTPS client addresses */
	size_t n_tls_listen;
	const char *admin;         /* or NULL */
	const char *version;       /* or NULL */
	int min_interval_ms;       /* between two writes; default 200 */
};

struct zkr_membership;

/* Copies everything in opts. Returns NULL with a reason on a bad node id
 * or allocation failure. Registers as soon as the session connects. */
struct zkr_membership *zkr_membership_new(struct event_base *base, struct zkr_session *s,
					  const struct zkr_membership_opts *opts, char *why, size_t whylen);

/* Records the table now served; written within min_interval_ms. */
void zkr_membership_update(struct zkr_membership *m, const struct route_table *t);

/* Deletes the node now and does not create it again (start of a drain). */
void zkr_membership_leave(struct zkr_membership *m);

/* True while our node exists with our session as its owner. */
bool zkr_membership_registered(const struct zkr_membership *m);

/* Writes issued so far (for tests and metrics). */
uint64_t zkr_membership_writes(const struct zkr_membership *m);

/* Call it while the session object exists (before zkr_session_free).
 * Replies still queued on the session find it gone and do nothing. */
void zkr_membership_free(struct zkr_membership *m);

#endif
