/*
 * The watched routing table (see watcher.h).
 *
 * The watcher keeps a model of the tree, one `wapp` per /apps child, in a
 * hash by domain. Each wapp knows its AppConfig and its instances (sorted
 * by znode name). Reads are asynchronous; a wapp becomes "complete" once
 * its config has been read and its instance list and every new instance's
 * data have come back. A complete wapp that changed is rebuilt into a
 * route_app and swapped into the working table; one deferred event per
 * loop turn publishes the working table, so a burst of changes to many
 * apps yields one snapshot.
 *
 *   watch event --> batch (coalesced per app, jittered) --> list / get
 *        --> merge into wapp --> complete? --> rebuild app --> publish
 *
 * Sessions. A new session (the first, or after expiry) starts a "sync":
 * the model is dropped and read again from scratch while the last
 * published table keeps serving; when every wapp is complete, the whole
 * table is built from the model and published in one swap. A mere
 * disconnect changes nothing: the client re-sends our watches when it
 * reconnects, and reads that failed with ZCONNECTIONLOSS are re-issued.
 *
 * Lifetime. Completions and watches carry the watcher's numeric id, not a
 * pointer, and look it up in the list of live watchers; a callback that
 * arrives after zkr_watcher_free (or from a previous session: the epoch
 * differs) is dropped. So nothing dangles whatever the free order.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/log.h"
#include "registry/record.h"
#include "registry/watcher.h"

#define APPS_PATH "/apps"
#define WATCHER_JITTER_DEFAULT_MS 10
#define WATCHER_RETRY_DEFAULT_MS 2000

enum winst_state {
	WINST_NONE,                /* not read yet */
	WINST_OK,                  /* record decoded and valid: routed */
	WINST_BAD,                 /* undecodable or invalid: skipped (logged) */
};

struct winst {
	char *id;                  /* znode name */
	enum winst_state st;
	bool inflight;             /* a getData is outstanding */
	bool retry;                /* not read successfully yet; the sweep re-reads */
	/* What the table needs of the record; labels are not routed on. */
	char *host;
	char *zone;
	uint32_t port, weight;
	bool draining;
	bool has_registered_at;
	uint64_t registered_at_ms;
};

struct wapp {
	struct wapp *hnext;
	char *domain;
	uint64_t serial;           /* unique per wapp, so replies to a removed
				    * and re-added app's predecessor are dropped */
	bool invalid;              /* bad domain name: ignored, not watched */
	bool mark;                 /* scratch for the /apps diff */

	record_app_config *cfg;    /* NULL: defaults (empty data or not read) */
	bool cfg_read;             /* a data read finished at least once */
	bool cfg_inflight, cfg_again, cfg_need;

	bool list_read;            /* an instances list finished at least once */
	bool list_inflight, list_again, list_need;
	bool have_cversion;
	int32_t cversion;          /* of instances, as of the last list */
	unsigned pending_gets;
	struct winst *inst;        /* sorted by id */
	size_t n_inst;

	bool in_batch;
	bool complete;             /* counted in w->n_incomplete while false */
	bool dirty;                /* model differs from what the table has */
};

enum req_kind { REQ_APPS, REQ_CFG, REQ_LIST, REQ_GET, REQ_EXISTS };

struct req {
	uint64_t wid, epoch, serial;
	enum req_kind kind;
	char *domain;
	char *id;
};

struct zkr_watcher {
	struct zkr_watcher *live_next;
	uint64_t id;
	struct event_base *base;
	struct zkr_session *s;
	zkr_watcher_cb cb;
	void *cb_arg;
	int jitter_ms, retry_ms;
	uint64_t rng;

	uint64_t epoch;            /* +1 per session; older replies are dropped */
	bool running;              /* a session is live and reads are issued */
	bool syncing;              /* a complete re-read is in progress */
	bool apps_read;            /* /apps listed once in this epoch */
	bool apps_inflight, apps_again, apps_need;
	size_t n_incomplete;

	struct wapp **buckets;
	size_t n_buckets, n_apps;
	uint64_t next_serial;

	struct wapp **batch;       /* apps waiting for the batch timer */
	size_t n_batch, cap_batch;
	bool batch_apps;           /* relist /apps in the next batch */
	struct event *batch_ev;
	struct event *retry_ev;
	struct event *publish_ev;

	bool building;             /* a sync's table is being assembled */
	struct route_app **build_apps;
	size_t build_n, build_pos;
	struct route_table *build_table;
	struct event *build_ev;

	struct route_table *current;   /* last published */
	struct route_table *work;      /* built, not yet published (or NULL) */
	uint64_t generation;
	struct zkr_watcher_stats stats;
};

static struct zkr_watcher *live_watchers;
static uint64_t next_watcher_id = 1;

static void wapp_issue_list(struct zkr_watcher *w, struct wapp *a);
static void wapp_issue_cfg(struct zkr_watcher *w, struct wapp *a);
static void watcher_issue_apps(struct zkr_watcher *w);
static void wapp_settle(struct zkr_watcher *w, struct wapp *a);
static void watcher_check_synced(struct zkr_watcher *w);
static void watcher_table_remove(struct zkr_watcher *w, const char *domain);

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static struct zkr_watcher *watcher_lookup(uint64_t id)
{
	for (struct zkr_watcher *w = live_watchers; w != NULL; w = w->live_next)
		if (w->id == id)
			return w;
	return NULL;
}

static uint64_t watcher_rand(struct zkr_watcher *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ULL;
}

static const char *chroot_of(struct zkr_watcher *w)
{
	const char *c = zkr_session_chroot(w->s);
	return strcmp(c, "/") == 0 ? "" : c;
}

