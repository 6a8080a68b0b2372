/*
 * Admin suite: the JSON string escaping /routes relies on. Every string
 * in the output goes through admin_json_string, so a value with quotes,
 * backslashes, control bytes or non-UTF-8 bytes must still give one valid
 * JSON string with the same meaning. And the per-app series' guard: at
 * most N apps named, the busiest, an idle one giving its name up to a
 * busier one, and app="_other" never going down while apps move in and
 * out of it.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "node/admin.h"
#include "node/admin-int.h"
#include "tests/lib/unit.h"

static void test_json_string(void)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ "", "\"\"" },
		{ "plain.example.com", "\"plain.example.com\"" },
		{ "a\"b", "\"a\\\"b\"" },
		{ "back\\slash", "\"back\\\\slash\"" },
		{ "line\nfeed\r\ttab", "\"line\\nfeed\\r\\ttab\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "</script>", "\"</script>\"" },
		{ "\xff\xc3", "\"\\u00ff\\u00c3\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct evbuffer *b = evbuffer_new();
		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		admin_json_string(b, cases[i].in);
		size_t len = evbuffer_get_length(b);
		char *got = calloc(1, len + 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(got);
		evbuffer_remove(b, got, len);
		if (strcmp(got, cases[i].out) != 0)
			fprintf(stderr, "case %zu: got %s want %s\n", i, got, cases[i].out);
		CU_ASSERT_STRING_EQUAL(got, cases[i].out);
		free(got);
		evbuffer_free(b);
	}
}

static void test_json_null_is_empty(void)
{
	struct evbuffer *b = evbuffer_new();
	char got[8] = "";
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	admin_json_string(b, NULL);
	evbuffer_remove(b, got, sizeof(got) - 1);
	CU_ASSERT_STRING_EQUAL(got, "\"\"");
	evbuffer_free(b);
}

/* Two apps with these request counts, as one worker would report them
 * for the names of rq. */
static void fake_snap(const struct appseries_req *rq, const char *const *domains,
		      const uint64_t *requests, size_t n, struct appstats_snap *snap)
{
	memset(snap, 0, sizeof(*snap));
	snap->named = calloc(rq->n + 1, sizeof(*snap->named));
	snap->top = calloc(n, sizeof(*snap->top));
	CU_ASSERT_PTR_NOT_NULL_FATAL(snap->named);
	CU_ASSERT_PTR_NOT_NULL_FATAL(snap->top);
	for (size_t i = 0; i < n; i++) {
		bool named = false;
		for (size_t k = 0; k < rq->n; k++) {
			if (strcmp(rq->names[k], domains[i]) == 0) {
				snap->named[k].requests = requests[i];
				named = true;
			}
		}
		if (named)
			continue;
		snap->other.requests += requests[i];
		snap->top[snap->n_top].domain = strdup(domains[i]);
		snap->top[snap->n_top++].n.requests = requests[i];
	}
}

/* The value of zkrouter_app_requests_total for `app` in b, or -1. */
static long long app_requests(struct evbuffer *b, const char *app)
{
	char key[128], *text;
	size_t len = evbuffer_get_length(b);
	long long v = -1;

	snprintf(key, sizeof(key), "\nzkrouter_app_requests_total{app=\"%s\"} ", app);
	text = calloc(1, len + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	evbuffer_copyout(b, text, len);
	char *p = strstr(text, key);
	if (p != NULL)
		v = strtoll(p + strlen(key), NULL, 10);
	free(text);
	return v;
}

static void scrape(struct appseries *as, uint64_t a, uint64_t b, uint64_t now_ms,
		   long long want_a, long long want_b, long long want_other)
{
	static const char *const domains[] = { "a.test", "b.test" };
	uint64_t requests[] = { a, b };
	struct appseries_req rq;
	struct appstats_snap snap;
	struct evbuffer *out = evbuffer_new();

	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_TRUE_FATAL(appseries_req_init(as, &rq));
	fake_snap(&rq, domains, requests, 2, &snap);
	appseries_render(as, &rq, &snap, 1, NULL, out, now_ms);
	if (app_requests(out, "a.test") != want_a || app_requests(out, "b.test") != want_b ||
	    app_requests(out, "_other") != want_other)
		fprintf(stderr, "a=%" PRIu64 " b=%" PRIu64 ": got a %lld b %lld _other %lld\n", a, b,
			app_requests(out, "a.test"), app_requests(out, "b.test"),
			app_requests(out, "_other"));
	CU_ASSERT_EQUAL(app_requests(out, "a.test"), want_a);
	CU_ASSERT_EQUAL(app_requests(out, "b.test"), want_b);
	CU_ASSERT_EQUAL(app_requests(out, "_other"), want_other);
	appstats_snap_free(&snap);
	appseries_req_free(&rq);
	evbuffer_free(out);
}

static void test_app_series_guard(void)
{
	struct appseries *as = appseries_new(1);
	const uint64_t min = 60 * 1000;

	CU_ASSERT_PTR_NOT_NULL_FATAL(as);
	/* No name yet: all in _other; a, the busiest, gets the one name. */
	scrape(as, 5, 3, 1 * min, -1, -1, 8);
	/* a's series start at 0; the request it had meanwhile stays in _other. */
	scrape(as, 6, 3, 2 * min, 0, -1, 9);
	scrape(as, 8, 4, 3 * min, 2, -1, 10);
	/* a idle for 5 minutes while b waits: a gives its name up (its
	 * series end after this scrape), b takes it. */
	scrape(as, 8, 10, 4 * min, 2, -1, 16);
	scrape(as, 8, 10, 9 * min, 2, -1, 16);
	scrape(as, 8, 12, 10 * min, -1, 0, 18);
	scrape(as, 9, 15, 11 * min, -1, 3, 19);
	appseries_free(as);

	/* 0: no per-app families at all. */
	struct appseries_req rq;
	CU_ASSERT_TRUE(appseries_req_init(NULL, &rq));
	CU_ASSERT_FALSE(rq.active);
	appseries_render(NULL, &rq, NULL, 0, NULL, NULL, 0);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("admin", NULL, NULL);
	UNIT_TEST(s, test_json_string);
	UNIT_TEST(s, test_json_null_is_empty);
	UNIT_TEST(s, test_app_series_guard);
}
