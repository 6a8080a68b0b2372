/*
 * HTTP/2 client connections (see h2.h, h2-int.h): an nghttp2 server
 * session fed from the client's input with nghttp2_session_mem_recv and
 * written into its output with nghttp2_session_mem_send, never past
 * buffer_high_bytes, so a peer that does not read gets a bounded output,
 * then the write timeout. Its bounds: the streams it may open, the
 * streams it may reset (Rapid Reset), the control frames it may send
 * (PING, SETTINGS, PRIORITY, empty DATA), CONTINUATIONs per head and our
 * unread ACKs (nghttp2's), each counted in /metrics where it acted.
 *
 * Nothing here runs inside an nghttp2 call that it did not expect: work a
 * callback finds (a head to route, body bytes to pump, a paused upstream
 * to resume) is queued on the connection's pending list and done after
 * nghttp2 returns; h2_flush called meanwhile only marks that it is due.
 */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "node/h2-int.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
/* The connection's receive window: what all its streams together may have
 * sent and we not yet passed on. Each stream has buffer_high_bytes of
 * its own; this lets about 16 of them wait at once without stalling the
 * others, and bounds what one connection makes us hold. */
#define H2_CONN_WINDOW (1u << 20)
/* Between the two GOAWAYs of a drain: a round trip, generously. */
#define H2_DRAIN_RTT_MS 1000
/* nghttp2's own Rapid Reset bound is a backstop behind ours. */
#define H2_MAX_CONTINUATIONS 8

int h2_preface(struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
	char buf[H2_PREFACE_LEN];

	if (evbuffer_copyout(in, buf, n) != (ev_ssize_t)n)
		return -1;
	if (memcmp(buf, H2_PREFACE, n) != 0)
		return -1;
	return n == H2_PREFACE_LEN ? 1 : 0;
}

static struct h2_conn *conn_of(void *arg)
{
	return arg;
}

void h2_pending(struct h2_conn *h2, struct h2_stream *st)
{
	if (st->pending)
		return;
	st->pending = true;
	TAILQ_INSERT_TAIL(&h2->pending, st, plink);
}

void h2_fail(struct h2_conn *h2, uint32_t error, const char *why)
{
	struct client *c = h2->c;

	if (h2->failed)
		return;
	h2->failed = true;
	clog_info(c, "HTTP/2: %s: GOAWAY and close", why);
	/* Queues GOAWAY; nghttp2 then wants nothing more once it is sent,
	 * and h2_flush closes the connection. */
	if (nghttp2_session_terminate_session(h2->s, error) != 0)
		client_close(c);
}

/* ---- flood bounds ------------------------------------------------------ */

/* The buckets refill with time: rate per second, capped at the burst. */
static void buckets_refill(struct h2_conn *h2)
{
	const struct zkr_config *cfg = &h2->c->p->cfg;
	uint64_t now = clock_now_ms(), dt = now - h2->bucket_ms;
	uint64_t ctl_cap = (uint64_t)cfg->h2_max_control_per_s * 10 * 1000;
	uint64_t rst_cap = (uint64_t)cfg->h2_max_concurrent_streams * 2 * 1000;

	if (dt == 0)
		return;
	h2->bucket_ms = now;
	h2->ctl_tokens += dt * cfg->h2_max_control_per_s;
	h2->rst_tokens += dt * cfg->h2_max_resets_per_s;
	if (h2->ctl_tokens > ctl_cap)
		h2->ctl_tokens = ctl_cap;
	if (h2->rst_tokens > rst_cap)
		h2->rst_tokens = rst_cap;
}

/* One frame out of a bucket; false (and the connection failed) once it
 * is empty. */
static bool bucket_take(struct h2_conn *h2, uint64_t *tokens, uint64_t *counter, const char *what)
{
	if (h2->failed)
		return false;   /* counted once, when it failed */
	buckets_refill(h2);
	if (*tokens >= 1000) {
		*tokens -= 1000;
		return true;
	}
	(*counter)++;
	h2_fail(h2, NGHTTP2_ENHANCE_YOUR_CALM, what);
	return false;
}

