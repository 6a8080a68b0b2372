/*
 * Requests, from the client's side: reading and validating a head from
 * the client's input, routing it by Host to an app of the current table,
 * answering the errors the router owns, and ending each request (access
 * log, then keep-alive or close). Request objects come from a free list
 * on the proxy, so steady traffic allocates nothing per request.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "node/accesslog.h"
#include "node/balancer.h"
#include "node/h2.h"
#include "node/stream.h"

static const char *const request_state_names[] = {
	[RQ_ROUTING] = "routing", [RQ_CONNECTING] = "connecting", [RQ_SENDING] = "sending",
	[RQ_WAITING] = "waiting", [RQ_RESPONDING] = "responding", [RQ_DONE] = "done",
};


void request_set_state(struct request *r, enum request_state s)
{
	if (r->state == s)
		return;
	rlog_debug(r, "request %s -> %s", request_state_names[r->state], request_state_names[s]);
	if (s == RQ_CONNECTING)
		accesslog_obs_connecting(&r->obs, clock_now_us());
	else if (r->state == RQ_CONNECTING && (s == RQ_SENDING || s == RQ_WAITING))
		accesslog_obs_connected(&r->obs, clock_now_us());
	r->state = s;
}

/* ---- requests ---------------------------------------------------------- */

struct evbuffer *request_body_in(struct request *r)
{
	return r->h2s != NULL ? h2_body_in(r) : bufferevent_get_input(r->c->bev);
}

void request_body_taken(struct request *r, size_t n)
{
	if (r->h2s != NULL)
		h2_body_taken(r, n);
}

struct request *request_new(struct client *c)
{
	struct proxy *p = c->p;
	struct request *r = p->free_reqs;

	if (r != NULL) {
		p->free_reqs = r->next_free;
		p->n_free_reqs--;
		if (p->n_free_reqs < p->free_reqs_low)
			p->free_reqs_low = p->n_free_reqs;
	} else {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return NULL;
		r->head.hdrs = calloc(p->cfg.max_headers, sizeof(struct http_hdr));
		r->rhead.hdrs = calloc(p->cfg.max_headers, sizeof(struct http_hdr));
		if (r->head.hdrs == NULL || r->rhead.hdrs == NULL) {
			free(r->head.hdrs);
			free(r->rhead.hdrs);
			free(r);
			return NULL;
		}
		r->head.max_hdrs = r->rhead.max_hdrs = p->cfg.max_headers;
	}
	/* Reset everything but the reusable buffers. */
	{
		struct http_hdr *h1 = r->head.hdrs, *h2 = r->rhead.hdrs;
		unsigned m = r->head.max_hdrs;
		struct hbuf ho = r->head_out;
		char *target = r->target;
		size_t cap = r->target_cap;
		struct event *qtimer = r->qtimer;

		memset(r, 0, sizeof(*r));
		r->head.hdrs = h1;
		r->rhead.hdrs = h2;
		r->head.max_hdrs = r->rhead.max_hdrs = m;
		r->head_out = ho;
		r->target = target;
		r->target_cap = cap;
		r->qtimer = qtimer;
		if (r->target)
			r->target[0] = '\0';
	}
	r->head_out.len = 0;
	r->c = c;
	r->sink = &resp_sink_h1;
	r->state = RQ_ROUTING;
	r->n = ++c->n_requests;
	r->start_us = clock_now_us();
	event_base_gettimeofday_cached(p->base, &r->start_tv);
	return r;
}

static void request_destroy(struct request *r)
{
	free(r->head.hdrs);
	free(r->rhead.hdrs);
	hbuf_free(&r->head_out);
	free(r->target);
	if (r->qtimer)
		event_free(r->qtimer);
	free(r);
}

void request_pool_clear(struct proxy *p)
{
	while (p->free_reqs) {
		struct request *r = p->free_reqs;

		p->free_reqs = r->next_free;
		request_destroy(r);
	}
	p->n_free_reqs = 0;
	p->free_reqs_low = 0;
}

