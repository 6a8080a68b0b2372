/*
 * Headers suite: the heads zkrouterd writes. A request head is parsed
 * with node/http.c and written again with node/headers.c, exactly as the
 * proxy does, and the bytes are compared: hop-by-hop headers (and those
 * named by Connection) dropped, framing replaced by ours, X-Forwarded-For
 * appended, X-Forwarded-Proto/-Host/-Port replaced, X-Request-Id kept or
 * added; and response heads for HTTP/1.1 and HTTP/1.0 clients.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/headers.h"
#include "node/http.h"
#include "tests/lib/unit.h"

static struct http_hdr hdrs[64];
static const struct http_limits lim = {8192, 64, 1024};

/* What a head buffer holds, as a malloc'd string. */
static char *hbuf_string(const struct hbuf *b)
{
	char *s = malloc(b->len + 1);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memcpy(s, b->data, b->len);
	s[b->len] = '\0';
	return s;
}

static void parse_req(const char *raw, struct http_head *h, llhttp_t *p)
{
	const char *why = NULL;

	memset(h, 0, sizeof(*h));
	h->hdrs = hdrs;
	h->max_hdrs = 64;
	CU_ASSERT_EQUAL_FATAL(http_parse_request(p, raw, strlen(raw), false, &lim, h, &why), HTTP_OK);
}

/* The written request head for `raw`, as a malloc'd string. */
/* --allow-underscore-headers, for the next rewrite(). */
static bool keep_underscores;

static char *rewrite(const char *raw, enum body_framing framing, uint64_t cl)
{
	struct http_head h;
	llhttp_t p;
	struct fwd_request f;
	struct hbuf out = {NULL, 0, 0};
	char *s;
	int i;

	parse_req(raw, &h, &p);
	memset(&f, 0, sizeof(f));
	f.client_ip = "192.0.2.7";
	f.proto = "http";
	f.local_port = 8080;
	if (h.authority) {
		f.host = h.authority;
		f.host_len = h.authority_len;
	} else {
		f.host = h.hdrs[h.host_idx].value;
		f.host_len = h.hdrs[h.host_idx].vlen;
	}
	f.framing = framing;
	f.content_length = cl;
	f.upgrade_protocols = "websocket";
	f.keep_underscores = keep_underscores;
	http_upgrade_restrict(&h, f.upgrade_protocols);
	f.request_id = "00000000000000000000000000000001";
	f.request_id_len = 32;
	for (i = 0; i < (int)h.n_hdrs; i++)
		if (h.hdrs[i].kind == HDR_X_REQUEST_ID) {
			f.request_id = h.hdrs[i].value;
			f.request_id_len = h.hdrs[i].vlen;
			f.request_id_present = true;
			break;
		}
	CU_ASSERT_FATAL(headers_write_request(&out, &h, &f));
	s = hbuf_string(&out);
	hbuf_free(&out);
	return s;
}

