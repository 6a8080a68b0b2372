/*
 * Worker threads and their mailboxes (see workers.h).
 *
 * A call (struct wcall) is posted to every worker's mailbox as a small
 * message; each worker runs its fn and counts the call down; the worker
 * that brings the count to zero queues the call on the control thread's
 * completion queue, whose eventfd wakes the control loop to run done.
 * Nothing but the mailboxes (each behind its mutex) and that count is
 * shared between threads; a worker's proxy and access log are touched by
 * its own thread only while it runs.
 */
#include <config.h>

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "node/accesslog.h"
#include "node/mem-cache.h"
#include "node/proxy.h"
#include "node/workers.h"
#include "registry/log.h"
#include "registry/threadsig.h"

struct wcall {
	workers_fn fn;
	workers_done_fn done;
	void *arg;
	atomic_uint left;          /* workers that have not run fn yet */
	struct wcall *next_done;   /* in the control's completion queue */
};

struct wmsg {
	struct wcall *call;        /* NULL: leave the loop */
	struct wmsg *next;
};

struct worker {
	struct workers *ws;
	unsigned index;
	pthread_t thread;
	bool started;
	bool leaving;              /* asked to leave its loop (its thread only) */
	struct event_base *base;
	struct proxy *proxy;
	struct accesslog *log;
	pthread_mutex_t mu;        /* guards head, tail */
	struct wmsg *head, *tail;
	int efd;
	struct event *ev;
};

struct workers {
	struct event_base *control;
	unsigned n;
	struct worker *w;
	bool stopped;              /* workers_stop ran: no more calls */
	pthread_mutex_t mu;        /* guards done_head, done_tail */
	struct wcall *done_head, *done_tail;
	int efd;
	struct event *ev;
};

