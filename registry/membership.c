/*
 * This router's /routers/<node-id> node (see membership.h).
 *
 * States, driven by session events and replies:
 *
 *   (new session) -> ENSURE (/apps, /routers) -> CREATE
 *   CREATE --ok--> LIVE
 *   CREATE --ZNODEEXISTS--> CHECK (exists: whose is it?)
 *   CHECK --ours--> LIVE (a create whose reply was lost succeeded)
 *   CHECK --stale owner--> DELETE (that exact version) -> CREATE
 *   LIVE: set data as the table changes; ZNONODE on set -> CREATE
 *
 * A stale node appears when a router restarts faster than its old
 * session expires: the old session still owns the ephemeral. Deleting it
 * (instead of waiting for expiry) lets the new process register at once.
 *
 * Replies carry the membership's numeric id and session epoch, not a
 * pointer, so late replies after free or after expiry are dropped.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "registry/log.h"
#include "registry/membership.h"
#include "registry/record.h"

#define ROUTERS_PATH "/routers"
#define MEMBERSHIP_MIN_INTERVAL_MS 200
#define MEMBERSHIP_RETRY_MS 1000
#define MEMBERSHIP_MAX_STALE_ROUNDS 5

enum mstate {
	M_IDLE,                    /* no session */
	M_ENSURE,                  /* creating /apps and /routers */
	M_CREATE,
	M_CHECK,
	M_DELETE,
	M_LIVE,
	M_LEFT,                    /* zkr_membership_leave: never again */
};

struct zkr_membership {
	struct zkr_membership *live_next;
	uint64_t id;
	uint64_t epoch;
	struct event_base *base;
	struct zkr_session *s;
	char *node_id;
	char *path;                /* /routers/<node-id> */
	char **listen, **tls_listen;
	size_t n_listen, n_tls_listen;
	char *admin, *version;
	uint64_t started_at_ms;
	int min_interval_ms;

	enum mstate state;
	unsigned stale_rounds;     /* ZNODEEXISTS loops in this session */
	uint64_t generation;       /* of the table served */
	char digest[ROUTE_DIGEST_HEX_LEN + 1];
	bool have_table;
	bool write_inflight, write_dirty;
	struct timeval last_write;
	struct event *write_ev;    /* rate-limit timer */
	struct event *retry_ev;    /* restart registration after an error */
	uint64_t writes;
};

static struct zkr_membership *live_members;
static uint64_t next_member_id = 1;

static void m_create(struct zkr_membership *m);
static void m_write(struct zkr_membership *m);

struct mreq {
	uint64_t mid, epoch;
};

static struct mreq *mreq_new(struct zkr_membership *m)
{
	struct mreq *r = malloc(sizeof(*r));
	if (r != NULL) {
		r->mid = m->id;
		r->epoch = m->epoch;
	}
	return r;
}

/* The membership a reply belongs to, or NULL if it is gone or the reply
 * is from an earlier session. Frees the request either way. */
static struct zkr_membership *mreq_take(const void *data)
{
	struct mreq *r = (struct mreq *)data;
	struct zkr_membership *m = live_members;
	while (m != NULL && m->id != r->mid)
		m = m->live_next;
	if (m != NULL && m->epoch != r->epoch)
		m = NULL;
	free(r);
	return m;
}

static void m_set_state(struct zkr_membership *m, enum mstate st)
{
	m->state = st;
}

/* Starts registration again after a delay (errors other than a lost
 * connection, which the RECONNECTED event handles). */
static void m_retry_later(struct zkr_membership *m, const char *what, int rc)
{
	if (m->state == M_LEFT)
		return;
	log_warn("membership: %s %s%s: %s; retrying", what, zkr_session_chroot(m->s), m->path, zerror(rc));
	m_set_state(m, M_IDLE);
	struct timeval tv = { MEMBERSHIP_RETRY_MS / 1000, (MEMBERSHIP_RETRY_MS % 1000) * 1000 };
	evtimer_add(m->retry_ev, &tv);
}

/* A step failed with the connection. RECONNECTED normally restarts us;
 * the timer covers a reply that arrives after that event. */
