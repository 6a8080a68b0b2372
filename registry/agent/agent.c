/*
 * The instance agent (see agent.h): one ephemeral node kept in place on
 * its own ZooKeeper session, across reconnects, expiries and restarts.
 *
 * Each chain of requests (register, deregister, re-check) carries the
 * agent's epoch; start, stop and a session expiry bump the epoch, so the
 * late answers of an abandoned chain are recognised and dropped. Requests
 * are ordered within one session, which is what makes that safe: a delete
 * issued after a create that was still in flight runs after it.
 *
 * Whose node is it? A node named <id> may exist already: ours (a create
 * whose reply was lost before a reconnect), or one left by an earlier
 * session of an agent with the same id that has not expired yet. The
 * node's ephemeralOwner tells: equal to our session id -> keep it;
 * different -> delete it and create ours, or, if the ACL does not let us
 * delete, watch it and create ours once it is gone.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registry/agent/agent.h"
#include "registry/log.h"
#include "registry/prng.h"
#include "registry/record.h"
#include "registry/session.h"

#define AGENT_RETRY_FIRST_MS 500
#define AGENT_RETRY_MAX_MS 10000
#define AGENT_APP_WAIT_MS 3000
#define AGENT_RECHECK_MS 1000

struct zkr_agent {
	struct event_base *base;
	struct zkr_session *s;
	struct zkr_session_opts sopts;
	char *connect, *auth;
	zkr_agent_state_cb cb;
	void *cb_arg;

	enum zkr_agent_state state;
	bool want;                 /* started: the node should exist */
	bool closing;              /* inside zkr_agent_free */
	unsigned epoch;
	unsigned retries;          /* consecutive transient failures */

	char *domain, *host, *id, *zone, *path;
	uint16_t port;
	uint32_t weight;
	Zkrouter__Label *labels;
	Zkrouter__Label **label_ptrs;
	size_t n_labels;
	bool wait_for_app;
	bool warned_app;

	struct event *timer;       /* retries and re-checks */
	struct event *recycle;     /* closes and reopens the session, from the loop */
	void (*timer_fn)(struct zkr_agent *a);
	uint64_t rng;              /* jitter (registry/prng.h) */
	char error[512];
};

/* The context of one request: which agent, and which chain it belongs to. */
struct agent_req {
	struct zkr_agent *a;
	unsigned epoch;
};

static void do_register(struct zkr_agent *a);
static void do_deregister(struct zkr_agent *a);

static const char *const state_names[] = {
	[ZKR_AGENT_STOPPED] = "stopped",
	[ZKR_AGENT_CONNECTING] = "connecting",
	[ZKR_AGENT_REGISTERING] = "registering",
	[ZKR_AGENT_WAITING] = "waiting",
	[ZKR_AGENT_REGISTERED] = "registered",
	[ZKR_AGENT_DEREGISTERING] = "deregistering",
	[ZKR_AGENT_FAILED] = "failed",
};

