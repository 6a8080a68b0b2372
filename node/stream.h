/*
 * The stream layer: client connections and their requests (proxy.c,
 * proxy-request.c, proxy-listen.c, proxy-pp.c, proxy-drain.c, appqueue.c,
 * tunnel.c, with headers.c writing the heads). It accepts connections,
 * reads and routes request heads by Host, answers what the router answers
 * itself, and hands each request to the upstream layer (node/upstream.h),
 * which reports back through the struct upstream_ops this layer fills.
 * It calls down to the upstream layer, the backend set and balancer
 * (node/backend.h, node/balancer.h) and connection I/O (node/conn-io.h);
 * the rest of the daemon sees it through node/proxy.h.
 *
 *   listener --accept--> client --head--> request --pick--> backend
 *                          |                 |                 |
 *                     bufferevent      app_state ref      idle pool
 *                          |                 |                 |
 *                          +----- bytes ---->+---- upstream ---+
 *                          +<---- bytes -----+<--- response ---+
 *
 * A client connection owns its requests. HTTP/1.1 carries one at a time
 * (c->req): pipelined requests wait in the client's input buffer (bounded
 * by its read watermark) and are answered in order. HTTP/2 (c->h2, h2.c)
 * carries many at once, one per stream (r->h2s). Either way each request
 * takes the same path from its parsed head on (request_route_head:
 * routing, limits, headers.c, balancing, retries, access log), and two
 * seams keep the protocol out of the upstream layer:
 *
 *   - the request body comes from request_body_in(r): the client's input
 *     (HTTP/1.1, framed as the client sent it), or the stream's DATA,
 *     unframed (HTTP/2), given back to the client's flow control with
 *     request_body_taken();
 *   - the response goes to r->sink (struct resp_sink): HTTP/1.1 writes
 *     today's bytes into the client's output, HTTP/2 submits HEADERS and
 *     DATA frames; "full" is the backpressure that pauses the upstream.
 *
 * A request object and its header arrays come from a free list, so
 * steady-state traffic allocates nothing per request.
 */
#ifndef ZKR_STREAM_H
#define ZKR_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>

#include "node/accesslog.h"
#include "node/backend.h"
#include "node/config.h"
#include "node/conn-io.h"
#include "node/headers.h"
#include "node/host.h"
#include "node/http.h"
#include "node/limits.h"
#include "node/proxyproto.h"
#include "node/proxy.h"
#include "node/upstream.h"
#include "node/upstream-h2.h"
#include "registry/log.h"
#include "registry/table.h"

#define CLIENT_MAGIC 0x7a6b636cu   /* "zkcl" */
#define PP_CONN_MAGIC 0x7a6b7070u  /* "zkpp" */
#define MAX_TRIED 12
#define REQUEST_ID_MAX 128
#define REQUEST_POOL_MAX 256      /* free request objects kept for reuse */
#define ACCEPT_WARN_EVERY_MS 10000 /* out of descriptors: one warning per 10 s */

struct proxy;
struct request;
struct tunnel;
struct tls_store;
struct h2_conn;
struct h2_stream;
struct h2c_req;
struct uh2_pool_stats;

enum client_state {
	CS_IDLE,                   /* waiting for (the rest of) a request head */
	CS_REQUEST,                /* a request is in flight */
	CS_TUNNEL,                 /* upgraded: bytes both ways */
	CS_H2,                     /* HTTP/2: its streams carry the requests */
	CS_CLOSING,                /* flushing the last bytes */
	CS_LINGER,                 /* written side shut, discarding input briefly
				    * so a reset cannot destroy our answer */
	CS_DEAD,                   /* waiting for the reaper */
};