static void m_lost(struct zkr_membership *m)
{
	m_set_state(m, M_IDLE);
	struct timeval tv = { MEMBERSHIP_RETRY_MS / 1000, (MEMBERSHIP_RETRY_MS % 1000) * 1000 };
	evtimer_add(m->retry_ev, &tv);
}

/* Our RouterNode as it stands now, encoded; NULL (with `why`) if invalid. */
static uint8_t *m_encode_why(struct zkr_membership *m, size_t *len, char *why, size_t whylen)
{
	record_router_node r = ZKROUTER__ROUTER_NODE__INIT;
	r.node_id = m->node_id;
	r.listen = m->listen;
	r.n_listen = m->n_listen;
	r.tls_listen = m->tls_listen;
	r.n_tls_listen = m->n_tls_listen;
	r.admin = m->admin;
	r.version = m->version;
	r.has_started_at_ms = true;
	r.started_at_ms = m->started_at_ms;
	if (m->have_table) {
		r.has_table_generation = true;
		r.table_generation = m->generation;
		r.table_digest = m->digest;
	}
	return record_router_node_encode(&r, len, why, whylen);
}

static uint8_t *m_encode(struct zkr_membership *m, size_t *len)
{
	char why[RECORD_WHY_MAX];
	uint8_t *buf = m_encode_why(m, len, why, sizeof(why));
	if (buf == NULL)
		log_error("membership: cannot encode our RouterNode: %s", why);
	return buf;
}

/* ---- create / check / delete ------------------------------------------ */

static void m_created(int rc, const char *value, const void *data);

static void m_deleted(int rc, const void *data)
{
	struct zkr_membership *m = mreq_take(data);
	if (m == NULL || m->state != M_DELETE)
		return;
	if (rc == ZOK || rc == ZNONODE || rc == ZBADVERSION) {
		/* BADVERSION: it changed under us; CREATE sorts out whose it is. */
		m_create(m);
	} else if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT) {
		m_retry_later(m, "delete stale", rc);
	} else {
		m_lost(m);
	}
	zkr_session_kick(m->s);
}

static void m_checked(int rc, const struct Stat *stat, const void *data)
{
	struct zkr_membership *m = mreq_take(data);
	if (m == NULL || m->state != M_CHECK)
		return;
	if (rc == ZNONODE) {
		m_create(m);
	} else if (rc != ZOK) {
		if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT)
			m_lost(m);
		else
			m_retry_later(m, "check", rc);
	} else if (stat->ephemeralOwner == zkr_session_id(m->s)) {
		/* Ours: an earlier create of this session succeeded but its reply
		 * was lost. Bring its data up to date. */
		log_info("membership: %s%s already ours", zkr_session_chroot(m->s), m->path);
		m_set_state(m, M_LIVE);
		m_write(m);
	} else if (++m->stale_rounds > MEMBERSHIP_MAX_STALE_ROUNDS) {
		/* Another live router uses our node id: do not fight over it. */
		log_error("membership: %s%s is held by session 0x%llx; is node id '%s' used twice?",
			  zkr_session_chroot(m->s), m->path, (unsigned long long)stat->ephemeralOwner,
			  m->node_id);
		m->stale_rounds = 0;
		m_retry_later(m, "register", ZNODEEXISTS);
	} else {
		log_info("membership: %s%s left by session 0x%llx; replacing it",
			 zkr_session_chroot(m->s), m->path, (unsigned long long)stat->ephemeralOwner);
		struct mreq *r = mreq_new(m);
		int zrc = r ? zoo_adelete(zkr_session_zh(m->s), m->path, stat->version, m_deleted, r)
			    : ZSYSTEMERROR;
		if (zrc != ZOK) {
			free(r);
			m_retry_later(m, "delete stale", zrc);
		} else {
			m_set_state(m, M_DELETE);
		}
	}
	zkr_session_kick(m->s);
}

