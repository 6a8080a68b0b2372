/*
 * The h2c client toward backends (node/upstream-h2.h) against a real
 * HTTP/2 server (tests/h2server.py, on python3-h2), on the test's own
 * event loop with real sockets: a unary gRPC-style exchange with
 * trailers; bodies both ways larger than the windows, with the caller's
 * buffer bounded by the window it opens; many streams on one connection
 * and a second connection once the peer's SETTINGS_MAX_CONCURRENT_STREAMS
 * is reached; the server killed under open streams (each fails once,
 * nothing hangs, the next stream fails to connect); the peer's GOAWAY
 * refusing the streams past its last (retryable); malformed and
 * oversized responses failing their own stream only; an idle connection
 * closed with GOAWAY after the idle timeout.
 *
 * Skips (exit 77) without a python3 that has the h2 module, unless
 * ZKR_TEST_NO_SKIP is set.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "node/upstream-h2.h"
#include "registry/clock.h"
#include "tests/lib/unit.h"

/* The python3 that has h2 (unit_register): Debian's own first, where
 * python3-h2 puts it, then the first on PATH (which may be another). */
static const char *const pythons[] = { "/usr/bin/python3", "python3" };
static const char *python;

static struct event_base *base;
static struct event *tick;
static char tmpdir[64];

struct server {
	pid_t pid;
	unsigned failures;         /* CUnit's count at the start */
	unsigned short port;
	char log[128];
	struct sockaddr_in addr;
};

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

static bool until(bool (*cond)(void *), void *arg, unsigned timeout_ms)
{
	uint64_t deadline = clock_now_ms() + timeout_ms;

	while (!cond(arg)) {
		if (clock_now_ms() > deadline)
			return false;
		event_base_loop(base, EVLOOP_ONCE);
	}
	return true;
}

static void server_stop(struct server *s);

