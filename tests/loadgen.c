/*
 * loadgen: the load client of the cluster tests. It keeps keep-alive
 * connections spread over several targets (routers), sends the same
 * idempotent GET on each of them in a loop, closed-loop or at a fixed total
 * rate, and counts every request that did not succeed, by cause and by
 * target: a connection that could not be made, a connection reset or closed
 * before the whole answer came, no answer within the timeout, an answer
 * that could not be parsed, and any status outside 2xx.
 *
 * A request is counted exactly once. When a request fails, its connection
 * is dropped and the next request opens a new one: nothing is retried, so a
 * router that loses a request cannot hide it behind this client. Only a
 * connection that the server closes while idle (between requests) is
 * replaced silently, since no request was lost on it.
 *
 * It runs for --duration seconds, for --requests requests, or until SIGTERM
 * or SIGINT; then it stops sending, lets the requests in flight finish
 * (bounded by --timeout), prints a summary and one machine-readable line
 *   result: ok=N failed=N connect=N reset=N closed=N timeout=N status=N ...
 * and exits 1 when more than --max-failures requests failed (default 0).
 *
 *   conn[i] --(round-robin)--> target[i % n_targets]
 *   each conn: [connect] -> send GET -> read answer (llhttp) -> record
 *              -> next request now, or when its rate slot comes
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include <llhttp.h>

#define MAX_TARGETS 64
#define MAX_CONNS 10000
#define MAX_BY_HEADER 64
#define FAILURES_SHOWN 20
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

enum cause {
	CAUSE_CONNECT,  /* the connection could not be made (refused, timeout) */
	CAUSE_RESET,    /* a socket error with the request in flight */
	CAUSE_CLOSED,   /* EOF before the whole answer */
	CAUSE_TIMEOUT,  /* no whole answer within --timeout */
	CAUSE_STATUS,   /* an answer outside 2xx */
	CAUSE_PARSE,    /* an answer that is not HTTP/1.x */
	CAUSE_MAX,
};

static const char *const cause_names[CAUSE_MAX] = {
	"connect", "reset", "closed", "timeout", "status", "parse",
};

/* Latency histogram: 128 linear sub-buckets per power of two of
 * microseconds, so any quantile is within 1% without keeping samples. */
#define HIST_SUB 128
#define HIST_BUCKETS (HIST_SUB * 27)

struct histogram {
	uint64_t counts[HIST_BUCKETS];
	uint64_t n, max_us;
};

struct target {
	char name[64];
	struct sockaddr_storage addr;
	int addrlen;
	uint64_t ok, failed, fail[CAUSE_MAX];
};

enum conn_state {
	CONN_IDLE,      /* waiting for its next rate slot or backoff */
	CONN_BUSY,      /* a request is in flight */
	CONN_DONE,      /* stopped */
};

struct conn {
	struct lg *lg;
	struct target *t;
	unsigned index;
	struct bufferevent *bev;   /* NULL between connections */
	bool connected;
	enum conn_state state;
	struct event *timer;       /* request timeout while busy; next slot while idle */
	llhttp_t parser;
	bool complete;             /* set by on_message_complete */
	bool in_by_header;         /* the header being read is --by-header */
	char by_value[64];
	size_t by_len;
	bool header_field_done;
	char field[64];
	size_t field_len;
	struct timespec sent;
	double next_due;           /* seconds on the monotonic clock, with --rate */
	unsigned backoff_ms;
};

struct by_value {
	char value[64];
	uint64_t count;
};

struct lg {
	struct event_base *base;
	/* options */
	const char *host, *path, *by_header;
	unsigned n_conns;
	double rate, duration;
	uint64_t max_requests, max_failures;
	unsigned timeout_ms;
	double progress;
	bool verbose;
	/* state */
	struct target targets[MAX_TARGETS];
	unsigned n_targets;
	struct conn *conns;
	char *request;
	size_t request_len;
	llhttp_settings_t settings;
	bool stopping, aborted_stop;
	unsigned live_conns;
	struct timespec start, stop;
	struct event *ev_duration, *ev_progress, *ev_sigterm, *ev_sigint;
	/* counters */
	uint64_t started, ok, failed, fail[CAUSE_MAX], aborted;
	uint64_t status_counts[600];
	uint64_t shown_failures;
	uint64_t last_ok, last_failed;
	uint64_t interval_max_us;  /* slowest ok answer since the last progress line */
	struct by_value by[MAX_BY_HEADER];
	unsigned n_by;
	uint64_t by_other;
	struct histogram hist;
};