static void wake(int efd)
{
	uint64_t one = 1;
	/* A full counter (never, at 2^64 - 1) still leaves the fd readable. */
	while (write(efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void drain_efd(int efd)
{
	uint64_t v;
	while (read(efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

/* ---- the control side: completions ------------------------------------ */

static void run_dones(struct workers *ws)
{
	struct wcall *c;

	pthread_mutex_lock(&ws->mu);
	c = ws->done_head;
	ws->done_head = ws->done_tail = NULL;
	pthread_mutex_unlock(&ws->mu);
	while (c != NULL) {
		struct wcall *next = c->next_done;
		if (c->done != NULL)
			c->done(c->arg);
		free(c);
		c = next;
	}
}

static void control_cb(evutil_socket_t fd, short what, void *arg)
{
	struct workers *ws = arg;
	drain_efd(ws->efd);
	run_dones(ws);
}

static void call_finished(struct workers *ws, struct wcall *c)
{
	pthread_mutex_lock(&ws->mu);
	c->next_done = NULL;
	if (ws->done_tail != NULL)
		ws->done_tail->next_done = c;
	else
		ws->done_head = c;
	ws->done_tail = c;
	pthread_mutex_unlock(&ws->mu);
	wake(ws->efd);
}

/* ---- the worker side ---------------------------------------------------- */

static void worker_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct wmsg *m;

	drain_efd(w->efd);
	pthread_mutex_lock(&w->mu);
	m = w->head;
	w->head = w->tail = NULL;
	pthread_mutex_unlock(&w->mu);
	while (m != NULL) {
		struct wmsg *next = m->next;
		struct wcall *c = m->call;
		if (c == NULL) {
			w->leaving = true;
			event_base_loopexit(w->base, NULL);
		} else {
			c->fn(w, c->arg);
			if (atomic_fetch_sub(&c->left, 1) == 1)
				call_finished(w->ws, c);
		}
		free(m);
		m = next;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int rc;

	memc_thread_start();
	rc = event_base_dispatch(w->base);

	/* A worker whose loop ends unasked leaves its listening sockets
	 * taking connections nobody serves: stop the process loudly rather
	 * than let clients hang. */
	if (rc < 0 || !w->leaving) {
		log_error("worker %u: its event loop ended unasked (%s); exiting", w->index,
			  rc < 0 ? "failed" : "no events left");
		abort();
	}
	/* What is buffered goes out before the thread ends. */
	accesslog_flush(w->log);
	memc_thread_end();
	return NULL;
}

/* Out of memory is the only failure: a message that cannot be queued is
 * a call that never completes, so the process stops rather than hang. */
static void post(struct worker *w, struct wcall *c)
{
	struct wmsg *m = malloc(sizeof(*m));
	if (m == NULL) {
		log_error("out of memory posting to worker %u; exiting", w->index);
		abort();
	}
	if (!w->started)
		ZKR_BUG("message to worker %u, which is not running", w->index);
	m->call = c;
	m->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->tail != NULL)
		w->tail->next = m;
	else
		w->head = m;
	w->tail = m;
	pthread_mutex_unlock(&w->mu);
	wake(w->efd);
}

void workers_call(struct workers *ws, workers_fn fn, workers_done_fn done, void *arg)
{
	struct wcall *c = calloc(1, sizeof(*c));

	if (ws->stopped) {
		ZKR_BUG("workers_call after workers_stop");
		free(c);
		return;
	}
	if (c == NULL) {
		log_error("out of memory calling the workers; exiting");
		abort();
	}
	c->fn = fn;
	c->done = done;
	c->arg = arg;
	atomic_init(&c->left, ws->n);
	for (unsigned i = 0; i < ws->n; i++)
		post(&ws->w[i], c);
}

/* ---- the calls everything else is made of ------------------------------ */

struct table_msg {
	struct route_table *t;
	workers_done_fn done;
	void *arg;
};

static void table_fn(struct worker *w, void *arg)
{
	struct table_msg *m = arg;
	proxy_set_table(w->proxy, m->t);
}

static void table_done(void *arg)
{
	struct table_msg *m = arg;
	if (m->done != NULL)
		m->done(m->arg);
	route_table_unref(m->t);
	free(m);
}

void workers_set_table(struct workers *ws, struct route_table *t, workers_done_fn done, void *arg)
{
	struct table_msg *m = malloc(sizeof(*m));
	if (m == NULL) {
		log_error("out of memory publishing table generation %llu; keeping the previous one",
			  (unsigned long long)t->generation);
		return;
	}
	m->t = route_table_ref(t);
	m->done = done;
	m->arg = arg;
	workers_call(ws, table_fn, table_done, m);
}

struct reload_msg {
	bool apply;                /* false: reopen the log only */
	struct zkr_config cfg;     /* scalars, and upgrade_protocols our copy */
};

static void reload_fn(struct worker *w, void *arg)
{
	struct reload_msg *m = arg;
	/* Lines already formatted go to the old file, the next to the new. */
	(void)accesslog_reopen(w->log);   /* it logs a failure */
	if (m->apply)
		proxy_apply_config(w->proxy, &m->cfg);
}

static void reload_done(void *arg)
{
	struct reload_msg *m = arg;
	free(m->cfg.upgrade_protocols);
	free(m);
}

void workers_reload(struct workers *ws, const struct zkr_config *cfg)
{
	struct reload_msg *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		log_error("out of memory: the workers keep their options");
		return;
	}
	if (cfg == NULL) {
		workers_call(ws, reload_fn, reload_done, m);
		return;
	}
	/* The control thread's cfg changes at the next SIGHUP, maybe before
	 * a worker ran this: each worker reads this copy instead. proxy.c
	 * reads no string of it but upgrade_protocols. */
	m->apply = true;
	m->cfg = *cfg;
	if (cfg->upgrade_protocols != NULL &&
	    (m->cfg.upgrade_protocols = strdup(cfg->upgrade_protocols)) == NULL) {
		log_error("out of memory: the workers keep their options");
		free(m);
		return;
	}
	workers_call(ws, reload_fn, reload_done, m);
}

enum left_what { LEFT_DRAIN, LEFT_STOP_LISTENING, LEFT_TICK };

struct left_msg {
	enum left_what what;
	workers_left_fn done;
	void *arg;
	size_t n;
	size_t left[];             /* one per worker, each written by its own */
};

static void left_fn(struct worker *w, void *arg)
{
	struct left_msg *m = arg;

	switch (m->what) {
	case LEFT_DRAIN:
		proxy_drain(w->proxy);
		m->left[w->index] = proxy_active_requests(w->proxy);
		break;
	case LEFT_STOP_LISTENING:
		proxy_stop_listening(w->proxy);
		m->left[w->index] = proxy_drain_tick(w->proxy);
		break;
	case LEFT_TICK:
		m->left[w->index] = proxy_drain_tick(w->proxy);
		break;
	}
}

static void left_done(void *arg)
{
	struct left_msg *m = arg;
	size_t sum = 0;

	for (size_t i = 0; i < m->n; i++)
		sum += m->left[i];
	m->done(sum, m->arg);
	free(m);
}

static void left_call(struct workers *ws, enum left_what what, workers_left_fn done, void *arg)
{
	struct left_msg *m = calloc(1, sizeof(*m) + ws->n * sizeof(m->left[0]));
	if (m == NULL) {
		log_error("out of memory: no drain step; exiting");
		abort();
	}
	m->what = what;
	m->done = done;
	m->arg = arg;
	m->n = ws->n;
	workers_call(ws, left_fn, left_done, m);
}

void workers_drain(struct workers *ws, workers_left_fn done, void *arg)
{
	left_call(ws, LEFT_DRAIN, done, arg);
}

void workers_stop_listening(struct workers *ws, workers_left_fn done, void *arg)
{
	left_call(ws, LEFT_STOP_LISTENING, done, arg);
}

void workers_drain_tick(struct workers *ws, workers_left_fn done, void *arg)
{
	left_call(ws, LEFT_TICK, done, arg);
}

/* ---- life --------------------------------------------------------------- */

static bool open_listeners(struct worker *w, const struct zkr_config *c, struct tls_store *tls,
			   char *why, size_t whylen)
{
	char err[256];

	for (size_t i = 0; i < c->n_listen + c->n_tls_listen; i++) {
		bool is_tls = i >= c->n_listen;
		const char *spec = is_tls ? c->tls_listen[i - c->n_listen] : c->listen[i];
		char addr[300];
		unsigned flags = 0;
		bool ok;

		/* config_check accepted the spec already. */
		snprintf(err, sizeof(err), "not ADDR:PORT[,proxy]");
		ok = config_split_listen(spec, addr, sizeof(addr), &flags);
		/* Every worker binds its own socket with SO_REUSEPORT; the
		 * first makes sure nobody else holds the port. */
		if (ok && w->index == 0)
			ok = proxy_listen_probe(addr, err, sizeof(err));
		if (ok)
			ok = is_tls ? proxy_listen_tls(w->proxy, addr, flags & CONFIG_LISTEN_PROXY, tls, err,
						       sizeof(err))
				    : proxy_listen(w->proxy, addr, flags & CONFIG_LISTEN_PROXY, err,
						   sizeof(err));
		if (!ok) {
			snprintf(why, whylen, "%s %s: %s", is_tls ? "tls-listen" : "listen", spec, err);
			return false;
		}
	}
	return true;
}

static bool worker_init(struct workers *ws, unsigned i, const struct zkr_config *c,
			struct proxy_shared *sh, struct tls_store *tls, char *why, size_t whylen)
{
	struct worker *w = &ws->w[i];
	struct event_config *ec = event_config_new();
	char err[256];

	w->ws = ws;
	w->index = i;
	w->efd = -1;
	pthread_mutex_init(&w->mu, NULL);
	/* One thread per loop: no lock inside libevent on the request path. */
	if (ec == NULL || event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK) != 0 ||
	    (w->base = event_base_new_with_config(ec)) == NULL) {
		if (ec != NULL)
			event_config_free(ec);
		snprintf(why, whylen, "worker %u: cannot create its event loop", i);
		return false;
	}
	event_config_free(ec);
	/* With no access-log path the log still counts requests for /metrics. */
	if ((w->log = accesslog_open(c->access_log, err, sizeof(err))) == NULL) {
		snprintf(why, whylen, "access log: %s", err);
		return false;
	}
	{
		enum accesslog_format f = ACCESSLOG_LOGFMT;
		accesslog_format_parse(c->access_log_format, &f);   /* checked by config_check */
		accesslog_set_format(w->log, f);
	}
	if (!accesslog_attach(w->log, w->base))
		log_warn("access log: no flush timer for worker %u; writing each line at once", i);
	if ((w->proxy = proxy_new(w->base, c, w->log)) == NULL) {
		snprintf(why, whylen, "cannot create the proxy of worker %u (out of memory?)", i);
		return false;
	}
	proxy_set_shared(w->proxy, sh);
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (w->ev = event_new(w->base, w->efd, EV_READ | EV_PERSIST, worker_cb, w)) == NULL ||
	    event_add(w->ev, NULL) != 0) {
		snprintf(why, whylen, "worker %u: cannot make its mailbox: %s", i, strerror(errno));
		return false;
	}
	return open_listeners(w, c, tls, why, whylen);
}

struct workers *workers_new(struct event_base *control, unsigned n, const struct zkr_config *cfg,
			    struct proxy_shared *sh, struct tls_store *tls, char *why, size_t whylen)
{
	struct workers *ws = calloc(1, sizeof(*ws));

	if (ws == NULL || (ws->w = calloc(n, sizeof(*ws->w))) == NULL) {
		free(ws);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	ws->control = control;
	ws->efd = -1;
	pthread_mutex_init(&ws->mu, NULL);
	if ((ws->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (ws->ev = event_new(control, ws->efd, EV_READ | EV_PERSIST, control_cb, ws)) == NULL ||
	    event_add(ws->ev, NULL) != 0) {
		snprintf(why, whylen, "cannot make the workers' completion queue: %s", strerror(errno));
		workers_free(ws);
		return NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		ws->n = i + 1;       /* what workers_free cleans up */
		if (!worker_init(ws, i, cfg, sh, tls, why, whylen)) {
			workers_free(ws);
			return NULL;
		}
	}
	return ws;
}

bool workers_start(struct workers *ws)
{
	sigset_t old;
	bool ok = true;

	/* Signals go to the control thread's loop (registry/threadsig.h). */
	threadsig_block_for_start(&old);
	for (unsigned i = 0; i < ws->n && ok; i++) {
		struct worker *w = &ws->w[i];
		int err = pthread_create(&w->thread, NULL, worker_main, w);
		if (err != 0) {
			log_error("cannot start worker %u: %s", i, strerror(err));
			ok = false;
			break;
		}
		w->started = true;
		char name[16];
		snprintf(name, sizeof(name), "zkr-worker-%u", i % 1000u);
		(void)pthread_setname_np(w->thread, name);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ok)
		log_info("%u worker thread%s running", ws->n, ws->n == 1 ? "" : "s");
	return ok;
}

unsigned workers_count(const struct workers *ws)
{
	return ws->n;
}

struct proxy *worker_proxy(struct worker *w)
{
	return w->proxy;
}

struct accesslog *worker_log(struct worker *w)
{
	return w->log;
}

unsigned worker_index(const struct worker *w)
{
	return w->index;
}

void workers_stop(struct workers *ws)
{
	if (ws == NULL || ws->stopped)
		return;
	/* Each worker runs what was posted before the exit first, so every
	 * call completes; their done callbacks run below. */
	for (unsigned i = 0; i < ws->n; i++)
		if (ws->w[i].started)
			post(&ws->w[i], NULL);
	ws->stopped = true;
	for (unsigned i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		int err;
		if (!w->started)
			continue;
		if ((err = pthread_join(w->thread, NULL)) != 0)
			ZKR_BUG("cannot join worker %u: %s", i, strerror(err));
		w->started = false;
	}
	run_dones(ws);
}

void workers_free(struct workers *ws)
{
	if (ws == NULL)
		return;
	workers_stop(ws);
	for (unsigned i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];
		struct wmsg *m;
		/* Nothing is left in a mailbox of a joined worker but what
		 * was never delivered (a worker that never started). */
		while ((m = w->head) != NULL) {
			w->head = m->next;
			free(m);
		}
		proxy_free(w->proxy);
		accesslog_close(w->log);
		if (w->ev != NULL)
			event_free(w->ev);
		if (w->efd >= 0)
			close(w->efd);
		if (w->base != NULL)
			event_base_free(w->base);
		pthread_mutex_destroy(&w->mu);
	}
	if (ws->ev != NULL)
		event_free(ws->ev);
	if (ws->efd >= 0)
		close(ws->efd);
	pthread_mutex_destroy(&ws->mu);
	free(ws->w);
	free(ws);
}

unsigned workers_parse(const char *text)
{
	char *end;
	unsigned long v;

	if (text == NULL || strcmp(text, "auto") == 0) {
		cpu_set_t set;
		int n;
		if (sched_getaffinity(0, sizeof(set), &set) != 0 || (n = CPU_COUNT(&set)) < 1)
			return 1;
		return (unsigned)n < WORKERS_MAX ? (unsigned)n : WORKERS_MAX;
	}
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < 1 || v > WORKERS_MAX)
		return 0;
	return (unsigned)v;
}
