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
 * differs) is dropped, so nothing dangles whichever is closed first. The
 * list is process-wide and unlocked: every watcher runs on the one thread
 * that drives ZooKeeper.
 *
 * This file holds the model, the watches, building and publishing; the
 * requests and the merging of their replies are in watcher_read.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/hash.h"
#include "registry/log.h"
#include "registry/prng.h"
#include "registry/record.h"
#include "registry/watcher_int.h"

#define WATCHER_JITTER_DEFAULT_MS 10
#define WATCHER_RETRY_DEFAULT_MS 2000

static struct zkr_watcher *live_watchers;
static uint64_t next_watcher_id = 1;


struct zkr_watcher *watcher_lookup(uint64_t id)
{
	for (struct zkr_watcher *w = live_watchers; w != NULL; w = w->live_next)
		if (w->id == id)
			return w;
	return NULL;
}

static uint64_t watcher_rand(struct zkr_watcher *w)
{
	return prng_next(&w->rng);
}

const char *watcher_chroot(struct zkr_watcher *w)
{
	const char *c = zkr_session_chroot(w->s);
	return strcmp(c, "/") == 0 ? "" : c;
}

/* ---- the domain hash -------------------------------------------------- */

static size_t hash_str(const char *s)
{
	return (size_t)hash_fnv1a_str(s);
}

struct wapp *watcher_app_find(struct zkr_watcher *w, const char *domain)
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

void watcher_inst_clear(struct winst *in)
{
	free(in->id);
	free(in->host);
	free(in->zone);
}

static void wapp_free(struct wapp *a)
{
	for (size_t i = 0; i < a->n_inst; i++)
		watcher_inst_clear(&a->inst[i]);
	free(a->inst);
	record_app_config_free(a->cfg);
	free(a->domain);
	free(a);
}

struct wapp *watcher_app_add(struct zkr_watcher *w, const char *domain)
{
	if (w->n_apps >= w->n_buckets && !wapp_hash_grow(w))
		return NULL;
	struct wapp *a = calloc(1, sizeof(*a));
	if (a == NULL || (a->domain = strdup(domain)) == NULL) {
		free(a);
		return NULL;
	}
	a->serial = ++w->next_serial;
	a->dirty = true;           /* not in the table yet */
	size_t at = hash_str(domain) & (w->n_buckets - 1);
	a->hnext = w->buckets[at];
	w->buckets[at] = a;
	w->n_apps++;
	w->n_incomplete++;         /* complete == false */
	return a;
}

/*
 * On reconnect the C client re-registers every watch in one SetWatches
 * packet (it does not split it), and servers refuse packets larger than
 * jute.maxbuffer (1 MB by default): past that size a router can no longer
 * reconnect on its session and only recovers through expiry and a full
 * re-read. Each app holds a data and a child watch; track their size and
 * say so before it bites.
 */
#define WATCH_BYTES_WARN (768 * 1024)

void watcher_note_watches(struct zkr_watcher *w, const struct wapp *a, bool add)
{
	/* server paths: <chroot>/apps/<d> and <chroot>/apps/<d>/instances,
	 * each with a 4-byte length */
	size_t per = 2 * (strlen(watcher_chroot(w)) + sizeof(APPS_PATH) + strlen(a->domain) + 4) +
		     sizeof("/instances") - 1;
	if (add) {
		w->watch_bytes += per;
	} else {
		w->watch_bytes = w->watch_bytes > per ? w->watch_bytes - per : 0;
		return;
	}
	if (w->watch_bytes > WATCH_BYTES_WARN && !w->watch_bytes_warned) {
		w->watch_bytes_warned = true;
		log_warn("watcher: %zu apps hold about %zu KB of watches; the client re-sends them in "
			 "one packet on reconnect, which servers refuse above jute.maxbuffer (1 MB by "
			 "default): raise -Djute.maxbuffer on the ZooKeeper servers",
			 w->n_apps, w->watch_bytes / 1024);
	}
}

void watcher_app_remove(struct zkr_watcher *w, struct wapp *a)
{
	if (!a->invalid)
		watcher_note_watches(w, a, false);
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
	w->watch_bytes = 0;
	w->n_batch = 0;
	w->batch_apps = false;
}

/* ---- watches ---------------------------------------------------------- */

/* Queues an instances re-list of `a` (NULL: only arm the timer, for /apps)
 * for the next batch. Several events for one app cost one re-list. */
