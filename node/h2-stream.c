/*
 * HTTP/2 streams (see h2-int.h): a request head gathered from nghttp2's
 * header callbacks, checked (h2-check.c) and rebuilt as the same struct
 * http_head an HTTP/1.1 head gives (method, target = :path, Host from
 * :authority, cookies joined with "; " as RFC 9113 §8.2.3 says), then
 * routed by the one request path; its body handed to the upstream as
 * DATA arrives, the window opened as the backend takes it; and the
 * HTTP/2 response sink: HEADERS without the hop-by-hop fields, DATA from
 * a per-stream buffer whose fill pauses only this stream's upstream.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "node/h2-int.h"
#include "node/mem-cache.h"
#include "registry/prng.h"

static void stream_destroy(struct h2_stream *st);

/* A head of up to this many fields is checked from the stack, and its
 * field index (and up to H2_FIELDS_KEEP_BYTES of names and values) kept
 * with the stream when it goes back to the pool. */
#define H2_FIELDS_SMALL 32
#define H2_FIELDS_KEEP_BYTES 1024
/* The most streams a worker keeps for reuse. */
#define H2_STREAM_POOL_MAX 1024

/* The head's fields go (written for the backend, or the stream ended),
 * but storage the size of a common head stays for the pool's next
 * stream. */
static void head_storage_trim(struct h2_stream *st)
{
	st->n_fields = 0;
	st->fields.len = 0;
	if (st->fields.cap > H2_FIELDS_KEEP_BYTES)
		hbuf_free(&st->fields);
	if (st->cap_fields > H2_FIELDS_SMALL) {
		free(st->at);
		st->at = NULL;
		st->cap_fields = 0;
	}
}

/* A stream freed goes to its worker's pool with its two buffers (empty)
 * and its field storage, for the next one: a stream costs no allocation
 * of its own while the worker is busy. The memory janitor frees those the
 * last second did not need (h2_stream_pool_trim). */
static struct h2_stream *stream_alloc(struct proxy *p)
{
	struct h2_stream *st = p->free_h2s;

	if (st != NULL) {
		p->free_h2s = st->next_free;
		st->next_free = NULL;
		if (--p->n_free_h2s < p->free_h2s_low)
			p->free_h2s_low = p->n_free_h2s;
		return st;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->in = evbuffer_new();
	st->out = evbuffer_new();
	if (st->in == NULL || st->out == NULL) {
		stream_destroy(st);
		return NULL;
	}
	return st;
}

static void stream_destroy(struct h2_stream *st)
{
	if (st->in)
		evbuffer_free(st->in);
	if (st->out)
		evbuffer_free(st->out);
	hbuf_free(&st->fields);
	free(st->at);
	free(st);
}

/* Back to the pool, as new but for what it keeps: storage the size of a
 * common head (a stream reset before its head was routed may have grown
 * more). Where the block cache is off (AddressSanitizer's builds) so is
 * the pool, so that a stream used after its end is a reported error. */
static void stream_put(struct proxy *p, struct h2_stream *st)
{
	struct evbuffer *in = st->in, *out = st->out;
	struct h2_field_at *at;
	unsigned cap_fields;
	struct hbuf fields;

	if (!memc_available() || p->n_free_h2s >= H2_STREAM_POOL_MAX) {
		stream_destroy(st);
		return;
	}
	head_storage_trim(st);
	at = st->at;
	cap_fields = st->cap_fields;
	fields = st->fields;
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_drain(out, evbuffer_get_length(out));
	memset(st, 0, sizeof(*st));
	st->in = in;
	st->out = out;
	st->at = at;
	st->cap_fields = cap_fields;
	st->fields = fields;
	st->next_free = p->free_h2s;
	p->free_h2s = st;
	p->n_free_h2s++;
}

void h2_stream_pool_trim(struct proxy *p, size_t n)
{
	while (n-- > 0 && p->free_h2s != NULL) {
		struct h2_stream *st = p->free_h2s;

		p->free_h2s = st->next_free;
		p->n_free_h2s--;
		stream_destroy(st);
	}
	if (p->free_h2s_low > p->n_free_h2s)
		p->free_h2s_low = p->n_free_h2s;
}

struct h2_stream *h2_stream_new(struct h2_conn *h2, int32_t id)
{
	struct h2_stream *st = stream_alloc(h2->c->p);