/* ---- the domain hash -------------------------------------------------- */

static size_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static struct wapp *wapp_find(struct zkr_watcher *w, const char *domain)
{
	if (w->n_buckets == 0)
		return NULL;
	for (struct wapp *a = w->buckets[hash_str(domain) & (w->n_buckets - 1)]; a; a = a->hnext)
		if (strcmp(a->domain, domain) == 0)
			return a;
	return NULL;
}

static bool wapp_hash_grow(struct zkr_watcher *w)
{
	size_t n = w->n_buckets ? w->n_buckets * 2 : 64;
	struct wapp **b = calloc(n, sizeof(*b));
	if (b == NULL)
		return false;
	for (size_t i = 0; i < w->n_buckets; i++) {
		struct wapp *a = w->buckets[i];
		while (a != NULL) {
			struct wapp *next = a->hnext;
			size_t at = hash_str(a->domain) & (n - 1);
			a->hnext = b[at];
			b[at] = a;
			a = next;
		}
	}
	free(w->buckets);
	w->buckets = b;
	w->n_buckets = n;
	return true;
}

static void winst_clear(struct winst *in)
{
	free(in->id);
	free(in->host);
	free(in->zone);
}

static void wapp_free(struct wapp *a)
{
	for (size_t i = 0; i < a->n_inst; i++)
		winst_clear(&a->inst[i]);
	free(a->inst);
	record_app_config_free(a->cfg);
	free(a->domain);
	free(a);
}

static struct wapp *wapp_add(struct zkr_watcher *w, const char *domain)
{
	if (w->n_apps >= w->n_buckets && !wapp_hash_grow(w))
		return NULL;
	struct wapp *a = calloc(1, sizeof(*a));
	if (a == NULL || (a->domain = strdup(domain)) == NULL) {
		free(a);
		return NULL;
	}
	a->serial = ++w->next_serial;
	size_t at = hash_str(domain) & (w->n_buckets - 1);
	a->hnext = w->buckets[at];
	w->buckets[at] = a;
	w->n_apps++;
	w->n_incomplete++;         /* complete == false */
	return a;
}

static void wapp_remove(struct zkr_watcher *w, struct wapp *a)
{
	struct wapp **pp = &w->buckets[hash_str(a->domain) & (w->n_buckets - 1)];
	while (*pp != a)
		pp = &(*pp)->hnext;
	*pp = a->hnext;
	w->n_apps--;
	if (!a->complete && !a->invalid)
		w->n_incomplete--;
	if (a->in_batch)
		for (size_t i = 0; i < w->n_batch; i++)
			if (w->batch[i] == a)
				w->batch[i] = NULL;
	wapp_free(a);
}

static void watcher_drop_model(struct zkr_watcher *w)
{
	for (size_t i = 0; i < w->n_buckets; i++) {
		struct wapp *a = w->buckets[i];
		while (a != NULL) {
			struct wapp *next = a->hnext;
			wapp_free(a);
			a = next;
		}
		w->buckets[i] = NULL;
	}
	w->n_apps = 0;
	w->n_incomplete = 0;
	w->n_batch = 0;
	w->batch_apps = false;
}

/* ---- requests --------------------------------------------------------- */

static struct req *req_new(struct zkr_watcher *w, enum req_kind kind, struct wapp *a, const char *id)
{
	struct req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->wid = w->id;
	r->epoch = w->epoch;
	r->kind = kind;
	if (a != NULL) {
		r->serial = a->serial;
		r->domain = strdup(a->domain);
		if (r->domain == NULL)
			goto failed;
	}
	if (id != NULL && (r->id = strdup(id)) == NULL)
		goto failed;
	w->stats.requests++;
	return r;
failed:
	free(r->domain);
	free(r);
	return NULL;
}

static void req_free(struct req *r)
{
	free(r->domain);
	free(r->id);
	free(r);
}

/*
 * Resolves a reply to its watcher and wapp. Returns NULL (and frees the
 * request) if the watcher is gone or the reply belongs to an earlier
 * session; *app is NULL if the app was removed since (replaced apps have
 * a new serial).
 */
static struct zkr_watcher *req_resolve(struct req *r, struct wapp **app)
{
	struct zkr_watcher *w = watcher_lookup(r->wid);
	if (w == NULL || r->epoch != w->epoch) {
		req_free(r);
		return NULL;
	}
	*app = NULL;
	if (r->domain != NULL) {
		struct wapp *a = wapp_find(w, r->domain);
		if (a != NULL && a->serial == r->serial)
			*app = a;
	}
	return w;
}

/* Errors that heal by themselves once the session is back. */
static bool rc_transient(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZCLOSING ||
	       rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE || rc == ZSESSIONMOVED;
}

static void watcher_schedule_retry(struct zkr_watcher *w, bool transient)
{
	/* Transient failures are retried on RECONNECTED; the timer is a
	 * fallback in case the reply raced the reconnect. */
	int ms = transient ? 500 : w->retry_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	if (!evtimer_pending(w->retry_ev, NULL))
		evtimer_add(w->retry_ev, &tv);
}

static void watcher_read_failed(struct zkr_watcher *w, const char *what, const char *path, int rc)
{
	bool transient = rc_transient(rc);
	if (!transient) {
		w->stats.read_errors++;
		log_warn("watcher: %s %s%s: %s; keeping what we have, retrying", what, chroot_of(w), path,
			 zerror(rc));
	} else {
		log_debug("watcher: %s %s%s: %s", what, chroot_of(w), path, zerror(rc));
	}
	watcher_schedule_retry(w, transient);
}

/* ---- watches ---------------------------------------------------------- */

/* Queues an instances re-list of `a` (NULL: only arm the timer, for /apps)
 * for the next batch. Several events for one app cost one re-list. */