static bool server_start(struct server *s, const char *args)
{
	static unsigned n;
	char script[256], line[64];
	int out[2];
	size_t got = 0;

	memset(s, 0, sizeof(*s));
	s->failures = CU_get_number_of_failures();
	snprintf(s->log, sizeof(s->log), "%s/h2server-%u.log", tmpdir, ++n);
	if (pipe(out) != 0)
		return false;
	snprintf(script, sizeof(script), "%s/tests/h2server.py",
		 getenv("top_srcdir") ? getenv("top_srcdir") : ".");
	s->pid = fork();
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(out[1], 1);
		if (fd >= 0)
			dup2(fd, 2);
		close(out[0]);
		/* $2 unquoted: the options, split into words. */
		execl("/bin/sh", "sh", "-c", "exec \"$0\" \"$1\" $2", python, script, args,
		      (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* "port N\n", within 20 s (python's start on a loaded machine). */
	while (got < sizeof(line) - 1 && memchr(line, '\n', got) == NULL) {
		struct pollfd pfd = { out[0], POLLIN, 0 };
		ssize_t r;

		if (poll(&pfd, 1, 20000) <= 0)
			break;
		if ((r = read(out[0], line + got, sizeof(line) - 1 - got)) <= 0)
			break;
		got += (size_t)r;
	}
	close(out[0]);
	line[got] = '\0';
	if (sscanf(line, "port %hu", &s->port) != 1) {
		fprintf(stderr, "h2server did not start: \"%s\"\n", line);
		s->failures = CU_get_number_of_failures() + 1;   /* its log, from server_stop */
		server_stop(s);
		return false;
	}
	s->addr.sin_family = AF_INET;
	s->addr.sin_port = htons(s->port);
	s->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return true;
}

/* Kills the server; its log goes to stderr when an assertion failed. */
static void server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	if (CU_get_number_of_failures() != s->failures) {
		char line[512];
		FILE *f = fopen(s->log, "r");

		fprintf(stderr, "----- %s\n", s->log);
		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			fputs(line, stderr);
		if (f != NULL)
			fclose(f);
		s->failures = CU_get_number_of_failures();
	}
}

/* True when the server's log has a line holding `text`. */
static bool log_has(const struct server *s, const char *text)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(s->log, "r");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

struct log_wait {
	const struct server *s;
	const char *text;
};

static bool log_cond(void *arg)
{
	const struct log_wait *w = arg;

	return log_has(w->s, w->text);
}

/* ---- one exchange, as the request path would hold it --------------------- */

struct exch {
	struct uh2_stream *s;
	int status;
	char head[1024];           /* "name: value\n"... */
	char trailers[512];
	struct evbuffer *body;     /* delivered */
	size_t consumed;
	bool manual;               /* the test consumes, else each delivery is */
	size_t max_held;           /* most bytes delivered and not consumed */
	bool ended, failed;
	enum uh2_error err;
	unsigned rooms;
};

static void fields(char *out, size_t cap, const struct uh2_header *h, size_t n)
{
	size_t len = strlen(out);

	for (size_t i = 0; i < n; i++) {
		int k = snprintf(out + len, cap - len, "%.*s: %.*s\n", (int)h[i].namelen, h[i].name,
				 (int)h[i].valuelen, h[i].value);
		if (k > 0 && (size_t)k < cap - len)
			len += (size_t)k;
	}
}

static void ex_head(void *arg, int status, const struct uh2_header *h, size_t n)
{
	struct exch *e = arg;

	e->status = status;
	fields(e->head, sizeof(e->head), h, n);
}

static void ex_body(void *arg, const uint8_t *data, size_t len)
{
	struct exch *e = arg;
	size_t held;

	evbuffer_add(e->body, data, len);
	held = evbuffer_get_length(e->body) - e->consumed;
	if (held > e->max_held)
		e->max_held = held;
	if (!e->manual) {
		e->consumed += len;
		uh2_stream_consumed(e->s, len);
	}
}

static void ex_trailers(void *arg, const struct uh2_header *h, size_t n)
{
	struct exch *e = arg;

	fields(e->trailers, sizeof(e->trailers), h, n);
}

static void ex_end(void *arg)
{
	((struct exch *)arg)->ended = true;
}

static void ex_error(void *arg, enum uh2_error err, uint32_t code)
{
	struct exch *e = arg;

	e->failed = true;
	e->err = err;
}

static void ex_room(void *arg)
{
	((struct exch *)arg)->rooms++;
}

static const struct uh2_stream_ops ex_ops = { ex_head, ex_body, ex_trailers, ex_end, ex_error,
					      ex_room, NULL };

static void ex_init(struct exch *e)
{
	memset(e, 0, sizeof(*e));
	e->body = evbuffer_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(e->body);
}

static void ex_clean(struct exch *e)
{
	evbuffer_free(e->body);
}

static bool ex_done(void *arg)
{
	const struct exch *e = arg;

	return e->ended || e->failed;
}

struct many {
	struct exch *e;
	size_t n;
};

static bool all_done(void *arg)
{
	const struct many *m = arg;

	for (size_t i = 0; i < m->n; i++)
		if (!ex_done(&m->e[i]))
			return false;
	return true;
}

static struct uh2_stream *submit(struct uh2_pool *pool, struct exch *e, const char *method,
				 const char *path, const struct uh2_header *h, size_t n, bool body)
{
	struct uh2_request req = { method, "http", "grpc.test", path, h, n, body };

	e->s = uh2_submit(pool, &req, &ex_ops, e);
	CU_ASSERT_PTR_NOT_NULL(e->s);
	return e->s;
}

static struct uh2_pool *pool_for(const struct server *s, const struct uh2_limits *lim)
{
	struct uh2_pool *pool = uh2_pool_new(base, (const struct sockaddr *)&s->addr, sizeof(s->addr),
					     "h2server", lim);

	CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
	return pool;
}

/* ---- the tests ------------------------------------------------------------ */

static void test_unary_trailers(void)
{
	struct server srv;
	struct uh2_limits lim;
	struct exch e, g;
	/* What an HTTP/1.1 head brings along: dropped on the way (h2
	 * would refuse the stream for Connection or Transfer-Encoding). */
	const struct uh2_header h[] = {
		{ "Content-Type", 12, "application/grpc", 16 }, { "TE", 2, "trailers", 8 },
		{ "Host", 4, "grpc.test", 9 }, { "Connection", 10, "keep-alive", 10 },
		{ "Transfer-Encoding", 17, "chunked", 7 },
	};
	struct evbuffer *src = evbuffer_new();

	CU_ASSERT_TRUE_FATAL(server_start(&srv, ""));
	uh2_limits_default(&lim);
	struct uh2_pool *pool = pool_for(&srv, &lim);
	ex_init(&e);
	ex_init(&g);
	submit(pool, &e, "POST", "/unary", h, sizeof(h) / sizeof(h[0]), true);
	evbuffer_add(src, "\0\0\0\0\5hello", 10);
	CU_ASSERT_EQUAL(uh2_stream_send_body(e.s, src, true), 10);
	CU_ASSERT_TRUE(until(ex_done, &e, 5000));
	CU_ASSERT_TRUE(e.ended);
	CU_ASSERT_FALSE(e.failed);
	CU_ASSERT_EQUAL(e.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.head, "content-type: application/grpc\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.head, "x-body-len: 10\n"));
	CU_ASSERT_EQUAL(evbuffer_get_length(e.body), 10);
	CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(e.body, -1), "\0\0\0\0\5hello", 10), 0);
	CU_ASSERT_STRING_EQUAL(e.trailers, "grpc-status: 0\ngrpc-message: ok\n");
	/* A request without a body: END_STREAM with the HEADERS. */
	submit(pool, &g, "GET", "/unary", NULL, 0, false);
	CU_ASSERT_TRUE(until(ex_done, &g, 5000));
	CU_ASSERT_TRUE(g.ended);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.head, "x-body-len: 0\n"));
	CU_ASSERT_STRING_EQUAL(g.trailers, "grpc-status: 0\ngrpc-message: ok\n");

	struct uh2_pool_stats st;
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.conns_opened, 1);
	CU_ASSERT_EQUAL(st.streams_done, 2);
	CU_ASSERT_EQUAL(st.streams, 0);
	CU_ASSERT_FALSE(log_has(&srv, "error"));
	uh2_pool_free(pool);
	ex_clean(&e);
	ex_clean(&g);
	evbuffer_free(src);
	server_stop(&srv);
}