static void conn_next(struct conn *c);
static void conn_send(struct conn *c);

/* ---- time and the histogram ------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double elapsed_s(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static unsigned hist_index(uint64_t us)
{
	if (us < HIST_SUB)
		return (unsigned)us;
	unsigned shift = 63 - (unsigned)__builtin_clzll(us) - 6; /* us >> shift in [128, 256) */
	unsigned idx = HIST_SUB * shift + (unsigned)((us >> shift) - HIST_SUB);
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The middle of bucket idx, in microseconds. */
static double hist_value(unsigned idx)
{
	if (idx < HIST_SUB)
		return idx;
	unsigned shift = idx / HIST_SUB;
	uint64_t base = (uint64_t)(idx % HIST_SUB + HIST_SUB) << shift;
	return (double)base + (double)((uint64_t)1 << shift) / 2.0;
}

static void hist_add(struct histogram *h, uint64_t us)
{
	h->counts[hist_index(us)]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

/* The q-quantile in milliseconds (0 with no samples). */
static double hist_quantile_ms(const struct histogram *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->n), seen = 0;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			double v = hist_value(i);
			return (v > (double)h->max_us ? (double)h->max_us : v) / 1000.0;
		}
	}
	return (double)h->max_us / 1000.0;
}

/* ---- recording outcomes ------------------------------------------------ */

static void record_by_value(struct lg *lg, const char *v, size_t len)
{
	for (unsigned i = 0; i < lg->n_by; i++) {
		if (strlen(lg->by[i].value) == len && memcmp(lg->by[i].value, v, len) == 0) {
			lg->by[i].count++;
			return;
		}
	}
	if (lg->n_by == MAX_BY_HEADER || len == 0) {
		lg->by_other++;
		return;
	}
	memcpy(lg->by[lg->n_by].value, v, len);
	lg->by[lg->n_by].value[len] = '\0';
	lg->by[lg->n_by].count = 1;
	lg->n_by++;
}

static void record_ok(struct conn *c)
{
	struct lg *lg = c->lg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double us = elapsed_s(&c->sent, &now) * 1e6;
	hist_add(&lg->hist, us < 0 ? 0 : (uint64_t)us);
	if (us > (double)lg->interval_max_us)
		lg->interval_max_us = (uint64_t)us;
	lg->ok++;
	c->t->ok++;
	if (lg->by_header)
		record_by_value(lg, c->by_value, c->by_len);
}

static void record_failure(struct conn *c, enum cause cause, const char *detail)
{
	struct lg *lg = c->lg;
	lg->failed++;
	lg->fail[cause]++;
	c->t->failed++;
	c->t->fail[cause]++;
	if (lg->verbose || lg->shown_failures < FAILURES_SHOWN) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		fprintf(stderr, "loadgen: t=%.3fs conn %u -> %s: failed (%s): %s\n",
			elapsed_s(&lg->start, &now), c->index, c->t->name, cause_names[cause], detail);
		if (!lg->verbose && lg->shown_failures + 1 == FAILURES_SHOWN)
			fprintf(stderr, "loadgen: further failures are counted, not shown\n");
	}
	lg->shown_failures++;
}

/* ---- the connection ---------------------------------------------------- */

static void conn_drop(struct conn *c)
{
	/* libevent defers the actual free while the bufferevent is inside one
	 * of its own callbacks, so this is safe from conn_read/conn_event. */
	if (c->bev)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->connected = false;
}

static void conn_finish_stop(struct conn *c)
{
	struct lg *lg = c->lg;
	if (c->state == CONN_DONE)
		return;
	c->state = CONN_DONE;
	event_del(c->timer);
	conn_drop(c);
	if (--lg->live_conns == 0)
		event_base_loopexit(lg->base, NULL);
}

/* The request on c ended (either way): pick what comes next. */
static void conn_request_over(struct conn *c, bool keep)
{
	c->state = CONN_IDLE;
	event_del(c->timer);
	if (!keep)
		conn_drop(c);
	conn_next(c);
}

