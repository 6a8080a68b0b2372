/*
 * The upstream layer (upstream.c, upstream-response.c): connections to
 * backends, their per-instance pools of idle keep-alive connections,
 * retries, sending the request and relaying the response. It calls down
 * to the backend set and balancer (node/backend.h, node/balancer.h) and
 * to connection I/O (node/conn-io.h), and reports upward to the request
 * (stream) layer only through struct upstream_ops, which the stream layer
 * fills (proxy_new); it reads and fills the request it carries (struct
 * request: the head to send, the response state, the client's output) as
 * data. The backend layer reaches the idle pool the same way, through the
 * hook in struct backend (set through the backend_map).
 */
#ifndef ZKR_UPSTREAM_H
#define ZKR_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "node/conn-io.h"

struct backend;
struct client;
struct proxy;
struct request;

#define UPSTREAM_MAGIC 0x7a6b7570u /* "zkup" */

enum upstream_state {
	US_CONNECTING,
	US_ACTIVE,                 /* carrying a request */
	US_IDLE,                   /* in its backend's pool */
	US_TUNNEL,
	US_DEAD,
};

struct upstream {
	uint32_t magic;
	enum upstream_state state;
	uint64_t id;
	struct proxy *p;
	struct bufferevent *bev;
	struct conn_io io;
	struct backend *be;        /* reference held */
	struct request *req;
	bool reused;               /* taken from the pool for this request */
	TAILQ_ENTRY(upstream) link;        /* backend idle pool */
	TAILQ_ENTRY(upstream) reap_link;
};

/* A request's progress (struct request, node/stream.h): here because most
 * of it happens in this layer, which reports it through upstream_ops. */
enum request_state {
	RQ_ROUTING,
	RQ_CONNECTING,
	RQ_SENDING,                /* head sent, body going */
	RQ_WAITING,                /* request complete, no response byte yet */
	RQ_RESPONDING,
	RQ_DONE,
};

/* What the upstream layer reports upward, about the request it carries; the
 * proxy holds them (p->uops), set by the stream layer. */
struct upstream_ops {
	/* Answers the request with an error of ours and ends it. */
	void (*request_fail)(struct request *r, int status, const char *code, const char *msg);
	/* The response is over: log it, ready the connection for the next. */
	void (*request_finish)(struct request *r);
	void (*request_set_state)(struct request *r, enum request_state s);
	/* A 101 answer: the client and the upstream become a tunnel. */
	bool (*tunnel_start)(struct client *c, struct upstream *up);
	void (*client_close)(struct client *c);
	/* Objects closed inside a callback are freed at the next reaper run. */
	void (*reap_later)(struct proxy *p);
};

/* The ops for request `r` (upstream*.c). */
#define UP_OPS(r) ((r)->c->p->uops)

/* Picks an instance and sends the request there (or fails it). */
void upstream_attempt(struct request *r);
/* Moves request body bytes from the client toward the backend. */
void upstream_pump_request(struct request *r);
/* True while the request has a backend to send its body to (an HTTP/1.1
 * connection up, or an h2c stream). */
bool upstream_sending(const struct request *r);
/* The instance could not take the request and did not act on it: the
 * next one is tried (upstream-h2c.c's retryable stream errors). */
void upstream_next_attempt(struct request *r);
/* Moves request body bytes from `in` to `out` until the input is empty,
 * the body is complete or `out` passes buffer_high_bytes. A chunked
 * HTTP/1.1 body keeps its framing when keep_chunks, else goes as its
 * data alone (upstream-h2c.c's streams); HTTP/2 DATA is framed for an
 * HTTP/1.1 backend. False when the request failed (answered). */
bool upstream_body_move(struct request *r, struct evbuffer *in, struct evbuffer *out,
			bool keep_chunks);
/* True when the request waits for body bytes the client does not send
 * (nothing of ours holds them back): its read timeout then means 408. */
bool request_body_stalled(const struct request *r);
/* The client went away or the request is abandoned: drop the backend
 * connection without pooling it. */
void upstream_abandon(struct request *r);
/* The request is over: the connection goes back to its pool when
 * `reusable` and the exchange ended cleanly, else it is closed. */
void upstream_release(struct request *r, bool reusable);
void upstream_free_dead(struct proxy *p);
/* Closes a connection now; its memory goes at the next reaper run. */
void upstream_close(struct upstream *up);
/* upstream-response.c: reads the backend's answer and moves it on. */
void upstream_read_response(struct request *r);
/* Response body moving resumes once the client drained its output. */
void upstream_resume_response(struct request *r);
/* A failure on the backend side: a 502/504 answer, or the client's
 * connection cut when part of the response is already out. */
void upstream_response_fail(struct request *r, int status, const char *code, const char *msg);

/* Closes every idle pooled connection of `b` (removed, draining, freed):
 * the backend layer's idle_close hook (struct backend). */
void upstream_pool_close(struct backend *b);
/* Once a second (the proxy's janitor): closes half of the idle
 * connections that no request used since the last tick (rounded down), so that each pool
 * follows its instance's recent demand instead of a fixed size. */
void upstream_pool_tick(struct proxy *p);

#endif
