/*
 * The backend side of a request (see upstream.h): picking an instance,
 * reusing or opening a connection, sending the head and streaming the
 * body, then pooling or closing the connection. Retries and passive
 * ejection are decided here, where the failure is seen. The response is
 * read and relayed by upstream-response.c.
 */
#include <config.h>

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "node/balancer.h"
#include "node/stream.h"
#include "node/upstream.h"
#include "node/upstream-h2c.h"

static const char *const up_state_names[] = {
	[US_CONNECTING] = "connecting", [US_ACTIVE] = "active", [US_IDLE] = "idle",
	[US_TUNNEL] = "tunnel", [US_DEAD] = "dead",
};

static void up_set_state(struct upstream *up, enum upstream_state s)
{
	if (up->state == s)
		return;
	log_debug("u%llu %s: state %s -> %s", (unsigned long long)up->id, up->be->name,
		  up_state_names[up->state], up_state_names[s]);
	up->state = s;
}

static void set_timeouts(struct upstream *up, unsigned read_ms, unsigned write_ms)
{
	conn_read_timeout(&up->io, read_ms);
	conn_write_timeout(&up->io, write_ms);
}

static unsigned app_or(unsigned app_value, unsigned dflt)
{
	return app_value ? app_value : dflt;
}

/*
 * The idle pool of an instance (per worker): a stack, the most recently
 * used connection on top, so that the ones at the bottom are those no
 * request needed lately. Its size follows the demand: a connection that
 * comes back from a request stays (up to upstream_pool_max_idle), and the
 * tick closes half of those that stayed unused through a whole period
 * (the fewest idle seen since the last tick), rounded down. A steady load then reuses
 * its connections instead of paying a connect and a close per request
 * past a fixed size, and what a burst left behind goes within seconds,
 * before upstream_idle_timeout_ms if that is longer.
 */
static void pool_push(struct upstream *up)
{
	struct backend *be = up->be;
	struct proxy *p = up->p;

	TAILQ_INSERT_HEAD(&be->idle, up, link);
	be->n_idle++;
	p->pool_count.idle++;
	if (!be->pool_listed) {
		be->pool_listed = true;
		be->idle_low = 0;
		TAILQ_INSERT_TAIL(&p->pooled, be, pool_link);
	}
}

static void pool_remove(struct upstream *up)
{
	struct backend *be = up->be;
	struct proxy *p = up->p;

	TAILQ_REMOVE(&be->idle, up, link);
	be->n_idle--;
	p->pool_count.idle--;
	if (be->n_idle < be->idle_low)
		be->idle_low = be->n_idle;
	if (be->n_idle == 0 && be->pool_listed) {
		be->pool_listed = false;
		TAILQ_REMOVE(&p->pooled, be, pool_link);
	}
}