/* ---- nghttp2 callbacks ------------------------------------------------- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
	struct h2_conn *h2 = conn_of(arg);
	struct h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = h2_stream_new(h2, f->hd.stream_id);
	if (st == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* that stream only */
	if (nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st) != 0) {
		h2_stream_free(st);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	h2->c->p->h2_count.streams++;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2_stream *st;

	(void)flags;
	(void)arg;
	/* Trailers of a request body are not forwarded (HTTP/1.1 backends
	 * get a plain chunked body). */
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (st == NULL)
		return 0;
	return h2_stream_field(st, name, nlen, value, vlen);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
	struct h2_conn *h2 = conn_of(arg);
	struct proxy_h2_counters *n = &h2->c->p->h2_count;
	struct h2_stream *st = f->hd.stream_id
				       ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id)
				       : NULL;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (st == NULL)
			break;
		if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
			st->head_done = true;
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
			st->in_ended = true;
		h2_pending(h2, st);
		break;
	case NGHTTP2_DATA:
		if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
		    !bucket_take(h2, &h2->ctl_tokens, &n->control_flood, "empty DATA flood"))
			break;
		if (st != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			st->in_ended = true;
			h2_pending(h2, st);
		}
		break;
	case NGHTTP2_PING:
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
			(void)bucket_take(h2, &h2->ctl_tokens, &n->control_flood,
					  f->hd.type == NGHTTP2_PING ? "PING flood" : "SETTINGS flood");
		break;
	case NGHTTP2_RST_STREAM:
		/* A stream opened and cancelled costs us a routed request,
		 * maybe a backend connection: bounded per second. */
		(void)bucket_take(h2, &h2->rst_tokens, &n->rapid_reset, "too many streams reset");
		break;
	default:
		break;
	}
	return 0;
}

/* PRIORITY frames are dropped unseen once RFC 7540 priorities are off
 * (SETTINGS_NO_RFC7540_PRIORITIES): counted at their frame header. */
static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *arg)
{
	struct h2_conn *h2 = conn_of(arg);

	(void)s;
	if (hd->type == NGHTTP2_PRIORITY)
		(void)bucket_take(h2, &h2->ctl_tokens, &h2->c->p->h2_count.control_flood,
				  "PRIORITY flood");
	return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int lib_error, void *arg)
{
	struct h2_conn *h2 = conn_of(arg);

	(void)s;
	/* nghttp2's HTTP messaging checks (heads, content-length against
	 * DATA); past the streams we acknowledged, a connection error (those
	 * past ones not yet acknowledged are refused: on_frame_send). */
	if (lib_error == NGHTTP2_ERR_HTTP_HEADER || lib_error == NGHTTP2_ERR_HTTP_MESSAGING)
		h2->c->p->h2_count.malformed++;
	else if (f->hd.type == NGHTTP2_HEADERS && lib_error == NGHTTP2_ERR_PROTO &&
		 h2->n_streams >= h2->c->p->cfg.h2_max_concurrent_streams)
		h2->c->p->h2_count.refused_streams++;
	clog_debug(h2->c, "HTTP/2: invalid frame %u on stream %d: %s", (unsigned)f->hd.type,
		   f->hd.stream_id, nghttp2_strerror(lib_error));
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *arg)
{
	struct h2_conn *h2 = conn_of(arg);
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);

	(void)flags;
	/* A body nobody waits for any more (answered early, or refused):
	 * read and given back at once. */
	if (st == NULL || (st->started && st->r == NULL)) {
		nghttp2_session_consume(s, id, len);
		return 0;
	}
	if (evbuffer_add(st->in, data, len) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->body_ms = clock_now_ms();
	h2_pending(h2, st);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error, void *arg)
{
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);

	(void)arg;
	if (st == NULL)
		return 0;
	if (error != NGHTTP2_NO_ERROR)
		clog_debug(st->h2->c, "HTTP/2: stream %d closed: %s", id, nghttp2_http2_strerror(error));
	nghttp2_session_set_stream_user_data(s, id, NULL);
	st->closed = true;
	h2_stream_closed(st);
	h2_stream_free(st);
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
	struct h2_conn *h2 = conn_of(arg);

	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY)
		h2->c->p->h2_count.goaway_sent++;
	else if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
		h2->c->p->h2_count.refused_streams++;
	return 0;
}

/* The callbacks, the same for every session (nghttp2 copies them): made
 * once for the process, read only after. */
