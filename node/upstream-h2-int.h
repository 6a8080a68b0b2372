/*
 * What upstream-h2.c (connections and pools) and upstream-h2-stream.c
 * (streams: the request out, the response in, nghttp2's callbacks)
 * share: the three objects and the calls between the two files. See
 * upstream-h2.h for the model.
 */
#ifndef ZKR_UPSTREAM_H2_INT_H
#define ZKR_UPSTREAM_H2_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "node/upstream-h2.h"

#define UH2_CONN_MAGIC 0x7a683263u    /* "zh2c" */
#define UH2_STREAM_MAGIC 0x7a683273u  /* "zh2s" */
/* A closing connection's GOAWAY gets this long to leave. */
#define UH2_CLOSE_GRACE_MS 1000

enum conn_state {
	C_CONNECTING,              /* TCP connect, then the peer's first SETTINGS */
	C_READY,                   /* takes streams */
	C_DRAINING,                /* GOAWAY either way: its streams finish, no new ones */
	C_DEAD,                    /* closed, waiting for the pool's `later` */
};

struct uh2_stream {
	uint32_t magic;
	struct uh2_pool *pool;
	struct uh2_conn *conn;     /* NULL while pending */
	int32_t id;                /* 0 until submitted to a connection */
	TAILQ_ENTRY(uh2_stream) link;  /* pool->pending or conn->streams */
	const struct uh2_stream_ops *ops;  /* NULL once end, error or cancel */
	void *arg;
	/* The request head, one allocation, until it is submitted. */
	nghttp2_nv *nva;
	size_t nvlen;
	bool has_body;
	/* The request body waiting for the peer's windows. */
	struct evbuffer *body;
	bool body_end;
	bool body_deferred;        /* the data source said DEFERRED */
	bool room_wanted;          /* send_body left bytes behind */
	/* The response head or trailers being received. */
	char *hbuf;
	size_t hlen, hcap;
	struct hfield { size_t no, nl, vo, vl; } *hf;
	size_t nhf, hfcap;
	size_t hbytes;             /* RFC 9113 size of the block so far */
	int status;                /* of the block being received; 0: none */
	bool head_done;
	bool block_ends;           /* the block being delivered ends the stream */
	size_t unconsumed;         /* delivered, not yet uh2_stream_consumed */
	bool headers_sent;         /* our HEADERS left: the backend may act on it */
	enum uh2_error local_err;  /* set with has_local_err: ours to report */
	bool has_local_err;
	bool peer_reset;
	uint32_t peer_code;
};

TAILQ_HEAD(stream_list, uh2_stream);

struct uh2_conn {
	uint32_t magic;
	enum conn_state state;
	uint64_t id;
	struct uh2_pool *pool;
	struct bufferevent *bev;
	nghttp2_session *ngh;
	struct event *timer;       /* connect, idle or close bound, by state */
	struct stream_list streams;
	unsigned n_streams;        /* of ours, not yet closed */
	int32_t goaway_last;       /* the peer's GOAWAY last stream id, or -1 */
	bool busy;                 /* uh2_conn_pump or nghttp2 on the stack */
	bool want_send;
	bool idle_closing;
	bool was_ready;            /* the peer's SETTINGS came once */
	TAILQ_ENTRY(uh2_conn) link;
};

struct uh2_pool {
	struct event_base *base;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[300];
	struct uh2_limits lim;
	TAILQ_HEAD(, uh2_conn) conns;  /* oldest first */
	TAILQ_HEAD(, uh2_conn) dead;
	struct stream_list pending;
	struct event *later;       /* frees dead connections, runs deferred dispatch */
	unsigned depth;            /* entries from the loop on the stack */
	bool dispatching, redispatch;
	bool retired;
	uint64_t next_conn_id;
	struct uh2_pool_stats st;
};

/* ---- upstream-h2.c ------------------------------------------------------ */

void uh2_timer_ms(struct event *ev, unsigned ms);
/* The streams `c` may carry: ours and the peer's limit, the lower. */
unsigned uh2_conn_capacity(const struct uh2_conn *c);
/* Moves nghttp2's output to the socket (deferred while one runs). */
void uh2_conn_pump(struct uh2_conn *c);
/* Places waiting streams; deferred while a callback runs. */
void uh2_pool_dispatch(struct uh2_pool *pool);

/* ---- upstream-h2-stream.c ----------------------------------------------- */

nghttp2_session_callbacks *uh2_session_callbacks(void);
/* Submits a waiting stream on `c`; false when c takes no new stream. */
bool uh2_stream_attach(struct uh2_conn *c, struct uh2_stream *s);
/* Reports the failure once (no callback after it). */
void uh2_stream_fail(struct uh2_stream *s, enum uh2_error e, uint32_t code);
void uh2_stream_free(struct uh2_stream *s);
/* After a send: streams that wanted room for their body and have it. */
void uh2_notify_room(struct uh2_conn *c);

#endif