void upstream_close(struct upstream *up)
{
	struct proxy *p = up->p;

	if (up->state == US_DEAD)
		return;
	if (up->state == US_IDLE)
		pool_remove(up);
	up_set_state(up, US_DEAD);
	up->req = NULL;
	conn_io_halt(&up->io);
	bufferevent_disable(up->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(up->bev, NULL, NULL, NULL, NULL);
	TAILQ_INSERT_TAIL(&p->dead_upstreams, up, reap_link);
	p->uops->reap_later(p);
}

void upstream_free_dead(struct proxy *p)
{
	struct upstream *up;

	while ((up = TAILQ_FIRST(&p->dead_upstreams)) != NULL) {
		TAILQ_REMOVE(&p->dead_upstreams, up, reap_link);
		conn_io_close(&up->io);
		bufferevent_free(up->bev);
		backend_unref(up->be);
		up->magic = 0;
		free(up);
	}
}

void upstream_pool_close(struct backend *b)
{
	struct upstream *up;

	while ((up = TAILQ_FIRST(&b->idle)) != NULL)
		upstream_close(up);
	upstream_h2c_pool_close(b);
}

void upstream_pool_tick(struct proxy *p)
{
	struct backend *be, *next;

	for (be = TAILQ_FIRST(&p->pooled); be != NULL; be = next) {
		/* Rounded down: the last spare connection is left to the
		 * idle timeout, so an app with a request now and then keeps
		 * one to reuse, as it did before. */
		unsigned unused = be->idle_low / 2;
		struct upstream *up;

		/* Closing the last one unlists the instance: next is kept. */
		next = TAILQ_NEXT(be, pool_link);
		while (unused-- > 0 && (up = TAILQ_LAST(&be->idle, upstream_idle_q)) != NULL) {
			p->pool_count.trimmed++;
			upstream_close(up);
		}
		be->idle_low = be->n_idle;
	}
}

void proxy_pool_counters(const struct proxy *p, struct proxy_pool_counters *out)
{
	*out = p->pool_count;
}

/* ---- the request ------------------------------------------------------- */

/*
 * The response timeout runs from the end of the request body: while the
 * client still uploads, the app may rightly wait for it, so the backend's
 * read side has no timeout then (bytes stuck toward the backend are still
 * bounded by the write timeout, a silent client by request_body_stalled).
 */
static void arm_response_timeout(struct request *r)
{
	const struct route_app_config *ac = &r->as->app->config;

	/* Restarted even when unchanged: a pooled connection's idle timeout
	 * may have the same value, counting since it was last used. */
	conn_read_timeout_restart(&r->up->io,
				  r->req_body_done ? app_or(ac->response_timeout_ms,
							    r->c->p->cfg.response_timeout_ms)
						   : 0);
}

bool upstream_sending(const struct request *r)
{
	return (r->up != NULL && r->up->state == US_ACTIVE) || upstream_h2c_sending(r);
}

bool request_body_stalled(const struct request *r)
{
	return !r->req_body_done && upstream_sending(r) && r->h2s == NULL &&
	       !r->c->read_paused &&
	       evbuffer_get_length(bufferevent_get_input(r->c->bev)) == 0;
}

bool upstream_body_move(struct request *r, struct evbuffer *in, struct evbuffer *out,
			bool keep_chunks)
{
	struct proxy *p = r->c->p;

	while (!r->req_body_done && evbuffer_get_length(in) > 0 &&
	       evbuffer_get_length(out) < p->cfg.buffer_high_bytes) {
		size_t len = evbuffer_get_length(in);

		if (r->req_framing == FRAME_LENGTH) {
			size_t n = len < r->req_remaining ? len : (size_t)r->req_remaining;
			int moved = evbuffer_remove_buffer(in, out, n);

			if (moved <= 0)
				break;
			r->req_remaining -= (size_t)moved;
			r->body_moved += (size_t)moved;
			r->bytes_in += (size_t)moved;
			request_body_taken(r, (size_t)moved);
			if (r->req_remaining == 0)
				r->req_body_done = true;
		} else if (r->h2s != NULL) {
			/* Data without framing (HTTP/2 DATA): one chunk each, or
			 * as it is into a tunnel (FRAME_CLOSE, RFC 8441). */
			char size[24];
			int sl = snprintf(size, sizeof(size), "%zx\r\n", len);
			bool chunk = r->req_framing == FRAME_CHUNKED;

			if ((chunk && evbuffer_add(out, size, (size_t)sl) != 0) ||
			    evbuffer_remove_buffer(in, out, len) != (int)len ||
			    (chunk && evbuffer_add(out, "\r\n", 2) != 0)) {
				UP_OPS(r)->request_fail(r, 502, "backend_failed", "out of memory");
				return false;
			}
			r->body_moved += len;
			r->bytes_in += len;
			request_body_taken(r, len);
		} else {
			size_t used, dlen;
			bool done;
			const char *why = NULL;

			if (!http_body_move(&r->parser, &r->chunks, &p->lim, in, out, p->scratch,
					    keep_chunks, &used, &dlen, &done, &why)) {
				evbuffer_drain(in, evbuffer_get_length(in));
				UP_OPS(r)->request_fail(r, 400, "bad_request", "malformed chunked body");
				return false;
			}
			r->body_moved += used;
			r->bytes_in += used;
			if (done)
				r->req_body_done = true;
			if (used == 0)
				break;
		}
	}
	/* HTTP/2: END_STREAM came and every DATA byte went: the last chunk. */
	if (r->h2s != NULL && r->req_framing != FRAME_LENGTH && !r->req_body_done &&
	    r->req_body_eof && evbuffer_get_length(in) == 0) {
		if (r->req_framing == FRAME_CHUNKED && evbuffer_add(out, "0\r\n\r\n", 5) != 0) {
			UP_OPS(r)->request_fail(r, 502, "backend_failed", "out of memory");
			return false;
		}
		r->req_body_done = true;
	}
	return true;
}

void upstream_pump_request(struct request *r)
{
	struct client *c = r->c;
	struct proxy *p = c->p;
	struct upstream *up = r->up;
	struct evbuffer *in;
	struct evbuffer *out;
	const struct route_app_config *ac = &r->as->app->config;

	if (r->h2c != NULL) {
		upstream_h2c_pump(r);
		return;
	}
	if (up == NULL || up->state != US_ACTIVE)
		return;
	in = request_body_in(r);
	out = bufferevent_get_output(up->bev);
	for (;;) {
		if (!upstream_body_move(r, in, out, true))
			return;
		conn_flush(&up->io);
		/* The socket may have taken it all: then keep moving what the
		 * client already sent, nothing else would wake us for it. */
		if (r->req_body_done || evbuffer_get_length(in) == 0 ||
		    evbuffer_get_length(out) >= p->cfg.buffer_high_bytes)
			break;
	}
	if (ac->max_body_bytes && r->body_moved > ac->max_body_bytes) {
		/* Only a chunked body gets here: a declared length was checked
		 * before anything was sent. */
		UP_OPS(r)->request_fail(r, 413, "body_too_large", "request body larger than the app allows");
		return;
	}
	if (!r->req_body_done && r->h2s == NULL && c->io.eof && evbuffer_get_length(in) == 0) {
		UP_OPS(r)->request_fail(r, 400, "bad_request", "the client closed before the end of the body");
		return;
	}
	if (r->req_body_done) {
		if (r->state == RQ_SENDING)
			UP_OPS(r)->request_set_state(r, RQ_WAITING);
		arm_response_timeout(r);
	} else if (r->h2s != NULL) {
		/* HTTP/2: the stream's window stays shut while its bytes
		 * wait here; the write callback pumps again. */
	} else if (evbuffer_get_length(out) >= p->cfg.buffer_high_bytes) {
		/* The backend reads slower than the client sends; its write
		 * callback resumes us at the low mark. */
		if (!c->read_paused) {
			c->read_paused = true;
			conn_read_off(&c->io);
		}
	} else if (c->read_paused) {
		/* Paused while connecting (pipelined bytes past the mark). */
		c->read_paused = false;
		conn_read_on(&c->io);
	}
}

static void request_send(struct request *r)
{
	struct upstream *up = r->up;
	struct evbuffer *out = bufferevent_get_output(up->bev);
	const struct route_app_config *ac = &r->as->app->config;
	unsigned rt = app_or(ac->response_timeout_ms, r->c->p->cfg.response_timeout_ms);

	conn_write_timeout(&up->io, rt);
	if (r->upstream_start_us == 0)
		r->upstream_start_us = clock_now_us();
	if (evbuffer_add(out, r->head_out.data, r->head_out.len) != 0) {
		UP_OPS(r)->request_fail(r, 502, "backend_failed", "out of memory");
		return;
	}
	arm_response_timeout(r);
	UP_OPS(r)->request_set_state(r, r->req_body_done ? RQ_WAITING : RQ_SENDING);
	upstream_pump_request(r);
}

/* ---- callbacks --------------------------------------------------------- */

static void up_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *up = arg;

	CHECK_MAGIC(up, UPSTREAM_MAGIC);
	if (up->state == US_ACTIVE && up->req) {
		upstream_read_response(up->req);
		return;
	}
	/* Bytes on an idle connection: nothing we asked for, so unusable. */
	upstream_close(up);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *up = arg;
	struct request *r;

	CHECK_MAGIC(up, UPSTREAM_MAGIC);
	r = up->req;
	conn_write_done(&up->io);
	/* Also after the response head: the body may still be going. */
	if (up->state != US_ACTIVE || r == NULL || r->req_body_done)
		return;
	if (r->h2s != NULL) {
		upstream_pump_request(r);   /* the stream's DATA waiting */
		return;
	}
	if (!r->c->read_paused)
		return;
	r->c->read_paused = false;
	conn_read_on(&r->c->io);
	upstream_pump_request(r);
}

