/*
 * Validation of HTTP/2 request heads before they are rebuilt as HTTP/1.1
 * (see h2-check.h for the list and the reason). Nothing here allocates or
 * keeps state: the verdict depends on the fields alone.
 */
#include <config.h>

#include <string.h>
#include <strings.h>

#include "node/h2-check.h"

/* RFC 9110 token characters, lower case only (RFC 9113 §8.2.1). */
static bool name_char(unsigned char ch)
{
	if (ch >= 'a' && ch <= 'z')
		return true;
	if (ch >= '0' && ch <= '9')
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool lit_eq(const char *a, size_t alen, const char *lit)
{
	size_t n = strlen(lit);

	return alen == n && memcmp(a, lit, n) == 0;
}

bool h2_check_conn_specific(const char *name, size_t nlen)
{
	return lit_eq(name, nlen, "connection") || lit_eq(name, nlen, "keep-alive") ||
	       lit_eq(name, nlen, "proxy-connection") || lit_eq(name, nlen, "transfer-encoding") ||
	       lit_eq(name, nlen, "upgrade");
}

/* A value HTTP/1.1 reads the way HTTP/2 carried it: no control byte (a
 * tab inside aside), no DEL, no white space at either end. */
static bool value_ok(const char *v, size_t len)
{
	size_t i;

	if (len > 0 && (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' ' || v[len - 1] == '\t'))
		return false;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	return true;
}

/* Bytes of a request target or an authority: visible ASCII only. */
static bool visible(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool digits(const char *s, size_t len, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0 || len > 19)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*out = n;
	return true;
}

/* An authority is host[:port]: no userinfo, no path, nothing invisible. */
static bool authority_ok(const char *a, size_t len)
{
	return len > 0 && visible(a, len) && memchr(a, '@', len) == NULL &&
	       memchr(a, '/', len) == NULL && memchr(a, '?', len) == NULL &&
	       memchr(a, '#', len) == NULL;
}

enum pseudo { PS_METHOD, PS_SCHEME, PS_AUTHORITY, PS_PATH, PS_PROTOCOL, PS_N };

static int pseudo_of(const char *name, size_t nlen)
{
	static const char *const names[PS_N] = {":method", ":scheme", ":authority", ":path",
						":protocol"};
	int i;

	for (i = 0; i < PS_N; i++)
		if (lit_eq(name, nlen, names[i]))
			return i;
	return -1;
}

static int bad(const char **why, const char *reason)
{
	*why = reason;
	return H2_CHECK_BAD;
}

/* One pseudo-header: stored in *v, once. */
static int take_pseudo(const struct h2_field *fd, unsigned *seen, struct h2_request_view *v,
		       const char **why)
{
	int ps = pseudo_of(fd->name, fd->nlen);

	if (ps < 0)
		return bad(why, "unknown pseudo-header");
	if (*seen & (1u << ps))
		return bad(why, "repeated pseudo-header");
	*seen |= 1u << ps;
	switch (ps) {
	case PS_METHOD:
		v->method = fd->value;
		v->method_len = fd->vlen;
		break;
	case PS_SCHEME:
		v->scheme = fd->value;
		v->scheme_len = fd->vlen;
		break;
	case PS_AUTHORITY:
		v->authority = fd->value;
		v->authority_len = fd->vlen;
		break;
	case PS_PATH:
		v->path = fd->value;
		v->path_len = fd->vlen;
		break;
	default:
		v->protocol = fd->value;
		v->protocol_len = fd->vlen;
		break;
	}
	return H2_CHECK_OK;
}

/* One regular field. */
static int take_regular(const struct h2_field *fd, unsigned *n_host, struct h2_request_view *v,
			const char **why)
{
	size_t k;

	for (k = 0; k < fd->nlen; k++)
		if (!name_char((unsigned char)fd->name[k]))
			return bad(why, fd->name[k] >= 'A' && fd->name[k] <= 'Z'
						? "upper-case header name"
						: "invalid byte in header name");
	if (h2_check_conn_specific(fd->name, fd->nlen))
		return bad(why, "connection-specific header");
	if (lit_eq(fd->name, fd->nlen, "te") && !lit_eq(fd->value, fd->vlen, "trailers"))
		return bad(why, "TE other than trailers");
	if (lit_eq(fd->name, fd->nlen, "content-length")) {
		uint64_t cl;

		if (!digits(fd->value, fd->vlen, &cl))
			return bad(why, "malformed content-length");
		if (v->has_content_length && cl != v->content_length)
			return bad(why, "conflicting content-length");
		v->has_content_length = true;
		v->content_length = cl;
	} else if (lit_eq(fd->name, fd->nlen, "host")) {
		if (++*n_host > 1)
			return bad(why, "repeated host");
		if (!authority_ok(fd->value, fd->vlen))
			return bad(why, "invalid host");
		v->host = fd->value;
		v->host_len = fd->vlen;
	}
	return H2_CHECK_OK;
}

int h2_check_request(const struct h2_field *f, size_t n, struct h2_request_view *v,
		     const char **why)
{
	unsigned seen = 0, n_host = 0;
	bool regular = false;
	size_t i;
	int st;

	memset(v, 0, sizeof(*v));
	v->first_regular = n;
	for (i = 0; i < n; i++) {
		const struct h2_field *fd = &f[i];

		if (fd->nlen == 0)
			return bad(why, "empty header name");
		if (!value_ok(fd->value, fd->vlen))
			return bad(why, "invalid byte or white space in header value");
		if (fd->name[0] == ':') {
			if (regular)
				return bad(why, "pseudo-header after a regular header");
			st = take_pseudo(fd, &seen, v, why);
		} else {
			if (!regular)
				v->first_regular = i;
			regular = true;
			st = take_regular(fd, &n_host, v, why);
		}
		if (st != H2_CHECK_OK)
			return st;
	}
	if (!(seen & (1u << PS_METHOD)) || v->method_len == 0)
		return bad(why, "missing :method");
	for (i = 0; i < v->method_len; i++)
		if (!name_char((unsigned char)v->method[i]) &&
		    !(v->method[i] >= 'A' && v->method[i] <= 'Z'))
			return bad(why, "invalid :method");
	if (lit_eq(v->method, v->method_len, "CONNECT")) {
		if (!(seen & (1u << PS_PROTOCOL))) {
			*why = "CONNECT is not proxied";
			return H2_CHECK_METHOD;
		}
		/* RFC 8441 §4: an extended CONNECT has all four. */
		v->connect = true;
		if (v->protocol_len == 0 || !visible(v->protocol, v->protocol_len))
			return bad(why, "invalid :protocol");
	} else if (seen & (1u << PS_PROTOCOL)) {
		return bad(why, ":protocol without CONNECT");
	}
	if (!(seen & (1u << PS_SCHEME)) || !(seen & (1u << PS_PATH)))
		return bad(why, "missing :scheme or :path");
	if (!lit_eq(v->scheme, v->scheme_len, "http") && !lit_eq(v->scheme, v->scheme_len, "https"))
		return bad(why, "unsupported :scheme");
	if (v->path_len == 0 || !visible(v->path, v->path_len))
		return bad(why, "invalid :path");
	if (v->path[0] != '/' &&
	    !(v->path_len == 1 && v->path[0] == '*' && lit_eq(v->method, v->method_len, "OPTIONS")))
		return bad(why, ":path is not origin-form");
	if (seen & (1u << PS_AUTHORITY)) {
		if (!authority_ok(v->authority, v->authority_len))
			return bad(why, "invalid :authority");
		/* RFC 9113 §8.3.1: a host that differs means two readings. */
		if (v->host != NULL && (v->host_len != v->authority_len ||
					strncasecmp(v->host, v->authority, v->host_len) != 0))
			return bad(why, ":authority and host differ");
		v->host = v->authority;
		v->host_len = v->authority_len;
	} else if (v->connect) {
		return bad(why, "extended CONNECT without :authority");
	}
	if (v->host == NULL)
		return bad(why, "missing :authority and host");
	return H2_CHECK_OK;
}
