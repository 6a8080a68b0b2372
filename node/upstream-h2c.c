/*
 * Requests to apps whose instances speak HTTP/2 cleartext (AppConfig
 * backend_protocol h2c, gRPC servers mostly): the glue between the one
 * request path and the h2c client of upstream-h2.h. Routing, balancing,
 * retries, ejection, the forwarding headers and the access log stay
 * where they are (upstream.c picks the instance and comes here instead
 * of opening an HTTP/1.1 connection); this file turns the request into a
 * stream of the instance's pool and its answer into calls of the
 * request's sink.
 *
 *   upstream_attempt --> upstream_h2c_start --uh2_submit--> pool (be->h2c)
 *         ^                                                    |
 *         +--- retryable error (connect, refused stream) ------+
 *   sink <-- head / body (re-chunked for HTTP/1.1) / trailers / end
 *
 * The request head is read back from the HTTP/1.1 head headers.c wrote
 * (headers_request_split), so the forwarding rules exist once. Request
 * bodies: an HTTP/1.1 client's is de-framed here (its Content-Length
 * or chunks), an HTTP/2 client's DATA goes as it is. Backpressure both
 * ways: the client's input stops while the stream holds what it may
 * (ops->body_room resumes it), and the backend's window opens only as
 * the client's sink takes the response (uh2_stream_consumed).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "node/stream.h"
#include "node/upstream-h2c.h"

#define H2C_REQ_MAGIC 0x7a6b6871u   /* "zkhq" */

/* An instance's pool, owned by this layer (struct backend's h2c). */
struct be_h2c {
	struct proxy *p;
	struct uh2_pool *pool;
	uint64_t addr_gen;         /* the backend address it connects to */
};

/* A request's side of its stream; lives from the first attempt to the
 * request's release, across retries. */
struct h2c_req {
	uint32_t magic;
	struct request *r;
	struct uh2_stream *s;      /* NULL between attempts and after the end */
	struct evbuffer *body;     /* an HTTP/1.1 client's body, de-framed;
				    * the bytes to send again after a refusal */
	struct evbuffer *replay;   /* the body bytes the stream took so far */
	bool replay_lost;          /* more than buffer_high_bytes: not kept */
	struct hbuf fields;        /* response fields; r->rhead points here */
	struct event *timer;       /* the response timeout */
	size_t held;               /* response bytes not given back to the window */
	size_t ntr;                /* trailer fields in r->rhead (after the head) */
	bool rechunk;              /* HTTP/1.1 client without a length: chunks */
	bool sent;                 /* the head left: the body may follow */
	bool expect;               /* an HTTP/1.1 client waits for 100 Continue */
	bool in_submit;            /* inside uh2_submit: errors noted, not acted on */
	bool submit_failed;
	enum uh2_error submit_err;
};

static unsigned app_or(unsigned app_value, unsigned dflt)
{
	return app_value ? app_value : dflt;
}

/* ---- pools ------------------------------------------------------------- */

static void stats_add(struct uh2_pool_stats *sum, const struct uh2_pool_stats *s, bool live)
{
	if (live) {
		sum->conns += s->conns;
		sum->conns_ready += s->conns_ready;
		sum->streams += s->streams;
		sum->pending += s->pending;
	}
	sum->conns_opened += s->conns_opened;
	sum->conns_idle_closed += s->conns_idle_closed;
	sum->conns_failed += s->conns_failed;
	sum->streams_done += s->streams_done;
	sum->streams_failed += s->streams_failed;
}

void upstream_h2c_pool_close(struct backend *b)
{
	struct be_h2c *bh = b->h2c;
	struct uh2_pool_stats st;

	if (bh == NULL)
		return;
	b->h2c = NULL;
	/* Its totals stay in /metrics; its streams finish on their own. */
	uh2_pool_stats(bh->pool, &st);
	stats_add(&bh->p->h2c_gone, &st, false);
	if (bh->p->stopping)
		uh2_pool_free(bh->pool);   /* no loop turn is coming to free it */
	else
		uh2_pool_retire(bh->pool);
	free(bh);
}

/* The instance's pool for its current address, made at first use; its
 * connects bounded by the app's connect timeout (else the router's). */
static struct uh2_pool *pool_of(struct proxy *p, struct backend *be, unsigned connect_ms)
{
	struct be_h2c *bh = be->h2c;