static nghttp2_session_callbacks *h2_cbs;
static pthread_once_t h2_cbs_once = PTHREAD_ONCE_INIT;

static void callbacks_make(void)
{
	nghttp2_session_callbacks *cbs;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	h2_cbs = cbs;
}

/* ---- the session ------------------------------------------------------- */

static bool session_make(struct h2_conn *h2)
{
	const struct zkr_config *cfg = &h2->c->p->cfg;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry set[5];
	uint32_t win = cfg->buffer_high_bytes > NGHTTP2_MAX_WINDOW_SIZE ? NGHTTP2_MAX_WINDOW_SIZE
									: (uint32_t)cfg->buffer_high_bytes;
	bool ok = false;

	pthread_once(&h2_cbs_once, callbacks_make);
	if (h2_cbs == NULL || nghttp2_option_new(&opt) != 0)
		return false;
	/* Windows open as backends take the bytes (h2_body_taken). */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_no_closed_streams(opt, 1);
	nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
	/* Response fields go out as literals (and from the static table),
	 * never into the dynamic table, as HAProxy and nginx send them: the
	 * values that repeat are few and short (X-Request-Id never does),
	 * and the table would hold up to 4 KB per connection, idle ones too. */
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 0);
	nghttp2_option_set_stream_reset_rate_limit(opt, 4ull * cfg->h2_max_concurrent_streams,
						   2ull * cfg->h2_max_resets_per_s);
	h2->mem.making = true;
	if (nghttp2_session_server_new3(&h2->s, h2_cbs, h2, opt, &h2->mem.mem) != 0) {
		h2->mem.making = false;
		goto failed;
	}
	h2->mem.making = false;
	set[0] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
					  cfg->h2_max_concurrent_streams};
	set[1] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, win};
	set[2] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
					  (uint32_t)cfg->max_head_bytes};
	set[3] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1};
	/* RFC 8441: WebSockets over HTTP/2, when we tunnel any protocol. */
	set[4] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
	if (nghttp2_submit_settings(h2->s, NGHTTP2_FLAG_NONE, set,
				    h2->c->p->upgrade_protocols != NULL ? 5 : 4) != 0 ||
	    nghttp2_session_set_local_window_size(h2->s, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
		goto failed;
	ok = true;
failed:
	nghttp2_option_del(opt);
	return ok;
}

static void later_cb(evutil_socket_t fd, short what, void *arg);

bool h2_start(struct client *c)
{
	struct proxy *p = c->p;
	struct h2_conn *h2 = calloc(1, sizeof(*h2));

	if (h2 == NULL) {
		clog_warn(c, "out of memory for an HTTP/2 connection: closing");
		client_close(c);
		return false;
	}
	h2->c = c;
	h2_mem_init(&h2->mem);
	TAILQ_INIT(&h2->streams);
	TAILQ_INIT(&h2->pending);
	h2->bucket_ms = clock_now_ms();
	h2->ctl_tokens = (uint64_t)p->cfg.h2_max_control_per_s * 10 * 1000;
	h2->rst_tokens = (uint64_t)p->cfg.h2_max_concurrent_streams * 2 * 1000;
	h2->last_active_ms = h2->bucket_ms;
	c->h2 = h2;
	/* One event for the sends of all of them, not one each: a few
	 * hundred bytes less for every connection, idle ones too. */
	if (p->h2_later_ev == NULL) {
		TAILQ_INIT(&p->h2_later);
		p->h2_later_ev = event_new(p->base, -1, 0, later_cb, p);
	}
	if (p->h2_later_ev == NULL || !session_make(h2)) {
		clog_warn(c, "cannot start an HTTP/2 session: closing");
		client_close(c);   /* h2_free frees it */
		return false;
	}
	p->h2_count.connections++;
	client_set_state(c, CS_H2);
	/* Idle until its first stream (h2_mem_park). */
	c->idle_since_ms = clock_now_ms();
	client_mem_idle(c);
	/* The read timeout wakes us to bound stalled bodies (head timeout)
	 * and idle connections (idle timeout), whichever comes first. */
	conn_read_timeout(&c->io, p->cfg.head_timeout_ms < p->cfg.client_idle_timeout_ms
					  ? p->cfg.head_timeout_ms
					  : p->cfg.client_idle_timeout_ms);
	clog_debug(c, "speaks HTTP/2");
	h2_read(c);
	return true;
}

/* ---- moving bytes ------------------------------------------------------ */

/* The queued work of the streams (see the top of the file). */
static void run_pending(struct h2_conn *h2)
{
	struct h2_stream *st;

	h2->busy++;
	while (!h2->dead && (st = TAILQ_FIRST(&h2->pending)) != NULL) {
		TAILQ_REMOVE(&h2->pending, st, plink);
		st->pending = false;
		if (st->head_done && !st->started) {
			h2_stream_start(st);
			continue;   /* it pumped its body already, if any */
		}
		h2_stream_pump(st);
	}
	h2->busy--;
}

static bool output_full(const struct client *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) >= c->p->cfg.buffer_high_bytes;
}