static void check(const char *raw, enum body_framing framing, uint64_t cl, const char *want)
{
	char *got = rewrite(raw, framing, cl);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n--- got:\n%s--- want:\n%s---\n", got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void test_plain_get(void)
{
	check("GET /p?q=1 HTTP/1.1\r\nHost: App.Test\r\nAccept: */*\r\n\r\n", FRAME_NONE, 0,
	      "GET /p?q=1 HTTP/1.1\r\nHost: App.Test\r\nAccept: */*\r\n"
	      "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	      "X-Forwarded-Host: App.Test\r\nX-Forwarded-Port: 8080\r\n"
	      "X-Request-Id: 00000000000000000000000000000001\r\n\r\n");
}

static void test_hop_by_hop_removed(void)
{
	check("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n"
	      "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nX-Secret: s\r\n"
	      "Upgrade: h2c\r\nX-Kept: k\r\n\r\n", FRAME_NONE, 0,
	      "GET / HTTP/1.1\r\nHost: a\r\nX-Kept: k\r\n"
	      "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	      "X-Forwarded-Host: a\r\nX-Forwarded-Port: 8080\r\n"
	      "X-Request-Id: 00000000000000000000000000000001\r\n\r\n");
}

static void test_framing_replaced(void)
{
	check("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0005\r\n\r\n", FRAME_LENGTH, 5,
	      "POST /u HTTP/1.1\r\nHost: a\r\n"
	      "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	      "X-Forwarded-Host: a\r\nX-Forwarded-Port: 8080\r\n"
	      "X-Request-Id: 00000000000000000000000000000001\r\nContent-Length: 5\r\n\r\n");
	check("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", FRAME_CHUNKED, 0,
	      "POST /u HTTP/1.1\r\nHost: a\r\n"
	      "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	      "X-Forwarded-Host: a\r\nX-Forwarded-Port: 8080\r\n"
	      "X-Request-Id: 00000000000000000000000000000001\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n");
}

static void test_forwarded_headers(void)
{
	/* XFF lines are joined and ours appended; the other X-Forwarded-*
	 * are the router's to say; a client's request id is kept. */
	check("GET / HTTP/1.1\r\nHost: a:8080\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n"
	      "X-Forwarded-Host: evil\r\nX-Forwarded-Port: 1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n"
	      "X-Request-Id: abc-123\r\n\r\n", FRAME_NONE, 0,
	      "GET / HTTP/1.1\r\nHost: a:8080\r\n"
	      "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7\r\n"
	      "X-Request-Id: abc-123\r\n"
	      "X-Forwarded-Proto: http\r\nX-Forwarded-Host: a:8080\r\nX-Forwarded-Port: 8080\r\n\r\n");
}

static void test_absolute_form(void)
{
	check("GET http://b.test:81/x HTTP/1.1\r\nHost: ignored\r\n\r\n", FRAME_NONE, 0,
	      "GET /x HTTP/1.1\r\nHost: b.test:81\r\n"
	      "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	      "X-Forwarded-Host: b.test:81\r\nX-Forwarded-Port: 8080\r\n"
	      "X-Request-Id: 00000000000000000000000000000001\r\n\r\n");
	check("GET http://b.test?q HTTP/1.0\r\n\r\n", FRAME_NONE, 0,
	      "GET /?q HTTP/1.1\r\nHost: b.test\r\n"
	      "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	      "X-Forwarded-Host: b.test\r\nX-Forwarded-Port: 8080\r\n"
	      "X-Request-Id: 00000000000000000000000000000001\r\n\r\n");
}

static void test_upgrade_kept(void)
{
	check("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	      "Sec-WebSocket-Key: k\r\n\r\n", FRAME_NONE, 0,
	      "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\n"
	      "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	      "X-Forwarded-Host: a\r\nX-Forwarded-Port: 8080\r\n"
	      "X-Request-Id: 00000000000000000000000000000001\r\n"
	      "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n");
	/* Only the protocols we tunnel go on, one line for all. */
	check("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c, WebSocket/13\r\n"
	      "Upgrade: foo\r\n\r\n", FRAME_NONE, 0,
	      "GET /ws HTTP/1.1\r\nHost: a\r\n"
	      "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
	      "X-Forwarded-Host: a\r\nX-Forwarded-Port: 8080\r\n"
	      "X-Request-Id: 00000000000000000000000000000001\r\n"
	      "Upgrade: WebSocket/13\r\nConnection: upgrade\r\n\r\n");
}

/* h2c is never tunnelled: without another protocol the request goes on as
 * an ordinary one, without Upgrade, HTTP2-Settings or Connection. */
static void test_upgrade_h2c_dropped(void)
{
	const char *plain = "GET / HTTP/1.1\r\nHost: a\r\n"
			    "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
			    "X-Forwarded-Host: a\r\nX-Forwarded-Port: 8080\r\n"
			    "X-Request-Id: 00000000000000000000000000000001\r\n\r\n";

	check("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
	      "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", FRAME_NONE, 0, plain);
	check("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
	      "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", FRAME_NONE, 0, plain);
	check("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocketx, h2c\r\n\r\n",
	      FRAME_NONE, 0, plain);
}

/* Names with '_' are dropped (a server behind may read Transfer_Encoding
 * as Transfer-Encoding), unless asked for. */
static void test_underscores(void)
{
	const char *raw = "GET / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n"
			  "Content_Length: 5\r\nX_Custom: v\r\nX-Ok: v\r\n\r\n";
	const char *tail = "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
			   "X-Forwarded-Host: a\r\nX-Forwarded-Port: 8080\r\n"
			   "X-Request-Id: 00000000000000000000000000000001\r\n\r\n";
	char want[1024];

	snprintf(want, sizeof(want), "GET / HTTP/1.1\r\nHost: a\r\nX-Ok: v\r\n%s", tail);
	check(raw, FRAME_NONE, 0, want);
	keep_underscores = true;
	snprintf(want, sizeof(want), "GET / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n"
		 "Content_Length: 5\r\nX_Custom: v\r\nX-Ok: v\r\n%s", tail);
	check(raw, FRAME_NONE, 0, want);
	keep_underscores = false;
}

/* The allowed-list matching behind --upgrade-protocols. */
static void test_upgrade_list(void)
{
	CU_ASSERT(http_upgrade_token_allowed("websocket", 9, "websocket"));
	CU_ASSERT(http_upgrade_token_allowed("WebSocket/13", 12, "foo, websocket"));
	CU_ASSERT(!http_upgrade_token_allowed("websockets", 10, "websocket"));
	CU_ASSERT(!http_upgrade_token_allowed("h2c", 3, "websocket"));
	CU_ASSERT(!http_upgrade_token_allowed("websocket", 9, NULL));
	CU_ASSERT(!http_upgrade_token_allowed("/1", 2, "websocket"));
	CU_ASSERT(http_upgrade_list_valid("websocket"));
	CU_ASSERT(http_upgrade_list_valid("websocket, foo,bar"));
	CU_ASSERT(http_upgrade_list_valid(NULL));
	CU_ASSERT(!http_upgrade_list_valid(""));
	CU_ASSERT(!http_upgrade_list_valid(" , "));
	CU_ASSERT(!http_upgrade_list_valid("web/socket"));
	CU_ASSERT(!http_upgrade_list_valid("a;b"));
}

static char *write_resp(const char *raw, const struct fwd_response *f)
{
	struct http_head h;
	llhttp_t p;
	const char *why;
	struct hbuf out = {NULL, 0, 0};
	char *s;

	memset(&h, 0, sizeof(h));
	h.hdrs = hdrs;
	h.max_hdrs = 64;
	CU_ASSERT_EQUAL_FATAL(http_parse_response(&p, raw, strlen(raw), false, &lim, false, &h, &why), HTTP_OK);
	CU_ASSERT_FATAL(headers_write_response(&out, &h, f));
	s = hbuf_string(&out);
	hbuf_free(&out);
	return s;
}

static void test_responses(void)
{
	const char *raw = "HTTP/1.1 200 Fine\r\nConnection: close, X-Hop\r\nX-Hop: h\r\nKeep-Alive: 1\r\n"
			  "Transfer-Encoding: chunked\r\nX-App: a\r\n\r\n";
	struct fwd_response f;
	char *s;

	memset(&f, 0, sizeof(f));
	f.keep_alive = true;
	f.framing = FRAME_CHUNKED;
	f.request_id = "r1";
	f.request_id_len = 2;
	s = write_resp(raw, &f);
	CU_ASSERT_STRING_EQUAL(s, "HTTP/1.1 200 Fine\r\nX-App: a\r\nX-Request-Id: r1\r\n"
				  "Transfer-Encoding: chunked\r\n\r\n");
	free(s);

	/* An HTTP/1.0 client gets a 1.0 status line, the body until close. */
	f.client_http10 = true;
	f.keep_alive = false;
	f.framing = FRAME_CLOSE;
	s = write_resp(raw, &f);
	CU_ASSERT_STRING_EQUAL(s, "HTTP/1.0 200 Fine\r\nX-App: a\r\nX-Request-Id: r1\r\n"
				  "Connection: close\r\n\r\n");
	free(s);

	/* ... or a length and an explicit keep-alive when it asked for one. */
	f.keep_alive = true;
	f.framing = FRAME_LENGTH;
	f.content_length = 12;
	s = write_resp("HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nX-Request-Id: app-id\r\n\r\n", &f);
	CU_ASSERT_STRING_EQUAL(s, "HTTP/1.0 404 Not Found\r\nX-Request-Id: app-id\r\n"
				  "Connection: keep-alive\r\nContent-Length: 12\r\n\r\n");
	free(s);

	/* The sticky cookie names the instance that answered. */
	memset(&f, 0, sizeof(f));
	f.keep_alive = true;
	f.framing = FRAME_LENGTH;
	f.content_length = 2;
	f.sticky_cookie = "zkr";
	f.sticky_value = "10.0.0.7:8080";
	s = write_resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", &f);
	CU_ASSERT_STRING_EQUAL(s, "HTTP/1.1 200 OK\r\nSet-Cookie: zkr=10.0.0.7:8080; Path=/; HttpOnly\r\n"
				  "Content-Length: 2\r\n\r\n");
	free(s);
}

static void test_request_ids(void)
{
	uint64_t rng = 42;
	char a[33], b[33];
	int i;

	headers_request_id(&rng, a);
	CU_ASSERT_EQUAL(strlen(a), 32);
	for (i = 0; i < 32; i++)
		CU_ASSERT(strchr("0123456789abcdef", a[i]) != NULL);
	for (i = 0; i < 1000; i++) {
		headers_request_id(&rng, b);
		CU_ASSERT_STRING_NOT_EQUAL(a, b);
	}
}

/* A head larger than the buffer's first size grows it; the next head
 * written into the same buffer replaces the first, whatever their sizes. */
static void test_buffer_reuse(void)
{
	static char big[5000], raw[5200];
	struct http_head h;
	llhttp_t p;
	struct fwd_request f;
	struct hbuf out = {NULL, 0, 0};
	const char *start = "GET /a HTTP/1.1\r\nHost: x.test\r\n";
	char *s;

	memset(big, 'v', sizeof(big) - 1);
	snprintf(raw, sizeof(raw), "GET /a HTTP/1.1\r\nHost: x.test\r\nX-Big: %s\r\n\r\n", big);
	parse_req(raw, &h, &p);
	memset(&f, 0, sizeof(f));
	f.client_ip = "10.0.0.1";
	f.proto = "http";
	f.local_port = 80;
	f.host = "x.test";
	f.host_len = 6;
	f.request_id = "r1";
	f.request_id_len = 2;
	CU_ASSERT_FATAL(headers_write_request(&out, &h, &f));
	CU_ASSERT(out.len > sizeof(big));
	CU_ASSERT(out.cap >= out.len);
	s = hbuf_string(&out);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, big));
	CU_ASSERT(strncmp(s, start, strlen(start)) == 0);
	CU_ASSERT(strcmp(s + strlen(s) - 4, "\r\n\r\n") == 0);
	free(s);

	parse_req("GET /b HTTP/1.1\r\nHost: x.test\r\n\r\n", &h, &p);
	CU_ASSERT_FATAL(headers_write_request(&out, &h, &f));
	s = hbuf_string(&out);
	CU_ASSERT_STRING_EQUAL(s, "GET /b HTTP/1.1\r\nHost: x.test\r\nX-Forwarded-For: 10.0.0.1\r\n"
				  "X-Forwarded-Proto: http\r\nX-Forwarded-Host: x.test\r\n"
				  "X-Forwarded-Port: 80\r\nX-Request-Id: r1\r\n\r\n");
	free(s);
	hbuf_free(&out);
	CU_ASSERT_PTR_NULL(out.data);
}