const char *zkr_agent_state_name(enum zkr_agent_state st)
{
	if ((unsigned)st >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[st];
}

enum zkr_agent_state zkr_agent_state(const struct zkr_agent *a) { return a->state; }
const char *zkr_agent_error(const struct zkr_agent *a) { return a->error; }
const char *zkr_agent_path(const struct zkr_agent *a) { return a->path; }

static void set_state(struct zkr_agent *a, enum zkr_agent_state st, int zrc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The one place states change: logs the transition and tells the owner. */
static void set_state(struct zkr_agent *a, enum zkr_agent_state st, int zrc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st == ZKR_AGENT_FAILED)
		snprintf(a->error, sizeof(a->error), "%s", msg);
	if (a->state == st && st != ZKR_AGENT_FAILED) {
		log_debug("agent %s: %s", a->path, msg);
		return;
	}
	enum zkr_agent_state was = a->state;
	a->state = st;
	if (st == ZKR_AGENT_FAILED)
		log_error("agent %s: %s", a->path, msg);
	else
		log_info("agent %s: %s -> %s: %s", a->path, state_names[was], state_names[st], msg);
	if (a->cb != NULL && !a->closing)
		a->cb(a, st, zrc, msg, a->cb_arg);
}

static struct agent_req *req_new(struct zkr_agent *a)
{
	struct agent_req *r = malloc(sizeof(*r));
	if (r != NULL) {
		r->a = a;
		r->epoch = a->epoch;
	}
	return r;
}

/* Frees the request; true if its answer still matters. */
static bool req_done(const void *data, struct zkr_agent **out)
{
	struct agent_req *r = (struct agent_req *)data;
	struct zkr_agent *a = r->a;
	bool live = !a->closing && r->epoch == a->epoch;
	free(r);
	*out = a;
	return live;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- timers -------------------------------------------------------------- */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_agent *a = arg;
	void (*fn)(struct zkr_agent *) = a->timer_fn;
	a->timer_fn = NULL;
	if (fn != NULL)
		fn(a);
	/* Requests issued from a timer need the session re-armed. */
	zkr_session_kick(a->s);
}

static void schedule(struct zkr_agent *a, int ms, void (*fn)(struct zkr_agent *))
{
	/* A little jitter, so agents restarted together do not retry in step. */
	ms += (int)(prng_next(&a->rng) % (uint64_t)(ms / 4 + 1));
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	a->timer_fn = fn;
	evtimer_add(a->timer, &tv);
}

static void retry_now(struct zkr_agent *a)
{
	if (a->want)
		do_register(a);
	else if (a->state == ZKR_AGENT_DEREGISTERING)
		do_deregister(a);
}

/* A transient failure: try the current chain again after a backoff. */
static void retry_later(struct zkr_agent *a, int zrc, const char *what)
{
	unsigned shift = a->retries < 5 ? a->retries : 5;
	int ms = AGENT_RETRY_FIRST_MS << shift;
	if (ms > AGENT_RETRY_MAX_MS)
		ms = AGENT_RETRY_MAX_MS;
	a->retries++;
	log_warn("agent %s: %s: %s; retrying in about %d ms", a->path, what, zerror(zrc), ms);
	schedule(a, ms, retry_now);
}

/* Connection loss and friends: the session's RECONNECTED / NEW event
 * restarts the chain. Expired or closing handles likewise. */
static bool session_problem(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONEXPIRED ||
	       rc == ZCLOSING || rc == ZINVALIDSTATE || rc == ZSESSIONMOVED;
}

/* ---- registering ----------------------------------------------------------- */

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx);

static void watch_armed(int rc, const struct Stat *st, const void *data)
{
	struct zkr_agent *a;
	if (!req_done(data, &a))
		return;
	if (rc == ZNONODE && a->state == ZKR_AGENT_REGISTERED) {
		/* Gone between our create and the watch: same as a deletion. */
		node_watcher(zkr_session_zh(a->s), ZOO_DELETED_EVENT, 0, a->path, a);
	}
}

static void arm_watch(struct zkr_agent *a)
{
	struct agent_req *r = req_new(a);
	zhandle_t *zh = zkr_session_zh(a->s);
	if (r == NULL || zh == NULL ||
	    zoo_awexists(zh, a->path, node_watcher, a, watch_armed, r) != ZOK) {
		free(r);
		log_warn("agent %s: cannot watch our node; an outside deletion will go unnoticed "
			 "until the next reconnect", a->path);
	}
	zkr_session_kick(a->s);
}

static void registered(struct zkr_agent *a, const char *how)
{
	a->retries = 0;
	a->error[0] = '\0';
	set_state(a, ZKR_AGENT_REGISTERED, ZOK, "%s (%s:%u, session 0x%" PRIx64 ")", how, a->host,
		  a->port, (uint64_t)zkr_session_id(a->s));
	arm_watch(a);
}