static void m_created(int rc, const char *value, const void *data)
{
	struct zkr_membership *m = mreq_take(data);
	(void)value;
	if (m == NULL || m->state != M_CREATE)
		return;
	if (rc == ZOK) {
		log_info("membership: registered %s%s", zkr_session_chroot(m->s), m->path);
		m_set_state(m, M_LIVE);
		/* The table may have changed while the create was in flight. */
		if (m->write_dirty)
			m_write(m);
	} else if (rc == ZNODEEXISTS) {
		struct mreq *r = mreq_new(m);
		int zrc = r ? zoo_aexists(zkr_session_zh(m->s), m->path, 0, m_checked, r) : ZSYSTEMERROR;
		if (zrc != ZOK) {
			free(r);
			m_retry_later(m, "check", zrc);
		} else {
			m_set_state(m, M_CHECK);
		}
	} else if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
		/* Lost with the connection; RECONNECTED starts over (and a
		 * create that did succeed shows up as ours in CHECK). */
		m_lost(m);
	} else {
		m_retry_later(m, "create", rc);
	}
	zkr_session_kick(m->s);
}

static void m_create(struct zkr_membership *m)
{
	size_t len = 0;
	uint8_t *buf = m_encode(m, &len);
	if (buf == NULL) {
		m_retry_later(m, "encode", ZMARSHALLINGERROR);
		return;
	}
	struct mreq *r = mreq_new(m);
	int rc = r ? zoo_acreate(zkr_session_zh(m->s), m->path, (const char *)buf, (int)len,
				 &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, m_created, r)
		   : ZSYSTEMERROR;
	free(buf);
	if (rc != ZOK) {
		free(r);
		m_retry_later(m, "create", rc);
		return;
	}
	m_set_state(m, M_CREATE);
	m->write_dirty = false;    /* the create carries the latest state */
	m->writes++;
	gettimeofday(&m->last_write, NULL);
}

static void m_ensured(int rc, void *arg)
{
	struct zkr_membership *m = mreq_take(arg);
	if (m == NULL || m->state != M_ENSURE)
		return;
	if (rc == ZOK) {
		m_create(m);
	} else if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
		m_lost(m);
	} else {
		m_retry_later(m, "create parents of", rc);
	}
	zkr_session_kick(m->s);
}

static void m_ensured_apps(int rc, void *arg)
{
	struct zkr_membership *m = mreq_take(arg);
	if (m == NULL || m->state != M_ENSURE)
		return;
	if (rc != ZOK && rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
		log_warn("membership: cannot create %s/apps: %s", zkr_session_chroot(m->s), zerror(rc));
	/* /apps is for the watcher and tools; ours is /routers. */
	struct mreq *r = mreq_new(m);
	if (r == NULL || !zkr_session_ensure_path(m->s, ROUTERS_PATH, NULL, m_ensured, r)) {
		free(r);
		m_retry_later(m, "create parents of", ZSYSTEMERROR);
	}
}

/* Begins registration on the current session. */
static void m_start(struct zkr_membership *m)
{
	if (m->state == M_LEFT || zkr_session_zh(m->s) == NULL)
		return;
	evtimer_del(m->retry_ev);
	m_set_state(m, M_ENSURE);
	/* Structural nodes are created open: per-domain ACLs live on
	 * /apps/<domain>/instances (zkrouterctl app add --owner). */
	struct mreq *r = mreq_new(m);
	if (r == NULL || !zkr_session_ensure_path(m->s, "/apps", NULL, m_ensured_apps, r)) {
		free(r);
		m_retry_later(m, "create parents of", ZSYSTEMERROR);
	}
	zkr_session_kick(m->s);
}

/* ---- updates ---------------------------------------------------------- */

static void m_written(int rc, const struct Stat *stat, const void *data)
{
	struct zkr_membership *m = mreq_take(data);
	(void)stat;
	if (m == NULL)
		return;
	m->write_inflight = false;
	if (m->state != M_LIVE)
		return;
	if (rc == ZNONODE) {
		/* Deleted by someone (an operator, a tool): we are alive, so
		 * register again. */
		log_warn("membership: %s%s vanished; re-creating it", zkr_session_chroot(m->s), m->path);
		m_create(m);
	} else if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
		/* RECONNECTED writes again; the timer covers a late reply. */
		m->write_dirty = true;
		struct timeval tv = { MEMBERSHIP_RETRY_MS / 1000, (MEMBERSHIP_RETRY_MS % 1000) * 1000 };
		evtimer_add(m->write_ev, &tv);
	} else if (rc != ZOK) {
		m->write_dirty = true;
		m_retry_later(m, "update", rc);
	} else if (m->write_dirty) {
		m_write(m);
	}
	zkr_session_kick(m->s);
}

