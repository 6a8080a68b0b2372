/*
 * The checks an HTTP/2 request head passes before it becomes an HTTP/1.1
 * head for a backend (h2-stream.c). Pure: a list of fields in, a verdict
 * and a view of the pseudo-headers out, so that it is unit-tested
 * (tests/test_h2check.c) and fuzzed (tests/fuzz/fuzz_h2head.c) alone.
 *
 * The point is downgrade safety ("H2.CL", "H2.TE" desync): HTTP/2 frames
 * its messages itself, HTTP/1.1 reads framing from headers and from line
 * structure, so any field a backend could read as framing, any byte that
 * ends a line in HTTP/1.1, and any disagreement about the target or the
 * host is refused here, whatever nghttp2 already checked (RFC 9113 §8.2,
 * §8.3): connection-specific fields (Connection, Transfer-Encoding,
 * Keep-Alive, Upgrade, Proxy-Connection; TE other than "trailers"),
 * upper-case names, CR, LF, NUL or other control bytes anywhere, white
 * space at either end of a value or inside a name, a colon outside a
 * pseudo-header's first byte, unknown, missing, repeated or late
 * pseudo-headers, a :path that is not origin-form (OPTIONS "*" aside), a
 * malformed Content-Length, and an :authority that disagrees with Host.
 */
#ifndef ZKR_H2_CHECK_H
#define ZKR_H2_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2_field {
	const char *name;
	const char *value;
	size_t nlen, vlen;
};

/* What a request head that passed says. Pointers are into the fields. */
struct h2_request_view {
	const char *method, *scheme, *authority, *path, *protocol;
	size_t method_len, scheme_len, authority_len, path_len, protocol_len;
	/* The host: :authority, else the Host field's value. */
	const char *host;
	size_t host_len;
	bool has_content_length;
	uint64_t content_length;
	bool connect;              /* extended CONNECT (RFC 8441): :protocol set */
	size_t first_regular;      /* index of the first regular field */
};

/* The verdicts: 0 when the head may go on, else the status it gets. */
#define H2_CHECK_OK 0
#define H2_CHECK_BAD 400           /* malformed: a stream error, or a 400 */
#define H2_CHECK_METHOD 405        /* a plain CONNECT: we do not proxy those */

/*
 * Checks the fields of a request head, in the order they came (pseudo-
 * headers first). Returns H2_CHECK_OK and fills *v, or a status with a
 * short static reason in *why.
 */
int h2_check_request(const struct h2_field *f, size_t n, struct h2_request_view *v,
		     const char **why);

/* True when a name is a connection-specific field (never forwarded). */
bool h2_check_conn_specific(const char *name, size_t nlen);

#endif
