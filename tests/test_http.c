/*
 * HTTP suite: what node/http.c accepts and refuses. A table of hostile and
 * malformed request heads (each must be refused with the right answer,
 * never accepted), heads that must be accepted with the right meaning,
 * the size limits (431, 414), partial heads that are garbage from their
 * first bytes, response heads, and chunked body decoding.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "node/http.h"
#include "tests/lib/unit.h"

static struct http_hdr hdrs[100];
static const struct http_limits lim = {4096, 20, 256};

static enum http_result parse(const char *raw, struct http_head *h, llhttp_t *p)
{
	const char *why = NULL;
	size_t len = strlen(raw), end = http_head_end(raw, len);

	memset(h, 0, sizeof(*h));
	h->hdrs = hdrs;
	h->max_hdrs = 100;
	return http_parse_request(p, raw, end ? end : len, end == 0, &lim, h, &why);
}

static const struct {
	const char *name;
	const char *raw;
	enum http_result want;
} bad_cases[] = {
	{"CL with TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_BAD},
	{"TE with CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", HTTP_BAD},
	{"repeated CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", HTTP_BAD},
	{"conflicting CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", HTTP_BAD},
	{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", HTTP_BAD},
	{"CL sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", HTTP_BAD},
	{"CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", HTTP_BAD},
	{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", HTTP_BAD},
	{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", HTTP_BAD},
	{"CL huge", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", HTTP_BAD},
	{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_BAD},
	{"TE chunked then gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP_BAD},
	{"TE gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_BAD},
	{"TE repeated", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_BAD},
	{"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", HTTP_BAD},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", HTTP_BAD},
	{"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n", HTTP_BAD},
	{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n", HTTP_BAD},
	{"tab before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A\t: 1\r\n\r\n", HTTP_BAD},
	{"space before colon on TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", HTTP_BAD},
	{"control in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x01" "A: 1\r\n\r\n", HTTP_BAD},
	{"separator in name", "GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n", HTTP_BAD},
	{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", HTTP_BAD},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x7f\r\n\r\n", HTTP_BAD},
	{"control in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x02\r\n\r\n", HTTP_BAD},
	{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n", HTTP_BAD},
	{"bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP_BAD},
	{"all bare LF", "GET / HTTP/1.1\nHost: a\n\n", HTTP_BAD},
	{"NUL", "GET / HTTP/1.1\r\nHost: a\r\nX-A: \0\r\n\r\n", HTTP_BAD},
	{"missing Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", HTTP_BAD},
	{"repeated Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_BAD},
	{"repeated same Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HTTP_BAD},
	{"TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" "abcdefgh\r\n\r\n", HTTP_BAD},
	{"garbage", "hello there\r\n\r\n", HTTP_BAD},
	{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BAD},
	{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BAD},
	{"userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BAD},
	{"non-ascii target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BAD},
	{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_BAD},
	{"HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP_BAD_VERSION},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP_BAD},
	{"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BAD},
	{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", HTTP_BAD_METHOD},
	{"target too long", NULL, HTTP_TARGET_TOO_LONG},
	{"too many headers", NULL, HTTP_TOO_MANY_HEADERS},
	{"head too large", NULL, HTTP_HEAD_TOO_LARGE},
};

static void build_big(size_t i, char *buf, size_t size)
{
	size_t n = 0, k;

	if (i == 0) {           /* target of 300 bytes > 256 */
		n += (size_t)snprintf(buf, size, "GET /");
		for (k = 0; k < 300; k++)
			buf[n++] = 'a';
		snprintf(buf + n, size - n, " HTTP/1.1\r\nHost: a\r\n\r\n");
	} else if (i == 1) {    /* 21 headers > 20 */
		n += (size_t)snprintf(buf, size, "GET / HTTP/1.1\r\nHost: a\r\n");
		for (k = 0; k < 20; k++)
			n += (size_t)snprintf(buf + n, size - n, "X-%zu: v\r\n", k);
		snprintf(buf + n, size - n, "\r\n");
	} else {                /* 5000 bytes > 4096 */
		n += (size_t)snprintf(buf, size, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
		for (k = 0; k < 5000; k++)
			buf[n++] = 'b';
		snprintf(buf + n, size - n, "\r\n\r\n");
	}
}