/*
 * 1 MB up and back on /echo with 16 KB windows both ways: the client
 * sends within the server's windows (h2 would close the connection on an
 * overrun), and the caller never holds more than its window of response
 * bytes: it reads nothing until the server has the whole request (and
 * would send the whole echo, were our window open), then a little per
 * turn. Everything arrives, in order.
 */
static void test_flow_control_both_ways(void)
{
	enum { TOTAL = 1 << 20, WINDOW = 16384, STEP = 4096 };
	struct server srv;
	struct uh2_limits lim;
	struct exch e;
	struct evbuffer *src = evbuffer_new();
	unsigned char *pattern;
	size_t queued = 0;
	uint64_t deadline;

	CU_ASSERT_TRUE_FATAL(server_start(&srv, "--window 16384"));
	pattern = malloc(TOTAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pattern);
	for (size_t i = 0; i < TOTAL; i++)
		pattern[i] = (unsigned char)(i * 7 + i / 4096);
	uh2_limits_default(&lim);
	lim.stream_window = WINDOW;
	lim.body_buffer = WINDOW;
	struct uh2_pool *pool = pool_for(&srv, &lim);
	ex_init(&e);
	e.manual = true;
	submit(pool, &e, "POST", "/echo", NULL, 0, true);
	deadline = clock_now_ms() + 30000;
	bool reading = false;
	while (!ex_done(&e) && clock_now_ms() < deadline) {
		size_t held = evbuffer_get_length(e.body) - e.consumed;

		if (!reading && log_has(&srv, "stream 1 ended, 1048576 bytes")) {
			reading = true;
			/* The server is blocked on our window, which it filled. */
			CU_ASSERT_EQUAL(held, WINDOW);
		}

		/* Feed the body as the stream takes it. */
		if (queued < TOTAL) {
			size_t n = TOTAL - queued < 65536 ? TOTAL - queued : 65536;

			evbuffer_add(src, pattern + queued, n);
			queued += n;
		}
		if (evbuffer_get_length(src) > 0 || queued == TOTAL)
			uh2_stream_send_body(e.s, src, queued == TOTAL);
		/* A slow reader: a little per turn. */
		if (reading && held > 0) {
			size_t n = held < STEP ? held : STEP;

			e.consumed += n;
			uh2_stream_consumed(e.s, n);
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	CU_ASSERT_TRUE(reading);
	CU_ASSERT_TRUE(e.ended);
	CU_ASSERT_FALSE(e.failed);
	CU_ASSERT_EQUAL(evbuffer_get_length(src), 0);
	CU_ASSERT_TRUE(e.rooms > 0);
	CU_ASSERT_EQUAL(evbuffer_get_length(e.body), TOTAL);
	CU_ASSERT_TRUE(e.max_held <= WINDOW);
	CU_ASSERT_TRUE(e.max_held > 0);
	if (evbuffer_get_length(e.body) == TOTAL)
		CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(e.body, -1), pattern, TOTAL), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.trailers, "x-echo-bytes: 1048576\n"));
	CU_ASSERT_FALSE(log_has(&srv, "error"));
	uh2_pool_free(pool);
	ex_clean(&e);
	evbuffer_free(src);
	free(pattern);
	server_stop(&srv);
}