	if (st == NULL)
		return NULL;
	st->magic = H2_STREAM_MAGIC;
	st->id = id;
	st->body_ms = clock_now_ms();
	st->h2 = h2;
	TAILQ_INSERT_TAIL(&h2->streams, st, link);
	h2->n_streams++;
	client_mem_busy(h2->c);
	return st;
}

void h2_stream_free(struct h2_stream *st)
{
	struct h2_conn *h2 = st->h2;

	TAILQ_REMOVE(&h2->streams, st, link);
	h2->n_streams--;
	/* Its last stream: idle, for the memory janitor (h2_mem_park). */
	if (h2->n_streams == 0 && !h2->dead && h2->c->state == CS_H2) {
		/* The idle timeout counts from the end of the last stream,
		 * not from the last bytes read (a long download reads none). */
		h2->last_active_ms = clock_now_ms();
		h2->c->idle_since_ms = h2->last_active_ms;
		client_mem_idle(h2->c);
	}
	if (st->pending)
		TAILQ_REMOVE(&h2->pending, st, plink);
	if (h2->s != NULL && !st->closed)
		nghttp2_session_set_stream_user_data(h2->s, st->id, NULL);
	/* Body bytes nobody took: the connection's window gets them back,
	 * or a client resetting uploads would shut it little by little. */
	if (h2->s != NULL && evbuffer_get_length(st->in) > 0)
		nghttp2_session_consume_connection(h2->s, evbuffer_get_length(st->in));
	if (st->trailers != NULL)
		evbuffer_free(st->trailers);
	stream_put(h2->c->p, st);
}

/* ---- the request head -------------------------------------------------- */

int h2_stream_field(struct h2_stream *st, const uint8_t *name, size_t nlen, const uint8_t *value,
		    size_t vlen)
{
	const struct zkr_config *cfg = &st->h2->c->p->cfg;
	struct h2_field_at *at;

	/* RFC 9113 §6.5.2: each field counts its bytes and 32 more. Past
	 * the bounds the rest is only counted; the head gets a 431. */
	st->head_bytes += nlen + vlen + 32;
	if (st->head_too_large)
		return 0;
	if (st->head_bytes > cfg->max_head_bytes || st->n_fields >= cfg->max_headers + 5) {
		st->head_too_large = true;
		return 0;
	}
	if (st->n_fields == st->cap_fields) {
		unsigned cap = st->cap_fields ? st->cap_fields * 2 : 16;
		struct h2_field_at *a = realloc(st->at, cap * sizeof(*a));

		if (a == NULL)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		st->at = a;
		st->cap_fields = cap;
	}
	at = &st->at[st->n_fields];
	at->name = (uint32_t)st->fields.len;
	at->nlen = (uint32_t)nlen;
	at->value = (uint32_t)(st->fields.len + nlen);
	at->vlen = (uint32_t)vlen;
	if (!hbuf_add(&st->fields, name, nlen) || !hbuf_add(&st->fields, value, vlen))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->n_fields++;
	return 0;
}

/* The llhttp method of a :method, or -1 for one llhttp does not know. */
static int method_of(const char *m, size_t len)
{
	int i;

	for (i = 0; i < 64; i++) {
		const char *name = llhttp_method_name((llhttp_method_t)i);

		if (strlen(name) == len && memcmp(name, m, len) == 0)
			return i;
	}
	return -1;
}

static void start_fail(struct request *r, int status, const char *code, const char *why)
{
	snprintf(r->host, sizeof(r->host), "-");
	request_fail(r, status, code, why);
}

/*
 * The head as http_head: regular fields in order (cookie fields joined
 * into one, at the end of the storage), the target and the host from the
 * pseudo-headers. False when it does not fit max_headers.
 */
static bool add_hdr(struct http_head *h, const char *name, const char *value, size_t vlen,
		    enum http_hdr_kind kind)
{
	struct http_hdr *hd;