	if (!backend_addr(be))
		return NULL;
	if (bh != NULL && bh->addr_gen != be->addr_gen)
		upstream_h2c_pool_close(be);   /* it moved: a new pool */
	if (be->h2c != NULL) {
		uh2_pool_set_connect_timeout(be->h2c->pool, connect_ms);
		return be->h2c->pool;
	}
	if ((bh = calloc(1, sizeof(*bh))) == NULL)
		return NULL;
	bh->p = p;
	bh->addr_gen = be->addr_gen;
	bh->pool = uh2_pool_new(p->base, (const struct sockaddr *)&be->addr, be->addrlen, be->name,
				&p->h2c_lim);
	if (bh->pool == NULL) {
		free(bh);
		return NULL;
	}
	uh2_pool_set_connect_timeout(bh->pool, connect_ms);
	be->h2c = bh;
	return bh->pool;
}

void proxy_h2c_stats(const struct proxy *p, struct uh2_pool_stats *out)
{
	const struct backend_map *m = &p->map;

	*out = p->h2c_gone;
	out->conns = out->conns_ready = out->streams = out->pending = 0;
	for (size_t i = 0; i < m->cap; i++) {
		const struct app_state *s = m->slots[i];

		if (s == NULL)
			continue;
		for (size_t k = 0; k < s->n; k++) {
			struct uh2_pool_stats st;

			if (s->bes[k]->h2c == NULL)
				continue;
			uh2_pool_stats(s->bes[k]->h2c->pool, &st);
			stats_add(out, &st, true);
		}
	}
}

/* ---- the response -------------------------------------------------------- */

static void timeout_arm(struct h2c_req *q)
{
	struct request *r = q->r;
	unsigned ms = app_or(r->as->app->config.response_timeout_ms, r->c->p->cfg.response_timeout_ms);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	/* As over HTTP/1.1: from the end of the request body, restarted by
	 * every response event; and from the start while the head waits for
	 * a connection or a place on one (then the body waits too). While
	 * the client still uploads, its own read timeout bounds it. */
	if (q->s == NULL || ms == 0)
		return;
	if (!r->req_body_done && q->sent)
		event_del(q->timer);
	else if (event_add(q->timer, &tv) != 0)
		rlog_warn(r, "cannot arm the response timeout");
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct h2c_req *q = arg;

	(void)fd;
	(void)what;
	upstream_response_fail(q->r, 504, "backend_timeout", "the backend did not answer in time");
}

/* Copies a block of fields into q->fields and points r->rhead's fields
 * at them. False when there are too many or memory runs out. */
static bool take_fields(struct h2c_req *q, const struct uh2_header *h, size_t n)
{
	struct http_head *rh = &q->r->rhead;
	size_t off = 0;

	if (n > rh->max_hdrs)
		return false;
	q->fields.len = 0;
	for (size_t i = 0; i < n; i++)
		if (!hbuf_add(&q->fields, h[i].name, h[i].namelen) ||
		    !hbuf_add(&q->fields, h[i].value, h[i].valuelen))
			return false;
	for (size_t i = 0; i < n; i++) {
		struct http_hdr *hd = &rh->hdrs[i];

		hd->name = q->fields.data + off;
		hd->nlen = (uint32_t)h[i].namelen;
		off += h[i].namelen;
		hd->value = q->fields.data + off;
		hd->vlen = (uint32_t)h[i].valuelen;
		off += h[i].valuelen;
		hd->kind = http_classify_name(hd->name, hd->nlen);
	}
	rh->n_hdrs = (unsigned)n;
	rh->head_len = q->fields.len;
	return true;
}

