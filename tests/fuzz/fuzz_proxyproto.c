/*
 * libFuzzer harness for the PROXY protocol parser (node/proxyproto.c), the
 * first bytes a listener with ",proxy" reads from anyone who connects.
 *
 * Each input is parsed whole, then again the way the accept path
 * (node/proxy-pp.c) meets it: in pieces whose sizes come from the input
 * itself, each prefix in a buffer of its exact size (so AddressSanitizer
 * sees a read past it), and for short inputs at every length. The
 * verdicts must agree: a prefix that asks for more stays a prefix of what
 * the whole input gives, an error or a header found in a prefix is the
 * same for the whole input, a header is never longer than the bytes given
 * nor than PROXYPROTO_MAX, and it always ends after the bytes a caller
 * consumed while the parser asked for more. Any disagreement aborts.
 */
#include <config.h>

#include <string.h>

#include "node/proxyproto.h"
#include "tests/fuzz/fuzz.h"

/* Every prefix at most this long is parsed (all v1 headers fit). */
#define ALL_PREFIXES_MAX 160

static void check_result(enum proxyproto_status st, const struct proxyproto_result *res,
			 size_t len)
{
	switch (st) {
	case PROXYPROTO_DONE:
		FUZZ_CHECK(res->len > 0 && res->len <= len && res->len <= PROXYPROTO_MAX);
		FUZZ_CHECK(res->version == 1 || res->version == 2);
		if (res->version == 1)
			FUZZ_CHECK(res->len <= PROXYPROTO_V1_MAX);
		if (res->has_addr) {
			FUZZ_CHECK(res->src.ss_family == AF_INET || res->src.ss_family == AF_INET6);
			FUZZ_CHECK(res->dst.ss_family == res->src.ss_family);
		}
		break;
	case PROXYPROTO_ERROR:
		FUZZ_CHECK(res->why != NULL);
		break;
	case PROXYPROTO_NEED_MORE:
		FUZZ_CHECK(len < PROXYPROTO_MAX);
		break;
	default:
		FUZZ_CHECK(!"a known status");
	}
}

/* A verdict on a prefix must agree with the verdict on the whole input. */
static void check_agrees(enum proxyproto_status st, const struct proxyproto_result *res,
			 enum proxyproto_status whole, const struct proxyproto_result *wres)
{
	if (st == PROXYPROTO_NEED_MORE)
		return;
	FUZZ_CHECK(st == whole);
	if (st != PROXYPROTO_DONE)
		return;
	FUZZ_CHECK(res->len == wres->len && res->version == wres->version &&
	      res->has_addr == wres->has_addr);
	if (res->has_addr)
		FUZZ_CHECK(memcmp(&res->src, &wres->src, sizeof(res->src)) == 0 &&
		      memcmp(&res->dst, &wres->dst, sizeof(res->dst)) == 0);
}

static enum proxyproto_status parse_copy(const uint8_t *data, size_t len,
					 struct proxyproto_result *res)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum proxyproto_status st;

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, data, len);
	st = proxyproto_parse(copy, len, res);
	free(copy);
	check_result(st, res, len);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto_result wres, res;
	enum proxyproto_status whole, st;
	size_t have = 0, i = 0;

	whole = parse_copy(data, size, &wres);

	/* As the accept path reads: pieces of 1-17 bytes, and every byte a
	 * "need more" answer covered is taken as header. */
	while (have < size) {
		size_t step = 1 + data[i++ % size] % 17;
		size_t avail = have + step < size ? have + step : size;

		st = parse_copy(data, avail, &res);
		check_agrees(st, &res, whole, &wres);
		if (st != PROXYPROTO_NEED_MORE) {
			if (st == PROXYPROTO_DONE)
				FUZZ_CHECK(res.len > have);
			break;
		}
		have = avail;
	}

	for (size_t n = 0; n < size && n <= ALL_PREFIXES_MAX; n++) {
		st = parse_copy(data, n, &res);
		check_agrees(st, &res, whole, &wres);
	}
	return 0;
}
