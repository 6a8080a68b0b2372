/*
 * The response side of a proxied request: reading the backend's head
 * (searched in place as it arrives), validating it, writing it again for
 * the client with our framing, passing interim 1xx answers to HTTP/1.1
 * clients, handing a 101 to tunnel.c, and moving the body (by length,
 * chunked re-framed or de-chunked for HTTP/1.0 clients, or until close)
 * as far as the client's output allows, pausing the backend past the
 * high mark until the client drains.
 */
#include <config.h>

#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "node/stream.h"
#include "node/upstream-h2c.h"

static void response_complete(struct request *r)
{
	struct upstream *up = r->up;

	if (up && evbuffer_get_length(bufferevent_get_input(up->bev)) > 0)
		r->resp_reusable = false;      /* bytes past the response: unsafe */
	if (!r->req_body_done) {
		/* Answered before the body was all sent: neither stream is
		 * framed any more. */
		r->resp_reusable = false;
		r->keep_alive = false;
	}
	UP_OPS(r)->request_finish(r);
}

void upstream_response_fail(struct request *r, int status, const char *code, const char *msg)
{
	r->resp_reusable = false;
	UP_OPS(r)->request_fail(r, status, code, msg);
}

/* ---- HTTP/1.1's sink: today's bytes in the client's output ------------ */

/* Writes a response head into the client's output (gathered first in the
 * proxy's reusable head buffer) and counts its bytes. False on allocation
 * failure. */
static bool h1_head(struct request *r, const struct fwd_response *f)
{
	struct hbuf *hb = &r->c->p->resp_head;

	if (!headers_write_response(hb, &r->rhead, f) ||
	    evbuffer_add(bufferevent_get_output(r->c->bev), hb->data, hb->len) != 0)
		return false;
	r->bytes_out += hb->len;
	return true;
}

static struct evbuffer *h1_body(struct request *r)
{
	return bufferevent_get_output(r->c->bev);
}

static void h1_push(struct client *c)
{
	if (c->state != CS_DEAD)
		conn_flush(&c->io);
}

static bool h1_full(const struct request *r)
{
	return evbuffer_get_length(bufferevent_get_output(r->c->bev)) >= r->c->p->cfg.buffer_high_bytes;
}

/* The last chunk, with the trailers, of a body re-chunked for the client
 * (names as the backend sent them: HTTP/2 ones are lower case). A body
 * framed otherwise has no place for them. */
static bool h1_trailers(struct request *r, const struct http_hdr *h, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(r->c->bev);
	size_t before = evbuffer_get_length(out);

	if (r->resp_framing != FRAME_CHUNKED || r->http10 || r->dechunk_raw)
		return true;
	if (evbuffer_add(out, "0\r\n", 3) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (headers_is_hop(h[i].kind, false) || h[i].kind == HDR_HOST)
			continue;
		if (evbuffer_add(out, h[i].name, h[i].nlen) != 0 || evbuffer_add(out, ": ", 2) != 0 ||
		    evbuffer_add(out, h[i].value, h[i].vlen) != 0 || evbuffer_add(out, "\r\n", 2) != 0)
			return false;
	}
	if (evbuffer_add(out, "\r\n", 2) != 0)
		return false;
	r->bytes_out += evbuffer_get_length(out) - before;
	return true;
}

const struct resp_sink resp_sink_h1 = {
	.head = h1_head,
	.trailers = h1_trailers,
	.body = h1_body,
	.push = h1_push,
	.full = h1_full,
	.answer = request_answer_h1,
	.framed = true,
	.interim = true,
};

/* ---- the response ------------------------------------------------------ */

/* Writes the response head for the client and decides the framing. */
static bool response_head(struct request *r, size_t end)
{
	struct client *c = r->c;
	struct upstream *up = r->up;
	struct http_head *h = &r->rhead;
	struct fwd_response f;
	bool has_body = http_response_has_body(h, r->head_request);

	memset(&f, 0, sizeof(f));
	f.client_http10 = r->http10;
	f.request_id = r->rid;
	f.request_id_len = r->rid_len;
	if (r->as->app->config.sticky_cookie && r->be && r->sticky != r->be) {
		f.sticky_cookie = r->as->app->config.sticky_cookie;
		f.sticky_value = r->be->id;
	}
	if (!has_body) {
		r->resp_framing = FRAME_NONE;
		/* A HEAD or 304 answer states the length of what it stands for;
		 * 1xx and 204 must not carry one at all. */
		bool may_state = h->status >= 200 && h->status != 204;

		if (h->has_content_length && may_state) {
			f.framing = FRAME_LENGTH;
			f.content_length = h->content_length;
		} else if (h->chunked && !r->http10 && may_state) {
			f.framing = FRAME_CHUNKED;
		}
	} else if (h->chunked) {
		r->resp_framing = FRAME_CHUNKED;
		r->dechunk_raw = r->http10 || !r->sink->framed;
		f.framing = r->http10 ? FRAME_CLOSE : FRAME_CHUNKED;
	} else if (h->has_content_length) {
		r->resp_framing = FRAME_LENGTH;
		r->resp_remaining = h->content_length;
		f.framing = FRAME_LENGTH;
		f.content_length = h->content_length;
	} else {
		r->resp_framing = FRAME_CLOSE;
		f.framing = FRAME_CLOSE;
	}
	if (f.framing == FRAME_CLOSE || !r->req_body_done)
		r->keep_alive = false;
	f.keep_alive = r->keep_alive && !c->p->draining;
	/* An HTTP/1.0 response with Transfer-Encoding is read, then its
	 * connection closed (RFC 9112 6.1). */
	r->resp_reusable = !h->conn_close && (h->minor >= 1 || h->conn_keep_alive) &&
			   r->resp_framing != FRAME_CLOSE && !(h->minor == 0 && h->chunked);
	if (!r->sink->head(r, &f))
		return false;
	evbuffer_drain(bufferevent_get_input(up->bev), end);
	r->status = h->status;
	r->resp_head_done = true;
	UP_OPS(r)->request_set_state(r, RQ_RESPONDING);
	return true;
}

