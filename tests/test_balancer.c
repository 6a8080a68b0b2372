/*
 * Balancer suite: each policy against real backend objects (node/backend.c)
 * - how evenly it spreads, how it follows weights and load, that ejected,
 * health-marked, draining, removed and already-tried instances are skipped,
 * that it fails open when every instance is ejected, and that consistent
 * hashing is sticky and moves only the keys of an instance that leaves.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "node/backend.h"
#include "node/balancer.h"
#include "registry/clock.h"
#include "registry/log.h"
#include "tests/lib/unit.h"

#define MAXB 8

static struct backend *bes[MAXB];
static size_t nb;
static uint64_t rng = 0x1234567887654321ull;

static void make(size_t n, const uint32_t *weights)
{
	size_t i;

	for (i = 0; i < nb; i++)
		backend_unref(bes[i]);
	nb = 0;
	for (i = 0; i < n; i++) {
		struct route_instance inst;
		char id[32];

		memset(&inst, 0, sizeof(inst));
		snprintf(id, sizeof(id), "i%zu", i);
		inst.id = id;
		inst.host = "127.0.0.1";
		inst.port = (uint16_t)(9000 + i);
		inst.weight = weights ? weights[i] : 100;
		bes[i] = backend_new("app.test", &inst, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(bes[i]);
		CU_ASSERT_FATAL(backend_routable(bes[i]));
	}
	nb = n;
}

static int cleanup(void)
{
	make(0, NULL);
	return 0;
}

static struct backend *pick(Zkrouter__AppConfig__Balance policy, struct backend **tried,
			    size_t n_tried, const char *key)
{
	struct balancer_args a;

	memset(&a, 0, sizeof(a));
	a.policy = policy;
	a.bes = bes;
	a.n = nb;
	a.tried = tried;
	a.n_tried = n_tried;
	if (key) {
		a.has_key = true;
		a.key_hash = balancer_hash_key(key, strlen(key));
	}
	a.now_ms = clock_now_ms();
	a.rng = &rng;
	return balancer_pick(&a);
}

static size_t index_of(const struct backend *b)
{
	size_t i;

	for (i = 0; i < nb; i++)
		if (bes[i] == b)
			return i;
	return MAXB;
}

#define P2C ZKROUTER__APP_CONFIG__BALANCE__LEAST_OUTSTANDING
#define RR ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN
#define HASH ZKROUTER__APP_CONFIG__BALANCE__HASH_HEADER

static void test_p2c_even(void)
{
	unsigned counts[MAXB] = {0};
	int i;

	make(4, NULL);
	for (i = 0; i < 40000; i++)
		counts[index_of(pick(P2C, NULL, 0, NULL))]++;
	for (i = 0; i < 4; i++)
		CU_ASSERT(counts[i] > 9000 && counts[i] < 11000);
}

static void test_p2c_least_loaded(void)
{
	unsigned counts[MAXB] = {0};
	int i;

	make(3, NULL);
	bes[0]->outstanding = 50;
	bes[1]->outstanding = 1;
	for (i = 0; i < 3000; i++)
		counts[index_of(pick(P2C, NULL, 0, NULL))]++;
	/* The loaded one never wins a draw of two distinct candidates. */
	CU_ASSERT_EQUAL(counts[0], 0);
	CU_ASSERT(counts[2] > counts[1]);
	bes[0]->outstanding = bes[1]->outstanding = 0;
}

static void test_p2c_weights(void)
{
	const uint32_t w[] = {100, 300};
	unsigned counts[MAXB] = {0};
	int i;

	make(2, w);
	/* With requests in flight in proportion to the weights, the choice
	 * keeps them there: per unit of weight both are equally loaded. */
	bes[0]->outstanding = 1;
	bes[1]->outstanding = 3;
	for (i = 0; i < 1000; i++) {
		struct backend *b = pick(P2C, NULL, 0, NULL);

		counts[index_of(b)]++;
	}
	CU_ASSERT(counts[1] > counts[0]);
	bes[0]->outstanding = bes[1]->outstanding = 0;
}