struct client {
	uint32_t magic;
	enum client_state state;
	uint64_t id;
	struct proxy *p;
	struct bufferevent *bev;
	struct conn_io io;
	struct request *req;       /* HTTP/1.1: the request in flight */
	struct tunnel *tun;
	struct h2_conn *h2;        /* HTTP/2 (h2.c), else NULL */
	uint64_t head_start_ms;    /* first byte of the pending head, 0: none */
	uint32_t head_scanned;     /* bytes of it searched for the blank line */
	uint32_t head_probed;      /* bytes of it last checked for garbage */
	uint64_t idle_since_ms;
	uint64_t linger_until_ms;  /* CS_LINGER: closed by then, reads or not */
	unsigned n_requests;
	bool processing;           /* inside client_process: no re-entry */
	bool read_paused;          /* backpressure: the destination is full */
	bool out_full;             /* backpressure: its own output is past the
				    * high mark, so no further request is read
				    * or answered until it drains */
	bool tls;                  /* accepted on a TLS listener */
	bool proto_chosen;         /* ALPN or the h2c preface looked at */
	bool over_conn_limit;      /* over max-connections-per-ip: 429, close */
	bool parked;               /* idle, its bufferevent freed (proxy-mem.c) */
	bool idle_listed;          /* in p->idle_clients */
	struct limits_entry *ipent;   /* its address's per-IP entry (held), or NULL */
	unsigned short local_port;
	char ip[INET6_ADDRSTRLEN];
	char peer[INET6_ADDRSTRLEN + 8];
	TAILQ_ENTRY(client) link;
	TAILQ_ENTRY(client) idle_link;   /* p->idle_clients, by idle_since_ms */
	struct client_slab *slab;  /* the block it lives in (proxy-mem.c) */
};

/*
 * Where a response goes: the seam between the upstream layer, which reads
 * the backend's answer, and the client's protocol. HTTP/1.1's sink
 * (upstream-response.c) writes a serialized head and the body, re-framed,
 * into the client's output; HTTP/2's (h2-stream.c) submits a HEADERS
 * frame and queues the body, unframed, for DATA frames.
 */
struct resp_sink {
	/* Writes the head in r->rhead with the framing and additions of `f`.
	 * False on allocation failure. */
	bool (*head)(struct request *r, const struct fwd_response *f);
	/* Where body bytes go. */
	struct evbuffer *(*body)(struct request *r);
	/* Bytes were added to a body, or a head written: send what the
	 * client's requests have (the request itself may have ended). */
	void (*push)(struct client *c);
	/* True when body(r) holds what this request may buffer: the upstream
	 * stops reading until upstream_resume_response. */
	bool (*full)(const struct request *r);
	/* The router's own answer (errors, redirects): status, its
	 * X-Zkrouter-Error code or Location, a one-line text body. */
	bool (*answer)(struct request *r, int status, const char *code, const char *location,
		       const char *body, size_t blen);
	/* The response's trailer fields, from a backend that gives them as
	 * fields (h2c), once the body is all in body(r). HTTP/1.1 writes the
	 * last chunk with them when it re-chunks the body (n may be 0), and
	 * drops them otherwise; HTTP/2 sends them as a HEADERS frame ending
	 * the stream. False on allocation failure. */
	bool (*trailers)(struct request *r, const struct http_hdr *h, size_t n);
	bool framed;               /* HTTP/1.1: bodies keep an HTTP/1.1 framing
				    * (chunks re-chunked); else data only */
	bool interim;              /* 1xx answers are passed on */
};

struct request {
	enum request_state state;
	struct client *c;
	struct h2_stream *h2s;     /* its HTTP/2 stream, NULL over HTTP/1.1 */
	const struct resp_sink *sink;   /* where its response goes */
	struct request *next_free;
	uint64_t n;                /* the n-th request on its connection */

	struct http_head head;     /* points into the client's input until drained */
	struct http_head rhead;    /* points into the upstream's input */
	llhttp_t parser;           /* request body (chunked) */
	llhttp_t rparser;          /* response */
	struct http_chunk_state chunks, rchunks;   /* of parser, of rparser */
	struct hbuf head_out;      /* the head we send, kept for retries */

	char rid[REQUEST_ID_MAX + 1];
	size_t rid_len;
	char host[HOST_MAX + 1];
	size_t host_len;
	char method[24];
	char *target;              /* copy for the access log */
	size_t target_cap;
	size_t path_off;           /* where the origin-form path starts in it */
	bool head_request, http10, keep_alive, upgrade;
	unsigned retry_after_s;    /* a 429's Retry-After; 0: none */
	bool idempotent;           /* RFC 9110 9.2.2: may be sent twice */
	bool has_key;              /* balancer hash key found (HASH_*) */
	uint64_t key_hash;
	struct backend *sticky;    /* named by the app's sticky cookie (no ref:
				    * r->as holds its backends) */