/* n /hold streams answered only once the server holds all n of them. */
static void hold_streams(struct uh2_pool *pool, struct exch *e, size_t n)
{
	char until_s[16];
	struct uh2_header h = { "x-hold-until", 12, until_s, 0 };
	struct many m = { e, n };

	h.valuelen = (size_t)snprintf(until_s, sizeof(until_s), "%zu", n);
	for (size_t i = 0; i < n; i++) {
		ex_init(&e[i]);
		submit(pool, &e[i], "GET", "/hold", &h, 1, false);
	}
	CU_ASSERT_TRUE(until(all_done, &m, 10000));
}

static unsigned on_conn(const struct exch *e, size_t n, const char *conn)
{
	unsigned k = 0;

	for (size_t i = 0; i < n; i++)
		k += e[i].ended && e[i].status == 200 && strstr(e[i].head, conn) != NULL;
	return k;
}

static void test_streams_and_second_connection(void)
{
	enum { MANY = 60, OVER = 8 };
	struct server srv;
	struct uh2_limits lim;
	struct uh2_pool_stats st;
	struct exch e[MANY];

	/* Many at once on one connection. */
	CU_ASSERT_TRUE_FATAL(server_start(&srv, ""));
	uh2_limits_default(&lim);
	struct uh2_pool *pool = pool_for(&srv, &lim);
	hold_streams(pool, e, MANY);
	CU_ASSERT_EQUAL(on_conn(e, MANY, "x-conn: 1\n"), MANY);
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.conns_opened, 1);
	CU_ASSERT_EQUAL(st.streams_done, MANY);
	for (size_t i = 0; i < MANY; i++)
		ex_clean(&e[i]);
	uh2_pool_free(pool);
	server_stop(&srv);

	/* The peer takes 5 at a time: the 3 more go on a second connection
	 * (were they queued behind the first five, the server would never
	 * hold eight, and nothing would end). */
	CU_ASSERT_TRUE_FATAL(server_start(&srv, "--max-streams 5"));
	pool = pool_for(&srv, &lim);
	hold_streams(pool, e, OVER);
	CU_ASSERT_EQUAL(on_conn(e, OVER, "x-conn: 1\n"), 5);
	CU_ASSERT_EQUAL(on_conn(e, OVER, "x-conn: 2\n"), 3);
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.conns_opened, 2);
	CU_ASSERT_EQUAL(st.conns, 2);
	for (size_t i = 0; i < OVER; i++)
		ex_clean(&e[i]);

	/* Our own limit does the same with a generous peer. */
	uh2_pool_free(pool);
	lim.max_streams = 2;
	lim.max_conns = 2;
	pool = pool_for(&srv, &lim);
	struct exch w[5];
	struct many m = { w, 4 };
	char four[] = "4";
	struct uh2_header h = { "x-hold-until", 12, four, 1 };
	for (size_t i = 0; i < 5; i++) {
		ex_init(&w[i]);
		submit(pool, &w[i], "GET", "/hold", &h, 1, false);
	}
	/* Four fit on two connections of two; the fifth waits in the pool. */
	CU_ASSERT_TRUE(until(all_done, &m, 10000));
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.conns_opened, 2);
	CU_ASSERT_FALSE(ex_done(&w[4]));
	CU_ASSERT_EQUAL(st.pending + st.streams, 1);
	/* Cancelled while it waits: no callback, nothing left. */
	uh2_stream_cancel(w[4].s);
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.pending + st.streams, 0);
	for (size_t i = 0; i < 5; i++)
		ex_clean(&w[i]);
	uh2_pool_free(pool);
	server_stop(&srv);
}

