/*
 * The access log: one line per request, in logfmt (key=value pairs, a
 * value quoted and escaped when it holds anything but safe characters), to
 * a file or to stdout ("-"). Lines are buffered and written in batches (on
 * a short timer once attached to the loop, or when the buffer fills), so
 * a busy router does not pay one write(2) per request. SIGHUP calls
 * accesslog_reopen so log rotation works by rename + HUP.
 *
 * Line format (keys always in this order):
 *   time=2026-11-26T22:53:45.123Z client=10.0.0.1:5123 host=app.example.com
 *   method=GET target=/path status=200 in=512 out=1024 instance=10.0.0.7:8080
 *   attempts=1 rid=5f0c... total_ms=1.234 upstream_ms=0.987
 * An absent value is written as `-`. Values containing a space, '"', '=',
 * '\\', a control byte or a byte >= 0x80 are written in double quotes with
 * \" \\ \n \r \t and \xHH escapes, so a hostile target cannot start a
 * forged line or a forged key.
 */
#ifndef ZKR_ACCESSLOG_H
#define ZKR_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

struct event_base;

struct access_entry {
	struct timeval start;       /* when the request head began */
	const char *client;         /* "ip:port" */
	const char *host;           /* as normalised, or as received if invalid */
	const char *method;
	const char *target;
	int status;                 /* 0: none sent (client went away) */
	uint64_t bytes_in;          /* from the client, head and body */
	uint64_t bytes_out;         /* to the client, head and body */
	const char *instance;       /* id of the instance that answered, or NULL */
	unsigned attempts;          /* instances tried */
	const char *request_id;
	double total_ms;
	double upstream_ms;         /* from the first connect to the last response byte */
};

struct accesslog;

/* What every request adds up to, written or not (for /metrics). */
#define ACCESSLOG_BUCKETS 12
extern const double accesslog_bucket_le[ACCESSLOG_BUCKETS];   /* seconds */

struct accesslog_counters {
	uint64_t requests;
	uint64_t by_class[6];       /* [status / 100]; [0]: no status sent */
	uint64_t bytes_in, bytes_out;
	uint64_t retried;           /* attempts > 1 */
	uint64_t duration_bucket[ACCESSLOG_BUCKETS];  /* total_ms <= le, cumulative */
	double duration_sum_s;
	uint64_t write_errors;
};

/*
 * path: a file (opened for append, created 0640), "-" for stdout, or NULL
 * for no log at all: entries are then only counted, which keeps /metrics
 * working whether or not an access log is configured.
 */
struct accesslog *accesslog_open(const char *path, char *why, size_t whylen);

void accesslog_counters(const struct accesslog *l, struct accesslog_counters *out);

/* Flush buffered lines at least every 200 ms from this loop. Optional. */
bool accesslog_attach(struct accesslog *l, struct event_base *base);

void accesslog_write(struct accesslog *l, const struct access_entry *e);

/* Writes what is buffered now. */
void accesslog_flush(struct accesslog *l);

/* Flushes and re-opens the same path (SIGHUP). On failure the old file
 * stays in use and false is returned. */
bool accesslog_reopen(struct accesslog *l);

/* Flushes and closes. NULL is fine. */
void accesslog_close(struct accesslog *l);

/* Formats one line (with its '\n') into buf; returns the length it needs,
 * like snprintf. Exposed for the tests. */
size_t accesslog_format(const struct access_entry *e, char *buf, size_t buflen);

#endif
