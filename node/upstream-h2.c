/*
 * The h2c client toward backends (see upstream-h2.h for the model): pools
 * of multiplexed HTTP/2 connections, each an nghttp2 client session fed
 * from and into a libevent bufferevent with nghttp2_session_mem_recv and
 * nghttp2_session_mem_send.
 *
 * Re-entry. Callbacks to the caller run inside nghttp2's callbacks, and
 * the caller may call back in (submit, cancel, send body, consume). Those
 * only queue work with nghttp2 (submit_*, resume_data, consume, which
 * nghttp2 allows from its callbacks); the sending (uh2_conn_pump) and the
 * placing of waiting streams (uh2_pool_dispatch) are deferred to the end of
 * the outermost entry while one is running (pool->depth, conn->busy).
 * Connections are freed only from the pool's `later` event, never under
 * a callback; a stream is freed when nghttp2 closes it, or with its
 * connection.
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "node/upstream-h2-int.h"
#include "registry/log.h"

static void conn_fail(struct uh2_conn *c, enum uh2_error e, const char *why);

/* ---- small helpers ----------------------------------------------------- */

void uh2_timer_ms(struct event *ev, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (event_add(ev, &tv) != 0)
		log_warn("h2c: cannot arm a timer");
}

static void later(struct uh2_pool *pool)
{
	event_active(pool->later, EV_TIMEOUT, 0);
}

/* Entering from the event loop; leaving runs what was deferred. */
static void enter(struct uh2_pool *pool)
{
	pool->depth++;
}

static void leave(struct uh2_pool *pool)
{
	if (--pool->depth == 0 && pool->redispatch)
		uh2_pool_dispatch(pool);
}

