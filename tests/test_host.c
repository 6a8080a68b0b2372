/*
 * Host suite: what a Host header means for routing. A table of raw Host
 * values with their normalised form (or refusal), then the same path the
 * proxy takes, host_normalize + route_table_match, against a real table
 * with exact and wildcard apps.
 */
#include <config.h>

#include <string.h>

#include "node/host.h"
#include "registry/table.h"
#include "tests/lib/unit.h"

static const struct {
	const char *in;
	const char *out;       /* NULL: refused */
} norm_cases[] = {
	{ "example.com", "example.com" },
	{ "Example.COM", "example.com" },
	{ "example.com.", "example.com" },
	{ "example.com:8080", "example.com" },
	{ "EXAMPLE.com.:443", "example.com" },
	{ "example.com:", "example.com" },          /* RFC 3986 allows an empty port */
	{ "a-b_c.example.com", "a-b_c.example.com" },
	{ "localhost", "localhost" },
	{ "10.1.2.3", "10.1.2.3" },
	{ "10.1.2.3:80", "10.1.2.3" },
	{ "[::1]", "::1" },
	{ "[::1]:8080", "::1" },
	{ "[2001:DB8:0:0::1]:80", "2001:db8::1" },
	{ "[::ffff:10.0.0.1]", "::ffff:10.0.0.1" },
	{ "", NULL },
	{ ".", NULL },
	{ ":80", NULL },
	{ "example..com", NULL },
	{ ".example.com", NULL },
	{ "example.com..", NULL },
	{ "exa mple.com", NULL },
	{ "example.com:80:80", NULL },
	{ "example.com:http", NULL },
	{ "example.com:65536", NULL },
	{ "example.com:123456", NULL },
	{ "exam/ple.com", NULL },
	{ "example.com\r\nX-Evil: 1", NULL },
	{ "ex\xc3\xa4mple.com", NULL },
	{ "*.example.com", NULL },                 /* a wildcard is an app, never a host */
	{ "user@example.com", NULL },
	{ "300.1.1.1", NULL },
	{ "1.2.3", NULL },
	{ "[::1", NULL },
	{ "[::1]x", NULL },
	{ "[::1]:", "::1" },
	{ "[]:80", NULL },
	{ "[example.com]", NULL },
	{ "::1", NULL },                            /* IPv6 needs its brackets */
};

static void test_normalize_table(void)
{
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
		char out[HOST_MAX + 1];
		size_t len = 99;
		const char *in = norm_cases[i].in;
		bool ok = host_normalize(in, strlen(in), out, sizeof(out), &len);
		if (ok != (norm_cases[i].out != NULL))
			fprintf(stderr, "case %zu \"%s\": got %d\n", i, in, ok);
		CU_ASSERT_EQUAL(ok, norm_cases[i].out != NULL);
		if (ok && norm_cases[i].out != NULL) {
			CU_ASSERT_STRING_EQUAL(out, norm_cases[i].out);
			CU_ASSERT_EQUAL(len, strlen(norm_cases[i].out));
		} else {
			CU_ASSERT_STRING_EQUAL(out, "");
			CU_ASSERT_EQUAL(len, 0);
		}
	}
}

/* The input is length-delimited: bytes past len, and a NUL inside, count. */
static void test_normalize_bytes(void)
{
	char out[HOST_MAX + 1];
	size_t len;
	CU_ASSERT_TRUE(host_normalize("example.com:80GARBAGE", 14, out, sizeof(out), &len));
	CU_ASSERT_STRING_EQUAL(out, "example.com");
	CU_ASSERT_FALSE(host_normalize("exam\0ple.com", 12, out, sizeof(out), &len));
	CU_ASSERT_FALSE(host_normalize(NULL, 0, out, sizeof(out), &len));
	/* A small output buffer refuses rather than truncates. */
	CU_ASSERT_FALSE(host_normalize("example.com", 11, out, 11, &len));
	CU_ASSERT_TRUE(host_normalize("example.com", 11, out, 12, &len));
}

static void test_normalize_lengths(void)
{
	char in[600], out[HOST_MAX + 1];
	size_t len;

	/* A 63-byte label is fine, 64 is not. */
	memset(in, 'a', 63);
	strcpy(in + 63, ".com");
	CU_ASSERT_TRUE(host_normalize(in, strlen(in), out, sizeof(out), &len));
	memset(in, 'a', 64);
	strcpy(in + 64, ".com");
	CU_ASSERT_FALSE(host_normalize(in, strlen(in), out, sizeof(out), &len));

	/* 253 bytes in all (plus a trailing dot and a port) is fine, 254 not. */
	size_t n = 0;
	while (n + 4 <= 253) {
		memcpy(in + n, "abc.", 4);
		n += 4;
	}
	while (n < 253)
		in[n++] = 'z';
	memcpy(in + n, ".:8080", 7);
	CU_ASSERT_TRUE(host_normalize(in, strlen(in), out, sizeof(out), &len));
	CU_ASSERT_EQUAL(len, 253);
	in[n] = 'z';
	in[n + 1] = '\0';
	CU_ASSERT_FALSE(host_normalize(in, strlen(in), out, sizeof(out), &len));
}

static struct route_table *table;

static int match_init(void)
{
	static const char *const domains[] = {
		"example.com", "www.example.com", "*.example.com", "*.apps.example.org", "localhost",
	};
	table = route_table_new();
	for (size_t i = 0; table != NULL && i < sizeof(domains) / sizeof(domains[0]); i++) {
		struct route_app *a = route_app_new(domains[i], NULL);
		if (a == NULL)
			return -1;
		route_app_seal(a);
		struct route_table *next = route_table_with_app(table, a);
		route_table_unref(table);
		table = next;
	}
	return table == NULL ? -1 : 0;
}

static int match_clean(void)
{
	route_table_unref(table);
	return 0;
}

static void test_match_table(void)
{
	static const struct {
		const char *host;      /* raw Host header */
		const char *app;       /* domain it routes to; NULL: no app */
	} cases[] = {
		{ "example.com", "example.com" },
		{ "EXAMPLE.COM.:80", "example.com" },
		{ "www.example.com", "www.example.com" },        /* exact beats wildcard */
		{ "api.example.com", "*.example.com" },
		{ "API.Example.Com:8443", "*.example.com" },
		{ "a.b.example.com", NULL },                     /* one label only */
		{ "x.apps.example.org", "*.apps.example.org" },
		{ "apps.example.org", NULL },                    /* the wildcard needs a label */
		{ "example.org", NULL },
		{ "localhost:3000", "localhost" },
		{ "notexample.com", NULL },
		{ "com", NULL },
		{ "[::1]:80", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[HOST_MAX + 1];
		size_t len;
		CU_ASSERT_TRUE_FATAL(host_normalize(cases[i].host, strlen(cases[i].host), host,
						    sizeof(host), &len));
		struct route_app *a = route_table_match(table, host, len);
		if (cases[i].app == NULL) {
			CU_ASSERT_PTR_NULL(a);
		} else {
			CU_ASSERT_PTR_NOT_NULL_FATAL(a);
			CU_ASSERT_STRING_EQUAL(a->domain, cases[i].app);
		}
	}
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("host_normalize", NULL, NULL);
	UNIT_TEST(s, test_normalize_table);
	UNIT_TEST(s, test_normalize_bytes);
	UNIT_TEST(s, test_normalize_lengths);
	CU_pSuite m = unit_suite("host_match", match_init, match_clean);
	UNIT_TEST(m, test_match_table);
}