	struct app_state *as;      /* reference held */
	bool admitted;             /* holds a slot of its app (appqueue.c) */
	bool queued;               /* waits for one, in as->load->queue */
	TAILQ_ENTRY(request) qlink;
	struct event *qtimer;      /* the queue wait's bound; kept with the
				    * pooled object, made at its first wait */
	struct backend *be;        /* reference held while counted outstanding */
	struct upstream *up;
	struct h2c_req *h2c;       /* toward an h2c app instead (upstream-h2c.c) */
	struct backend *tried[MAX_TRIED];
	unsigned n_tried, attempts;
	bool fresh_retry_done;
	uint64_t first_attempt_ms;

	enum body_framing req_framing;
	uint64_t req_remaining;
	bool req_body_done;
	bool req_body_eof;         /* HTTP/2: END_STREAM seen, no DATA to come */
	uint64_t body_moved;

	enum body_framing resp_framing;
	uint64_t resp_remaining;
	bool resp_started;         /* a response byte arrived (a 1xx too):
				    * the app saw the request, no retry */
	uint32_t resp_scanned;     /* bytes of the response head searched so far */
	bool resp_head_done;
	bool resp_reusable;        /* the upstream may go back to the pool */
	bool resp_paused;          /* backpressure: the client's output is full */
	bool resp_cut;             /* ended short after its head went out */
	bool dechunk_raw;          /* chunked response to an HTTP/1.0 client */
	int status;

	uint64_t bytes_in, bytes_out;
	struct timeval start_tv;
	uint64_t start_us, upstream_start_us;
	struct request_obs obs;    /* for its access-log line (accesslog.h) */
};

struct listener {
	struct proxy *p;
	struct evconnlistener *l;
	unsigned short port;
	struct tls_store *tls;     /* a TLS listener's certificates (not owned), else NULL */
	bool proxy_header;         /* connections begin with a PROXY header */
};

/*
 * A connection accepted on a listener with proxy_header, whose header is
 * still being read (proxy-pp.c). It has no bufferevent yet: the header is
 * taken from the socket with recv(), never more than the header, so what
 * follows (an HTTP request, or a TLS ClientHello for the SSL driven
 * next, proxy-tls.c) stays in the socket. It lives at most
 * head_timeout_ms and counts against max_client_connections.
 */
struct pp_conn {
	uint32_t magic;
	struct proxy *p;
	evutil_socket_t fd;
	struct event *ev;          /* readable, or the deadline */
	struct ssl_st *ssl;        /* TLS listener: the SSL for the handshake */
	unsigned short local_port;
	struct sockaddr_storage peer;   /* the socket's own peer */
	uint64_t accepted_ms;
	uint64_t deadline_ms;
	size_t have;               /* header bytes taken from the socket */
	uint8_t buf[PROXYPROTO_MAX];
	TAILQ_ENTRY(pp_conn) link;
};

struct proxy {
	struct event_base *base;
	struct zkr_config cfg;     /* scalar options only; strings not kept */
	char *upgrade_protocols;   /* cfg's upgrade_protocols, our own copy */
	struct http_limits lim;
	struct limits *perip;      /* per client address: the shared table */
	struct accesslog *log;
	struct listener **listeners;  /* each allocated alone: callbacks hold them */
	size_t n_listeners;
	unsigned short tls_port;   /* first TLS listener, for redirect_https */
	struct event *accept_timer;
	bool accept_paused;
	/* Accepted on this worker in the instant between another worker
	 * spending the budget and this one pausing: held, unread, until the
	 * budget has room (proxy-listen.c). */
	struct deferred_conn *deferred;
	size_t n_deferred;
	unsigned accept_unwarned;      /* such errors since, not logged */
	bool stopping;             /* listeners closed (drain) or freeing */
	bool draining;             /* SIGTERM: every response closes its connection */