/* Sends now: from the client's own callbacks only (see h2_flush). */
static void flush_now(struct client *c)
{
	struct h2_conn *h2 = c->h2;
	struct evbuffer *out;

	if (h2 == NULL || h2->dead || c->state == CS_DEAD)
		return;
	if (h2->busy || h2->flushing) {
		h2->want_flush = true;
		return;
	}
	if (c->parked && !client_mem_unpark(c))
		return;   /* closed */
	h2->flushing = true;
	out = bufferevent_get_output(c->bev);
	do {
		h2->want_flush = false;
		run_pending(h2);
		if (h2->dead)
			break;
		h2->busy++;
		while (!output_full(c)) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(h2->s, &data);

			if (n < 0) {
				clog_info(c, "HTTP/2: %s: closing", nghttp2_strerror((int)n));
				h2->busy--;
				h2->flushing = false;
				client_close(c);
				return;
			}
			if (n == 0)
				break;
			if (evbuffer_add(out, data, (size_t)n) != 0) {
				h2->busy--;
				h2->flushing = false;
				client_close(c);
				return;
			}
		}
		h2->busy--;
		/* A send may have made room for a paused stream (pending): its
		 * upstream reads on, and what it reads is sent in turn. */
	} while ((h2->want_flush || !TAILQ_EMPTY(&h2->pending)) && !h2->dead);
	h2->flushing = false;
	if (h2->dead)
		return;
	conn_flush(&c->io);
	/* Its GOAWAY sent and no stream left, or a fatal error queued: the
	 * session wants nothing more. */
	if (!nghttp2_session_want_read(h2->s) && !nghttp2_session_want_write(h2->s))
		client_close_after_flush(c);
}

static void later_unlist(struct h2_conn *h2)
{
	if (!h2->later)
		return;
	TAILQ_REMOVE(&h2->c->p->h2_later, h2, later_link);
	h2->later = false;
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	struct h2_conn *h2;
	unsigned n = 0;

	(void)fd;
	(void)what;
	/* Those listed now; one listed by these sends waits for the next
	 * run, as with an event of its own activated again. Each is taken
	 * off before its send, which may close it or list it again. */
	TAILQ_FOREACH(h2, &p->h2_later, later_link)
		n++;
	while (n-- > 0 && (h2 = TAILQ_FIRST(&p->h2_later)) != NULL) {
		later_unlist(h2);
		flush_now(h2->c);
	}
	if (!TAILQ_EMPTY(&p->h2_later))
		event_active(p->h2_later_ev, EV_TIMEOUT, 0);
}

void h2_proxy_free(struct proxy *p)
{
	if (p->h2_later_ev != NULL) {
		event_free(p->h2_later_ev);
		p->h2_later_ev = NULL;
	}
}

/*
 * From the upstream layer and the request path (a response's bytes, a
 * request done, a window to open), which may be deep inside work on a
 * stream of this very connection: the send runs from an event of its
 * own, later in this turn of the loop, never nested in their calls.
 */
void h2_flush(struct client *c)
{
	struct h2_conn *h2 = c->h2;

	if (h2 == NULL || h2->dead)
		return;
	if (h2->busy || h2->flushing) {
		h2->want_flush = true;
		return;
	}
	if (h2->later)
		return;
	TAILQ_INSERT_TAIL(&c->p->h2_later, h2, later_link);
	h2->later = true;
	event_active(c->p->h2_later_ev, EV_TIMEOUT, 0);
}