/* An interim 1xx (100 Continue): passed on to HTTP/1.1 clients only. */
static bool response_interim(struct request *r, size_t end)
{
	struct fwd_response f;

	memset(&f, 0, sizeof(f));
	f.keep_alive = true;
	f.framing = FRAME_NONE;
	if (r->sink->interim && !r->http10 && !r->sink->head(r, &f))
		return false;
	evbuffer_drain(bufferevent_get_input(r->up->bev), end);
	/* resp_started stays set: the app has seen the request, so it is
	 * never sent again, even though the final response is to come. */
	return true;
}

struct upgrade_seen {
	const char *allowed;
	bool any, other;
};

static void upgrade_seen_token(const char *t, size_t n, void *arg)
{
	struct upgrade_seen *u = arg;

	if (http_upgrade_token_allowed(t, n, u->allowed))
		u->any = true;
	else
		u->other = true;
}

/* The protocols a 101 names (its Upgrade header, which it must send) are
 * all ones we tunnel. */
static bool response_upgrade_allowed(const struct request *r)
{
	struct upgrade_seen u = {r->c->p->upgrade_protocols, false, false};
	unsigned i;

	for (i = 0; i < r->rhead.n_hdrs; i++)
		if (r->rhead.hdrs[i].kind == HDR_UPGRADE)
			http_upgrade_tokens(&r->rhead.hdrs[i], upgrade_seen_token, &u);
	return u.any && !u.other;
}

static void response_upgrade(struct request *r, size_t end)
{
	struct client *c = r->c;
	struct upstream *up = r->up;
	struct fwd_response f;

	memset(&f, 0, sizeof(f));
	f.tunnel = true;
	f.keep_alive = true;
	f.request_id = r->rid;
	f.request_id_len = r->rid_len;
	if (!r->sink->head(r, &f)) {
		upstream_response_fail(r, 502, "backend_failed", "out of memory");
		return;
	}
	evbuffer_drain(bufferevent_get_input(up->bev), end);
	r->status = 101;
	r->resp_head_done = true;
	backend_record_success(r->be);
	/* The connection leaves the request for the tunnel. */
	r->up = NULL;
	up->req = NULL;
	if (!c->p->uops->tunnel_start(c, up)) {
		upstream_close(up);
		c->p->uops->client_close(c);   /* finishes the request too */
		return;
	}
	UP_OPS(r)->request_finish(r);
}

/*
 * A 101 to an HTTP/2 extended CONNECT (RFC 8441): the stream itself is the
 * tunnel. The client gets a 200, then the backend's bytes as the body
 * until it closes, and the stream's DATA goes to the backend as it is
 * (FRAME_CLOSE both ways). The connection is the request's to the end,
 * never pooled. False when the head could not be written.
 */
static bool response_upgrade_stream(struct request *r, size_t end)
{
	struct fwd_response f;

	memset(&f, 0, sizeof(f));
	f.request_id = r->rid;
	f.request_id_len = r->rid_len;
	f.framing = FRAME_CLOSE;
	r->rhead.status = 200;
	r->resp_framing = FRAME_CLOSE;
	r->resp_reusable = false;
	if (!r->sink->head(r, &f))
		return false;
	evbuffer_drain(bufferevent_get_input(r->up->bev), end);
	r->status = 101;   /* logged as the tunnel it is */
	r->resp_head_done = true;
	backend_record_success(r->be);
	conn_read_timeout(&r->up->io, r->c->p->cfg.tunnel_idle_timeout_ms);
	UP_OPS(r)->request_set_state(r, RQ_RESPONDING);
	return true;
}

/* Moves what the backend sent toward the client, as far as the client's
 * output allows. */
