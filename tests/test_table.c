/*
 * Table suite: lookups (exact, wildcard one label deep), copy-on-write
 * snapshots that share unchanged apps, and digests that depend on content
 * only, not on the order changes arrived in.
 */
#include "config.h"

#include <string.h>

#include "registry/table.h"
#include "tests/lib/unit.h"

static struct route_app *make_app(const char *domain, int n, int port0)
{
	struct route_app *a = route_app_new(domain, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	for (int i = n - 1; i >= 0; i--) {   /* reverse order: seal must sort */
		record_instance r = ZKROUTER__INSTANCE__INIT;
		char id[32];
		r.host = "127.0.0.1";
		r.has_port = 1;
		r.port = (uint32_t)(port0 + i);
		snprintf(id, sizeof(id), "127.0.0.1:%d", port0 + i);
		CU_ASSERT_TRUE(route_app_add_instance(a, id, &r));
	}
	route_app_seal(a);
	return a;
}

static struct route_table *with(struct route_table *t, struct route_app *a)
{
	struct route_table *n = route_table_with_app(t, a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	route_table_unref(t);
	return n;
}

static struct route_app *match(const struct route_table *t, const char *host)
{
	return route_table_match(t, host, strlen(host));
}

static void test_lookup(void)
{
	struct route_table *t = route_table_new();
	t = with(t, make_app("example.com", 1, 1000));
	t = with(t, make_app("*.example.com", 1, 2000));
	t = with(t, make_app("api.example.com", 2, 3000));
	t = with(t, make_app("b.localhost", 1, 4000));
	CU_ASSERT_EQUAL(t->n_apps, 4);
	for (size_t i = 1; i < t->n_apps; i++)
		CU_ASSERT(strcmp(t->apps[i - 1]->domain, t->apps[i]->domain) < 0);

	struct {
		const char *host;
		const char *want;
	} cases[] = {
		{ "example.com", "example.com" },
		{ "api.example.com", "api.example.com" },   /* exact beats wildcard */
		{ "www.example.com", "*.example.com" },
		{ "a.b.example.com", NULL },                 /* one label only */
		{ "xexample.com", NULL },
		{ "com", NULL },
		{ "b.localhost", "b.localhost" },
		{ "localhost", NULL },
		{ ".example.com", NULL },
		{ "*.example.com", "*.example.com" },
		{ "", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route_app *a = match(t, cases[i].host);
		if (cases[i].want == NULL) {
			CU_ASSERT_PTR_NULL(a);
		} else if (a == NULL) {
			CU_FAIL("expected a match");
		} else {
			CU_ASSERT_STRING_EQUAL(a->domain, cases[i].want);
		}
	}
	/* The length bounds the key: a prefix of a domain does not match it. */
	CU_ASSERT_PTR_NULL(route_table_find(t, "example.co", 10));
	CU_ASSERT_PTR_NOT_NULL(route_table_find(t, "example.com.extra", 11));

	struct route_app *api = match(t, "api.example.com");
	CU_ASSERT_EQUAL_FATAL(api->n_instances, 2);
	CU_ASSERT_STRING_EQUAL(api->instances[0].id, "127.0.0.1:3000");
	CU_ASSERT_EQUAL(api->instances[1].port, 3001);
	CU_ASSERT_EQUAL(api->instances[0].weight, 100);
	route_table_unref(t);
}

static void test_snapshots_share_and_survive(void)
{
	struct route_table *t1 = route_table_new();
	t1 = with(t1, make_app("a.test", 1, 1000));
	t1 = with(t1, make_app("b.test", 1, 2000));
	uint64_t g1 = t1->generation;

	/* A reader holding t1 and one of its apps keeps both valid. */
	struct route_app *held = route_app_ref(match(t1, "a.test"));
	struct route_table *t2 = route_table_with_app(t1, make_app("a.test", 3, 5000));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t2);
	CU_ASSERT_EQUAL(t2->generation, g1 + 1);
	CU_ASSERT_PTR_EQUAL(match(t1, "b.test"), match(t2, "b.test"));   /* shared */
	CU_ASSERT_NOT_EQUAL(match(t1, "a.test"), match(t2, "a.test"));
	CU_ASSERT_EQUAL(match(t2, "a.test")->n_instances, 3);
	route_table_unref(t1);
	CU_ASSERT_EQUAL(held->n_instances, 1);
	CU_ASSERT_EQUAL(held->instances[0].port, 1000);
	route_app_unref(held);

	struct route_table *t3 = route_table_without_app(t2, "a.test");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t3);
	CU_ASSERT_PTR_NULL(match(t3, "a.test"));
	CU_ASSERT_PTR_NOT_NULL(match(t2, "a.test"));
	CU_ASSERT_EQUAL(t3->n_apps, 1);
	struct route_table *t4 = route_table_without_app(t3, "missing.test");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t4);
	CU_ASSERT_EQUAL(t4->n_apps, 1);
	CU_ASSERT_STRING_EQUAL(t4->digest_hex, t3->digest_hex);
	route_table_unref(t2);
	route_table_unref(t3);
	route_table_unref(t4);
}

