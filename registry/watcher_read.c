/*
 * The watched routing table, reading side (see watcher.c for the model):
 * issues the list and get requests, and merges their replies into the
 * model. Every request carries the watcher's id and session epoch (struct
 * req), never a pointer that could dangle.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/log.h"
#include "registry/record.h"
#include "registry/watcher_int.h"

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
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
		struct wapp *a = watcher_app_find(w, r->domain);
		if (a != NULL && a->serial == r->serial)
			*app = a;
	}
	return w;
}

/* Errors that heal by themselves once the session is back. */
bool watcher_rc_transient(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZCLOSING ||
	       rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE || rc == ZSESSIONMOVED;
}

void watcher_schedule_retry(struct zkr_watcher *w, bool transient)
{
	/* Transient failures are retried on RECONNECTED; the timer is a
	 * fallback in case the reply raced the reconnect. Other failures
	 * (ZNOAUTH: a router without the app's read identity) will likely
	 * fail again: back off to once a minute, which also bounds the log
	 * lines they cause. A new session starts from retry_ms again. */
	if (evtimer_pending(w->retry_ev, NULL))
		return;
	int ms = 500;
	if (!transient) {
		ms = w->retry_cur_ms;
		w->retry_cur_ms = w->retry_cur_ms < WATCHER_RETRY_MAX_MS / 2 ? w->retry_cur_ms * 2
									 : WATCHER_RETRY_MAX_MS;
	}
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(w->retry_ev, &tv);
}

void watcher_read_failed(struct zkr_watcher *w, const char *what, const char *path, int rc)
{
	bool transient = watcher_rc_transient(rc);
	if (!transient) {
		w->stats.read_errors++;
		log_warn("watcher: %s %s%s: %s; keeping what we have, retrying", what, watcher_chroot(w), path,
			 zerror(rc));
	} else {
		log_debug("watcher: %s %s%s: %s", what, watcher_chroot(w), path, zerror(rc));
	}
	watcher_schedule_retry(w, transient);
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

/* After handing a read to the client: true when it went. Otherwise the
 * request is freed and the failure reported (a retry is scheduled); the
 * caller marks what must be read again. */
static bool watcher_issued(struct zkr_watcher *w, struct req *r, int rc, const char *what,
			   const char *path)
{
	if (rc == ZOK)
		return true;
	if (r != NULL)
		req_free(r);
	watcher_read_failed(w, what, path, rc);
	return false;
}

void watcher_issue_apps(struct zkr_watcher *w)
{
	zhandle_t *zh = zkr_session_zh(w->s);
	if (w->apps_inflight) {
		w->apps_again = true;
		return;
	}
	struct req *r = req_new(w, REQ_APPS, NULL, NULL);
	int rc = r ? zoo_awget_children(zh, APPS_PATH, watcher_watch, watch_ctx(w), watcher_apps_listed, r)
		   : ZSYSTEMERROR;
	if (!watcher_issued(w, r, rc, "list", APPS_PATH)) {
		w->apps_need = true;
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
	if (!watcher_issued(w, r, rc, "exists", path)) {
		if (a != NULL)
			a->list_need = true;
		else
			w->apps_need = true;
	}
}

void watcher_issue_cfg(struct zkr_watcher *w, struct wapp *a)
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
	if (!watcher_issued(w, r, rc, "read", path)) {
		a->cfg_need = true;
		return;
	}
	a->cfg_inflight = true;
	a->cfg_need = false;
}

void watcher_issue_list(struct zkr_watcher *w, struct wapp *a)
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
	if (!watcher_issued(w, r, rc, "list", path)) {
		a->list_need = true;
		return;
	}
	a->list_inflight = true;
	a->list_need = false;
}

