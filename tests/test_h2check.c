/*
 * The downgrade checks on HTTP/2 request heads (node/h2-check.c), table
 * driven: each case is a head as "name: value" lines (pseudo-headers
 * first, as a client sends them) and the verdict it must get. Every
 * refusal the issue lists has a line here; the heads that must pass
 * (OPTIONS *, extended CONNECT, host agreeing with :authority, TE:
 * trailers, repeated equal Content-Length) too.
 */
#include <config.h>

#include <string.h>

#include "node/h2-check.h"
#include "tests/lib/unit.h"

#define MAX_FIELDS 16

/* Splits "name: value\n..." (a '\x01' stands for a byte the C string
 * cannot hold in place, NUL) into fields pointing into `buf`. */
static size_t fields_of(const char *spec, char *buf, size_t bufsz, struct h2_field *f)
{
	size_t n = 0, len = strlen(spec);
	char *p, *end;

	CU_ASSERT_FATAL(len < bufsz);
	memcpy(buf, spec, len + 1);
	for (p = buf; p < buf + len && n < MAX_FIELDS; p = end + 1) {
		char *sep;

		end = strchr(p, '\n');
		if (end == NULL)
			end = buf + len;
		/* The separator is the first ": " after the name's first byte
		 * (a pseudo-header begins with its own colon). */
		sep = strstr(p + 1, ": ");
		CU_ASSERT_FATAL(sep != NULL && sep < end);
		for (char *q = p; q < end; q++)
			if (*q == '\x01')
				*q = '\0';
		f[n].name = p;
		f[n].nlen = (size_t)(sep - p);
		f[n].value = sep + 2;
		f[n].vlen = (size_t)(end - (sep + 2));
		n++;
	}
	return n;
}

#define GET ":method: GET\n:scheme: https\n:authority: a.test\n:path: /x\n"

