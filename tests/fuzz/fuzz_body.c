/*
 * Fuzz target "body": a chunked body moved by http_body_move, as
 * node/upstream.c (request bodies, re-chunked towards the backend) and
 * node/upstream-response.c (response bodies, re-chunked, or de-chunked
 * for an HTTP/1.0 client) move it, arriving in pieces.
 *
 * Input: byte 0 holds flags (bit 0: a response body, else a request
 * body; bit 1: re-chunk), byte 1 the number n of piece sizes that follow
 * (bytes 2..n+1, each one piece of 1-256 bytes, used in turn); the rest is
 * the body as it comes off the wire.
 *
 * Properties: where the pieces split the body does not change the
 * outcome (accepted or not, bytes consumed, data, end), and a re-chunked
 * body decodes to the same data.
 */
#include <string.h>

#include <event2/buffer.h>
#include <llhttp.h>

#include "node/http.h"
#include "tests/fuzz/fuzz.h"

static const char req_head[] = "POST /up HTTP/1.1\r\nHost: a.example\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n";
static const char resp_head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

/* The router's defaults are larger; small ones let the fuzzer reach the
 * limits on chunk extensions and trailers. */
static const struct http_limits body_lim = { 4096, 16, 4096 };

struct outcome {
	bool ok, done;
	size_t used, data;
	struct evbuffer *out;
};

/* Parses the head so that the parser continues with the body. */
static void start(llhttp_t *parser, bool response)
{
	struct http_hdr hdrs[16];
	struct http_head h;
	const char *why;

	memset(&h, 0, sizeof(h));
	h.hdrs = hdrs;
	h.max_hdrs = 16;
	if (response)
		FUZZ_CHECK(http_parse_response(parser, resp_head, sizeof(resp_head) - 1, false, &body_lim,
					       false, &h, &why) == HTTP_OK);
	else
		FUZZ_CHECK(http_parse_request(parser, req_head, sizeof(req_head) - 1, false, &body_lim, &h,
					      &why) == HTTP_OK);
	FUZZ_CHECK(h.chunked);
}

/* Moves what `in` holds the way the proxy's read callbacks do: until it
 * is empty, the body ends or a step consumes nothing. */
static void pump(llhttp_t *parser, struct http_chunk_state *cs, struct evbuffer *in,
		 struct evbuffer *scratch, bool rechunk, struct outcome *o)
{
	while (o->ok && !o->done && evbuffer_get_length(in) > 0) {
		size_t used, dlen;
		bool done;
		const char *why = NULL;

		if (!http_body_move(parser, cs, &body_lim, in, o->out, scratch, rechunk, &used, &dlen,
				    &done, &why)) {
			FUZZ_CHECK(why != NULL);
			o->ok = false;
			break;
		}
		FUZZ_CHECK(evbuffer_get_length(scratch) == 0);
		o->used += used;
		o->data += dlen;
		o->done = done;
		if (used == 0)
			break;
	}
	FUZZ_CHECK(evbuffer_get_length(scratch) == 0);
}

/* Feeds body[0..len) in pieces whose sizes cycle through sizes[0..n). */
static void run(bool response, bool rechunk, const uint8_t *sizes, size_t n,
		const uint8_t *body, size_t len, struct outcome *o)
{
	llhttp_t parser;
	struct http_chunk_state cs = { 0 };
	struct evbuffer *in = evbuffer_new(), *scratch = evbuffer_new();
	size_t off = 0, k = 0;

	FUZZ_CHECK(in != NULL && scratch != NULL && (o->out = evbuffer_new()) != NULL);
	o->ok = true;
	o->done = false;
	o->used = o->data = 0;
	start(&parser, response);
	while (off < len && o->ok && !o->done) {
		size_t piece = n ? (size_t)sizes[k++ % n] + 1 : len;

		if (piece > len - off)
			piece = len - off;
		/* Each piece its own chain, as separate reads make them. */
		struct evbuffer *chunk = evbuffer_new();
		FUZZ_CHECK(chunk != NULL && evbuffer_add(chunk, body + off, piece) == 0);
		FUZZ_CHECK(evbuffer_add_buffer(in, chunk) == 0);
		evbuffer_free(chunk);
		off += piece;
		pump(&parser, &cs, in, scratch, rechunk, o);
	}
	evbuffer_free(in);
	evbuffer_free(scratch);
}

/* Decodes a re-chunked output with a fresh parser: it must be one
 * well-formed chunked body, complete when the input's was. Returns its
 * data. */
static struct evbuffer *dechunk(bool response, struct evbuffer *chunked, bool done)
{
	llhttp_t parser;
	struct http_chunk_state cs = { 0 };
	struct evbuffer *scratch = evbuffer_new();
	struct outcome o;
	size_t len = evbuffer_get_length(chunked);

	FUZZ_CHECK(scratch != NULL && (o.out = evbuffer_new()) != NULL);
	o.ok = true;
	o.done = false;
	o.used = o.data = 0;
	start(&parser, response);
	pump(&parser, &cs, chunked, scratch, false, &o);
	FUZZ_CHECK(o.ok && o.used == len && o.done == done);
	evbuffer_free(scratch);
	return o.out;
}

static bool same(struct evbuffer *a, struct evbuffer *b)
{
	size_t n = evbuffer_get_length(a);

	return n == evbuffer_get_length(b) &&
	       (n == 0 || memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, split;

	if (size < 2 || (size_t)data[1] + 2 > size)
		return 0;
	bool response = data[0] & 1, rechunk = data[0] & 2;
	const uint8_t *sizes = data + 2, *body = sizes + data[1];
	size_t n = data[1], len = size - 2 - n;

	run(response, rechunk, NULL, 0, body, len, &whole);
	run(response, rechunk, sizes, n, body, len, &split);
	FUZZ_CHECK(whole.ok == split.ok);
	if (whole.ok) {
		FUZZ_CHECK(whole.done == split.done && whole.used == split.used &&
			   whole.data == split.data);
		if (rechunk) {
			/* Framed apart, the pieces must carry the same data. */
			struct evbuffer *w = dechunk(response, whole.out, whole.done);
			struct evbuffer *p = dechunk(response, split.out, split.done);

			FUZZ_CHECK(evbuffer_get_length(w) == whole.data && same(w, p));
			evbuffer_free(w);
			evbuffer_free(p);
		} else {
			FUZZ_CHECK(evbuffer_get_length(whole.out) == whole.data && same(whole.out, split.out));
		}
	}
	evbuffer_free(whole.out);
	evbuffer_free(split.out);
	return 0;
}