static void conn_fail(struct conn *c, enum cause cause, const char *detail)
{
	record_failure(c, cause, detail);
	if (cause == CAUSE_CONNECT) {
		c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (c->backoff_ms > BACKOFF_MAX_MS)
			c->backoff_ms = BACKOFF_MAX_MS;
	}
	conn_request_over(c, false);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	if (c->header_field_done) {
		c->field_len = 0;
		c->header_field_done = false;
	}
	size_t room = sizeof(c->field) - 1 - c->field_len;
	size_t n = len < room ? len : room;
	memcpy(c->field + c->field_len, at, n);
	c->field_len += n;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	if (!c->header_field_done) {
		c->header_field_done = true;
		c->field[c->field_len] = '\0';
		c->in_by_header = strcasecmp(c->field, c->lg->by_header) == 0;
		if (c->in_by_header)
			c->by_len = 0;
	}
	if (c->in_by_header) {
		size_t room = sizeof(c->by_value) - 1 - c->by_len;
		size_t n = len < room ? len : room;
		memcpy(c->by_value + c->by_len, at, n);
		c->by_len += n;
	}
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct conn *c = p->data;
	c->header_field_done = true;
	c->field_len = 0;
	c->in_by_header = false;
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct conn *c = p->data;
	c->complete = true;
	/* Stop here: bytes after the answer would belong to no request. */
	return HPE_PAUSED;
}

/* The answer is whole: count it and go on (or drop the connection if the
 * server asked to close it). */
static void conn_answered(struct conn *c, bool more_bytes)
{
	struct lg *lg = c->lg;
	int status = llhttp_get_status_code(&c->parser);
	bool keep = llhttp_should_keep_alive(&c->parser) && !more_bytes;
	if (status >= 0 && status < 600)
		lg->status_counts[status]++;
	c->backoff_ms = 0;
	if (status >= 200 && status < 300) {
		record_ok(c);
		conn_request_over(c, keep);
	} else {
		char detail[48];
		snprintf(detail, sizeof(detail), "HTTP status %d", status);
		record_failure(c, CAUSE_STATUS, detail);
		conn_request_over(c, keep);
	}
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state != CONN_BUSY) {
		/* Bytes nobody asked for: the connection is no longer usable. */
		evbuffer_drain(in, evbuffer_get_length(in));
		conn_drop(c);
		return;
	}
	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		llhttp_errno_t err = llhttp_execute(&c->parser, v.iov_base, v.iov_len);
		if (err == HPE_PAUSED) {
			size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - (const char *)v.iov_base);
			evbuffer_drain(in, used);
			conn_answered(c, evbuffer_get_length(in) > 0);
			return;
		}
		if (err != HPE_OK) {
			char detail[160];
			snprintf(detail, sizeof(detail), "bad answer: %s (%s)", llhttp_errno_name(err),
				 llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser) : "");
			conn_fail(c, CAUSE_PARSE, detail);
			return;
		}
		evbuffer_drain(in, v.iov_len);
	}
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		c->connected = true;
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return;
	}
	if (c->state != CONN_BUSY) {
		/* Closed by the server while idle: no request was lost. */
		conn_drop(c);
		return;
	}
	int err = EVUTIL_SOCKET_ERROR();
	if (!c->connected) {
		char detail[128];
		snprintf(detail, sizeof(detail), "connect: %s",
			 (what & BEV_EVENT_ERROR) ? evutil_socket_error_to_string(err) : "closed");
		conn_fail(c, CAUSE_CONNECT, detail);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* An answer without a length ends at EOF. */
		llhttp_errno_t e = llhttp_finish(&c->parser);
		if ((e == HPE_OK || e == HPE_PAUSED) && c->complete) {
			conn_answered(c, true);
			return;
		}
		conn_fail(c, CAUSE_CLOSED, c->parser.status_code ?
			  "closed in the middle of the answer" : "closed before any answer");
		return;
	}
	char detail[128];
	snprintf(detail, sizeof(detail), "%s", evutil_socket_error_to_string(err));
	conn_fail(c, CAUSE_RESET, detail);
}

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	if (c->state == CONN_BUSY) {
		char detail[64];
		snprintf(detail, sizeof(detail), "no whole answer within %u ms", c->lg->timeout_ms);
		conn_fail(c, c->connected ? CAUSE_TIMEOUT : CAUSE_CONNECT, detail);
		return;
	}
	if (c->state == CONN_IDLE)
		conn_send(c);
}