static void batch_add(struct zkr_watcher *w, struct wapp *a)
{
	if (a != NULL && !a->in_batch) {
		if (w->n_batch == w->cap_batch) {
			size_t cap = w->cap_batch ? w->cap_batch * 2 : 16;
			struct wapp **n = realloc(w->batch, cap * sizeof(*n));
			if (n == NULL) {
				/* Cannot queue: read now rather than lose the event. */
				wapp_issue_list(w, a);
				return;
			}
			w->batch = n;
			w->cap_batch = cap;
		}
		w->batch[w->n_batch++] = a;
		a->in_batch = true;
	}
	if (!evtimer_pending(w->batch_ev, NULL)) {
		int ms = w->jitter_ms > 0 ? (int)(watcher_rand(w) % (uint64_t)(w->jitter_ms + 1)) : 0;
		struct timeval tv = { 0, ms * 1000 };
		evtimer_add(w->batch_ev, &tv);
	}
}

static void watcher_batch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_watcher *w = arg;
	(void)fd;
	(void)what;
	if (!w->running)
		return;
	if (w->batch_apps) {
		w->batch_apps = false;
		watcher_issue_apps(w);
	}
	for (size_t i = 0; i < w->n_batch; i++) {
		struct wapp *a = w->batch[i];
		if (a == NULL)
			continue;
		a->in_batch = false;
		wapp_issue_list(w, a);
	}
	w->n_batch = 0;
	zkr_session_kick(w->s);
}

/*
 * Every watch of this watcher lands here. Paths are relative to the
 * chroot: /apps, /apps/<d> (data, or deleted), /apps/<d>/instances.
 */
static void watcher_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)state;
	/* Session events reach every watcher; the session module handles them. */
	if (type == ZOO_SESSION_EVENT || type == ZOO_NOTWATCHING_EVENT)
		return;
	struct zkr_watcher *w = watcher_lookup((uint64_t)(uintptr_t)ctx);
	if (w == NULL || !w->running || zh != zkr_session_zh(w->s) || path == NULL)
		return;

	if (strcmp(path, APPS_PATH) == 0) {
		w->batch_apps = true;
		batch_add(w, NULL);
		return;
	}
	if (strncmp(path, APPS_PATH "/", sizeof(APPS_PATH)) != 0)
		return;
	const char *rest = path + sizeof(APPS_PATH);
	const char *slash = strchr(rest, '/');
	char domain[RECORD_HOST_MAX + 3];
	size_t dlen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (dlen == 0 || dlen >= sizeof(domain))
		return;
	memcpy(domain, rest, dlen);
	domain[dlen] = '\0';
	struct wapp *a = wapp_find(w, domain);
	if (a == NULL || a->invalid)
		return;

	if (slash == NULL) {
		if (type == ZOO_CHANGED_EVENT) {
			wapp_issue_cfg(w, a);
			zkr_session_kick(w->s);
		} else if (type == ZOO_DELETED_EVENT) {
			/* The /apps child watch reports the removal too; re-list
			 * /apps so it is handled even if that event was merged. */
			w->batch_apps = true;
			batch_add(w, NULL);
		}
	} else if (strcmp(slash, "/instances") == 0) {
		batch_add(w, a);
	}
}


/* ---- issuing reads ---------------------------------------------------- */

static void *watch_ctx(struct zkr_watcher *w)
{
	return (void *)(uintptr_t)w->id;
}

static void watcher_apps_listed(int rc, const struct String_vector *names, const void *data);
static void watcher_exists_done(int rc, const struct Stat *stat, const void *data);
static void wapp_cfg_read(int rc, const char *value, int len, const struct Stat *stat, const void *data);
static void wapp_listed(int rc, const struct String_vector *names, const struct Stat *stat,
			const void *data);
static void winst_read(int rc, const char *value, int len, const struct Stat *stat, const void *data);

static void watcher_issue_apps(struct zkr_watcher *w)
{
	zhandle_t *zh = zkr_session_zh(w->s);
	if (w->apps_inflight) {
		w->apps_again = true;
		return;
	}
	struct req *r = req_new(w, REQ_APPS, NULL, NULL);
	int rc = r ? zoo_awget_children(zh, APPS_PATH, watcher_watch, watch_ctx(w), watcher_apps_listed, r)
		   : ZSYSTEMERROR;
	if (rc != ZOK) {
		if (r != NULL)
			req_free(r);
		w->apps_need = true;
		watcher_read_failed(w, "list", APPS_PATH, rc);
		return;
	}
	w->apps_inflight = true;
	w->apps_need = false;
}

/* An exists watch on a missing node: its creation fires a watch event on
 * the same path, which re-lists. */
static void watcher_issue_exists(struct zkr_watcher *w, struct wapp *a, const char *path)
{
	struct req *r = req_new(w, REQ_EXISTS, a, NULL);
	int rc = r ? zoo_awexists(zkr_session_zh(w->s), path, watcher_watch, watch_ctx(w),
				  watcher_exists_done, r)
		   : ZSYSTEMERROR;
	if (rc != ZOK) {
		if (r != NULL)
			req_free(r);
		if (a != NULL)
			a->list_need = true;
		else
			w->apps_need = true;
		watcher_read_failed(w, "exists", path, rc);
	}
}