static void recheck_done(int rc, const struct Stat *st, const void *data)
{
	struct zkr_agent *a;
	if (!req_done(data, &a))
		return;
	if (rc == ZNONODE) {
		do_register(a);
	} else if (rc == ZOK) {
		if (st->ephemeralOwner == zkr_session_id(a->s)) {
			registered(a, "our node is still there");
		} else {
			a->want = false;
			set_state(a, ZKR_AGENT_FAILED, ZNODEEXISTS,
				  "another agent (session 0x%" PRIx64 ") took over id %s for %s; stepping aside "
				  "(two agents must not share an id)", (uint64_t)st->ephemeralOwner, a->id, a->domain);
		}
	} else if (!session_problem(rc)) {
		retry_later(a, rc, "checking our node");
	}
}

/* After our node vanished while we were registered: who removed it? */
static void recheck(struct zkr_agent *a)
{
	struct agent_req *r = req_new(a);
	zhandle_t *zh = zkr_session_zh(a->s);
	int rc = r != NULL && zh != NULL ? zoo_aexists(zh, a->path, 0, recheck_done, r) : ZSYSTEMERROR;
	if (rc != ZOK) {
		free(r);
		if (zh != NULL)
			retry_later(a, rc, "checking our node");
	}
}

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zkr_agent *a = ctx;
	if (type == ZOO_SESSION_EVENT || a->closing || zh != zkr_session_zh(a->s))
		return;
	if (type == ZOO_DELETED_EVENT) {
		if (a->state == ZKR_AGENT_WAITING) {
			log_info("agent %s: the old session's node is gone", a->path);
			do_register(a);
		} else if (a->state == ZKR_AGENT_REGISTERED) {
			a->epoch++;
			set_state(a, ZKR_AGENT_REGISTERING, ZOK,
				  "our node was deleted by someone else; checking in about %d ms",
				  AGENT_RECHECK_MS);
			/* Give whoever deleted it (an agent replacing a node it thought
			 * stale) time to create its own, so we can tell. */
			schedule(a, AGENT_RECHECK_MS, recheck);
		}
	} else if (type == ZOO_CHANGED_EVENT && a->state == ZKR_AGENT_REGISTERED) {
		log_warn("agent %s: someone changed our node's data", a->path);
		arm_watch(a);
	}
}

static void waiting_exists(int rc, const struct Stat *st, const void *data)
{
	struct zkr_agent *a;
	if (!req_done(data, &a))
		return;
	if (rc == ZNONODE)
		do_register(a);  /* went away before the watch was set */
	else if (rc != ZOK && !session_problem(rc))
		retry_later(a, rc, "watching the old node");
}

static void stale_deleted(int rc, const void *data)
{
	struct zkr_agent *a;
	if (!req_done(data, &a))
		return;
	if (rc == ZOK || rc == ZNONODE) {
		do_register(a);
	} else if (rc == ZBADVERSION) {
		do_register(a);  /* replaced meanwhile: look again */
	} else if (rc == ZNOAUTH) {
		set_state(a, ZKR_AGENT_WAITING, rc,
			  "a node of an earlier session holds id %s and we may not delete it; "
			  "waiting for that session to expire", a->id);
		struct agent_req *r = req_new(a);
		zhandle_t *zh = zkr_session_zh(a->s);
		if (r == NULL || zh == NULL ||
		    zoo_awexists(zh, a->path, node_watcher, a, waiting_exists, r) != ZOK) {
			free(r);
			retry_later(a, ZSYSTEMERROR, "watching the old node");
		}
	} else if (!session_problem(rc)) {
		retry_later(a, rc, "deleting the stale node");
	}
}

