/*
 * HTTP/2 cleartext (h2c, prior knowledge) toward backends: the client
 * the request path uses for apps whose AppConfig says backend_protocol
 * h2c (gRPC servers, mostly). One pool per instance per worker, on the
 * worker's event loop; each pool holds a few multiplexed connections
 * (libevent bufferevent + an nghttp2 client session each).
 *
 *   request path --uh2_submit--> uh2_pool (one instance, one worker)
 *        ^                         |  pending streams, first come first served
 *        |                         v
 *        |                 uh2_conn x max_conns   (SETTINGS seen: ready)
 *        |                         |  streams <= min(ours, peer's
 *        |                         |  SETTINGS_MAX_CONCURRENT_STREAMS)
 *        +---- ops: head, body, trailers, end | error ----+
 *
 * A stream goes to the oldest ready connection with room; when every
 * connection is full another one is opened (up to max_conns), else the
 * stream waits in the pool until a stream ends. A connection becomes
 * ready when the peer's first SETTINGS arrives, so its stream limit is
 * known before anything is sent on it. A connection without streams for
 * idle_timeout_ms is closed (GOAWAY, then close); one the peer closes or
 * breaks fails its streams, each reported once through ops->error.
 *
 * Flow control is HTTP/2's own, end to end: the response body of a
 * stream is delivered as it arrives, at most `stream_window` bytes ahead
 * of what the caller reported forwarded with uh2_stream_consumed, so the
 * caller's buffer is bounded by the window; a slow reader stalls only its
 * own stream. The request body goes through uh2_stream_send_body, which
 * takes at most `body_buffer` bytes ahead of what the peer's windows let
 * out, and calls ops->body_room when it takes more again.
 *
 * Timeouts: the module bounds the connect (and the peer's first
 * SETTINGS) and closes idle connections; the wait for a response, and
 * for a place while every connection is full, is the caller's to bound
 * (uh2_stream_cancel). Requests carry no trailers (gRPC sends none).
 *
 * Everything runs on the pool's event loop thread. Callbacks may call any
 * function here except uh2_pool_free (use uh2_pool_retire from inside).
 */
#ifndef ZKR_UPSTREAM_H2_H
#define ZKR_UPSTREAM_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct evbuffer;
struct uh2_pool;
struct uh2_stream;

struct uh2_limits {
	unsigned max_streams;      /* ours, per connection; the peer's lowers it */
	unsigned max_conns;        /* connections per pool */
	unsigned connect_timeout_ms;   /* TCP connect and the peer's first SETTINGS */
	unsigned idle_timeout_ms;  /* a connection without streams closes; 0: never */
	uint32_t stream_window;    /* response bytes delivered ahead of uh2_stream_consumed */
	size_t body_buffer;        /* request body held per stream, unsent */
	size_t max_header_bytes;   /* a response head or trailers, RFC 9113 sizes */
	size_t output_high;        /* a connection's unwritten output, at most */
};

/* Defaults fit for tests and as option defaults: 100 streams, 4
 * connections, 5 s connect, 60 s idle, 64 KB windows and body, 64 KB of
 * header, 256 KB of output. */
void uh2_limits_default(struct uh2_limits *lim);

/* A header field; valid only during the call that gives it. */
struct uh2_header {
	const char *name;
	size_t namelen;
	const char *value;
	size_t valuelen;
};

/* The request head. Names may be in any case (they are sent lower
 * case); Host, Connection, Keep-Alive, Proxy-Connection,
 * Transfer-Encoding, Upgrade and a TE other than "trailers" are dropped
 * here (HTTP/2 has no such fields, :authority carries the host). */
struct uh2_request {
	const char *method;        /* not CONNECT */
	const char *scheme;        /* "http" or "https", as the client used */
	const char *authority;
	const char *path;          /* origin form, or "*" for OPTIONS */
	const struct uh2_header *headers;
	size_t n_headers;
	bool has_body;             /* false: the HEADERS end the stream */
};

/*
 * Why a stream failed. Only UH2_ERR_CONNECT and UH2_ERR_REFUSED promise
 * that the backend did not act on the request (RFC 9113 section 8.7):
 * those may be retried elsewhere whatever the method.
 */