unsigned uh2_conn_capacity(const struct uh2_conn *c)
{
	uint32_t peer = nghttp2_session_get_remote_settings(c->ngh,
							    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

	return peer < c->pool->lim.max_streams ? peer : c->pool->lim.max_streams;
}

/* ---- connections -------------------------------------------------------- */

static void conn_close(struct uh2_conn *c)
{
	struct uh2_pool *pool = c->pool;

	if (c->state == C_DEAD)
		return;
	c->state = C_DEAD;
	event_del(c->timer);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	TAILQ_REMOVE(&pool->conns, c, link);
	TAILQ_INSERT_TAIL(&pool->dead, c, link);
	pool->st.conns--;
	later(pool);
}

static void conn_free(struct uh2_conn *c)
{
	struct uh2_stream *s;

	/* nghttp2_session_del calls nothing back. */
	nghttp2_session_del(c->ngh);
	while ((s = TAILQ_FIRST(&c->streams)) != NULL) {
		TAILQ_REMOVE(&c->streams, s, link);
		uh2_stream_free(s);
	}
	event_free(c->timer);
	bufferevent_free(c->bev);
	c->magic = 0;
	free(c);
}

static void fail_pending(struct uh2_pool *pool, enum uh2_error e);

static bool pool_has_ready(const struct uh2_pool *pool)
{
	const struct uh2_conn *c;

	TAILQ_FOREACH(c, &pool->conns, link)
		if (c->state == C_READY)
			return true;
	return false;
}

/* Fails every stream still on it and closes it. */
static void conn_fail(struct uh2_conn *c, enum uh2_error e, const char *why)
{
	struct uh2_stream *s;

	if (c->state == C_DEAD)
		return;
	/* Our own closes, and a drained one's, are routine; the others
	 * are worth a line and a count. */
	if (c->idle_closing || c->pool->retired ||
	    (c->state == C_DRAINING && TAILQ_EMPTY(&c->streams))) {
		log_debug("h2c %s: c%llu %s", c->pool->name, (unsigned long long)c->id, why);
	} else {
		log_info("h2c %s: c%llu %s", c->pool->name, (unsigned long long)c->id, why);
		c->pool->st.conns_failed++;
	}
	conn_close(c);
	/* Streams past the peer's GOAWAY, or not yet sent, were never
	 * processed; the others may have been. */
	while ((s = TAILQ_FIRST(&c->streams)) != NULL) {
		bool unsent = !s->headers_sent || (c->goaway_last >= 0 && s->id > c->goaway_last);

		uh2_stream_fail(s, e == UH2_ERR_CLOSED && unsent ? UH2_ERR_REFUSED : e, 0);
		TAILQ_REMOVE(&c->streams, s, link);
		c->n_streams--;
		s->conn = NULL;
		uh2_stream_free(s);
	}
	if (!c->was_ready && !pool_has_ready(c->pool))
		/* The instance does not answer (or closes, or says GOAWAY,
		 * before its SETTINGS): the waiting streams go back to the
		 * caller, to try another, rather than wait for more connects
		 * to fail the same way. */
		fail_pending(c->pool, UH2_ERR_CONNECT);
	c->pool->redispatch = true;
	if (c->pool->depth == 0)
		uh2_pool_dispatch(c->pool);
}

/* Moves nghttp2's output into the bufferevent while under the high mark;
 * then tells streams about room and closes a finished connection. */
void uh2_conn_pump(struct uh2_conn *c)
{
	struct evbuffer *out;

	if (c->busy) {
		c->want_send = true;
		return;
	}
	if (c->state == C_DEAD)
		return;
	out = bufferevent_get_output(c->bev);
	c->busy = true;
	enter(c->pool);
	do {
		c->want_send = false;
		while (evbuffer_get_length(out) < c->pool->lim.output_high) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(c->ngh, &data);

			if (n < 0) {
				c->busy = false;
				conn_fail(c, UH2_ERR_INTERNAL, nghttp2_strerror((int)n));
				leave(c->pool);
				return;
			}
			if (n == 0)
				break;
			if (evbuffer_add(out, data, (size_t)n) != 0) {
				c->busy = false;
				conn_fail(c, UH2_ERR_INTERNAL, "out of memory");
				leave(c->pool);
				return;
			}
		}
		uh2_notify_room(c);
	} while (c->want_send && c->state != C_DEAD);
	c->busy = false;
	if (c->state != C_DEAD && evbuffer_get_length(out) == 0 &&
	    ((c->state == C_DRAINING && c->n_streams == 0) ||
	     (!nghttp2_session_want_read(c->ngh) && !nghttp2_session_want_write(c->ngh))))
		conn_fail(c, UH2_ERR_CLOSED, c->idle_closing ? "closed when idle"
					     : c->state == C_DRAINING ? "drained after GOAWAY"
								      : "session over");
	leave(c->pool);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct uh2_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c == NULL || c->magic != UH2_CONN_MAGIC) {
		ZKR_BUG("h2c read: not a live connection (%p)", arg);
		return;
	}
	enter(c->pool);
	c->busy = true;
	while (evbuffer_get_length(in) > 0 && c->state != C_DEAD) {
		size_t len = evbuffer_get_contiguous_space(in);
		const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)len);
		ssize_t n = nghttp2_session_mem_recv(c->ngh, data, len);

		if (n < 0) {
			c->busy = false;
			conn_fail(c, UH2_ERR_PROTOCOL, nghttp2_strerror((int)n));
			leave(c->pool);
			return;
		}
		evbuffer_drain(in, (size_t)n);
	}
	c->busy = false;
	uh2_conn_pump(c);
	leave(c->pool);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct uh2_conn *c = arg;

	if (c == NULL || c->magic != UH2_CONN_MAGIC) {
		ZKR_BUG("h2c write: not a live connection (%p)", arg);
		return;
	}
	uh2_conn_pump(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct uh2_conn *c = arg;

	if (c == NULL || c->magic != UH2_CONN_MAGIC) {
		ZKR_BUG("h2c event: not a live connection (%p)", arg);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		evutil_socket_t fd = bufferevent_getfd(bev);
		int one = 1;

		if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
			log_debug("h2c %s: TCP_NODELAY: %s", c->pool->name, strerror(errno));
		return;
	}
	enter(c->pool);
	if (c->state == C_CONNECTING)
		conn_fail(c, UH2_ERR_CONNECT,
			  (what & BEV_EVENT_TIMEOUT) ? "connect timed out"
						     : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		conn_fail(c, UH2_ERR_CLOSED,
			  (what & BEV_EVENT_EOF) ? "closed by the backend"
			  : (what & BEV_EVENT_TIMEOUT) ? "write timed out"
						       : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	leave(c->pool);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct uh2_conn *c = arg;

	if (c == NULL || c->magic != UH2_CONN_MAGIC) {
		ZKR_BUG("h2c timer: not a live connection (%p)", arg);
		return;
	}
	enter(c->pool);
	if (c->state == C_CONNECTING) {
		conn_fail(c, UH2_ERR_CONNECT, "no connection and SETTINGS within the connect timeout");
	} else if (c->state == C_READY && c->n_streams == 0) {
		/* Idle: say goodbye, then close once that is written. */
		c->idle_closing = true;
		c->state = C_DRAINING;
		c->pool->st.conns_idle_closed++;
		nghttp2_session_terminate_session(c->ngh, NGHTTP2_NO_ERROR);
		uh2_timer_ms(c->timer, UH2_CLOSE_GRACE_MS);
		uh2_conn_pump(c);
	} else if (c->state == C_DRAINING && c->n_streams == 0) {
		conn_fail(c, UH2_ERR_CLOSED, "GOAWAY not written in time");
	}
	leave(c->pool);
}


static bool session_open(struct uh2_conn *c)
{
	const struct uh2_limits *lim = &c->pool->lim;
	nghttp2_session_callbacks *cb = uh2_session_callbacks();
	nghttp2_option *opt = NULL;
	uint64_t conn_window = (uint64_t)lim->stream_window * lim->max_streams;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0 },   /* no pushed streams */
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim->stream_window },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)lim->max_header_bytes },
	};
	bool ok = false;

	if (cb == NULL || nghttp2_option_new(&opt) != 0)
		goto done;
	/* Windows open as the caller forwards (uh2_stream_consumed). */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	if (nghttp2_session_client_new2(&c->ngh, cb, c, opt) != 0) {
		c->ngh = NULL;
		goto done;
	}
	if (conn_window > NGHTTP2_MAX_WINDOW_SIZE)
		conn_window = NGHTTP2_MAX_WINDOW_SIZE;
	if (conn_window < NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
		conn_window = NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE;
	ok = nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) == 0 &&
	     nghttp2_session_set_local_window_size(c->ngh, NGHTTP2_FLAG_NONE, 0,
						   (int32_t)conn_window) == 0;