static void wapp_issue_cfg(struct zkr_watcher *w, struct wapp *a)
{
	if (a->cfg_inflight) {
		a->cfg_again = true;
		return;
	}
	char path[sizeof(APPS_PATH) + RECORD_HOST_MAX + 2];
	snprintf(path, sizeof(path), APPS_PATH "/%s", a->domain);
	struct req *r = req_new(w, REQ_CFG, a, NULL);
	int rc = r ? zoo_awget(zkr_session_zh(w->s), path, watcher_watch, watch_ctx(w), wapp_cfg_read, r)
		   : ZSYSTEMERROR;
	if (rc != ZOK) {
		if (r != NULL)
			req_free(r);
		a->cfg_need = true;
		watcher_read_failed(w, "read", path, rc);
		return;
	}
	a->cfg_inflight = true;
	a->cfg_need = false;
}

static void wapp_issue_list(struct zkr_watcher *w, struct wapp *a)
{
	if (a->list_inflight) {
		a->list_again = true;
		return;
	}
	char path[sizeof(APPS_PATH) + RECORD_HOST_MAX + 16];
	snprintf(path, sizeof(path), APPS_PATH "/%s/instances", a->domain);
	struct req *r = req_new(w, REQ_LIST, a, NULL);
	int rc = r ? zoo_awget_children2(zkr_session_zh(w->s), path, watcher_watch, watch_ctx(w),
					 wapp_listed, r)
		   : ZSYSTEMERROR;
	if (rc != ZOK) {
		if (r != NULL)
			req_free(r);
		a->list_need = true;
		watcher_read_failed(w, "list", path, rc);
		return;
	}
	a->list_inflight = true;
	a->list_need = false;
}

/* One getData, no watch: instance records are immutable. */
static void winst_issue_get(struct zkr_watcher *w, struct wapp *a, struct winst *in)
{
	char path[sizeof(APPS_PATH) + RECORD_HOST_MAX + RECORD_ID_MAX + 32];
	snprintf(path, sizeof(path), APPS_PATH "/%s/instances/%s", a->domain, in->id);
	struct req *r = req_new(w, REQ_GET, a, in->id);
	int rc = r ? zoo_aget(zkr_session_zh(w->s), path, 0, winst_read, r) : ZSYSTEMERROR;
	if (rc != ZOK) {
		if (r != NULL)
			req_free(r);
		in->retry = true;
		watcher_read_failed(w, "read", path, rc);
		return;
	}
	in->inflight = true;
	in->retry = false;
	a->pending_gets++;
}

/* ---- replies ---------------------------------------------------------- */

static void watcher_exists_done(int rc, const struct Stat *stat, const void *data)
{
	struct req *r = (struct req *)data;
	struct wapp *a;
	struct zkr_watcher *w = req_resolve(r, &a);
	(void)stat;
	if (w == NULL)
		return;
	bool for_app = r->domain != NULL;
	req_free(r);
	if (for_app && a == NULL)
		return;
	if (rc == ZOK) {
		/* Created between our list and this exists: list now. */
		if (for_app)
			wapp_issue_list(w, a);
		else
			watcher_issue_apps(w);
	} else if (rc != ZNONODE) {
		if (for_app)
			a->list_need = true;
		else
			w->apps_need = true;
		watcher_read_failed(w, "exists", for_app ? a->domain : APPS_PATH, rc);
	}
}

/* Drops `domain` from the working table if it is there. */
static void watcher_table_remove(struct zkr_watcher *w, const char *domain)
{
	if (w->syncing)
		return;     /* the fresh table is built from the model at the end */
	struct route_table *base = w->work ? w->work : w->current;
	if (base == NULL || route_table_find(base, domain, strlen(domain)) == NULL)
		return;
	struct route_table *next = route_table_without_app(base, domain);
	if (next == NULL) {
		log_error("watcher: out of memory removing %s; retrying", domain);
		w->apps_need = true;
		watcher_schedule_retry(w, false);
		return;
	}
	route_table_unref(w->work);
	w->work = next;
	event_active(w->publish_ev, EV_TIMEOUT, 0);
}

static void watcher_apps_listed(int rc, const struct String_vector *names, const void *data)
{
	struct req *r = (struct req *)data;
	struct wapp *unused;
	struct zkr_watcher *w = req_resolve(r, &unused);
	if (w == NULL)
		return;
	req_free(r);
	w->apps_inflight = false;

	static const struct String_vector none = { 0, NULL };
	if (rc == ZNONODE) {
		/* No /apps yet: a complete, empty answer. Watch for its creation. */
		watcher_issue_exists(w, NULL, APPS_PATH);
		names = &none;
	} else if (rc != ZOK) {
		w->apps_need = true;
		watcher_read_failed(w, "list", APPS_PATH, rc);
		return;
	}

	for (size_t i = 0; i < w->n_buckets; i++)
		for (struct wapp *a = w->buckets[i]; a; a = a->hnext)
			a->mark = false;
	for (int32_t i = 0; i < names->count; i++) {
		const char *d = names->data[i];
		struct wapp *a = wapp_find(w, d);
		if (a == NULL) {
			a = wapp_add(w, d);
			if (a == NULL) {
				log_error("watcher: out of memory adding app %s; retrying", d);
				w->apps_need = true;
				watcher_schedule_retry(w, false);
				continue;
			}
			if (!record_valid_domain(d)) {
				/* Listed once per session: the name stays in the
				 * model, flagged, so re-lists do not log it again. */
				log_warn("watcher: %s" APPS_PATH "/%s: not a valid app domain; ignored",
					 chroot_of(w), d);
				a->invalid = true;
				a->complete = true;
				w->n_incomplete--;
			} else {
				wapp_issue_cfg(w, a);
				wapp_issue_list(w, a);
			}
		}
		a->mark = true;
	}
	for (size_t i = 0; i < w->n_buckets; i++) {
		struct wapp *a = w->buckets[i];
		while (a != NULL) {
			struct wapp *next = a->hnext;
			if (!a->mark) {
				log_info("watcher: app %s removed", a->domain);
				if (!a->invalid)
					watcher_table_remove(w, a->domain);
				wapp_remove(w, a);
			}
			a = next;
		}
	}
	w->apps_read = true;
	if (w->apps_again) {
		w->apps_again = false;
		watcher_issue_apps(w);
	}
	watcher_check_synced(w);
	zkr_session_kick(w->s);
}