void request_pool_trim(struct proxy *p, size_t n)
{
	while (n-- > 0 && p->free_reqs) {
		struct request *r = p->free_reqs;

		p->free_reqs = r->next_free;
		p->n_free_reqs--;
		request_destroy(r);
	}
	if (p->free_reqs_low > p->n_free_reqs)
		p->free_reqs_low = p->n_free_reqs;
}

static void request_put(struct proxy *p, struct request *r)
{
	if (r->as) {
		app_state_unref(r->as);
		r->as = NULL;
	}
	r->c = NULL;
	/* Requests sized for an older max_headers are not kept. */
	if (r->head.max_hdrs != p->cfg.max_headers || p->n_free_reqs >= REQUEST_POOL_MAX) {
		request_destroy(r);
		return;
	}
	r->next_free = p->free_reqs;
	p->free_reqs = r;
	p->n_free_reqs++;
}

static void request_log(struct request *r)
{
	struct client *c = r->c;
	struct access_entry e;
	uint64_t now = clock_now_us();

	if (c->p->log == NULL)
		return;
	memset(&e, 0, sizeof(e));
	e.start = r->start_tv;
	e.client = c->peer;
	e.host = r->host[0] ? r->host : NULL;
	e.method = r->method[0] ? r->method : NULL;
	e.target = r->target && r->target[0] ? r->target : NULL;
	e.status = r->status;
	e.bytes_in = r->bytes_in;
	e.bytes_out = r->bytes_out;
	e.instance = r->be ? r->be->id : (r->n_tried ? r->tried[r->n_tried - 1]->id : NULL);
	e.attempts = r->attempts;
	e.request_id = r->rid[0] ? r->rid : NULL;
	e.total_ms = (double)(now - r->start_us) / 1000.0;
	e.upstream_ms = r->upstream_start_us ? (double)(now - r->upstream_start_us) / 1000.0 : 0;
	e.upstream_used = r->upstream_start_us != 0;
	e.app = r->as ? r->as->app->domain : NULL;
	e.error = r->obs.error;
	e.tls = c->tls;
	if (r->h2s != NULL)
		e.proto = "HTTP/2.0";
	else if (r->method[0])
		e.proto = r->http10 ? "HTTP/1.0" : "HTTP/1.1";
	e.tls_version = r->obs.tls_version;
	e.user_agent = r->obs.ua[0] ? r->obs.ua : NULL;
	e.xff = r->obs.xff[0] ? r->obs.xff : NULL;
	e.connect_ms = r->obs.connected ? (double)r->obs.connect_us / 1000.0 : -1;
	if (r->obs.client_gone) {
		e.upstream_status = r->status;
		e.status = ACCESSLOG_CLIENT_GONE;
	}
	accesslog_write(c->p->log, &e);
}

/*
 * Reading paused on pipelined requests (client_read_cb) resumes once they
 * are down below the high mark. Not before: each request would otherwise
 * let one more read in while taking one head out, and a client that
 * pipelines faster than it is answered would grow its input without bound.
 */
void client_read_pipelined(struct client *c)
{
	if (!c->read_paused ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) >= c->p->cfg.buffer_high_bytes)
		return;
	c->read_paused = false;
	if (!c->out_full)
		conn_read_on(&c->io);
}

void request_finish(struct request *r)
{
	struct client *c = r->c;
	struct proxy *p = c->p;
	bool keep = r->keep_alive && r->req_body_done && !p->draining && c->state == CS_REQUEST;
	struct app_load *freed = appq_leave(r);

	if (c->state != CS_DEAD && r->h2s == NULL)
		conn_flush(&c->io);
	request_set_state(r, RQ_DONE);
	request_log(r);
	upstream_release(r, r->resp_reusable);
	p->n_active--;
	if (r->h2s != NULL)
		h2_request_done(r);   /* the stream ends, or is reset if cut */
	else
		c->req = NULL;
	request_put(p, r);
	if (freed != NULL)
		appq_dispatch(p, freed);   /* other clients' requests only */
	if (c->h2 != NULL) {
		h2_flush(c);
		return;
	}
	if (c->state != CS_REQUEST)
		return;
	if (!keep) {
		client_close_after_flush(c);
		return;
	}
	client_set_state(c, CS_IDLE);
	c->idle_since_ms = clock_now_ms();
	client_mem_idle(c);
	c->head_start_ms = 0;
	client_read_pipelined(c);
	if (!c->processing && (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 || c->io.eof))
		client_process(c);
}

