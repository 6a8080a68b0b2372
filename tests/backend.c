/*
 * The test backend: a small single-threaded HTTP/1.1 server that the
 * process-level tests and the benchmark put behind zkrouterd (and behind
 * HAProxy and nginx in the benchmark). It frames requests with llhttp, so
 * keep-alive, pipelining (answered strictly in order), HTTP/1.0 and chunked
 * request bodies are handled the way a real app server would.
 *
 * What it does is chosen by the request path:
 *   /echo            method, target, peer, every header and the body, as text
 *   /slow?ms=N       the plain answer after N ms
 *   /close           closes the connection without answering
 *   /stream?chunks=N&delay=MS   a chunked answer, one chunk every MS
 *   /big?bytes=N     an N-byte body of numbered 16-byte lines, sent with
 *                    backpressure (never held whole in memory)
 *   /status?code=N   an answer with that status
 *   /upload          streams any body, answers with its size and SHA-256;
 *                    ?rate=B reads it at B bytes/s (a slow app, to test the
 *                    proxy's backpressure towards its client)
 *   /hop             an answer carrying hop-by-hop headers a proxy must drop
 *   /badresp?kind=K  a broken answer, then close: K is clte (Content-Length
 *                    with chunked), dupcl (two lengths), garbage (not HTTP),
 *                    short (fewer body bytes than announced), badchunk
 *                    (a valid chunk, then an invalid chunk size), chunkcr
 *                    (a bare CR after the chunk size), chunkcrlf (two
 *                    bytes in place of the CRLF after chunk data), longext
 *                    (a 200 KB chunk extension), trailers (4,000 of them),
 *                    statusN (status N: 000, 099, 600, 999), reasonctl
 *                    (control bytes in the reason phrase)
 *   /ws              101 Switching Protocols (with the Sec-WebSocket-Accept
 *                    of a Sec-WebSocket-Key), then echoes every byte back
 *   /continues?n=N   N interim "100 Continue" answers (with backpressure),
 *                    then the plain answer
 *   /upgrade[?force=1]  101 to any Upgrade (or, with force, to none), then
 *                    goes on reading HTTP/1.1 requests on the connection,
 *                    the way an upgraded protocol carrying requests (h2c)
 *                    would; without an Upgrade, "no upgrade <id>"
 *   anything else    a small fast answer ("ok <id>"), for the benchmark
 * Every answer carries `X-Backend-Id: <id>` and names the id in its body, so
 * tests can tell instances apart. Each request is logged on stdout as
 * "req <id> <conn> <method> <target>" (unless --quiet), parse errors as
 * "parse-error ...", so a test can prove what reached the backend and what
 * did not. `--idle-close MS` closes keep-alive connections idle for MS, the
 * way app servers retire pooled connections under a proxy. `--idle-drop MS`
 * is the same race made certain: a connection idle for MS stays open, but
 * the next request on it is dropped (read, then the connection closed with
 * no answer), as when a request crosses the server's close on the wire.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "tests/backend.h"

static void conn_free(struct conn *c);

static void idle_fire(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	if (c->state != C_READING || c->in_message) {
		struct timeval tv = { c->srv->idle_close_ms / 1000, (c->srv->idle_close_ms % 1000) * 1000 };
		evtimer_add(c->idle, &tv);
		return;
	}
	if (c->srv->idle_drop) {
		c->stale = true;
		return;
	}
	if (!c->srv->quiet)
		printf("idle-close %s %llu\n", c->srv->id, c->id);
	conn_free(c);
}

static void idle_rearm(struct conn *c)
{
	if (!c->idle)
		return;
	struct timeval tv = { c->srv->idle_close_ms / 1000, (c->srv->idle_close_ms % 1000) * 1000 };
	evtimer_add(c->idle, &tv);
}

/* An answer has been queued whole (or its last byte): next request or close. */
void conn_answer_done(struct conn *c)
{
	if (c->state == C_CLOSING)
		return;
	c->state = c->keep_alive ? C_READING : C_CLOSING;
	if (c->state == C_READING)
		idle_rearm(c);
}

static void request_reset(struct conn *c)
{
	evbuffer_drain(c->url, (size_t)-1);
	evbuffer_drain(c->hname, (size_t)-1);
	evbuffer_drain(c->hvalue, (size_t)-1);
	evbuffer_drain(c->headers, (size_t)-1);
	evbuffer_drain(c->body, (size_t)-1);
	c->in_value = false;
	c->expect_continue = false;
	c->ws_accept[0] = '\0';
	c->body_bytes = 0;
	c->route = R_PLAIN;
	c->method[0] = '\0';
}

