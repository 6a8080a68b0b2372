/*
 * The test backend's answers: what each request path sends back (see
 * backend.c for the list and for why the backend exists). Everything here
 * runs outside llhttp's callbacks, once a request has been read whole;
 * answers that take time (slow, stream, big) leave the connection in
 * C_ANSWERING and call conn_answer_done() when their last byte is queued.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/backend.h"

static const char *reason_phrase(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* The value of query argument NAME in URL as a number, or DEF. */
long answer_query_long(const char *url, const char *name, long def)
{
	const char *q = strchr(url, '?');
	size_t n = strlen(name);
	while (q) {
		q++;
		if (strncmp(q, name, n) == 0 && q[n] == '=') {
			char *end;
			long v = strtol(q + n + 1, &end, 10);
			return end == q + n + 1 ? def : v;
		}
		q = strchr(q, '&');
	}
	return def;
}

enum route answer_route_of(const char *url)
{
	static const struct { const char *path; enum route r; } table[] = {
		{ "/echo", R_ECHO }, { "/slow", R_SLOW }, { "/close", R_CLOSE },
		{ "/stream", R_STREAM }, { "/big", R_BIG }, { "/status", R_STATUS },
		{ "/upload", R_UPLOAD }, { "/hop", R_HOP }, { "/ws", R_WS },
		{ "/badresp", R_BADRESP }, { "/continues", R_CONTINUES },
		{ "/upgrade", R_UPGRADE },
	};
	/* Absolute-form targets are matched on their path. */
	const char *p = url;
	if (strncasecmp(p, "http://", 7) == 0) {
		p = strchr(p + 7, '/');
		if (!p)
			return R_PLAIN;
	}
	size_t len = strcspn(p, "?");
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strlen(table[i].path) == len && strncmp(p, table[i].path, len) == 0)
			return table[i].r;
	return R_PLAIN;
}

const char *answer_evbuf_str(struct evbuffer *b)
{
	evbuffer_add(b, "", 1);
	const char *s = (const char *)evbuffer_pullup(b, -1);
	return s ? s : "";
}

/* Writes a status line and the headers every answer carries. */
static void write_head(struct conn *c, int code, const char *extra, long long length)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nX-Backend-Id: %s\r\n", code,
			    reason_phrase(code), c->srv->id);
	if (length >= 0)
		evbuffer_add_printf(out, "Content-Length: %lld\r\n", length);
	if (!c->keep_alive)
		evbuffer_add(out, "Connection: close\r\n", 19);
	else if (c->http10)
		evbuffer_add(out, "Connection: keep-alive\r\n", 24);
	if (extra)
		evbuffer_add(out, extra, strlen(extra));
	evbuffer_add(out, "\r\n", 2);
}

void answer_text(struct conn *c, int code, const char *extra, const char *fmt, ...)
{
	char body[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(body))
		n = sizeof(body) - 1;
	bool bodyless = code == 204 || code == 304 || (code >= 100 && code < 200) ||
			strcmp(c->method, "HEAD") == 0;
	write_head(c, code, extra ? extra : "Content-Type: text/plain\r\n",
		   code == 204 || code == 304 ? -1 : n);
	if (!bodyless)
		evbuffer_add(bufferevent_get_output(c->bev), body, n);
	conn_answer_done(c);
}

static void answer_echo(struct conn *c)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		c->state = C_CLOSING;
		return;
	}
	evbuffer_add_printf(b, "backend=%s\nmethod=%s\ntarget=%s\nversion=HTTP/%d.%d\npeer=%s\n",
			    c->srv->id, c->method, answer_evbuf_str(c->url),
			    c->parser.http_major, c->parser.http_minor, c->peer);
	evbuffer_add_buffer(b, c->headers);
	evbuffer_add_printf(b, "body-bytes=%llu\n\n", (unsigned long long)c->body_bytes);
	evbuffer_add_buffer(b, c->body);
	write_head(c, 200, "Content-Type: text/plain\r\n", (long long)evbuffer_get_length(b));
	evbuffer_add_buffer(bufferevent_get_output(c->bev), b);
	evbuffer_free(b);
	conn_answer_done(c);
}

static void answer_upload(struct conn *c)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	if (!c->sha || EVP_DigestFinal_ex(c->sha, md, &mdlen) != 1) {
		answer_text(c, 500, NULL, "digest failed %s\n", c->srv->id);
		return;
	}
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * mdlen] = '\0';
	answer_text(c, 200, NULL, "bytes=%llu sha256=%s backend=%s\n",
		    (unsigned long long)c->body_bytes, hex, c->srv->id);
}

