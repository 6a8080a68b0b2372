/*
 * Parsing and validating HTTP/1.x heads (see http.h).
 *
 * llhttp runs in strict mode (built with LLHTTP_STRICT_MODE, every
 * lenient flag off) over a complete head held in one piece. Its
 * callbacks only record where things are; the rules llhttp does not
 * enforce (or that we want to hold whatever llhttp's version) are checked
 * afterwards in one place, validate(), over the recorded headers: exactly
 * one Host, no Content-Length with Transfer-Encoding, a single well-formed
 * Content-Length, Transfer-Encoding exactly "chunked", no obs-fold, no bare
 * CR or LF, nothing but tokens in names and visible bytes in values.
 */
#include <config.h>

#include <string.h>

#include <event2/buffer.h>

#include "node/http.h"

struct pctx {
	struct http_head *h;
	const struct http_limits *lim;
	struct http_chunk_state *cs;   /* body decoding only */
	struct evbuffer *body_out;
	enum http_result err;
	const char *why;
	bool field_open;
	bool headers_done;
	bool message_done;
	bool skip_body;            /* response to HEAD */
	bool body_error;
};

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct pctx *c = p->data;

	if (c->h == NULL)
		return 0;
	if (c->h->target == NULL)
		c->h->target = at;
	c->h->target_len += len;
	if (c->h->target_len > c->lim->max_target_bytes) {
		c->err = HTTP_TARGET_TOO_LONG;
		c->why = "request target too long";
		return -1;
	}
	return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
	struct pctx *c = p->data;

	if (c->h == NULL)
		return 0;
	if (c->h->reason == NULL)
		c->h->reason = at;
	c->h->reason_len += len;
	return 0;
}

/* Trailers are read through and dropped (or kept, see struct
 * http_chunk_state), within the head's limits. */
static int trailer_keep(struct pctx *c, const char *at, size_t len)
{
	if (c->cs == NULL || c->cs->keep_trailers == NULL ||
	    evbuffer_add(c->cs->keep_trailers, at, len) == 0)
		return 0;
	c->body_error = true;
	return -1;
}

static int trailer_bytes(struct pctx *c, size_t len)
{
	if (c->cs == NULL)
		return 0;
	c->cs->trailer_bytes += (uint32_t)(len < UINT32_MAX / 2 ? len : UINT32_MAX / 2);
	if (c->cs->trailer_bytes > c->lim->max_head_bytes) {
		c->why = "trailers larger than the head limit";
		return -1;
	}
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct pctx *c = p->data;
	struct http_hdr *hd;

	if (c->headers_done)   /* called once per piece of a split name */
		return trailer_bytes(c, len) != 0 ? -1 : trailer_keep(c, at, len);
	if (c->h == NULL)
		return 0;
	if (!c->field_open) {
		if (c->h->n_hdrs >= c->h->max_hdrs) {
			c->err = HTTP_TOO_MANY_HEADERS;
			c->why = "too many header fields";
			return -1;
		}
		hd = &c->h->hdrs[c->h->n_hdrs++];
		hd->name = at;
		hd->nlen = 0;
		hd->value = NULL;
		hd->vlen = 0;
		hd->kind = HDR_OTHER;
		c->field_open = true;
	}
	c->h->hdrs[c->h->n_hdrs - 1].nlen += (uint32_t)len;
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct pctx *c = p->data;

	c->field_open = false;
	if (c->headers_done && c->cs != NULL && ++c->cs->trailers > c->lim->max_headers) {
		c->why = "too many trailer fields";
		return -1;
	}
	if (c->headers_done)   /* ": " and CRLF, once per field */
		return trailer_bytes(c, 4) != 0 ? -1 : trailer_keep(c, ":", 1);
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct pctx *c = p->data;

	return c->headers_done ? trailer_keep(c, "\n", 1) : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct pctx *c = p->data;
	struct http_hdr *hd;

	if (c->headers_done)
		return trailer_bytes(c, len) != 0 ? -1 : trailer_keep(c, at, len);
	if (c->h == NULL || c->h->n_hdrs == 0)
		return 0;
	hd = &c->h->hdrs[c->h->n_hdrs - 1];
	if (hd->value == NULL)
		hd->value = at;
	hd->vlen += (uint32_t)len;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct pctx *c = p->data;

	c->headers_done = true;
	if (c->skip_body)
		return 1;
	return 0;
}

/* Extensions are read through and dropped (we re-frame every chunk), but
 * only so far: a line of megabytes is no chunk size. */
