/*
 * Re-serialization of heads with the forwarding headers (see headers.h).
 * Everything is appended to a reusable byte buffer; the values copied
 * are the ones http.c validated (no CR, LF or other control bytes).
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "node/headers.h"
#include "registry/prng.h"

bool headers_is_hop(enum http_hdr_kind kind, bool tunnel)
{
	switch (kind) {
	case HDR_CONNECTION:
	case HDR_KEEP_ALIVE:
	case HDR_PROXY_CONNECTION:
	case HDR_TE:
	case HDR_TRAILER:
	case HDR_TRANSFER_ENCODING:
	case HDR_CONTENT_LENGTH:
	case HDR_CONNECTION_LISTED:
	case HDR_HTTP2_SETTINGS:
		return true;
	case HDR_UPGRADE:
		return !tunnel;
	default:
		return false;
	}
}

void hbuf_free(struct hbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* A small append helper: all the pieces go through one checked path. */
struct out {
	struct hbuf *b;
	bool failed;
};

static void put(struct out *o, const void *p, size_t len)
{
	struct hbuf *b = o->b;

	if (o->failed || len == 0)
		return;
	if (len > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 512;
		char *d;

		while (cap - b->len < len)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL) {
			o->failed = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

bool hbuf_add(struct hbuf *b, const void *p, size_t len)
{
	struct out o = {b, false};

	put(&o, p, len);
	return !o.failed;
}

/* A string literal, its length known at compile time. */
#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_hdr(struct out *o, const struct http_hdr *hd)
{
	put(o, hd->name, hd->nlen);
	put(o, ": ", 2);
	put(o, hd->value, hd->vlen);
	put(o, "\r\n", 2);
}

size_t headers_dec(char *buf, uint64_t v)
{
	char num[HEADERS_DEC_MAX];
	size_t i = sizeof(num);

	do {
		num[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	memcpy(buf, num + i, sizeof(num) - i);
	return sizeof(num) - i;
}

static void put_uint(struct out *o, uint64_t v)
{
	char num[HEADERS_DEC_MAX];

	put(o, num, headers_dec(num, v));
}

static void put_framing(struct out *o, enum body_framing framing, uint64_t len)
{
	if (framing == FRAME_LENGTH) {
		PUT_LIT(o, "Content-Length: ");
		put_uint(o, len);
		put(o, "\r\n", 2);
	} else if (framing == FRAME_CHUNKED) {
		PUT_LIT(o, "Transfer-Encoding: chunked\r\n");
	}
}

struct upgrade_out {
	struct out *o;
	const char *allowed;
	bool first;
};

static void put_upgrade_token(const char *t, size_t n, void *arg)
{
	struct upgrade_out *u = arg;

	if (!http_upgrade_token_allowed(t, n, u->allowed))
		return;
	if (!u->first)
		put(u->o, ", ", 2);
	put(u->o, t, n);
	u->first = false;
}

/* One Upgrade line with the protocols we tunnel, from every Upgrade line
 * of the request (http_upgrade_restrict left at least one). */
static void put_upgrade(struct out *o, const struct http_head *h, const char *allowed)
{
	struct upgrade_out u = {o, allowed, true};
	unsigned i;

	PUT_LIT(o, "Upgrade: ");
	for (i = 0; i < h->n_hdrs; i++)
		if (h->hdrs[i].kind == HDR_UPGRADE)
			http_upgrade_tokens(&h->hdrs[i], put_upgrade_token, &u);
	put(o, "\r\n", 2);
}

bool headers_write_request(struct hbuf *out, const struct http_head *h,
			   const struct fwd_request *f)
{
	struct out o = {out, false};
	const char *method = llhttp_method_name((llhttp_method_t)h->method);
	bool xff_done = false;
	bool tunnel = h->upgrade;
	unsigned i;

	out->len = 0;
	puts_(&o, method);
	put(&o, " ", 1);
	if (h->path_len == 0 || (h->path[0] != '/' && h->path[0] != '*'))
		put(&o, "/", 1);
	put(&o, h->path, h->path_len);
	PUT_LIT(&o, " HTTP/1.1\r\nHost: ");
	put(&o, f->host, f->host_len);
	put(&o, "\r\n", 2);

	for (i = 0; i < h->n_hdrs; i++) {
		const struct http_hdr *hd = &h->hdrs[i];

		if (headers_is_hop(hd->kind, tunnel))
			continue;
		switch (hd->kind) {
		case HDR_HOST:
		case HDR_X_FORWARDED_PROTO:
		case HDR_X_FORWARDED_HOST:
		case HDR_X_FORWARDED_PORT:
			continue;
		case HDR_X_REQUEST_ID:
			if (f->request_id_present && hd->value == f->request_id)
				put_hdr(&o, hd);
			continue;
		case HDR_UPGRADE:
			continue;   /* written once, filtered, below */
		case HDR_X_FORWARDED_FOR: {
			/* All X-Forwarded-For lines joined in order, then ours. */
			unsigned k;
			bool first = true;

			if (xff_done)
				continue;
			xff_done = true;
			PUT_LIT(&o, "X-Forwarded-For: ");
			for (k = i; k < h->n_hdrs; k++) {
				if (h->hdrs[k].kind != HDR_X_FORWARDED_FOR || h->hdrs[k].vlen == 0)
					continue;
				if (!first)
					put(&o, ", ", 2);
				put(&o, h->hdrs[k].value, h->hdrs[k].vlen);
				first = false;
			}
			if (!first)
				put(&o, ", ", 2);
			puts_(&o, f->client_ip);
			put(&o, "\r\n", 2);
			continue;
		}
		default:
			if (!f->keep_underscores && memchr(hd->name, '_', hd->nlen) != NULL)
				continue;
			put_hdr(&o, hd);
		}
	}
	if (!xff_done) {
		PUT_LIT(&o, "X-Forwarded-For: ");
		puts_(&o, f->client_ip);
		put(&o, "\r\n", 2);
	}
	PUT_LIT(&o, "X-Forwarded-Proto: ");
	puts_(&o, f->proto);
	PUT_LIT(&o, "\r\nX-Forwarded-Host: ");
	put(&o, f->host, f->host_len);
	PUT_LIT(&o, "\r\nX-Forwarded-Port: ");
	put_uint(&o, f->local_port);
	put(&o, "\r\n", 2);
	if (!f->request_id_present) {
		PUT_LIT(&o, "X-Request-Id: ");
		put(&o, f->request_id, f->request_id_len);
		put(&o, "\r\n", 2);
	}
	if (tunnel) {
		put_upgrade(&o, h, f->upgrade_protocols);
		PUT_LIT(&o, "Connection: upgrade\r\n");
	}
	put_framing(&o, f->framing, f->content_length);
	put(&o, "\r\n", 2);
	return !o.failed;
}

bool headers_request_split(const struct hbuf *head, const char **method, size_t *mlen,
			   const char **target, size_t *tlen,
			   void (*fn)(const char *name, size_t nlen, const char *value,
				      size_t vlen, void *arg),
			   void *arg)
{
	const char *p = head->data, *end = head->data + head->len, *eol, *sp1, *sp2;

	if (p == NULL || (eol = memmem(p, (size_t)(end - p), "\r\n", 2)) == NULL ||
	    (sp1 = memchr(p, ' ', (size_t)(eol - p))) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1))) == NULL)
		return false;
	*method = p;
	*mlen = (size_t)(sp1 - p);
	*target = sp1 + 1;
	*tlen = (size_t)(sp2 - sp1 - 1);
	for (p = eol + 2; p < end; p = eol + 2) {
		const char *colon;

		if ((eol = memmem(p, (size_t)(end - p), "\r\n", 2)) == NULL)
			return false;
		if (eol == p)
			return true;   /* the blank line */
		/* put_hdr wrote "name: value", every line. */
		if ((colon = memchr(p, ':', (size_t)(eol - p))) == NULL || colon + 2 > eol)
			return false;
		fn(p, (size_t)(colon - p), colon + 2, (size_t)(eol - colon - 2), arg);
	}
	return false;
}

bool headers_write_response(struct hbuf *out, const struct http_head *h,
			    const struct fwd_response *f)
{
	struct out o = {out, false};
	bool has_rid = false;
	char line[16];
	unsigned i;

	out->len = 0;
	/* llhttp guarantees a three-digit status. */
	memcpy(line, "HTTP/1.1 000 ", 13);
	line[7] = f->client_http10 ? '0' : '1';
	line[9] = (char)('0' + h->status / 100 % 10);
	line[10] = (char)('0' + h->status / 10 % 10);
	line[11] = (char)('0' + h->status % 10);
	put(&o, line, 13);
	if (h->reason_len)
		put(&o, h->reason, h->reason_len);
	put(&o, "\r\n", 2);
	for (i = 0; i < h->n_hdrs; i++) {
		const struct http_hdr *hd = &h->hdrs[i];

		if (headers_is_hop(hd->kind, f->tunnel))
			continue;
		if (hd->kind == HDR_X_REQUEST_ID)
			has_rid = true;
		put_hdr(&o, hd);
	}
	if (!has_rid && f->request_id) {
		PUT_LIT(&o, "X-Request-Id: ");
		put(&o, f->request_id, f->request_id_len);
		put(&o, "\r\n", 2);
	}
	if (f->sticky_cookie && f->sticky_value) {
		/* Instance ids are znode names: no ';', ',', space or quote. */
		PUT_LIT(&o, "Set-Cookie: ");
		puts_(&o, f->sticky_cookie);
		put(&o, "=", 1);
		puts_(&o, f->sticky_value);
		PUT_LIT(&o, "; Path=/; HttpOnly\r\n");
	}
	if (f->tunnel)
		PUT_LIT(&o, "Connection: upgrade\r\n");
	else if (!f->keep_alive)
		PUT_LIT(&o, "Connection: close\r\n");
	else if (f->client_http10)
		PUT_LIT(&o, "Connection: keep-alive\r\n");
	put_framing(&o, f->framing, f->content_length);
	put(&o, "\r\n", 2);
	return !o.failed;
}

void headers_request_id(uint64_t *rng, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t a = prng_next(rng), b = prng_next(rng);
	int i;

	for (i = 0; i < 16; i++) {
		out[i] = hex[(a >> (60 - 4 * i)) & 0xf];
		out[16 + i] = hex[(b >> (60 - 4 * i)) & 0xf];
	}
	out[32] = '\0';
}
