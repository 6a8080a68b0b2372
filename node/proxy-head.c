/*
 * HTTP/1.1 request heads from the client's input: finding where a head
 * ends, refusing garbage at its first bytes, bounding slow or oversized
 * heads, and pausing reading while the client does not read its
 * answers. A complete head goes to request_route_h1 (proxy-request.c).
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "node/stream.h"

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
void client_reject(struct client *c, int status, const char *code, const char *why)
{
	struct request *r = request_new(c);

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
		r = request_new(c);
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
		request_route_h1(r, end);
	}
	/* Half-closed, and every request it sent completely is answered:
	 * nothing more can come. */
	if (c->state == CS_IDLE && c->io.eof && !c->out_full)
		client_close_after_flush(c);
	else if (c->state == CS_IDLE)
		client_read_pipelined(c);
	c->processing = false;
}
