/*
 * The client side of the request path: listeners, accepting (with a cap on
 * connections and a backoff when descriptors run out), reading and
 * validating request heads, routing them by Host to an app of the current
 * table snapshot, answering the errors the router owns, and ending each
 * request (access log, keep-alive or close). upstream.c carries a routed
 * request to a backend and its response back; tunnel.c takes over after
 * an Upgrade. See proxy-t.h for the picture.
 */
#include <config.h>

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "node/accesslog.h"
#include "node/balancer.h"
#include "node/proxy-t.h"
#include "node/proxy.h"
#include "node/upstream.h"

static const char *const client_state_names[] = {
	[CS_IDLE] = "idle", [CS_REQUEST] = "request", [CS_TUNNEL] = "tunnel",
	[CS_CLOSING] = "closing", [CS_LINGER] = "linger", [CS_DEAD] = "dead",
};

static const char *const request_state_names[] = {
	[RQ_ROUTING] = "routing", [RQ_CONNECTING] = "connecting", [RQ_SENDING] = "sending",
	[RQ_WAITING] = "waiting", [RQ_RESPONDING] = "responding", [RQ_DONE] = "done",
};

void client_set_state(struct client *c, enum client_state s)
{
	if (c->state == s)
		return;
	clog_debug(c, "state %s -> %s", client_state_names[c->state], client_state_names[s]);
	c->state = s;
}

void request_set_state(struct request *r, enum request_state s)
{
	if (r->state == s)
		return;
	rlog_debug(r, "request %s -> %s", request_state_names[r->state], request_state_names[s]);
	r->state = s;
}

/* ---- reaping ----------------------------------------------------------- */

static void client_destroy(struct client *c);

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	struct client *c;

	while ((c = TAILQ_FIRST(&p->dead_clients)) != NULL) {
		TAILQ_REMOVE(&p->dead_clients, c, link);
		client_destroy(c);
	}
	upstream_free_dead(p);
}

void proxy_reap_later(struct proxy *p)
{
	event_active(p->reaper, EV_TIMEOUT, 0);
}

/* ---- requests ---------------------------------------------------------- */

static struct request *request_get(struct client *c)
{
	struct proxy *p = c->p;
	struct request *r = p->free_reqs;

	if (r != NULL) {
		p->free_reqs = r->next_free;
		p->n_free_reqs--;
	} else {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return NULL;
		r->head.hdrs = calloc(p->cfg.max_headers, sizeof(struct http_hdr));
		r->rhead.hdrs = calloc(p->cfg.max_headers, sizeof(struct http_hdr));
		r->head_out = evbuffer_new();
		if (r->head.hdrs == NULL || r->rhead.hdrs == NULL || r->head_out == NULL) {
			free(r->head.hdrs);
			free(r->rhead.hdrs);
			if (r->head_out)
				evbuffer_free(r->head_out);
			free(r);
			return NULL;
		}
		r->head.max_hdrs = r->rhead.max_hdrs = p->cfg.max_headers;
	}
	/* Reset everything but the reusable buffers. */
	{
		struct http_hdr *h1 = r->head.hdrs, *h2 = r->rhead.hdrs;
		unsigned m = r->head.max_hdrs;
		struct evbuffer *ho = r->head_out;
		char *target = r->target;
		size_t cap = r->target_cap;

		memset(r, 0, sizeof(*r));
		r->head.hdrs = h1;
		r->rhead.hdrs = h2;
		r->head.max_hdrs = r->rhead.max_hdrs = m;
		r->head_out = ho;
		r->target = target;
		r->target_cap = cap;
		if (r->target)
			r->target[0] = '\0';
	}
	evbuffer_drain(r->head_out, evbuffer_get_length(r->head_out));
	r->c = c;
	r->state = RQ_ROUTING;
	r->n = ++c->n_requests;
	r->start_ms = backend_now_ms();
	event_base_gettimeofday_cached(p->base, &r->start_tv);
	return r;
}