static void wapp_cfg_read(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
	struct req *r = (struct req *)data;
	struct wapp *a;
	struct zkr_watcher *w = req_resolve(r, &a);
	(void)stat;
	if (w == NULL)
		return;
	req_free(r);
	if (a == NULL)
		return;
	a->cfg_inflight = false;
	char path[sizeof(APPS_PATH) + RECORD_HOST_MAX + 2];
	snprintf(path, sizeof(path), APPS_PATH "/%s", a->domain);

	if (rc == ZOK) {
		if (len <= 0) {
			record_app_config_free(a->cfg);
			a->cfg = NULL;   /* empty data: every default */
		} else {
			char why[RECORD_WHY_MAX];
			record_app_config *c = record_app_config_decode((const uint8_t *)value, (size_t)len,
									why, sizeof(why));
			if (c == NULL) {
				/* Keep the last good config (or defaults): a typo in
				 * one field must not take the app down. */
				w->stats.bad_records++;
				log_warn("watcher: %s%s: bad AppConfig skipped (%s); %s", chroot_of(w), path,
					 why, a->cfg ? "keeping the previous one" : "using defaults");
			} else {
				record_app_config_free(a->cfg);
				a->cfg = c;
			}
		}
		a->cfg_read = true;
		a->dirty = true;
	} else if (rc == ZNONODE) {
		/* The app's node is gone; its /apps child event follows. */
		w->batch_apps = true;
		batch_add(w, NULL);
		return;
	} else {
		a->cfg_need = true;
		/* A read that cannot succeed soon (ZNOAUTH) must not hold the
		 * whole sync back: count it as read with what we have. */
		if (!rc_transient(rc))
			a->cfg_read = true;
		watcher_read_failed(w, "read", path, rc);
	}
	if (a->cfg_again) {
		a->cfg_again = false;
		wapp_issue_cfg(w, a);
	}
	wapp_settle(w, a);
	zkr_session_kick(w->s);
}