static void test_hostile_refused(void)
{
	size_t i, big = 0;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct http_head h;
		llhttp_t p;
		char buf[8192];
		const char *raw = bad_cases[i].raw;
		size_t len, end;
		const char *why = NULL;
		enum http_result r;

		if (raw == NULL) {
			build_big(big++, buf, sizeof(buf));
			raw = buf;
		}
		/* Length by hand: the NUL case has a NUL inside. */
		len = strlen(raw);
		if (strcmp(bad_cases[i].name, "NUL") == 0)
			len = sizeof("GET / HTTP/1.1\r\nHost: a\r\nX-A: \0\r\n\r\n") - 1;
		end = http_head_end(raw, len);
		memset(&h, 0, sizeof(h));
		h.hdrs = hdrs;
		h.max_hdrs = lim.max_headers;
		r = http_parse_request(&p, raw, end ? end : len, false, &lim, &h, &why);
		if (r != bad_cases[i].want)
			fprintf(stderr, "case \"%s\": got %d (%s), want %d\n", bad_cases[i].name, (int)r,
				why ? why : "-", (int)bad_cases[i].want);
		CU_ASSERT_EQUAL(r, bad_cases[i].want);
		if (r != HTTP_OK)
			CU_ASSERT_PTR_NOT_NULL(why);
	}
}

