/*
 * What h2.c (the connection) and h2-stream.c (its streams) share.
 *
 *   client (CS_H2) --- h2_conn --- nghttp2_session
 *                          |
 *                      h2_stream ... h2_stream      (one per open stream)
 *                          |
 *                       request ----> upstream      (the one request path)
 *
 * A stream lives from its first HEADERS to nghttp2's close of it; its
 * request from the end of its head to request_finish. Either may end
 * first: a request done leaves its stream sending the rest of the body,
 * a stream reset ends its request (upstream abandoned).
 */
#ifndef ZKR_H2_INT_H
#define ZKR_H2_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <nghttp2/nghttp2.h>

#include "node/h2-check.h"
#include "node/h2.h"
#include "node/stream.h"

#define H2_STREAM_MAGIC 0x7a6b6873u   /* "zkhs" */

/* h2-mem.c: nghttp2's allocator for one client session (its mem_user_data
 * is the struct), and the pages given back when the connection idles. */
#define H2_MEM_MAPS 8
struct h2_mem {
	nghttp2_mem mem;
	struct {
		void *p;
		size_t len;
	} maps[H2_MEM_MAPS];       /* nghttp2's big blocks, each mapped */
	unsigned n;
	void *framebuf;            /* nghttp2's frame buffer, among them */
	void *hd_ring;             /* the HPACK encoder's entry ring, among them */
	bool making;               /* the session is being made */
};
void h2_mem_init(struct h2_mem *m);
/* The connection is idle: the frame buffer's pages and those of the other
 * blocks that hold only zeros go back to the system. */
void h2_mem_release(struct h2_mem *m);

/* A field of a head being received: offsets into the stream's storage,
 * which grows (pointers are made once the head is whole). */
struct h2_field_at {
	uint32_t name, nlen, value, vlen;
};

struct h2_stream {
	uint32_t magic;
	int32_t id;
	struct h2_conn *h2;
	struct request *r;         /* NULL before its head is routed and after */
	struct evbuffer *in;       /* request body received, not yet taken */
	struct evbuffer *out;      /* response body, for DATA frames */
	struct evbuffer *trailers; /* the backend's chunked trailers, or NULL */
	struct hbuf fields;        /* the head's names and values */
	struct h2_field_at *at;
	unsigned n_fields, cap_fields;
	size_t head_bytes;         /* RFC 9113 §6.5.2 size of the fields so far */
	uint64_t body_ms;          /* when its last DATA came (or its head) */
	bool head_too_large;
	bool head_done;            /* END_HEADERS of the request head */
	bool started;              /* its request was made */
	bool in_ended;             /* END_STREAM from the client */
	bool resp_submitted;       /* our HEADERS are queued */
	bool resp_end;             /* the response body is all in `out` */
	bool deferred;             /* the data source said "no data yet" */
	bool closed;               /* nghttp2 closed it */
	char ws_key[24];           /* a Sec-WebSocket-Key made up (RFC 8441) */
	TAILQ_ENTRY(h2_stream) link;    /* the connection's streams */
	TAILQ_ENTRY(h2_stream) plink;   /* work after a read or a send */
	bool pending;
	struct h2_stream *next_free;    /* in the worker's pool (h2-stream.c) */
};

struct h2_conn {
	struct client *c;
	nghttp2_session *s;
	struct h2_mem mem;         /* the session's allocator: freed after it */
	TAILQ_HEAD(, h2_stream) streams;
	TAILQ_HEAD(, h2_stream) pending;   /* to start, pump or resume */
	unsigned n_streams;
	unsigned busy;             /* inside an nghttp2 call: no re-entry */
	bool want_flush;           /* h2_flush asked for meanwhile */
	/* h2_flush's send, later in the turn: in the proxy's h2_later. */
	TAILQ_ENTRY(h2_conn) later_link;
	bool later;
	bool flushing;
	bool dead;                 /* h2_close ran */
	bool failed;               /* h2_fail ran: GOAWAY on its way */
	/* Flood bounds: token buckets refilled by the clock. */
	uint64_t ctl_tokens, rst_tokens;   /* in thousandths of a frame */
	uint64_t bucket_ms;
	/* Drain: 0 none, 1 the first GOAWAY (max id) sent, 2 the last one. */
	int drain_step;
	uint64_t drain_ms;
	uint64_t last_active_ms;   /* when it last had a stream open */
	uint64_t stall_check_ms;   /* streams' bodies last looked at */
	nghttp2_nv *nva;           /* a response head's fields, reused */
	size_t nva_cap;
	struct hbuf names;         /* their names, lower-cased */
};

/* h2-stream.c */
struct h2_stream *h2_stream_new(struct h2_conn *h2, int32_t id);
void h2_stream_free(struct h2_stream *st);
/* nghttp2's header callback for a request head; 0 or an nghttp2 error. */
int h2_stream_field(struct h2_stream *st, const uint8_t *name, size_t nlen, const uint8_t *value,
		    size_t vlen);
/* The head is whole: checked, rebuilt and routed. */
void h2_stream_start(struct h2_stream *st);
/* Body bytes arrived or END_STREAM: moved on toward the backend. */
void h2_stream_pump(struct h2_stream *st);
/* The stream closed (reset or done): its request ends if it has one. */
void h2_stream_closed(struct h2_stream *st);
/* The response's DATA source for nghttp2. */
ssize_t h2_stream_data(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
		       uint32_t *flags, nghttp2_data_source *src, void *arg);
extern const struct resp_sink h2_sink;


/* h2.c */
void h2_pending(struct h2_conn *h2, struct h2_stream *st);
/* The connection ends for a reason of ours: GOAWAY with `error`, close. */
void h2_fail(struct h2_conn *h2, uint32_t error, const char *why);

#endif