/* Tops up the output with numbered lines until the mark or the end. */
void answer_big_fill(struct conn *c)
{
	static char piece[BIG_PIECE];
	struct evbuffer *out = bufferevent_get_output(c->bev);
	while (c->big_left > 0 && evbuffer_get_length(out) < OUT_FILL_MARK) {
		size_t n = c->big_left < BIG_PIECE ? (size_t)c->big_left : BIG_PIECE;
		/* Offsets stay multiples of 16, so every line starts whole. */
		for (size_t i = 0; i < BIG_PIECE; i += 16) {
			char line[17];
			snprintf(line, sizeof(line), "%015llx\n",
				 (unsigned long long)(c->big_off + i));
			memcpy(piece + i, line, 16);
		}
		evbuffer_add(out, piece, n);
		c->big_left -= n;
		c->big_off += n;
	}
	if (c->big_left == 0)
		conn_answer_done(c);
}

/* Tops up the output with interim 100 answers until the mark or the
 * last one, then sends the final answer. */
void answer_continues_fill(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct evbuffer *out = bufferevent_get_output(c->bev);
	while (c->big_left > 0 && evbuffer_get_length(out) < OUT_FILL_MARK) {
		evbuffer_add(out, cont, sizeof(cont) - 1);
		c->big_left--;
	}
	if (c->big_left == 0)
		answer_text(c, 200, NULL, "continues %s\n", c->srv->id);
}

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char chunk[128];
	int n = snprintf(chunk, sizeof(chunk), "chunk %ld of %s\n", c->stream_index, c->srv->id);
	if (c->chunked_out)
		evbuffer_add_printf(out, "%x\r\n%s\r\n", n, chunk);
	else
		evbuffer_add(out, chunk, n);
	c->stream_index++;
	if (--c->stream_left > 0) {
		struct timeval tv = { c->stream_delay_ms / 1000, (c->stream_delay_ms % 1000) * 1000 };
		evtimer_add(c->timer, &tv);
		return;
	}
	if (c->chunked_out)
		evbuffer_add(out, "0\r\n\r\n", 5);
	conn_answer_done(c);
	if (c->state == C_READING)
		conn_parse(c);
}

static void slow_fire(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	answer_text(c, 200, NULL, "slow %s\n", c->srv->id);
	/* When the delayed answer went out: a test can wait for it. */
	if (!c->srv->quiet)
		printf("slow-answered %s %llu\n", c->srv->id, c->id);
	if (c->state == C_READING)
		conn_parse(c);
}

static void arm_timer(struct conn *c, long ms, event_callback_fn fn)
{
	if (ms < 0)
		ms = 0;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	if (c->timer)
		event_free(c->timer);
	c->timer = evtimer_new(c->srv->base, fn, c);
	if (!c->timer || evtimer_add(c->timer, &tv) != 0) {
		c->state = C_CLOSING;
		return;
	}
	c->state = C_ANSWERING;
}