/* ---- llhttp callbacks: they only record; answers start after execute. */

static int on_message_begin(llhttp_t *p)
{
	struct conn *c = p->data;
	request_reset(c);
	c->in_message = true;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	return evbuffer_add(c->url, at, len) == 0 ? 0 : -1;
}

/*
 * The Sec-WebSocket-Accept a WebSocket server answers to a key (RFC 6455
 * 4.2.2): proxies that turn an HTTP/2 extended CONNECT into an HTTP/1.1
 * Upgrade make up a key and check the answer (HAProxy does).
 */
static void ws_accept_of(struct conn *c, const char *key)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char in[128];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	c->ws_accept[0] = '\0';
	int n = snprintf(in, sizeof(in), "%s%s", key, guid);
	if (n < 0 || (size_t)n >= sizeof(in) ||
	    EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return;
	/* 20 bytes are 28 characters of base64, and its NUL. */
	EVP_EncodeBlock((unsigned char *)c->ws_accept, md, 20);
}

static void header_commit(struct conn *c)
{
	const char *name = answer_evbuf_str(c->hname);
	const char *value = answer_evbuf_str(c->hvalue);
	if (strcasecmp(name, "expect") == 0 && strcasecmp(value, "100-continue") == 0)
		c->expect_continue = true;
	if (strcasecmp(name, "sec-websocket-key") == 0)
		ws_accept_of(c, value);
	evbuffer_add_printf(c->headers, "h: %s: %s\n", name, value);
	evbuffer_drain(c->hname, (size_t)-1);
	evbuffer_drain(c->hvalue, (size_t)-1);
	c->in_value = false;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	if (c->in_value)
		header_commit(c);
	return evbuffer_add(c->hname, at, len) == 0 ? 0 : -1;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	c->in_value = true;
	return evbuffer_add(c->hvalue, at, len) == 0 ? 0 : -1;
}

static int on_headers_complete(llhttp_t *p)
{
	struct conn *c = p->data;
	if (c->in_value || evbuffer_get_length(c->hname) > 0)
		header_commit(c);
	snprintf(c->method, sizeof(c->method), "%s", llhttp_method_name(llhttp_get_method(p)));
	c->route = answer_route_of(answer_evbuf_str(c->url));
	c->http10 = p->http_major == 1 && p->http_minor == 0;
	c->upgrade = p->upgrade;
	c->upload_rate = c->route == R_UPLOAD ? answer_query_long(answer_evbuf_str(c->url), "rate", 0) : 0;
	clock_gettime(CLOCK_MONOTONIC, &c->body_start);
	if (c->route == R_UPLOAD) {
		if (!c->sha)
			c->sha = EVP_MD_CTX_new();
		if (!c->sha || EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL) != 1)
			return -1;
	}
	/* The client waits for this before sending the body. */
	if (c->expect_continue && !c->http10 && c->route != R_CLOSE)
		evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	c->body_bytes += len;
	if (c->route == R_UPLOAD)
		return EVP_DigestUpdate(c->sha, at, len) == 1 ? 0 : -1;
	if (c->route == R_ECHO && evbuffer_get_length(c->body) + len <= ECHO_BODY_MAX)
		return evbuffer_add(c->body, at, len) == 0 ? 0 : -1;
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct conn *c = p->data;
	c->in_message = false;
	c->message_done = true;
	c->keep_alive = llhttp_should_keep_alive(p);
	/* An upgrade ends parsing by itself (HPE_PAUSED_UPGRADE). */
	return p->upgrade ? 0 : HPE_PAUSED;
}

static void start_tunnel(struct conn *c)
{
	c->srv->requests++;
	if (!c->srv->quiet)
		printf("req %s %llu %s %s\nupgrade %s %llu\n", c->srv->id, c->id, c->method,
		       answer_evbuf_str(c->url), c->srv->id, c->id);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			    "Connection: Upgrade\r\nX-Backend-Id: %s\r\n%s%s%s\r\n", c->srv->id,
			    c->ws_accept[0] ? "Sec-WebSocket-Accept: " : "", c->ws_accept,
			    c->ws_accept[0] ? "\r\n" : "");
	c->state = C_TUNNEL;
	if (c->idle)
		evtimer_del(c->idle);
	/* Bytes pipelined behind the upgrade request are tunnel data. */
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_add_buffer(bufferevent_get_output(c->bev), in);
}

/*
 * Feeds buffered input to llhttp until a request is complete and its answer
 * has to wait, the input runs out, or the connection must close. Returns
 * false when the connection was freed.
 */