static long ms_since(const struct timeval *t)
{
	struct timeval now;
	gettimeofday(&now, NULL);
	return (now.tv_sec - t->tv_sec) * 1000L + (now.tv_usec - t->tv_usec) / 1000L;
}

/* Writes the latest state now, or arms the timer to write it once the
 * rate limit allows. Only one write is in flight; later states wait. */
static void m_write(struct zkr_membership *m)
{
	m->write_dirty = true;
	if (m->state != M_LIVE || m->write_inflight || !zkr_session_connected(m->s))
		return;
	long wait = m->min_interval_ms - ms_since(&m->last_write);
	if (wait > 0) {
		if (!evtimer_pending(m->write_ev, NULL)) {
			struct timeval tv = { wait / 1000, (wait % 1000) * 1000 };
			evtimer_add(m->write_ev, &tv);
		}
		return;
	}
	size_t len = 0;
	uint8_t *buf = m_encode(m, &len);
	if (buf == NULL)
		return;
	struct mreq *r = mreq_new(m);
	int rc = r ? zoo_aset(zkr_session_zh(m->s), m->path, (const char *)buf, (int)len, -1, m_written, r)
		   : ZSYSTEMERROR;
	free(buf);
	if (rc != ZOK) {
		free(r);
		m_retry_later(m, "update", rc);
		return;
	}
	m->write_inflight = true;
	m->write_dirty = false;
	m->writes++;
	gettimeofday(&m->last_write, NULL);
}

static void m_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_membership *m = arg;
	(void)fd;
	(void)what;
	if (m->write_dirty) {
		m_write(m);
		zkr_session_kick(m->s);
	}
}

static void m_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_membership *m = arg;
	(void)fd;
	(void)what;
	if (m->state == M_IDLE && zkr_session_connected(m->s))
		m_start(m);
}

void zkr_membership_update(struct zkr_membership *m, const struct route_table *t)
{
	m->generation = t->generation;
	memcpy(m->digest, t->digest_hex, sizeof(m->digest));
	m->have_table = true;
	m_write(m);
	zkr_session_kick(m->s);
}

/* ---- session ---------------------------------------------------------- */

static void m_on_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct zkr_membership *m = arg;
	(void)s;
	if (m->state == M_LEFT)
		return;
	switch (ev) {
	case ZKR_SESSION_NEW:
		/* The old node died with the old session: create it again. */
		m->epoch++;
		m->write_inflight = false;
		m->stale_rounds = 0;
		m_start(m);
		break;
	case ZKR_SESSION_RECONNECTED:
		if (m->state == M_IDLE)
			m_start(m);
		else if (m->state == M_LIVE && m->write_dirty)
			m_write(m);
		break;
	case ZKR_SESSION_EXPIRED:
		m->epoch++;            /* replies of the dead handle are void */
		m->write_inflight = false;
		m_set_state(m, M_IDLE);
		break;
	case ZKR_SESSION_DISCONNECTED:
		break;
	}
}

static void m_deleted_on_leave(int rc, const void *data)
{
	struct zkr_membership *m = mreq_take(data);
	if (m != NULL && rc != ZOK && rc != ZNONODE)
		log_warn("membership: leave: delete %s: %s (the node goes with the session)", m->path,
			 zerror(rc));
}

void zkr_membership_leave(struct zkr_membership *m)
{
	if (m->state == M_LEFT)
		return;
	bool had_node = m->state == M_LIVE || m->state == M_CREATE || m->state == M_CHECK;
	m_set_state(m, M_LEFT);
	evtimer_del(m->write_ev);
	evtimer_del(m->retry_ev);
	zhandle_t *zh = zkr_session_zh(m->s);
	if (!had_node || zh == NULL)
		return;
	struct mreq *r = mreq_new(m);
	int rc = r ? zoo_adelete(zh, m->path, -1, m_deleted_on_leave, r) : ZSYSTEMERROR;
	if (rc != ZOK) {
		free(r);
		log_warn("membership: leave: %s", zerror(rc));
	}
	log_info("membership: leaving %s%s", zkr_session_chroot(m->s), m->path);
	zkr_session_kick(m->s);
}