/* Starts the answer to the request just read; called outside llhttp. */
void answer_dispatch(struct conn *c)
{
	const char *url = answer_evbuf_str(c->url);
	c->srv->requests++;
	if (!c->srv->quiet)
		printf("req %s %llu %s %s\n", c->srv->id, c->id, c->method, url);

	switch (c->route) {
	case R_ECHO:
		answer_echo(c);
		break;
	case R_SLOW:
		arm_timer(c, answer_query_long(url, "ms", 1000), slow_fire);
		break;
	case R_CLOSE:
		c->state = C_CLOSING;
		evbuffer_drain(bufferevent_get_output(c->bev), (size_t)-1);
		break;
	case R_STREAM: {
		c->stream_left = answer_query_long(url, "chunks", 5);
		c->stream_delay_ms = answer_query_long(url, "delay", 100);
		c->stream_index = 0;
		if (c->stream_left < 1)
			c->stream_left = 1;
		c->chunked_out = !c->http10;
		if (c->http10)
			c->keep_alive = false;
		write_head(c, 200, c->chunked_out ?
			   "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n" :
			   "Content-Type: text/plain\r\n", -1);
		arm_timer(c, 0, stream_tick);
		break;
	}
	case R_BIG: {
		long long n = answer_query_long(url, "bytes", 1048576);
		if (n < 0)
			n = 0;
		/* HEAD: the length of the body a GET would get, and no body. */
		c->big_left = strcmp(c->method, "HEAD") == 0 ? 0 : (uint64_t)n;
		c->big_off = 0;
		write_head(c, 200, "Content-Type: application/octet-stream\r\n", n);
		c->state = C_ANSWERING;
		answer_big_fill(c);
		break;
	}
	case R_STATUS: {
		long code = answer_query_long(url, "code", 200);
		if (code < 200 || code > 999)
			code = 200;
		answer_text(c, (int)code, NULL, "status %ld %s\n", code, c->srv->id);
		break;
	}
	case R_UPLOAD:
		answer_upload(c);
		break;
	case R_HOP:
		answer_text(c, 200,
			    "Content-Type: text/plain\r\nConnection: X-Hop-Secret\r\n"
			    "X-Hop-Secret: must-not-pass\r\nKeep-Alive: timeout=30\r\n"
			    "Proxy-Authenticate: Basic realm=\"hop\"\r\nX-End-To-End: kept\r\n",
			    "hop %s\n", c->srv->id);
		break;
	case R_BADRESP: {
		static const struct { const char *kind, *bytes; } bad[] = {
			{ "clte", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
			{ "dupcl", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				   "Content-Length: 7\r\n\r\nbadrespXX" },
			{ "garbage", "\x16\x03\x01 this is not http\r\n\r\n" },
			{ "short", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nbadresp-short" },
			{ "badchunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				      "8\r\nbadresp1\r\nzz\r\n\r\n" },
			{ "chunkcr", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				     "8\rXbadresp1\r\n0\r\n\r\n" },
			{ "chunkcrlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				       "8\r\nbadresp1XX0\r\n\r\n" },
			{ "longext", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8;" },
			{ "trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				      "8\r\nbadresp1\r\n0\r\n" },
			{ "status000", "HTTP/1.1 000 Zero\r\nContent-Length: 8\r\n\r\nbadresp1" },
			{ "status099", "HTTP/1.1 099 Low\r\nContent-Length: 8\r\n\r\nbadresp1" },
			{ "status600", "HTTP/1.1 600 High\r\nContent-Length: 8\r\n\r\nbadresp1" },
			{ "status999", "HTTP/1.1 999 High\r\nContent-Length: 8\r\n\r\nbadresp1" },
			{ "reasonctl", "HTTP/1.1 200 \x1b[31mRed\x07\r\nContent-Length: 8\r\n\r\nbadresp1" },
			/* Well-formed: trailers for HTTP/2 clients to get. */
			{ "trailed", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				     "8\r\nbadresp1\r\n0\r\nGrpc-Status: 0\r\nGrpc-Message:  all ok \r\n"
				     "Keep-Alive: 5\r\n\r\n" },
		};
		const char *q = strstr(url, "kind=");
		const char *bytes = bad[0].bytes;
		for (size_t i = 0; q && i < sizeof(bad) / sizeof(bad[0]); i++)
			if (strncmp(q + 5, bad[i].kind, strlen(bad[i].kind)) == 0 &&
			    (q[5 + strlen(bad[i].kind)] == '\0' || q[5 + strlen(bad[i].kind)] == '&'))
				bytes = bad[i].bytes;
		struct evbuffer *out = bufferevent_get_output(c->bev);
		evbuffer_add(out, bytes, strlen(bytes));
		/* 200 KB of chunk extension, or 4,000 trailer fields. */
		if (bytes == bad[7].bytes) {
			for (int i = 0; i < 200 * 1024 / 16; i++)
				evbuffer_add(out, "ext=aaaaaaaaaaa;", 16);
			evbuffer_add_printf(out, "x\r\nbadresp1\r\n0\r\n\r\n");
		} else if (bytes == bad[8].bytes) {
			for (int i = 0; i < 4000; i++)
				evbuffer_add_printf(out, "X-Trailer-%d: t\r\n", i);
			evbuffer_add(out, "\r\n", 2);
		}
		c->state = C_CLOSING;
		break;
	}
	case R_CONTINUES:
		c->big_left = (uint64_t)answer_query_long(url, "n", 10);
		c->state = C_ANSWERING;
		answer_continues_fill(c);
		break;
	case R_UPGRADE:
		/* Switches to whatever was asked (or, with force=1, even when
		 * nothing was) and then goes on reading HTTP/1.1 requests: an
		 * upgraded protocol that carries requests, as h2c does. */
		if (c->upgrade || answer_query_long(url, "force", 0) == 1) {
			evbuffer_add_printf(bufferevent_get_output(c->bev),
					    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
					    "Connection: Upgrade\r\nX-Backend-Id: %s\r\n\r\n", c->srv->id);
			conn_answer_done(c);
		} else {
			answer_text(c, 200, NULL, "no upgrade %s\n", c->srv->id);
		}
		break;
	case R_WS:
		/* Reached only for a /ws request without Upgrade. */
		answer_text(c, 426, NULL, "upgrade required %s\n", c->srv->id);
		break;
	case R_PLAIN:
	default:
		answer_text(c, 200, NULL, "ok %s\n", c->srv->id);
		break;
	}
}
