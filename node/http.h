/*
 * HTTP/1.x message heads: framing with llhttp (built in its strict mode,
 * every lenient flag off)
 * plus the checks llhttp leaves to us, so that a head we accept can only be
 * read one way: by us and by the backend we re-serialize it for.
 *
 * A head is parsed only once it is complete (up to the blank line) and
 * contiguous in memory; the parsed head points into that memory. Partial
 * heads can be probed, so garbage is refused at its first bytes instead of
 * after a timeout. Bodies are not part of the head: Content-Length bodies
 * are moved as bytes, chunked bodies are decoded with http_body_decode and
 * framed again by the caller.
 */
#ifndef ZKR_HTTP_H
#define ZKR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

struct evbuffer;

/* Headers whose meaning the proxy acts on; everything else is HDR_OTHER. */
enum http_hdr_kind {
	HDR_OTHER = 0,
	HDR_HOST,
	HDR_CONTENT_LENGTH,
	HDR_TRANSFER_ENCODING,
	HDR_CONNECTION,
	HDR_KEEP_ALIVE,
	HDR_PROXY_CONNECTION,
	HDR_TE,
	HDR_TRAILER,
	HDR_UPGRADE,
	HDR_EXPECT,
	HDR_X_FORWARDED_FOR,
	HDR_X_FORWARDED_PROTO,
	HDR_X_FORWARDED_HOST,
	HDR_X_FORWARDED_PORT,
	HDR_X_REQUEST_ID,
	HDR_COOKIE,
	HDR_HTTP2_SETTINGS,        /* h2c upgrade's settings: hop-by-hop */
	HDR_CONNECTION_LISTED,     /* named by a Connection header: hop-by-hop */
};

struct http_hdr {
	const char *name;
	const char *value;         /* leading and trailing whitespace trimmed */
	uint32_t nlen;
	uint32_t vlen;
	enum http_hdr_kind kind;
};

struct http_head {
	/* request line */
	uint8_t method;            /* llhttp_method_t */
	const char *target;
	size_t target_len;
	const char *authority;     /* of an absolute-form target, else NULL */
	size_t authority_len;
	const char *path;          /* the origin-form part of the target */
	size_t path_len;
	/* status line */
	int status;
	const char *reason;
	size_t reason_len;

	uint8_t major, minor;
	struct http_hdr *hdrs;     /* caller's array of max_hdrs entries */
	unsigned n_hdrs, max_hdrs;
	int host_idx;              /* index of the Host header, -1 if none */
	size_t head_len;           /* bytes up to and including the blank line */

	bool has_content_length;
	uint64_t content_length;
	bool chunked;              /* Transfer-Encoding: chunked */
	bool conn_close, conn_keep_alive, conn_upgrade;
	bool upgrade;              /* request: Upgrade + Connection: upgrade */
	bool expect_continue;
};

enum http_result {
	HTTP_OK = 0,
	HTTP_INCOMPLETE,           /* nothing wrong so far, need more bytes */
	HTTP_BAD,                  /* 400 (requests) / 502 (responses) */
	HTTP_HEAD_TOO_LARGE,       /* 431 */
	HTTP_TOO_MANY_HEADERS,     /* 431 */
	HTTP_TARGET_TOO_LONG,      /* 414 */
	HTTP_BAD_METHOD,           /* 405: CONNECT and the like */
	HTTP_BAD_VERSION,          /* 505 */
};

struct http_limits {
	size_t max_head_bytes;
	unsigned max_headers;
	size_t max_target_bytes;
};

/* Where the head ends in buf (bytes up to and including "\r\n\r\n"), or 0
 * when it is not complete yet. */
size_t http_head_end(const char *buf, size_t len);

/*
 * Parses and validates the request head in buf[0..len). len is the head's
 * length (from http_head_end), or all there is so far when probing a
 * partial head (`partial`): then HTTP_INCOMPLETE means "nothing wrong yet".
 * `h->hdrs` and `h->max_hdrs` must be set by the caller. On failure *why
 * is a short static reason for the log.
 */
enum http_result http_parse_request(llhttp_t *parser, const char *buf, size_t len, bool partial,
				    const struct http_limits *lim, struct http_head *h,
				    const char **why);