void watcher_batch_add(struct zkr_watcher *w, struct wapp *a)
{
	if (a != NULL && !a->in_batch) {
		if (w->n_batch == w->cap_batch) {
			size_t cap = w->cap_batch ? w->cap_batch * 2 : 16;
			struct wapp **n = realloc(w->batch, cap * sizeof(*n));
			if (n == NULL) {
				/* Cannot queue: read now rather than lose the event. */
				watcher_issue_list(w, a);
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
		watcher_issue_list(w, a);
	}
	w->n_batch = 0;
	zkr_session_kick(w->s);
}

/*
 * Every watch of this watcher lands here. Paths are relative to the
 * chroot: /apps, /apps/<d> (data, or deleted), /apps/<d>/instances.
 */
void watcher_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
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
		watcher_batch_add(w, NULL);
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
	struct wapp *a = watcher_app_find(w, domain);
	if (a == NULL || a->invalid)
		return;

	if (slash == NULL) {
		if (type == ZOO_CHANGED_EVENT) {
			watcher_issue_cfg(w, a);
			zkr_session_kick(w->s);
		} else if (type == ZOO_DELETED_EVENT) {
			/* The /apps child watch reports the removal too. Read the
			 * data again: ZNONODE re-lists /apps, and a node already
			 * created again gets its data read and watched. */
			watcher_issue_cfg(w, a);
			zkr_session_kick(w->s);
		}
	} else if (strcmp(slash, "/instances") == 0) {
		watcher_batch_add(w, a);
	}
}


/* Drops `domain` from the working table if it is there. */
void watcher_table_remove(struct zkr_watcher *w, const char *domain)
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

static bool wapp_reads_failed(const struct wapp *a);

void watcher_app_settle(struct zkr_watcher *w, struct wapp *a)
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
	struct route_table *base = w->work ? w->work : w->current;
	if (wapp_reads_failed(a) && base != NULL &&
	    route_table_find(base, a->domain, strlen(a->domain)) != NULL)
		return;   /* keep the served version until the reads succeed */

	struct route_app *app = wapp_build(a);
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

/*
 * A read that failed for good (a lost ACL, say) must not empty an app,
 * in a re-read either: while the app's config or instance list cannot be
 * read, the table keeps the version it has (the reads are retried with
 * backoff; the first success rebuilds the app). A single unreadable
 * instance node only leaves that instance out, so as not to freeze the
 * rest of its app.
 */
static bool wapp_reads_failed(const struct wapp *a)
{
	return a->cfg_failed || a->list_failed;
}

static struct route_app *wapp_build_or_keep(struct zkr_watcher *w, struct wapp *a)
{
	if (w->current != NULL && wapp_reads_failed(a)) {
		struct route_app *old = route_table_find(w->current, a->domain, strlen(a->domain));
		if (old != NULL) {
			log_warn("watcher: %s: reads failed in the re-read; keeping the served version",
				 a->domain);
			a->dirty = true;   /* rebuilt once the reads succeed */
			return route_app_ref(old);
		}
	}
	return wapp_build(a);
}

static int cmp_wapp(const void *x, const void *y)
{
	return strcmp((*(struct wapp *const *)x)->domain, (*(struct wapp *const *)y)->domain);
}

static void watcher_sync_done(struct zkr_watcher *w, struct route_table *t);

/*
 * The end of a sync: the whole table is built from the model, and only
 * then swapped in, so readers never see a partial re-read. Building every
 * app is O(instances) and the table is made in one O(apps) step, so even
 * 10,000 apps take milliseconds and the loop is not held up.
 */
void watcher_check_synced(struct zkr_watcher *w)
{
	if (!w->syncing || !w->apps_read || w->n_incomplete > 0)
		return;
	size_t cap = w->n_apps ? w->n_apps : 1, n = 0, built = 0;
	struct wapp **all = malloc(cap * sizeof(*all));
	struct route_app **apps = malloc(cap * sizeof(*apps));
	struct route_table *t = NULL;
	if (all == NULL || apps == NULL)
		goto oom;
	for (size_t i = 0; i < w->n_buckets; i++)
		for (struct wapp *a = w->buckets[i]; a; a = a->hnext)
			if (!a->invalid)
				all[n++] = a;
	qsort(all, n, sizeof(*all), cmp_wapp);
	for (; built < n; built++) {
		all[built]->dirty = false;
		apps[built] = wapp_build_or_keep(w, all[built]);
		if (apps[built] == NULL)
			goto oom;
	}
	t = route_table_from_apps(apps, n);   /* takes the references */
	built = 0;
	if (t == NULL)
		goto oom;
	free(all);
	free(apps);
	watcher_sync_done(w, t);
	return;
oom:
	for (size_t i = 0; i < built; i++)
		route_app_unref(apps[i]);
	for (size_t i = 0; i < n; i++)
		all[i]->dirty = true;
	free(all);
	free(apps);
	log_error("watcher: out of memory building the table; retrying");
	watcher_schedule_retry(w, false);
}

/* The fresh table is complete: make it the working table, then apply what
 * changed while it was being read, and publish. */
static void watcher_sync_done(struct zkr_watcher *w, struct route_table *t)
{
	w->syncing = false;
	w->stats.syncs++;
	route_table_unref(w->work);
	w->work = t;
	log_info("watcher: read complete: %zu apps, %llu requests so far", t->n_apps,
		 (unsigned long long)w->stats.requests);
	for (size_t i = 0; i < w->n_buckets; i++)
		for (struct wapp *a = w->buckets[i]; a; a = a->hnext)
			if (!a->invalid && a->dirty)
				watcher_app_settle(w, a);
	event_active(w->publish_ev, EV_TIMEOUT, 0);
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
				watcher_issue_cfg(w, a);
			if (a->list_need)
				watcher_issue_list(w, a);
			for (size_t k = 0; k < a->n_inst; k++)
				if (a->inst[k].retry && !a->inst[k].inflight)
					watcher_issue_get(w, a, &a->inst[k]);
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
		w->retry_cur_ms = w->retry_ms;
		w->syncing = true;
		w->apps_read = w->apps_inflight = w->apps_again = w->apps_need = false;
		watcher_drop_model(w);
		route_table_unref(w->work);
		w->work = NULL;
		evtimer_del(w->batch_ev);
		log_info("watcher: new session, reading %s" APPS_PATH, watcher_chroot(w));
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
	w->retry_cur_ms = w->retry_ms;
	prng_seed(&w->rng, (uint64_t)(uintptr_t)w ^ w->id);
	w->batch_ev = evtimer_new(base, watcher_batch_cb, w);
	w->retry_ev = evtimer_new(base, watcher_retry_cb, w);
	w->publish_ev = event_new(base, -1, 0, watcher_publish_cb, w);
	if (w->batch_ev == NULL || w->retry_ev == NULL || w->publish_ev == NULL)
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