static void retry_or_fail(struct request *r, bool timeout);

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream *up = arg;
	struct request *r;

	CHECK_MAGIC(up, UPSTREAM_MAGIC);
	r = up->req;
	if (up->state == US_IDLE || r == NULL) {
		upstream_close(up);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		evutil_socket_t fd = bufferevent_getfd(bev);
		int one = 1;

		if (fd >= 0)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		up_set_state(up, US_ACTIVE);
		bufferevent_disable(bev, EV_WRITE);   /* see conn_flush */
		conn_read_on(&up->io);
		request_send(r);
		return;
	}
	if (up->state == US_CONNECTING) {
		rlog_info(r, "connect to %s failed: %s", up->be->name,
			  (what & BEV_EVENT_TIMEOUT) ? "timed out"
						     : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		backend_record_failure(up->be, clock_now_ms(), r->c->p->cfg.eject_base_ms,
				       r->c->p->cfg.eject_max_ms);
		retry_or_fail(r, (what & BEV_EVENT_TIMEOUT) != 0);
		return;
	}
	if (r->resp_head_done) {
		if (r->resp_framing == FRAME_CLOSE && (what & BEV_EVENT_EOF) &&
		    !(what & BEV_EVENT_ERROR)) {
			evbuffer_add_buffer(r->sink->body(r), bufferevent_get_input(bev));
			r->resp_reusable = false;
			r->keep_alive = false;
			UP_OPS(r)->request_finish(r);
			return;
		}
		rlog_info(r, "%s cut the response short", up->be->name);
		upstream_response_fail(r, 502, "backend_failed", "backend cut the response short");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		upstream_response_fail(r, 504, "backend_timeout", "the backend did not answer in time");
		return;
	}
	if (!r->resp_started && r->body_moved == 0 && r->idempotent) {
		/* Closed or reset with no answer. The app may have read the
		 * head, acted on it and died, so only a request that is safe
		 * to run twice (and whose body, if any, is still ours to
		 * send) is sent again. The others get a 502 rather than a
		 * silent second POST: telling "never reached the app" from
		 * "reached it" would cost a probe of every connection. */
		if (up->reused && !r->fresh_retry_done) {
			/* Most often the app had retired a pooled connection
			 * before our head arrived: one fresh connection to
			 * the same instance, not held against it. */
			rlog_debug(r, "pooled connection to %s was closed; retrying on a fresh one",
				   up->be->name);
			r->fresh_retry_done = true;
		} else if (!up->reused) {
			/* A fresh connection: the instance is dying (killed,
			 * crashed, its port closing) or broken. Another
			 * instance gets the request, within the same retries
			 * and retry budget, and this one is ejected. */
			rlog_info(r, "%s %s the connection without answering; trying another instance",
				  up->be->name, (what & BEV_EVENT_ERROR) ? "reset" : "closed");
			backend_record_failure(up->be, clock_now_ms(), r->c->p->cfg.eject_base_ms,
					       r->c->p->cfg.eject_max_ms);
		}
		retry_or_fail(r, false);
		return;
	}
	if (!up->reused && !r->resp_started)
		backend_record_failure(up->be, clock_now_ms(), r->c->p->cfg.eject_base_ms,
				       r->c->p->cfg.eject_max_ms);
	upstream_response_fail(r, 502, "backend_failed", "the backend closed the connection");
}

