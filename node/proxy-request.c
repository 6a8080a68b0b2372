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

static struct request *request_get(struct client *c)
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
static void client_read_pipelined(struct client *c)
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

	if (c->state != CS_DEAD)
		conn_flush(&c->io);
	request_set_state(r, RQ_DONE);
	request_log(r);
	upstream_release(r, r->resp_reusable);
	p->n_active--;
	c->req = NULL;
	request_put(p, r);
	if (freed != NULL)
		appq_dispatch(p, freed);   /* other clients' requests only */
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
static void request_answer(struct request *r, int status, const char *code, const char *msg,
			   const char *location)
{
	struct client *c = r->c;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char body[512], retry[40] = "";
	int blen;
	bool close_conn;
	size_t before = evbuffer_get_length(out);

	r->obs.error = code;   /* logged even when the answer started as the app's */
	if (r->resp_head_done) {
		/* Part of a response is already out: all we can do is end the
		 * connection. What was relayed so far is still delivered (the
		 * close waits for the flush); the client sees the response
		 * short of its length or of its last chunk. */
		rlog_info(r, "%s after the response started: closing", code);
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
	if (r->retry_after_s)
		snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", r->retry_after_s);
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
			    "%s%s\r\nX-Request-Id: %s\r\n%s%s\r\n",
			    status, status_text(status), blen,
			    location ? "Location: " : "X-Zkrouter-Error: ", location ? location : code,
			    r->rid, retry, close_conn ? "Connection: close\r\n" : "");
	if (!r->head_request)
		evbuffer_add(out, body, (size_t)blen);
	r->status = status;
	r->bytes_out += evbuffer_get_length(out) - before;
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
	const struct http_head *h = &r->head;
	char prefix[HOST_MAX + 32], port[8] = "";
	bool v6 = strchr(r->host, ':') != NULL;
	char *loc;
	int n;

	if (p->tls_port && p->tls_port != 443)
		snprintf(port, sizeof(port), ":%u", (unsigned)p->tls_port);
	n = snprintf(prefix, sizeof(prefix), "https://%s%s%s%s%s", v6 ? "[" : "", r->host,
		     v6 ? "]" : "", port, h->path_len && h->path[0] == '/' ? "" : "/");
	loc = n > 0 ? malloc((size_t)n + h->path_len + 1) : NULL;
	if (loc == NULL) {
		request_fail(r, 503, "out_of_memory", "out of memory");
		return;
	}
	memcpy(loc, prefix, (size_t)n);
	memcpy(loc + n, h->path, h->path_len);
	loc[(size_t)n + h->path_len] = '\0';
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

/* Routes a parsed head and hands it to upstream.c. The head is still in
 * the client's input (len bytes) and is drained here once serialized. */
static void request_route(struct request *r, size_t head_len)
{
	struct client *c = r->c;
	struct proxy *p = c->p;
	struct http_head *h = &r->head;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct fwd_request f;
	const char *hv;
	size_t hl;
	struct route_app *app;

	memset(&f, 0, sizeof(f));
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
	accesslog_obs_head(&r->obs, h, c->io.ssl);
	if (!copy_target(r)) {
		evbuffer_drain(in, head_len);
		request_fail(r, 503, "out_of_memory", "out of memory");
		return;
	}
	choose_request_id(r, &f);
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
	r->req_body_done = r->req_framing == FRAME_NONE ||
			   (r->req_framing == FRAME_LENGTH && r->req_remaining == 0);

	if (h->authority) {
		hv = h->authority;
		hl = h->authority_len;
	} else if (h->host_idx < 0) {
		snprintf(r->host, sizeof(r->host), "-");
		evbuffer_drain(in, head_len);
		request_fail(r, 400, "bad_request", "missing Host");
		return;
	} else {
		hv = h->hdrs[h->host_idx].value;
		hl = h->hdrs[h->host_idx].vlen;
	}
	if (hl > HOST_MAX + 7 || !host_normalize(hv, hl, r->host, sizeof(r->host), &r->host_len)) {
		snprintf(r->host, sizeof(r->host), "-");
		evbuffer_drain(in, head_len);
		request_fail(r, 400, "bad_request", "invalid Host");
		return;
	}
	if (c->over_conn_limit) {
		/* When one of the address's connections closes is unknown: a
		 * second is a fair guess that keeps a client from spinning. */
		r->retry_after_s = 1;
		evbuffer_drain(in, head_len);
		request_fail(r, 429, "too_many_connections",
			     "too many connections from this address");
		return;
	}
	if (!limits_request(p->perip, c->ipent, clock_now_ms(), &r->retry_after_s)) {
		evbuffer_drain(in, head_len);
		request_fail(r, 429, "too_many_requests", "too many requests from this address");
		return;
	}
	if (p->table == NULL) {
		evbuffer_drain(in, head_len);
		request_fail(r, 503, "no_table", "the routing table is not loaded yet");
		return;
	}
	app = route_table_match(p->table, r->host, r->host_len);
	if (app == NULL) {
		evbuffer_drain(in, head_len);
		request_fail(r, 404, "unknown_route", "no app is routed for this host");
		return;
	}
	r->as = backend_map_get(&p->map, app);
	if (r->as == NULL) {
		evbuffer_drain(in, head_len);
		request_fail(r, 503, "no_instances", "app state unavailable");
		return;
	}
	app_state_ref(r->as);
	if (app->config.redirect_https && !c->tls) {
		request_redirect_https(r);   /* before the drain: it reads the target */
		evbuffer_drain(in, head_len);
		return;
	}
	if (app->config.max_body_bytes && h->has_content_length &&
	    h->content_length > app->config.max_body_bytes) {
		evbuffer_drain(in, head_len);
		request_fail(r, 413, "body_too_large", "request body larger than the app allows");
		return;
	}
	if (r->req_framing == FRAME_CHUNKED) {
		/* The body decoder continues from the parsed head. */
		const char *why;
		const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)head_len);

		if (data == NULL || http_parse_request(&r->parser, data, head_len, false, &p->lim, h,
						       &why) != HTTP_OK) {
			evbuffer_drain(in, head_len);
			request_fail(r, 400, "bad_request", "request head changed");
			return;
		}
		h->upgrade = r->upgrade;   /* as restricted above */
	}
	f.client_ip = c->ip;
	f.proto = c->tls ? "https" : "http";
	f.local_port = c->local_port;
	f.host = h->authority ? h->authority : h->hdrs[h->host_idx].value;
	f.host_len = h->authority ? h->authority_len : h->hdrs[h->host_idx].vlen;
	f.framing = r->req_framing;
	f.content_length = r->req_remaining;
	f.upgrade_protocols = p->upgrade_protocols;
	f.keep_underscores = p->cfg.allow_underscore_headers;
	if (!headers_write_request(&r->head_out, h, &f)) {
		evbuffer_drain(in, head_len);
		request_fail(r, 503, "out_of_memory", "out of memory");
		return;
	}
	hash_key(r, &app->config);
	sticky_instance(r, &app->config);
	/* The head is serialized: the parsed pointers die with these bytes. */
	evbuffer_drain(in, head_len);
	h->n_hdrs = 0;
	if (appq_admit(r))
		upstream_attempt(r);
}