done:
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	return ok;
}

/* Opens one more connection; false when it could not even start. */
static bool conn_open(struct uh2_pool *pool)
{
	struct uh2_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return false;
	c->magic = UH2_CONN_MAGIC;
	c->pool = pool;
	c->id = ++pool->next_conn_id;
	c->goaway_last = -1;
	c->state = C_CONNECTING;
	TAILQ_INIT(&c->streams);
	c->bev = bufferevent_socket_new(pool->base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(pool->base, conn_timer_cb, c);
	if (c->bev == NULL || c->timer == NULL || !session_open(c))
		goto fail;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/* More output is made when half of it is written. */
	bufferevent_setwatermark(c->bev, EV_WRITE, pool->lim.output_high / 2, 0);
	/* Listed first: libevent may report a failed connect at once. */
	TAILQ_INSERT_TAIL(&pool->conns, c, link);
	pool->st.conns++;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&pool->addr, (int)pool->addrlen) != 0 ||
	    bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
		TAILQ_REMOVE(&pool->conns, c, link);
		pool->st.conns--;
		goto fail;
	}
	uh2_timer_ms(c->timer, pool->lim.connect_timeout_ms);
	pool->st.conns_opened++;
	log_debug("h2c %s: c%llu connecting", pool->name, (unsigned long long)c->id);
	/* The preface and our SETTINGS wait in the output for the connect. */
	uh2_conn_pump(c);
	return true;
fail:
	log_info("h2c %s: cannot open a connection: %s", pool->name, strerror(errno));
	if (c->ngh != NULL)
		nghttp2_session_del(c->ngh);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
	return false;
}

static struct uh2_conn *conn_with_room(struct uh2_pool *pool)
{
	struct uh2_conn *c;

	TAILQ_FOREACH(c, &pool->conns, link)
		if (c->state == C_READY && c->n_streams < uh2_conn_capacity(c))
			return c;
	return NULL;
}

static void fail_pending(struct uh2_pool *pool, enum uh2_error e)
{
	struct uh2_stream *s;

	while ((s = TAILQ_FIRST(&pool->pending)) != NULL) {
		TAILQ_REMOVE(&pool->pending, s, link);
		pool->st.pending--;
		uh2_stream_fail(s, e, 0);
		uh2_stream_free(s);
	}
}

/*
 * Places waiting streams on connections with room, then opens
 * connections while the waiting ones outnumber what the connections
 * still opening will take. Deferred while a callback runs.
 */
