/*
 * Writing heads back out. The proxy never forwards the bytes it received:
 * it writes a fresh request line or status line and copies only the
 * end-to-end headers it validated, then adds its own framing and the
 * forwarding headers. So a backend can only ever read what we read.
 *
 * Removed on the way (hop-by-hop): Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding and Content-Length
 * (replaced by our framing), HTTP2-Settings, Upgrade unless tunnelling
 * (and then every protocol we do not tunnel), and every header named by
 * Connection. Header names with '_' are dropped unless asked for: a
 * server behind may fold '_' into '-' (Transfer_Encoding into
 * Transfer-Encoding) and read a framing we never saw. Replaced: X-Forwarded-Proto/-Host/-Port (the router
 * is the edge, what a client claims there is not trusted). Appended to:
 * X-Forwarded-For. Kept or generated: X-Request-Id.
 */
#ifndef ZKR_HEADERS_H
#define ZKR_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/http.h"

/* A growable byte buffer for a head being written; kept and reused (its
 * memory is freed with hbuf_free only). */
struct hbuf {
	char *data;
	size_t len, cap;
};

void hbuf_free(struct hbuf *b);

/* v in decimal at buf, which has room for HEADERS_DEC_MAX bytes, without
 * printf (this runs for every head); returns the length. */
#define HEADERS_DEC_MAX 20
size_t headers_dec(char *buf, uint64_t v);
/* Appends len bytes; false on allocation failure. */
bool hbuf_add(struct hbuf *b, const void *p, size_t len);

/* How a body follows the head we write. */
enum body_framing {
	FRAME_NONE,                /* no body */
	FRAME_LENGTH,              /* Content-Length: n */
	FRAME_CHUNKED,             /* Transfer-Encoding: chunked */
	FRAME_CLOSE,               /* until the connection closes (responses) */
};

struct fwd_request {
	const char *client_ip;     /* the peer's address, text */
	const char *proto;         /* "http" or "https" */
	unsigned local_port;       /* the port the client connected to */
	const char *host;          /* the Host to send (authority or Host value) */
	size_t host_len;
	const char *request_id;
	size_t request_id_len;
	bool request_id_present;   /* the client sent X-Request-Id: keep it */
	enum body_framing framing;
	uint64_t content_length;
	const char *upgrade_protocols;  /* forwarded Upgrade tokens (see
					 * http_upgrade_token_allowed) */
	bool keep_underscores;     /* forward header names with '_' */
};

/* Writes the request head for the backend into out (emptied first).
 * False on allocation failure. */
bool headers_write_request(struct hbuf *out, const struct http_head *h,
			   const struct fwd_request *f);

/*
 * Reads back a request head headers_write_request wrote, for a backend
 * that takes fields rather than bytes (h2c): the method and the target
 * of its request line, then `fn` for each field in order (Host and the
 * framing fields included; the caller drops what its protocol has no
 * use for). So both serializations come from the one set of rules
 * above. False when `head` is not such a head.
 */
bool headers_request_split(const struct hbuf *head, const char **method, size_t *mlen,
			   const char **target, size_t *tlen,
			   void (*fn)(const char *name, size_t nlen, const char *value,
				      size_t vlen, void *arg),
			   void *arg);

struct fwd_response {
	bool client_http10;        /* the client spoke HTTP/1.0 */
	bool keep_alive;           /* we keep the client connection open */
	bool tunnel;               /* 101 Switching Protocols: keep Upgrade */
	enum body_framing framing;
	uint64_t content_length;
	const char *request_id;    /* added when the backend sent none */
	size_t request_id_len;
	const char *sticky_cookie; /* Set-Cookie: <name>=<instance> when set */
	const char *sticky_value;
};

/* Writes the response head for the client into out (emptied first).
 * False on allocation failure. */
bool headers_write_response(struct hbuf *out, const struct http_head *h,
			    const struct fwd_response *f);

/* Writes a 128-bit random request id as 32 hex digits (+ NUL) into out. */
void headers_request_id(uint64_t *rng, char out[33]);

/* True when a header of this kind is hop-by-hop for the given direction. */
bool headers_is_hop(enum http_hdr_kind kind, bool tunnel);

#endif