static int result_status(enum http_result res, const char **code)
{
	*code = "bad_request";
	switch (res) {
	case HTTP_HEAD_TOO_LARGE:
	case HTTP_TOO_MANY_HEADERS:
		*code = "header_too_large";
		return 431;
	case HTTP_TARGET_TOO_LONG:
		*code = "uri_too_long";
		return 414;
	case HTTP_BAD_METHOD:
		*code = "method_not_allowed";
		return 405;
	case HTTP_BAD_VERSION:
		*code = "version_not_supported";
		return 505;
	default:
		return 400;
	}
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

/* Starts a request for a head that failed (to parse, or to arrive in
 * time): answers and closes. */
void client_reject(struct client *c, int status, const char *code, const char *why)
{
	struct request *r = request_get(c);

	if (r == NULL) {
		client_close(c);
		return;
	}
	client_set_state(c, CS_REQUEST);
	c->req = r;
	c->p->n_active++;
	snprintf(r->host, sizeof(r->host), "-");
	/* Nothing more is read from a connection that sent a bad head. */
	evbuffer_drain(bufferevent_get_input(c->bev),
		       evbuffer_get_length(bufferevent_get_input(c->bev)));
	request_fail(r, status, code, why ? why : "malformed request");
}

static void client_reject_parse(struct client *c, enum http_result res, const char *why)
{
	const char *code;
	int status = result_status(res, &code);

	client_reject(c, status, code, why);
}

bool client_output_full(struct client *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) < c->p->cfg.buffer_high_bytes)
		return false;
	/* Whatever filled it (our own answers to pipelined requests, or
	 * answers relayed from an app), a client that does not read must
	 * not make us read, answer and buffer more: memory would grow
	 * without bound. The write timeout ends a client that never reads. */
	if (!c->out_full)
		clog_debug(c, "output past the high mark: reading paused");
	c->out_full = true;
	conn_read_off(&c->io);
	return true;
}