static struct winst *winst_find(struct wapp *a, const char *id)
{
	size_t lo = 0, hi = a->n_inst;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->inst[mid].id, id);
		if (c == 0)
			return &a->inst[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Merges a fresh child list into the app's sorted instances: kept ones
 * stay as they are (records are immutable), vanished ones go, new ones
 * are read once. Work is proportional to this app's size.
 *
 * One blind spot of "read new children only": a child deleted and created
 * again between two lists has the same name in both, so it looks kept
 * (an agent that re-registers as DRAINING does exactly that). The
 * parent's cversion counts every child create and delete; when it moved
 * by more than the adds and removes we can see, something was replaced
 * unseen, and every kept child is read again. That is rare, and still
 * costs only this app.
 */
static bool wapp_merge(struct zkr_watcher *w, struct wapp *a, const struct String_vector *names,
		       const struct Stat *stat)
{
	size_t n = names ? (size_t)names->count : 0;
	char **sorted = NULL;
	struct winst *next = NULL;
	if (n > 0) {
		sorted = malloc(n * sizeof(*sorted));
		next = calloc(n, sizeof(*next));
		if (sorted == NULL || next == NULL) {
			free(sorted);
			free(next);
			return false;
		}
		memcpy(sorted, names->data, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_str);
	}
	size_t i = 0, j = 0, k = 0, visible = 0;
	bool ok = true;
	while (i < a->n_inst || j < n) {
		int c = i == a->n_inst ? 1 : j == n ? -1 : strcmp(a->inst[i].id, sorted[j]);
		if (c < 0) {           /* gone */
			if (a->inst[i].st == WINST_OK)
				a->dirty = true;
			winst_clear(&a->inst[i++]);
			visible++;
		} else if (c == 0) {   /* kept */
			next[k++] = a->inst[i++];
			j++;
		} else {               /* new */
			struct winst *in = &next[k];
			memset(in, 0, sizeof(*in));
			in->id = strdup(sorted[j++]);
			if (in->id == NULL) {
				ok = false;
				continue;
			}
			in->retry = true;
			k++;
			visible++;
		}
	}
	free(a->inst);
	a->inst = next;
	a->n_inst = k;
	free(sorted);

	bool recheck = false;
	if (stat != NULL) {
		if (a->have_cversion && (int64_t)stat->cversion - a->cversion > (int64_t)visible)
			recheck = true;
		a->cversion = stat->cversion;
		a->have_cversion = true;
	}
	if (recheck)
		log_debug("watcher: %s: children replaced unseen; re-reading them", a->domain);

	for (size_t x = 0; x < a->n_inst; x++) {
		struct winst *in = &a->inst[x];
		if (in->inflight)
			continue;
		if (!in->retry && !(recheck && in->st != WINST_NONE))
			continue;
		if (in->st == WINST_NONE &&
		    (!record_valid_znode_name(in->id) || strlen(in->id) > RECORD_ID_MAX)) {
			w->stats.bad_records++;
			log_warn("watcher: %s" APPS_PATH "/%s/instances/%.64s: bad instance name; skipped",
				 chroot_of(w), a->domain, in->id);
			in->st = WINST_BAD;
			in->retry = false;
			continue;
		}
		winst_issue_get(w, a, in);
	}
	return ok;
}

static void wapp_listed(int rc, const struct String_vector *names, const struct Stat *stat,
			const void *data)
{
	struct req *r = (struct req *)data;
	struct wapp *a;
	struct zkr_watcher *w = req_resolve(r, &a);
	if (w == NULL)
		return;
	req_free(r);
	if (a == NULL)
		return;
	a->list_inflight = false;
	char path[sizeof(APPS_PATH) + RECORD_HOST_MAX + 16];
	snprintf(path, sizeof(path), APPS_PATH "/%s/instances", a->domain);

	if (rc == ZOK || rc == ZNONODE) {
		if (rc == ZNONODE) {
			/* No instances node: no instances, a true answer. Its
			 * creation fires the exists watch, which re-lists. */
			names = NULL;
			stat = NULL;
			a->have_cversion = false;
			watcher_issue_exists(w, a, path);
		}
		if (!wapp_merge(w, a, names, stat)) {
			log_error("watcher: out of memory reading %s%s; retrying", chroot_of(w), path);
			a->list_need = true;
			watcher_schedule_retry(w, false);
		}
		a->list_read = true;
	} else {
		a->list_need = true;
		if (!rc_transient(rc))
			a->list_read = true;   /* see wapp_cfg_read */
		watcher_read_failed(w, "list", path, rc);
	}
	if (a->list_again) {
		a->list_again = false;
		wapp_issue_list(w, a);
	}
	wapp_settle(w, a);
	zkr_session_kick(w->s);
}

static bool winst_fill(struct winst *in, const record_instance *rec)
{
	in->host = strdup(rec->host);
	in->zone = rec->zone ? strdup(rec->zone) : NULL;
	if (in->host == NULL || (rec->zone != NULL && in->zone == NULL)) {
		free(in->host);
		free(in->zone);
		in->host = in->zone = NULL;
		return false;
	}
	in->port = rec->port;
	in->weight = rec->weight;
	in->draining = rec->state == ZKROUTER__INSTANCE__STATE__DRAINING;
	in->has_registered_at = rec->has_registered_at_ms;
	in->registered_at_ms = rec->registered_at_ms;
	return true;
}

static void winst_read(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
	struct req *r = (struct req *)data;
	struct wapp *a;
	struct zkr_watcher *w = req_resolve(r, &a);
	(void)stat;
	if (w == NULL)
		return;
	if (a == NULL) {
		req_free(r);
		return;
	}
	a->pending_gets--;
	struct winst *in = winst_find(a, r->id);
	char path[sizeof(APPS_PATH) + RECORD_HOST_MAX + RECORD_ID_MAX + 32];
	snprintf(path, sizeof(path), APPS_PATH "/%s/instances/%s", a->domain, r->id);
	req_free(r);

	if (in == NULL || !in->inflight) {
		/* Removed by a later list while we were reading it. */
	} else if (rc == ZOK) {
		in->inflight = false;
		char why[RECORD_WHY_MAX];
		record_instance *rec = record_instance_decode((const uint8_t *)value, len > 0 ? (size_t)len : 0,
							      why, sizeof(why));
		if (in->st == WINST_OK)
			a->dirty = true;   /* a re-read replaces what was routed */
		free(in->host);
		free(in->zone);
		in->host = in->zone = NULL;
		if (rec == NULL) {
			w->stats.bad_records++;
			log_warn("watcher: %s%s: bad Instance record skipped: %s", chroot_of(w), path, why);
			in->st = WINST_BAD;
		} else if (!winst_fill(in, rec)) {
			log_error("watcher: out of memory reading %s%s; retrying", chroot_of(w), path);
			in->st = WINST_NONE;
			in->retry = true;
			watcher_schedule_retry(w, false);
		} else {
			in->st = WINST_OK;
			a->dirty = true;
		}
		record_instance_free(rec);
	} else if (rc == ZNONODE) {
		/* Listed a moment ago, gone now: a removal, not an error. The
		 * instances watch fires too; drop it here already. */
		if (in->st == WINST_OK)
			a->dirty = true;
		size_t at = (size_t)(in - a->inst);
		winst_clear(in);
		memmove(&a->inst[at], &a->inst[at + 1], (a->n_inst - at - 1) * sizeof(*in));
		a->n_inst--;
	} else {
		/* Keep whatever record it had: a failed read removes nothing. */
		in->inflight = false;
		in->retry = true;
		watcher_read_failed(w, "read", path, rc);
	}
	wapp_settle(w, a);
	zkr_session_kick(w->s);
}

/* ---- building and publishing ------------------------------------------ */

static struct route_app *wapp_build(const struct wapp *a)
{
	struct route_app *app = route_app_new(a->domain, a->cfg);
	if (app == NULL)
		return NULL;
	for (size_t i = 0; i < a->n_inst; i++) {
		const struct winst *in = &a->inst[i];
		if (in->st != WINST_OK)
			continue;
		record_instance rec = ZKROUTER__INSTANCE__INIT;
		rec.host = in->host;
		rec.has_port = true;
		rec.port = in->port;
		rec.weight = in->weight;
		rec.zone = in->zone;
		rec.state = in->draining ? ZKROUTER__INSTANCE__STATE__DRAINING : ZKROUTER__INSTANCE__STATE__UP;
		rec.has_registered_at_ms = in->has_registered_at;
		rec.registered_at_ms = in->registered_at_ms;
		if (!route_app_add_instance(app, in->id, &rec)) {
			route_app_unref(app);
			return NULL;
		}
	}
	route_app_seal(app);
	return app;
}

static void wapp_settle(struct zkr_watcher *w, struct wapp *a)
{
	bool complete = a->cfg_read && a->list_read && a->pending_gets == 0;
	if (complete != a->complete) {
		a->complete = complete;
		if (complete)
			w->n_incomplete--;
		else
			w->n_incomplete++;
	}
	if (w->syncing) {
		watcher_check_synced(w);
		return;
	}
	if (!complete || !a->dirty)
		return;

	struct route_app *app = wapp_build(a);
	struct route_table *base = w->work ? w->work : w->current;
	struct route_table *next = app && base ? route_table_with_app(base, app) : NULL;
	if (next == NULL) {
		route_app_unref(app);
		log_error("watcher: out of memory rebuilding %s; retrying", a->domain);
		watcher_schedule_retry(w, false);
		return;
	}
	a->dirty = false;
	w->stats.app_rebuilds++;
	route_table_unref(w->work);
	w->work = next;
	/* Deferred: every app settled in this loop turn goes into one snapshot. */
	event_active(w->publish_ev, EV_TIMEOUT, 0);
}

static int cmp_wapp(const void *x, const void *y)
{
	return strcmp((*(struct wapp *const *)x)->domain, (*(struct wapp *const *)y)->domain);
}

/*
 * The end of a sync: the whole table is built from the model, and only
 * then swapped in, so readers never see a partial re-read.
 *
 * route_table_with_app copies the app array, so inserting n apps one by
 * one costs O(n^2) pointer copies: about a second for 10,000 apps. Done
 * in one go that would stall the loop (pings, and the proxy if it shares
 * the loop), so the apps are built at once (cheap: O(instances)) and then
 * inserted BUILD_CHUNK per loop turn, in domain order. Model changes that
 * arrive meanwhile only mark apps dirty; they are applied incrementally
 * once the table is complete (watcher_build_done).
 */
#define BUILD_CHUNK 256

static void watcher_build_drop(struct zkr_watcher *w)
{
	for (size_t i = w->build_pos; i < w->build_n; i++)
		route_app_unref(w->build_apps[i]);
	free(w->build_apps);
	w->build_apps = NULL;
	w->build_n = w->build_pos = 0;
	route_table_unref(w->build_table);
	w->build_table = NULL;
	w->building = false;
	event_del(w->build_ev);
}

static void watcher_check_synced(struct zkr_watcher *w)
{
	if (!w->syncing || w->building || !w->apps_read || w->n_incomplete > 0)
		return;
	struct wapp **all = malloc((w->n_apps ? w->n_apps : 1) * sizeof(*all));
	w->build_apps = malloc((w->n_apps ? w->n_apps : 1) * sizeof(*w->build_apps));
	w->build_table = route_table_new();
	size_t n = 0;
	if (all == NULL || w->build_apps == NULL || w->build_table == NULL)
		goto oom;
	for (size_t i = 0; i < w->n_buckets; i++)
		for (struct wapp *a = w->buckets[i]; a; a = a->hnext)
			if (!a->invalid)
				all[n++] = a;
	qsort(all, n, sizeof(*all), cmp_wapp);
	for (w->build_n = 0; w->build_n < n; w->build_n++) {
		w->build_apps[w->build_n] = wapp_build(all[w->build_n]);
		if (w->build_apps[w->build_n] == NULL)
			goto oom;
		all[w->build_n]->dirty = false;
	}
	free(all);
	w->building = true;
	event_active(w->build_ev, EV_TIMEOUT, 0);
	return;
oom:
	free(all);
	watcher_build_drop(w);
	log_error("watcher: out of memory building the table; retrying");
	watcher_schedule_retry(w, false);
}

/* The fresh table is complete: make it the working table, then apply what
 * changed while it was being built, and publish. */
static void watcher_build_done(struct zkr_watcher *w)
{
	struct route_table *t = w->build_table;
	w->build_table = NULL;
	watcher_build_drop(w);
	w->syncing = false;
	w->stats.syncs++;
	route_table_unref(w->work);
	w->work = t;
	log_info("watcher: read complete: %zu apps, %llu requests so far", t->n_apps,
		 (unsigned long long)w->stats.requests);
	/* Apps removed during the build are still in t; changed ones are dirty. */
	for (size_t i = t->n_apps; i-- > 0;) {
		struct wapp *a = wapp_find(w, t->apps[i]->domain);
		if (a == NULL || a->invalid)
			watcher_table_remove(w, t->apps[i]->domain);
	}
	for (size_t i = 0; i < w->n_buckets; i++)
		for (struct wapp *a = w->buckets[i]; a; a = a->hnext)
			if (!a->invalid && a->dirty)
				wapp_settle(w, a);
	event_active(w->publish_ev, EV_TIMEOUT, 0);
}

static void watcher_build_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_watcher *w = arg;
	(void)fd;
	(void)what;
	if (!w->building)
		return;
	size_t end = w->build_pos + BUILD_CHUNK < w->build_n ? w->build_pos + BUILD_CHUNK : w->build_n;
	while (w->build_pos < end) {
		struct route_table *next = route_table_with_app(w->build_table, w->build_apps[w->build_pos]);
		if (next == NULL) {
			log_error("watcher: out of memory building the table; retrying");
			watcher_build_drop(w);
			watcher_schedule_retry(w, false);
			return;
		}
		w->build_pos++;   /* the table took the app's reference */
		route_table_unref(w->build_table);
		w->build_table = next;
	}
	if (w->build_pos == w->build_n)
		watcher_build_done(w);
	else
		event_active(w->build_ev, EV_TIMEOUT, 0);
}