static void response_read_some(struct request *r)
{
	struct proxy *p = r->c->p;
	struct upstream *up = r->up;
	struct evbuffer *in = bufferevent_get_input(up->bev);
	struct evbuffer *out = r->sink->body(r);

	while (!r->resp_head_done) {
		size_t len = evbuffer_get_length(in), end;
		const char *data, *why = NULL;

		if (len == 0)
			return;
		r->resp_started = true;
		{
			/* Search only what was not searched yet, in place. */
			struct evbuffer_ptr from, at;
			size_t start = r->resp_scanned > 3 ? r->resp_scanned - 3 : 0;

			evbuffer_ptr_set(in, &from, start, EVBUFFER_PTR_SET);
			at = evbuffer_search(in, "\r\n\r\n", 4, &from);
			end = at.pos < 0 ? 0 : (size_t)at.pos + 4;
		}
		if (end > p->lim.max_head_bytes || (end == 0 && len >= p->lim.max_head_bytes)) {
			upstream_response_fail(r, 502, "backend_failed", "response head too large");
			return;
		}
		if (end == 0) {
			r->resp_scanned = (uint32_t)len;
			return;
		}
		r->resp_scanned = 0;
		data = (const char *)evbuffer_pullup(in, (ev_ssize_t)end);
		if (data == NULL) {
			upstream_response_fail(r, 502, "backend_failed", "out of memory");
			return;
		}
		if (http_parse_response(&r->rparser, data, end, false, &p->lim, r->head_request,
					&r->rhead, &why) != HTTP_OK) {
			rlog_warn(r, "invalid response from %s: %s", up->be->name, why ? why : "?");
			upstream_response_fail(r, 502, "backend_failed", "invalid response from the backend");
			return;
		}
		if (r->rhead.status == 101) {
			/* A tunnel only answers an upgrade we forwarded, to a
			 * protocol we forwarded: anything else would carry
			 * requests past routing and the access log. */
			if (!r->upgrade || !response_upgrade_allowed(r)) {
				rlog_warn(r, "101 from %s %s", up->be->name,
					  r->upgrade ? "to a protocol we did not forward"
						     : "to a request that asked for no upgrade");
				upstream_response_fail(r, 502, "backend_failed", "unexpected 101 from the backend");
				return;
			}
			if (!r->sink->framed) {
				if (!response_upgrade_stream(r, end)) {
					upstream_response_fail(r, 502, "backend_failed", "out of memory");
					return;
				}
				continue;
			}
			response_upgrade(r, end);
			return;
		}
		if (r->rhead.status < 200) {
			if (!response_interim(r, end)) {
				upstream_response_fail(r, 502, "backend_failed", "out of memory");
				return;
			}
			/* An app may send any number of them: the client's
			 * output bounds them as it bounds a body. */
			if (r->sink->full(r)) {
				r->sink->push(r->c);
				r->resp_paused = true;
				conn_read_off(&up->io);
				return;
			}
			continue;
		}
		if (!response_head(r, end)) {
			upstream_response_fail(r, 502, "backend_failed", "out of memory");
			return;
		}
		backend_record_success(up->be);
		if (r->resp_framing == FRAME_NONE ||
		    (r->resp_framing == FRAME_LENGTH && r->resp_remaining == 0)) {
			response_complete(r);
			return;
		}
	}

	while (evbuffer_get_length(in) > 0) {
		size_t len = evbuffer_get_length(in);

		if (r->resp_framing == FRAME_LENGTH) {
			size_t n = len < r->resp_remaining ? len : (size_t)r->resp_remaining;
			int moved = evbuffer_remove_buffer(in, out, n);

			if (moved < 0) {
				upstream_response_fail(r, 502, "backend_failed", "out of memory");
				return;
			}
			r->resp_remaining -= (size_t)moved;
			r->bytes_out += (size_t)moved;
			if (r->resp_remaining == 0) {
				response_complete(r);
				return;
			}
		} else if (r->resp_framing == FRAME_CHUNKED) {
			size_t used, dlen;
			bool done;
			const char *why = NULL;

			if (!http_body_move(&r->rparser, &r->rchunks, &p->lim, in, out, p->scratch,
					    !r->dechunk_raw, &used, &dlen, &done, &why)) {
				rlog_warn(r, "bad chunked body from %s: %s", up->be->name, why ? why : "?");
				upstream_response_fail(r, 502, "backend_failed", "invalid chunked body");
				return;
			}
			r->bytes_out += dlen;
			if (done) {
				response_complete(r);
				return;
			}
			if (used == 0)
				break;
		} else {
			r->bytes_out += len;
			evbuffer_add_buffer(out, in);
		}
	}
	r->sink->push(r->c);
	if (r->sink->full(r)) {
		/* The client reads slower than the backend writes. */
		r->resp_paused = true;
		conn_read_off(&up->io);
	}
}

void upstream_read_response(struct request *r)
{
	struct client *c = r->c;
	const struct resp_sink *sink = r->sink;

	response_read_some(r);
	/* Whatever path it took (interim 100, error, end), send it now: the
	 * request may be gone, its client and sink are not. */
	sink->push(c);
}

void upstream_resume_response(struct request *r)
{
	struct upstream *up = r->up;

	if (r->h2c != NULL) {
		upstream_h2c_resume(r);
		return;
	}
	if (up == NULL || !r->resp_paused || r->sink->full(r))
		return;
	r->resp_paused = false;
	conn_read_on(&up->io);
	upstream_read_response(r);
}
