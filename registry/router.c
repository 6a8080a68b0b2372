/*
 * The registry facade zkrouterd uses (see router.h): one ZooKeeper
 * session, the watcher that turns /apps into route_table snapshots, and
 * the membership that keeps /routers/<node-id> current with the table,
 * and, for a router that serves TLS, the certificate watcher on /certs.
 *
 *   zkr_session --events--> zkr_watcher --snapshot--> on_table (zkrouterd)
 *        |                                    \
 *        +--events--> zkr_membership <--------- generation, digest
 *        |
 *        +--events--> zkr_certwatch --add/remove--> on_cert_* (zkrouterd)
 *        +--events--> zkr_ticketkeys --keys--> on_ticket_keys (zkrouterd's TLS)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/clock.h"
#include "registry/log.h"
#include "registry/membership.h"
#include "registry/router.h"
#include "registry/session.h"
#include "registry/ticketkeys.h"
#include "registry/watcher.h"

struct zkr_router {
	struct zkr_session *s;
	struct zkr_watcher *w;
	struct zkr_membership *m;
	struct zkr_certwatch *cw;  /* NULL: /certs not watched */
	struct zkr_ticketkeys *tk;     /* NULL without TLS listeners */
	zkr_router_table_cb on_table;
	void *arg;
	bool report_when_serving;
	struct zkr_router_zk_stats zk;
	bool up;                   /* connected, as the session events said */
	uint64_t started_ms, confirmed_ms;   /* monotonic; confirmed 0: never */
};

/* Counts the session's events, and notes when the table was last known
 * current: up to a lost connection, when the watcher had a complete read
 * on it (the watches then told us of every change until that moment). */
static void router_session_event(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct zkr_router *r = arg;

	(void)s;
	switch (ev) {
	case ZKR_SESSION_NEW:
		r->zk.sessions++;
		r->up = true;
		break;
	case ZKR_SESSION_RECONNECTED:
		r->zk.reconnects++;
		r->up = true;
		break;
	case ZKR_SESSION_DISCONNECTED:
	case ZKR_SESSION_EXPIRED:
		if (ev == ZKR_SESSION_EXPIRED)
			r->zk.expirations++;
		else
			r->zk.disconnects++;
		if (r->up && r->w != NULL && zkr_watcher_synced(r->w))
			r->confirmed_ms = clock_now_ms();
		r->up = false;
		break;
	}
}

static void router_on_table(struct route_table *t, void *arg)
{
	struct zkr_router *r = arg;
	/* Membership first: the record reflects the table being served, and
	 * a slow consumer callback does not delay it. */
	if (r->m != NULL && !r->report_when_serving)
		zkr_membership_update(r->m, t);
	if (r->on_table != NULL)
		r->on_table(t, r->arg);
}

struct zkr_router *zkr_router_new(struct event_base *base, const struct zkr_router_opts *opts,
				  zkr_router_table_cb on_table, void *arg, char *why, size_t whylen)
{
	struct zkr_router *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	r->on_table = on_table;
	r->arg = arg;
	r->report_when_serving = opts->report_when_serving;

	struct zkr_session_opts so = {
		.connect = opts->connect,
		.auth = opts->auth,
		.timeout_ms = opts->session_timeout_ms,
	};
	struct zkr_membership_opts mo = {
		.node_id = opts->node_id,
		.listen = opts->listen,
		.n_listen = opts->n_listen,
		.tls_listen = opts->tls_listen,
		.n_tls_listen = opts->n_tls_listen,
		.admin = opts->admin,
		.version = opts->version,
	};
	/* The session connects asynchronously, so the order below cannot
	 * miss its first event: nothing runs until the loop does. */
	r->s = zkr_session_new(base, &so, why, whylen);
	if (r->s == NULL)
		goto failed;
	r->started_ms = clock_now_ms();
	if (!zkr_session_subscribe(r->s, router_session_event, r)) {
		snprintf(why, whylen, "out of memory");
		goto failed;
	}
	r->m = zkr_membership_new(base, r->s, &mo, why, whylen);
	if (r->m == NULL)
		goto failed;
	r->w = zkr_watcher_new(base, r->s, NULL, router_on_table, r, why, whylen);
	if (r->w == NULL)
		goto failed;
	if (opts->on_cert_add != NULL) {
		r->cw = zkr_certwatch_new(base, r->s, opts->on_cert_add, opts->on_cert_remove,
					  opts->cert_arg, why, whylen);
		if (r->cw == NULL)
			goto failed;
	}
	if (opts->on_ticket_keys != NULL) {
		struct zkr_ticketkeys_opts to = {
			.node_id = opts->node_id,
			.auth = opts->auth,
			.rotate_s = opts->ticket_rotate_s,
			.on_keys = opts->on_ticket_keys,
			.arg = opts->ticket_keys_arg,
		};
		r->tk = zkr_ticketkeys_new(base, r->s, &to, why, whylen);
		if (r->tk == NULL)
			goto failed;
	}
	return r;
failed:
	zkr_router_free(r);
	return NULL;
}

void zkr_router_leave(struct zkr_router *r)
{
	zkr_membership_leave(r->m);
}

void zkr_router_serving(struct zkr_router *r, const struct route_table *t)
{
	if (r->m != NULL)
		zkr_membership_update(r->m, t);
}

void zkr_router_free(struct zkr_router *r)
{
	if (r == NULL)
		return;
	/* Close first: our ephemeral goes at once, and every queued reply
	 * runs now, while the watcher and membership can still drop them. */
	zkr_session_close(r->s);
	zkr_watcher_free(r->w);
	zkr_certwatch_free(r->cw);
	zkr_membership_free(r->m);
	zkr_ticketkeys_free(r->tk);
	zkr_session_free(r->s);
	free(r);
}

bool zkr_router_has_table(const struct zkr_router *r)
{
	return zkr_watcher_table(r->w) != NULL;
}

bool zkr_router_connected(const struct zkr_router *r)
{
	return zkr_session_connected(r->s);
}

void zkr_router_zk_stats(const struct zkr_router *r, struct zkr_router_zk_stats *out)
{
	uint64_t now = clock_now_ms(), since = r->confirmed_ms ? r->confirmed_ms : r->started_ms;

	*out = r->zk;
	out->state = zkr_session_state(r->s);
	out->unconfirmed_ms = zkr_router_synced(r) ? 0 : now > since ? now - since : 0;
}

bool zkr_router_synced(const struct zkr_router *r)
{
	return zkr_session_connected(r->s) && zkr_watcher_synced(r->w);
}

void zkr_router_cert_stats(const struct zkr_router *r, struct zkr_certwatch_stats *out)
{
	if (r->cw != NULL)
		zkr_certwatch_get_stats(r->cw, out);
	else
		memset(out, 0, sizeof(*out));
}

void zkr_router_set_ticket_rotate_s(struct zkr_router *r, unsigned rotate_s)
{
	if (r->tk != NULL)
		zkr_ticketkeys_set_period(r->tk, rotate_s);
}

bool zkr_router_ticket_stats(const struct zkr_router *r, struct zkr_ticketkeys_stats *out)
{
	if (r->tk == NULL)
		return false;
	zkr_ticketkeys_stats(r->tk, out);
	return true;
}

const char *zkr_router_chroot(const struct zkr_router *r)
{
	return zkr_session_chroot(r->s);
}