static int on_chunk_extension(llhttp_t *p, const char *at, size_t len)
{
	struct pctx *c = p->data;

	(void)at;
	if (c->cs == NULL)
		return 0;
	c->cs->ext_bytes += (uint32_t)(len <= HTTP_CHUNK_EXT_MAX ? len : HTTP_CHUNK_EXT_MAX + 1);
	if (c->cs->ext_bytes > HTTP_CHUNK_EXT_MAX) {
		c->why = "chunk extension too long";
		return -1;
	}
	return 0;
}

/* A chunk-size line ended: the next one starts its extension count
 * afresh, and after the last chunk the trailers are counted from zero. */
static int on_chunk_header(llhttp_t *p)
{
	struct pctx *c = p->data;

	if (c->cs != NULL)
		c->cs->ext_bytes = c->cs->trailers = c->cs->trailer_bytes = 0;
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct pctx *c = p->data;

	if (c->body_out && evbuffer_add(c->body_out, at, len) != 0) {
		c->body_error = true;
		return -1;
	}
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct pctx *c = p->data;

	c->message_done = true;
	/* Stop right after the message: what follows belongs to the next one. */
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
	.on_url = on_url,
	.on_status = on_status,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_chunk_extension_name = on_chunk_extension,
	.on_chunk_extension_value = on_chunk_extension,
	.on_chunk_header = on_chunk_header,
};

size_t http_head_end(const char *buf, size_t len)
{
	const char *e = memmem(buf, len, "\r\n\r\n", 4);

	return e ? (size_t)(e - buf) + 4 : 0;
}