static bool pool_empty(void *arg)
{
	struct uh2_pool_stats st;

	uh2_pool_stats(arg, &st);
	return st.conns == 0;
}

static void test_server_dies_mid_stream(void)
{
	enum { N = 3 };
	struct server srv;
	struct uh2_limits lim;
	struct uh2_pool_stats st;
	struct exch e[N], late;
	struct many m = { e, N };

	CU_ASSERT_TRUE_FATAL(server_start(&srv, ""));
	uh2_limits_default(&lim);
	lim.connect_timeout_ms = 2000;
	struct uh2_pool *pool = pool_for(&srv, &lim);
	for (size_t i = 0; i < N; i++) {
		ex_init(&e[i]);
		submit(pool, &e[i], "GET", "/slow", NULL, 0, false);
	}
	/* Every stream has its head and some body, then the server dies. */
	uint64_t deadline = clock_now_ms() + 5000;
	for (;;) {
		size_t n = 0;

		for (size_t i = 0; i < N; i++)
			n += e[i].status == 200 && evbuffer_get_length(e[i].body) == 1000;
		if (n == N || clock_now_ms() > deadline)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	for (size_t i = 0; i < N; i++)
		CU_ASSERT_EQUAL(evbuffer_get_length(e[i].body), 1000);
	server_stop(&srv);
	CU_ASSERT_TRUE(until(all_done, &m, 3000));
	for (size_t i = 0; i < N; i++) {
		CU_ASSERT_TRUE(e[i].failed);
		CU_ASSERT_FALSE(e[i].ended);
		CU_ASSERT_EQUAL(e[i].err, UH2_ERR_CLOSED);
		CU_ASSERT_FALSE(uh2_error_retryable(e[i].err));
	}
	CU_ASSERT_TRUE(until(pool_empty, pool, 3000));
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.streams_failed, N);
	CU_ASSERT_EQUAL(st.conns_failed, 1);
	/* Nobody listens now: the next stream fails to connect, retryable. */
	ex_init(&late);
	submit(pool, &late, "GET", "/unary", NULL, 0, false);
	CU_ASSERT_TRUE(until(ex_done, &late, 5000));
	CU_ASSERT_TRUE(late.failed);
	CU_ASSERT_EQUAL(late.err, UH2_ERR_CONNECT);
	CU_ASSERT_TRUE(uh2_error_retryable(late.err));
	CU_ASSERT_TRUE(until(pool_empty, pool, 3000));
	for (size_t i = 0; i < N; i++)
		ex_clean(&e[i]);
	ex_clean(&late);
	uh2_pool_free(pool);
}