static void test_simple_get(void)
{
	struct http_head h;
	llhttp_t p;

	CU_ASSERT_EQUAL_FATAL(parse("GET /x?y=1 HTTP/1.1\r\nHost: App.Test:8080\r\nAccept:  */*  \r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT_EQUAL(h.method, HTTP_GET);
	CU_ASSERT_EQUAL(h.minor, 1);
	CU_ASSERT_EQUAL(h.n_hdrs, 2);
	CU_ASSERT_EQUAL(h.host_idx, 0);
	CU_ASSERT_NSTRING_EQUAL(h.hdrs[0].value, "App.Test:8080", h.hdrs[0].vlen);
	CU_ASSERT_EQUAL(h.hdrs[1].vlen, 3);   /* OWS trimmed both sides */
	CU_ASSERT_NSTRING_EQUAL(h.hdrs[1].value, "*/*", 3);
	CU_ASSERT_EQUAL(h.path_len, 6);
	CU_ASSERT_PTR_NULL(h.authority);
	CU_ASSERT(!h.has_content_length && !h.chunked && !h.conn_close && !h.upgrade);
}

static void test_meaning(void)
{
	struct http_head h;
	llhttp_t p;

	CU_ASSERT_EQUAL_FATAL(parse("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\nExpect: 100-continue\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT(h.has_content_length && h.content_length == 42 && h.expect_continue);

	CU_ASSERT_EQUAL_FATAL(parse("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT(h.chunked && !h.has_content_length);

	CU_ASSERT_EQUAL_FATAL(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT(h.minor == 0 && h.conn_keep_alive && h.host_idx == -1);

	CU_ASSERT_EQUAL_FATAL(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nX-Other: 2\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT(h.conn_close);
	CU_ASSERT_EQUAL(h.hdrs[2].kind, HDR_CONNECTION_LISTED);
	CU_ASSERT_EQUAL(h.hdrs[3].kind, HDR_OTHER);

	CU_ASSERT_EQUAL_FATAL(parse("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT(h.upgrade);
	CU_ASSERT_EQUAL_FATAL(parse("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT(!h.upgrade);   /* Upgrade without Connection: upgrade is not one */

	CU_ASSERT_EQUAL_FATAL(parse("GET http://Other.Test:81/p?q HTTP/1.1\r\nHost: a\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT_EQUAL(h.authority_len, 13);
	CU_ASSERT_NSTRING_EQUAL(h.authority, "Other.Test:81", 13);
	CU_ASSERT_NSTRING_EQUAL(h.path, "/p?q", h.path_len);

	CU_ASSERT_EQUAL_FATAL(parse("GET http://b.test HTTP/1.0\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT_EQUAL(h.path_len, 0);
	CU_ASSERT_NSTRING_EQUAL(h.authority, "b.test", 6);

	CU_ASSERT_EQUAL_FATAL(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT_EQUAL(parse("GET * HTTP/1.1\r\nHost: a\r\n\r\n", &h, &p), HTTP_BAD);

	/* obs-text in values is legal and passed through. */
	CU_ASSERT_EQUAL(parse("GET / HTTP/1.1\r\nHost: a\r\nX-N: caf\xc3\xa9\r\n\r\n", &h, &p), HTTP_OK);
	/* Empty values are fine. */
	CU_ASSERT_EQUAL_FATAL(parse("GET / HTTP/1.1\r\nHost: a\r\nX-E:\r\n\r\n", &h, &p), HTTP_OK);
	CU_ASSERT_EQUAL(h.hdrs[1].vlen, 0);
}

static void test_limits_boundaries(void)
{
	struct http_head h;
	llhttp_t p;
	char buf[8192];
	size_t n = 0, k;

	/* Exactly 20 headers and a 256-byte target are allowed. */
	n += (size_t)snprintf(buf, sizeof(buf), "GET /");
	for (k = 0; k < 255; k++)
		buf[n++] = 'a';
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\nHost: a\r\n");
	for (k = 0; k < 19; k++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%zu: v\r\n", k);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	CU_ASSERT_EQUAL(parse(buf, &h, &p), HTTP_OK);
	CU_ASSERT_EQUAL(h.n_hdrs, 20);
	CU_ASSERT_EQUAL(h.target_len, 256);
}

static void test_partial(void)
{
	struct http_head h;
	llhttp_t p;

	CU_ASSERT_EQUAL(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: par", &h, &p), HTTP_INCOMPLETE);
	CU_ASSERT_EQUAL(parse("GE", &h, &p), HTTP_INCOMPLETE);
	/* Garbage is refused from its first bytes, not after a timeout. */
	CU_ASSERT_EQUAL(parse("\x16\x03\x01\x02\x00\x01", &h, &p), HTTP_BAD);
	CU_ASSERT_EQUAL(parse("GET / HTTP/1.1\r\nHost: a\r\nX\x01", &h, &p), HTTP_BAD);
	CU_ASSERT_EQUAL(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2", &h, &p), HTTP_BAD);
	CU_ASSERT_EQUAL(http_head_end("GET / HTTP/1.1\r\n\r\nxyz", 21), 18);
	CU_ASSERT_EQUAL(http_head_end("GET / HTTP/1.1\r\n\r", 17), 0);
}

static void test_responses(void)
{
	struct http_head h;
	llhttp_t p;
	const char *why;
	const char *r1 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
	const char *r2 = "HTTP/1.1 204 No Content\r\n\r\n";
	const char *r3 = "HTTP/1.0 200 OK\r\n\r\n";
	const char *r4 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
	const char *r5 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";

	memset(&h, 0, sizeof(h));
	h.hdrs = hdrs;
	h.max_hdrs = 100;
	CU_ASSERT_EQUAL_FATAL(http_parse_response(&p, r1, strlen(r1), false, &lim, false, &h, &why), HTTP_OK);
	CU_ASSERT(h.status == 200 && h.content_length == 5 && h.conn_close);
	CU_ASSERT_NSTRING_EQUAL(h.reason, "OK", h.reason_len);
	CU_ASSERT(http_response_has_body(&h, false));
	CU_ASSERT(!http_response_has_body(&h, true));
	CU_ASSERT_EQUAL_FATAL(http_parse_response(&p, r2, strlen(r2), false, &lim, false, &h, &why), HTTP_OK);
	CU_ASSERT(!http_response_has_body(&h, false));
	CU_ASSERT_EQUAL_FATAL(http_parse_response(&p, r3, strlen(r3), false, &lim, false, &h, &why), HTTP_OK);
	CU_ASSERT(h.minor == 0 && !h.has_content_length && !h.chunked);
	CU_ASSERT_EQUAL(http_parse_response(&p, r4, strlen(r4), false, &lim, false, &h, &why), HTTP_BAD);
	CU_ASSERT_EQUAL(http_parse_response(&p, r5, strlen(r5), false, &lim, false, &h, &why), HTTP_BAD);
}

/* Status codes outside 100-599 are refused; a reason phrase with control
 * bytes is replaced by the standard one, a clean one kept as it is. */
static void test_response_status_and_reason(void)
{
	static const struct {
		const char *raw;
		enum http_result want;
		const char *reason;
	} cases[] = {
		{"HTTP/1.1 000 Zero\r\n\r\n", HTTP_BAD, NULL},
		{"HTTP/1.1 099 Low\r\n\r\n", HTTP_BAD, NULL},
		{"HTTP/1.1 600 High\r\n\r\n", HTTP_BAD, NULL},
		{"HTTP/1.1 999 High\r\n\r\n", HTTP_BAD, NULL},
		{"HTTP/1.1 100 Continue\r\n\r\n", HTTP_OK, "Continue"},
		{"HTTP/1.1 599 Whatever\r\n\r\n", HTTP_OK, "Whatever"},
		{"HTTP/1.1 200 Fine\tand dandy\r\n\r\n", HTTP_OK, "Fine\tand dandy"},
		{"HTTP/1.1 200 \x1b[2JOK\r\n\r\n", HTTP_OK, "OK"},
		{"HTTP/1.1 404 Gone\x7f\r\n\r\n", HTTP_OK, "Not Found"},
		{"HTTP/1.1 299 \x01\r\n\r\n", HTTP_OK, ""},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_head h;
		llhttp_t p;
		const char *why = NULL;

		memset(&h, 0, sizeof(h));
		h.hdrs = hdrs;
		h.max_hdrs = 100;
		CU_ASSERT_EQUAL(http_parse_response(&p, cases[i].raw, strlen(cases[i].raw), false, &lim,
						    false, &h, &why), cases[i].want);
		if (cases[i].want == HTTP_OK) {
			CU_ASSERT_EQUAL(h.reason_len, strlen(cases[i].reason));
			CU_ASSERT_NSTRING_EQUAL(h.reason, cases[i].reason, h.reason_len);
		}
	}
}

/* Feeds `body` to the decoder in pieces of `step` bytes. */
static void decode_in_steps(const char *head, const char *body, size_t step, const char *want,
			    size_t want_used)
{
	struct http_head h;
	llhttp_t p;
	struct http_chunk_state cs = {0};
	struct evbuffer *out = evbuffer_new();
	size_t off = 0, len = strlen(body), total_used = 0;
	bool done = false;
	const char *why = NULL;

	CU_ASSERT_EQUAL_FATAL(parse(head, &h, &p), HTTP_OK);
	while (off < len && !done) {
		size_t n = len - off < step ? len - off : step, used = 0;

		CU_ASSERT_FATAL(http_body_decode(&p, &cs, &lim, body + off, n, out, &used, &done, &why));
		off += used;
		total_used += used;
		if (used < n && !done)
			CU_FAIL_FATAL("decoder stopped early");
	}
	CU_ASSERT(done);
	CU_ASSERT_EQUAL(total_used, want_used);
	CU_ASSERT_EQUAL(evbuffer_get_length(out), strlen(want));
	CU_ASSERT_NSTRING_EQUAL(evbuffer_pullup(out, -1), want, strlen(want));
	evbuffer_free(out);
}

static void test_chunked_decode(void)
{
	const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	const char *body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET /next";
	size_t body_len = strlen(body) - strlen("GET /next");
	size_t step;

	for (step = 1; step <= strlen(body); step++)
		decode_in_steps(head, body, step, "hello world", body_len);
}

static void test_chunked_bad(void)
{
	static const char *bad[] = {
		"zz\r\nabc\r\n0\r\n\r\n",
		"3\r\nabcd\r\n0\r\n\r\n",
		"-1\r\nabc\r\n",
		"3 \r\nabc\r\n0\r\n\r\n",
		"3\nabc\n0\n\n",
		/* A bare CR after the size, then any byte where LF belongs. */
		"5\rXhello\r\n0\r\n\r\n",
		/* Two arbitrary bytes where the CRLF after chunk data belongs. */
		"5\r\nhelloXX0\r\n\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"5\r\nhello\rX0\r\n\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_head h;
		llhttp_t p;
		struct http_chunk_state cs = {0};
		struct evbuffer *out = evbuffer_new();
		size_t used;
		bool done = false;
		const char *why = NULL;

		CU_ASSERT_EQUAL_FATAL(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &p), HTTP_OK);
		if (http_body_decode(&p, &cs, &lim, bad[i], strlen(bad[i]), out, &used, &done, &why)) {
			fprintf(stderr, "chunked case %zu accepted\n", i);
			CU_FAIL("malformed chunked body accepted");
		}
		evbuffer_free(out);
	}
}

/* Feeds a chunked body `step` bytes per call, as reads would bring it.
 * True when it was accepted whole. */
static bool feed_body(const char *body, size_t len, size_t step)
{
	struct http_head h;
	llhttp_t p;
	struct http_chunk_state cs = {0};
	struct evbuffer *out = evbuffer_new();
	size_t off = 0;
	bool done = false, ok = true;
	const char *why = NULL;

	CU_ASSERT_EQUAL_FATAL(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &p), HTTP_OK);
	while (off < len && !done && ok) {
		size_t n = len - off < step ? len - off : step, used = 0;

		ok = http_body_decode(&p, &cs, &lim, body + off, n, out, &used, &done, &why);
		off += used;
	}
	evbuffer_free(out);
	return ok && done;
}

/* Chunk extensions up to HTTP_CHUNK_EXT_MAX and trailers within the head
 * limits (lim: 20 fields, 4096 bytes) pass, however the reads split them;
 * past them the body is refused. */
static void test_chunked_limits(void)
{
	static char body[64 * 1024];
	size_t n, i;
	const size_t steps[] = {1, 7, 4096, sizeof(body)};

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		/* ";" + 4095 bytes: exactly the limit (the ';' is not counted). */
		n = (size_t)snprintf(body, sizeof(body), "5;%s", "");
		memset(body + n, 'e', HTTP_CHUNK_EXT_MAX);
		n += HTTP_CHUNK_EXT_MAX;
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nhello\r\n0\r\n\r\n");
		CU_ASSERT(feed_body(body, n, steps[i]));

		n = (size_t)snprintf(body, sizeof(body), "5;");
		memset(body + n, 'e', HTTP_CHUNK_EXT_MAX + 1);
		n += HTTP_CHUNK_EXT_MAX + 1;
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nhello\r\n0\r\n\r\n");
		CU_ASSERT(!feed_body(body, n, steps[i]));

		/* Name and value both count, across chunks the count restarts. */
		n = (size_t)snprintf(body, sizeof(body), "1;a=");
		memset(body + n, 'v', HTTP_CHUNK_EXT_MAX - 2);
		n += HTTP_CHUNK_EXT_MAX - 2;
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nx\r\n1;b=");
		memset(body + n, 'v', HTTP_CHUNK_EXT_MAX - 2);
		n += HTTP_CHUNK_EXT_MAX - 2;
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\ny\r\n0\r\n\r\n");
		CU_ASSERT(feed_body(body, n, steps[i]));

		/* 20 trailers pass, 21 do not. */
		n = (size_t)snprintf(body, sizeof(body), "0\r\n");
		for (int k = 0; k < 20; k++)
			n += (size_t)snprintf(body + n, sizeof(body) - n, "X-T%d: v\r\n", k);
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\n");
		CU_ASSERT(feed_body(body, n, steps[i]));
		n = (size_t)snprintf(body, sizeof(body), "0\r\n");
		for (int k = 0; k < 21; k++)
			n += (size_t)snprintf(body + n, sizeof(body) - n, "X-T%d: v\r\n", k);
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\n");
		CU_ASSERT(!feed_body(body, n, steps[i]));

		/* One trailer larger than the head limit. */
		n = (size_t)snprintf(body, sizeof(body), "0\r\nX-Big: ");
		memset(body + n, 'v', 5000);
		n += 5000;
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\n\r\n");
		CU_ASSERT(!feed_body(body, n, steps[i]));
	}
}

/* http_body_move: re-framed or raw, and a malformed body leaves the shared
 * decode buffer empty (what it decoded before the error goes nowhere). */
static void test_body_move(void)
{
	static const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char *body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new(), *scratch = evbuffer_new();
	struct http_head h;
	llhttp_t p;
	struct http_chunk_state cs = {0};
	size_t used, data;
	bool done;
	const char *why = NULL;
	int raw;

	for (raw = 0; raw <= 1; raw++) {
		const char *want = raw ? "hello world" : "b\r\nhello world\r\n0\r\n\r\n";

		CU_ASSERT_EQUAL_FATAL(parse(head, &h, &p), HTTP_OK);
		evbuffer_add(in, body, strlen(body));
		CU_ASSERT_FATAL(http_body_move(&p, &cs, &lim, in, out, scratch, !raw, &used, &data, &done, &why));
		CU_ASSERT(done);
		CU_ASSERT_EQUAL(used, strlen(body));
		CU_ASSERT_EQUAL(data, 11);
		CU_ASSERT_EQUAL(evbuffer_get_length(in), 0);
		CU_ASSERT_EQUAL(evbuffer_get_length(scratch), 0);
		CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(out), strlen(want));
		CU_ASSERT_NSTRING_EQUAL(evbuffer_pullup(out, -1), want, strlen(want));
		evbuffer_drain(out, evbuffer_get_length(out));
	}

	/* Nothing readable yet: no progress, no error. */
	CU_ASSERT_EQUAL_FATAL(parse(head, &h, &p), HTTP_OK);
	CU_ASSERT(http_body_move(&p, &cs, &lim, in, out, scratch, true, &used, &data, &done, &why));
	CU_ASSERT(used == 0 && data == 0 && !done);

	evbuffer_add(in, "5\r\nhello\r\nzz\r\n", 15);
	CU_ASSERT(!http_body_move(&p, &cs, &lim, in, out, scratch, true, &used, &data, &done, &why));
	CU_ASSERT_PTR_NOT_NULL(why);
	CU_ASSERT_EQUAL(evbuffer_get_length(scratch), 0);
	CU_ASSERT_EQUAL(evbuffer_get_length(out), 0);
	evbuffer_free(in);
	evbuffer_free(out);
	evbuffer_free(scratch);
}

/* Lists as RFC 9110 writes them: empty elements and spaces around
 * elements are not tokens; spaces inside one are kept. */
static void test_next_token(void)
{
	static const struct {
		const char *value;
		const char *want;   /* the tokens, each followed by '|' */
	} cases[] = {
		{ "close", "close|" },
		{ " a , b ,,c\t", "a|b|c|" },
		{ ",,,", "" },
		{ "", "" },
		{ " \t ", "" },
		{ "keep-alive,Upgrade", "keep-alive|Upgrade|" },
		{ "x y, z", "x y|z|" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p = cases[i].value, *end = p + strlen(p), *t;
		char got[64] = "";
		size_t n, used = 0;

		while (http_next_token(&p, end, &t, &n)) {
			CU_ASSERT_FATAL(used + n + 2 <= sizeof(got));
			memcpy(got + used, t, n);
			used += n;
			got[used++] = '|';
			got[used] = '\0';
		}
		CU_ASSERT_PTR_EQUAL(p, end);
		CU_ASSERT_STRING_EQUAL(got, cases[i].want);
	}
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("http", NULL, NULL);

	UNIT_TEST(s, test_hostile_refused);
	UNIT_TEST(s, test_simple_get);
	UNIT_TEST(s, test_meaning);
	UNIT_TEST(s, test_limits_boundaries);
	UNIT_TEST(s, test_partial);
	UNIT_TEST(s, test_responses);
	UNIT_TEST(s, test_response_status_and_reason);
	UNIT_TEST(s, test_chunked_decode);
	UNIT_TEST(s, test_chunked_bad);
	UNIT_TEST(s, test_chunked_limits);
	UNIT_TEST(s, test_body_move);
	UNIT_TEST(s, test_next_token);
}