/* Parses and validates a response head (from a backend). `head_request`:
 * the request was HEAD, so the response has no body whatever it says.
 * A status outside 100-599 is HTTP_BAD; a reason phrase with control
 * bytes is replaced by the standard one (h->reason then points to it). */
enum http_result http_parse_response(llhttp_t *parser, const char *buf, size_t len, bool partial,
				     const struct http_limits *lim, bool head_request,
				     struct http_head *h, const char **why);

/* The standard reason phrase of a status code ("" for codes without one). */
const char *http_status_reason(int status);

/* True when the message has a body to frame after the head. For
 * responses, HEAD/1xx/204/304 have none. */
bool http_response_has_body(const struct http_head *h, bool head_request);

/* The longest chunk extension (";name=value..." after a chunk size) we
 * read through; we never forward one. */
#define HTTP_CHUNK_EXT_MAX 4096

/*
 * What a chunked body has used so far of the limits on what is not data:
 * the extension bytes of the chunk-size line being read (at most
 * HTTP_CHUNK_EXT_MAX) and the trailer fields (counted against max_headers,
 * their bytes against max_head_bytes). Zeroed with the message; the counts
 * restart by themselves at each chunk-size line and at the last chunk, so
 * one state serves every message of a connection.
 */
struct http_chunk_state {
	uint32_t ext_bytes;
	uint32_t trailers;
	uint32_t trailer_bytes;
	/* When set, the trailer fields are kept there as "name:value\n"
	 * lines, the value untrimmed (HTTP/2 clients get them); else dropped. */
	struct evbuffer *keep_trailers;
};

/*
 * Decodes chunked body bytes (the parser continues from the head it
 * parsed). Chunk data is appended to `out` as-is (un-chunked); *used gets
 * the bytes consumed and *done whether the final chunk and trailers were
 * seen (trailers are dropped, or kept as cs says). Returns false on malformed input, or on a
 * chunk extension or trailers past the limits above.
 */
bool http_body_decode(llhttp_t *parser, struct http_chunk_state *cs,
		      const struct http_limits *lim, const char *buf, size_t len,
		      struct evbuffer *out, size_t *used, bool *done, const char **why);

/*
 * One step of moving a chunked body from `in` to `out`: decodes the bytes
 * contiguous at the front of `in` through `scratch` (empty before and
 * after, also on failure, as it is shared by every message) and appends
 * the data to `out`, framed again as one chunk when `rechunk` (then also
 * the last chunk), as-is otherwise. Drains what it consumed. *used gets
 * those bytes of `in`, *data the body bytes, *done whether the body ended.
 * Returns false on a malformed body, with the reason in *why.
 */
bool http_body_move(llhttp_t *parser, struct http_chunk_state *cs,
		    const struct http_limits *lim, struct evbuffer *in, struct evbuffer *out,
		    struct evbuffer *scratch, bool rechunk, size_t *used, size_t *data,
		    bool *done, const char **why);

/*
 * The next element of a comma-separated header value (RFC 9110 §5.6.1)
 * from *p up to end, without its surrounding spaces and tabs; empty
 * elements are skipped. False at the end of the list. Advances *p.
 */
bool http_next_token(const char **p, const char *end, const char **t, size_t *n);

/*
 * Upgrade protocols. `allowed` is a comma-separated list of protocol names
 * (the --upgrade-protocols option, NULL for none). A token of an Upgrade
 * header ("name" or "name/version") is allowed when its name is listed.
 */
bool http_upgrade_token_allowed(const char *token, size_t len, const char *allowed);
/* Calls fn for each token of an Upgrade header value. */
void http_upgrade_tokens(const struct http_hdr *hd, void (*fn)(const char *t, size_t n, void *arg),
			 void *arg);
/* A request's upgrade stands (h->upgrade stays true) only when one of its
 * Upgrade tokens is allowed: the others are never forwarded, and a request
 * with none left is an ordinary request. */
void http_upgrade_restrict(struct http_head *h, const char *allowed);
/* True when a list is well formed: comma-separated tokens. */
bool http_upgrade_list_valid(const char *list);

/* Case-insensitive comparison of a header name with a literal. */
bool http_name_is(const struct http_hdr *hd, const char *name);

/* The kind of a header by its name (HDR_OTHER for most). */
enum http_hdr_kind http_classify_name(const char *name, size_t nlen);

/* The index of the first header named `name`, or -1. */
int http_find(const struct http_head *h, const char *name);

#endif