/* A content-length nghttp2 let through (it checks it against the DATA). */
static bool parse_length(const struct http_hdr *hd, uint64_t *out)
{
	uint64_t v = 0;

	if (hd->vlen == 0 || hd->vlen > 19)
		return false;
	for (uint32_t i = 0; i < hd->vlen; i++) {
		if (hd->value[i] < '0' || hd->value[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(hd->value[i] - '0');
	}
	*out = v;
	return true;
}

static void on_head(void *arg, int status, const struct uh2_header *h, size_t n)
{
	struct h2c_req *q = arg;
	struct request *r = q->r;
	struct http_head *rh = &r->rhead;
	struct fwd_response f;
	bool has_body, has_len = false, ends = uh2_stream_head_ends(q->s);
	uint64_t len = 0;

	r->resp_started = true;
	if (!take_fields(q, h, n)) {
		upstream_response_fail(r, 502, "backend_failed", "response head too large");
		return;
	}
	rh->status = status;
	rh->reason = http_status_reason(status);
	rh->reason_len = strlen(rh->reason);
	rh->major = 1;
	rh->minor = 1;
	for (unsigned i = 0; i < rh->n_hdrs; i++)
		if (rh->hdrs[i].kind == HDR_CONTENT_LENGTH) {
			if (has_len || !parse_length(&rh->hdrs[i], &len)) {
				upstream_response_fail(r, 502, "backend_failed",
						       "invalid response from the backend");
				return;
			}
			has_len = true;
		}
	memset(&f, 0, sizeof(f));
	f.client_http10 = r->http10;
	f.request_id = r->rid;
	f.request_id_len = r->rid_len;
	if (r->as->app->config.sticky_cookie && r->be && r->sticky != r->be) {
		f.sticky_cookie = r->as->app->config.sticky_cookie;
		f.sticky_value = r->be->id;
	}
	/* A head that ends the stream (gRPC's trailers-only answer) has no
	 * body: it goes as a head alone, its fields and all. */
	has_body = !r->head_request && status != 204 && status != 304 && !ends;
	if (!has_body) {
		r->resp_framing = FRAME_NONE;
		if (status != 204 && (has_len || ends)) {
			f.framing = FRAME_LENGTH;
			f.content_length = has_len ? len : 0;
		}
	} else if (has_len) {
		r->resp_framing = FRAME_LENGTH;
		r->resp_remaining = len;
		f.framing = FRAME_LENGTH;
		f.content_length = len;
	} else if (!r->sink->framed) {
		r->resp_framing = FRAME_CHUNKED;   /* HTTP/2: DATA frames, trailers kept */
	} else if (!r->http10) {
		r->resp_framing = FRAME_CHUNKED;
		f.framing = FRAME_CHUNKED;
		q->rechunk = true;
	} else {
		r->resp_framing = FRAME_CLOSE;
		f.framing = FRAME_CLOSE;
	}
	if (f.framing == FRAME_CLOSE || !r->req_body_done)
		r->keep_alive = false;
	f.keep_alive = r->keep_alive && !r->c->p->draining;
	if (!r->sink->head(r, &f)) {
		upstream_response_fail(r, 502, "backend_failed", "out of memory");
		return;
	}
	r->status = status;
	r->resp_head_done = true;
	backend_record_success(r->be);
	UP_OPS(r)->request_set_state(r, RQ_RESPONDING);
	timeout_arm(q);
	r->sink->push(r->c);
}

static void on_body(void *arg, const uint8_t *data, size_t len)
{
	struct h2c_req *q = arg;
	struct request *r = q->r;
	struct evbuffer *out;
	bool ok = true;

	if (!r->resp_head_done)
		return;
	if (r->resp_framing == FRAME_NONE) {
		uh2_stream_consumed(q->s, len);   /* a HEAD's body, if any: dropped */
		return;
	}
	out = r->sink->body(r);
	if (q->rechunk) {
		char size[24];
		int sl = snprintf(size, sizeof(size), "%zx\r\n", len);

		ok = evbuffer_add(out, size, (size_t)sl) == 0 && evbuffer_add(out, data, len) == 0 &&
		     evbuffer_add(out, "\r\n", 2) == 0;
	} else {
		ok = evbuffer_add(out, data, len) == 0;
	}
	if (!ok) {
		upstream_response_fail(r, 502, "backend_failed", "out of memory");
		return;
	}
	r->bytes_out += len;
	q->held += len;
	if (r->sink->full(r)) {
		/* The window stays as it is until the client drains. */
		r->resp_paused = true;
	} else {
		uh2_stream_consumed(q->s, q->held);
		q->held = 0;
	}
	timeout_arm(q);
	r->sink->push(r->c);
}

/* Trailers arrive before the end: kept in q->fields (the head went out
 * already) for the sink at the end. */
static void on_trailers(void *arg, const struct uh2_header *h, size_t n)
{
	struct h2c_req *q = arg;

	q->ntr = take_fields(q, h, n) ? n : 0;   /* too many: dropped, the body still ends */
}

static void on_end(void *arg)
{
	struct h2c_req *q = arg;
	struct request *r = q->r;

	q->s = NULL;
	event_del(q->timer);
	if (!r->resp_head_done) {
		upstream_response_fail(r, 502, "backend_failed", "invalid response from the backend");
		return;
	}
	/* Trailers go where the client can take them: the last chunk over
	 * HTTP/1.1 (written with none too), a HEADERS frame over HTTP/2. */
	if (r->resp_framing != FRAME_NONE && !r->sink->trailers(r, r->rhead.hdrs, q->ntr)) {
		upstream_response_fail(r, 502, "backend_failed", "out of memory");
		return;
	}
	if (!r->req_body_done)
		r->keep_alive = false;   /* the rest of the body is not wanted */
	r->sink->push(r->c);
	UP_OPS(r)->request_finish(r);
}

static void on_error(void *arg, enum uh2_error e, uint32_t code)
{
	struct h2c_req *q = arg;
	struct request *r = q->r;
	struct backend *be = r->be;
	struct proxy *p = r->c->p;

	q->s = NULL;
	if (q->in_submit) {
		q->submit_failed = true;
		q->submit_err = e;
		return;
	}
	event_del(q->timer);
	if (!r->resp_started && uh2_error_retryable(e) && (r->body_moved == 0 || !q->replay_lost)) {
		/* RFC 9113 8.7: the instance did not act on it, whatever the
		 * method: another one gets it, within the same retries, with
		 * the body bytes it took sent again first. */
		evbuffer_prepend_buffer(q->body, q->replay);
		rlog_info(r, "h2c %s: %s; trying another instance%s", be->name, uh2_error_name(e),
			  evbuffer_get_length(q->body) > 0 ? " with the body again" : "");
		if (e == UH2_ERR_CONNECT)
			backend_record_failure(be, clock_now_ms(), p->cfg.eject_base_ms, p->cfg.eject_max_ms);
		upstream_next_attempt(r);
		return;
	}
	rlog_info(r, "h2c %s: %s (code %u)", be->name, uh2_error_name(e), (unsigned)code);
	if (e == UH2_ERR_CONNECT)
		backend_record_failure(be, clock_now_ms(), p->cfg.eject_base_ms, p->cfg.eject_max_ms);
	upstream_response_fail(r, 502, "backend_failed",
			       r->resp_head_done ? "backend cut the response short"
						 : "the backend failed the request");
}

static void on_body_room(void *arg)
{
	struct h2c_req *q = arg;

	upstream_h2c_pump(q->r);
}

/* The body waits for the head to leave: until then a failure is one the
 * request may be sent elsewhere for, and that needs its body whole. */
static void on_sent(void *arg)
{
	struct h2c_req *q = arg;

	struct request *r = q->r;

	q->sent = true;
	timeout_arm(q);
	/* The router answers an HTTP/1.1 client's Expect: 100-continue
	 * itself (the h2c client passes no interim answer on): the body has
	 * somewhere to go now. */
	if (q->expect && r->sink->interim && !r->http10 && !r->resp_started) {
		struct fwd_response f;

		memset(&f, 0, sizeof(f));
		f.keep_alive = true;
		f.framing = FRAME_NONE;
		r->rhead.status = 100;
		r->rhead.reason = "Continue";
		r->rhead.reason_len = 8;
		r->rhead.n_hdrs = 0;
		if (r->sink->head(r, &f))
			r->sink->push(r->c);
	}
	q->expect = false;
	if (!r->req_body_done || evbuffer_get_length(q->body) > 0)
		upstream_h2c_pump(r);
}

static const struct uh2_stream_ops h2c_ops = {
	.head = on_head,
	.body = on_body,
	.trailers = on_trailers,
	.end = on_end,
	.error = on_error,
	.body_room = on_body_room,
	.sent = on_sent,
};

void upstream_h2c_resume(struct request *r)
{
	struct h2c_req *q = r->h2c;

	if (q == NULL || !r->resp_paused || r->sink->full(r))
		return;
	r->resp_paused = false;
	if (q->s != NULL && q->held > 0)
		uh2_stream_consumed(q->s, q->held);
	q->held = 0;
}

/* ---- the request ----------------------------------------------------------- */

/* The fields of the head for uh2_request, from headers.c's head. */
struct split {
	struct uh2_header *h;
	size_t n, cap;
	const char *host;
	size_t host_len;
	bool expect;               /* Expect: 100-continue, answered by us */
};

static void split_field(const char *name, size_t nlen, const char *value, size_t vlen, void *arg)
{
	struct split *sp = arg;

	enum http_hdr_kind kind = http_classify_name(name, nlen);

	if (kind == HDR_HOST) {
		sp->host = value;
		sp->host_len = vlen;
		return;
	}
	if (kind == HDR_EXPECT && vlen == 12 && strncasecmp(value, "100-continue", 12) == 0) {
		sp->expect = true;
		return;
	}
	if (sp->n < sp->cap)
		sp->h[sp->n++] = (struct uh2_header){ name, nlen, value, vlen };
}

/* Submits the request as a stream of `pool`; false when it could not be
 * made (memory) or failed at once (then *err says why). */
static bool submit(struct request *r, struct uh2_pool *pool, enum uh2_error *err)
{
	struct h2c_req *q = r->h2c;
	const char *method, *target;
	size_t mlen, tlen, lines = 0;
	struct split sp;
	struct uh2_request req;
	char *strs = NULL;
	bool ok = false;

	*err = UH2_ERR_INTERNAL;
	for (size_t i = 0; i + 1 < r->head_out.len; i++)
		lines += r->head_out.data[i] == '\r' && r->head_out.data[i + 1] == '\n';
	memset(&sp, 0, sizeof(sp));
	sp.cap = lines;
	if ((sp.h = calloc(lines ? lines : 1, sizeof(*sp.h))) == NULL ||
	    !headers_request_split(&r->head_out, &method, &mlen, &target, &tlen, split_field, &sp) ||
	    sp.host == NULL)
		goto done;
	/* uh2_request takes strings; uh2_submit copies them. */
	if ((strs = malloc(mlen + tlen + sp.host_len + 3)) == NULL)
		goto done;
	memcpy(strs, method, mlen);
	strs[mlen] = '\0';
	memcpy(strs + mlen + 1, target, tlen);
	strs[mlen + 1 + tlen] = '\0';
	memcpy(strs + mlen + tlen + 2, sp.host, sp.host_len);
	strs[mlen + tlen + 2 + sp.host_len] = '\0';
	memset(&req, 0, sizeof(req));
	req.method = strs;
	req.path = strs + mlen + 1;
	req.authority = strs + mlen + tlen + 2;
	req.scheme = r->c->tls ? "https" : "http";
	req.headers = sp.h;
	req.n_headers = sp.n;
	req.has_body = !r->req_body_done || evbuffer_get_length(q->body) > 0;
	q->expect = sp.expect && !r->req_body_done && r->h2s == NULL;
	q->in_submit = true;
	q->submit_failed = false;
	q->sent = false;
	q->s = uh2_submit(pool, &req, &h2c_ops, q);
	q->in_submit = false;
	if (q->submit_failed) {
		q->s = NULL;   /* failed and gone inside the call */
		*err = q->submit_err;
	} else {
		ok = q->s != NULL;
	}
done:
	free(strs);
	free(sp.h);
	return ok;
}

enum h2c_start upstream_h2c_start(struct request *r, struct backend *be)
{
	struct proxy *p = r->c->p;
	struct h2c_req *q = r->h2c;
	struct uh2_pool *pool;
	enum uh2_error err;

	if (q == NULL) {
		if ((q = calloc(1, sizeof(*q))) == NULL)
			goto nomem;
		q->magic = H2C_REQ_MAGIC;
		q->r = r;
		q->body = evbuffer_new();
		q->replay = evbuffer_new();
		q->timer = evtimer_new(p->base, timeout_cb, q);
		r->h2c = q;
		if (q->body == NULL || q->replay == NULL || q->timer == NULL)
			goto nomem;
	}
	if (r->upstream_start_us == 0)
		r->upstream_start_us = clock_now_us();
	if ((pool = pool_of(p, be, app_or(r->as->app->config.connect_timeout_ms,
					  p->cfg.connect_timeout_ms))) == NULL) {
		if (!backend_addr(be))
			return H2C_NEXT;   /* not resolved (any more): another one */
		goto nomem;
	}
	if (!submit(r, pool, &err)) {
		if (err == UH2_ERR_INTERNAL)
			goto nomem;
		rlog_info(r, "h2c %s: %s", be->name, uh2_error_name(err));
		if (err == UH2_ERR_CONNECT)
			backend_record_failure(be, clock_now_ms(), p->cfg.eject_base_ms, p->cfg.eject_max_ms);
		return H2C_NEXT;
	}
	rlog_debug(r, "h2c stream to %s", be->name);
	UP_OPS(r)->request_set_state(r, r->req_body_done ? RQ_WAITING : RQ_SENDING);
	timeout_arm(q);
	upstream_h2c_pump(r);
	return H2C_STARTED;
nomem:
	rlog_warn(r, "h2c %s: out of memory", be->name);
	return H2C_NOMEM;
}

/*
 * Hands the stream what it takes of src; a copy of it is kept in
 * q->replay while the body so far fits in buffer_high_bytes, so that a
 * stream refused after taking it (RFC 9113 8.7) can go to another
 * instance whole. Returns the bytes taken; q->s may be gone after.
 */
static size_t send_kept(struct request *r, struct h2c_req *q, struct evbuffer *src, bool end)
{
	size_t cap = r->c->p->cfg.buffer_high_bytes, kept = evbuffer_get_length(q->replay);
	size_t peek = 0, n;
	unsigned char *copy = NULL;

	if (!q->replay_lost) {
		peek = evbuffer_get_length(src);
		if (peek > cap - (kept < cap ? kept : cap))
			peek = cap - (kept < cap ? kept : cap);
		if (peek > 0 && ((copy = malloc(peek)) == NULL ||
				 evbuffer_copyout(src, copy, peek) != (ev_ssize_t)peek))
			peek = 0;
	}
	n = uh2_stream_send_body(q->s, src, end);
	if (!q->replay_lost && n > 0) {
		if (n > peek || evbuffer_add(q->replay, copy, n) != 0) {
			q->replay_lost = true;   /* past the bound (or no memory) */
			evbuffer_drain(q->replay, evbuffer_get_length(q->replay));
		}
	}
	free(copy);
	return n;
}

void upstream_h2c_pump(struct request *r)
{
	struct h2c_req *q = r->h2c;
	struct client *c = r->c;
	struct evbuffer *in;
	const struct route_app_config *ac = &r->as->app->config;
	bool was_done = r->req_body_done;

	if (q == NULL || q->s == NULL || !q->sent)
		return;
	in = request_body_in(r);
	if (r->h2s != NULL) {
		/* HTTP/2: DATA is the body as it is; END_STREAM ends it. What
		 * a refused stream had taken goes first. */
		size_t n;

		if (evbuffer_get_length(q->body) > 0) {
			send_kept(r, q, q->body, r->req_body_eof && evbuffer_get_length(in) == 0);
			if (q->s == NULL || evbuffer_get_length(q->body) > 0)
				return;   /* body_room brings us back */
		}
		n = send_kept(r, q, in, r->req_body_eof);
		if (q->s == NULL)
			return;
		r->body_moved += n;
		r->bytes_in += n;
		if (r->req_framing == FRAME_LENGTH)
			r->req_remaining -= n < r->req_remaining ? n : r->req_remaining;
		request_body_taken(r, n);
		if (r->req_body_eof && evbuffer_get_length(in) == 0)
			r->req_body_done = true;
	} else {
		/* An HTTP/1.1 client's body, de-framed into q->body, at most
		 * buffer_high_bytes ahead of the stream. */
		if (!upstream_body_move(r, in, q->body, false))
			return;
		send_kept(r, q, q->body, r->req_body_done);
		if (q->s == NULL)
			return;
		if (!r->req_body_done && evbuffer_get_length(q->body) >= c->p->cfg.buffer_high_bytes) {
			/* The stream holds what it may: body_room resumes us. */
			if (!c->read_paused) {
				c->read_paused = true;
				conn_read_off(&c->io);
			}
		} else if (c->read_paused && !r->req_body_done) {
			c->read_paused = false;
			conn_read_on(&c->io);
		}
		if (!r->req_body_done && c->io.eof && evbuffer_get_length(in) == 0) {
			UP_OPS(r)->request_fail(r, 400, "bad_request",
						"the client closed before the end of the body");
			return;
		}
	}
	if (ac->max_body_bytes && r->body_moved > ac->max_body_bytes) {
		UP_OPS(r)->request_fail(r, 413, "body_too_large", "request body larger than the app allows");
		return;
	}
	if (r->req_body_done && !was_done) {
		if (r->state == RQ_SENDING)
			UP_OPS(r)->request_set_state(r, RQ_WAITING);
		timeout_arm(q);
	}
}

bool upstream_h2c_sending(const struct request *r)
{
	return r->h2c != NULL && r->h2c->s != NULL && r->h2c->sent;
}

void upstream_h2c_release(struct request *r)
{
	struct h2c_req *q = r->h2c;

	if (q == NULL)
		return;
	r->h2c = NULL;
	if (q->s != NULL)
		uh2_stream_cancel(q->s);
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->body != NULL)
		evbuffer_free(q->body);
	if (q->replay != NULL)
		evbuffer_free(q->replay);
	hbuf_free(&q->fields);
	q->magic = 0;
	free(q);
}