enum uh2_error {
	UH2_ERR_CONNECT,           /* no connection could be opened */
	UH2_ERR_REFUSED,           /* REFUSED_STREAM, past a GOAWAY, or never sent */
	UH2_ERR_RESET,             /* the backend reset the stream (h2_code) */
	UH2_ERR_CLOSED,            /* the connection closed or broke under it */
	UH2_ERR_PROTOCOL,          /* a malformed or oversized response */
	UH2_ERR_INTERNAL,          /* our side: memory, the library */
};

const char *uh2_error_name(enum uh2_error e);
bool uh2_error_retryable(enum uh2_error e);

/*
 * What a stream reports, in this order: head, body* , trailers?, end; or
 * error at any point (also after head). After end or error nothing more
 * comes and the stream handle is gone: make no further call with it.
 * Informational (1xx) heads are not reported.
 */
struct uh2_stream_ops {
	void (*head)(void *arg, int status, const struct uh2_header *h, size_t n);
	/* Response body bytes; report them forwarded with uh2_stream_consumed. */
	void (*body)(void *arg, const uint8_t *data, size_t len);
	void (*trailers)(void *arg, const struct uh2_header *h, size_t n);
	void (*end)(void *arg);
	void (*error)(void *arg, enum uh2_error e, uint32_t h2_code);
	/* uh2_stream_send_body would take more again; may be NULL. */
	void (*body_room)(void *arg);
	/* The request head left on a connection: from now on the backend
	 * may act on the request. Before it, an error is UH2_ERR_CONNECT or
	 * UH2_ERR_REFUSED, so a caller that holds the body back until then
	 * can still send the whole request elsewhere. May be NULL. */
	void (*sent)(void *arg);
};

/* A pool toward one backend address; `name` ("host:port") is for logs.
 * NULL on allocation failure. */
struct uh2_pool *uh2_pool_new(struct event_base *base, const struct sockaddr *addr,
			      socklen_t addrlen, const char *name, const struct uh2_limits *lim);
/* Now: waiting and open streams fail (UH2_ERR_REFUSED / UH2_ERR_CLOSED),
 * connections close, memory goes. Not from inside one of its callbacks. */
void uh2_pool_free(struct uh2_pool *pool);
/* The instance left: waiting streams fail (UH2_ERR_REFUSED), open ones
 * finish, each connection closes after its last; the pool frees itself
 * then. The handle is the caller's no longer. */
void uh2_pool_retire(struct uh2_pool *pool);

/* Connections opened from now on give up after `ms` without a connection
 * and the server's SETTINGS (the app's connect timeout may change). */
void uh2_pool_set_connect_timeout(struct uh2_pool *pool, unsigned ms);

struct uh2_pool_stats {
	unsigned conns;            /* open or opening */
	unsigned conns_ready;
	unsigned streams;          /* on connections */
	unsigned pending;          /* waiting for room */
	uint64_t conns_opened;
	uint64_t conns_idle_closed;
	uint64_t conns_failed;     /* connect failures and broken connections */
	uint64_t streams_done;     /* ended cleanly */
	uint64_t streams_failed;
};
void uh2_pool_stats(const struct uh2_pool *pool, struct uh2_pool_stats *st);

/* Starts a stream. The request is copied; with has_body, send the body
 * with uh2_stream_send_body. NULL when the pool is retired or memory
 * runs out (nothing is called back then). */
struct uh2_stream *uh2_submit(struct uh2_pool *pool, const struct uh2_request *req,
			      const struct uh2_stream_ops *ops, void *arg);
/* Takes request body bytes from `src` (drained of what was taken) while
 * the stream holds less than body_buffer; `end` marks the end of the
 * body once all of src was taken. Returns the bytes taken; when src is
 * left non-empty, ops->body_room tells when to call again. */
size_t uh2_stream_send_body(struct uh2_stream *s, struct evbuffer *src, bool end);
/* From ops->head: true when that head ends the stream (no body, no
 * trailers follow: gRPC's trailers-only answer), so the caller can send
 * it on as a complete answer. */
bool uh2_stream_head_ends(const struct uh2_stream *s);
/* `n` bytes of response body were forwarded: the window opens by n. */
void uh2_stream_consumed(struct uh2_stream *s, size_t n);
/* The caller gives up (client gone, timeout): RST_STREAM(CANCEL), no
 * callback any more, the handle is gone. */
void uh2_stream_cancel(struct uh2_stream *s);

#endif