	if (h->n_hdrs == h->max_hdrs)
		return false;
	hd = &h->hdrs[h->n_hdrs++];
	hd->name = name;
	hd->nlen = (uint32_t)strlen(name);
	hd->value = value;
	hd->vlen = (uint32_t)vlen;
	hd->kind = kind;
	return true;
}

/* RFC 8441 §5: the HTTP/1.1 upgrade an extended CONNECT stands for. A
 * WebSocket backend wants a Sec-WebSocket-Key, which HTTP/2 clients do
 * not send (their stream needs no proof): one is made up, its answer
 * (Sec-WebSocket-Accept) not passed back. */
static bool add_upgrade(struct h2_stream *st, struct request *r, const struct h2_request_view *v,
			const struct h2_field *f)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct http_head *h = &r->head;
	uint64_t *rng = &st->h2->c->p->rng;
	unsigned char raw[18];
	size_t i;

	if (!add_hdr(h, "upgrade", v->protocol, v->protocol_len, HDR_UPGRADE))
		return false;
	h->upgrade = r->upgrade = true;
	for (i = v->first_regular; i < st->n_fields; i++)
		if (f[i].nlen == 17 && memcmp(f[i].name, "sec-websocket-key", 17) == 0)
			return true;
	for (i = 0; i < 16; i += 8) {
		uint64_t x = prng_next(rng);

		memcpy(raw + i, &x, 8);
	}
	raw[16] = raw[17] = 0;
	for (i = 0; i < 6; i++) {   /* 16 bytes: 22 characters and "==" */
		uint32_t n = (uint32_t)raw[3 * i] << 16 | (uint32_t)raw[3 * i + 1] << 8 | raw[3 * i + 2];

		st->ws_key[4 * i] = b64[n >> 18 & 63];
		st->ws_key[4 * i + 1] = b64[n >> 12 & 63];
		st->ws_key[4 * i + 2] = b64[n >> 6 & 63];
		st->ws_key[4 * i + 3] = b64[n & 63];
	}
	st->ws_key[22] = st->ws_key[23] = '=';
	return add_hdr(h, "sec-websocket-key", st->ws_key, 24, HDR_OTHER);
}

static bool build_head(struct h2_stream *st, struct request *r, struct h2_field *f,
		       const struct h2_request_view *v, const struct h2_field *cookie)
{
	struct http_head *h = &r->head;
	size_t i;

	h->target = h->path = v->path;
	h->target_len = h->path_len = v->path_len;
	h->authority = v->host;
	h->authority_len = v->host_len;
	h->host_idx = -1;
	h->major = 2;
	h->has_content_length = v->has_content_length;
	h->content_length = v->content_length;
	h->n_hdrs = 0;
	for (i = v->first_regular; i < st->n_fields; i++) {
		struct http_hdr *hd;

		if (f[i].nlen == 6 && memcmp(f[i].name, "cookie", 6) == 0)
			continue;
		if (h->n_hdrs == h->max_hdrs)
			return false;
		hd = &h->hdrs[h->n_hdrs++];
		hd->name = f[i].name;
		hd->nlen = (uint32_t)f[i].nlen;
		hd->value = f[i].value;
		hd->vlen = (uint32_t)f[i].vlen;
		hd->kind = http_classify_name(hd->name, hd->nlen);
	}
	if (cookie != NULL) {
		struct http_hdr *hd;

		if (h->n_hdrs == h->max_hdrs)
			return false;
		hd = &h->hdrs[h->n_hdrs++];
		hd->name = cookie->name;
		hd->nlen = (uint32_t)cookie->nlen;
		hd->value = cookie->value;
		hd->vlen = (uint32_t)cookie->vlen;
		hd->kind = HDR_COOKIE;
	}
	return !v->connect || add_upgrade(st, r, v, f);
}

/* Joins the cookie fields into one value at the end of the storage
 * (before any pointer into it is made). False on allocation failure. */
static bool join_cookies(struct h2_stream *st, size_t *off, size_t *len)
{
	unsigned i;
	bool first = true;

	*off = st->fields.len;
	for (i = 0; i < st->n_fields; i++) {
		const struct h2_field_at *at = &st->at[i];

		if (at->nlen != 6 || memcmp(st->fields.data + at->name, "cookie", 6) != 0)
			continue;
		if ((!first && !hbuf_add(&st->fields, "; ", 2)) ||
		    !hbuf_add(&st->fields, st->fields.data + at->value, at->vlen))
			return false;
		first = false;
	}
	*len = first ? 0 : st->fields.len - *off;
	return true;
}