static const char *status_text(int status)
{
	switch (status) {
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* An answer of the router's own: an error (with its X-Zkrouter-Error
 * code) or, with `location`, a redirect. Ends the request. */
bool request_answer_h1(struct request *r, int status, const char *code, const char *location,
		       const char *body, size_t blen)
{
	struct evbuffer *out = bufferevent_get_output(r->c->bev);
	size_t before = evbuffer_get_length(out);
	char retry[40] = "";

	if (r->retry_after_s)
		snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", r->retry_after_s);
	if (evbuffer_add_printf(out,
				"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
				"%s%s\r\nX-Request-Id: %s\r\n%s%s\r\n",
				status, status_text(status), blen,
				location ? "Location: " : "X-Zkrouter-Error: ",
				location ? location : code, r->rid, retry,
				r->keep_alive ? "" : "Connection: close\r\n") < 0)
		return false;
	if (!r->head_request && evbuffer_add(out, body, blen) != 0)
		return false;
	r->bytes_out += evbuffer_get_length(out) - before;
	return true;
}

static void request_answer(struct request *r, int status, const char *code, const char *msg,
			   const char *location)
{
	struct client *c = r->c;
	char body[512];
	int blen;
	bool close_conn;

	r->obs.error = code;   /* logged even when the answer started as the app's */
	if (r->resp_head_done) {
		/* Part of a response is already out: all we can do is end the
		 * connection. What was relayed so far is still delivered (the
		 * close waits for the flush); the client sees the response
		 * short of its length or of its last chunk. */
		rlog_info(r, "%s after the response started: closing", code);
		r->resp_cut = true;   /* HTTP/2: the stream is reset */
		if (r->h2s == NULL)
			conn_tls_cut(&c->io);   /* TLS: no close_notify after a short body */
		r->keep_alive = false;
		r->resp_reusable = false;
		request_finish(r);   /* drops the upstream, closes after the flush */
		return;
	}
	if (r->rid[0] == '\0') {
		headers_request_id(&c->p->rng, r->rid);
		r->rid_len = 32;
	}
	/* A request body we did not read leaves the stream unframed. */
	close_conn = !r->keep_alive || !r->req_body_done || c->p->draining || status == 400 ||
		     status == 408 || status == 414 || status == 431 || status == 505 || status == 405 ||
		     c->over_conn_limit;
	r->keep_alive = !close_conn;
	r->resp_reusable = false;
	upstream_abandon(r);
	if (status >= 500)
		rlog_warn(r, "%d %s: %s", status, code, msg);
	else if (location == NULL)
		rlog_info(r, "%d %s: %s", status, code, msg);
	blen = snprintf(body, sizeof(body), "%d %s: %s\nrequest id: %s\n", status,
			status_text(status), msg, r->rid);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		blen = (int)strlen(body);
	r->status = status;
	if (!r->sink->answer(r, status, code, location, body, (size_t)blen)) {
		r->keep_alive = false;
		r->resp_cut = true;
	}
	request_finish(r);
}

void request_fail(struct request *r, int status, const char *code, const char *msg)
{
	request_answer(r, status, code, msg, NULL);
}

/* redirect_https: the same host and target on the TLS listener. */
static void request_redirect_https(struct request *r)
{
	struct proxy *p = r->c->p;
	const char *path = r->target + r->path_off;
	size_t path_len = strlen(path);
	char prefix[HOST_MAX + 32], port[8] = "";
	bool v6 = strchr(r->host, ':') != NULL;
	char *loc;
	int n;

	if (p->tls_port && p->tls_port != 443)
		snprintf(port, sizeof(port), ":%u", (unsigned)p->tls_port);
	n = snprintf(prefix, sizeof(prefix), "https://%s%s%s%s%s", v6 ? "[" : "", r->host,
		     v6 ? "]" : "", port, path_len && path[0] == '/' ? "" : "/");
	loc = n > 0 ? malloc((size_t)n + path_len + 1) : NULL;
	if (loc == NULL) {
		request_fail(r, 503, "out_of_memory", "out of memory");
		return;
	}
	memcpy(loc, prefix, (size_t)n);
	memcpy(loc + n, path, path_len);
	loc[(size_t)n + path_len] = '\0';
	request_answer(r, 308, NULL, "this app is served over HTTPS", loc);
	free(loc);
}

/* ---- reading request heads -------------------------------------------- */

static bool copy_target(struct request *r)
{
	size_t need = r->head.target_len + 1;

	if (need > r->target_cap) {
		char *t = realloc(r->target, need < 256 ? 256 : need);

		if (t == NULL)
			return false;
		r->target = t;
		r->target_cap = need < 256 ? 256 : need;
	}
	memcpy(r->target, r->head.target, r->head.target_len);
	r->target[r->head.target_len] = '\0';
	r->path_off = r->head.path && r->head.path >= r->head.target &&
			      r->head.path <= r->head.target + r->head.target_len
		      ? (size_t)(r->head.path - r->head.target)
		      : 0;
	return true;
}

/* A request id the client sent is kept when it is sane; else ours. */
static void choose_request_id(struct request *r, struct fwd_request *f)
{
	struct http_head *h = &r->head;
	unsigned i;

	for (i = 0; i < h->n_hdrs; i++) {
		if (h->hdrs[i].kind != HDR_X_REQUEST_ID)
			continue;
		if (h->hdrs[i].vlen == 0 || h->hdrs[i].vlen > REQUEST_ID_MAX)
			break;
		memcpy(r->rid, h->hdrs[i].value, h->hdrs[i].vlen);
		r->rid[h->hdrs[i].vlen] = '\0';
		r->rid_len = h->hdrs[i].vlen;
		f->request_id = h->hdrs[i].value;
		f->request_id_len = h->hdrs[i].vlen;
		f->request_id_present = true;
		return;
	}
	headers_request_id(&r->c->p->rng, r->rid);
	r->rid_len = 32;
	f->request_id = r->rid;
	f->request_id_len = 32;
	f->request_id_present = false;
}

/* The balancer's hash key (header or cookie value), hashed now: the head
 * is gone by the time an instance is picked (and re-picked on retries). */
static void hash_key(struct request *r, const struct route_app_config *cfg)
{
	unsigned i;
	const char *key;
	size_t keylen;

	r->has_key = false;
	if (cfg->hash_key == NULL)
		return;
	for (i = 0; i < r->head.n_hdrs; i++) {
		const struct http_hdr *hd = &r->head.hdrs[i];

		if (cfg->balance == ZKROUTER__APP_CONFIG__BALANCE__HASH_HEADER &&
		    http_name_is(hd, cfg->hash_key)) {
			r->key_hash = balancer_hash_key(hd->value, hd->vlen);
			r->has_key = true;
			return;
		}
		if (cfg->balance == ZKROUTER__APP_CONFIG__BALANCE__HASH_COOKIE &&
		    hd->kind == HDR_COOKIE &&
		    balancer_cookie_value(hd->value, hd->vlen, cfg->hash_key, &key, &keylen)) {
			r->key_hash = balancer_hash_key(key, keylen);
			r->has_key = true;
			return;
		}
	}
}

/* The instance a sticky cookie names, if the app has one and it is known. */
static void sticky_instance(struct request *r, const struct route_app_config *cfg)
{
	unsigned i;

	r->sticky = NULL;
	if (cfg->sticky_cookie == NULL)
		return;
	for (i = 0; i < r->head.n_hdrs; i++) {
		const struct http_hdr *hd = &r->head.hdrs[i];
		const char *v;
		size_t vlen;
		char id[RECORD_ID_MAX + 1];

		if (hd->kind != HDR_COOKIE ||
		    !balancer_cookie_value(hd->value, hd->vlen, cfg->sticky_cookie, &v, &vlen))
			continue;
		if (vlen == 0 || vlen > RECORD_ID_MAX)
			return;
		memcpy(id, v, vlen);
		id[vlen] = '\0';
		r->sticky = app_state_find(r->as, id);
		return;
	}
}

/* What routing decided for a head: go on, or an answer of ours. */
enum route_verdict { ROUTE_GO, ROUTE_FAIL, ROUTE_REDIRECT };

struct route_answer {
	int status;
	const char *code, *msg;
};

static enum route_verdict route_fail(struct route_answer *a, int status, const char *code,
				     const char *msg)
{
	a->status = status;
	a->code = code;
	a->msg = msg;
	return ROUTE_FAIL;
}

/*
 * Everything both protocols do with a parsed head: the request's names,
 * its id, its app by Host, the limits, and the head for the backend
 * (headers.c). Reads the head (r->head), which must still be valid; what
 * it decides is acted on by route_act, once the caller let the head go.
 */
static enum route_verdict route_decide(struct request *r, struct route_answer *a)
{
	struct client *c = r->c;
	struct proxy *p = c->p;
	struct http_head *h = &r->head;
	struct fwd_request f;
	const char *hv;
	size_t hl;
	struct route_app *app;

	memset(&f, 0, sizeof(f));
	accesslog_obs_head(&r->obs, h, c->io.ssl);
	{
		const char *m = llhttp_method_name(h->method);
		size_t ml = strlen(m);

		if (ml >= sizeof(r->method))
			ml = sizeof(r->method) - 1;
		memcpy(r->method, m, ml);
		r->method[ml] = '\0';
	}
	r->head_request = h->method == HTTP_HEAD;
	r->idempotent = h->method == HTTP_GET || h->method == HTTP_HEAD ||
			h->method == HTTP_OPTIONS || h->method == HTTP_TRACE ||
			h->method == HTTP_PUT || h->method == HTTP_DELETE;
	if (!copy_target(r))
		return route_fail(a, 503, "out_of_memory", "out of memory");
	choose_request_id(r, &f);
	r->req_body_done = r->req_framing == FRAME_NONE ||
			   (r->req_framing == FRAME_LENGTH && r->req_remaining == 0);

	if (h->authority) {
		hv = h->authority;
		hl = h->authority_len;
	} else if (h->host_idx < 0) {
		snprintf(r->host, sizeof(r->host), "-");
		return route_fail(a, 400, "bad_request", "missing Host");
	} else {
		hv = h->hdrs[h->host_idx].value;
		hl = h->hdrs[h->host_idx].vlen;
	}
	if (hl > HOST_MAX + 7 || !host_normalize(hv, hl, r->host, sizeof(r->host), &r->host_len)) {
		snprintf(r->host, sizeof(r->host), "-");
		return route_fail(a, 400, "bad_request", "invalid Host");
	}
	if (c->over_conn_limit) {
		/* When one of the address's connections closes is unknown: a
		 * second is a fair guess that keeps a client from spinning. */
		r->retry_after_s = 1;
		return route_fail(a, 429, "too_many_connections",
				  "too many connections from this address");
	}
	if (!limits_request(p->perip, c->ipent, clock_now_ms(), &r->retry_after_s))
		return route_fail(a, 429, "too_many_requests", "too many requests from this address");
	if (p->table == NULL)
		return route_fail(a, 503, "no_table", "the routing table is not loaded yet");
	app = route_table_match(p->table, r->host, r->host_len);
	if (app == NULL)
		return route_fail(a, 404, "unknown_route", "no app is routed for this host");
	r->as = backend_map_get(&p->map, app);
	if (r->as == NULL)
		return route_fail(a, 503, "no_instances", "app state unavailable");
	app_state_ref(r->as);
	if (app->config.redirect_https && !c->tls)
		return ROUTE_REDIRECT;
	if (app->config.max_body_bytes && h->has_content_length &&
	    h->content_length > app->config.max_body_bytes)
		return route_fail(a, 413, "body_too_large", "request body larger than the app allows");
	f.client_ip = c->ip;
	f.proto = c->tls ? "https" : "http";
	f.local_port = c->local_port;
	f.host = hv;
	f.host_len = hl;
	f.framing = r->req_framing;
	f.content_length = r->req_remaining;
	f.upgrade_protocols = p->upgrade_protocols;
	f.keep_underscores = p->cfg.allow_underscore_headers;
	if (!headers_write_request(&r->head_out, h, &f))
		return route_fail(a, 503, "out_of_memory", "out of memory");
	hash_key(r, &app->config);
	sticky_instance(r, &app->config);
	return ROUTE_GO;
}

/* The head is gone (serialized, or not needed): the request goes on. */
static void route_act(struct request *r, enum route_verdict v, const struct route_answer *a)
{
	r->head.n_hdrs = 0;
	switch (v) {
	case ROUTE_FAIL:
		request_fail(r, a->status, a->code, a->msg);
		break;
	case ROUTE_REDIRECT:
		request_redirect_https(r);
		break;
	default:
		if (appq_admit(r))
			upstream_attempt(r);
		break;
	}
}

void request_route_head(struct request *r)
{
	struct route_answer a;
	enum route_verdict v = route_decide(r, &a);

	route_act(r, v, &a);
}

/* Routes an HTTP/1.1 head, still in the client's input (head_len
 * bytes): drained once decided, before the request goes on, so that an
 * answer that readies the connection finds the next request first. */
void request_route_h1(struct request *r, size_t head_len)
{
	struct client *c = r->c;
	struct proxy *p = c->p;
	struct http_head *h = &r->head;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct route_answer a;
	enum route_verdict v;

	r->http10 = h->minor == 0;
	r->keep_alive = r->http10 ? h->conn_keep_alive && !h->conn_close : !h->conn_close;
	/* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means its
	 * framing may be read differently along the way: answer, then close. */
	if (r->http10 && h->chunked)
		r->keep_alive = false;
	/* Only the protocols we tunnel are forwarded (never h2c: the
	 * requests inside would bypass routing, forwarding headers and the
	 * access log); without one, this is an ordinary request. */
	http_upgrade_restrict(h, p->upgrade_protocols);
	r->upgrade = h->upgrade;
	r->bytes_in = head_len;
	if (h->chunked) {
		r->req_framing = FRAME_CHUNKED;
	} else if (h->has_content_length) {
		/* Content-Length: 0 is passed on too: some apps insist on a
		 * length for POST and PUT (411 otherwise). */
		r->req_framing = FRAME_LENGTH;
		r->req_remaining = h->content_length;
	} else {
		r->req_framing = FRAME_NONE;
	}
	v = route_decide(r, &a);
	if (v == ROUTE_GO && r->req_framing == FRAME_CHUNKED) {
		/* The body decoder continues from the parsed head. */
		const char *why;
		const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)head_len);

		if (data == NULL || http_parse_request(&r->parser, data, head_len, false, &p->lim, h,
						       &why) != HTTP_OK)
			v = route_fail(&a, 400, "bad_request", "request head changed");
	}
	/* The head is serialized: the parsed pointers die with these bytes. */
	evbuffer_drain(in, head_len);
	route_act(r, v, &a);
}

/* ---- per-address limits ------------------------------------------------ */

bool client_limits_open(struct client *c)
{
	struct proxy *p = c->p;
	struct limits_key k;
	enum limits_verdict v;

	client_limits_close(c);
	if (!limits_enabled(p->perip) || !limits_key_parse(c->ip, &k))
		return true;
	v = limits_conn_open(p->perip, &k, clock_now_ms(), &c->ipent);
	if (v == LIMITS_REFUSE) {
		/* Debug only: a flood would otherwise flood the log too (the
		 * metrics count these). */
		clog_debug(c, "far over max-connections-per-ip: closed");
		client_close(c);
		return false;
	}
	c->over_conn_limit = v == LIMITS_OVER;
	if (c->over_conn_limit)
		clog_debug(c, "over max-connections-per-ip: its request gets 429");
	return true;
}

void client_limits_close(struct client *c)
{
	if (c->ipent != NULL) {
		limits_conn_close(c->p->perip, c->ipent);
		c->ipent = NULL;
	}
	c->over_conn_limit = false;
}