static void existing_checked(int rc, const struct Stat *st, const void *data)
{
	struct zkr_agent *a;
	if (!req_done(data, &a))
		return;
	if (rc == ZNONODE) {
		do_register(a);  /* vanished meanwhile */
		return;
	}
	if (rc != ZOK) {
		if (!session_problem(rc))
			retry_later(a, rc, "looking at the existing node");
		return;
	}
	int64_t mine = zkr_session_id(a->s);
	if (st->ephemeralOwner == mine) {
		registered(a, "our node was already in place");
		return;
	}
	if (st->ephemeralOwner == 0)
		log_warn("agent %s: a persistent node holds our id; replacing it", a->path);
	else
		log_info("agent %s: replacing the node of an earlier session 0x%" PRIx64, a->path,
			 (uint64_t)st->ephemeralOwner);
	struct agent_req *r = req_new(a);
	zhandle_t *zh = zkr_session_zh(a->s);
	rc = r != NULL && zh != NULL ? zoo_adelete(zh, a->path, st->version, stale_deleted, r) : ZSYSTEMERROR;
	if (rc != ZOK) {
		free(r);
		retry_later(a, rc, "deleting the stale node");
	}
}

static void created(int rc, const char *value, const void *data)
{
	struct zkr_agent *a;
	if (!req_done(data, &a))
		return;
	switch (rc) {
	case ZOK:
		registered(a, "registered");
		return;
	case ZNODEEXISTS: {
		struct agent_req *r = req_new(a);
		zhandle_t *zh = zkr_session_zh(a->s);
		rc = r != NULL && zh != NULL ? zoo_aexists(zh, a->path, 0, existing_checked, r) : ZSYSTEMERROR;
		if (rc != ZOK) {
			free(r);
			retry_later(a, rc, "looking at the existing node");
		}
		return;
	}
	case ZNONODE:
		if (a->wait_for_app) {
			if (!a->warned_app)
				log_warn("agent %s: app %s does not exist yet; retrying every %d ms", a->path,
					 a->domain, AGENT_APP_WAIT_MS);
			a->warned_app = true;
			set_state(a, ZKR_AGENT_REGISTERING, rc,
				  "app %s does not exist yet (no /apps/%s/instances); waiting for "
				  "`zkrouterctl app add %s`", a->domain, a->domain, a->domain);
			schedule(a, AGENT_APP_WAIT_MS, retry_now);
			return;
		}
		a->want = false;
		set_state(a, ZKR_AGENT_FAILED, rc,
			  "app %s does not exist (no /apps/%s/instances): the operator must run "
			  "`zkrouterctl app add %s` first", a->domain, a->domain, a->domain);
		return;
	case ZNOAUTH:
		a->want = false;
		set_state(a, ZKR_AGENT_FAILED, rc,
			  "ZooKeeper refused to register an instance for %s (ZNOAUTH): %s", a->domain,
			  a->auth != NULL ? "the --auth identity is not this app's owner"
					  : "the app has an owner; give its credentials with --auth USER:PASS");
		return;
	case ZNOCHILDRENFOREPHEMERALS:
		a->want = false;
		set_state(a, ZKR_AGENT_FAILED, rc, "/apps/%s/instances is an ephemeral node; the tree is "
			  "damaged (recreate the app)", a->domain);
		return;
	default:
		if (!session_problem(rc))
			retry_later(a, rc, "creating our node");
	}
}

/* Builds the record afresh (registered_at is the time of this create). */
static uint8_t *encode_record(struct zkr_agent *a, size_t *len, char *why, size_t whylen)
{
	record_instance r = ZKROUTER__INSTANCE__INIT;
	r.host = a->host;
	r.has_port = 1;
	r.port = a->port;
	if (a->weight != 0) {
		r.has_weight = 1;
		r.weight = a->weight;
	}
	r.zone = a->zone;
	r.id = a->id;
	r.has_registered_at_ms = 1;
	r.registered_at_ms = now_ms();
	r.n_labels = a->n_labels;
	r.labels = a->label_ptrs;
	return record_instance_encode(&r, len, why, whylen);
}

