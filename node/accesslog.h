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
 *   attempts=1 rid=5f0c... total_ms=1.234 upstream_ms=0.987 app=app.example.com
 *   err=- scheme=https tls=TLSv1.3 ua="curl/7.88.1" xff=- connect_ms=0.210
 *   upstream_status=-
 * An absent value is written as `-`. Values containing a space, '"', '=',
 * '\\', a control byte or a byte >= 0x80 are written in double quotes with
 * \" \\ \n \r \t and \xHH escapes, so a hostile target cannot start a
 * forged line or a forged key.
 *
 * The JSON format (accesslog_set_format) writes one object per line with
 * the same keys in the same order: strings escaped (\" \\ \n \r \t,
 * \u00XX for other controls and for every byte >= 0x80, so a line is valid
 * JSON and ASCII whatever the client sent), numbers as numbers, absent
 * values as null.
 *
 * status is 499 for a request whose client closed its connection before
 * the whole answer was handed to it (nginx's convention); the status the
 * instance had answered, if any, is upstream_status then.
 */
#ifndef ZKR_ACCESSLOG_H
#define ZKR_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

struct event_base;
struct http_head;
struct ssl_st;

/* The status logged for a client that left before its answer. */
#define ACCESSLOG_CLIENT_GONE 499
/* ua and xff are kept to this many bytes (then cut, marked "..."). */
#define ACCESSLOG_HDR_MAX 256

enum accesslog_format {
	ACCESSLOG_LOGFMT,
	ACCESSLOG_JSON,
};

/*
 * What a request gathers along its way for its access-log line and its
 * app's metrics, beyond what the request path itself needs (a request
 * holds one, zeroed with it).
 */
struct request_obs {
	const char *error;          /* X-Zkrouter-Error of our own answer (a literal), or NULL */
	const char *tls_version;    /* "TLSv1.3" ..., NULL on plain HTTP */
	uint64_t connect_start_us;  /* the first connect to an instance began */
	uint64_t connect_us;        /* until a connection was up (0: pooled or none) */
	bool connecting, connected;
	bool client_gone;           /* the client closed with the request in flight */
	char ua[ACCESSLOG_HDR_MAX + 4];
	char xff[ACCESSLOG_HDR_MAX + 4];  /* every X-Forwarded-For line, joined */
};

/* Copies what the log wants of a request head (User-Agent, the incoming
 * X-Forwarded-For) and the connection's TLS version (ssl may be NULL). */
void accesslog_obs_head(struct request_obs *o, const struct http_head *h, struct ssl_st *ssl);
/* The request starts connecting to an instance / its connection is up. */
void accesslog_obs_connecting(struct request_obs *o, uint64_t now_us);
void accesslog_obs_connected(struct request_obs *o, uint64_t now_us);

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
	bool upstream_used;         /* the request reached an instance (upstream_ms is one) */
	const char *app;            /* the app's domain (a wildcard app's too), or NULL */
	const char *error;          /* X-Zkrouter-Error code of our own answer, or NULL */
	bool tls;                   /* https */
	const char *proto;          /* "HTTP/1.1", "HTTP/2.0" ..., NULL before a request line */
	const char *tls_version;
	const char *user_agent;
	const char *xff;            /* the X-Forwarded-For the client sent */
	double connect_ms;          /* < 0: no new connection made */
	int upstream_status;        /* 0: none; the instance's status when status is 499 */
};

struct accesslog;

/* What every request adds up to, written or not (for /metrics). */
#define ACCESSLOG_BUCKETS 12
extern const double accesslog_bucket_le[ACCESSLOG_BUCKETS];   /* seconds */

/* The X-Zkrouter-Error codes counted by name; any other is "other". */
#define ACCESSLOG_ERRORS 19
extern const char *const accesslog_error_names[ACCESSLOG_ERRORS];
/* The index of `code` in accesslog_error_names (the last: other). */
unsigned accesslog_error_index(const char *code);

struct accesslog_counters {
	uint64_t requests;
	uint64_t by_class[6];       /* [status / 100]; [0]: no status sent */
	uint64_t bytes_in, bytes_out;
	uint64_t retried;           /* attempts > 1 */
	uint64_t duration_bucket[ACCESSLOG_BUCKETS];  /* total_ms <= le, cumulative */
	double duration_sum_s;
	uint64_t write_errors;
	uint64_t errors[ACCESSLOG_ERRORS];   /* our own answers, by code */
	uint64_t client_gone;       /* logged 499 */
};

struct appstats;
/* The per-app counters of this log's requests (node/appstats.h). */
struct appstats *accesslog_appstats(struct accesslog *l);

/*
 * path: a file (opened for append, created 0640), "-" for stdout, or NULL
 * for no log at all: entries are then only counted, which keeps /metrics
 * working whether or not an access log is configured.
 */
struct accesslog *accesslog_open(const char *path, char *why, size_t whylen);

void accesslog_counters(const struct accesslog *l, struct accesslog_counters *out);

/* logfmt (the default) or JSON lines. */
void accesslog_set_format(struct accesslog *l, enum accesslog_format f);
/* "logfmt" or "json"; false for anything else. */
bool accesslog_format_parse(const char *name, enum accesslog_format *out);

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
size_t accesslog_format_json(const struct access_entry *e, char *buf, size_t buflen);

#endif