/* RFC 9110 tchar. */
static const unsigned char tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
	['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,
	['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
	['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool ieq(const char *a, size_t alen, const char *lit)
{
	size_t n = strlen(lit);

	return alen == n && strncasecmp(a, lit, n) == 0;
}

bool http_name_is(const struct http_hdr *hd, const char *name)
{
	return ieq(hd->name, hd->nlen, name);
}

int http_find(const struct http_head *h, const char *name)
{
	unsigned i;

	for (i = 0; i < h->n_hdrs; i++)
		if (http_name_is(&h->hdrs[i], name))
			return (int)i;
	return -1;
}

static enum http_hdr_kind classify(const struct http_hdr *hd);

enum http_hdr_kind http_classify_name(const char *name, size_t nlen)
{
	struct http_hdr hd;

	hd.name = name;
	hd.nlen = (uint32_t)nlen;
	return classify(&hd);
}

static enum http_hdr_kind classify(const struct http_hdr *hd)
{
#define KNOWN(lit, kind) {lit, sizeof(lit) - 1, kind}
	static const struct {
		const char *name;
		size_t len;
		enum http_hdr_kind kind;
	} known[] = {
		KNOWN("host", HDR_HOST),
		KNOWN("content-length", HDR_CONTENT_LENGTH),
		KNOWN("transfer-encoding", HDR_TRANSFER_ENCODING),
		KNOWN("connection", HDR_CONNECTION),
		KNOWN("keep-alive", HDR_KEEP_ALIVE),
		KNOWN("proxy-connection", HDR_PROXY_CONNECTION),
		KNOWN("te", HDR_TE),
		KNOWN("trailer", HDR_TRAILER),
		KNOWN("upgrade", HDR_UPGRADE),
		KNOWN("expect", HDR_EXPECT),
		KNOWN("x-forwarded-for", HDR_X_FORWARDED_FOR),
		KNOWN("x-forwarded-proto", HDR_X_FORWARDED_PROTO),
		KNOWN("x-forwarded-host", HDR_X_FORWARDED_HOST),
		KNOWN("x-forwarded-port", HDR_X_FORWARDED_PORT),
		KNOWN("x-request-id", HDR_X_REQUEST_ID),
		KNOWN("cookie", HDR_COOKIE),
		KNOWN("http2-settings", HDR_HTTP2_SETTINGS),
	};
#undef KNOWN
	size_t i;

	/* Lengths first: most names match none, and are told so without
	 * a case-insensitive comparison. */
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (hd->nlen == known[i].len && strncasecmp(hd->name, known[i].name, known[i].len) == 0)
			return known[i].kind;
	return HDR_OTHER;
}

/* Line structure of the raw bytes: every LF preceded by CR, every CR
 * followed by LF, no NUL, and no line after the first beginning with
 * whitespace (obs-fold), which llhttp versions treat differently. */
static bool scan_lines(const char *buf, size_t len, const char **why)
{
	const char *end = buf + len, *p;

	if (memchr(buf, '\0', len) != NULL) {
		*why = "NUL byte in head";
		return false;
	}
	for (p = buf; (p = memchr(p, '\r', (size_t)(end - p))) != NULL; p++) {
		if (p + 1 < end && p[1] != '\n') {
			*why = "bare CR in head";
			return false;
		}
	}
	for (p = buf; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
		if (p == buf || p[-1] != '\r') {
			*why = "bare LF in head";
			return false;
		}
		if (p + 1 < end && (p[1] == ' ' || p[1] == '\t')) {
			*why = "obs-fold (line folding) in head";
			return false;
		}
	}
	return true;
}

/* Comma-separated tokens of a Connection value: the flags, and the other
 * headers it names become hop-by-hop. */
bool http_next_token(const char **p, const char *end, const char **t, size_t *n)
{
	const char *s = *p, *te;

	for (;;) {
		while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
			s++;
		if (s == end) {
			*p = s;
			return false;
		}
		*t = s;
		while (s < end && *s != ',')
			s++;
		te = s;
		while (te > *t && (te[-1] == ' ' || te[-1] == '\t'))
			te--;
		if (te > *t) {
			*n = (size_t)(te - *t);
			*p = s;
			return true;
		}
	}
}

static void connection_tokens(struct http_head *h, const struct http_hdr *hd)
{
	const char *p = hd->value, *end = hd->value + hd->vlen, *t;
	size_t n;

	while (http_next_token(&p, end, &t, &n)) {
		const char *te = t + n;
		unsigned i;

		if (ieq(t, (size_t)(te - t), "close"))
			h->conn_close = true;
		else if (ieq(t, (size_t)(te - t), "keep-alive"))
			h->conn_keep_alive = true;
		else if (ieq(t, (size_t)(te - t), "upgrade"))
			h->conn_upgrade = true;
		for (i = 0; i < h->n_hdrs; i++)
			if (h->hdrs[i].kind == HDR_OTHER && h->hdrs[i].nlen == (size_t)(te - t) &&
			    strncasecmp(h->hdrs[i].name, t, (size_t)(te - t)) == 0)
				h->hdrs[i].kind = HDR_CONNECTION_LISTED;
	}
}

static bool parse_content_length(const char *v, size_t len, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0 || len > 18)
		return false;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n;
	return true;
}

/* The checks on the recorded headers, shared by requests and responses. */
static enum http_result validate_headers(struct http_head *h, bool request, const char **why)
{
	unsigned i, n_cl = 0, n_te = 0, n_host = 0;
	bool has_upgrade_hdr = false;

	for (i = 0; i < h->n_hdrs; i++) {
		struct http_hdr *hd = &h->hdrs[i];
		uint32_t k;

		if (hd->nlen == 0) {
			*why = "empty header name";
			return HTTP_BAD;
		}
		for (k = 0; k < hd->nlen; k++) {
			if (!tchar[(unsigned char)hd->name[k]]) {
				*why = "invalid byte in header name";
				return HTTP_BAD;
			}
		}
		if (hd->value == NULL)
			hd->value = hd->name + hd->nlen;   /* empty value */
		while (hd->vlen && (hd->value[hd->vlen - 1] == ' ' || hd->value[hd->vlen - 1] == '\t'))
			hd->vlen--;
		while (hd->vlen && (hd->value[0] == ' ' || hd->value[0] == '\t')) {
			hd->value++;
			hd->vlen--;
		}
		for (k = 0; k < hd->vlen; k++) {
			unsigned char ch = (unsigned char)hd->value[k];

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
				*why = "invalid byte in header value";
				return HTTP_BAD;
			}
		}
		hd->kind = classify(hd);
		switch (hd->kind) {
		case HDR_HOST:
			n_host++;
			h->host_idx = (int)i;
			break;
		case HDR_CONTENT_LENGTH:
			if (++n_cl > 1) {
				*why = "repeated Content-Length";
				return HTTP_BAD;
			}
			if (!parse_content_length(hd->value, hd->vlen, &h->content_length)) {
				*why = "malformed Content-Length";
				return HTTP_BAD;
			}
			h->has_content_length = true;
			break;
		case HDR_TRANSFER_ENCODING:
			if (++n_te > 1) {
				*why = "repeated Transfer-Encoding";
				return HTTP_BAD;
			}
			/* Anything but exactly "chunked" would need codings we
			 * neither apply nor can re-frame faithfully. */
			if (!ieq(hd->value, hd->vlen, "chunked")) {
				*why = "Transfer-Encoding other than chunked";
				return HTTP_BAD;
			}
			h->chunked = true;
			break;
		case HDR_UPGRADE:
			has_upgrade_hdr = true;
			break;
		case HDR_EXPECT:
			if (ieq(hd->value, hd->vlen, "100-continue"))
				h->expect_continue = true;
			break;
		default:
			break;
		}
	}
	if (n_cl && n_te) {
		*why = "Content-Length together with Transfer-Encoding";
		return HTTP_BAD;
	}
	if (request && n_host > 1) {
		*why = "repeated Host";
		return HTTP_BAD;
	}
	if (request && n_host == 0 && h->minor >= 1) {
		*why = "missing Host";
		return HTTP_BAD;
	}
	for (i = 0; i < h->n_hdrs; i++)
		if (h->hdrs[i].kind == HDR_CONNECTION)
			connection_tokens(h, &h->hdrs[i]);
	h->upgrade = has_upgrade_hdr && h->conn_upgrade;
	return HTTP_OK;
}

/* Splits the target into authority and path, and checks its bytes. */
static enum http_result validate_target(struct http_head *h, const char **why)
{
	const char *t = h->target;
	size_t len = h->target_len, i, skip = 0;

	if (t == NULL || len == 0) {
		*why = "empty request target";
		return HTTP_BAD;
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)t[i];

		if (ch <= 0x20 || ch >= 0x7f) {
			*why = "invalid byte in request target";
			return HTTP_BAD;
		}
	}
	if (t[0] == '/') {
		h->path = t;
		h->path_len = len;
		return HTTP_OK;
	}
	if (len == 1 && t[0] == '*' && h->method == HTTP_OPTIONS) {
		h->path = t;
		h->path_len = 1;
		return HTTP_OK;
	}
	if (len > 7 && strncasecmp(t, "http://", 7) == 0)
		skip = 7;
	else if (len > 8 && strncasecmp(t, "https://", 8) == 0)
		skip = 8;
	if (skip == 0) {
		*why = "request target is not origin- or absolute-form";
		return HTTP_BAD;
	}
	h->authority = t + skip;
	for (i = skip; i < len && t[i] != '/' && t[i] != '?' && t[i] != '#'; i++) {
		if (t[i] == '@') {
			*why = "userinfo in request target";
			return HTTP_BAD;
		}
	}
	h->authority_len = i - skip;
	if (h->authority_len == 0) {
		*why = "empty authority in request target";
		return HTTP_BAD;
	}
	if (i < len && t[i] == '/') {
		h->path = t + i;
		h->path_len = len - i;
	} else {
		/* "http://host?x" is "/?x" in origin form; the caller writes
		 * the "/" when path does not start with one. */
		h->path = t + i;
		h->path_len = len - i;
	}
	return HTTP_OK;
}