/*
 * A request body that stopped coming while its backend waits for it gets
 * a 408 after head_timeout_ms without DATA, as over HTTP/1.1; the other
 * streams of the connection go on. Looked at once a second at most.
 */
static void check_stalled(struct h2_conn *h2, uint64_t now, bool force)
{
	unsigned limit = h2->c->p->cfg.head_timeout_ms;
	struct h2_stream *st;

	if (!force && now - h2->stall_check_ms < 1000)
		return;
	h2->stall_check_ms = now;
	h2->busy++;   /* answers are sent after, all at once */
	TAILQ_FOREACH(st, &h2->streams, link) {
		struct request *r = st->r;

		if (r != NULL && !r->req_body_done && !st->in_ended && r->up != NULL &&
		    r->up->state == US_ACTIVE && evbuffer_get_length(st->in) == 0 &&
		    now - st->body_ms >= limit)
			request_fail(r, 408, "request_timeout", "request body too slow");
	}
	h2->busy--;
}

static void fail_recv(struct h2_conn *h2, int rv)
{
	struct proxy_h2_counters *n = &h2->c->p->h2_count;

	switch (rv) {
	case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
		n->continuation_flood++;
		break;
	case NGHTTP2_ERR_FLOODED:
		n->ack_flood++;
		break;
	default:
		n->protocol_error++;
		break;
	}
	clog_info(h2->c, "HTTP/2: %s: closing", nghttp2_strerror(rv));
}

