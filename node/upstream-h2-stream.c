/*
 * The streams of the h2c client toward backends (see upstream-h2.h):
 * the request head and body out, the response head, body and trailers
 * in, through nghttp2's callbacks, and the calls the request path makes
 * on a stream. Connections and pools are upstream-h2.c's.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "node/upstream-h2-int.h"
#include "registry/log.h"

static const char *const error_names[] = {
	[UH2_ERR_CONNECT] = "connect", [UH2_ERR_REFUSED] = "refused", [UH2_ERR_RESET] = "reset",
	[UH2_ERR_CLOSED] = "closed", [UH2_ERR_PROTOCOL] = "protocol", [UH2_ERR_INTERNAL] = "internal",
};

const char *uh2_error_name(enum uh2_error e)
{
	return (unsigned)e < sizeof(error_names) / sizeof(error_names[0]) ? error_names[e] : "unknown";
}

bool uh2_error_retryable(enum uh2_error e)
{
	return e == UH2_ERR_CONNECT || e == UH2_ERR_REFUSED;
}

void uh2_limits_default(struct uh2_limits *lim)
{
	lim->max_streams = 100;
	lim->max_conns = 4;
	lim->connect_timeout_ms = 5000;
	lim->idle_timeout_ms = 60000;
	lim->stream_window = 65535;
	lim->body_buffer = 64 * 1024;
	lim->max_header_bytes = 64 * 1024;
	lim->output_high = 256 * 1024;
}

void uh2_stream_free(struct uh2_stream *s)
{
	evbuffer_free(s->body);
	free(s->nva);
	free(s->hbuf);
	free(s->hf);
	s->magic = 0;
	free(s);
}

/* Reports the failure (once) and stops callbacks. */
void uh2_stream_fail(struct uh2_stream *s, enum uh2_error e, uint32_t code)
{
	const struct uh2_stream_ops *ops = s->ops;

	if (ops == NULL)
		return;
	s->ops = NULL;
	s->pool->st.streams_failed++;
	log_debug("h2c %s: stream %d failed: %s (h2 code %u)", s->pool->name, s->id,
		  uh2_error_name(e), code);
	ops->error(s->arg, e, code);
}

/* The stream leaves its connection's count (and the window it held). */
static void stream_detach(struct uh2_stream *s)
{
	struct uh2_conn *c = s->conn;

	TAILQ_REMOVE(&c->streams, s, link);
	c->n_streams--;
	if (s->unconsumed > 0 && c->state != C_DEAD)
		nghttp2_session_consume_connection(c->ngh, s->unconsumed);
	s->unconsumed = 0;
	s->conn = NULL;
	if (c->n_streams == 0 && c->state == C_READY && c->pool->lim.idle_timeout_ms)
		uh2_timer_ms(c->timer, c->pool->lim.idle_timeout_ms);
	c->pool->redispatch = true;
}

static struct uh2_stream *conn_find(struct uh2_conn *c, int32_t id)
{
	struct uh2_stream *s = nghttp2_session_get_stream_user_data(c->ngh, id);

	return s != NULL && s->magic == UH2_STREAM_MAGIC && s->conn == c ? s : NULL;
}

/* ---- the response: nghttp2 callbacks ----------------------------------- */

static bool hold_field(struct uh2_stream *s, const uint8_t *name, size_t nl, const uint8_t *value,
		       size_t vl)
{
	if (s->hlen + nl + vl > s->hcap) {
		size_t cap = s->hcap ? s->hcap : 512;
		char *nb;

		while (cap < s->hlen + nl + vl)
			cap *= 2;
		if ((nb = realloc(s->hbuf, cap)) == NULL)
			return false;
		s->hbuf = nb;
		s->hcap = cap;
	}
	if (s->nhf == s->hfcap) {
		size_t cap = s->hfcap ? 2 * s->hfcap : 16;
		struct hfield *nf = realloc(s->hf, cap * sizeof(*nf));

		if (nf == NULL)
			return false;
		s->hf = nf;
		s->hfcap = cap;
	}
	s->hf[s->nhf++] = (struct hfield){ s->hlen, nl, s->hlen + nl, vl };
	memcpy(s->hbuf + s->hlen, name, nl);
	memcpy(s->hbuf + s->hlen + nl, value, vl);
	s->hlen += nl + vl;
	return true;
}

