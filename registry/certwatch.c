/*
 * The watched certificates (see certwatch.h).
 *
 * The model is one sorted array of the /certs children seen in the last
 * list, each with what became of its record: not read yet, in service,
 * or skipped. A child event re-lists /certs; the new list is merged into
 * the array (O(children)), new names are read once, vanished ones that
 * were in service are reported removed.
 *
 *   child watch --> list /certs --> merge --> get new --> add / skip
 *                                        \--> gone --> remove
 *
 * A replacement is a new node, then the old one removed; a router may see
 * both in one list. Removals wait until the reads issued so far are
 * back, so that the new certificate is in service before the old one
 * leaves: for a client the swap is atomic, never a moment on the default
 * certificate.
 *
 * Sequential names are never reused under one /certs node, so a known
 * name always means the same record. The one way around that is /certs
 * deleted and created again, which restarts the sequence: its czxid
 * (creation id) changes then, and every known record is dropped and read
 * anew.
 *
 * Lifetime: requests carry the watcher's numeric id and session epoch,
 * as in watcher.c, so a reply after zkr_certwatch_free or from an earlier
 * session is dropped.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/certwatch.h"
#include "registry/log.h"

#define CW_RETRY_MS 2000
#define CW_RETRY_MAX_MS 60000
#define CW_WHY_MAX 256

enum wcert_state {
	WCERT_NONE,                /* not read yet */
	WCERT_OK,                  /* handed to add, which took it */
	WCERT_BAD,                 /* skipped (logged) */
};

struct wcert {
	char *name;                /* znode name under /certs */
	enum wcert_state st;
	bool inflight;             /* a getData is outstanding */
	bool retry;                /* to be read (again): new, or the read failed */
};

struct zkr_certwatch {
	struct zkr_certwatch *live_next;
	uint64_t id;
	struct zkr_session *s;
	zkr_cert_add_cb add;
	zkr_cert_remove_cb remove;
	void *arg;

	uint64_t epoch;            /* +1 per session; older replies are dropped */
	bool running;              /* a session is live */
	bool list_inflight, list_again, list_need;
	bool have_czxid;
	int64_t czxid;             /* of /certs as of the last list */
	struct wcert *certs;       /* sorted by name */
	size_t n_certs;
	unsigned pending_gets;     /* issued in this session, reply not back */
	char **doomed;             /* names of records gone, removal not reported yet */
	size_t n_doomed;
	int retry_cur_ms;
	struct event *retry_ev;
	struct zkr_certwatch_stats stats;
};

struct creq {
	uint64_t cwid, epoch;
	char *name;                /* NULL for a list or exists */
};

static struct zkr_certwatch *live_certwatches;
static uint64_t next_certwatch_id = 1;

static struct zkr_certwatch *cw_lookup(uint64_t id)
{
	for (struct zkr_certwatch *cw = live_certwatches; cw != NULL; cw = cw->live_next)
		if (cw->id == id)
			return cw;
	return NULL;
}

static const char *cw_chroot(const struct zkr_certwatch *cw)
{
	const char *c = zkr_session_chroot(cw->s);
	return strcmp(c, "/") == 0 ? "" : c;
}

static void *cw_ctx(const struct zkr_certwatch *cw)
{
	return (void *)(uintptr_t)cw->id;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* ---- requests --------------------------------------------------------- */

static struct creq *creq_new(struct zkr_certwatch *cw, const char *name)
{
	struct creq *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->cwid = cw->id;
	r->epoch = cw->epoch;
	if (name != NULL && (r->name = strdup(name)) == NULL) {
		free(r);
		return NULL;
	}
	cw->stats.requests++;
	return r;
}

static void creq_free(struct creq *r)
{
	free(r->name);
	free(r);
}

/* The watcher a reply belongs to, or NULL (the request freed) when it is
 * gone or the reply is from an earlier session. */
static struct zkr_certwatch *creq_resolve(struct creq *r)
{
	struct zkr_certwatch *cw = cw_lookup(r->cwid);
	if (cw == NULL || r->epoch != cw->epoch) {
		creq_free(r);
		return NULL;
	}
	return cw;
}

/* Errors that heal by themselves once the session is back (the same rule
 * as the app watcher's). */
static bool cw_transient(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZCLOSING ||
	       rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE || rc == ZSESSIONMOVED;
}

static void cw_schedule_retry(struct zkr_certwatch *cw, bool transient)
{
	/* Transient failures are retried on RECONNECTED, the timer being a
	 * fallback; others (ZNOAUTH: a router without the routers' identity)
	 * back off to once a minute, which also bounds their log lines. */
	if (evtimer_pending(cw->retry_ev, NULL))
		return;
	int ms = 500;
	if (!transient) {
		ms = cw->retry_cur_ms;
		cw->retry_cur_ms = cw->retry_cur_ms < CW_RETRY_MAX_MS / 2 ? cw->retry_cur_ms * 2
									 : CW_RETRY_MAX_MS;
	}
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(cw->retry_ev, &tv);
}

static void cw_read_failed(struct zkr_certwatch *cw, const char *what, const char *path, int rc)
{
	bool transient = cw_transient(rc);
	if (transient) {
		log_debug("certs: %s %s%s: %s", what, cw_chroot(cw), path, zerror(rc));
	} else {
		cw->stats.read_errors++;
		log_warn("certs: %s %s%s: %s; the certificates in service stay, retrying", what,
			 cw_chroot(cw), path, zerror(rc));
	}
	cw_schedule_retry(cw, transient);
}

static void cw_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx);
static void cw_listed(int rc, const struct String_vector *names, const struct Stat *stat,
		      const void *data);