void h2_stream_start(struct h2_stream *st)
{
	struct h2_conn *h2 = st->h2;
	struct client *c = h2->c;
	struct proxy *p = c->p;
	struct h2_request_view v;
	struct h2_field f_small[H2_FIELDS_SMALL], *f = f_small, cookie;
	struct request *r;
	const char *why = NULL;
	size_t i, coff = 0, clen = 0;
	int verdict, method;

	st->started = true;
	r = request_new(c);
	if (r == NULL) {
		nghttp2_submit_rst_stream(h2->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	p->n_active++;
	r->h2s = st;
	r->sink = &h2_sink;
	r->keep_alive = true;
	r->bytes_in = st->head_bytes;
	st->r = r;
	if (st->head_too_large) {
		p->h2_count.header_too_large++;
		start_fail(r, 431, "header_too_large", "request header list too large");
		goto done;
	}
	if (!join_cookies(st, &coff, &clen) ||
	    (st->n_fields > H2_FIELDS_SMALL && (f = malloc(st->n_fields * sizeof(*f))) == NULL)) {
		start_fail(r, 503, "out_of_memory", "out of memory");
		goto done;
	}
	for (i = 0; i < st->n_fields; i++) {
		f[i].name = st->fields.data + st->at[i].name;
		f[i].nlen = st->at[i].nlen;
		f[i].value = st->fields.data + st->at[i].value;
		f[i].vlen = st->at[i].vlen;
	}
	verdict = h2_check_request(f, st->n_fields, &v, &why);
	if (verdict != H2_CHECK_OK) {
		p->h2_count.malformed++;
		if (verdict == H2_CHECK_METHOD)
			start_fail(r, 405, "method_not_allowed", why);
		else
			start_fail(r, 400, "bad_request", why);
		goto done;
	}
	if (v.connect && !http_upgrade_token_allowed(v.protocol, v.protocol_len, p->upgrade_protocols)) {
		p->h2_count.malformed++;
		start_fail(r, 400, "bad_request", "extended CONNECT to a protocol not tunnelled");
		goto done;
	}
	/* An extended CONNECT goes to the backend as the GET of an upgrade. */
	method = v.connect ? HTTP_GET : method_of(v.method, v.method_len);
	if (method < 0) {
		start_fail(r, 405, "method_not_allowed", "unknown method");
		goto done;
	}
	r->head.method = (uint8_t)method;
	cookie.name = "cookie";
	cookie.nlen = 6;
	cookie.value = st->fields.data + coff;
	cookie.vlen = clen;
	if (!build_head(st, r, f, &v, clen ? &cookie : NULL)) {
		p->h2_count.header_too_large++;
		start_fail(r, 431, "header_too_large", "too many header fields");
		goto done;
	}
	/* The length the client gave; else, the body all here already, its
	 * length; else chunked. A body-less GET stays without either. */
	r->req_body_eof = st->in_ended;
	if (v.connect) {
		r->req_framing = FRAME_CLOSE;   /* the tunnel's bytes, as they are */
	} else if (v.has_content_length) {
		r->req_framing = FRAME_LENGTH;
		r->req_remaining = v.content_length;
	} else if (st->in_ended) {
		size_t len = evbuffer_get_length(st->in);
		bool bodyless = method == HTTP_GET || method == HTTP_HEAD || method == HTTP_DELETE ||
				method == HTTP_OPTIONS || method == HTTP_TRACE;

		r->req_framing = len == 0 && bodyless ? FRAME_NONE : FRAME_LENGTH;
		r->req_remaining = len;
	} else {
		r->req_framing = FRAME_CHUNKED;
	}
	request_route_head(r);
done:
	if (f != f_small)
		free(f);
	head_storage_trim(st);
}

/* ---- the request body -------------------------------------------------- */

struct evbuffer *h2_body_in(struct request *r)
{
	return r->h2s->in;
}

void h2_body_taken(struct request *r, size_t n)
{
	struct h2_stream *st = r->h2s;

	/* The window opens by what left for the backend; nghttp2 sends the
	 * WINDOW_UPDATE once enough did. */
	nghttp2_session_consume(st->h2->s, st->id, n);
	h2_flush(r->c);
}

void h2_stream_pump(struct h2_stream *st)
{
	struct h2_conn *h2 = st->h2;
	struct request *r = st->r;

	if (r == NULL) {
		/* A body nobody waits for: given back. */
		size_t len = evbuffer_get_length(st->in);

		if (len > 0 && !st->closed) {
			nghttp2_session_consume(h2->s, st->id, len);
			evbuffer_drain(st->in, len);
		}
	} else {
		r->req_body_eof = st->in_ended;
		if (!r->req_body_done && upstream_sending(r))
			upstream_pump_request(r);
		r = st->r;   /* it may have ended */
		if (r != NULL && r->resp_paused &&
		    evbuffer_get_length(st->out) < h2->c->p->cfg.buffer_high_bytes)
			upstream_resume_response(r);
	}
	if (st->deferred && !st->closed && (evbuffer_get_length(st->out) > 0 || st->resp_end)) {
		st->deferred = false;
		nghttp2_session_resume_data(h2->s, st->id);
	}
}

void h2_stream_closed(struct h2_stream *st)
{
	struct request *r = st->r;

	if (r == NULL)
		return;
	rlog_debug(r, "stream %d closed with the request in flight", st->id);
	r->obs.client_gone = true;   /* reset, or its connection ended: logged 499 */
	r->keep_alive = false;
	r->resp_reusable = false;
	upstream_abandon(r);
	request_finish(r);   /* h2_request_done: the stream forgets it */
}

void h2_request_done(struct request *r)
{
	struct h2_stream *st = r->h2s;
	struct h2_conn *h2 = st->h2;
	size_t len;

	st->r = NULL;
	if (h2->dead || st->closed)
		return;
	if (r->resp_cut || !st->resp_submitted) {
		/* Short of its length: the client must not take it as whole. */
		nghttp2_submit_rst_stream(h2->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
	} else {
		st->resp_end = true;
		h2_pending(h2, st);   /* its DATA source says EOF */
	}
	/* What the client sent of a body nobody reads any more. */
	len = evbuffer_get_length(st->in);
	if (len > 0) {
		nghttp2_session_consume(h2->s, st->id, len);
		evbuffer_drain(st->in, len);
	}
}

/* ---- the response ------------------------------------------------------ */

static bool nva_room(struct h2_conn *h2, size_t n);
static void nv_set(nghttp2_nv *nv, const char *name, size_t nlen, const char *value, size_t vlen);

/*
 * The backend's trailers ("name:value\n" lines, http.c) as a HEADERS frame
 * ending the stream: names lower-cased, values trimmed, and the fields
 * that are not the client's (hop-by-hop, framing, Host) left out. False
 * when there are none to send.
 */
static bool submit_trailers(struct h2_stream *st)
{
	struct h2_conn *h2 = st->h2;
	size_t len = evbuffer_get_length(st->trailers), n = 0, lines = 0, i;
	char *p = (char *)evbuffer_pullup(st->trailers, -1), *end = p + len, *line;

	if (p == NULL || len == 0)
		return false;
	for (i = 0; i < len; i++)
		lines += p[i] == '\n';
	if (!nva_room(h2, lines))
		return false;
	for (line = p; line < end && n < lines;) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *colon = memchr(line, ':', nl ? (size_t)(nl - line) : 0);
		char *v, *ve;
		enum http_hdr_kind kind;

		if (nl == NULL)
			break;
		if (colon == NULL || colon == line) {
			line = nl + 1;
			continue;
		}
		for (char *q = line; q < colon; q++)
			*q = *q >= 'A' && *q <= 'Z' ? (char)(*q + 32) : *q;
		for (v = colon + 1; v < nl && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = nl; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		kind = http_classify_name(line, (size_t)(colon - line));
		if (!headers_is_hop(kind, false) && kind != HDR_HOST)
			nv_set(&h2->nva[n++], line, (size_t)(colon - line), v, (size_t)(ve - v));
		line = nl + 1;
	}
	return n > 0 && nghttp2_submit_trailer(h2->s, st->id, h2->nva, n) == 0;
}

ssize_t h2_stream_data(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
		       uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct h2_stream *st = src->ptr;
	struct h2_conn *h2 = st->h2;
	int n;

	(void)s;
	(void)id;
	(void)arg;
	n = evbuffer_remove(st->out, buf, len);
	if (n < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (st->resp_end && evbuffer_get_length(st->out) == 0) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->trailers != NULL && submit_trailers(st))
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;   /* the trailers end it */
	} else if (n == 0) {
		st->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	/* Room again: its upstream reads on (after this send). */
	if (st->r != NULL && st->r->resp_paused)
		h2_pending(h2, st);
	return n;
}

/* Room for `n` fields in the connection's reusable array. */
static bool nva_room(struct h2_conn *h2, size_t n)
{
	nghttp2_nv *a;

	if (n <= h2->nva_cap)
		return true;
	a = realloc(h2->nva, n * sizeof(*a));
	if (a == NULL)
		return false;
	h2->nva = a;
	h2->nva_cap = n;
	return true;
}

static void nv_set(nghttp2_nv *nv, const char *name, size_t nlen, const char *value, size_t vlen)
{
	nv->name = (uint8_t *)(uintptr_t)name;
	nv->namelen = nlen;
	nv->value = (uint8_t *)(uintptr_t)value;
	nv->valuelen = vlen;
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

#define NV_LIT(nv, lit, v, vl) nv_set((nv), (lit), sizeof(lit) - 1, (v), (vl))

/* Submits the response HEADERS; a DATA source follows when `body`. */
static bool submit(struct h2_stream *st, size_t n, bool body)
{
	struct h2_conn *h2 = st->h2;
	nghttp2_data_provider prd;

	prd.source.ptr = st;
	prd.read_callback = h2_stream_data;
	if (nghttp2_submit_response(h2->s, st->id, h2->nva, n, body ? &prd : NULL) != 0)
		return false;
	st->resp_submitted = true;
	if (!body)
		st->resp_end = true;
	return true;
}

/* The answer to the key add_upgrade made up: not the client's business. */
static bool ws_accept(const struct request *r, const struct http_hdr *hd)
{
	return r->upgrade && http_name_is(hd, "sec-websocket-accept");
}

static bool sink_head(struct request *r, const struct fwd_response *f)
{
	struct h2_stream *st = r->h2s;
	struct h2_conn *h2 = st->h2;
	const struct http_head *h = &r->rhead;
	char status[8], clen[24];
	bool has_rid = false;
	size_t n = 0, i, names = 0;

	if (!nva_room(h2, h->n_hdrs + 5))
		return false;
	/* A chunked body's trailers are kept for the client (gRPC's status
	 * travels there); without memory for them they are dropped. */
	if (r->resp_framing == FRAME_CHUNKED) {
		if (st->trailers == NULL)
			st->trailers = evbuffer_new();
		r->rchunks.keep_trailers = st->trailers;
	}
	/* Names lower-cased into one buffer, placed once it stops growing. */
	h2->names.len = 0;
	for (i = 0; i < h->n_hdrs; i++) {
		const struct http_hdr *hd = &h->hdrs[i];
		size_t k;

		if (headers_is_hop(hd->kind, false) || ws_accept(r, hd))
			continue;
		for (k = 0; k < hd->nlen; k++) {
			char ch = hd->name[k];

			ch = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
			if (!hbuf_add(&h2->names, &ch, 1))
				return false;
		}
	}
	status[0] = (char)('0' + (unsigned)h->status / 100 % 10);
	status[1] = (char)('0' + (unsigned)h->status / 10 % 10);
	status[2] = (char)('0' + (unsigned)h->status % 10);
	NV_LIT(&h2->nva[n++], ":status", status, 3);
	for (i = 0; i < h->n_hdrs; i++) {
		const struct http_hdr *hd = &h->hdrs[i];

		if (headers_is_hop(hd->kind, false) || ws_accept(r, hd))
			continue;
		if (hd->kind == HDR_X_REQUEST_ID)
			has_rid = true;
		nv_set(&h2->nva[n++], h2->names.data + names, hd->nlen, hd->value, hd->vlen);
		names += hd->nlen;
	}
	if (!has_rid && f->request_id)
		NV_LIT(&h2->nva[n++], "x-request-id", f->request_id, f->request_id_len);
	if (f->framing == FRAME_LENGTH) {
		size_t cl = headers_dec(clen, f->content_length);

		NV_LIT(&h2->nva[n++], "content-length", clen, cl);
	}
	{
		char cookie[512];
		int cl = 0;

		if (f->sticky_cookie && f->sticky_value) {
			cl = snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly", f->sticky_cookie,
				      f->sticky_value);
			if (cl > 0 && (size_t)cl < sizeof(cookie))
				NV_LIT(&h2->nva[n++], "set-cookie", cookie, (size_t)cl);
		}
		/* nghttp2 copies the fields before this returns. */
		if (!submit(st, n, r->resp_framing != FRAME_NONE))
			return false;
	}
	r->bytes_out += 9 + h->head_len / 2;   /* HPACK makes it smaller; roughly */
	return true;
}

static struct evbuffer *sink_body(struct request *r)
{
	struct h2_stream *st = r->h2s;

	h2_pending(st->h2, st);   /* bytes are coming: resume its DATA */
	return st->out;
}

static bool sink_full(const struct request *r)
{
	return evbuffer_get_length(r->h2s->out) >= r->c->p->cfg.buffer_high_bytes;
}

static bool sink_answer(struct request *r, int status, const char *code, const char *location,
			const char *body, size_t blen)
{
	struct h2_stream *st = r->h2s;
	struct h2_conn *h2 = st->h2;
	char sbuf[8], lbuf[24], retry[16];
	size_t n = 0;
	int ll, rl;

	if (h2->dead || st->closed || st->resp_submitted || !nva_room(h2, 6))
		return false;
	snprintf(sbuf, sizeof(sbuf), "%03d", status % 1000);
	ll = snprintf(lbuf, sizeof(lbuf), "%zu", blen);
	NV_LIT(&h2->nva[n++], ":status", sbuf, 3);
	NV_LIT(&h2->nva[n++], "content-type", "text/plain", 10);
	NV_LIT(&h2->nva[n++], "content-length", lbuf, (size_t)ll);
	if (location)
		NV_LIT(&h2->nva[n++], "location", location, strlen(location));
	else
		NV_LIT(&h2->nva[n++], "x-zkrouter-error", code, strlen(code));
	NV_LIT(&h2->nva[n++], "x-request-id", r->rid, strlen(r->rid));
	if (r->retry_after_s) {
		rl = snprintf(retry, sizeof(retry), "%u", r->retry_after_s);
		NV_LIT(&h2->nva[n++], "retry-after", retry, (size_t)rl);
	}
	if (!r->head_request && blen > 0 && evbuffer_add(st->out, body, blen) != 0)
		return false;
	st->resp_end = true;
	if (!submit(st, n, !r->head_request && blen > 0))
		return false;
	r->bytes_out += 64 + (r->head_request ? 0 : blen);
	return true;
}

/* Trailer fields of an h2c backend: kept as http.c keeps a chunked
 * body's, for submit_trailers once the body is out. */
static bool sink_trailers(struct request *r, const struct http_hdr *h, size_t n)
{
	struct h2_stream *st = r->h2s;

	if (n == 0)
		return true;
	if (st->trailers == NULL && (st->trailers = evbuffer_new()) == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (evbuffer_add(st->trailers, h[i].name, h[i].nlen) != 0 ||
		    evbuffer_add(st->trailers, ":", 1) != 0 ||
		    evbuffer_add(st->trailers, h[i].value, h[i].vlen) != 0 ||
		    evbuffer_add(st->trailers, "\n", 1) != 0)
			return false;
	return true;
}

const struct resp_sink h2_sink = {
	.head = sink_head,
	.trailers = sink_trailers,
	.body = sink_body,
	.push = h2_flush,
	.full = sink_full,
	.answer = sink_answer,
	.framed = false,
	.interim = false,
};
