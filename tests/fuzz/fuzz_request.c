/*
 * Fuzz target "request": a client's request head, taken the way
 * node/proxy-request.c takes it. The bytes are probed as a partial head,
 * then parsed and validated in full (every rule of node/http.c), the Host
 * or authority normalised (node/host.c), and the head the backend would
 * get is written (node/headers.c).
 *
 * Properties: the head the router writes parses again, with the framing
 * it announced and the same host, so a backend reads what we read; host
 * normalisation is idempotent; parsing the same head twice agrees.
 */
#include <string.h>

#include <llhttp.h>

#include "node/headers.h"
#include "node/host.h"
#include "node/http.h"
#include "tests/fuzz/fuzz.h"

/* zkrouterd's defaults (node/config.c). */
#define MAX_HEAD 32768
#define MAX_HEADERS 100
#define MAX_TARGET 8192
#define REQUEST_ID_MAX 128   /* node/stream.h */

static struct hbuf out;

static void check_host(const char *v, size_t len, char *host, size_t *hlen)
{
	char again[HOST_MAX + 1];
	size_t alen;

	*hlen = 0;
	host[0] = '\0';
	if (len > HOST_MAX + 7 || !host_normalize(v, len, host, HOST_MAX + 1, hlen))
		return;
	FUZZ_CHECK(*hlen > 0 && *hlen <= HOST_MAX && strlen(host) == *hlen);
	/* Normalising the result changes nothing (IPv6 text needs its
	 * brackets back to be a Host). */
	if (memchr(host, ':', *hlen) != NULL) {
		char bracketed[HOST_MAX + 3];

		snprintf(bracketed, sizeof(bracketed), "[%s]", host);
		FUZZ_CHECK(host_normalize(bracketed, *hlen + 2, again, sizeof(again), &alen));
	} else {
		FUZZ_CHECK(host_normalize(host, *hlen, again, sizeof(again), &alen));
	}
	FUZZ_CHECK(alen == *hlen && memcmp(again, host, alen) == 0);
}

/* The written head must parse as a request with the framing announced,
 * the same target path and a Host that means the same app. */
static void check_written(const struct http_head *h, const struct fwd_request *f,
			  const char *host, size_t hlen)
{
	struct http_limits lim = { out.len + 1, MAX_HEADERS + 8, out.len + 1 };
	struct http_hdr *hdrs = calloc(lim.max_headers, sizeof(*hdrs));
	struct http_head w;
	llhttp_t parser;
	const char *why;
	char whost[HOST_MAX + 1];
	size_t wlen;

	FUZZ_CHECK(hdrs != NULL);
	memset(&w, 0, sizeof(w));
	w.hdrs = hdrs;
	w.max_hdrs = lim.max_headers;
	FUZZ_CHECK(http_head_end(out.data, out.len) == out.len);
	enum http_result r = http_parse_request(&parser, out.data, out.len, false, &lim, &w, &why);
	if (r != HTTP_OK)
		fprintf(stderr, "written head refused (%s):\n%.*s", why, (int)out.len, out.data);
	FUZZ_CHECK(r == HTTP_OK);
	FUZZ_CHECK(w.method == h->method);
	FUZZ_CHECK(w.chunked == (f->framing == FRAME_CHUNKED));
	FUZZ_CHECK(w.has_content_length == (f->framing == FRAME_LENGTH));
	if (w.has_content_length)
		FUZZ_CHECK(w.content_length == f->content_length);
	FUZZ_CHECK(w.upgrade == h->upgrade);
	FUZZ_CHECK(w.authority == NULL && w.host_idx >= 0);
	check_host(w.hdrs[w.host_idx].value, w.hdrs[w.host_idx].vlen, whost, &wlen);
	FUZZ_CHECK(wlen == hlen && memcmp(whost, host, hlen) == 0);
	free(hdrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_limits lim = { MAX_HEAD, MAX_HEADERS, MAX_TARGET };
	struct http_hdr hdrs[MAX_HEADERS], probe_hdrs[16];
	struct http_head h, probe;
	llhttp_t parser;
	const char *why = NULL;
	size_t end = http_head_end(buf, size);
	enum http_result r;

	/* What the proxy does while the head is still arriving. */
	struct http_limits plim = lim;
	plim.max_headers = 16;
	memset(&probe, 0, sizeof(probe));
	probe.hdrs = probe_hdrs;
	probe.max_hdrs = 16;
	r = http_parse_request(&parser, buf, end ? end - 1 : size, true, &plim, &probe, &why);
	FUZZ_CHECK(r != HTTP_OK || end == 0);
	if (r != HTTP_OK && r != HTTP_INCOMPLETE)
		FUZZ_CHECK(why != NULL);
	if (end == 0)
		return 0;
	FUZZ_CHECK(end >= 4 && end <= size && memcmp(buf + end - 4, "\r\n\r\n", 4) == 0);

	memset(&h, 0, sizeof(h));
	h.hdrs = hdrs;
	h.max_hdrs = MAX_HEADERS;
	r = http_parse_request(&parser, buf, end, false, &lim, &h, &why);
	if (r != HTTP_OK) {
		FUZZ_CHECK(why != NULL);
		return 0;
	}
	FUZZ_CHECK(h.head_len == end && h.major == 1);
	FUZZ_CHECK(!(h.chunked && h.has_content_length));
	FUZZ_CHECK(h.n_hdrs <= MAX_HEADERS && h.target_len <= MAX_TARGET);

	/* A chunked request is parsed again so the body decoder continues
	 * from its head: it must come out the same. */
	struct http_head again;
	struct http_hdr again_hdrs[MAX_HEADERS];
	memset(&again, 0, sizeof(again));
	again.hdrs = again_hdrs;
	again.max_hdrs = MAX_HEADERS;
	FUZZ_CHECK(http_parse_request(&parser, buf, end, false, &lim, &again, &why) == HTTP_OK);
	FUZZ_CHECK(again.n_hdrs == h.n_hdrs && again.chunked == h.chunked &&
		   again.content_length == h.content_length && again.host_idx == h.host_idx);

	if (h.authority == NULL && h.host_idx < 0)
		return 0;   /* 400 missing Host (HTTP/1.0 may omit it) */
	const char *hv = h.authority ? h.authority : h.hdrs[h.host_idx].value;
	size_t hl = h.authority ? h.authority_len : h.hdrs[h.host_idx].vlen;
	char host[HOST_MAX + 1];
	size_t host_len;

	check_host(hv, hl, host, &host_len);
	if (host_len == 0)
		return 0;

	struct fwd_request f;
	memset(&f, 0, sizeof(f));
	f.client_ip = "192.0.2.1";
	f.proto = "http";
	f.local_port = 80;
	f.host = hv;
	f.host_len = hl;
	f.request_id = "0123456789abcdef0123456789abcdef";
	f.request_id_len = 32;
	/* The client's X-Request-Id is kept when sane (choose_request_id). */
	for (unsigned i = 0; i < h.n_hdrs; i++) {
		if (h.hdrs[i].kind != HDR_X_REQUEST_ID)
			continue;
		if (h.hdrs[i].vlen > 0 && h.hdrs[i].vlen <= REQUEST_ID_MAX) {
			f.request_id = h.hdrs[i].value;
			f.request_id_len = h.hdrs[i].vlen;
			f.request_id_present = true;
		}
		break;
	}
	f.framing = h.chunked ? FRAME_CHUNKED : h.has_content_length ? FRAME_LENGTH : FRAME_NONE;
	f.content_length = h.content_length;
	FUZZ_CHECK(headers_write_request(&out, &h, &f));
	check_written(&h, &f, host, host_len);
	return 0;
}