/*
 * The peer's GOAWAY: the stream it names as the last processed ends
 * normally, the one after is refused (retryable: the backend says it
 * never acted on it), the connection closes once drained, without
 * counting as a failure, and the next stream gets a new connection.
 */
static void test_goaway_refuses_later_streams(void)
{
	struct server srv;
	struct uh2_limits lim;
	struct uh2_pool_stats st;
	struct exch a, b, c;
	char never[] = "99";
	struct uh2_header h = { "x-hold-until", 12, never, 2 };

	CU_ASSERT_TRUE_FATAL(server_start(&srv, ""));
	uh2_limits_default(&lim);
	struct uh2_pool *pool = pool_for(&srv, &lim);
	ex_init(&a);
	ex_init(&b);
	submit(pool, &a, "GET", "/hold", &h, 1, false);
	struct log_wait held = { &srv, "conn 1 stream 1 GET /hold" };
	CU_ASSERT_TRUE_FATAL(until(log_cond, &held, 5000));
	submit(pool, &b, "GET", "/goaway", NULL, 0, false);
	CU_ASSERT_TRUE(until(ex_done, &a, 5000));
	CU_ASSERT_TRUE(until(ex_done, &b, 5000));
	CU_ASSERT_TRUE(a.ended);
	CU_ASSERT_EQUAL(a.status, 200);
	CU_ASSERT_TRUE(b.failed);
	CU_ASSERT_EQUAL(b.err, UH2_ERR_REFUSED);
	CU_ASSERT_TRUE(uh2_error_retryable(b.err));
	CU_ASSERT_TRUE(until(pool_empty, pool, 3000));
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.conns_failed, 0);
	CU_ASSERT_EQUAL(st.streams_done, 1);
	CU_ASSERT_EQUAL(st.streams_failed, 1);
	ex_init(&c);
	submit(pool, &c, "GET", "/unary", NULL, 0, false);
	CU_ASSERT_TRUE(until(ex_done, &c, 5000));
	CU_ASSERT_TRUE(c.ended);
	CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "x-conn: 2\n"));
	ex_clean(&a);
	ex_clean(&b);
	ex_clean(&c);
	uh2_pool_free(pool);
	server_stop(&srv);
}

/* Malformed or oversized responses fail their own stream; the others
 * on the connection, and the connection, go on. */