static bool conn_open(struct conn *c)
{
	struct lg *lg = c->lg;
	c->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		return false;
	c->connected = false;
	bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
		return false;
	/* A refused connect on loopback is reported here or through conn_event;
	 * both end in conn_fail with CAUSE_CONNECT. */
	return bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->t->addr, c->t->addrlen) == 0;
}

static void conn_send(struct conn *c)
{
	struct lg *lg = c->lg;
	if (lg->stopping || (lg->max_requests && lg->started >= lg->max_requests)) {
		conn_finish_stop(c);
		return;
	}
	lg->started++;
	c->state = CONN_BUSY;
	clock_gettime(CLOCK_MONOTONIC, &c->sent);
	llhttp_init(&c->parser, HTTP_RESPONSE, &lg->settings);
	c->parser.data = c;
	c->complete = false;
	c->by_len = 0;
	c->field_len = 0;
	c->header_field_done = false;
	c->in_by_header = false;

	struct timeval tv = { lg->timeout_ms / 1000, (lg->timeout_ms % 1000) * 1000 };
	event_add(c->timer, &tv);
	if (!c->bev && !conn_open(c)) {
		conn_fail(c, CAUSE_CONNECT, "cannot start a connection");
		return;
	}
	if (bufferevent_write(c->bev, lg->request, lg->request_len) != 0)
		conn_fail(c, CAUSE_RESET, "cannot queue the request");
}

/* Sends the next request now, or arms the timer for its slot. */
static void conn_next(struct conn *c)
{
	struct lg *lg = c->lg;
	if (lg->stopping || (lg->max_requests && lg->started >= lg->max_requests)) {
		conn_finish_stop(c);
		return;
	}
	double delay = 0;
	if (lg->rate > 0) {
		double now = now_s();
		c->next_due += (double)lg->n_conns / lg->rate;
		/* Far behind schedule (a slow answer): do not burst to catch up. */
		if (c->next_due < now - 1.0)
			c->next_due = now;
		delay = c->next_due - now;
	}
	if (c->backoff_ms && (double)c->backoff_ms / 1000.0 > delay)
		delay = (double)c->backoff_ms / 1000.0;
	if (delay <= 0) {
		/* Through the timer, so a run of instant failures cannot recurse. */
		struct timeval zero = { 0, 0 };
		event_add(c->timer, &zero);
		return;
	}
	struct timeval tv = { (time_t)delay, (suseconds_t)((delay - (double)(time_t)delay) * 1e6) };
	event_add(c->timer, &tv);
}

/* ---- reports ----------------------------------------------------------- */

static void print_progress(struct lg *lg)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	printf("progress: t=%.1f ok=%" PRIu64 " failed=%" PRIu64 " rps=%.0f max_ms=%.1f\n",
	       elapsed_s(&lg->start, &now), lg->ok, lg->failed,
	       (double)(lg->ok + lg->failed - lg->last_ok - lg->last_failed) / lg->progress,
	       (double)lg->interval_max_us / 1000.0);
	lg->interval_max_us = 0;
	lg->last_ok = lg->ok;
	lg->last_failed = lg->failed;
	fflush(stdout);
}