static void cw_exists_done(int rc, const struct Stat *stat, const void *data);
static void cw_read(int rc, const char *value, int len, const struct Stat *stat, const void *data);

static void cw_issue_list(struct zkr_certwatch *cw)
{
	if (cw->list_inflight) {
		cw->list_again = true;
		return;
	}
	struct creq *r = creq_new(cw, NULL);
	int rc = r ? zoo_awget_children2(zkr_session_zh(cw->s), CERTS_PATH, cw_watch, cw_ctx(cw),
					 cw_listed, r)
		   : ZSYSTEMERROR;
	if (rc != ZOK) {
		if (r != NULL)
			creq_free(r);
		cw->list_need = true;
		cw_read_failed(cw, "list", CERTS_PATH, rc);
		return;
	}
	cw->list_inflight = true;
	cw->list_need = false;
}

/* /certs is missing: its creation fires this watch, which lists. */
static void cw_issue_exists(struct zkr_certwatch *cw)
{
	struct creq *r = creq_new(cw, NULL);
	int rc = r ? zoo_awexists(zkr_session_zh(cw->s), CERTS_PATH, cw_watch, cw_ctx(cw),
				  cw_exists_done, r)
		   : ZSYSTEMERROR;
	if (rc != ZOK) {
		if (r != NULL)
			creq_free(r);
		cw->list_need = true;
		cw_read_failed(cw, "exists", CERTS_PATH, rc);
	}
}

/* One getData, no watch: records are immutable. */
static void cw_issue_get(struct zkr_certwatch *cw, struct wcert *c)
{
	char path[sizeof(CERTS_PATH) + RECORD_ID_MAX + 2];
	snprintf(path, sizeof(path), CERTS_PATH "/%s", c->name);
	struct creq *r = creq_new(cw, c->name);
	int rc = r ? zoo_aget(zkr_session_zh(cw->s), path, 0, cw_read, r) : ZSYSTEMERROR;
	if (rc != ZOK) {
		if (r != NULL)
			creq_free(r);
		c->retry = true;
		cw_read_failed(cw, "read", path, rc);
		return;
	}
	c->inflight = true;
	c->retry = false;
	cw->pending_gets++;
}

/* ---- the model -------------------------------------------------------- */

