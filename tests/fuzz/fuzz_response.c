/*
 * Fuzz target "response": a backend's response head, taken the way
 * node/upstream-response.c takes it. The first input byte says how the
 * request was made (bit 0: HEAD, bit 1: the client spoke HTTP/1.0, bit 2:
 * keep-alive); the rest is what the backend sent.
 *
 * Properties: the head written for the client parses again as a
 * response with the same status and the framing the router announced.
 */
#include <string.h>

#include <llhttp.h>

#include "node/headers.h"
#include "node/http.h"
#include "tests/fuzz/fuzz.h"

#define MAX_HEAD 32768
#define MAX_HEADERS 100

static struct hbuf out;

/* The framing the router gives the client (response_head). */
static enum body_framing framing(const struct http_head *h, bool head_request, bool http10)
{
	if (!http_response_has_body(h, head_request)) {
		bool may_state = h->status >= 200 && h->status != 204;

		if (h->has_content_length && may_state)
			return FRAME_LENGTH;
		if (h->chunked && !http10 && may_state)
			return FRAME_CHUNKED;
		return FRAME_NONE;
	}
	if (h->chunked)
		return http10 ? FRAME_CLOSE : FRAME_CHUNKED;
	if (h->has_content_length)
		return FRAME_LENGTH;
	return FRAME_CLOSE;
}

static void check_written(const struct http_head *h, const struct fwd_response *f,
			  bool head_request)
{
	struct http_limits lim = { out.len + 1, MAX_HEADERS + 8, out.len + 1 };
	struct http_hdr *hdrs = calloc(lim.max_headers, sizeof(*hdrs));
	struct http_head w;
	llhttp_t parser;
	const char *why;

	FUZZ_CHECK(hdrs != NULL);
	memset(&w, 0, sizeof(w));
	w.hdrs = hdrs;
	w.max_hdrs = lim.max_headers;
	FUZZ_CHECK(http_head_end(out.data, out.len) == out.len);
	enum http_result r = http_parse_response(&parser, out.data, out.len, false, &lim,
						 head_request, &w, &why);
	if (r != HTTP_OK)
		fprintf(stderr, "written head refused (%s):\n%.*s", why, (int)out.len, out.data);
	FUZZ_CHECK(r == HTTP_OK);
	FUZZ_CHECK(w.status == h->status);
	FUZZ_CHECK(w.chunked == (f->framing == FRAME_CHUNKED));
	FUZZ_CHECK(w.has_content_length == (f->framing == FRAME_LENGTH));
	if (w.has_content_length)
		FUZZ_CHECK(w.content_length == f->content_length);
	if (!f->keep_alive)
		FUZZ_CHECK(w.conn_close);
	free(hdrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits lim = { MAX_HEAD, MAX_HEADERS, MAX_HEAD };
	struct http_hdr hdrs[MAX_HEADERS];
	struct http_head h;
	llhttp_t parser;
	const char *why = NULL;
	enum http_result r;

	if (size < 1)
		return 0;
	bool head_request = data[0] & 1, http10 = data[0] & 2, keep_alive = data[0] & 4;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1, end = http_head_end(buf, len);

	memset(&h, 0, sizeof(h));
	h.hdrs = hdrs;
	h.max_hdrs = MAX_HEADERS;
	r = http_parse_response(&parser, buf, end ? end : len, end == 0, &lim, head_request, &h, &why);
	if (end == 0) {
		FUZZ_CHECK(r != HTTP_OK);
		return 0;
	}
	if (r != HTTP_OK) {
		FUZZ_CHECK(why != NULL);
		return 0;
	}
	FUZZ_CHECK(h.head_len == end && h.major == 1);
	FUZZ_CHECK(!(h.chunked && h.has_content_length));
	FUZZ_CHECK(h.status >= 0 && h.status <= 999);   /* three digits */

	struct fwd_response f;
	memset(&f, 0, sizeof(f));
	f.client_http10 = http10;
	f.request_id = "0123456789abcdef0123456789abcdef";
	f.request_id_len = 32;
	f.framing = framing(&h, head_request, http10);
	f.content_length = h.content_length;
	f.keep_alive = keep_alive && f.framing != FRAME_CLOSE;
	FUZZ_CHECK(headers_write_response(&out, &h, &f));
	check_written(&h, &f, head_request);
	return 0;
}