static void test_rr_smooth_weights(void)
{
	const uint32_t w[] = {5, 1, 1};
	char seq[8];
	int i;

	make(3, w);
	for (i = 0; i < 7; i++)
		seq[i] = (char)('a' + index_of(pick(RR, NULL, 0, NULL)));
	seq[7] = '\0';
	/* Nginx-style smooth weighted round-robin spreads the heavy one out. */
	CU_ASSERT_STRING_EQUAL(seq, "aabacaa");
}

static void test_rr_even(void)
{
	unsigned counts[MAXB] = {0};
	int i;

	make(3, NULL);
	for (i = 0; i < 300; i++)
		counts[index_of(pick(RR, NULL, 0, NULL))]++;
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(counts[i], 100);
}

static void test_ejection_backoff(void)
{
	uint64_t now = clock_now_ms();

	make(1, NULL);
	backend_record_failure(bes[0], now, 1000, 30000);
	CU_ASSERT_EQUAL(bes[0]->si->ejected_until_ms, now + 1000);
	backend_record_failure(bes[0], now, 1000, 30000);
	CU_ASSERT_EQUAL(bes[0]->si->ejected_until_ms, now + 2000);
	backend_record_failure(bes[0], now, 1000, 30000);
	CU_ASSERT_EQUAL(bes[0]->si->ejected_until_ms, now + 4000);
	for (int i = 0; i < 10; i++)
		backend_record_failure(bes[0], now, 1000, 30000);
	CU_ASSERT_EQUAL(bes[0]->si->ejected_until_ms, now + 30000);
	CU_ASSERT(backend_ejected(bes[0], now + 29999));
	CU_ASSERT(!backend_ejected(bes[0], now + 30000));
	backend_record_success(bes[0]);
	CU_ASSERT_EQUAL(bes[0]->si->consecutive_failures, 0);
	CU_ASSERT(!backend_ejected(bes[0], now));
}

static void test_ejected_skipped(void)
{
	Zkrouter__AppConfig__Balance pol[] = {P2C, RR, HASH};
	uint64_t now = clock_now_ms();
	size_t k;
	int i;

	make(3, NULL);
	backend_record_failure(bes[1], now, 60000, 60000);
	shared_instance_set_health(bes[2]->si, false);
	for (k = 0; k < 3; k++)
		for (i = 0; i < 200; i++) {
			char key[16];

			snprintf(key, sizeof(key), "k%d", i);
			CU_ASSERT_PTR_EQUAL(pick(pol[k], NULL, 0, key), bes[0]);
		}
}