static const struct {
	const char *head;
	int verdict;
} cases[] = {
	/* Heads that pass. */
	{ GET, H2_CHECK_OK },
	{ GET "accept: */*\nx-a: 1", H2_CHECK_OK },
	{ GET "host: A.test", H2_CHECK_OK },   /* the same host, case aside */
	{ GET "te: trailers", H2_CHECK_OK },
	{ GET "content-length: 5\ncontent-length: 5", H2_CHECK_OK },
	{ ":method: GET\n:scheme: http\n:path: /\nhost: a.test", H2_CHECK_OK },
	{ ":method: OPTIONS\n:scheme: https\n:authority: a.test\n:path: *", H2_CHECK_OK },
	{ ":method: CONNECT\n:protocol: websocket\n:scheme: https\n:authority: a.test\n:path: /ws",
	  H2_CHECK_OK },
	{ GET "x-a: a\tb", H2_CHECK_OK },     /* a tab inside a value */
	/* Connection-specific fields. */
	{ GET "connection: close", H2_CHECK_BAD },
	{ GET "transfer-encoding: chunked", H2_CHECK_BAD },
	{ GET "keep-alive: 5", H2_CHECK_BAD },
	{ GET "upgrade: websocket", H2_CHECK_BAD },
	{ GET "proxy-connection: keep-alive", H2_CHECK_BAD },
	{ GET "te: gzip", H2_CHECK_BAD },
	{ GET "te: trailers, gzip", H2_CHECK_BAD },
	/* Content-Length a backend could read otherwise. */
	{ GET "content-length: 5\ncontent-length: 6", H2_CHECK_BAD },
	{ GET "content-length: 5, 5", H2_CHECK_BAD },
	{ GET "content-length: +5", H2_CHECK_BAD },
	{ GET "content-length: ", H2_CHECK_BAD },
	{ GET "content-length: 99999999999999999999", H2_CHECK_BAD },
	/* Names and values. */
	{ GET "X-Upper: 1", H2_CHECK_BAD },
	{ GET "x a: 1", H2_CHECK_BAD },
	{ GET "x:a: 1", H2_CHECK_BAD },
	{ GET "x-a: 1\r\nx-b: 2", H2_CHECK_BAD },
	{ GET "x-a: 1\rx", H2_CHECK_BAD },
	{ GET "x-a: 1\x01x", H2_CHECK_BAD },        /* NUL */
	{ GET "x-\x01: 1", H2_CHECK_BAD },
	{ GET "x-a:  1", H2_CHECK_BAD },            /* leading space */
	{ GET "x-a: 1 ", H2_CHECK_BAD },            /* trailing space */
	{ GET "x-a: \t1", H2_CHECK_BAD },
	{ GET "x-a: 1\x7f", H2_CHECK_BAD },
	/* Pseudo-headers. */
	{ ":method: GET\n:scheme: https\n:authority: a.test", H2_CHECK_BAD },   /* no :path */
	{ ":scheme: https\n:authority: a.test\n:path: /", H2_CHECK_BAD },      /* no :method */
	{ ":method: GET\n:authority: a.test\n:path: /", H2_CHECK_BAD },        /* no :scheme */
	{ GET ":path: /y", H2_CHECK_BAD },                 /* repeated, and late */
	{ ":method: GET\n:method: GET\n:scheme: https\n:authority: a.test\n:path: /", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\nx-a: 1\n:authority: a.test\n:path: /", H2_CHECK_BAD },
	{ GET ":status: 200", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\n:authority: a.test\n:path: /\n:foo: x", H2_CHECK_BAD },
	{ ":method: GET\n:protocol: websocket\n:scheme: https\n:authority: a.test\n:path: /",
	  H2_CHECK_BAD },
	{ ":method: G T\n:scheme: https\n:authority: a.test\n:path: /", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: ftp\n:authority: a.test\n:path: /", H2_CHECK_BAD },
	/* The target: origin-form only (OPTIONS * aside). */
	{ ":method: GET\n:scheme: https\n:authority: a.test\n:path: http://b.test/", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\n:authority: a.test\n:path: *", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\n:authority: a.test\n:path: x", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\n:authority: a.test\n:path: /a b", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\n:authority: a.test\n:path: ", H2_CHECK_BAD },
	/* The host. */
	{ GET "host: b.test", H2_CHECK_BAD },
	{ GET "host: a.test\nhost: a.test", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\n:path: /", H2_CHECK_BAD },     /* none at all */
	{ ":method: GET\n:scheme: https\n:authority: u@a.test\n:path: /", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\n:authority: a.test/x\n:path: /", H2_CHECK_BAD },
	{ ":method: GET\n:scheme: https\n:authority: \n:path: /", H2_CHECK_BAD },
	/* CONNECT: only the extended one, with everything it needs. */
	{ ":method: CONNECT\n:authority: a.test:443", H2_CHECK_METHOD },
	{ ":method: CONNECT\n:protocol: websocket\n:scheme: https\n:path: /ws", H2_CHECK_BAD },
};

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[1024];
		struct h2_field f[MAX_FIELDS];
		struct h2_request_view v;
		const char *why = NULL;
		size_t n = fields_of(cases[i].head, buf, sizeof(buf), f);
		int got = h2_check_request(f, n, &v, &why);

		if (got != cases[i].verdict)
			fprintf(stderr, "case %zu: got %d (%s), want %d:\n%s\n", i, got,
				why ? why : "-", cases[i].verdict, cases[i].head);
		CU_ASSERT_EQUAL(got, cases[i].verdict);
		if (got != H2_CHECK_OK)
			CU_ASSERT_PTR_NOT_NULL(why);
	}
}

/* What a head that passes says: the host from :authority (or Host), the
 * length, where the regular fields begin. */
static void test_view(void)
{
	char buf[1024];
	struct h2_field f[MAX_FIELDS];
	struct h2_request_view v;
	const char *why = NULL;
	size_t n = fields_of(GET "content-length: 12\nx-a: 1", buf, sizeof(buf), f);

	CU_ASSERT_EQUAL_FATAL(h2_check_request(f, n, &v, &why), H2_CHECK_OK);
	CU_ASSERT_EQUAL(v.host_len, 6);
	CU_ASSERT_NSTRING_EQUAL(v.host, "a.test", 6);
	CU_ASSERT_NSTRING_EQUAL(v.path, "/x", 2);
	CU_ASSERT_TRUE(v.has_content_length);
	CU_ASSERT_EQUAL(v.content_length, 12);
	CU_ASSERT_EQUAL(v.first_regular, 4);
	CU_ASSERT_FALSE(v.connect);

	n = fields_of(":method: GET\n:scheme: http\n:path: /\nhost: b.test:8080", buf, sizeof(buf), f);
	CU_ASSERT_EQUAL_FATAL(h2_check_request(f, n, &v, &why), H2_CHECK_OK);
	CU_ASSERT_EQUAL(v.host_len, 11);
	CU_ASSERT_NSTRING_EQUAL(v.host, "b.test:8080", 11);

	n = fields_of(":method: CONNECT\n:protocol: websocket\n:scheme: https\n:authority: a.test\n"
		      ":path: /ws",
		      buf, sizeof(buf), f);
	CU_ASSERT_EQUAL_FATAL(h2_check_request(f, n, &v, &why), H2_CHECK_OK);
	CU_ASSERT_TRUE(v.connect);
	CU_ASSERT_NSTRING_EQUAL(v.protocol, "websocket", 9);
}

static void test_conn_specific(void)
{
	CU_ASSERT_TRUE(h2_check_conn_specific("connection", 10));
	CU_ASSERT_TRUE(h2_check_conn_specific("upgrade", 7));
	CU_ASSERT_FALSE(h2_check_conn_specific("te", 2));   /* checked by value */
	CU_ASSERT_FALSE(h2_check_conn_specific("connections", 11));
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("h2check", NULL, NULL);

	UNIT_TEST(s, test_table);
	UNIT_TEST(s, test_view);
	UNIT_TEST(s, test_conn_specific);
}
