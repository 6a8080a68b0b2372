/*
 * The PROXY protocol parser (see proxyproto.h). It reads only the bytes
 * it is given and keeps no state between calls: a caller that receives a
 * header in pieces parses the whole prefix again, which costs nothing at
 * these sizes and leaves no partial state to get wrong.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "node/proxyproto.h"

static const uint8_t v1_sig[] = "PROXY ";
#define V1_SIG_LEN 6
static const uint8_t v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
#define V2_FIXED 16

/* v2: the command (low nibble of byte 12), family and transport (byte 13). */
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_FAM_UNSPEC 0x0
#define V2_FAM_INET 0x1
#define V2_FAM_INET6 0x2
#define V2_FAM_UNIX 0x3
#define V2_PROTO_STREAM 0x1
#define V2_PROTO_DGRAM 0x2
#define V2_INET_LEN 12          /* two IPv4 addresses, two ports */
#define V2_INET6_LEN 36
#define V2_UNIX_LEN 216         /* two 108-byte paths */

static enum proxyproto_status fail(struct proxyproto_result *res, const char *why)
{
	res->why = why;
	return PROXYPROTO_ERROR;
}

/* A decimal port: "0", or 1-5 digits without a leading zero, <= 65535. */
static bool v1_port(const char *s, size_t n, uint16_t *port)
{
	uint32_t v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* An address of `family` in its textual form. inet_pton is strict for
 * IPv4 (four decimal parts, no leading zeros); the character set is
 * checked first so that nothing else (a zone index, spaces) gets through. */
static bool v1_addr(int family, const char *s, size_t n, void *out)
{
	const char *allowed = family == AF_INET ? "0123456789." : "0123456789abcdefABCDEF:.";
	char text[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(text) || (family == AF_INET && n > 15))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(allowed, s[i]) == NULL)
			return false;
	memcpy(text, s, n);
	text[n] = '\0';
	return inet_pton(family, text, out) == 1;
}

static void set_sockaddr(struct sockaddr_storage *ss, int family, const void *addr, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, 4);
		sin->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, 16);
		sin6->sin6_port = htons(port);
	}
}

/*
 * "PROXY TCP4 1.2.3.4 5.6.7.8 1234 80\r\n", "PROXY TCP6 ...", or
 * "PROXY UNKNOWN[ anything]\r\n". `line` is what lies between "PROXY "
 * and the CRLF.
 */
static enum proxyproto_status v1_line(const char *line, size_t n, struct proxyproto_result *res)
{
	const char *tok[5];
	size_t toklen[5], ntok = 0, start = 0;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	int family;

	if (n >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (n == 7 || line[7] == ' '))
		return PROXYPROTO_DONE;   /* the rest is to be ignored */
	if (n < 5 || (memcmp(line, "TCP4 ", 5) != 0 && memcmp(line, "TCP6 ", 5) != 0))
		return fail(res, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	family = line[3] == '4' ? AF_INET : AF_INET6;
	/* Exactly five fields split by single spaces: an empty field means
	 * a doubled, leading or trailing space. */
	for (size_t i = 0; i <= n; i++) {
		if (i < n && line[i] != ' ')
			continue;
		if (ntok == 5)
			return fail(res, "v1: too many fields");
		tok[ntok] = line + start;
		toklen[ntok] = i - start;
		if (toklen[ntok] == 0)
			return fail(res, "v1: empty field");
		ntok++;
		start = i + 1;
	}
	if (ntok != 5)
		return fail(res, "v1: too few fields");
	if (!v1_addr(family, tok[1], toklen[1], src) || !v1_addr(family, tok[2], toklen[2], dst))
		return fail(res, "v1: bad address");
	if (!v1_port(tok[3], toklen[3], &sport) || !v1_port(tok[4], toklen[4], &dport))
		return fail(res, "v1: bad port");
	set_sockaddr(&res->src, family, src, sport);
	set_sockaddr(&res->dst, family, dst, dport);
	res->has_addr = true;
	return PROXYPROTO_DONE;
}

static enum proxyproto_status parse_v1(const uint8_t *buf, size_t len,
				       struct proxyproto_result *res)
{
	/* The CR of a 107-byte line is its 106th byte (index 105). */
	size_t scan = len < PROXYPROTO_V1_MAX - 1 ? len : PROXYPROTO_V1_MAX - 1;
	enum proxyproto_status st;