static void test_fail_open(void)
{
	unsigned counts[MAXB] = {0};
	uint64_t now = clock_now_ms();
	int i;

	make(3, NULL);
	backend_record_failure(bes[0], now, 60000, 60000);
	backend_record_failure(bes[1], now, 60000, 60000);
	shared_instance_set_health(bes[2]->si, false);
	for (i = 0; i < 300; i++) {
		struct backend *b = pick(P2C, NULL, 0, NULL);

		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		counts[index_of(b)]++;
	}
	/* Every instance looks bad: all of them are tried rather than 503. */
	CU_ASSERT(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
	CU_ASSERT_PTR_NOT_NULL(pick(RR, NULL, 0, NULL));
	CU_ASSERT_PTR_NOT_NULL(pick(HASH, NULL, 0, "x"));
}

static void test_draining_excluded(void)
{
	uint64_t now = clock_now_ms();
	int i;

	make(3, NULL);
	bes[0]->draining = true;
	backend_retire(bes[1]);
	for (i = 0; i < 300; i++)
		CU_ASSERT_PTR_EQUAL(pick(i % 2 ? P2C : RR, NULL, 0, NULL), bes[2]);
	/* Fail-open never brings back draining or removed instances. */
	backend_record_failure(bes[2], now, 60000, 60000);
	CU_ASSERT_PTR_EQUAL(pick(P2C, NULL, 0, NULL), bes[2]);
	bes[2]->draining = true;
	CU_ASSERT_PTR_NULL(pick(P2C, NULL, 0, NULL));
	CU_ASSERT_PTR_NULL(pick(RR, NULL, 0, NULL));
	CU_ASSERT_PTR_NULL(pick(HASH, NULL, 0, "k"));
}

static void test_tried_excluded(void)
{
	struct backend *tried[2];
	int i;

	make(3, NULL);
	tried[0] = bes[0];
	tried[1] = bes[2];
	for (i = 0; i < 100; i++)
		CU_ASSERT_PTR_EQUAL(pick(P2C, tried, 2, NULL), bes[1]);
	tried[1] = bes[1];
	for (i = 0; i < 100; i++)
		CU_ASSERT_PTR_EQUAL(pick(HASH, tried, 2, "some-key"), bes[2]);
	make(1, NULL);
	tried[0] = bes[0];
	CU_ASSERT_PTR_NULL(pick(P2C, tried, 1, NULL));
}

static void test_hash_sticky_and_spread(void)
{
	unsigned counts[MAXB] = {0};
	int i, j;

	make(4, NULL);
	for (i = 0; i < 4000; i++) {
		char key[32];
		struct backend *b;

		snprintf(key, sizeof(key), "user-%d", i);
		b = pick(HASH, NULL, 0, key);
		counts[index_of(b)]++;
		for (j = 0; j < 3; j++)
			CU_ASSERT_PTR_EQUAL(pick(HASH, NULL, 0, key), b);
	}
	for (i = 0; i < 4; i++)
		CU_ASSERT(counts[i] > 800 && counts[i] < 1200);
}

static void test_hash_minimal_movement(void)
{
	size_t before[2000];
	unsigned moved = 0;
	int i;

	make(5, NULL);
	for (i = 0; i < 2000; i++) {
		char key[32];

		snprintf(key, sizeof(key), "session-%d", i);
		before[i] = index_of(pick(HASH, NULL, 0, key));
	}
	bes[3]->draining = true;   /* instance 3 leaves */
	for (i = 0; i < 2000; i++) {
		char key[32];
		size_t now;

		snprintf(key, sizeof(key), "session-%d", i);
		now = index_of(pick(HASH, NULL, 0, key));
		if (before[i] != 3) {
			CU_ASSERT_EQUAL(now, before[i]);   /* only its keys move */
		} else {
			moved++;
		}
		CU_ASSERT_NOT_EQUAL(now, 3);
	}
	CU_ASSERT(moved > 250 && moved < 550);
}

static void test_hash_weights(void)
{
	const uint32_t w[] = {300, 100};
	unsigned counts[MAXB] = {0};
	int i;

	make(2, w);
	for (i = 0; i < 4000; i++) {
		char key[32];

		snprintf(key, sizeof(key), "k%d", i);
		counts[index_of(pick(HASH, NULL, 0, key))]++;
	}
	CU_ASSERT(counts[0] > 2800 && counts[0] < 3200);
}

static void test_hash_no_key_spreads(void)
{
	unsigned counts[MAXB] = {0};
	int i;

	make(2, NULL);
	for (i = 0; i < 1000; i++)
		counts[index_of(pick(HASH, NULL, 0, NULL))]++;
	CU_ASSERT(counts[0] > 400 && counts[1] > 400);
}

static void test_max_outstanding(void)
{
	struct balancer_args a;
	int i;

	make(2, NULL);
	bes[0]->outstanding = 3;
	memset(&a, 0, sizeof(a));
	a.policy = RR;
	a.bes = bes;
	a.n = nb;
	a.now_ms = clock_now_ms();
	a.rng = &rng;
	a.max_outstanding = 3;
	for (i = 0; i < 20; i++)
		CU_ASSERT_PTR_EQUAL(balancer_pick(&a), bes[1]);
	bes[1]->outstanding = 3;
	CU_ASSERT_PTR_NULL(balancer_pick(&a));
	/* Not even failing open past the cap. */
	backend_record_failure(bes[0], a.now_ms, 60000, 60000);
	CU_ASSERT_PTR_NULL(balancer_pick(&a));
	a.max_outstanding = 0;
	CU_ASSERT_PTR_NOT_NULL(balancer_pick(&a));
	bes[0]->outstanding = bes[1]->outstanding = 0;
}

static void test_cookie_value(void)
{
	static const struct {
		const char *cookie, *name, *want;
	} cases[] = {
		{"sid=abc", "sid", "abc"},
		{"a=1; sid=abc; b=2", "sid", "abc"},
		{"a=1;sid=\"q v\"", "sid", "q v"},
		{"xsid=1; sid=2", "sid", "2"},
		{"sid=", "sid", ""},
		{"a=1; b=2", "sid", NULL},
		{"sidx=1", "sid", NULL},
		{"", "sid", NULL},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *v = NULL;
		size_t vlen = 0;
		bool ok = balancer_cookie_value(cases[i].cookie, strlen(cases[i].cookie), cases[i].name,
						&v, &vlen);

		CU_ASSERT_EQUAL(ok, cases[i].want != NULL);
		if (ok && cases[i].want) {
			CU_ASSERT_EQUAL(vlen, strlen(cases[i].want));
			CU_ASSERT_NSTRING_EQUAL(v, cases[i].want, vlen);
		}
	}
}

/* ---- runtime state across table snapshots ----------------------------- */

static struct route_app *app_of(const char *domain, const char *const *ids, const bool *draining,
				size_t n)
{
	struct route_app *a = route_app_new(domain, NULL);
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	for (i = 0; i < n; i++) {
		Zkrouter__Instance in = ZKROUTER__INSTANCE__INIT;
		char host[32];

		/* The address follows the id: same id, same endpoint. */
		snprintf(host, sizeof(host), "127.0.0.%d", ids[i][0] - 'a' + 1);
		in.host = host;
		in.has_port = 1;
		in.port = 8080;
		if (draining && draining[i]) {
			in.has_state = 1;
			in.state = ZKROUTER__INSTANCE__STATE__DRAINING;
		}
		CU_ASSERT_FATAL(route_app_add_instance(a, ids[i], &in));
	}
	route_app_seal(a);
	return a;
}

static struct route_table *with(struct route_table *old, struct route_app *a)
{
	struct route_table *t = route_table_with_app(old, a);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	route_table_unref(old);
	return t;
}

static void test_map_carries_state(void)
{
	static const char *const ids3[] = {"a", "b", "c"};
	static const char *const ids2[] = {"a", "c"};
	static const bool drain_c[] = {false, true};
	struct backend_map m;
	struct route_table *t0 = route_table_new(), *t1, *t2, *t3, *t4;
	struct app_state *s1, *s1other, *s2;
	struct backend *a1, *b1, *c1;

	backend_map_init(&m);
	t1 = with(route_table_new(), app_of("x.test", ids3, NULL, 3));
	t1 = with(t1, app_of("y.test", ids2, NULL, 2));
	CU_ASSERT_FATAL(backend_map_update(&m, t0, t1));
	s1 = backend_map_get(&m, route_table_find(t1, "x.test", 6));
	s1other = backend_map_get(&m, route_table_find(t1, "y.test", 6));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s1other);
	CU_ASSERT_EQUAL(s1->n, 3);
	a1 = s1->bes[0];
	b1 = s1->bes[1];
	c1 = s1->bes[2];
	a1->outstanding = 2;
	backend_record_failure(c1, clock_now_ms(), 60000, 60000);

	/* x.test loses "b" and "c" starts draining; y.test is untouched. */
	app_state_ref(s1);   /* a request in flight holds it */
	t2 = with(route_table_ref(t1), app_of("x.test", ids2, drain_c, 2));
	CU_ASSERT_FATAL(backend_map_update(&m, t1, t2));
	s2 = backend_map_get(&m, route_table_find(t2, "x.test", 6));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	CU_ASSERT_PTR_NOT_EQUAL(s2, s1);
	CU_ASSERT_PTR_EQUAL(backend_map_get(&m, route_table_find(t2, "y.test", 6)), s1other);
	CU_ASSERT_PTR_EQUAL(s2->bes[0], a1);          /* same runtime state */
	CU_ASSERT_EQUAL(s2->bes[0]->outstanding, 2);
	CU_ASSERT_PTR_EQUAL(s2->bes[1], c1);
	CU_ASSERT(c1->draining && backend_ejected(c1, clock_now_ms()));
	CU_ASSERT(!backend_routable(c1));
	CU_ASSERT(b1->removed && !backend_routable(b1));
	CU_ASSERT(!a1->removed && backend_routable(a1));
	/* The request that started on the old snapshot still sees its app. */
	CU_ASSERT_EQUAL(s1->n, 3);
	CU_ASSERT_PTR_EQUAL(s1->bes[1], b1);
	app_state_unref(s1);

	/* The app goes away: its backends are retired. */
	app_state_ref(s2);
	t3 = route_table_without_app(t2, "x.test");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t3);
	CU_ASSERT_FATAL(backend_map_update(&m, t2, t3));
	CU_ASSERT(a1->removed && c1->removed);
	CU_ASSERT_PTR_NULL(route_table_find(t3, "x.test", 6));
	app_state_unref(s2);

	/* ... and comes back with fresh state. */
	t4 = with(route_table_ref(t3), app_of("x.test", ids3, NULL, 3));
	CU_ASSERT_FATAL(backend_map_update(&m, t3, t4));
	s2 = backend_map_get(&m, route_table_find(t4, "x.test", 6));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	CU_ASSERT(backend_routable(s2->bes[0]) && s2->bes[0]->outstanding == 0);
	CU_ASSERT_PTR_NOT_NULL(app_state_find(s2, "b"));
	CU_ASSERT_PTR_NULL(app_state_find(s2, "zz"));

	backend_map_clear(&m);
	route_table_unref(t0);
	route_table_unref(t1);
	route_table_unref(t2);
	route_table_unref(t3);
	route_table_unref(t4);
}