static void print_summary(struct lg *lg)
{
	double secs = elapsed_s(&lg->start, &lg->stop);
	uint64_t total = lg->ok + lg->failed;

	printf("loadgen: %.2f s, %u targets, %u connections, Host %s, GET %s%s\n",
	       secs, lg->n_targets, lg->n_conns, lg->host, lg->path,
	       lg->aborted_stop ? " (stopped hard)" : "");
	printf("  requests: %" PRIu64 " ok, %" PRIu64 " failed (%.4f%%), %" PRIu64
	       " in flight at a hard stop, %.0f req/s\n",
	       lg->ok, lg->failed, total ? 100.0 * (double)lg->failed / (double)total : 0.0,
	       lg->aborted, secs > 0 ? (double)total / secs : 0.0);
	printf("  latency of ok requests: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
	       hist_quantile_ms(&lg->hist, 0.50), hist_quantile_ms(&lg->hist, 0.90),
	       hist_quantile_ms(&lg->hist, 0.99), hist_quantile_ms(&lg->hist, 0.999),
	       (double)lg->hist.max_us / 1000.0);
	printf("  failures by cause:");
	for (int i = 0; i < CAUSE_MAX; i++)
		printf(" %s %" PRIu64 "%s", cause_names[i], lg->fail[i], i + 1 < CAUSE_MAX ? "," : "\n");
	printf("  statuses:");
	for (int s = 0; s < 600; s++)
		if (lg->status_counts[s])
			printf(" %d x%" PRIu64, s, lg->status_counts[s]);
	printf("\n");
	for (unsigned i = 0; i < lg->n_targets; i++) {
		struct target *t = &lg->targets[i];
		printf("  target %s: ok %" PRIu64 ", failed %" PRIu64, t->name, t->ok, t->failed);
		for (int k = 0; k < CAUSE_MAX; k++)
			if (t->fail[k])
				printf(", %s %" PRIu64, cause_names[k], t->fail[k]);
		printf("\n");
	}
	if (lg->by_header) {
		printf("  ok by %s:", lg->by_header);
		for (unsigned i = 0; i < lg->n_by; i++)
			printf(" %s=%" PRIu64, lg->by[i].value, lg->by[i].count);
		if (lg->by_other)
			printf(" (other)=%" PRIu64, lg->by_other);
		printf("\n");
	}
	printf("result: ok=%" PRIu64 " failed=%" PRIu64, lg->ok, lg->failed);
	for (int i = 0; i < CAUSE_MAX; i++)
		printf(" %s=%" PRIu64, cause_names[i], lg->fail[i]);
	printf(" aborted=%" PRIu64 " p50_ms=%.3f p99_ms=%.3f max_ms=%.3f rps=%.1f duration_s=%.2f\n",
	       lg->aborted, hist_quantile_ms(&lg->hist, 0.50), hist_quantile_ms(&lg->hist, 0.99),
	       (double)lg->hist.max_us / 1000.0, secs > 0 ? (double)total / secs : 0.0, secs);
	fflush(stdout);
}

/* ---- stopping ---------------------------------------------------------- */

/* Stop sending; requests in flight finish (their timeout bounds that). */
static void lg_stop(struct lg *lg)
{
	if (lg->stopping)
		return;
	lg->stopping = true;
	clock_gettime(CLOCK_MONOTONIC, &lg->stop);
	for (unsigned i = 0; i < lg->n_conns; i++)
		if (lg->conns[i].state == CONN_IDLE)
			conn_finish_stop(&lg->conns[i]);
}