static void do_register(struct zkr_agent *a)
{
	zhandle_t *zh = zkr_session_zh(a->s);
	if (!a->want)
		return;
	a->epoch++;
	if (zh == NULL || !zkr_session_connected(a->s)) {
		set_state(a, ZKR_AGENT_CONNECTING, ZOK, "waiting for the ZooKeeper session");
		return;
	}
	char why[RECORD_WHY_MAX];
	size_t len = 0;
	uint8_t *buf = encode_record(a, &len, why, sizeof(why));
	if (buf == NULL) {
		/* Checked in zkr_agent_new, so only memory can fail here. */
		retry_later(a, ZSYSTEMERROR, why);
		return;
	}
	/* Anyone may read the record (host and port, nothing secret), no one
	 * may change it; deletion is governed by the parent's ACL. Copying the
	 * parent's readers is not possible: ZooKeeper hides digest hashes from
	 * a getACL without ADMIN, which an app's owner must not have. */
	struct agent_req *r = req_new(a);
	int rc = r != NULL ? zoo_acreate(zh, a->path, (const char *)buf, (int)len, &ZOO_READ_ACL_UNSAFE,
					 ZOO_EPHEMERAL, created, r)
			   : ZSYSTEMERROR;
	free(buf);
	if (rc != ZOK) {
		free(r);
		retry_later(a, rc, "creating our node");
		return;
	}
	set_state(a, ZKR_AGENT_REGISTERING, ZOK, "creating %s", a->path);
	zkr_session_kick(a->s);
}

/* ---- deregistering --------------------------------------------------------- */

static void recycle_cb(evutil_socket_t fd, short what, void *arg);

static void own_deleted(int rc, const void *data)
{
	struct zkr_agent *a;
	if (!req_done(data, &a))
		return;
	if (rc == ZOK || rc == ZNONODE || rc == ZBADVERSION) {
		a->retries = 0;
		set_state(a, ZKR_AGENT_STOPPED, ZOK, "deregistered");
	} else if (rc == ZNOAUTH) {
		/* The app's ACL grants create but not delete: closing the session
		 * removes the node all the same. From the loop, not from here. */
		log_info("agent %s: may not delete our node; closing the session instead", a->path);
		event_active(a->recycle, EV_TIMEOUT, 0);
	} else if (!session_problem(rc)) {
		retry_later(a, rc, "deleting our node");
	}
}

static void own_checked(int rc, const struct Stat *st, const void *data)
{
	struct zkr_agent *a;
	if (!req_done(data, &a))
		return;
	if (rc == ZNONODE || (rc == ZOK && st->ephemeralOwner != zkr_session_id(a->s))) {
		set_state(a, ZKR_AGENT_STOPPED, ZOK, "deregistered (no node of ours)");
		return;
	}
	if (rc != ZOK) {
		if (!session_problem(rc))
			retry_later(a, rc, "looking at our node");
		return;
	}
	struct agent_req *r = req_new(a);
	zhandle_t *zh = zkr_session_zh(a->s);
	rc = r != NULL && zh != NULL ? zoo_adelete(zh, a->path, st->version, own_deleted, r) : ZSYSTEMERROR;
	if (rc != ZOK) {
		free(r);
		retry_later(a, rc, "deleting our node");
	}
}

static void do_deregister(struct zkr_agent *a)
{
	a->epoch++;
	zhandle_t *zh = zkr_session_zh(a->s);
	if (zh == NULL) {
		/* No live session: no node of ours can exist. */
		set_state(a, ZKR_AGENT_STOPPED, ZOK, "deregistered (no session)");
		return;
	}
	set_state(a, ZKR_AGENT_DEREGISTERING, ZOK, "removing %s", a->path);
	if (!zkr_session_connected(a->s))
		return;  /* RECONNECTED resumes, EXPIRED settles it */
	/* Look first: only a node owned by our session is ours to delete. */
	struct agent_req *r = req_new(a);
	int rc = r != NULL ? zoo_aexists(zh, a->path, 0, own_checked, r) : ZSYSTEMERROR;
	if (rc != ZOK) {
		free(r);
		retry_later(a, rc, "looking at our node");
		return;
	}
	zkr_session_kick(a->s);
}

