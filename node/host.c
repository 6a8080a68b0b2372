/*
 * Host normalisation for routing (see host.h). This runs once per request
 * on bytes a client chose, so it is a single bounded pass with no
 * allocation, and it refuses rather than guesses: a Host that is not a
 * DNS name or an IP literal never reaches the routing table.
 */
#include <config.h>

#include <arpa/inet.h>
#include <string.h>

#include "node/host.h"

static bool fail(char *out, size_t outsz)
{
	if (outsz > 0)
		out[0] = '\0';
	return false;
}

/* ":digits" with a value of at most 65535, or nothing after the colon. */
static bool valid_port(const char *p, size_t len)
{
	unsigned long v = 0;
	if (len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return v <= 65535;
}

static bool ipv6_literal(const char *in, size_t len, char *out, size_t outsz, size_t *outlen)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;
	const char *close = memchr(in, ']', len);
	size_t alen;

	if (close == NULL)
		return fail(out, outsz);
	alen = (size_t)(close - (in + 1));
	if (alen == 0 || alen >= sizeof(buf))
		return fail(out, outsz);
	/* After ']' only ":port" may follow. */
	size_t rest = len - (size_t)(close + 1 - in);
	if (rest > 0 && (close[1] != ':' || !valid_port(close + 2, rest - 1)))
		return fail(out, outsz);
	memcpy(buf, in + 1, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET6, buf, &a) != 1 || inet_ntop(AF_INET6, &a, buf, sizeof(buf)) == NULL)
		return fail(out, outsz);
	alen = strlen(buf);
	if (alen + 1 > outsz)
		return fail(out, outsz);
	memcpy(out, buf, alen + 1);
	*outlen = alen;
	return true;
}

bool host_normalize(const char *in, size_t len, char *out, size_t outsz, size_t *outlen)
{
	size_t n = 0, label = 0;
	bool all_numeric = true;

	*outlen = 0;
	if (in == NULL || len == 0)
		return fail(out, outsz);
	if (in[0] == '[')
		return ipv6_literal(in, len, out, outsz, outlen);

	const char *colon = memchr(in, ':', len);
	if (colon != NULL) {
		if (!valid_port(colon + 1, len - (size_t)(colon + 1 - in)))
			return fail(out, outsz);
		len = (size_t)(colon - in);
	}
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > HOST_MAX || len + 1 > outsz)
		return fail(out, outsz);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return fail(out, outsz);  /* empty label: ".a", "a..b" */
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > 63)
				return fail(out, outsz);
			if (c < '0' || c > '9')
				all_numeric = false;
		} else {
			return fail(out, outsz);
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (label == 0)
		return fail(out, outsz);          /* "a.." lost one dot and still ends in one */
	if (all_numeric) {
		/* Digits and dots only: it must be a real IPv4 address, not
		 * "300.1.1.1" or "1.2.3", which no DNS name can be either. */
		struct in_addr a;
		if (inet_pton(AF_INET, out, &a) != 1)
			return fail(out, outsz);
	}
	*outlen = n;
	return true;
}