void h2_read(struct client *c)
{
	struct h2_conn *h2 = c->h2;
	struct evbuffer *in;

	if (h2 == NULL || h2->dead || (c->parked && !client_mem_unpark(c)))
		return;
	in = bufferevent_get_input(c->bev);
	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		ssize_t rv;

		/* Our answers (ACKs too) are not read: nothing more is read
		 * either until they are; the write timeout ends a peer that
		 * never reads. */
		if (output_full(c)) {
			c->out_full = true;
			conn_read_off(&c->io);
			break;
		}
		/* After a GOAWAY for an error, the rest is not looked at. */
		if (!nghttp2_session_want_read(h2->s)) {
			evbuffer_drain(in, evbuffer_get_length(in));
			break;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		h2->busy++;
		rv = nghttp2_session_mem_recv(h2->s, v.iov_base, v.iov_len);
		h2->busy--;
		if (rv < 0) {
			fail_recv(h2, (int)rv);
			client_close(c);
			return;
		}
		evbuffer_drain(in, (size_t)rv);
		if (h2->dead)
			return;
	}
	if (h2->n_streams > 0) {
		h2->last_active_ms = clock_now_ms();
		check_stalled(h2, h2->last_active_ms, false);
	}
	else if (clock_now_ms() - h2->last_active_ms >= c->p->cfg.client_idle_timeout_ms &&
		 h2->drain_step == 0)
		/* Only control frames (PINGs) for the idle time: idle. */
		h2_timeout(c, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
	if (c->io.eof && h2->n_streams == 0) {
		client_close_after_flush(c);
		return;
	}
	/* Control frames only (a PING) on an idle, parked connection: idle
	 * again from now, to be parked again. */
	if (h2->n_streams == 0 && !c->idle_listed && h2->drain_step == 0) {
		c->idle_since_ms = clock_now_ms();
		client_mem_idle(c);
	}
	flush_now(c);
}

void h2_writable(struct client *c)
{
	if (c->h2 == NULL || c->h2->dead)
		return;
	if (c->out_full && !output_full(c)) {
		c->out_full = false;
		conn_read_on(&c->io);
		h2_read(c);   /* what waited in the input; flushes too */
		return;
	}
	flush_now(c);
}

void h2_timeout(struct client *c, short what)
{
	struct h2_conn *h2 = c->h2;

	if (h2 == NULL || h2->dead)
		return;
	if (what & BEV_EVENT_WRITING) {
		c->p->h2_count.stalled++;
		clog_info(c, "HTTP/2 client stopped reading: closing");
		client_close(c);
		return;
	}
	/* Silent for the read timeout (the shorter of the head and idle
	 * timeouts): a stream's body may have stalled, or the connection
	 * been idle long enough. */
	if (h2->n_streams > 0 ||
	    clock_now_ms() - h2->last_active_ms < c->p->cfg.client_idle_timeout_ms) {
		/* Parked (no stream, nothing to send): it stays so. */
		if (c->parked) {
			conn_read_on(&c->io);
			return;
		}
		if (h2->n_streams > 0)
			check_stalled(h2, clock_now_ms(), true);
		if (!c->out_full)
			conn_read_on(&c->io);
		flush_now(c);
		return;
	}
	clog_debug(c, "HTTP/2 idle timeout: GOAWAY");
	if (c->parked && !client_mem_unpark(c))
		return;   /* closed */
	h2->drain_step = 2;
	if (nghttp2_submit_goaway(h2->s, NGHTTP2_FLAG_NONE,
				  nghttp2_session_get_last_proc_stream_id(h2->s), NGHTTP2_NO_ERROR,
				  NULL, 0) != 0) {
		client_close(c);
		return;
	}
	flush_now(c);
	if (c->state == CS_H2)
		client_close_after_flush(c);
}

bool h2_drain_tick(struct client *c, uint64_t now_ms)
{
	struct h2_conn *h2 = c->h2;

	if (h2 == NULL || h2->dead || c->state != CS_H2)
		return false;
	/* A parked connection gets its buffers back for the GOAWAYs. */
	if (c->parked && !client_mem_unpark(c))
		return false;   /* closed */
	if (h2->drain_step == 0) {
		/* RFC 9113 §6.8: first the largest id, so that streams on the
		 * wire are not lost, then, a round trip later, the last one
		 * we saw. */
		if (nghttp2_submit_shutdown_notice(h2->s) != 0) {
			client_close(c);
			return false;
		}
		h2->drain_step = 1;
		h2->drain_ms = now_ms;
	} else if (h2->drain_step == 1 && now_ms - h2->drain_ms >= H2_DRAIN_RTT_MS) {
		if (nghttp2_submit_goaway(h2->s, NGHTTP2_FLAG_NONE,
					  nghttp2_session_get_last_proc_stream_id(h2->s),
					  NGHTTP2_NO_ERROR, NULL, 0) != 0) {
			client_close(c);
			return false;
		}
		h2->drain_step = 2;
	}
	flush_now(c);
	if (c->state == CS_H2 && h2->drain_step == 2 && h2->n_streams == 0)
		client_close_after_flush(c);
	return c->state == CS_H2;
}

void h2_close(struct client *c)
{
	struct h2_conn *h2 = c->h2;
	struct h2_stream *st;

	if (h2 == NULL || h2->dead)
		return;
	h2->dead = true;
	later_unlist(h2);
	/* Every stream's request ends here (its upstream dropped, its
	 * access log line written); the streams' memory goes with h2_free. */
	TAILQ_FOREACH(st, &h2->streams, link)
		h2_stream_closed(st);
}

void h2_free(struct client *c)
{
	struct h2_conn *h2 = c->h2;
	struct h2_stream *st;

	if (h2 == NULL)
		return;
	h2->dead = true;
	while ((st = TAILQ_FIRST(&h2->streams)) != NULL) {
		h2_stream_closed(st);
		h2_stream_free(st);
	}
	if (h2->s != NULL)
		nghttp2_session_del(h2->s);
	later_unlist(h2);
	free(h2->nva);
	hbuf_free(&h2->names);
	free(h2);
	c->h2 = NULL;
}

bool h2_mem_park(struct client *c)
{
	struct h2_conn *h2 = c->h2;

	if (h2 == NULL || h2->dead || h2->n_streams > 0 || h2->busy || h2->flushing || h2->later ||
	    h2->drain_step != 0 || nghttp2_session_want_write(h2->s))
		return false;
	/* A response head's fields, made again for the next one. */
	free(h2->nva);
	h2->nva = NULL;
	h2->nva_cap = 0;
	hbuf_free(&h2->names);
	h2_mem_release(&h2->mem);
	/* Its bufferevent too (about 0.7 KB): bytes arriving, a timeout
	 * that sends GOAWAY or a drain make it again. */
	if (client_mem_park(c))
		c->p->h2_count.parked++;
	return true;
}

void proxy_h2_counters(const struct proxy *p, struct proxy_h2_counters *out)
{
	*out = p->h2_count;
}
