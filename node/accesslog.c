/*
 * The access log (format in accesslog.h). Lines are formatted into a
 * per-log buffer and written with one write(2) per batch: when the buffer
 * passes ACCESSLOG_FLUSH_BYTES, on a 200 ms timer once attached to the
 * loop, and on reopen and close. A log that is not attached writes every
 * line at once (tests, tools). A write that fails is counted and logged
 * once per burst, never fatal: the router keeps routing without its log.
 *
 * Every entry is also counted (requests, status classes, bytes, a latency
 * histogram, our own errors by code) for /metrics, and per app
 * (node/appstats.h); with no path the log only counts. A log belongs to
 * one thread (each worker has its own, on the same path).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "node/accesslog.h"
#include "node/appstats.h"
#include "node/http.h"
#include "registry/log.h"

#define ACCESSLOG_BUF_BYTES (128 * 1024)   /* past one line of the longest */
#define ACCESSLOG_FLUSH_BYTES (48 * 1024)
#define ACCESSLOG_VALUE_MAX 2048   /* longer values are cut, marked with "..." */
/* Eight values of up to ACCESSLOG_VALUE_MAX and two of ACCESSLOG_HDR_MAX,
 * escaped (6 bytes per input byte at worst, JSON's \u00XX), the short
 * fixed ones and the numbers. */
#define ACCESSLOG_LINE_MAX (6 * (8 * ACCESSLOG_VALUE_MAX + 2 * ACCESSLOG_HDR_MAX) + 1024)
#define ACCESSLOG_FLUSH_MS 200
_Static_assert(ACCESSLOG_LINE_MAX <= ACCESSLOG_BUF_BYTES, "a line fits in the buffer");