static void test_bad_responses_fail_their_stream(void)
{
	struct server srv;
	struct uh2_limits lim;
	struct uh2_pool_stats st;
	struct exch e[3];
	struct many m = { e, 3 };
	static const char *const paths[] = { "/bad", "/bighead", "/unary" };

	CU_ASSERT_TRUE_FATAL(server_start(&srv, ""));
	uh2_limits_default(&lim);
	struct uh2_pool *pool = pool_for(&srv, &lim);
	for (size_t i = 0; i < 3; i++) {
		ex_init(&e[i]);
		submit(pool, &e[i], "GET", paths[i], NULL, 0, false);
	}
	CU_ASSERT_TRUE(until(all_done, &m, 5000));
	CU_ASSERT_TRUE(e[0].failed);
	CU_ASSERT_EQUAL(e[0].err, UH2_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(e[0].status, 0);     /* no head reported */
	CU_ASSERT_TRUE(e[1].failed);
	CU_ASSERT_EQUAL(e[1].err, UH2_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(e[1].status, 0);
	CU_ASSERT_FALSE(uh2_error_retryable(e[1].err));
	CU_ASSERT_TRUE(e[2].ended);
	CU_ASSERT_STRING_EQUAL(e[2].trailers, "grpc-status: 0\ngrpc-message: ok\n");
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.conns_opened, 1);
	CU_ASSERT_EQUAL(st.conns, 1);
	CU_ASSERT_EQUAL(st.conns_failed, 0);
	for (size_t i = 0; i < 3; i++)
		ex_clean(&e[i]);
	uh2_pool_free(pool);
	server_stop(&srv);
}

static bool idle_closed(void *arg)
{
	struct uh2_pool_stats st;

	uh2_pool_stats(arg, &st);
	return st.conns_idle_closed == 1 && st.conns == 0;
}

static void test_idle_close(void)
{
	struct server srv;
	struct uh2_limits lim;
	struct uh2_pool_stats st;
	struct exch e, f;

	CU_ASSERT_TRUE_FATAL(server_start(&srv, ""));
	uh2_limits_default(&lim);
	lim.idle_timeout_ms = 300;
	struct uh2_pool *pool = pool_for(&srv, &lim);
	ex_init(&e);
	submit(pool, &e, "GET", "/unary", NULL, 0, false);
	CU_ASSERT_TRUE(until(ex_done, &e, 5000));
	CU_ASSERT_TRUE(e.ended);
	uint64_t ended = clock_now_ms();
	CU_ASSERT_TRUE(until(idle_closed, pool, 5000));
	CU_ASSERT_TRUE(clock_now_ms() - ended >= 250);
	/* The server saw our GOAWAY, then the close. */
	struct log_wait goaway = { &srv, "conn 1 goaway 0" }, closed = { &srv, "conn 1 closed" };
	CU_ASSERT_TRUE(until(log_cond, &goaway, 3000));
	CU_ASSERT_TRUE(until(log_cond, &closed, 3000));
	/* The pool opens a new connection for the next stream. */
	ex_init(&f);
	submit(pool, &f, "GET", "/unary", NULL, 0, false);
	CU_ASSERT_TRUE(until(ex_done, &f, 5000));
	CU_ASSERT_TRUE(f.ended);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.head, "x-conn: 2\n"));
	uh2_pool_stats(pool, &st);
	CU_ASSERT_EQUAL(st.conns_opened, 2);
	ex_clean(&e);
	ex_clean(&f);
	uh2_pool_free(pool);
	server_stop(&srv);
}

static int suite_init(void)
{
	struct timeval tv = { 0, 20000 };

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zkr-h2test.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	tick = base ? event_new(base, -1, EV_PERSIST, tick_cb, NULL) : NULL;
	return tick != NULL && event_add(tick, &tv) == 0 ? 0 : -1;
}

static int suite_clean(void)
{
	char cmd[128];

	event_free(tick);
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

void unit_register(void)
{
	for (size_t i = 0; i < sizeof(pythons) / sizeof(pythons[0]) && python == NULL; i++) {
		int rc = -1;
		pid_t pid = fork();

		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0)
				dup2(null, 2);
			execlp(pythons[i], pythons[i], "-c", "import h2", (char *)NULL);
			_exit(127);
		}
		if (pid > 0 && waitpid(pid, &rc, 0) == pid && WIFEXITED(rc) && WEXITSTATUS(rc) == 0)
			python = pythons[i];
	}
	if (python == NULL) {
		if (getenv("ZKR_TEST_NO_SKIP") != NULL) {
			fprintf(stderr, "ERROR: no python3 with the h2 module (python3-h2), and ZKR_TEST_NO_SKIP is set\n");
			exit(99);
		}
		fprintf(stderr, "SKIP: no python3 with the h2 module (apt-get install python3-h2)\n");
		exit(77);
	}
	CU_pSuite s = unit_suite("upstream_h2", suite_init, suite_clean);
	UNIT_TEST(s, test_unary_trailers);
	UNIT_TEST(s, test_flow_control_both_ways);
	UNIT_TEST(s, test_streams_and_second_connection);
	UNIT_TEST(s, test_server_dies_mid_stream);
	UNIT_TEST(s, test_goaway_refuses_later_streams);
	UNIT_TEST(s, test_bad_responses_fail_their_stream);
	UNIT_TEST(s, test_idle_close);
}