	res->version = 1;
	for (size_t i = V1_SIG_LEN; i < scan; i++) {
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return PROXYPROTO_NEED_MORE;
			if (buf[i + 1] != '\n')
				return fail(res, "v1: CR not followed by LF");
			st = v1_line((const char *)buf + V1_SIG_LEN, i - V1_SIG_LEN, res);
			if (st == PROXYPROTO_DONE)
				res->len = i + 2;
			return st;
		}
		/* Printable ASCII only: a control byte or a bare LF cannot
		 * be part of a line that ends in CRLF. */
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return fail(res, "v1: control or non-ASCII byte");
	}
	if (len >= PROXYPROTO_V1_MAX - 1)
		return fail(res, "v1: no CRLF within 107 bytes");
	return PROXYPROTO_NEED_MORE;
}

/* TLVs: type (1 byte), length (2, big-endian), value; each must fit. */
static bool v2_tlvs_ok(const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t vlen;

		if (n < 3)
			return false;
		vlen = (size_t)p[1] << 8 | p[2];
		if (vlen > n - 3)
			return false;
		p += 3 + vlen;
		n -= 3 + vlen;
	}
	return true;
}

static enum proxyproto_status parse_v2(const uint8_t *buf, size_t len,
				       struct proxyproto_result *res)
{
	size_t total, alen = 0;
	unsigned cmd, fam, proto;
	const uint8_t *a = buf + V2_FIXED;

	res->version = 2;
	if (len < V2_FIXED)
		return PROXYPROTO_NEED_MORE;
	if (buf[12] >> 4 != 2)
		return fail(res, "v2: unknown version");
	cmd = buf[12] & 0x0f;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return fail(res, "v2: unknown command");
	fam = buf[13] >> 4;
	proto = buf[13] & 0x0f;
	total = V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
	if (total > PROXYPROTO_MAX)
		return fail(res, "v2: header longer than we accept");
	if (len < total)
		return PROXYPROTO_NEED_MORE;
	res->len = total;
	/* LOCAL: the balancer's own connection (a health check); the
	 * protocol block, family included, is to be ignored. */
	if (cmd == V2_CMD_LOCAL)
		return PROXYPROTO_DONE;
	if (fam > V2_FAM_UNIX || proto > V2_PROTO_DGRAM)
		return fail(res, "v2: unknown address family or transport");
	if (fam == V2_FAM_UNSPEC)
		return PROXYPROTO_DONE;   /* nothing said: the socket's addresses */
	alen = fam == V2_FAM_INET ? V2_INET_LEN : fam == V2_FAM_INET6 ? V2_INET6_LEN : V2_UNIX_LEN;
	if (total - V2_FIXED < alen)
		return fail(res, "v2: address block shorter than its family needs");
	if (!v2_tlvs_ok(a + alen, total - V2_FIXED - alen))
		return fail(res, "v2: malformed TLV");
	if (proto != V2_PROTO_STREAM || fam == V2_FAM_UNIX)
		return PROXYPROTO_DONE;   /* not TCP over IP: the socket's addresses */
	if (fam == V2_FAM_INET) {
		set_sockaddr(&res->src, AF_INET, a, (uint16_t)(a[8] << 8 | a[9]));
		set_sockaddr(&res->dst, AF_INET, a + 4, (uint16_t)(a[10] << 8 | a[11]));
	} else {
		set_sockaddr(&res->src, AF_INET6, a, (uint16_t)(a[32] << 8 | a[33]));
		set_sockaddr(&res->dst, AF_INET6, a + 16, (uint16_t)(a[34] << 8 | a[35]));
	}
	res->has_addr = true;
	return PROXYPROTO_DONE;
}

enum proxyproto_status proxyproto_parse(const uint8_t *buf, size_t len,
					struct proxyproto_result *res)
{
	size_t n;

	memset(res, 0, sizeof(*res));
	if (len == 0)
		return PROXYPROTO_NEED_MORE;
	/* The first bytes decide the version; each prefix is checked as it
	 * arrives, so an HTTP request or a ClientHello fails at once. */
	if (buf[0] == v1_sig[0]) {
		n = len < V1_SIG_LEN ? len : V1_SIG_LEN;
		if (memcmp(buf, v1_sig, n) != 0)
			return fail(res, "no PROXY header");
		return len <= V1_SIG_LEN ? PROXYPROTO_NEED_MORE : parse_v1(buf, len, res);
	}
	n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	if (memcmp(buf, v2_sig, n) != 0)
		return fail(res, "no PROXY header");
	if (len < sizeof(v2_sig))
		return PROXYPROTO_NEED_MORE;
	return parse_v2(buf, len, res);
}