/* ---- session -------------------------------------------------------------- */

static void on_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct zkr_agent *a = arg;
	if (a->closing)
		return;
	switch (ev) {
	case ZKR_SESSION_NEW:
		if (a->want)
			do_register(a);
		else if (a->state == ZKR_AGENT_DEREGISTERING)
			set_state(a, ZKR_AGENT_STOPPED, ZOK, "deregistered (new session)");
		break;
	case ZKR_SESSION_RECONNECTED:
		/* Requests in flight failed with the connection: drive the chain
		 * again (WAITING too: its watch may have gone with a failed request). */
		if (a->want && a->state != ZKR_AGENT_REGISTERED)
			do_register(a);
		else if (!a->want && a->state == ZKR_AGENT_DEREGISTERING)
			do_deregister(a);
		break;
	case ZKR_SESSION_DISCONNECTED:
		log_warn("agent %s: lost the connection to ZooKeeper; the node stays while the "
			 "session lives", a->path);
		break;
	case ZKR_SESSION_EXPIRED:
		a->epoch++;
		evtimer_del(a->timer);
		if (a->want)
			set_state(a, ZKR_AGENT_CONNECTING, ZSESSIONEXPIRED,
				  "session expired (node gone); registering again on a new session");
		else if (a->state != ZKR_AGENT_FAILED)
			set_state(a, ZKR_AGENT_STOPPED, ZSESSIONEXPIRED, "session expired");
		break;
	}
}

static bool open_session(struct zkr_agent *a, char *why, size_t whylen)
{
	a->s = zkr_session_new(a->base, &a->sopts, why, whylen);
	if (a->s == NULL)
		return false;
	if (!zkr_session_subscribe(a->s, on_session, a)) {
		snprintf(why, whylen, "out of memory");
		zkr_session_free(a->s);
		a->s = NULL;
		return false;
	}
	return true;
}

/* Replaces the session; the old one's close removes our node. */
static void recycle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_agent *a = arg;
	char why[256];
	a->epoch++;
	zkr_session_unsubscribe(a->s, on_session, a);
	zkr_session_free(a->s);
	a->s = NULL;
	if (!a->want)
		set_state(a, ZKR_AGENT_STOPPED, ZOK, "deregistered (session closed)");
	if (!open_session(a, why, sizeof(why))) {
		a->want = false;
		set_state(a, ZKR_AGENT_FAILED, ZSYSTEMERROR, "cannot open a new session: %s", why);
	}
}

/* ---- public ------------------------------------------------------------- */

void zkr_agent_start(struct zkr_agent *a)
{
	if (a->want && a->state != ZKR_AGENT_FAILED)
		return;
	a->want = true;
	a->retries = 0;
	evtimer_del(a->timer);
	if (a->s == NULL) {
		a->want = false;
		return;
	}
	do_register(a);
}

void zkr_agent_stop(struct zkr_agent *a)
{
	if (!a->want)
		return;
	a->want = false;
	a->retries = 0;
	evtimer_del(a->timer);
	if (a->state == ZKR_AGENT_FAILED || a->state == ZKR_AGENT_STOPPED)
		return;
	if (a->state == ZKR_AGENT_CONNECTING) {
		a->epoch++;
		set_state(a, ZKR_AGENT_STOPPED, ZOK, "stopped before registering");
		return;
	}
	do_deregister(a);
}

static char *dup_or_null(const char *s, bool *ok)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*ok = false;
	return d;
}

