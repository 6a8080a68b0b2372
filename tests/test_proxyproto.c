/*
 * PROXY protocol suite: a table of inputs (v1 and v2 headers, valid and
 * not) with the parser's verdict and, for whole headers, the length and
 * the addresses it reports. Every valid header is then fed again cut
 * short at each length (always "need more", never an error or a header)
 * and followed by client bytes (which must not change the result).
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "node/proxyproto.h"
#include "tests/lib/unit.h"

/* A string literal with its length: headers hold NUL bytes. */
#define B(s) (const uint8_t *)(s), sizeof(s) - 1

#define V2SIG "\r\n\r\n\0\r\nQUIT\n"
/* PROXY, TCP over IPv4: 192.0.2.1:56324 -> 198.51.100.7:443 */
#define V2_INET_ADDRS "\xc0\x00\x02\x01\xc6\x33\x64\x07\xdc\x04\x01\xbb"
/* PROXY, TCP over IPv6: 2001:db8::1:1234 -> 2001:db8::2:80 */
#define V2_INET6_ADDRS \
	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01" \
	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02" "\x04\xd2\x00\x50"

enum { NEED = PROXYPROTO_NEED_MORE, ERR = PROXYPROTO_ERROR, DONE = PROXYPROTO_DONE };
/* The rest of a case that yields no header. */
#define REFUSED ERR, 0, NULL, 0, NULL, 0
#define MORE NEED, 0, NULL, 0, NULL, 0