static void request_put(struct proxy *p, struct request *r)
{
	if (r->as) {
		app_state_unref(r->as);
		r->as = NULL;
	}
	r->c = NULL;
	/* Requests sized for an older max_headers are not kept. */
	if (r->head.max_hdrs != p->cfg.max_headers || p->n_free_reqs >= 1024) {
		free(r->head.hdrs);
		free(r->rhead.hdrs);
		evbuffer_free(r->head_out);
		free(r->target);
		free(r);
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
	uint64_t now = backend_now_ms();

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
	e.total_ms = (double)(now - r->start_ms);
	e.upstream_ms = r->upstream_start_ms ? (double)(now - r->upstream_start_ms) : 0;
	accesslog_write(c->p->log, &e);
}

static void client_close_after_flush(struct client *c);

void request_finish(struct request *r)
{
	struct client *c = r->c;
	struct proxy *p = c->p;
	bool keep = r->keep_alive && r->req_body_done && !p->stopping && c->state == CS_REQUEST;

	request_set_state(r, RQ_DONE);
	request_log(r);
	upstream_release(r, r->resp_reusable);
	p->n_active--;
	c->req = NULL;
	request_put(p, r);
	if (c->state != CS_REQUEST)
		return;
	if (!keep) {
		client_close_after_flush(c);
		return;
	}
	client_set_state(c, CS_IDLE);
	c->idle_since_ms = backend_now_ms();
	c->head_start_ms = 0;
	if (c->read_paused) {
		c->read_paused = false;
		bufferevent_enable(c->bev, EV_READ);
	}
	if (!c->processing && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		client_process(c);
}

static const char *status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

void request_fail(struct request *r, int status, const char *code, const char *msg)
{
	struct client *c = r->c;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char body[512];
	int blen;
	bool close_conn;
	size_t before = evbuffer_get_length(out);

	if (r->resp_head_done) {
		/* Part of a response is already out: all we can do is cut it. */
		rlog_info(r, "%s after the response started: closing", code);
		r->keep_alive = false;
		r->resp_reusable = false;
		upstream_abandon(r);
		client_close(c);
		request_finish(r);
		return;
	}
	if (r->rid[0] == '\0') {
		headers_request_id(&c->p->rng, r->rid);
		r->rid_len = 32;
	}
	/* A request body we did not read leaves the stream unframed. */
	close_conn = !r->keep_alive || !r->req_body_done || status == 400 || status == 408 ||
		     status == 414 || status == 431 || status == 505 || status == 405;
	r->keep_alive = !close_conn;
	r->resp_reusable = false;
	upstream_abandon(r);
	if (status >= 500)
		rlog_warn(r, "%d %s: %s", status, code, msg);
	else
		rlog_info(r, "%d %s: %s", status, code, msg);
	blen = snprintf(body, sizeof(body), "%d %s: %s\nrequest id: %s\n", status,
			status_text(status), msg, r->rid);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		blen = (int)strlen(body);
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
			    "X-Zkrouter-Error: %s\r\nX-Request-Id: %s\r\n%s\r\n",
			    status, status_text(status), blen, code, r->rid,
			    close_conn ? "Connection: close\r\n" : "");
	if (!r->head_request)
		evbuffer_add(out, body, (size_t)blen);
	r->status = status;
	r->bytes_out += evbuffer_get_length(out) - before;
	request_finish(r);
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
	snprintf(r->method, sizeof(r->method), "%s", llhttp_method_name(h->method));
	r->head_request = h->method == HTTP_HEAD;
	r->http10 = h->minor == 0;
	r->keep_alive = r->http10 ? h->conn_keep_alive && !h->conn_close : !h->conn_close;
	r->upgrade = h->upgrade;
	r->bytes_in = head_len;
	if (!copy_target(r)) {
		evbuffer_drain(in, head_len);
		request_fail(r, 503, "out_of_memory", "out of memory");
		return;
	}
	choose_request_id(r, &f);
	if (h->chunked) {
		r->req_framing = FRAME_CHUNKED;
	} else if (h->has_content_length && h->content_length > 0) {
		r->req_framing = FRAME_LENGTH;
		r->req_remaining = h->content_length;
	} else {
		r->req_framing = FRAME_NONE;
	}
	r->req_body_done = r->req_framing == FRAME_NONE;

	if (h->authority) {
		hv = h->authority;
		hl = h->authority_len;
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
	}
	f.client_ip = c->ip;
	f.proto = "http";
	f.local_port = c->local_port;
	f.host = h->authority ? h->authority : h->hdrs[h->host_idx].value;
	f.host_len = h->authority ? h->authority_len : h->hdrs[h->host_idx].vlen;
	f.framing = r->req_framing;
	f.content_length = r->req_remaining;
	if (!headers_write_request(r->head_out, h, &f)) {
		evbuffer_drain(in, head_len);
		request_fail(r, 503, "out_of_memory", "out of memory");
		return;
	}
	hash_key(r, &app->config);
	/* The head is serialized: the parsed pointers die with these bytes. */
	evbuffer_drain(in, head_len);
	h->n_hdrs = 0;
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

/* Starts a request for a head that failed (to parse, or to arrive in
 * time): answers and closes. */
static void client_reject(struct client *c, int status, const char *code, const char *why)
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

void client_process(struct client *c)
{
	struct proxy *p = c->p;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	c->processing = true;
	while (c->state == CS_IDLE) {
		size_t len = evbuffer_get_length(in), n, end;
		const char *data, *why = NULL;
		enum http_result res;
		struct request *r;

		if (len == 0)
			break;
		if (c->head_start_ms == 0)
			c->head_start_ms = backend_now_ms();
		n = len < p->lim.max_head_bytes ? len : p->lim.max_head_bytes;
		data = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
		if (data == NULL) {
			client_close(c);
			break;
		}
		end = http_head_end(data, n);
		if (end == 0) {
			struct http_head probe;
			struct http_hdr hdrs[16];
			llhttp_t parser;
			struct http_limits lim = p->lim;

			if (len >= p->lim.max_head_bytes) {
				client_reject_parse(c, HTTP_HEAD_TOO_LARGE, "request head too large");
				break;
			}
			/* Refuse garbage at its first bytes, not after a timeout. */
			memset(&probe, 0, sizeof(probe));
			probe.hdrs = hdrs;
			probe.max_hdrs = 16;
			lim.max_headers = 16;
			res = http_parse_request(&parser, data, n, true, &lim, &probe, &why);
			if (res != HTTP_OK && res != HTTP_INCOMPLETE && res != HTTP_TOO_MANY_HEADERS) {
				client_reject_parse(c, res, why);
				break;
			}
			if (backend_now_ms() - c->head_start_ms >= p->cfg.head_timeout_ms) {
				client_reject(c, 408, "request_timeout", "request head too slow");
				break;
			}
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
	c->processing = false;
}

/* ---- client connections ----------------------------------------------- */

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	switch (c->state) {
	case CS_IDLE:
		client_process(c);
		break;
	case CS_REQUEST:
		if (c->req && c->req->state == RQ_SENDING)
			upstream_pump_request(c->req);
		break;
	case CS_LINGER:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	default:
		break;
	}
}

static void client_linger(struct client *c)
{
	struct timeval tv = {1, 0};
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (fd < 0 || shutdown(fd, SHUT_WR) != 0) {
		client_close(c);
		return;
	}
	client_set_state(c, CS_LINGER);
	evbuffer_drain(bufferevent_get_input(c->bev),
		       evbuffer_get_length(bufferevent_get_input(c->bev)));
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
}

static void client_close_after_flush(struct client *c)
{
	client_set_state(c, CS_CLOSING);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		client_linger(c);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (c->state == CS_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			client_linger(c);
	} else if (c->state == CS_REQUEST && c->req) {
		upstream_resume_response(c->req);
	}
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	struct proxy *p = c->p;
	uint64_t now;

	if (c->state == CS_LINGER || c->state == CS_DEAD) {
		client_close(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		now = backend_now_ms();
		if (what & BEV_EVENT_WRITING) {
			clog_info(c, "client stopped reading: closing");
		} else if (c->state == CS_IDLE && evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
			if (now - c->head_start_ms >= p->cfg.head_timeout_ms) {
				client_reject(c, 408, "request_timeout", "request head too slow");
				return;
			}
			bufferevent_enable(bev, EV_READ);
			return;
		} else if (c->state == CS_IDLE) {
			if (now - c->idle_since_ms < p->cfg.client_idle_timeout_ms && !p->stopping) {
				bufferevent_enable(bev, EV_READ);
				return;
			}
			clog_debug(c, "keep-alive idle timeout");
		} else if (c->state == CS_REQUEST || c->state == CS_CLOSING) {
			if (!c->read_paused)
				bufferevent_enable(bev, EV_READ);
			return;
		}
		client_close(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->state == CS_REQUEST && c->req && c->req->req_body_done &&
	    !(what & BEV_EVENT_ERROR)) {
		/* A half-close after a complete request: answer, then close. */
		c->req->keep_alive = false;
		return;
	}
	if (c->state == CS_CLOSING && !(what & BEV_EVENT_ERROR)) {
		return;   /* the flush goes on; the write callback ends it */
	}
	if (c->state == CS_REQUEST && c->req) {
		struct request *r = c->req;

		rlog_debug(r, "client went away");
		r->keep_alive = false;
		r->resp_reusable = false;
		upstream_abandon(r);
		client_close(c);
		request_finish(r);
		return;
	}
	client_close(c);
}

static void client_set_limits(struct client *c)
{
	struct proxy *p = c->p;
	struct timeval rt, wt;
	size_t high = p->cfg.buffer_high_bytes;

	if (high < p->lim.max_head_bytes + 1)
		high = p->lim.max_head_bytes + 1;
	rt.tv_sec = p->cfg.head_timeout_ms / 1000;
	rt.tv_usec = (p->cfg.head_timeout_ms % 1000) * 1000;
	wt.tv_sec = p->cfg.client_idle_timeout_ms / 1000;
	wt.tv_usec = (p->cfg.client_idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(c->bev, &rt, &wt);
	bufferevent_setwatermark(c->bev, EV_READ, 0, high);
	bufferevent_setwatermark(c->bev, EV_WRITE, p->cfg.buffer_high_bytes / 2, 0);
}

static void accept_resume(struct proxy *p)
{
	size_t i;

	if (!p->accept_paused || p->stopping)
		return;
	p->accept_paused = false;
	for (i = 0; i < p->n_listeners; i++)
		evconnlistener_enable(p->listeners[i].l);
}

static void accept_pause(struct proxy *p, unsigned retry_ms)
{
	size_t i;

	if (!p->accept_paused)
		for (i = 0; i < p->n_listeners; i++)
			evconnlistener_disable(p->listeners[i].l);
	p->accept_paused = true;
	if (retry_ms) {
		struct timeval tv = {retry_ms / 1000, (retry_ms % 1000) * 1000};

		evtimer_add(p->accept_timer, &tv);
	}
}

static void accept_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;

	if (p->n_clients < p->cfg.max_client_connections)
		accept_resume(p);
	else
		accept_pause(p, 100);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct listener *li = arg;
	struct proxy *p = li->p;
	struct client *c;
	int one = 1;
	uint16_t port = 0;

	if (p->n_clients >= p->cfg.max_client_connections) {
		evutil_closesocket(fd);
		accept_pause(p, 0);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->magic = CLIENT_MAGIC;
	c->p = p;
	c->id = ++p->next_id;
	c->local_port = li->port;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;

		evutil_inet_ntop(AF_INET, &sin->sin_addr, c->ip, sizeof(c->ip));
		port = ntohs(sin->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%u", c->ip, port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

		evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, c->ip, sizeof(c->ip));
		port = ntohs(sin6->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", c->ip, port);
	} else {
		snprintf(c->ip, sizeof(c->ip), "unknown");
		snprintf(c->peer, sizeof(c->peer), "unknown");
	}
	c->bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
	client_set_limits(c);
	c->state = CS_IDLE;
	c->idle_since_ms = backend_now_ms();
	TAILQ_INSERT_TAIL(&p->clients, c, link);
	p->n_clients++;
	if (bufferevent_enable(c->bev, EV_READ) != 0) {
		client_close(c);
		return;
	}
	clog_debug(c, "accepted on port %u", (unsigned)li->port);
	if (p->n_clients >= p->cfg.max_client_connections)
		accept_pause(p, 0);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct listener *li = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		log_warn("accept on port %u: %s; pausing accepts for 100 ms", (unsigned)li->port,
			 evutil_socket_error_to_string(err));
		accept_pause(li->p, 100);
		return;
	}
	log_warn("accept on port %u: %s", (unsigned)li->port, evutil_socket_error_to_string(err));
}

void client_close(struct client *c)
{
	struct proxy *p = c->p;

	if (c->state == CS_DEAD)
		return;
	client_set_state(c, CS_DEAD);
	if (c->tun)
		tunnel_stop(c->tun);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	TAILQ_REMOVE(&p->clients, c, link);
	p->n_clients--;
	TAILQ_INSERT_TAIL(&p->dead_clients, c, link);
	proxy_reap_later(p);
	if (p->accept_paused && p->n_clients < p->cfg.max_client_connections)
		accept_resume(p);
}

static void client_destroy(struct client *c)
{
	if (c->tun)
		tunnel_free(c->tun);
	if (c->bev)
		bufferevent_free(c->bev);
	c->magic = 0;
	free(c);
}

/* ---- the proxy --------------------------------------------------------- */

static void proxy_copy_config(struct proxy *p, const struct zkr_config *cfg)
{
	p->cfg = *cfg;
	/* Only the scalar options are used here; the strings stay the
	 * caller's, so clear them rather than keep dangling copies. */
	p->cfg.config_file = p->cfg.zk_connect = p->cfg.zk_auth = p->cfg.node_id = NULL;
	p->cfg.listen = NULL;
	p->cfg.n_listen = 0;
	p->cfg.admin = p->cfg.access_log = p->cfg.log_level = NULL;
	p->cfg.cli_argv = NULL;
	p->cfg.cli_argc = 0;
	if (p->cfg.max_headers == 0)
		p->cfg.max_headers = 100;
	if (p->cfg.max_head_bytes < 64)
		p->cfg.max_head_bytes = 64;
	if (p->cfg.buffer_high_bytes < 4096)
		p->cfg.buffer_high_bytes = 4096;
	if (p->cfg.max_client_connections == 0)
		p->cfg.max_client_connections = 1;
	p->lim.max_head_bytes = p->cfg.max_head_bytes;
	p->lim.max_headers = p->cfg.max_headers;
	p->lim.max_target_bytes = p->cfg.max_target_bytes ? p->cfg.max_target_bytes : 8192;
}

struct proxy *proxy_new(struct event_base *base, const struct zkr_config *cfg,
			struct accesslog *log)
{
	struct proxy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->base = base;
	p->log = log;
	proxy_copy_config(p, cfg);
	TAILQ_INIT(&p->clients);
	TAILQ_INIT(&p->dead_clients);
	TAILQ_INIT(&p->dead_upstreams);
	backend_map_init(&p->map);
	if (getrandom(&p->rng, sizeof(p->rng), 0) != (ssize_t)sizeof(p->rng) || p->rng == 0)
		p->rng = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
	p->reaper = event_new(base, -1, 0, reaper_cb, p);
	p->accept_timer = evtimer_new(base, accept_timer_cb, p);
	p->scratch = evbuffer_new();
	if (p->reaper == NULL || p->accept_timer == NULL || p->scratch == NULL) {
		proxy_free(p);
		return NULL;
	}
	return p;
}

bool proxy_listen(struct proxy *p, const char *addr_port, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct listener *ls;
	struct evconnlistener *l;
	unsigned short port;

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr_port, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(why, whylen, "%s: not ADDR:PORT", addr_port);
		return false;
	}
	port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					: ntohs(((struct sockaddr_in *)&ss)->sin_port);
	ls = realloc(p->listeners, (p->n_listeners + 1) * sizeof(*ls));
	if (ls == NULL) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	/* Callbacks get a pointer into this array: it must not move again,
	 * so listeners are all opened before traffic (at start-up). */
	p->listeners = ls;
	ls = &p->listeners[p->n_listeners];
	ls->p = p;
	ls->port = port;
	l = evconnlistener_new_bind(p->base, accept_cb, ls,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
				    1024, (struct sockaddr *)&ss, sslen);
	if (l == NULL) {
		snprintf(why, whylen, "%s: %s", addr_port,
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return false;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	ls->l = l;
	p->n_listeners++;
	if (p->accept_paused || p->stopping)
		evconnlistener_disable(l);
	log_info("listening on %s", addr_port);
	return true;
}

void proxy_set_table(struct proxy *p, struct route_table *t)
{
	if (t == p->table)
		return;
	if (!backend_map_update(&p->map, p->table, t)) {
		log_error("out of memory applying table generation %llu; keeping the previous one",
			  (unsigned long long)t->generation);
		return;
	}
	route_table_ref(t);
	if (p->table)
		route_table_unref(p->table);
	p->table = t;
	log_debug("table generation %llu in use (%zu apps)", (unsigned long long)t->generation,
		  t->n_apps);
}

struct route_table *proxy_table(struct proxy *p)
{
	return p->table;
}

void proxy_apply_config(struct proxy *p, const struct zkr_config *cfg)
{
	unsigned old_max_headers = p->cfg.max_headers;
	struct client *c;

	proxy_copy_config(p, cfg);
	if (p->cfg.max_headers != old_max_headers) {
		/* Pooled requests have header arrays of the old size. */
		while (p->free_reqs) {
			struct request *r = p->free_reqs;

			p->free_reqs = r->next_free;
			free(r->head.hdrs);
			free(r->rhead.hdrs);
			evbuffer_free(r->head_out);
			free(r->target);
			free(r);
		}
		p->n_free_reqs = 0;
	}
	TAILQ_FOREACH(c, &p->clients, link)
		if (c->state == CS_IDLE || c->state == CS_REQUEST)
			client_set_limits(c);
	if (p->accept_paused && p->n_clients < p->cfg.max_client_connections)
		accept_resume(p);
}

void proxy_stop_listening(struct proxy *p)
{
	size_t i;
	struct client *c, *next;

	p->stopping = true;
	for (i = 0; i < p->n_listeners; i++) {
		evconnlistener_free(p->listeners[i].l);
		p->listeners[i].l = NULL;
	}
	p->n_listeners = 0;
	evtimer_del(p->accept_timer);
	/* Idle keep-alive clients are closed now; busy ones after their
	 * current response (request_finish sees `stopping`). */
	for (c = TAILQ_FIRST(&p->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state == CS_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
			client_close(c);
	}
}

size_t proxy_active_requests(const struct proxy *p)
{
	return p->n_active;
}

size_t proxy_client_connections(const struct proxy *p)
{
	return p->n_clients;
}

static struct backend *proxy_find_backend(struct proxy *p, const char *domain, const char *id)
{
	struct route_app *app;
	struct app_state *s;

	if (p->table == NULL)
		return NULL;
	app = route_table_find(p->table, domain, strlen(domain));
	if (app == NULL)
		return NULL;
	s = backend_map_get(&p->map, app);
	return s ? app_state_find(s, id) : NULL;
}

bool proxy_backend_info(struct proxy *p, const char *domain, const char *instance_id,
			struct backend_info *out)
{
	struct backend *b = proxy_find_backend(p, domain, instance_id);
	uint64_t now = backend_now_ms();

	memset(out, 0, sizeof(*out));
	if (b == NULL)
		return false;
	out->ejected = backend_ejected(b, now);
	out->ejected_until_ms = out->ejected ? b->ejected_until_ms : 0;
	out->outstanding = b->outstanding;
	out->consecutive_failures = b->consecutive_failures;
	out->health_down = b->health_down;
	out->idle_pooled = b->n_idle;
	return true;
}

void proxy_backend_set_health(struct proxy *p, const char *domain, const char *instance_id,
			      bool up)
{
	struct backend *b = proxy_find_backend(p, domain, instance_id);

	if (b == NULL || b->health_down == !up)
		return;
	b->health_down = !up;
	log_info("app %s instance %s (%s): health check says %s", domain, instance_id, b->name,
		 up ? "up" : "down");
	if (!up)
		upstream_pool_close(b);
}

void proxy_free(struct proxy *p)
{
	struct client *c;
	size_t i;

	if (p == NULL)
		return;
	p->stopping = true;
	for (i = 0; i < p->n_listeners; i++)
		if (p->listeners[i].l)
			evconnlistener_free(p->listeners[i].l);
	free(p->listeners);
	while ((c = TAILQ_FIRST(&p->clients)) != NULL) {
		if (c->req) {
			struct request *r = c->req;

			r->keep_alive = false;
			r->resp_reusable = false;
			upstream_abandon(r);
			client_close(c);
			request_finish(r);
		} else {
			client_close(c);
		}
	}
	backend_map_clear(&p->map);
	if (p->table)
		route_table_unref(p->table);
	reaper_cb(-1, 0, p);
	while (p->free_reqs) {
		struct request *r = p->free_reqs;

		p->free_reqs = r->next_free;
		free(r->head.hdrs);
		free(r->rhead.hdrs);
		evbuffer_free(r->head_out);
		free(r->target);
		free(r);
	}
	if (p->scratch)
		evbuffer_free(p->scratch);
	if (p->reaper)
		event_free(p->reaper);
	if (p->accept_timer)
		event_free(p->accept_timer);
	free(p);
}