struct zkr_agent *zkr_agent_new(struct event_base *base, const struct zkr_agent_opts *o,
				zkr_agent_state_cb cb, void *arg, char *why, size_t whylen)
{
	if (o->domain == NULL || !record_valid_domain(o->domain)) {
		snprintf(why, whylen, "invalid domain \"%s\": lower-case DNS name, optionally \"*.\" first",
			 o->domain ? o->domain : "");
		return NULL;
	}
	if (o->host == NULL) {
		snprintf(why, whylen, "no host given");
		return NULL;
	}
	struct zkr_agent *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	bool ok = true;
	a->base = base;
	/* Seeded per process and agent, so agents restarted together spread out. */
	prng_seed(&a->rng, (uint64_t)(uintptr_t)a);
	a->cb = cb;
	a->cb_arg = arg;
	a->state = ZKR_AGENT_STOPPED;
	a->port = o->port;
	a->weight = o->weight;
	a->wait_for_app = o->wait_for_app;
	a->domain = dup_or_null(o->domain, &ok);
	a->host = dup_or_null(o->host, &ok);
	a->zone = dup_or_null(o->zone, &ok);
	a->connect = dup_or_null(o->connect, &ok);
	a->auth = dup_or_null(o->auth, &ok);
	if (o->id != NULL)
		a->id = dup_or_null(o->id, &ok);
	else if (asprintf(&a->id, strchr(o->host, ':') ? "[%s]:%u" : "%s:%u", o->host, o->port) < 0)
		a->id = NULL, ok = false;
	if (ok && a->id != NULL && asprintf(&a->path, "/apps/%s/instances/%s", a->domain, a->id) < 0)
		a->path = NULL, ok = false;
	if (o->n_labels > 0) {
		a->labels = calloc(o->n_labels, sizeof(*a->labels));
		a->label_ptrs = calloc(o->n_labels, sizeof(*a->label_ptrs));
		ok = ok && a->labels != NULL && a->label_ptrs != NULL;
		for (size_t i = 0; ok && i < o->n_labels; i++) {
			Zkrouter__Label init = ZKROUTER__LABEL__INIT;
			a->labels[i] = init;
			a->labels[i].key = dup_or_null(o->labels[i].key, &ok);
			a->labels[i].value = dup_or_null(o->labels[i].value, &ok);
			a->label_ptrs[i] = &a->labels[i];
			a->n_labels = i + 1;
		}
	}
	a->timer = evtimer_new(base, timer_cb, a);
	a->recycle = evtimer_new(base, recycle_cb, a);
	if (!ok || a->timer == NULL || a->recycle == NULL) {
		snprintf(why, whylen, "out of memory");
		goto failed;
	}
	/* Refuse now what a router would refuse later (the id included). */
	char rwhy[RECORD_WHY_MAX];
	size_t len;
	uint8_t *buf = encode_record(a, &len, rwhy, sizeof(rwhy));
	if (buf == NULL) {
		snprintf(why, whylen, "invalid instance record: %s", rwhy);
		goto failed;
	}
	free(buf);
	a->sopts.connect = a->connect;
	a->sopts.auth = a->auth;
	a->sopts.timeout_ms = o->session_timeout_ms > 0 ? o->session_timeout_ms : 10000;
	if (!open_session(a, why, whylen))
		goto failed;
	return a;
failed:
	zkr_agent_free(a);
	return NULL;
}

void zkr_agent_free(struct zkr_agent *a)
{
	if (a == NULL)
		return;
	a->closing = true;
	if (a->s != NULL) {
		/* Closing the session deletes our ephemeral at once; pending
		 * completions run inside and see `closing`. */
		zkr_session_unsubscribe(a->s, on_session, a);
		zkr_session_free(a->s);
	}
	if (a->timer != NULL)
		event_free(a->timer);
	if (a->recycle != NULL)
		event_free(a->recycle);
	for (size_t i = 0; i < a->n_labels; i++) {
		free(a->labels[i].key);
		free(a->labels[i].value);
	}
	free(a->labels);
	free(a->label_ptrs);
	free(a->domain);
	free(a->host);
	free(a->zone);
	free(a->id);
	free(a->path);
	free(a->connect);
	if (a->auth != NULL) {
		explicit_bzero(a->auth, strlen(a->auth));
		free(a->auth);
	}
	free(a);
}