/* One getData, no watch: instance records are immutable. */
void watcher_issue_get(struct zkr_watcher *w, struct wapp *a, struct winst *in)
{
	char path[sizeof(APPS_PATH) + RECORD_HOST_MAX + RECORD_ID_MAX + 32];
	snprintf(path, sizeof(path), APPS_PATH "/%s/instances/%s", a->domain, in->id);
	struct req *r = req_new(w, REQ_GET, a, in->id);
	int rc = r ? zoo_aget(zkr_session_zh(w->s), path, 0, winst_read, r) : ZSYSTEMERROR;
	if (!watcher_issued(w, r, rc, "read", path)) {
		in->retry = true;
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
			watcher_issue_list(w, a);
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
		struct wapp *a = watcher_app_find(w, d);
		if (a == NULL) {
			a = watcher_app_add(w, d);
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
					 watcher_chroot(w), d);
				a->invalid = true;
				a->complete = true;
				w->n_incomplete--;
			} else {
				watcher_note_watches(w, a, true);
				watcher_issue_cfg(w, a);
				watcher_issue_list(w, a);
			}
		} else if (a->cfg_gone) {
			/* Deleted and created again between two lists: the old
			 * node's data watch died with it; read (and watch) anew. */
			a->cfg_gone = false;
			watcher_issue_cfg(w, a);
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
				watcher_app_remove(w, a);
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
				log_warn("watcher: %s%s: bad AppConfig skipped (%s); %s", watcher_chroot(w), path,
					 why, a->cfg ? "keeping the previous one" : "using defaults");
			} else {
				record_app_config_free(a->cfg);
				a->cfg = c;
			}
		}
		a->cfg_read = true;
		a->cfg_failed = false;
		a->dirty = true;
	} else if (rc == ZNONODE) {
		/* The app's node is gone (a failed read sets no watch); its
		 * /apps child event follows. If it is back by the time /apps is
		 * listed, cfg_gone has its config read again. */
		a->cfg_gone = true;
		w->batch_apps = true;
		watcher_batch_add(w, NULL);
		return;
	} else {
		a->cfg_need = true;
		/* A read that cannot succeed soon (ZNOAUTH) must not hold the
		 * whole sync back: count it as read with what we have. */
		if (!watcher_rc_transient(rc))
			a->cfg_read = a->cfg_failed = true;
		watcher_read_failed(w, "read", path, rc);
	}
	if (a->cfg_again) {
		a->cfg_again = false;
		watcher_issue_cfg(w, a);
	}
	watcher_app_settle(w, a);
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
			watcher_inst_clear(&a->inst[i++]);
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
				 watcher_chroot(w), a->domain, in->id);
			in->st = WINST_BAD;
			in->retry = false;
			continue;
		}
		watcher_issue_get(w, a, in);
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
			log_error("watcher: out of memory reading %s%s; retrying", watcher_chroot(w), path);
			a->list_need = true;
			watcher_schedule_retry(w, false);
		}
		a->list_read = true;
		a->list_failed = false;
	} else {
		a->list_need = true;
		if (!watcher_rc_transient(rc))
			a->list_read = a->list_failed = true;   /* see wapp_cfg_read */
		watcher_read_failed(w, "list", path, rc);
	}
	if (a->list_again) {
		a->list_again = false;
		watcher_issue_list(w, a);
	}
	watcher_app_settle(w, a);
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
			log_warn("watcher: %s%s: bad Instance record skipped: %s", watcher_chroot(w), path, why);
			in->st = WINST_BAD;
		} else if (!winst_fill(in, rec)) {
			log_error("watcher: out of memory reading %s%s; retrying", watcher_chroot(w), path);
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
		watcher_inst_clear(in);
		memmove(&a->inst[at], &a->inst[at + 1], (a->n_inst - at - 1) * sizeof(*in));
		a->n_inst--;
	} else {
		/* Keep whatever record it had: a failed read removes nothing. */
		in->inflight = false;
		in->retry = true;
		watcher_read_failed(w, "read", path, rc);
	}
	watcher_app_settle(w, a);
	zkr_session_kick(w->s);
}