void uh2_pool_dispatch(struct uh2_pool *pool)
{
	struct uh2_stream *s;
	struct uh2_conn *c;

	if (pool->depth > 0 || pool->dispatching) {
		pool->redispatch = true;
		return;
	}
	pool->dispatching = true;
	do {
		unsigned coming = 0, live = 0;

		pool->redispatch = false;
		while ((s = TAILQ_FIRST(&pool->pending)) != NULL && (c = conn_with_room(pool)) != NULL) {
			TAILQ_REMOVE(&pool->pending, s, link);
			pool->st.pending--;
			if (!uh2_stream_attach(c, s)) {
				TAILQ_INSERT_HEAD(&pool->pending, s, link);
				pool->st.pending++;
				continue;
			}
			uh2_conn_pump(c);
		}
		if (TAILQ_EMPTY(&pool->pending))
			break;
		TAILQ_FOREACH(c, &pool->conns, link) {
			if (c->state == C_CONNECTING)
				coming += pool->lim.max_streams;
			if (c->state == C_CONNECTING || c->state == C_READY)
				live++;
		}
		/* Draining connections do not count: they are on their way out. */
		while (coming < pool->st.pending && live < pool->lim.max_conns && !pool->retired) {
			if (!conn_open(pool))
				break;
			coming += pool->lim.max_streams;
			live++;
		}
		/* Nothing open nor opening will ever take them. */
		if (live == 0)
			fail_pending(pool, pool->retired || !TAILQ_EMPTY(&pool->conns) ? UH2_ERR_REFUSED
										 : UH2_ERR_CONNECT);
	} while (pool->redispatch);
	pool->dispatching = false;
}

static void pool_free_now(struct uh2_pool *pool);

static void pool_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct uh2_pool *pool = arg;
	struct uh2_conn *c;

	while ((c = TAILQ_FIRST(&pool->dead)) != NULL) {
		TAILQ_REMOVE(&pool->dead, c, link);
		conn_free(c);
	}
	if (pool->retired && TAILQ_EMPTY(&pool->conns) && TAILQ_EMPTY(&pool->pending)) {
		pool_free_now(pool);
		return;
	}
	if (pool->redispatch)
		uh2_pool_dispatch(pool);
}

/* ---- the public side ---------------------------------------------------- */

void uh2_pool_set_connect_timeout(struct uh2_pool *pool, unsigned ms)
{
	if (ms > 0)
		pool->lim.connect_timeout_ms = ms;
}

struct uh2_pool *uh2_pool_new(struct event_base *base, const struct sockaddr *addr,
			      socklen_t addrlen, const char *name, const struct uh2_limits *lim)
{
	struct uh2_pool *pool;

	if (addrlen > sizeof(pool->addr) || (pool = calloc(1, sizeof(*pool))) == NULL)
		return NULL;
	pool->base = base;
	memcpy(&pool->addr, addr, addrlen);
	pool->addrlen = addrlen;
	snprintf(pool->name, sizeof(pool->name), "%s", name);
	pool->lim = *lim;
	if (pool->lim.max_streams == 0)
		pool->lim.max_streams = 1;
	if (pool->lim.max_conns == 0)
		pool->lim.max_conns = 1;
	TAILQ_INIT(&pool->conns);
	TAILQ_INIT(&pool->dead);
	TAILQ_INIT(&pool->pending);
	pool->later = event_new(base, -1, 0, pool_later_cb, pool);
	if (pool->later == NULL) {
		free(pool);
		return NULL;
	}
	return pool;
}

static void pool_free_now(struct uh2_pool *pool)
{
	struct uh2_conn *c;

	while ((c = TAILQ_FIRST(&pool->dead)) != NULL) {
		TAILQ_REMOVE(&pool->dead, c, link);
		conn_free(c);
	}
	event_free(pool->later);
	free(pool);
}

void uh2_pool_free(struct uh2_pool *pool)
{
	struct uh2_conn *c;

	if (pool == NULL)
		return;
	if (pool->depth > 0) {
		ZKR_BUG("h2c %s: pool freed from inside its callbacks", pool->name);
		return;
	}
	pool->retired = true;
	enter(pool);
	fail_pending(pool, UH2_ERR_REFUSED);
	while ((c = TAILQ_FIRST(&pool->conns)) != NULL)
		conn_fail(c, UH2_ERR_CLOSED, "closed with its pool");
	pool->depth--;
	pool_free_now(pool);
}

void uh2_pool_retire(struct uh2_pool *pool)
{
	struct uh2_conn *c, *next;

	if (pool == NULL || pool->retired)
		return;
	pool->retired = true;
	enter(pool);
	fail_pending(pool, UH2_ERR_REFUSED);
	for (c = TAILQ_FIRST(&pool->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->n_streams == 0) {
			c->idle_closing = true;
			conn_fail(c, UH2_ERR_CLOSED, "closed: its instance left");
		} else if (c->state != C_DEAD) {
			c->state = C_DRAINING;
		}
	}
	leave(pool);
	later(pool);
}

void uh2_pool_stats(const struct uh2_pool *pool, struct uh2_pool_stats *st)
{
	const struct uh2_conn *c;

	*st = pool->st;
	st->conns_ready = 0;
	st->streams = 0;
	TAILQ_FOREACH(c, &pool->conns, link) {
		st->conns_ready += c->state == C_READY;
		st->streams += c->n_streams;
	}
}