static void head_reset(struct http_head *h)
{
	struct http_hdr *hdrs = h->hdrs;
	unsigned max = h->max_hdrs;

	memset(h, 0, sizeof(*h));
	h->hdrs = hdrs;
	h->max_hdrs = max;
	h->host_idx = -1;
}

static enum http_result run(llhttp_t *parser, llhttp_type_t type, const char *buf, size_t len,
			    bool partial, const struct http_limits *lim, bool head_request,
			    struct http_head *h, const char **why)
{
	struct pctx c;
	llhttp_errno_t e;

	head_reset(h);
	*why = NULL;
	if (len > lim->max_head_bytes) {
		*why = "head larger than the limit";
		return HTTP_HEAD_TOO_LARGE;
	}
	if (!scan_lines(buf, len, why))
		return HTTP_BAD;
	memset(&c, 0, sizeof(c));
	c.h = h;
	c.lim = lim;
	c.skip_body = head_request;
	llhttp_init(parser, type, &settings);
	/* Off by default; said here so that no llhttp default can loosen
	 * what we accept (the strict build does the rest: see Makefile.inc). */
	llhttp_set_lenient_headers(parser, 0);
	llhttp_set_lenient_chunked_length(parser, 0);
	llhttp_set_lenient_keep_alive(parser, 0);
	llhttp_set_lenient_transfer_encoding(parser, 0);
	parser->data = &c;
	e = llhttp_execute(parser, buf, len);
	parser->data = NULL;
	if (c.err != HTTP_OK) {
		*why = c.why;
		return c.err;
	}
	if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE) {
		*why = llhttp_get_error_reason(parser);
		if (*why == NULL)
			*why = llhttp_errno_name(e);
		return HTTP_BAD;
	}
	if (!c.headers_done) {
		if (partial)
			return HTTP_INCOMPLETE;
		*why = "head ended early";
		return HTTP_BAD;
	}
	h->head_len = len;
	h->major = llhttp_get_http_major(parser);
	h->minor = llhttp_get_http_minor(parser);
	if (h->major != 1) {
		*why = "unsupported HTTP version";
		return HTTP_BAD_VERSION;
	}
	return HTTP_OK;
}