static void watcher_publish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_watcher *w = arg;
	(void)fd;
	(void)what;
	if (w->work == NULL)
		return;
	/* The snapshot is ours alone until the callback: stamp the node-local
	 * publication count (intermediate with_app steps are not publications). */
	w->work->generation = ++w->generation;
	route_table_unref(w->current);
	w->current = w->work;
	w->work = NULL;
	w->stats.published++;
	log_debug("watcher: published generation %llu, %zu apps, digest %s",
		  (unsigned long long)w->current->generation, w->current->n_apps, w->current->digest_hex);
	if (w->cb != NULL)
		w->cb(w->current, w->cb_arg);
}

/* ---- retries and sessions --------------------------------------------- */

/* Re-issues every read marked as needed. O(apps), but it only runs after
 * failures, and a reconnect is exactly when everything may need it. */
static void watcher_sweep(struct zkr_watcher *w)
{
	if (!w->running || !zkr_session_connected(w->s))
		return;
	if (w->apps_need)
		watcher_issue_apps(w);
	for (size_t i = 0; i < w->n_buckets; i++) {
		for (struct wapp *a = w->buckets[i]; a; a = a->hnext) {
			if (a->invalid)
				continue;
			if (a->cfg_need)
				wapp_issue_cfg(w, a);
			if (a->list_need)
				wapp_issue_list(w, a);
			for (size_t k = 0; k < a->n_inst; k++)
				if (a->inst[k].retry && !a->inst[k].inflight)
					winst_issue_get(w, a, &a->inst[k]);
		}
	}
	zkr_session_kick(w->s);
}