static int on_begin_headers(nghttp2_session *ngh, const nghttp2_frame *frame, void *user)
{
	struct uh2_stream *s = conn_find(user, frame->hd.stream_id);

	if (s != NULL) {
		s->hlen = s->nhf = s->hbytes = 0;
		s->status = 0;
	}
	return 0;
}

static int on_header(nghttp2_session *ngh, const nghttp2_frame *frame, const uint8_t *name,
		     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *user)
{
	struct uh2_stream *s = conn_find(user, frame->hd.stream_id);

	if (s == NULL || s->ops == NULL)
		return 0;
	s->hbytes += nl + vl + 32;
	if (s->hbytes > s->pool->lim.max_header_bytes) {
		s->has_local_err = true;
		s->local_err = UH2_ERR_PROTOCOL;
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* RST_STREAM for this stream */
	}
	if (nl == 7 && memcmp(name, ":status", 7) == 0) {
		/* nghttp2's HTTP checks saw three digits; checked again, as
		 * what follows relies on it. */
		if (vl != 3 || value[0] < '1' || value[0] > '9' || value[1] < '0' || value[1] > '9' ||
		    value[2] < '0' || value[2] > '9') {
			s->has_local_err = true;
			s->local_err = UH2_ERR_PROTOCOL;
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		s->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
		return 0;
	}
	if (!hold_field(s, name, nl, value, vl)) {
		s->has_local_err = true;
		s->local_err = UH2_ERR_INTERNAL;
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

/*
 * A field nghttp2's checks refused (a connection-specific one, a bad
 * byte in a name or value...): without this callback it would be
 * dropped and the rest passed on. RFC 9113 section 8.1.1 calls the
 * response malformed: the stream fails (RST_STREAM PROTOCOL_ERROR).
 */
static int on_invalid_header(nghttp2_session *ngh, const nghttp2_frame *frame,
			     const uint8_t *name, size_t nl, const uint8_t *value, size_t vl,
			     uint8_t flags, void *user)
{
	struct uh2_stream *s = conn_find(user, frame->hd.stream_id);

	if (s != NULL) {
		s->has_local_err = true;
		s->local_err = UH2_ERR_PROTOCOL;
	}
	nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_PROTOCOL_ERROR);
	return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

/* Hands the block received to the caller; false when out of memory. */
static bool deliver_block(struct uh2_stream *s, bool trailers)
{
	struct uh2_header *h = NULL;

	if (s->nhf > 0 && (h = malloc(s->nhf * sizeof(*h))) == NULL)
		return false;
	for (size_t i = 0; i < s->nhf; i++)
		h[i] = (struct uh2_header){ s->hbuf + s->hf[i].no, s->hf[i].nl, s->hbuf + s->hf[i].vo,
					    s->hf[i].vl };
	if (trailers) {
		if (s->ops->trailers != NULL)
			s->ops->trailers(s->arg, h, s->nhf);
	} else {
		s->head_done = true;
		s->ops->head(s->arg, s->status, h, s->nhf);
	}
	free(h);
	return true;
}

static void stream_end(struct uh2_stream *s)
{
	const struct uh2_stream_ops *ops = s->ops;
	struct uh2_conn *c = s->conn;

	s->ops = NULL;
	s->pool->st.streams_done++;
	/* A response complete before our body: the rest is not wanted
	 * (RFC 9113 section 8.1 lets the server stop us with NO_ERROR). */
	if (!nghttp2_session_get_stream_local_close(c->ngh, s->id))
		nghttp2_submit_rst_stream(c->ngh, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
	ops->end(s->arg);
}

static int on_frame_recv(nghttp2_session *ngh, const nghttp2_frame *frame, void *user)
{
	struct uh2_conn *c = user;
	struct uh2_stream *s;

	switch (frame->hd.type) {
	case NGHTTP2_SETTINGS:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK)
			return 0;
		if (c->state == C_CONNECTING) {
			c->state = C_READY;
			c->was_ready = true;
			event_del(c->timer);
			if (c->pool->lim.idle_timeout_ms)
				uh2_timer_ms(c->timer, c->pool->lim.idle_timeout_ms);
			log_debug("h2c %s: c%llu ready, peer takes %u streams", c->pool->name,
				  (unsigned long long)c->id, uh2_conn_capacity(c));
		}
		c->pool->redispatch = true;   /* the limit may have moved */
		return 0;
	case NGHTTP2_GOAWAY:
		c->goaway_last = frame->goaway.last_stream_id;
		if (c->state == C_READY || c->state == C_CONNECTING)
			c->state = C_DRAINING;
		log_debug("h2c %s: c%llu GOAWAY, last stream %d, code %u", c->pool->name,
			  (unsigned long long)c->id, frame->goaway.last_stream_id,
			  frame->goaway.error_code);
		c->pool->redispatch = true;
		return 0;
	case NGHTTP2_RST_STREAM:
		if ((s = conn_find(c, frame->hd.stream_id)) != NULL) {
			s->peer_reset = true;
			s->peer_code = frame->rst_stream.error_code;
		}
		return 0;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		break;
	default:
		return 0;
	}
	if ((s = conn_find(c, frame->hd.stream_id)) == NULL || s->ops == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS) {
		if (s->status >= 100 && s->status < 200) {
			/* 1xx: the final head follows. */
			s->status = 0;
			s->hlen = s->nhf = 0;
			return 0;
		}
		s->block_ends = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
		if (!deliver_block(s, s->head_done)) {
			uh2_stream_fail(s, UH2_ERR_INTERNAL, 0);
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		if (s->ops == NULL)   /* cancelled from the callback */
			return 0;
	}
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		stream_end(s);
	return 0;
}

static int on_data_chunk(nghttp2_session *ngh, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	struct uh2_stream *s = conn_find(user, id);

	if (s == NULL || s->ops == NULL) {
		/* Nobody takes it: the windows open at once. */
		nghttp2_session_consume(ngh, id, len);
		return 0;
	}
	s->unconsumed += len;
	s->ops->body(s->arg, data, len);
	return 0;
}

static int on_stream_close(nghttp2_session *ngh, int32_t id, uint32_t code, void *user)
{
	struct uh2_conn *c = user;
	struct uh2_stream *s = conn_find(c, id);

	if (s == NULL)
		return 0;
	if (s->ops != NULL) {
		enum uh2_error e = UH2_ERR_RESET;

		if (s->has_local_err)
			e = s->local_err;
		else if (code == NGHTTP2_REFUSED_STREAM)
			e = UH2_ERR_REFUSED;
		else if (!s->peer_reset && code != NGHTTP2_NO_ERROR)
			e = UH2_ERR_PROTOCOL;   /* nghttp2 refused the response */
		uh2_stream_fail(s, e, s->peer_reset ? s->peer_code : code);
	}
	nghttp2_session_set_stream_user_data(ngh, id, NULL);
	stream_detach(s);
	uh2_stream_free(s);
	return 0;
}

static int on_frame_send(nghttp2_session *ngh, const nghttp2_frame *frame, void *user)
{
	struct uh2_stream *s;

	if (frame->hd.type != NGHTTP2_HEADERS || (s = conn_find(user, frame->hd.stream_id)) == NULL ||
	    s->headers_sent)
		return 0;
	s->headers_sent = true;
	if (s->ops != NULL && s->ops->sent != NULL)
		s->ops->sent(s->arg);
	return 0;
}

static int on_frame_not_send(nghttp2_session *ngh, const nghttp2_frame *frame, int err, void *user)
{
	struct uh2_conn *c = user;
	struct uh2_stream *s;

	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	TAILQ_FOREACH(s, &c->streams, link)
		if (s->id == frame->hd.stream_id)
			break;
	if (s == NULL)
		return 0;
	/* The request never left: nothing reached the backend. */
	uh2_stream_fail(s, UH2_ERR_REFUSED, 0);
	if (nghttp2_session_find_stream(ngh, s->id) == NULL) {
		stream_detach(s);
		uh2_stream_free(s);
	}
	return 0;
}

/* ---- the request body: nghttp2's data source --------------------------- */

static ssize_t body_read(nghttp2_session *ngh, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct uh2_stream *s = src->ptr;
	size_t have = evbuffer_get_length(s->body);
	int n;

	if (have == 0 && !s->body_end) {
		s->body_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	n = evbuffer_remove(s->body, buf, have < len ? have : len);
	if (n < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (s->body_end && evbuffer_get_length(s->body) == 0)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return n;
}

size_t uh2_stream_send_body(struct uh2_stream *s, struct evbuffer *src, bool end)
{
	size_t have, room, take;

	if (s == NULL || s->magic != UH2_STREAM_MAGIC || s->ops == NULL || !s->has_body ||
	    s->body_end)
		return 0;
	have = evbuffer_get_length(s->body);
	room = have < s->pool->lim.body_buffer ? s->pool->lim.body_buffer - have : 0;
	take = evbuffer_get_length(src);
	if (take > room)
		take = room;
	if (take > 0 && evbuffer_remove_buffer(src, s->body, take) != (int)take) {
		uh2_stream_fail(s, UH2_ERR_INTERNAL, 0);
		if (s->conn != NULL)
			nghttp2_submit_rst_stream(s->conn->ngh, NGHTTP2_FLAG_NONE, s->id,
						  NGHTTP2_INTERNAL_ERROR);
		return 0;
	}
	if (evbuffer_get_length(src) == 0 && end)
		s->body_end = true;
	s->room_wanted = evbuffer_get_length(src) > 0;
	if (s->conn != NULL && s->id > 0 && s->body_deferred &&
	    (evbuffer_get_length(s->body) > 0 || s->body_end)) {
		s->body_deferred = false;
		nghttp2_session_resume_data(s->conn->ngh, s->id);
	}
	if (s->conn != NULL)
		uh2_conn_pump(s->conn);
	return take;
}

/* After a send: streams that wanted room and have it hear so. */
void uh2_notify_room(struct uh2_conn *c)
{
	struct uh2_stream *s;

	TAILQ_FOREACH(s, &c->streams, link) {
		if (!s->room_wanted || s->ops == NULL ||
		    evbuffer_get_length(s->body) >= c->pool->lim.body_buffer / 2)
			continue;
		s->room_wanted = false;
		if (s->ops->body_room != NULL)
			s->ops->body_room(s->arg);
	}
}

nghttp2_session_callbacks *uh2_session_callbacks(void)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return NULL;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_invalid_header_callback(cb, on_invalid_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
	return cb;
}

/* ---- streams onto connections ------------------------------------------ */

/* Submits a waiting stream on `c`; false when c takes no more streams. */
bool uh2_stream_attach(struct uh2_conn *c, struct uh2_stream *s)
{
	nghttp2_data_provider dp = { .source.ptr = s, .read_callback = body_read };
	int32_t id = nghttp2_submit_request(c->ngh, NULL, s->nva, s->nvlen,
					     s->has_body ? &dp : NULL, s);

	if (id < 0) {
		/* Stream ids used up (or memory): this connection is done. */
		log_info("h2c %s: c%llu takes no new stream: %s", c->pool->name,
			 (unsigned long long)c->id, nghttp2_strerror(id));
		c->state = C_DRAINING;
		return false;
	}
	s->id = id;
	s->conn = c;
	free(s->nva);
	s->nva = NULL;
	TAILQ_INSERT_TAIL(&c->streams, s, link);
	c->n_streams++;
	event_del(c->timer);
	return true;
}


/* HTTP/1.1 fields with no meaning in HTTP/2 (RFC 9113 section 8.2.2). */
static bool dropped_field(const struct uh2_header *h)
{
	static const char *const names[] = { "host", "connection", "keep-alive", "proxy-connection",
					     "transfer-encoding", "upgrade" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (h->namelen == strlen(names[i]) && strncasecmp(h->name, names[i], h->namelen) == 0)
			return true;
	return h->namelen == 2 && strncasecmp(h->name, "te", 2) == 0 &&
	       !(h->valuelen == 8 && strncasecmp(h->value, "trailers", 8) == 0);
}

/* The request head as nghttp2 name/value pairs in one allocation:
 * the pairs, then the bytes they point at. */
static bool copy_head(struct uh2_stream *s, const struct uh2_request *req)
{
	const char *pseudo[4][2] = { { ":method", req->method }, { ":scheme", req->scheme },
				     { ":authority", req->authority }, { ":path", req->path } };
	size_t n = 4, bytes = 0;
	char *p;

	for (size_t i = 0; i < 4; i++)
		bytes += strlen(pseudo[i][0]) + strlen(pseudo[i][1]);
	for (size_t i = 0; i < req->n_headers; i++) {
		if (dropped_field(&req->headers[i]))
			continue;
		n++;
		bytes += req->headers[i].namelen + req->headers[i].valuelen;
	}
	s->nva = malloc(n * sizeof(*s->nva) + bytes + 1);
	if (s->nva == NULL)
		return false;
	p = (char *)(s->nva + n);
	s->nvlen = 0;
#define PUT(nm, nlen, val, vlen, lower) do { \
		nghttp2_nv *nv = &s->nva[s->nvlen++]; \
		nv->name = (uint8_t *)p; \
		for (size_t k = 0; k < (nlen); k++) \
			p[k] = (lower) && (nm)[k] >= 'A' && (nm)[k] <= 'Z' ? (char)((nm)[k] + 32) : (nm)[k]; \
		nv->namelen = (nlen); \
		p += (nlen); \
		memcpy(p, (val), (vlen)); \
		nv->value = (uint8_t *)p; \
		nv->valuelen = (vlen); \
		p += (vlen); \
		nv->flags = NGHTTP2_NV_FLAG_NONE; \
	} while (0)
	for (size_t i = 0; i < 4; i++)
		PUT(pseudo[i][0], strlen(pseudo[i][0]), pseudo[i][1], strlen(pseudo[i][1]), false);
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct uh2_header *h = &req->headers[i];

		if (!dropped_field(h))
			PUT(h->name, h->namelen, h->value, h->valuelen, true);
	}
#undef PUT
	return true;
}

struct uh2_stream *uh2_submit(struct uh2_pool *pool, const struct uh2_request *req,
			      const struct uh2_stream_ops *ops, void *arg)
{
	struct uh2_stream *s;

	if (pool == NULL || pool->retired || req->method == NULL || req->scheme == NULL ||
	    req->authority == NULL || req->path == NULL || strcmp(req->method, "CONNECT") == 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->magic = UH2_STREAM_MAGIC;
	s->pool = pool;
	s->ops = ops;
	s->arg = arg;
	s->has_body = req->has_body;
	s->body = evbuffer_new();
	if (s->body == NULL || !copy_head(s, req)) {
		uh2_stream_free(s);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&pool->pending, s, link);
	pool->st.pending++;
	uh2_pool_dispatch(pool);
	return s;
}

bool uh2_stream_head_ends(const struct uh2_stream *s)
{
	return s != NULL && s->magic == UH2_STREAM_MAGIC && s->block_ends;
}

void uh2_stream_consumed(struct uh2_stream *s, size_t n)
{
	if (s == NULL || s->magic != UH2_STREAM_MAGIC || s->conn == NULL || s->ops == NULL)
		return;
	if (n > s->unconsumed)
		n = s->unconsumed;
	if (n == 0)
		return;
	s->unconsumed -= n;
	nghttp2_session_consume(s->conn->ngh, s->id, n);
	uh2_conn_pump(s->conn);
}

void uh2_stream_cancel(struct uh2_stream *s)
{
	struct uh2_conn *c;

	if (s == NULL || s->magic != UH2_STREAM_MAGIC || s->ops == NULL)
		return;
	s->ops = NULL;
	if ((c = s->conn) == NULL) {
		TAILQ_REMOVE(&s->pool->pending, s, link);
		s->pool->st.pending--;
		uh2_stream_free(s);
		return;
	}
	/* The windows it held open again; it is freed when nghttp2 closes it. */
	if (s->unconsumed > 0)
		nghttp2_session_consume(c->ngh, s->id, s->unconsumed);
	s->unconsumed = 0;
	nghttp2_submit_rst_stream(c->ngh, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
	uh2_conn_pump(c);
}