static void on_duration(evutil_socket_t fd, short what, void *arg)
{
	lg_stop(arg);
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
	print_progress(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct lg *lg = arg;
	if (!lg->stopping) {
		lg_stop(lg);
		return;
	}
	/* A second signal: stop now; what is in flight is neither ok nor failed. */
	lg->aborted_stop = true;
	for (unsigned i = 0; i < lg->n_conns; i++)
		if (lg->conns[i].state == CONN_BUSY)
			lg->aborted++;
	event_base_loopbreak(lg->base);
}

/* ---- setup ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen --target ADDR:PORT [--target ADDR:PORT ...] --host HOST [options]\n"
		"Sends GET PATH with Host: HOST over keep-alive connections spread over the\n"
		"targets and counts every request that fails (connect, reset, closed, timeout,\n"
		"status outside 2xx, parse). A failed request is never retried.\n"
		"  --path PATH          request target (default /)\n"
		"  --connections N      keep-alive connections in all (default 4 per target)\n"
		"  --rate R             total requests per second (default: as fast as answered)\n"
		"  --duration S         stop after S seconds (default: until SIGTERM/SIGINT)\n"
		"  --requests N         stop after N requests\n"
		"  --timeout MS         a request with no whole answer by then fails (default 5000)\n"
		"  --max-failures N     exit 0 if at most N requests failed (default 0)\n"
		"  --by-header NAME     count successes by this answer header (e.g. X-Backend-Id)\n"
		"  --progress S         print a progress line every S seconds\n"
		"  --verbose            print every failure (default: the first %d)\n"
		"On SIGTERM/SIGINT (or at the end) it stops sending, lets requests in flight\n"
		"finish, prints a summary and a line \"result: ok=N failed=N ...\"; a second\n"
		"signal stops at once. Exit 0 when failures <= --max-failures, 1 otherwise,\n"
		"2 on bad arguments.\n", FAILURES_SHOWN);
}

static bool parse_number(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		return false;
	*out = v;
	return true;
}

static bool add_target(struct lg *lg, const char *s)
{
	if (lg->n_targets == MAX_TARGETS) {
		fprintf(stderr, "loadgen: at most %d targets\n", MAX_TARGETS);
		return false;
	}
	struct target *t = &lg->targets[lg->n_targets];
	t->addrlen = sizeof(t->addr);
	if (strlen(s) >= sizeof(t->name) || !strchr(s, ':') ||
	    evutil_parse_sockaddr_port(s, (struct sockaddr *)&t->addr, &t->addrlen) != 0) {
		fprintf(stderr, "loadgen: bad target \"%s\" (want an IP literal and a port, ADDR:PORT)\n", s);
		return false;
	}
	snprintf(t->name, sizeof(t->name), "%s", s);
	lg->n_targets++;
	return true;
}

static bool valid_token(const char *s, bool is_path)
{
	if (!*s || (is_path && *s != '/'))
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static const char *option_name(const struct option *opts, int ch)
{
	for (; opts->name; opts++)
		if (opts->val == ch)
			return opts->name;
	return "?";
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "host", required_argument, NULL, 'H' },
		{ "path", required_argument, NULL, 'p' },
		{ "connections", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "max-failures", required_argument, NULL, 'm' },
		{ "by-header", required_argument, NULL, 'b' },
		{ "progress", required_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct lg lg_storage;  /* large (histogram): not on the stack */
	struct lg *lg = &lg_storage;
	double v;
	int ch, rc = 1;

	lg->path = "/";
	lg->timeout_ms = 5000;
	while ((ch = getopt_long(argc, argv, "t:H:p:c:r:d:n:T:m:b:P:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (!add_target(lg, optarg))
				return 2;
			break;
		case 'H': lg->host = optarg; break;
		case 'p': lg->path = optarg; break;
		case 'c':
			if (!parse_number(optarg, 1, MAX_CONNS, &v))
				goto bad_arg;
			lg->n_conns = (unsigned)v;
			break;
		case 'r':
			if (!parse_number(optarg, 0.001, 1e7, &lg->rate))
				goto bad_arg;
			break;
		case 'd':
			if (!parse_number(optarg, 0.001, 1e7, &lg->duration))
				goto bad_arg;
			break;
		case 'n':
			if (!parse_number(optarg, 1, 1e15, &v))
				goto bad_arg;
			lg->max_requests = (uint64_t)v;
			break;
		case 'T':
			if (!parse_number(optarg, 1, 3600000, &v))
				goto bad_arg;
			lg->timeout_ms = (unsigned)v;
			break;
		case 'm':
			if (!parse_number(optarg, 0, 1e15, &v))
				goto bad_arg;
			lg->max_failures = (uint64_t)v;
			break;
		case 'b': lg->by_header = optarg; break;
		case 'P':
			if (!parse_number(optarg, 0.01, 86400, &lg->progress))
				goto bad_arg;
			break;
		case 'v': lg->verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		continue;
bad_arg:
		fprintf(stderr, "loadgen: bad value \"%s\" for --%s\n", optarg, option_name(opts, ch));
		return 2;
	}
	if (optind != argc || lg->n_targets == 0 || !lg->host) {
		fprintf(stderr, "loadgen: %s\n", optind != argc ? "unexpected argument" :
			lg->n_targets == 0 ? "--target is required" : "--host is required");
		usage(stderr);
		return 2;
	}
	if (!valid_token(lg->host, false) || !valid_token(lg->path, true)) {
		fprintf(stderr, "loadgen: --host and --path must be printable without spaces; the path starts with /\n");
		return 2;
	}
	if (lg->by_header && !valid_token(lg->by_header, false)) {
		fprintf(stderr, "loadgen: bad --by-header name\n");
		return 2;
	}
	if (lg->n_conns == 0)
		lg->n_conns = 4 * lg->n_targets;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	size_t need = strlen(lg->path) + strlen(lg->host) + 96;
	lg->request = malloc(need);
	lg->conns = calloc(lg->n_conns, sizeof(*lg->conns));
	lg->base = event_base_new();
	if (!lg->request || !lg->conns || !lg->base) {
		fprintf(stderr, "loadgen: out of memory\n");
		goto out;
	}
	lg->request_len = (size_t)snprintf(lg->request, need,
		"GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: zkrouter-loadgen\r\n\r\n",
		lg->path, lg->host);

	llhttp_settings_init(&lg->settings);
	lg->settings.on_message_complete = on_message_complete;
	if (lg->by_header) {
		lg->settings.on_header_field = on_header_field;
		lg->settings.on_header_value = on_header_value;
		lg->settings.on_header_value_complete = on_header_value_complete;
	}

	lg->ev_sigterm = evsignal_new(lg->base, SIGTERM, on_signal, lg);
	lg->ev_sigint = evsignal_new(lg->base, SIGINT, on_signal, lg);
	if (!lg->ev_sigterm || !lg->ev_sigint || evsignal_add(lg->ev_sigterm, NULL) ||
	    evsignal_add(lg->ev_sigint, NULL)) {
		fprintf(stderr, "loadgen: cannot install signal handlers\n");
		goto out;
	}
	if (lg->duration > 0) {
		struct timeval tv = { (time_t)lg->duration,
			(suseconds_t)((lg->duration - (double)(time_t)lg->duration) * 1e6) };
		lg->ev_duration = evtimer_new(lg->base, on_duration, lg);
		if (!lg->ev_duration || evtimer_add(lg->ev_duration, &tv)) {
			fprintf(stderr, "loadgen: cannot arm the duration timer\n");
			goto out;
		}
	}
	if (lg->progress > 0) {
		struct timeval tv = { (time_t)lg->progress,
			(suseconds_t)((lg->progress - (double)(time_t)lg->progress) * 1e6) };
		lg->ev_progress = event_new(lg->base, -1, EV_PERSIST, on_progress, lg);
		if (!lg->ev_progress || event_add(lg->ev_progress, &tv)) {
			fprintf(stderr, "loadgen: cannot arm the progress timer\n");
			goto out;
		}
	}

	clock_gettime(CLOCK_MONOTONIC, &lg->start);
	double start = now_s();
	for (unsigned i = 0; i < lg->n_conns; i++) {
		struct conn *c = &lg->conns[i];
		c->lg = lg;
		c->index = i;
		c->t = &lg->targets[i % lg->n_targets];
		c->state = CONN_IDLE;
		c->timer = evtimer_new(lg->base, conn_timer, c);
		if (!c->timer) {
			fprintf(stderr, "loadgen: out of memory\n");
			goto out;
		}
		/* Spread the first slots over one interval so a fixed rate is even. */
		if (lg->rate > 0)
			c->next_due = start + ((double)i / lg->n_conns - 1.0) * (double)lg->n_conns / lg->rate;
		lg->live_conns++;
	}
	for (unsigned i = 0; i < lg->n_conns; i++)
		conn_next(&lg->conns[i]);

	event_base_dispatch(lg->base);
	if (!lg->stopping)
		clock_gettime(CLOCK_MONOTONIC, &lg->stop);
	print_summary(lg);
	rc = lg->failed > lg->max_failures ? 1 : 0;

out:
	if (lg->conns) {
		for (unsigned i = 0; i < lg->n_conns; i++) {
			conn_drop(&lg->conns[i]);
			if (lg->conns[i].timer)
				event_free(lg->conns[i].timer);
		}
		free(lg->conns);
	}
	if (lg->ev_duration)
		event_free(lg->ev_duration);
	if (lg->ev_progress)
		event_free(lg->ev_progress);
	if (lg->ev_sigterm)
		event_free(lg->ev_sigterm);
	if (lg->ev_sigint)
		event_free(lg->ev_sigint);
	if (lg->base)
		event_base_free(lg->base);
	free(lg->request);
	return rc;
}