/* ---- picking and connecting ------------------------------------------- */

static void detach_backend(struct request *r)
{
	if (r->be) {
		r->be->outstanding--;
		backend_unref(r->be);
		r->be = NULL;
	}
}

static struct upstream *upstream_connect(struct proxy *p, struct backend *be, unsigned timeout_ms)
{
	struct upstream *up = calloc(1, sizeof(*up));

	if (up == NULL)
		return NULL;
	up->magic = UPSTREAM_MAGIC;
	up->p = p;
	up->id = ++p->next_id;
	up->bev = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (up->bev == NULL) {
		free(up);
		return NULL;
	}
	up->be = backend_ref(be);
	up->state = US_CONNECTING;
	bufferevent_setcb(up->bev, up_read_cb, up_write_cb, up_event_cb, up);
	bufferevent_setwatermark(up->bev, EV_WRITE, p->cfg.buffer_high_bytes / 2, 0);
	up->io.base = p->base;
	up->io.bev = up->bev;   /* the connect timeout is a write timeout */
	set_timeouts(up, 0, timeout_ms);
	if (!backend_addr(be) ||
	    bufferevent_socket_connect(up->bev, (struct sockaddr *)&be->addr, (int)be->addrlen) != 0 ||
	    !conn_io_open(&up->io, p->base, &p->flushq, up->bev, up_read_cb, up_event_cb, up, false)) {
		int err = errno;   /* the caller tells EMFILE from a refusal */

		conn_io_close(&up->io);
		bufferevent_free(up->bev);
		backend_unref(be);
		free(up);
		errno = err;
		return NULL;
	}
	proxy_mem_fd_seen(p, up->io.fd);
	p->pool_count.opened++;
	return up;
}