bool zkr_membership_registered(const struct zkr_membership *m)
{
	return m->state == M_LIVE;
}

uint64_t zkr_membership_writes(const struct zkr_membership *m)
{
	return m->writes;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* Copies n strings; *count is the number copied so far (free_list frees
 * them whatever happened). */
static bool dup_list(char ***dst, size_t *count, const char *const *src, size_t n)
{
	*count = 0;
	*dst = NULL;
	if (n == 0)
		return true;
	if ((*dst = calloc(n, sizeof(**dst))) == NULL)
		return false;
	for (; *count < n; (*count)++)
		if (((*dst)[*count] = strdup(src[*count])) == NULL)
			return false;
	return true;
}

static bool dup_or_null(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src == NULL || *dst != NULL;
}

struct zkr_membership *zkr_membership_new(struct event_base *base, struct zkr_session *s,
					  const struct zkr_membership_opts *opts, char *why, size_t whylen)
{
	if (opts->node_id == NULL || !record_valid_znode_name(opts->node_id)) {
		snprintf(why, whylen, "node id '%s' is not a valid znode name",
			 opts->node_id ? opts->node_id : "");
		return NULL;
	}
	struct zkr_membership *m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto oom;
	m->id = next_member_id++;
	m->base = base;
	m->s = s;
	m->min_interval_ms = opts->min_interval_ms > 0 ? opts->min_interval_ms : MEMBERSHIP_MIN_INTERVAL_MS;
	struct timeval now;
	gettimeofday(&now, NULL);
	m->started_at_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_usec / 1000;
	if (!dup_or_null(&m->node_id, opts->node_id) || !dup_or_null(&m->admin, opts->admin) ||
	    !dup_or_null(&m->version, opts->version) ||
	    asprintf(&m->path, ROUTERS_PATH "/%s", opts->node_id) < 0) {
		m->path = NULL;
		goto oom;
	}
	if (!dup_list(&m->listen, &m->n_listen, opts->listen, opts->n_listen) ||
	    !dup_list(&m->tls_listen, &m->n_tls_listen, opts->tls_listen, opts->n_tls_listen))
		goto oom;
	/* Refuse now what would be refused at every write. */
	size_t len;
	char rwhy[RECORD_WHY_MAX];
	uint8_t *probe = m_encode_why(m, &len, rwhy, sizeof(rwhy));
	if (probe == NULL) {
		snprintf(why, whylen, "router record: %s", rwhy);
		zkr_membership_free(m);
		return NULL;
	}
	free(probe);
	m->write_ev = evtimer_new(base, m_write_cb, m);
	m->retry_ev = evtimer_new(base, m_retry_cb, m);
	if (m->write_ev == NULL || m->retry_ev == NULL)
		goto oom;
	m->live_next = live_members;
	live_members = m;
	if (!zkr_session_subscribe(s, m_on_session, m))
		goto oom;
	if (zkr_session_connected(s))
		m_on_session(s, ZKR_SESSION_NEW, m);
	return m;
oom:
	snprintf(why, whylen, "out of memory creating the membership");
	zkr_membership_free(m);
	return NULL;
}

void zkr_membership_free(struct zkr_membership *m)
{
	if (m == NULL)
		return;
	for (struct zkr_membership **pp = &live_members; *pp; pp = &(*pp)->live_next) {
		if (*pp == m) {
			*pp = m->live_next;
			break;
		}
	}
	zkr_session_unsubscribe(m->s, m_on_session, m);
	if (m->write_ev)
		event_free(m->write_ev);
	if (m->retry_ev)
		event_free(m->retry_ev);
	free_list(m->listen, m->n_listen);
	free_list(m->tls_listen, m->n_tls_listen);
	free(m->node_id);
	free(m->path);
	free(m->admin);
	free(m->version);
	free(m);
}