void client_output_resume(struct client *c)
{
	if (!c->out_full ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) >= c->p->cfg.buffer_high_bytes)
		return;
	c->out_full = false;
	if (!c->read_paused)
		conn_read_on(&c->io);
	if (c->state == CS_IDLE && !c->processing)
		client_process(c);
}

/* Where the pending head ends (past its blank line), or 0. Only the bytes
 * not searched before are searched (from 3 back, in case the blank line
 * straddles two reads), and nothing is copied to do it. */
static size_t head_end(struct client *c, struct evbuffer *in, size_t len)
{
	struct evbuffer_ptr from, at;
	size_t start = c->head_scanned > 3 ? c->head_scanned - 3 : 0;

	if (evbuffer_ptr_set(in, &from, start, EVBUFFER_PTR_SET) != 0)
		return 0;
	at = evbuffer_search(in, "\r\n\r\n", 4, &from);
	if (at.pos < 0) {
		c->head_scanned = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
		return 0;
	}
	return (size_t)at.pos + 4;
}

void client_process(struct client *c)
{
	struct proxy *p = c->p;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	c->processing = true;
	while (c->state == CS_IDLE) {
		size_t len = evbuffer_get_length(in), end;
		const char *data, *why = NULL;
		enum http_result res;
		struct request *r;

		if (len == 0)
			break;
		/* Answers to earlier requests still wait for the client to
		 * read them: the next one waits too (and reading stops). */
		if (client_output_full(c))
			break;
		if (c->head_start_ms == 0)
			c->head_start_ms = clock_now_ms();
		end = head_end(c, in, len);
		if (end > p->lim.max_head_bytes || (end == 0 && len >= p->lim.max_head_bytes)) {
			client_reject_parse(c, HTTP_HEAD_TOO_LARGE, "request head too large");
			break;
		}
		if (end == 0) {
			struct http_head probe;
			struct http_hdr hdrs[16];
			llhttp_t parser;
			struct http_limits lim = p->lim;

			if (clock_now_ms() - c->head_start_ms >= p->cfg.head_timeout_ms) {
				client_reject(c, 408, "request_timeout", "request head too slow");
				break;
			}
			/* Refuse garbage at its first bytes, not after a timeout;
			 * but a head that trickles in is checked again only each
			 * time it doubled, so a byte-by-byte sender cannot make us
			 * re-parse it thousands of times. */
			if (c->head_probed && len < 2 * (size_t)c->head_probed)
				break;
			c->head_probed = (uint32_t)len;
			data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
			if (data == NULL) {
				client_close(c);
				break;
			}
			memset(&probe, 0, sizeof(probe));
			probe.hdrs = hdrs;
			probe.max_hdrs = 16;
			lim.max_headers = 16;
			res = http_parse_request(&parser, data, len, true, &lim, &probe, &why);
			if (res != HTTP_OK && res != HTTP_INCOMPLETE && res != HTTP_TOO_MANY_HEADERS) {
				client_reject_parse(c, res, why);
				break;
			}
			break;
		}
		c->head_scanned = c->head_probed = 0;
		data = (const char *)evbuffer_pullup(in, (ev_ssize_t)end);
		if (data == NULL) {
			client_close(c);
			break;
		}
		r = request_get(c);
		if (r == NULL) {
			client_close(c);
			break;
		}
		client_set_state(c, CS_REQUEST);
		c->req = r;
		p->n_active++;
		res = http_parse_request(&r->parser, data, end, false, &p->lim, &r->head, &why);
		if (res != HTTP_OK) {
			const char *code;
			int status = result_status(res, &code);

			snprintf(r->host, sizeof(r->host), "-");
			evbuffer_drain(in, evbuffer_get_length(in));
			request_fail(r, status, code, why ? why : "malformed request");
			break;
		}
		request_route(r, end);
	}
	/* Half-closed, and every request it sent completely is answered:
	 * nothing more can come. */
	if (c->state == CS_IDLE && c->io.eof && !c->out_full)
		client_close_after_flush(c);
	else if (c->state == CS_IDLE)
		client_read_pipelined(c);
	c->processing = false;
}