static void watcher_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	watcher_sweep(arg);
}

static void watcher_on_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct zkr_watcher *w = arg;
	(void)s;
	switch (ev) {
	case ZKR_SESSION_NEW:
		/* Start over on a fresh model; the published table serves on. */
		w->epoch++;
		w->running = true;
		w->syncing = true;
		w->apps_read = w->apps_inflight = w->apps_again = w->apps_need = false;
		watcher_drop_model(w);
		route_table_unref(w->work);
		w->work = NULL;
		watcher_build_drop(w);
		evtimer_del(w->batch_ev);
		log_info("watcher: new session, reading %s" APPS_PATH, chroot_of(w));
		watcher_issue_apps(w);
		zkr_session_kick(w->s);
		break;
	case ZKR_SESSION_RECONNECTED:
		watcher_sweep(w);
		break;
	case ZKR_SESSION_DISCONNECTED:
		log_info("watcher: ZooKeeper unreachable; serving the last table");
		break;
	case ZKR_SESSION_EXPIRED:
		/* Stop reading on the dead handle. The model and the table stay
		 * until the new session's read is complete. */
		w->running = false;
		log_warn("watcher: session expired; serving the last table until the re-read completes");
		break;
	}
}

/* ---- public ----------------------------------------------------------- */

struct zkr_watcher *zkr_watcher_new(struct event_base *base, struct zkr_session *s,
				    const struct zkr_watcher_opts *opts, zkr_watcher_cb cb, void *arg,
				    char *why, size_t whylen)
{
	struct zkr_watcher *w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto oom;
	w->id = next_watcher_id++;
	w->base = base;
	w->s = s;
	w->cb = cb;
	w->cb_arg = arg;
	w->jitter_ms = opts ? (opts->relist_jitter_ms < 0 ? 0 : opts->relist_jitter_ms)
			    : WATCHER_JITTER_DEFAULT_MS;
	if (w->jitter_ms > 999)
		w->jitter_ms = 999;
	w->retry_ms = opts && opts->retry_ms > 0 ? opts->retry_ms : WATCHER_RETRY_DEFAULT_MS;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	w->rng = ((uint64_t)now.tv_nsec << 17) ^ (uint64_t)(uintptr_t)w ^ w->id;
	if (w->rng == 0)
		w->rng = 88172645463325252ULL;
	w->batch_ev = evtimer_new(base, watcher_batch_cb, w);
	w->retry_ev = evtimer_new(base, watcher_retry_cb, w);
	w->publish_ev = event_new(base, -1, 0, watcher_publish_cb, w);
	w->build_ev = event_new(base, -1, 0, watcher_build_cb, w);
	if (w->batch_ev == NULL || w->retry_ev == NULL || w->publish_ev == NULL || w->build_ev == NULL)
		goto oom;
	w->live_next = live_watchers;
	live_watchers = w;
	if (!zkr_session_subscribe(s, watcher_on_session, w))
		goto oom;
	/* Already connected (the session was shared and is up): start now. */
	if (zkr_session_connected(s))
		watcher_on_session(s, ZKR_SESSION_NEW, w);
	return w;
oom:
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "out of memory creating the watcher");
	zkr_watcher_free(w);
	return NULL;
}

void zkr_watcher_free(struct zkr_watcher *w)
{
	if (w == NULL)
		return;
	for (struct zkr_watcher **pp = &live_watchers; *pp; pp = &(*pp)->live_next) {
		if (*pp == w) {
			*pp = w->live_next;
			break;
		}
	}
	if (w->s != NULL)
		zkr_session_unsubscribe(w->s, watcher_on_session, w);
	if (w->batch_ev)
		event_free(w->batch_ev);
	if (w->retry_ev)
		event_free(w->retry_ev);
	if (w->build_ev) {
		watcher_build_drop(w);
		event_free(w->build_ev);
	}
	if (w->publish_ev)
		event_free(w->publish_ev);
	watcher_drop_model(w);
	free(w->buckets);
	free(w->batch);
	route_table_unref(w->work);
	route_table_unref(w->current);
	free(w);
}

struct route_table *zkr_watcher_table(const struct zkr_watcher *w)
{
	return w->current;
}

bool zkr_watcher_synced(const struct zkr_watcher *w)
{
	return w->current != NULL && !w->syncing;
}

void zkr_watcher_get_stats(const struct zkr_watcher *w, struct zkr_watcher_stats *out)
{
	*out = w->stats;
}