static struct upstream *pool_take(struct backend *be)
{
	struct upstream *up = TAILQ_FIRST(&be->idle);

	if (up == NULL)
		return NULL;
	pool_remove(up);
	up->p->pool_count.reused++;
	up->reused = true;
	up_set_state(up, US_ACTIVE);
	return up;
}

/* Sends the request to `be`, on a pooled connection unless `fresh`. */
static bool attempt_on(struct request *r, struct backend *be, bool fresh)
{
	struct proxy *p = r->c->p;
	const struct route_app_config *ac = &r->as->app->config;
	struct upstream *up;

	r->be = backend_ref(be);
	be->outstanding++;
	r->attempts++;
	if (r->first_attempt_ms == 0)
		r->first_attempt_ms = clock_now_ms();
	if (ac->backend_h2c) {
		switch (upstream_h2c_start(r, be)) {
		case H2C_STARTED:
			return true;
		case H2C_NOMEM:
			detach_backend(r);
			UP_OPS(r)->request_fail(r, 503, "overloaded", "the router is out of memory");
			return true;
		default:
			detach_backend(r);
			return false;
		}
	}
	up = fresh ? NULL : pool_take(be);
	if (up != NULL) {
		r->up = up;
		up->req = r;
		rlog_debug(r, "reusing u%llu to %s", (unsigned long long)up->id, be->name);
		request_send(r);
		return true;
	}
	up = upstream_connect(p, be, app_or(ac->connect_timeout_ms, p->cfg.connect_timeout_ms));
	if (up == NULL && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
		/* Our own shortage, not the instance's fault: no ejection,
		 * and no point trying the others. */
		rlog_warn(r, "cannot open a connection to %s: %s", be->name, strerror(errno));
		detach_backend(r);
		UP_OPS(r)->request_fail(r, 503, "overloaded", "the router is out of connections");
		return true;
	}
	if (up == NULL) {
		rlog_info(r, "cannot connect to %s", be->name);
		backend_record_failure(be, clock_now_ms(), p->cfg.eject_base_ms, p->cfg.eject_max_ms);
		detach_backend(r);
		return false;
	}
	r->up = up;
	up->req = r;
	UP_OPS(r)->request_set_state(r, RQ_CONNECTING);
	return true;
}

/* A sticky cookie's instance is used while it is healthy; otherwise the
 * policy picks and the response moves the cookie to the new instance. */
static bool sticky_usable(const struct backend *b, const struct route_app_config *ac,
			  uint64_t now)
{
	return backend_routable(b) && !backend_health_down(b) && !backend_ejected(b, now) &&
	       (ac->max_connections == 0 || b->outstanding < ac->max_connections);
}