static const struct pp_case {
	const char *name;
	const uint8_t *in;
	size_t len;
	int status;
	size_t hdr_len;            /* DONE */
	const char *src;           /* DONE: NULL when the socket's addresses stand */
	unsigned sport;
	const char *dst;
	unsigned dport;
} cases[] = {
	/* v1 */
	{ "v1 tcp4", B("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"), DONE, 45,
	  "192.0.2.1", 56324, "198.51.100.7", 443 },
	{ "v1 tcp6", B("PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n"), DONE, 44,
	  "2001:db8::1", 1234, "2001:db8::2", 80 },
	{ "v1 tcp6 mapped", B("PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n"), DONE, 36,
	  "::ffff:10.0.0.1", 1, "::1", 2 },
	{ "v1 ports 0 and 65535", B("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n"), DONE, 36,
	  "1.2.3.4", 0, "5.6.7.8", 65535 },
	{ "v1 unknown", B("PROXY UNKNOWN\r\n"), DONE, 15, NULL, 0, NULL, 0 },
	{ "v1 unknown with addresses", B("PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n"),
	  DONE, 47, NULL, 0, NULL, 0 },
	{ "v1 longest (107 bytes)",
	  B("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	  DONE, 104, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535 },
	{ "v1 unknown, 107 bytes",
	  B("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxx\r\n"),
	  DONE, 107, NULL, 0, NULL, 0 },
	{ "v1 oversized (108 bytes)",
	  B("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxx\r\n"),
	  REFUSED },
	{ "v1 no CR in the first 106 bytes",
	  B("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxx"), REFUSED },
	{ "v1 truncated", B("PROXY TCP4 192.0.2.1 198.51"), MORE },
	{ "v1 signature only", B("PROXY "), MORE },
	{ "v1 partial signature", B("PRO"), MORE },
	{ "v1 CR awaiting LF", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), MORE },
	{ "v1 bare LF", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), REFUSED },
	{ "v1 CR without LF", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), REFUSED },
	{ "v1 lower case", B("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 two spaces", B("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 trailing space", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), REFUSED },
	{ "v1 tab", B("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 missing port", B("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), REFUSED },
	{ "v1 extra field", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), REFUSED },
	{ "v1 udp", B("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 unknownx", B("PROXY UNKNOWNX\r\n"), REFUSED },
	{ "v1 tcp4 with v6", B("PROXY TCP4 ::1 ::2 1 2\r\n"), REFUSED },
	{ "v1 tcp6 with v4", B("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 v4 leading zero", B("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 v4 octet 256", B("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 v4 three parts", B("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 v6 zone", B("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), REFUSED },
	{ "v1 host name", B("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 port 65536", B("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), REFUSED },
	{ "v1 port leading zero", B("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), REFUSED },
	{ "v1 port sign", B("PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n"), REFUSED },
	{ "v1 port hex", B("PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n"), REFUSED },
	{ "v1 port 6 digits", B("PROXY TCP4 1.2.3.4 5.6.7.8 000080 2\r\n"), REFUSED },
	{ "v1 NUL in line", B("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), REFUSED },
	{ "v1 high byte", B("PROXY UNKNOWN \xff\r\n"), REFUSED },
	/* not a header */
	{ "http request", B("GET / HTTP/1.1\r\n"), REFUSED },
	{ "tls client hello", B("\x16\x03\x01\x02\x00\x01"), REFUSED },
	{ "P but not PROXY", B("POST / HTTP/1.1\r\n"), REFUSED },
	{ "bad v2 signature", B("\r\n\r\n\0\r\nQUIZ\n\x21\x11\x00\x0c" V2_INET_ADDRS), REFUSED },
	{ "blank line", B("\r\n\r\n\r\n"), REFUSED },
	{ "empty", (const uint8_t *)"", 0, MORE },
	/* v2 */
	{ "v2 tcp4", B(V2SIG "\x21\x11\x00\x0c" V2_INET_ADDRS), DONE, 28,
	  "192.0.2.1", 56324, "198.51.100.7", 443 },
	{ "v2 tcp6", B(V2SIG "\x21\x21\x00\x24" V2_INET6_ADDRS), DONE, 52,
	  "2001:db8::1", 1234, "2001:db8::2", 80 },
	{ "v2 local", B(V2SIG "\x20\x00\x00\x00"), DONE, 16, NULL, 0, NULL, 0 },
	{ "v2 local with addresses ignored", B(V2SIG "\x20\x11\x00\x0c" V2_INET_ADDRS), DONE, 28,
	  NULL, 0, NULL, 0 },
	{ "v2 local with unknown family", B(V2SIG "\x20\xff\x00\x00"), DONE, 16, NULL, 0, NULL, 0 },
	{ "v2 proxy unspec", B(V2SIG "\x21\x00\x00\x00"), DONE, 16, NULL, 0, NULL, 0 },
	{ "v2 proxy unspec with bytes", B(V2SIG "\x21\x00\x00\x03xyz"), DONE, 19, NULL, 0, NULL, 0 },
	{ "v2 udp4", B(V2SIG "\x21\x12\x00\x0c" V2_INET_ADDRS), DONE, 28, NULL, 0, NULL, 0 },
	{ "v2 inet, unspec transport", B(V2SIG "\x21\x10\x00\x0c" V2_INET_ADDRS), DONE, 28,
	  NULL, 0, NULL, 0 },
	{ "v2 tcp4 with TLVs",
	  B(V2SIG "\x21\x11\x00\x21" V2_INET_ADDRS
	    "\x04\x00\x02\0\0"                  /* NOOP, 2 bytes */
	    "\xea\x00\x0a" "vpce-12345"          /* AWS, 10 bytes */
	    "\x05\x00\x00"),                     /* UNIQUE_ID, empty */
	  DONE, 49, "192.0.2.1", 56324, "198.51.100.7", 443 },
	{ "v2 TLV past the end", B(V2SIG "\x21\x11\x00\x10" V2_INET_ADDRS "\x04\x00\x02\0"), REFUSED },
	{ "v2 TLV cut in its head", B(V2SIG "\x21\x11\x00\x0e" V2_INET_ADDRS "\x04\x00"), REFUSED },
	{ "v2 address block too short", B(V2SIG "\x21\x11\x00\x08" "\xc0\x00\x02\x01\xc6\x33\x64\x07"),
	  REFUSED },
	{ "v2 inet6 block too short", B(V2SIG "\x21\x21\x00\x0c" V2_INET_ADDRS), REFUSED },
	{ "v2 unix too short", B(V2SIG "\x21\x31\x00\x0c" V2_INET_ADDRS), REFUSED },
	{ "v2 version 1", B(V2SIG "\x11\x11\x00\x0c" V2_INET_ADDRS), REFUSED },
	{ "v2 version 3", B(V2SIG "\x31\x11\x00\x0c" V2_INET_ADDRS), REFUSED },
	{ "v2 command 2", B(V2SIG "\x22\x11\x00\x0c" V2_INET_ADDRS), REFUSED },
	{ "v2 family 4", B(V2SIG "\x21\x41\x00\x0c" V2_INET_ADDRS), REFUSED },
	{ "v2 transport 3", B(V2SIG "\x21\x13\x00\x0c" V2_INET_ADDRS), REFUSED },
	{ "v2 oversized", B(V2SIG "\x21\x11\xff\xff" V2_INET_ADDRS), REFUSED },
	{ "v2 just over the bound", B(V2SIG "\x21\x11\x0f\xf1"), REFUSED },
	{ "v2 truncated fixed part", B(V2SIG "\x21\x11"), MORE },
	{ "v2 truncated signature", B("\r\n\r\n\0\r"), MORE },
	{ "v2 truncated addresses", B(V2SIG "\x21\x11\x00\x0c\xc0\x00\x02"), MORE },
	{ "v2 at the bound, truncated", B(V2SIG "\x21\x00\x0f\xf0"), MORE },
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t outlen,
		      unsigned *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)outlen);
		*port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, out, (socklen_t)outlen);
		*port = ntohs(sin6->sin6_port);
	} else {
		snprintf(out, outlen, "family %d", (int)ss->ss_family);
		*port = 0;
	}
}

/* Checks one parse of `in` against case `c`; names the case on failure. */
static void check(const struct pp_case *c, const uint8_t *in, size_t len)
{
	struct proxyproto_result res;
	enum proxyproto_status st = proxyproto_parse(in, len, &res);
	char text[INET6_ADDRSTRLEN];
	unsigned port;

	if ((int)st != c->status)
		fprintf(stderr, "case \"%s\" (%zu bytes): status %d, want %d (%s)\n", c->name, len,
			(int)st, c->status, res.why ? res.why : "-");
	CU_ASSERT_EQUAL((int)st, c->status);
	if (st == PROXYPROTO_ERROR)
		CU_ASSERT_PTR_NOT_NULL(res.why);
	if (st != PROXYPROTO_DONE || c->status != DONE)
		return;
	CU_ASSERT_EQUAL(res.len, c->hdr_len);
	if (res.len != c->hdr_len)
		fprintf(stderr, "case \"%s\": length %zu, want %zu\n", c->name, res.len, c->hdr_len);
	CU_ASSERT_EQUAL(res.has_addr, c->src != NULL);
	if (!res.has_addr || c->src == NULL)
		return;
	addr_text(&res.src, text, sizeof(text), &port);
	CU_ASSERT_STRING_EQUAL(text, c->src);
	CU_ASSERT_EQUAL(port, c->sport);
	addr_text(&res.dst, text, sizeof(text), &port);
	CU_ASSERT_STRING_EQUAL(text, c->dst);
	CU_ASSERT_EQUAL(port, c->dport);
}

static void test_table(void)
{
	for (size_t i = 0; i < N_CASES; i++)
		check(&cases[i], cases[i].in, cases[i].len);
}

/* A header that arrives in pieces: every proper prefix asks for more. */
static void test_prefixes(void)
{
	struct pp_case need = { .status = MORE };

	for (size_t i = 0; i < N_CASES; i++) {
		if (cases[i].status != DONE)
			continue;
		need.name = cases[i].name;
		for (size_t n = 0; n < cases[i].hdr_len; n++)
			check(&need, cases[i].in, n);
	}
}

/* What follows the header (a request, a ClientHello) is not its business. */
static void test_followed_by_data(void)
{
	static const char tail[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n\x16\x03\x01";
	uint8_t buf[PROXYPROTO_MAX + sizeof(tail)];

	for (size_t i = 0; i < N_CASES; i++) {
		if (cases[i].status != DONE)
			continue;
		memcpy(buf, cases[i].in, cases[i].len);
		memcpy(buf + cases[i].len, tail, sizeof(tail) - 1);
		check(&cases[i], buf, cases[i].len + sizeof(tail) - 1);
	}
}

/* The largest v2 header accepted: PROXYPROTO_MAX bytes, TLVs included;
 * one byte more is refused before it is buffered. */
static void test_v2_bound(void)
{
	static uint8_t buf[PROXYPROTO_MAX + 1];
	struct proxyproto_result res;
	size_t tlv = PROXYPROTO_MAX - 16 - 12 - 3;

	memcpy(buf, V2SIG "\x21\x11", 14);
	buf[14] = (PROXYPROTO_MAX - 16) >> 8;
	buf[15] = (PROXYPROTO_MAX - 16) & 0xff;
	memcpy(buf + 16, V2_INET_ADDRS, 12);
	buf[28] = 0x04;   /* NOOP */
	buf[29] = (uint8_t)(tlv >> 8);
	buf[30] = (uint8_t)(tlv & 0xff);
	CU_ASSERT_EQUAL(proxyproto_parse(buf, PROXYPROTO_MAX, &res), PROXYPROTO_DONE);
	CU_ASSERT_EQUAL(res.len, PROXYPROTO_MAX);
	CU_ASSERT_TRUE(res.has_addr);
	CU_ASSERT_EQUAL(proxyproto_parse(buf, PROXYPROTO_MAX - 1, &res), PROXYPROTO_NEED_MORE);
	buf[15]++;
	buf[30]++;
	CU_ASSERT_EQUAL(proxyproto_parse(buf, PROXYPROTO_MAX + 1, &res), PROXYPROTO_ERROR);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("proxyproto", NULL, NULL);

	UNIT_TEST(s, test_table);
	UNIT_TEST(s, test_prefixes);
	UNIT_TEST(s, test_followed_by_data);
	UNIT_TEST(s, test_v2_bound);
}