	struct route_table *table;
	struct backend_map map;
	/* The process's shared state (node/shared.h), this proxy's slot
	 * there, and how other threads wake its loop (proxy_wake). */
	struct proxy_shared *shared;
	bool shared_owned;         /* a proxy alone: made with it */
	int shared_slot;
	int wake_fd;               /* an eventfd */
	struct event *wake_ev;
	_Atomic unsigned wake_bits; /* SHARED_WAKE_*: why it was woken */

	TAILQ_HEAD(, client) clients;
	size_t n_clients;
	TAILQ_HEAD(, pp_conn) pp_conns;    /* reading their PROXY header */
	size_t n_pp_conns;
	struct proxy_pp_counters pp_count;
	struct proxy_tls_counters tls_count;
	struct proxy_h2_counters h2_count;
	/* HTTP/2 connections whose send h2_flush put off to later in the
	 * turn, and the one event that runs them (made with the first). */
	TAILQ_HEAD(, h2_conn) h2_later;
	struct event *h2_later_ev;
	size_t n_active;           /* requests in flight */
	size_t n_tunnels;          /* open tunnels (upgraded requests) */
	size_t n_queued;           /* requests waiting for an app's slot */
	TAILQ_HEAD(, app_load) waiting_loads;   /* the apps they wait for */
	uint64_t app_overloaded;   /* requests answered 503 app_overloaded */
	uint64_t next_id;
	uint64_t rng;

	struct request *free_reqs;
	size_t n_free_reqs;
	size_t free_reqs_low;      /* the fewest free since the janitor's tick */
	struct h2_stream *free_h2s;   /* HTTP/2 streams to reuse (h2-stream.c) */
	size_t n_free_h2s;
	size_t free_h2s_low;
	struct evbuffer *scratch;
	struct hbuf resp_head;     /* the response head being written */
	struct conn_flushq flushq; /* outputs written at the end of the turn */
	const struct upstream_ops *uops;   /* what the upstream layer reports */
	/* h2c apps (upstream-h2c.c): the limits of each instance's pool, and
	 * the counters of the pools retired so far (the live ones are read
	 * through the backend map). */
	struct uh2_limits h2c_lim;
	struct uh2_pool_stats h2c_gone;

	/* Memory of idle connections (proxy-mem.c). */
	TAILQ_HEAD(, client) idle_clients;   /* idle, not parked, oldest first */
	TAILQ_HEAD(, client_slab) client_slabs;   /* with a free slot first */
	struct event *mem_janitor;
	size_t mem_released;       /* objects freed since the last trim */
	int mem_fd_reserved;       /* libevent has records for fds below */

	/* Objects closed inside a callback are freed here, from the loop. */
	struct event *reaper;
	TAILQ_HEAD(, client) dead_clients;
	TAILQ_HEAD(, upstream) dead_upstreams;

	/* Instances with idle backend connections, for the pool's tick
	 * (upstream_pool_tick), and what the pools did. */
	TAILQ_HEAD(, backend) pooled;
	struct proxy_pool_counters pool_count;
};