static struct wcert *cw_find(struct zkr_certwatch *cw, const char *name)
{
	size_t lo = 0, hi = cw->n_certs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(cw->certs[mid].name, name);
		if (c == 0)
			return &cw->certs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void cw_report_removed(struct zkr_certwatch *cw, const char *name)
{
	char path[sizeof(CERTS_PATH) + RECORD_ID_MAX + 2];
	snprintf(path, sizeof(path), CERTS_PATH "/%s", name);
	log_info("certs: %s%s removed", cw_chroot(cw), path);
	cw->stats.served--;
	if (cw->remove != NULL)
		cw->remove(path, cw->arg);
}

/* Reports the removals held back, once every read issued is back. */
static void cw_flush_doomed(struct zkr_certwatch *cw)
{
	if (cw->pending_gets > 0)
		return;
	for (size_t i = 0; i < cw->n_doomed; i++) {
		cw_report_removed(cw, cw->doomed[i]);
		free(cw->doomed[i]);
	}
	free(cw->doomed);
	cw->doomed = NULL;
	cw->n_doomed = 0;
}

/* Takes `name` off the held-back removals; true if it was there. Only
 * after /certs was created again can a name come back. */
static bool cw_undoom(struct zkr_certwatch *cw, const char *name)
{
	for (size_t i = 0; i < cw->n_doomed; i++) {
		if (strcmp(cw->doomed[i], name) == 0) {
			free(cw->doomed[i]);
			cw->doomed[i] = cw->doomed[--cw->n_doomed];
			return true;
		}
	}
	return false;
}

/* Drops an entry; a record in service is queued for removal (see the
 * top of the file). Takes the entry's name. */
static void cw_forget(struct zkr_certwatch *cw, struct wcert *c)
{
	if (c->st == WCERT_OK) {
		char **d = realloc(cw->doomed, (cw->n_doomed + 1) * sizeof(*d));
		if (d != NULL) {
			cw->doomed = d;
			cw->doomed[cw->n_doomed++] = c->name;
			return;
		}
		cw_report_removed(cw, c->name);   /* no memory to wait: remove now */
	}
	free(c->name);
}

static void cw_forget_all(struct zkr_certwatch *cw)
{
	for (size_t i = 0; i < cw->n_certs; i++)
		cw_forget(cw, &cw->certs[i]);
	free(cw->certs);
	cw->certs = NULL;
	cw->n_certs = 0;
}

/* Issues the reads the model still needs. */
static void cw_read_new(struct zkr_certwatch *cw)
{
	for (size_t i = 0; i < cw->n_certs; i++) {
		struct wcert *c = &cw->certs[i];
		if (!c->retry || c->inflight)
			continue;
		if (c->st == WCERT_NONE && !record_valid_znode_name(c->name)) {
			cw->stats.bad_records++;
			log_warn("certs: %s" CERTS_PATH "/%.64s: not a valid node name; skipped",
				 cw_chroot(cw), c->name);
			c->st = WCERT_BAD;
			c->retry = false;
			continue;
		}
		cw_issue_get(cw, c);
	}
}

/*
 * Merges a fresh list into the sorted model: kept names stay as they are,
 * vanished ones go (reported if in service), new ones are marked to be
 * read. On allocation failure nothing changes and false is returned.
 */
static bool cw_merge(struct zkr_certwatch *cw, const struct String_vector *names)
{
	size_t n = names != NULL ? (size_t)names->count : 0;
	char **sorted = NULL;
	struct wcert *next = NULL;
	bool ok = false;
	if (n > 0) {
		sorted = malloc(n * sizeof(*sorted));
		next = calloc(n, sizeof(*next));
		if (sorted == NULL || next == NULL)
			goto done;
		memcpy(sorted, names->data, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_str);
		/* Names first, so that a failure leaves the model untouched. */
		for (size_t j = 0, i = 0; j < n; j++) {
			while (i < cw->n_certs && strcmp(cw->certs[i].name, sorted[j]) < 0)
				i++;
			if (i < cw->n_certs && strcmp(cw->certs[i].name, sorted[j]) == 0)
				continue;
			if ((next[j].name = strdup(sorted[j])) == NULL)
				goto done;
			next[j].retry = true;
		}
	}
	size_t i = 0, k = 0;
	for (size_t j = 0; i < cw->n_certs || j < n;) {
		int c = i == cw->n_certs ? 1 : j == n ? -1 : strcmp(cw->certs[i].name, sorted[j]);
		if (c < 0) {           /* gone */
			cw_forget(cw, &cw->certs[i++]);
		} else if (c == 0) {   /* kept: never read again */
			next[k++] = cw->certs[i++];
			j++;
		} else {               /* new, name already copied */
			next[k++] = next[j++];
		}
	}
	/* The loop above moved next[j] down to next[k] (k <= j). */
	free(cw->certs);
	cw->certs = next;
	cw->n_certs = k;
	next = NULL;
	ok = true;
done:
	if (next != NULL) {
		for (size_t j = 0; j < n; j++)
			free(next[j].name);
		free(next);
	}
	free(sorted);
	return ok;
}

/* ---- watches and replies ---------------------------------------------- */

static void cw_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)state;
	if (type == ZOO_SESSION_EVENT || type == ZOO_NOTWATCHING_EVENT)
		return;
	struct zkr_certwatch *cw = cw_lookup((uint64_t)(uintptr_t)ctx);
	if (cw == NULL || !cw->running || zh != zkr_session_zh(cw->s) || path == NULL ||
	    strcmp(path, CERTS_PATH) != 0)
		return;
	/* Children changed, or /certs was created or deleted: list again. */
	cw_issue_list(cw);
	zkr_session_kick(cw->s);
}