/*
 * Eligibility changes under a pick: another worker ejects an instance, the
 * health checker marks one down, at any moment. A pick must still return
 * an instance that was eligible when looked at, never read past the set
 * (it once counted the eligible first, walked them again, and found none).
 */
static atomic_bool flipping;

static void *flip_health(void *arg)
{
	(void)arg;
	while (atomic_load(&flipping)) {
		shared_instance_set_health(bes[1]->si, false);
		shared_instance_set_health(bes[2]->si, false);
		shared_instance_set_health(bes[1]->si, true);
		shared_instance_set_health(bes[2]->si, true);
	}
	return NULL;
}

static void test_pick_while_health_changes(void)
{
	enum zkr_log_level was = zkr_log_level_now();
	Zkrouter__AppConfig__Balance pol[] = {P2C, RR, HASH};
	uint64_t deadline;
	unsigned long picks = 0;
	pthread_t t;
	size_t k;

	make(3, NULL);
	zkr_log_set_level(ZKR_LOG_WARN);   /* each flip logs at info */
	atomic_store(&flipping, true);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, flip_health, NULL), 0);
	deadline = clock_now_ms() + 1500;
	while (clock_now_ms() < deadline)
		for (k = 0; k < 3; k++) {
			struct backend *b = pick(pol[k], NULL, 0, picks % 2 ? "key" : NULL);

			CU_ASSERT_PTR_NOT_NULL(b);
			picks++;
		}
	atomic_store(&flipping, false);
	pthread_join(t, NULL);
	zkr_log_set_level(was);
	CU_ASSERT(picks > 1000);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("balancer", NULL, cleanup);
	CU_pSuite m = unit_suite("backend state across snapshots", NULL, NULL);

	UNIT_TEST(m, test_map_carries_state);

	UNIT_TEST(s, test_p2c_even);
	UNIT_TEST(s, test_p2c_least_loaded);
	UNIT_TEST(s, test_p2c_weights);
	UNIT_TEST(s, test_rr_smooth_weights);
	UNIT_TEST(s, test_rr_even);
	UNIT_TEST(s, test_ejection_backoff);
	UNIT_TEST(s, test_ejected_skipped);
	UNIT_TEST(s, test_fail_open);
	UNIT_TEST(s, test_draining_excluded);
	UNIT_TEST(s, test_tried_excluded);
	UNIT_TEST(s, test_hash_sticky_and_spread);
	UNIT_TEST(s, test_hash_minimal_movement);
	UNIT_TEST(s, test_hash_weights);
	UNIT_TEST(s, test_hash_no_key_spreads);
	UNIT_TEST(s, test_max_outstanding);
	UNIT_TEST(s, test_cookie_value);
	UNIT_TEST(s, test_pick_while_health_changes);
}