bool conn_parse(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	while (c->state == C_READING && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		const char *base = v.iov_base;
		c->message_done = false;
		enum llhttp_errno err = llhttp_execute(&c->parser, base, v.iov_len);
		size_t used = v.iov_len;
		if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
			used = (size_t)(llhttp_get_error_pos(&c->parser) - base);
		} else if (err != HPE_OK) {
			if (!c->srv->quiet)
				printf("parse-error %s %llu %s: %s\n", c->srv->id, c->id,
				       llhttp_errno_name(err), llhttp_get_error_reason(&c->parser));
			evbuffer_drain(in, (size_t)-1);
			c->keep_alive = false;
			c->method[0] = '\0';
			answer_text(c, 400, NULL, "bad request %s\n", c->srv->id);
			c->state = C_CLOSING;
			break;
		}
		evbuffer_drain(in, used);
		if (err == HPE_PAUSED_UPGRADE) {
			if (c->route == R_WS) {
				start_tunnel(c);
				break;
			}
			llhttp_resume_after_upgrade(&c->parser);
		} else if (err == HPE_PAUSED) {
			llhttp_resume(&c->parser);
		}
		if (c->message_done) {
			c->message_done = false;
			answer_dispatch(c);
		}
	}
	if (c->state == C_READING && c->peer_eof && !c->in_message)
		c->state = C_CLOSING;
	if (c->state == C_CLOSING && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_free(c);
		return false;
	}
	return true;
}

static void throttle_fire(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	bufferevent_enable(c->bev, EV_READ);
}

/* /upload?rate=: stop reading while ahead of the rate's schedule. */
static void throttle(struct conn *c)
{
	if (c->upload_rate <= 0 || !c->in_message)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long elapsed = (now.tv_sec - c->body_start.tv_sec) * 1000 +
		       (now.tv_nsec - c->body_start.tv_nsec) / 1000000;
	long due = (long)(c->body_bytes * 1000 / (uint64_t)c->upload_rate);
	long ms = due - elapsed;
	if (ms <= 0)
		return;
	if (!c->throttle)
		c->throttle = evtimer_new(c->srv->base, throttle_fire, c);
	if (!c->throttle)
		return;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	bufferevent_disable(c->bev, EV_READ);
	evtimer_add(c->throttle, &tv);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->state == C_TUNNEL) {
		evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
		return;
	}
	if (c->stale) {
		if (!c->srv->quiet)
			printf("idle-drop %s %llu\n", c->srv->id, c->id);
		conn_free(c);
		return;
	}
	if (c->idle)
		evtimer_del(c->idle);
	if (!conn_parse(c))
		return;
	if (c->state == C_READING && !c->in_message)
		idle_rearm(c);
	else
		throttle(c);
}

static void conn_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->state == C_ANSWERING && c->big_left > 0) {
		if (c->route == R_CONTINUES)
			answer_continues_fill(c);
		else
			answer_big_fill(c);
		if (c->state == C_READING)
			conn_parse(c);
		return;
	}
	if (c->state == C_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	if (what & BEV_EVENT_EOF) {
		c->peer_eof = true;
		/* Half-closed by the client: finish what was asked, then close. */
		if (c->state == C_TUNNEL || c->state == C_READING) {
			if (c->state == C_TUNNEL)
				c->state = C_CLOSING;
			if (!conn_parse(c))
				return;
		}
		if (c->state == C_ANSWERING)
			return;
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			conn_free(c);
			return;
		}
		c->state = C_CLOSING;
		return;
	}
	conn_free(c);
}