/* Per-connection logging: connection id (and request number) first. */
#define clog_at(lvl, c, fmt, ...) \
	zkr_log_at((lvl), "c%llu %s: " fmt, (unsigned long long)(c)->id, (c)->peer, ##__VA_ARGS__)
#define clog_debug(c, ...) clog_at(ZKR_LOG_DEBUG, c, __VA_ARGS__)
#define clog_info(c, ...) clog_at(ZKR_LOG_INFO, c, __VA_ARGS__)
#define clog_warn(c, ...) clog_at(ZKR_LOG_WARN, c, __VA_ARGS__)
#define rlog_at(lvl, r, fmt, ...) \
	zkr_log_at((lvl), "c%llu rid=%s %s: " fmt, (unsigned long long)(r)->c->id, (r)->rid, \
		   (r)->host, ##__VA_ARGS__)
#define rlog_debug(r, ...) rlog_at(ZKR_LOG_DEBUG, r, __VA_ARGS__)
#define rlog_info(r, ...) rlog_at(ZKR_LOG_INFO, r, __VA_ARGS__)
#define rlog_warn(r, ...) rlog_at(ZKR_LOG_WARN, r, __VA_ARGS__)

/* ---- proxy.c: connections ---------------------------------------------- */

void client_set_state(struct client *c, enum client_state s);
/* Closes now (CS_DEAD); the memory goes at the next reaper run. A
 * request in flight is abandoned and finished first: the caller must not
 * touch it afterwards. */
void client_close(struct client *c);
/* Closes once the output is flushed (after a final answer). */
void client_close_after_flush(struct client *c);
void proxy_reap_later(struct proxy *p);

/* This proxy's connections: clients, and those still reading a PROXY
 * header. max_client_connections holds for the process's total, the
 * shared budget (shared_conn_take/put, node/shared.h). */
#define PROXY_CONNS(p) ((p)->n_clients + (p)->n_pp_conns)
/* A connection accepted, its client known: `sa` is the socket's peer or
 * the one its PROXY header named, `local_port` the port the client
 * connected to; `ssl` (TLS listeners, else NULL) is taken over. Closes
 * the socket on failure and returns NULL. */
struct client *client_start(struct proxy *p, evutil_socket_t fd, const struct sockaddr *sa,
			    unsigned short local_port, struct ssl_st *ssl);
/* ---- proxy-mem.c: memory of idle connections ----------------------------- */

/*
 * An idle keep-alive client needs only its socket's read event and a
 * small struct: a client idle for MEM_PARK_AFTER_MS is parked (its
 * bufferevent and buffers freed) by a janitor timer, and gets them back
 * when bytes arrive. Client structs come from blocks of their own, so
 * what a request or a burst allocated around them can be given back to
 * the system (malloc_trim) once freed.
 */
struct client *client_mem_alloc(struct proxy *p);
void client_mem_free(struct client *c);
/* The client enters CS_IDLE (idle_since_ms set), or leaves it. */
void client_mem_idle(struct client *c);
void client_mem_busy(struct client *c);
/* From proxy.c: frees an idle client's bufferevent (false when it has
 * something buffered or under way), gives it back. */
bool client_mem_park(struct client *c);
bool client_mem_unpark(struct client *c);
/* A descriptor this loop watches now: libevent's records for the next
 * descriptor numbers are made ahead if needed, so that they lie together
 * (see proxy-mem.c). */
void proxy_mem_fd_seen(struct proxy *p, evutil_socket_t fd);
/* The janitor timer, made with the proxy; and freeing everything. */
bool proxy_mem_init(struct proxy *p);
void proxy_mem_free(struct proxy *p);
/* proxy-request.c: frees `n` objects of the request free list. */
void request_pool_trim(struct proxy *p, size_t n);

/* ---- proxy-listen.c: listeners and accepting --------------------------- */

/* After a connection closed or the cap rose: accepting resumes if it
 * paused at max_client_connections and is below it now. */
void proxy_accept_recheck(struct proxy *p);
/* A drain tick: starts the connections held for the budget if it has room
 * and returns how many still wait (the drain waits for them too). */
size_t proxy_deferred_drain(struct proxy *p);
/* The accept retry timer, made with the proxy. */
bool proxy_accept_init(struct proxy *p);
/* Closes every listener and frees the accept retry timer (proxy_free). */
void proxy_listeners_free(struct proxy *p);

/* ---- proxy-pp.c: PROXY protocol headers -------------------------------- */

/* Reads the PROXY header of a connection just accepted, then hands it to
 * client_start (or closes it). `ssl` is taken over. */
void pp_conn_start(struct proxy *p, evutil_socket_t fd, const struct sockaddr *sa, int salen,
		   unsigned short local_port, struct ssl_st *ssl);
/* Closes every connection still reading its header (proxy_free). */
void pp_conn_close_all(struct proxy *p);
/* A drain tick: closes the connections that sent nothing of a header and
 * were accepted `grace_ms` ago or more; returns how many are left (their
 * header, then their first request, are on the way). */
size_t pp_conn_drain(struct proxy *p, uint64_t now_ms, unsigned grace_ms);

/* ---- proxy-request.c: requests ---------------------------------------- */

/* HTTP/1.1's response sink (upstream-response.c). */
extern const struct resp_sink resp_sink_h1;
/* A request object for client `c` (from the free list), its state reset;
 * counted in flight. NULL on allocation failure. */
struct request *request_new(struct client *c);
/*
 * Routes a request whose head is in r->head (HTTP/2: rebuilt from its
 * fields, h2-stream.c), r->req_framing and req_remaining set: finds the
 * app, applies limits, writes the head for the backend and hands the
 * request on, or answers it. HTTP/1.1 goes through here too.
 */
void request_route_head(struct request *r);
/* Where the request body comes from (the other seam), and how much of it
 * the upstream took (HTTP/2 opens the flow-control window by it). */
struct evbuffer *request_body_in(struct request *r);
void request_body_taken(struct request *r, size_t n);

/* Answers a request the proxy handles itself (errors): status, the
 * X-Zkrouter-Error code and a one-line body. Ends the request. */
void request_fail(struct request *r, int status, const char *code, const char *msg);
/* The response (or the request) is over; logs it and either readies the
 * connection for the next request or closes it after flushing. */
void request_finish(struct request *r);
void request_set_state(struct request *r, enum request_state s);
/* HTTP/1.1's answer of ours, in the client's output (resp_sink_h1). */
bool request_answer_h1(struct request *r, int status, const char *code, const char *location,
		       const char *body, size_t blen);
/* Routes an HTTP/1.1 head still in the client's input (head_len bytes). */
void request_route_h1(struct request *r, size_t head_len);
/* Reading resumes once pipelined requests are below the high mark. */
void client_read_pipelined(struct client *c);

/* ---- proxy-head.c: HTTP/1.1 request heads ------------------------------ */

/* Reads and routes pipelined heads waiting in the client's input. */
void client_process(struct client *c);
/* True when the client's output holds buffer_high_bytes or more; reading
 * it then stops (out_full) until its write callback sees the output down
 * to the low mark. Called before anything more is done for a client. */
bool client_output_full(struct client *c);
/* From the write callback: the output drained to the low mark, so reading
 * and answering go on. */
void client_output_resume(struct client *c);
/* Answers `status` to a head that failed (to parse, or to arrive in time)
 * and closes the connection. */
void client_reject(struct client *c, int status, const char *code, const char *why);
/*
 * Counts the client against the per-address limits, by the address in
 * c->ip (the one X-Forwarded-For carries). Call it wherever that address
 * becomes known: at accept, or once a PROXY header named the real client;
 * a second call gives back what the first took. Over the limit the
 * client's first request is answered 429; far over it the connection is
 * closed here, and false is returned (the caller must not use it then).
 */
bool client_limits_open(struct client *c);
/* Gives the client's per-address entry back; client_close calls it. */
void client_limits_close(struct client *c);
/* Frees the free list of request objects. */
void request_pool_clear(struct proxy *p);


/* ---- appqueue.c: the per-app concurrency cap ---------------------------- */

/* Takes a slot of the request's app (max_concurrent_requests). True when
 * the request may go on now. False when it waits in the app's queue (it
 * goes on from appq_dispatch) or was answered 503 app_overloaded. */
bool appq_admit(struct request *r);
/* The request ends: it leaves the queue, or gives its slot back. Returns
 * the app's load (a reference) when a waiting request may now start:
 * pass it to appq_dispatch once the request is put away. */
struct app_load *appq_leave(struct request *r);
/* Starts waiting requests while the app has free slots; drops `ld`. */
void appq_dispatch(struct proxy *p, struct app_load *ld);
/* A new table is in use: a cap it raised lets waiting requests go. */
void appq_table_changed(struct proxy *p);
/* A slot freed on another worker (the proxy's appq_wake): each app with
 * requests waiting here gets its queue looked at. */
void appq_wake(struct proxy *p);

/* ---- tunnel.c ---------------------------------------------------------- */

/* Turns the client and the upstream into a byte tunnel (after a 101). */
bool tunnel_start(struct client *c, struct upstream *up);
/* Stops the tunnel (closes its upstream); client_close calls it. */
void tunnel_stop(struct tunnel *t);
/* Frees its memory; from the reaper only. */
void tunnel_free(struct tunnel *t);

#endif