static void cw_exists_done(int rc, const struct Stat *stat, const void *data)
{
	struct creq *r = (struct creq *)data;
	struct zkr_certwatch *cw = creq_resolve(r);
	(void)stat;
	if (cw == NULL)
		return;
	creq_free(r);
	if (rc == ZOK) {
		cw_issue_list(cw);     /* created between our list and this exists */
	} else if (rc != ZNONODE) {
		cw->list_need = true;
		cw_read_failed(cw, "exists", CERTS_PATH, rc);
	}
}

static void cw_listed(int rc, const struct String_vector *names, const struct Stat *stat,
		      const void *data)
{
	struct creq *r = (struct creq *)data;
	struct zkr_certwatch *cw = creq_resolve(r);
	if (cw == NULL)
		return;
	creq_free(r);
	cw->list_inflight = false;

	if (rc == ZNONODE) {
		/* No /certs: a true answer, no certificates. Watch for it. */
		names = NULL;
		stat = NULL;
		cw_issue_exists(cw);
	} else if (rc != ZOK) {
		cw->list_need = true;
		cw_read_failed(cw, "list", CERTS_PATH, rc);
		goto again;
	}
	if (stat != NULL && cw->have_czxid && stat->czxid != cw->czxid && cw->n_certs > 0) {
		log_info("certs: %s" CERTS_PATH " was created again; reading every record anew",
			 cw_chroot(cw));
		cw_forget_all(cw);
	}
	cw->have_czxid = stat != NULL;
	cw->czxid = stat != NULL ? stat->czxid : 0;
	if (!cw_merge(cw, names)) {
		log_error("certs: out of memory listing %s" CERTS_PATH "; retrying", cw_chroot(cw));
		cw->list_need = true;
		cw_schedule_retry(cw, false);
		goto again;
	}
	cw_read_new(cw);
	cw_flush_doomed(cw);
again:
	if (cw->list_again) {
		cw->list_again = false;
		cw_issue_list(cw);
	}
	zkr_session_kick(cw->s);
}

/* Decodes a record and offers it to the consumer; the verdict, logged. */
static enum wcert_state cw_take(struct zkr_certwatch *cw, const char *path, const char *value, int len)
{
	char why[CW_WHY_MAX] = "";
	record_tls_certificate *rec = record_tls_certificate_decode(
		(const uint8_t *)(value != NULL ? value : ""), len > 0 ? (size_t)len : 0, why, sizeof(why));
	if (rec == NULL) {
		cw->stats.bad_records++;
		log_warn("certs: %s%s: bad TlsCertificate record skipped: %s", cw_chroot(cw), path, why);
		return WCERT_BAD;
	}
	bool taken = cw->add == NULL || cw->add(path, rec, why, sizeof(why), cw->arg);
	record_tls_certificate_free(rec);
	if (!taken) {
		cw->stats.bad_records++;
		log_warn("certs: %s%s: certificate skipped: %s", cw_chroot(cw), path,
			 why[0] ? why : "refused by the TLS store");
		return WCERT_BAD;
	}
	cw->stats.served++;
	log_info("certs: %s%s in service", cw_chroot(cw), path);
	return WCERT_OK;
}

static void cw_read(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
	struct creq *r = (struct creq *)data;
	struct zkr_certwatch *cw = creq_resolve(r);
	(void)stat;
	if (cw == NULL)
		return;
	cw->pending_gets--;
	struct wcert *c = cw_find(cw, r->name);
	char path[sizeof(CERTS_PATH) + RECORD_ID_MAX + 2];
	snprintf(path, sizeof(path), CERTS_PATH "/%s", r->name);
	creq_free(r);

	if (c == NULL || !c->inflight) {
		/* Listed as gone while we were reading it. */
	} else if (rc == ZOK) {
		c->inflight = false;
		cw->stats.records_read++;
		bool again = cw_undoom(cw, c->name);
		c->st = cw_take(cw, path, value, len);
		if (again && c->st == WCERT_OK)
			cw->stats.served--;    /* the add replaced it under its path */
		else if (again)
			cw_report_removed(cw, c->name);
	} else if (rc == ZNONODE) {
		/* Listed a moment ago, removed now; the child watch fires too. */
		size_t at = (size_t)(c - cw->certs);
		free(c->name);
		memmove(&cw->certs[at], &cw->certs[at + 1], (cw->n_certs - at - 1) * sizeof(*c));
		cw->n_certs--;
	} else {
		c->inflight = false;
		c->retry = true;
		cw_read_failed(cw, "read", path, rc);
	}
	cw_flush_doomed(cw);
	zkr_session_kick(cw->s);
}