void upstream_attempt(struct request *r)
{
	struct proxy *p = r->c->p;
	const struct route_app_config *ac = &r->as->app->config;
	unsigned retries = ac->retries >= 0 ? (unsigned)ac->retries : p->cfg.retries;

	for (;;) {
		struct balancer_args a;
		struct backend *be;
		uint64_t now = clock_now_ms();

		if (r->attempts > 0 &&
		    (r->attempts > retries || now - r->first_attempt_ms >= p->cfg.retry_budget_ms)) {
			UP_OPS(r)->request_fail(r, 502, "backend_failed", "no instance could be reached");
			return;
		}
		if (r->attempts == 0 && r->sticky && sticky_usable(r->sticky, ac, now)) {
			be = r->sticky;
			r->tried[r->n_tried++] = be;
			if (attempt_on(r, be, false))
				return;
			continue;
		}
		memset(&a, 0, sizeof(a));
		a.policy = ac->balance;
		a.bes = r->as->bes;
		a.n = r->as->n;
		a.tried = r->tried;
		a.n_tried = r->n_tried;
		a.has_key = r->has_key;
		a.key_hash = r->key_hash;
		a.now_ms = now;
		a.rng = &p->rng;
		a.max_outstanding = ac->max_connections;
		be = balancer_pick(&a);
		if (be == NULL) {
			a.max_outstanding = 0;
			if (r->attempts == 0 && ac->max_connections && balancer_pick(&a) != NULL)
				UP_OPS(r)->request_fail(r, 503, "at_capacity",
					     "every instance is at the app's max_connections");
			else if (r->attempts == 0)
				UP_OPS(r)->request_fail(r, 503, "no_instances", "the app has no live instance");
			else
				UP_OPS(r)->request_fail(r, 502, "backend_failed", "no instance could be reached");
			return;
		}
		if (r->n_tried < MAX_TRIED)
			r->tried[r->n_tried++] = be;
		if (attempt_on(r, be, false))
			return;
	}
}

void upstream_next_attempt(struct request *r)
{
	detach_backend(r);
	upstream_attempt(r);
}

/* The current attempt failed with no response byte: before anything
 * reached the app, or (a request safe to send twice, no body byte sent)
 * with its connection closed or reset. */
static void retry_or_fail(struct request *r, bool timeout)
{
	struct backend *be = r->be;
	struct upstream *up = r->up;
	bool same = r->fresh_retry_done && up && up->reused;

	r->up = NULL;
	if (up)
		upstream_close(up);
	if (r->body_moved > 0) {
		detach_backend(r);
		UP_OPS(r)->request_fail(r, 502, "backend_failed", "the backend failed during the request body");
		return;
	}
	if (same && be) {
		backend_ref(be);
		detach_backend(r);
		r->attempts--;   /* the fresh connection is the same attempt */
		if (attempt_on(r, be, true)) {
			backend_unref(be);
			return;
		}
		backend_unref(be);
	} else {
		detach_backend(r);
	}
	(void)timeout;
	upstream_attempt(r);
}

void upstream_release(struct request *r, bool reusable)
{
	struct upstream *up = r->up;
	struct proxy *p = r->c->p;

	upstream_h2c_release(r);
	if (up != NULL) {
		struct backend *be = up->be;

		r->up = NULL;
		up->req = NULL;
		bool full = be->n_idle >= p->cfg.upstream_pool_max_idle;

		if (reusable && r->req_body_done && up->state == US_ACTIVE &&
		    backend_routable(be) && !backend_health_down(be) && !full &&
		    evbuffer_get_length(bufferevent_get_input(up->bev)) == 0 &&
		    evbuffer_get_length(bufferevent_get_output(up->bev)) == 0) {
			const struct route_app_config *ac = &r->as->app->config;
			unsigned idle = p->cfg.upstream_idle_timeout_ms;

			if (ac->idle_timeout_ms && ac->idle_timeout_ms < idle)
				idle = ac->idle_timeout_ms;
			up_set_state(up, US_IDLE);
			up->reused = false;
			pool_push(up);
			/* The write timeout stays: with nothing to write it
			 * arms nothing, and the next request needs it again. */
			conn_read_timeout(&up->io, idle);
			/* Reading stays on: an idle close is noticed at once. */
			conn_read_on(&up->io);
		} else {
			if (full && reusable)
				p->pool_count.full_closed++;
			upstream_close(up);
		}
	}
	detach_backend(r);
}

void upstream_abandon(struct request *r)
{
	upstream_release(r, false);
}