static void conn_free(struct conn *c)
{
	if (c->listed)
		LIST_REMOVE(c, link);
	if (c->timer)
		event_free(c->timer);
	if (c->idle)
		event_free(c->idle);
	if (c->throttle)
		event_free(c->throttle);
	bufferevent_free(c->bev);
	evbuffer_free(c->url);
	evbuffer_free(c->hname);
	evbuffer_free(c->hvalue);
	evbuffer_free(c->headers);
	evbuffer_free(c->body);
	if (c->sha)
		EVP_MD_CTX_free(c->sha);
	free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct server *srv = arg;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = srv;
	c->id = ++srv->next_conn;
	c->state = C_READING;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(c->peer, sizeof(c->peer), "%s:%u", a, ntohs(sin->sin_port));
	} else {
		snprintf(c->peer, sizeof(c->peer), "?");
	}
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->url = evbuffer_new();
	c->hname = evbuffer_new();
	c->hvalue = evbuffer_new();
	c->headers = evbuffer_new();
	c->body = evbuffer_new();
	if (srv->idle_close_ms)
		c->idle = evtimer_new(srv->base, idle_fire, c);
	if (!c->bev || !c->url || !c->hname || !c->hvalue || !c->headers || !c->body ||
	    (srv->idle_close_ms && !c->idle)) {
		if (!c->bev)
			evutil_closesocket(fd);
		c->timer = NULL;
		if (c->bev)
			conn_free(c);
		else
			free(c);
		return;
	}
	LIST_INSERT_HEAD(&srv->conns, c, link);
	c->listed = true;
	llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
	c->parser.data = c;
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, WRITE_LOW_MARK, 0);
	/* Read at most this much ahead, so a throttled upload pushes back. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_MARK);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	idle_rearm(c);
	if (!srv->quiet)
		printf("conn %s %llu %s\n", srv->id, c->id, c->peer);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	event_base_loopexit(srv->base, NULL);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: backend [--listen ADDR:PORT | --port PORT] [--id NAME]\n"
		"               [--idle-close MS | --idle-drop MS]\n"
		"               [--ready-file PATH] [--quiet]\n"
		"A test HTTP/1.1 backend. Paths: /echo /slow?ms=N /close\n"
		"/stream?chunks=N&delay=MS /big?bytes=N /status?code=N /upload /hop /ws;\n"
		"anything else answers \"ok <id>\". Port 0 picks a free port; the bound\n"
		"address is printed (\"listening ADDR:PORT\") and written to --ready-file.\n");
}

static bool parse_listen(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return false;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return false;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &sin->sin_addr) == 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "id", required_argument, NULL, 'i' },
		{ "idle-close", required_argument, NULL, 'c' },
		{ "idle-drop", required_argument, NULL, 'd' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server srv = { .id = "backend" };
	struct sockaddr_in sin;
	const char *listen_at = "127.0.0.1:0", *ready_file = NULL;
	char portbuf[32];
	int ch;

	while ((ch = getopt_long(argc, argv, "l:p:i:c:d:r:qh", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_at = optarg; break;
		case 'p':
			snprintf(portbuf, sizeof(portbuf), "127.0.0.1:%s", optarg);
			listen_at = portbuf;
			break;
		case 'i': srv.id = optarg; break;
		case 'c': srv.idle_close_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd':
			srv.idle_close_ms = (unsigned)strtoul(optarg, NULL, 10);
			srv.idle_drop = true;
			break;
		case 'r': ready_file = optarg; break;
		case 'q': srv.quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !parse_listen(listen_at, &sin)) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	llhttp_settings_init(&srv.settings);
	srv.settings.on_message_begin = on_message_begin;
	srv.settings.on_url = on_url;
	srv.settings.on_header_field = on_header_field;
	srv.settings.on_header_value = on_header_value;
	srv.settings.on_headers_complete = on_headers_complete;
	srv.settings.on_body = on_body;
	srv.settings.on_message_complete = on_message_complete;

	srv.base = event_base_new();
	if (!srv.base) {
		fprintf(stderr, "backend: event_base_new failed\n");
		return 1;
	}
	struct evconnlistener *l = evconnlistener_new_bind(srv.base, on_accept, &srv,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
		(struct sockaddr *)&sin, sizeof(sin));
	if (!l) {
		fprintf(stderr, "backend: cannot listen on %s: %s\n", listen_at, strerror(errno));
		return 1;
	}
	socklen_t slen = sizeof(sin);
	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &slen) != 0) {
		fprintf(stderr, "backend: getsockname: %s\n", strerror(errno));
		return 1;
	}
	char addr[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sin.sin_addr, addr, sizeof(addr));
	printf("listening %s:%u\n", addr, ntohs(sin.sin_port));
	if (ready_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", ready_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", ntohs(sin.sin_port)) < 0 || fclose(f) != 0 ||
		    rename(tmp, ready_file) != 0) {
			fprintf(stderr, "backend: cannot write %s: %s\n", ready_file, strerror(errno));
			return 1;
		}
	}
	struct event *sigterm = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
	struct event *sigint = evsignal_new(srv.base, SIGINT, on_signal, &srv);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL)) {
		fprintf(stderr, "backend: cannot install signal handlers\n");
		return 1;
	}
	event_base_dispatch(srv.base);
	if (!srv.quiet)
		printf("exit %s requests=%llu connections=%llu\n", srv.id, srv.requests, srv.next_conn);
	/* Connections still open are freed too: a sanitizer build reports
	 * what is left at exit as a leak. */
	while (!LIST_EMPTY(&srv.conns))
		conn_free(LIST_FIRST(&srv.conns));
	event_free(sigterm);
	event_free(sigint);
	evconnlistener_free(l);
	event_base_free(srv.base);
	return 0;
}