/* ---- sessions --------------------------------------------------------- */

/* Re-issues what failed. O(certificates), after failures only. */
static void cw_sweep(struct zkr_certwatch *cw)
{
	if (!cw->running || !zkr_session_connected(cw->s))
		return;
	if (cw->list_need)
		cw_issue_list(cw);
	cw_read_new(cw);
	zkr_session_kick(cw->s);
}

static void cw_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cw_sweep(arg);
}

static void cw_on_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct zkr_certwatch *cw = arg;
	(void)s;
	switch (ev) {
	case ZKR_SESSION_NEW:
		/*
		 * Keep the model: the new list is compared with it, so that
		 * what was removed while we were away is removed, new records
		 * are read, and known ones are not read again. Replies of the
		 * old session are dropped (epoch), so their reads are redone.
		 */
		cw->epoch++;
		cw->running = true;
		cw->retry_cur_ms = CW_RETRY_MS;
		cw->list_inflight = cw->list_again = false;
		cw->pending_gets = 0;
		for (size_t i = 0; i < cw->n_certs; i++) {
			if (cw->certs[i].inflight) {
				cw->certs[i].inflight = false;
				cw->certs[i].retry = true;
			}
		}
		log_info("certs: new session, reading %s" CERTS_PATH " (%zu known)", cw_chroot(cw),
			 cw->n_certs);
		cw_issue_list(cw);
		zkr_session_kick(cw->s);
		break;
	case ZKR_SESSION_RECONNECTED:
		cw_sweep(cw);
		break;
	case ZKR_SESSION_DISCONNECTED:
		break;
	case ZKR_SESSION_EXPIRED:
		/* The certificates in service stay until the new session's
		 * list says otherwise. */
		cw->running = false;
		break;
	}
}

/* ---- public ----------------------------------------------------------- */

struct zkr_certwatch *zkr_certwatch_new(struct event_base *base, struct zkr_session *s,
					zkr_cert_add_cb add, zkr_cert_remove_cb remove, void *arg,
					char *why, size_t whylen)
{
	struct zkr_certwatch *cw = calloc(1, sizeof(*cw));
	if (cw == NULL)
		goto oom;
	cw->id = next_certwatch_id++;
	cw->s = s;
	cw->add = add;
	cw->remove = remove;
	cw->arg = arg;
	cw->retry_cur_ms = CW_RETRY_MS;
	cw->retry_ev = evtimer_new(base, cw_retry_cb, cw);
	if (cw->retry_ev == NULL)
		goto oom;
	cw->live_next = live_certwatches;
	live_certwatches = cw;
	if (!zkr_session_subscribe(s, cw_on_session, cw))
		goto oom;
	if (zkr_session_connected(s))
		cw_on_session(s, ZKR_SESSION_NEW, cw);
	return cw;
oom:
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "out of memory creating the certificate watcher");
	zkr_certwatch_free(cw);
	return NULL;
}

void zkr_certwatch_free(struct zkr_certwatch *cw)
{
	if (cw == NULL)
		return;
	for (struct zkr_certwatch **pp = &live_certwatches; *pp; pp = &(*pp)->live_next) {
		if (*pp == cw) {
			*pp = cw->live_next;
			break;
		}
	}
	if (cw->s != NULL)
		zkr_session_unsubscribe(cw->s, cw_on_session, cw);
	if (cw->retry_ev != NULL)
		event_free(cw->retry_ev);
	for (size_t i = 0; i < cw->n_certs; i++)
		free(cw->certs[i].name);
	free(cw->certs);
	for (size_t i = 0; i < cw->n_doomed; i++)
		free(cw->doomed[i]);
	free(cw->doomed);
	free(cw);
}

void zkr_certwatch_get_stats(const struct zkr_certwatch *cw, struct zkr_certwatch_stats *out)
{
	*out = cw->stats;
}