static void test_digest_is_content_only(void)
{
	/* Same content reached in two different orders, with a detour. */
	struct route_table *x = route_table_new();
	x = with(x, make_app("a.test", 2, 1000));
	x = with(x, make_app("b.test", 1, 2000));
	x = with(x, make_app("c.test", 3, 3000));

	struct route_table *y = route_table_new();
	y = with(y, make_app("c.test", 1, 9000));
	y = with(y, make_app("b.test", 1, 2000));
	y = with(y, make_app("c.test", 3, 3000));
	y = with(y, make_app("zz.test", 1, 1));
	struct route_table *y2 = route_table_without_app(y, "zz.test");
	route_table_unref(y);
	y = with(y2, make_app("a.test", 2, 1000));

	CU_ASSERT_NOT_EQUAL(x->generation, y->generation);
	CU_ASSERT_STRING_EQUAL(x->digest_hex, y->digest_hex);
	CU_ASSERT_EQUAL(strlen(x->digest_hex), ROUTE_DIGEST_HEX_LEN);

	/* Any change of content changes the digest. */
	struct route_table *z = route_table_with_app(x, make_app("a.test", 2, 1001));
	CU_ASSERT_STRING_NOT_EQUAL(z->digest_hex, x->digest_hex);
	route_table_unref(z);

	record_app_config cfg = ZKROUTER__APP_CONFIG__INIT;
	cfg.has_balance = 1;
	cfg.balance = ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN;
	struct route_app *rr = route_app_new("a.test", &cfg);
	route_app_seal(rr);
	struct route_app *plain = route_app_new("a.test", NULL);
	route_app_seal(plain);
	CU_ASSERT(memcmp(rr->digest, plain->digest, ROUTE_DIGEST_LEN) != 0);
	CU_ASSERT_EQUAL(rr->config.balance, ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN);
	CU_ASSERT_EQUAL(plain->config.retries, -1);
	route_app_unref(rr);

	/* The concurrency cap changes the digest when set; unset, the digest
	 * stays what routers without the field compute (it is not hashed). */
	record_app_config capped = ZKROUTER__APP_CONFIG__INIT;
	capped.has_max_concurrent_requests = 1;
	capped.max_concurrent_requests = 10;
	struct route_app *cap = route_app_new("a.test", &capped);
	route_app_seal(cap);
	CU_ASSERT_EQUAL(cap->config.max_concurrent_requests, 10);
	CU_ASSERT(memcmp(cap->digest, plain->digest, ROUTE_DIGEST_LEN) != 0);
	route_app_unref(cap);
	capped.max_concurrent_requests = 0;   /* explicit 0 is the default */
	cap = route_app_new("a.test", &capped);
	route_app_seal(cap);
	CU_ASSERT(memcmp(cap->digest, plain->digest, ROUTE_DIGEST_LEN) == 0);
	route_app_unref(cap);

	/* backend_protocol likewise: h2c changes the digest, an explicit
	 * http1 is the default and leaves it as routers without the field
	 * compute it. */
	record_app_config proto = ZKROUTER__APP_CONFIG__INIT;
	proto.has_backend_protocol = 1;
	proto.backend_protocol = ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C;
	struct route_app *h2c = route_app_new("a.test", &proto);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h2c);
	route_app_seal(h2c);
	CU_ASSERT_TRUE(h2c->config.backend_h2c);
	CU_ASSERT_FALSE(plain->config.backend_h2c);
	CU_ASSERT(memcmp(h2c->digest, plain->digest, ROUTE_DIGEST_LEN) != 0);
	route_app_unref(h2c);
	proto.backend_protocol = ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__HTTP1;
	h2c = route_app_new("a.test", &proto);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h2c);
	route_app_seal(h2c);
	CU_ASSERT_FALSE(h2c->config.backend_h2c);
	CU_ASSERT(memcmp(h2c->digest, plain->digest, ROUTE_DIGEST_LEN) == 0);
	route_app_unref(h2c);
	route_app_unref(plain);

	struct route_table *e1 = route_table_new(), *e2 = route_table_new();
	CU_ASSERT_STRING_EQUAL(e1->digest_hex, e2->digest_hex);
	CU_ASSERT_STRING_NOT_EQUAL(e1->digest_hex, x->digest_hex);
	route_table_unref(e1);
	route_table_unref(e2);
	route_table_unref(x);
	route_table_unref(y);
}