/* headers_request_split reads back what headers_write_request wrote:
 * the request line's parts and every field, in order, empty values too. */
struct split_seen {
	char text[1024];
	size_t len;
};

static void split_one(const char *name, size_t nlen, const char *value, size_t vlen, void *arg)
{
	struct split_seen *sp = arg;
	int n = snprintf(sp->text + sp->len, sizeof(sp->text) - sp->len, "[%.*s=%.*s]", (int)nlen,
			 name, (int)vlen, value);

	CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(sp->text) - sp->len);
	sp->len += (size_t)n;
}

static void test_request_split(void)
{
	char *w = rewrite("POST /u?x=1 HTTP/1.1\r\nHost: a.test:81\r\nX-Empty:\r\n"
			  "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
			  FRAME_CHUNKED, 0);
	struct hbuf hb = { w, strlen(w), strlen(w) };
	struct split_seen sp = { "", 0 };
	const char *m, *t;
	size_t ml, tl;

	CU_ASSERT_FATAL(headers_request_split(&hb, &m, &ml, &t, &tl, split_one, &sp));
	CU_ASSERT(ml == 4 && memcmp(m, "POST", 4) == 0);
	CU_ASSERT(tl == 6 && memcmp(t, "/u?x=1", 6) == 0);
	CU_ASSERT_STRING_EQUAL(sp.text, "[Host=a.test:81][X-Empty=][X-Forwarded-For=192.0.2.7]"
				       "[X-Forwarded-Proto=http][X-Forwarded-Host=a.test:81]"
				       "[X-Forwarded-Port=8080]"
				       "[X-Request-Id=00000000000000000000000000000001]"
				       "[Transfer-Encoding=chunked]");
	/* Not such a head: no blank line, no request line. */
	hb.len -= 2;
	CU_ASSERT_FALSE(headers_request_split(&hb, &m, &ml, &t, &tl, split_one, &sp));
	hb.data = (char *)"GARBAGE\r\n\r\n";
	hb.len = strlen(hb.data);
	CU_ASSERT_FALSE(headers_request_split(&hb, &m, &ml, &t, &tl, split_one, &sp));
	free(w);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("headers", NULL, NULL);

	UNIT_TEST(s, test_plain_get);
	UNIT_TEST(s, test_hop_by_hop_removed);
	UNIT_TEST(s, test_framing_replaced);
	UNIT_TEST(s, test_forwarded_headers);
	UNIT_TEST(s, test_absolute_form);
	UNIT_TEST(s, test_upgrade_kept);
	UNIT_TEST(s, test_upgrade_h2c_dropped);
	UNIT_TEST(s, test_upgrade_list);
	UNIT_TEST(s, test_underscores);
	UNIT_TEST(s, test_responses);
	UNIT_TEST(s, test_request_ids);
	UNIT_TEST(s, test_buffer_reuse);
	UNIT_TEST(s, test_request_split);
}