const double accesslog_bucket_le[ACCESSLOG_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

/* Sorted, for the binary search; "other" last, outside the search. */
const char *const accesslog_error_names[ACCESSLOG_ERRORS] = {
	"app_overloaded", "at_capacity", "backend_failed", "backend_timeout", "bad_request",
	"body_too_large", "header_too_large", "method_not_allowed", "no_instances", "no_table",
	"out_of_memory", "overloaded", "request_timeout", "too_many_connections",
	"too_many_requests", "unknown_route", "uri_too_long", "version_not_supported", "other",
};

unsigned accesslog_error_index(const char *code)
{
	unsigned lo = 0, hi = ACCESSLOG_ERRORS - 1;

	while (code != NULL && lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = strcmp(code, accesslog_error_names[mid]);

		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return ACCESSLOG_ERRORS - 1;
}

/* Copies at most ACCESSLOG_HDR_MAX bytes of v to dst (sized for the mark
 * "..." too), from offset *at; the bytes themselves are escaped when the
 * line is written. */
static void obs_append(char *dst, size_t *at, const char *v, size_t len)
{
	size_t room = ACCESSLOG_HDR_MAX - *at;

	if (*at >= ACCESSLOG_HDR_MAX)
		return;
	if (len > room) {
		memcpy(dst + *at, v, room);
		memcpy(dst + ACCESSLOG_HDR_MAX, "...", 4);
		*at = ACCESSLOG_HDR_MAX;
		return;
	}
	memcpy(dst + *at, v, len);
	*at += len;
	dst[*at] = '\0';
}

void accesslog_obs_head(struct request_obs *o, const struct http_head *h, struct ssl_st *ssl)
{
	size_t at = 0;
	int i = http_find(h, "user-agent");

	if (i >= 0)
		obs_append(o->ua, &at, h->hdrs[i].value, h->hdrs[i].vlen);
	at = 0;
	for (unsigned k = 0; k < h->n_hdrs; k++) {
		if (h->hdrs[k].kind != HDR_X_FORWARDED_FOR || h->hdrs[k].vlen == 0)
			continue;
		if (at > 0)
			obs_append(o->xff, &at, ", ", 2);
		obs_append(o->xff, &at, h->hdrs[k].value, h->hdrs[k].vlen);
	}
	o->tls_version = ssl != NULL ? SSL_get_version(ssl) : NULL;
}

void accesslog_obs_connecting(struct request_obs *o, uint64_t now_us)
{
	/* From the first attempt: a retry's connect time includes the
	 * failed ones before it. */
	if (o->connect_start_us == 0)
		o->connect_start_us = now_us;
	o->connecting = true;
}

void accesslog_obs_connected(struct request_obs *o, uint64_t now_us)
{
	if (!o->connecting)
		return;
	o->connecting = false;
	o->connected = true;
	o->connect_us = now_us > o->connect_start_us ? now_us - o->connect_start_us : 0;
}

struct accesslog {
	char *path;                 /* NULL: count only */
	int fd;                     /* -1 when counting only */
	struct accesslog_counters n;
	struct appstats *apps;
	enum accesslog_format format;
	bool is_stdout;
	struct event *timer;
	char buf[ACCESSLOG_BUF_BYTES];
	size_t used;
	bool error_logged;
	char line[ACCESSLOG_LINE_MAX];
};

/* Appends at most the room left; keeps *n counting what was wanted. */
struct out {
	char *buf;
	size_t len, n;
};

static void put(struct out *o, const char *s, size_t len)
{
	if (o->n < o->len) {
		size_t room = o->len - o->n;
		memcpy(o->buf + o->n, s, len < room ? len : room);
	}
	o->n += len;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
	char tmp[96];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (k > 0)
		put(o, tmp, (size_t)k < sizeof(tmp) ? (size_t)k : sizeof(tmp) - 1);
}

static bool plain_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '=' && c != '\\';
}

/* key=value, quoting and escaping the value when it needs it. */
static void put_kv(struct out *o, const char *key, const char *v, bool first)
{
	static const char hex[] = "0123456789abcdef";
	size_t len, i;
	bool quote = false;

	if (!first)
		put(o, " ", 1);
	put(o, key, strlen(key));
	put(o, "=", 1);
	if (v == NULL) {
		put(o, "-", 1);
		return;
	}
	len = strlen(v);
	bool cut = len > ACCESSLOG_VALUE_MAX;
	if (cut)
		len = ACCESSLOG_VALUE_MAX;
	for (i = 0; i < len; i++)
		if (!plain_byte((unsigned char)v[i]))
			quote = true;
	if (len == 0 || quote || cut)
		put(o, "\"", 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		char esc[4];
		if (plain_byte(c) || c == ' ' || c == '=') {
			put(o, (const char *)&v[i], 1);
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(o, esc, 2);
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			put(o, esc, 2);
		} else {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
			put(o, esc, 4);
		}
	}
	if (cut)
		put(o, "...", 3);
	if (len == 0 || quote || cut)
		put(o, "\"", 1);
}

static void put_time(struct out *o, const struct access_entry *e)
{
	struct tm tm;
	char ts[40];
	time_t sec = e->start.tv_sec;

	if (gmtime_r(&sec, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		strcpy(ts, "1970-01-01T00:00:00");
	put(o, ts, strlen(ts));
	putf(o, ".%03dZ", (int)(e->start.tv_usec / 1000));
}

static void put_ms(struct out *o, const char *key, double ms, bool json)
{
	if (ms < 0)
		putf(o, json ? ",\"%s\":null" : " %s=-", key);
	else
		putf(o, json ? ",\"%s\":%.3f" : " %s=%.3f", key, ms);
}

static int logged_upstream_status(const struct access_entry *e)
{
	return e->status == ACCESSLOG_CLIENT_GONE ? e->upstream_status : 0;
}

size_t accesslog_format(const struct access_entry *e, char *buf, size_t buflen)
{
	struct out o = { buf, buflen, 0 };
	int us = logged_upstream_status(e);

	put(&o, "time=", 5);
	put_time(&o, e);
	put_kv(&o, "client", e->client, false);
	put_kv(&o, "host", e->host, false);
	put_kv(&o, "method", e->method, false);
	put_kv(&o, "target", e->target, false);
	putf(&o, " status=%d in=%llu out=%llu", e->status, (unsigned long long)e->bytes_in,
	     (unsigned long long)e->bytes_out);
	put_kv(&o, "instance", e->instance, false);
	putf(&o, " attempts=%u", e->attempts);
	put_kv(&o, "rid", e->request_id, false);
	putf(&o, " total_ms=%.3f upstream_ms=%.3f", e->total_ms, e->upstream_ms);
	put_kv(&o, "app", e->app, false);
	put_kv(&o, "err", e->error, false);
	put_kv(&o, "scheme", e->tls ? "https" : "http", false);
	put_kv(&o, "proto", e->proto, false);
	put_kv(&o, "tls", e->tls_version, false);
	put_kv(&o, "ua", e->user_agent, false);
	put_kv(&o, "xff", e->xff, false);
	put_ms(&o, "connect_ms", e->connect_ms, false);
	if (us > 0)
		putf(&o, " upstream_status=%d\n", us);
	else
		put(&o, " upstream_status=-\n", 19);
	if (buflen > 0)
		buf[o.n < buflen ? o.n : buflen - 1] = '\0';
	return o.n;
}

/* ,"key":"value" (or null): every byte that is not printable ASCII, and
 * the quote and backslash, escaped, so the line stays one valid JSON
 * object of ASCII whatever a client put in its headers. */
static void put_json(struct out *o, const char *key, const char *v, bool first)
{
	static const char hex[] = "0123456789abcdef";
	size_t len, i;
	bool cut;

	putf(o, first ? "\"%s\":" : ",\"%s\":", key);
	if (v == NULL) {
		put(o, "null", 4);
		return;
	}
	len = strlen(v);
	cut = len > ACCESSLOG_VALUE_MAX;
	if (cut)
		len = ACCESSLOG_VALUE_MAX;
	put(o, "\"", 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		char esc[6];
		size_t run = i;

		while (run < len && (unsigned char)v[run] >= 0x20 && (unsigned char)v[run] < 0x7f &&
		       v[run] != '"' && v[run] != '\\')
			run++;
		if (run > i) {
			put(o, v + i, run - i);
			i = run - 1;
			continue;
		}
		if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c;
			put(o, esc, 2);
		} else {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			put(o, esc, 6);
		}
	}
	if (cut)
		put(o, "...", 3);
	put(o, "\"", 1);
}

size_t accesslog_format_json(const struct access_entry *e, char *buf, size_t buflen)
{
	struct out o = { buf, buflen, 0 };
	int us = logged_upstream_status(e);

	put(&o, "{\"time\":\"", 9);
	put_time(&o, e);
	put(&o, "\"", 1);
	put_json(&o, "client", e->client, false);
	put_json(&o, "host", e->host, false);
	put_json(&o, "method", e->method, false);
	put_json(&o, "target", e->target, false);
	putf(&o, ",\"status\":%d,\"in\":%llu,\"out\":%llu", e->status,
	     (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out);
	put_json(&o, "instance", e->instance, false);
	putf(&o, ",\"attempts\":%u", e->attempts);
	put_json(&o, "rid", e->request_id, false);
	putf(&o, ",\"total_ms\":%.3f,\"upstream_ms\":%.3f", e->total_ms, e->upstream_ms);
	put_json(&o, "app", e->app, false);
	put_json(&o, "err", e->error, false);
	put_json(&o, "scheme", e->tls ? "https" : "http", false);
	put_json(&o, "proto", e->proto, false);
	put_json(&o, "tls", e->tls_version, false);
	put_json(&o, "ua", e->user_agent, false);
	put_json(&o, "xff", e->xff, false);
	put_ms(&o, "connect_ms", e->connect_ms, true);
	if (us > 0)
		putf(&o, ",\"upstream_status\":%d}\n", us);
	else
		put(&o, ",\"upstream_status\":null}\n", 25);
	if (buflen > 0)
		buf[o.n < buflen ? o.n : buflen - 1] = '\0';
	return o.n;
}

bool accesslog_format_parse(const char *name, enum accesslog_format *out)
{
	if (strcmp(name, "logfmt") == 0)
		*out = ACCESSLOG_LOGFMT;
	else if (strcmp(name, "json") == 0)
		*out = ACCESSLOG_JSON;
	else
		return false;
	return true;
}

void accesslog_set_format(struct accesslog *l, enum accesslog_format f)
{
	if (l != NULL)
		l->format = f;
}

static int open_fd(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

struct accesslog *accesslog_open(const char *path, char *why, size_t whylen)
{
	struct accesslog *l = calloc(1, sizeof(*l));
	if (l != NULL && (l->apps = appstats_new()) == NULL) {
		free(l);
		l = NULL;
	}
	if (l != NULL && path == NULL) {
		l->fd = -1;
		return l;
	}
	if (l == NULL || (l->path = strdup(path)) == NULL) {
		snprintf(why, whylen, "out of memory");
		if (l != NULL)
			appstats_free(l->apps);
		free(l);
		return NULL;
	}
	l->is_stdout = strcmp(path, "-") == 0;
	l->fd = l->is_stdout ? STDOUT_FILENO : open_fd(path);
	if (l->fd < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		appstats_free(l->apps);
		free(l->path);
		free(l);
		return NULL;
	}
	return l;
}

/* Each worker thread has its own log, each its own descriptor opened with
 * O_APPEND: a write of whole lines lands whole at the end of the file.
 * Standard output is one descriptor for them all, and a pipe keeps a
 * write whole only up to PIPE_BUF: writers to it take turns. */
static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

void accesslog_flush(struct accesslog *l)
{
	size_t off = 0;
	if (l == NULL || l->fd < 0 || l->used == 0)
		return;
	if (l->is_stdout)
		pthread_mutex_lock(&stdout_lock);
	while (off < l->used) {
		ssize_t w = write(l->fd, l->buf + off, l->used - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			l->n.write_errors++;
			if (!l->error_logged)
				log_error("access log %s: write failed: %s (%zu bytes dropped)",
					  l->path, w < 0 ? strerror(errno) : "short write", l->used - off);
			l->error_logged = true;
			break;
		}
		off += (size_t)w;
	}
	if (l->is_stdout)
		pthread_mutex_unlock(&stdout_lock);
	if (off == l->used)
		l->error_logged = false;
	l->used = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	accesslog_flush(arg);
}

bool accesslog_attach(struct accesslog *l, struct event_base *base)
{
	struct timeval tv = { 0, ACCESSLOG_FLUSH_MS * 1000 };
	if (l->timer != NULL || l->fd < 0)
		return true;
	l->timer = event_new(base, -1, EV_PERSIST, flush_cb, l);
	if (l->timer == NULL || event_add(l->timer, &tv) != 0) {
		if (l->timer != NULL)
			event_free(l->timer);
		l->timer = NULL;
		return false;
	}
	return true;
}

static void count(struct accesslog_counters *n, const struct access_entry *e)
{
	double s = e->total_ms / 1000.0;
	n->requests++;
	n->by_class[e->status >= 100 && e->status < 600 ? e->status / 100 : 0]++;
	n->bytes_in += e->bytes_in;
	n->bytes_out += e->bytes_out;
	n->retried += e->attempts > 1;
	if (e->error != NULL)
		n->errors[accesslog_error_index(e->error)]++;
	n->client_gone += e->status == ACCESSLOG_CLIENT_GONE;
	n->duration_sum_s += s;
	for (size_t i = 0; i < ACCESSLOG_BUCKETS; i++)
		if (s <= accesslog_bucket_le[i])
			n->duration_bucket[i]++;
}

void accesslog_counters(const struct accesslog *l, struct accesslog_counters *out)
{
	if (l == NULL)
		memset(out, 0, sizeof(*out));
	else
		*out = l->n;
}

struct appstats *accesslog_appstats(struct accesslog *l)
{
	return l != NULL ? l->apps : NULL;
}

void accesslog_write(struct accesslog *l, const struct access_entry *e)
{
	char *line;
	size_t n;

	if (l == NULL)
		return;
	count(&l->n, e);
	if (e->app != NULL)
		appstats_count(l->apps, e);
	if (l->fd < 0)
		return;
	line = l->line;
	if (l->format == ACCESSLOG_JSON)
		n = accesslog_format_json(e, line, sizeof(l->line));
	else
		n = accesslog_format(e, line, sizeof(l->line));
	if (n >= sizeof(l->line)) {
		/* Cannot happen with the value caps; keep the line a line anyway. */
		n = sizeof(l->line) - 1;
		line[n - 1] = '\n';
	}
	if (l->used + n > sizeof(l->buf))
		accesslog_flush(l);
	memcpy(l->buf + l->used, line, n);
	l->used += n;
	if (l->timer == NULL || l->used >= ACCESSLOG_FLUSH_BYTES)
		accesslog_flush(l);
}

bool accesslog_reopen(struct accesslog *l)
{
	int fd;
	if (l == NULL)
		return true;
	accesslog_flush(l);
	if (l->is_stdout || l->fd < 0)
		return true;
	if ((fd = open_fd(l->path)) < 0) {
		log_error("access log %s: reopen failed, keeping the old file: %s", l->path, strerror(errno));
		return false;
	}
	close(l->fd);
	l->fd = fd;
	log_info("access log %s reopened", l->path);
	return true;
}

void accesslog_close(struct accesslog *l)
{
	if (l == NULL)
		return;
	accesslog_flush(l);
	if (l->timer != NULL)
		event_free(l->timer);
	if (!l->is_stdout && l->fd >= 0)
		close(l->fd);
	appstats_free(l->apps);
	free(l->path);
	free(l);
}