enum http_result http_parse_request(llhttp_t *parser, const char *buf, size_t len, bool partial,
				    const struct http_limits *lim, struct http_head *h,
				    const char **why)
{
	enum http_result r = run(parser, HTTP_REQUEST, buf, len, partial, lim, false, h, why);

	if (r != HTTP_OK)
		return r;
	h->method = llhttp_get_method(parser);
	if (h->method == HTTP_CONNECT || h->method == HTTP_PRI) {
		*why = "method not supported by a reverse proxy";
		return HTTP_BAD_METHOD;
	}
	r = validate_target(h, why);
	if (r != HTTP_OK)
		return r;
	return validate_headers(h, true, why);
}

const char *http_status_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 102: return "Processing";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}

enum http_result http_parse_response(llhttp_t *parser, const char *buf, size_t len, bool partial,
				     const struct http_limits *lim, bool head_request,
				     struct http_head *h, const char **why)
{
	enum http_result r = run(parser, HTTP_RESPONSE, buf, len, partial, lim, head_request, h, why);
	size_t i;

	if (r != HTTP_OK)
		return r;
	h->status = llhttp_get_status_code(parser);
	/* llhttp takes any three digits; clients differ on what 000 or 600
	 * mean, so they never see one. */
	if (h->status < 100 || h->status > 599) {
		*why = "status code outside 100-599";
		return HTTP_BAD;
	}
	/* The reason phrase means nothing to HTTP, but a client may print
	 * it: control bytes (escape sequences) are not passed on. */
	for (i = 0; i < h->reason_len; i++) {
		unsigned char ch = (unsigned char)h->reason[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			h->reason = http_status_reason(h->status);
			h->reason_len = strlen(h->reason);
			break;
		}
	}
	return validate_headers(h, false, why);
}

bool http_response_has_body(const struct http_head *h, bool head_request)
{
	if (head_request || (h->status >= 100 && h->status < 200) || h->status == 204 ||
	    h->status == 304)
		return false;
	return true;
}

bool http_body_decode(llhttp_t *parser, struct http_chunk_state *cs,
		      const struct http_limits *lim, const char *buf, size_t len,
		      struct evbuffer *out, size_t *used, bool *done, const char **why)
{
	struct pctx c;
	llhttp_errno_t e;

	memset(&c, 0, sizeof(c));
	c.body_out = out;
	c.headers_done = true;
	c.cs = cs;
	c.lim = lim;
	parser->data = &c;
	e = llhttp_execute(parser, buf, len);
	parser->data = NULL;
	*done = c.message_done;
	if (e == HPE_PAUSED) {
		*used = (size_t)(llhttp_get_error_pos(parser) - buf);
		return true;
	}
	if (e != HPE_OK || c.body_error) {
		*why = c.body_error ? "out of memory" : c.why ? c.why : llhttp_get_error_reason(parser);
		if (*why == NULL)
			*why = llhttp_errno_name(e);
		*used = 0;
		return false;
	}
	*used = len;
	return true;
}

bool http_body_move(llhttp_t *parser, struct http_chunk_state *cs,
		    const struct http_limits *lim, struct evbuffer *in, struct evbuffer *out,
		    struct evbuffer *scratch, bool rechunk, size_t *used, size_t *data,
		    bool *done, const char **why)
{
	struct evbuffer_iovec v;

	*used = 0;
	*data = 0;
	*done = false;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
		return true;
	if (!http_body_decode(parser, cs, lim, v.iov_base, v.iov_len, scratch, used, done, why)) {
		/* Chunks decoded before the error must not reach another
		 * message. */
		evbuffer_drain(scratch, evbuffer_get_length(scratch));
		return false;
	}
	*data = evbuffer_get_length(scratch);
	if (*data > 0) {
		if (rechunk)
			evbuffer_add_printf(out, "%zx\r\n", *data);
		evbuffer_add_buffer(out, scratch);
		if (rechunk)
			evbuffer_add(out, "\r\n", 2);
	}
	evbuffer_drain(in, *used);
	if (*done && rechunk)
		evbuffer_add(out, "0\r\n\r\n", 5);
	return true;
}
