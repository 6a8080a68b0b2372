/*
 * libFuzzer harness for the HTTP/2 request-head checks (node/h2-check.c),
 * the last word on what of a client's head is rebuilt as HTTP/1.1 for a
 * backend.
 *
 * The input is fields, one per line, "name" and "value" split at the
 * first ':' after the name's first byte (so pseudo-headers keep their
 * colon); every byte but the line's LF is kept, NUL, CR and all. Each
 * field is copied to a buffer of its exact size (AddressSanitizer sees a
 * read past it). Whatever the input, a head that passes must be one no
 * HTTP/1.1 backend can read two ways: every value free of CR, LF and NUL
 * and of white space at its ends, every name lower-case token bytes, no
 * connection-specific field, TE only "trailers", a host present and the
 * same as any Host field, an origin-form :path (or OPTIONS "*"), and any
 * Content-Length all digits. Any breach aborts.
 */
#include <config.h>

#include <string.h>
#include <strings.h>

#include "node/h2-check.h"
#include "tests/fuzz/fuzz.h"

#define MAX_FIELDS 64

static bool is_lit(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static void check_passed(const struct h2_field *f, size_t n, const struct h2_request_view *v)
{
	FUZZ_CHECK(v->host != NULL && v->host_len > 0);
	FUZZ_CHECK(v->path != NULL && v->path_len > 0);
	FUZZ_CHECK(v->path[0] == '/' || (v->path_len == 1 && v->path[0] == '*' &&
					  is_lit(v->method, v->method_len, "OPTIONS")));
	FUZZ_CHECK(v->first_regular <= n);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(f[i].nlen > 0);
		FUZZ_CHECK(memchr(f[i].value, '\r', f[i].vlen) == NULL);
		FUZZ_CHECK(memchr(f[i].value, '\n', f[i].vlen) == NULL);
		FUZZ_CHECK(memchr(f[i].value, '\0', f[i].vlen) == NULL);
		if (f[i].vlen > 0)
			FUZZ_CHECK(f[i].value[0] != ' ' && f[i].value[f[i].vlen - 1] != ' ');
		if (i < v->first_regular) {
			FUZZ_CHECK(f[i].name[0] == ':');
			continue;
		}
		for (size_t k = 0; k < f[i].nlen; k++) {
			unsigned char ch = (unsigned char)f[i].name[k];

			FUZZ_CHECK(ch > 0x20 && ch < 0x7f && ch != ':' && !(ch >= 'A' && ch <= 'Z'));
		}
		FUZZ_CHECK(!h2_check_conn_specific(f[i].name, f[i].nlen));
		if (is_lit(f[i].name, f[i].nlen, "te"))
			FUZZ_CHECK(is_lit(f[i].value, f[i].vlen, "trailers"));
		if (is_lit(f[i].name, f[i].nlen, "host"))
			FUZZ_CHECK(f[i].vlen == v->host_len &&
				   strncasecmp(f[i].value, v->host, v->host_len) == 0);
		if (is_lit(f[i].name, f[i].nlen, "content-length")) {
			FUZZ_CHECK(v->has_content_length && f[i].vlen > 0);
			for (size_t k = 0; k < f[i].vlen; k++)
				FUZZ_CHECK(f[i].value[k] >= '0' && f[i].value[k] <= '9');
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2_field f[MAX_FIELDS];
	char *copies[MAX_FIELDS];
	struct h2_request_view v, v2;
	const char *why = NULL;
	size_t n = 0, at = 0;
	int verdict;

	while (at < size && n < MAX_FIELDS) {
		const uint8_t *line = data + at, *nl = memchr(line, '\n', size - at);
		size_t len = nl ? (size_t)(nl - line) : size - at;
		const uint8_t *colon = len > 1 ? memchr(line + 1, ':', len - 1) : NULL;
		size_t nlen = colon ? (size_t)(colon - line) : len;
		size_t vlen = colon ? len - nlen - 1 : 0;
		char *c = malloc(len + 1);

		FUZZ_CHECK(c != NULL);
		memcpy(c, line, nlen);
		if (vlen)
			memcpy(c + nlen, colon + 1, vlen);
		copies[n] = c;
		f[n].name = c;
		f[n].nlen = nlen;
		f[n].value = c + nlen;
		f[n].vlen = vlen;
		n++;
		at += len + 1;
	}
	verdict = h2_check_request(f, n, &v, &why);
	FUZZ_CHECK(verdict == H2_CHECK_OK || verdict == H2_CHECK_BAD || verdict == H2_CHECK_METHOD);
	if (verdict == H2_CHECK_OK)
		check_passed(f, n, &v);
	else
		FUZZ_CHECK(why != NULL);
	/* The same fields, the same verdict. */
	FUZZ_CHECK(h2_check_request(f, n, &v2, &why) == verdict);
	for (size_t i = 0; i < n; i++)
		free(copies[i]);
	return 0;
}