static void test_many_apps(void)
{
	struct route_table *t = route_table_new();
	char d[64];
	for (int i = 0; i < 2000; i++) {
		snprintf(d, sizeof(d), "app%d.test", (i * 7919) % 2000);
		t = with(t, make_app(d, 1, 1000 + i));
	}
	CU_ASSERT_EQUAL(t->n_apps, 2000);
	for (int i = 0; i < 2000; i++) {
		snprintf(d, sizeof(d), "app%d.test", i);
		struct route_app *a = match(t, d);
		CU_ASSERT_PTR_NOT_NULL(a);
		if (a != NULL) {
			CU_ASSERT_STRING_EQUAL(a->domain, d);
		}
	}
	route_table_unref(t);
}

static void test_from_apps(void)
{
	/* A whole table at once equals the same apps inserted one by one. */
	struct route_table *inc = route_table_new();
	struct route_app *apps[3];
	const char *domains[] = { "a.test", "b.test", "c.test" };
	for (int i = 0; i < 3; i++) {
		apps[i] = make_app(domains[i], i + 1, 1000 * (i + 1));
		inc = with(inc, route_app_ref(apps[i]));
	}
	struct route_table *bulk = route_table_from_apps(apps, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bulk);
	CU_ASSERT_EQUAL(bulk->n_apps, 3);
	CU_ASSERT_EQUAL(bulk->generation, 0);
	CU_ASSERT_STRING_EQUAL(bulk->digest_hex, inc->digest_hex);
	CU_ASSERT_PTR_EQUAL(match(bulk, "b.test"), match(inc, "b.test"));

	/* ... and later changes to it behave like changes to any table. */
	struct route_table *next = route_table_without_app(bulk, "b.test");
	struct route_table *inc2 = route_table_without_app(inc, "b.test");
	CU_ASSERT_STRING_EQUAL(next->digest_hex, inc2->digest_hex);
	route_table_unref(next);
	route_table_unref(inc2);
	route_table_unref(bulk);
	route_table_unref(inc);

	/* Out of order or duplicate domains: refused, references released. */
	struct route_app *bad[] = { make_app("b.test", 1, 1), make_app("a.test", 1, 2) };
	CU_ASSERT_PTR_NULL(route_table_from_apps(bad, 2));
	struct route_app *dup[] = { make_app("a.test", 1, 1), make_app("a.test", 1, 2) };
	CU_ASSERT_PTR_NULL(route_table_from_apps(dup, 2));

	struct route_table *empty = route_table_from_apps(NULL, 0);
	struct route_table *fresh = route_table_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(empty);
	CU_ASSERT_STRING_EQUAL(empty->digest_hex, fresh->digest_hex);
	route_table_unref(empty);
	route_table_unref(fresh);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("table", NULL, NULL);
	UNIT_TEST(s, test_lookup);
	UNIT_TEST(s, test_snapshots_share_and_survive);
	UNIT_TEST(s, test_digest_is_content_only);
	UNIT_TEST(s, test_many_apps);
	UNIT_TEST(s, test_from_apps);
}
