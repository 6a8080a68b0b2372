/*
 * Per-client-address limits (node/limits.c): address keys (IPv6 by /64,
 * IPv4-mapped as IPv4), connection counting and its two thresholds, the
 * token bucket's arithmetic and Retry-After, and the table's bounds:
 * least-recently-used eviction, pinned entries, a fixed size under a
 * flood of addresses.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "node/limits.h"
#include "tests/lib/unit.h"

static struct limits_key key(const char *ip)
{
	struct limits_key k;

	CU_ASSERT_FATAL(limits_key_parse(ip, &k));
	return k;
}

static struct limits_key key_n(unsigned n)
{
	char ip[32];

	snprintf(ip, sizeof(ip), "10.%u.%u.%u", (n >> 16) & 255, (n >> 8) & 255, n & 255);
	return key(ip);
}

static void test_keys(void)
{
	struct limits_key a, b;

	a = key("2001:db8:1:2::1");
	b = key("2001:db8:1:2:ffff:ffff:ffff:ffff");
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);   /* same /64 */
	b = key("2001:db8:1:3::1");
	CU_ASSERT_NOT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
	a = key("192.0.2.7");
	b = key("::ffff:192.0.2.7");
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);   /* dual-stack listener */
	b = key("192.0.2.8");
	CU_ASSERT_NOT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
	CU_ASSERT_FALSE(limits_key_parse("unknown", &a));
	CU_ASSERT_FALSE(limits_key_parse("", &a));
	CU_ASSERT_FALSE(limits_key_parse("1.2.3.4.5", &a));
}

static void test_connections(void)
{
	struct limits *l = limits_new(1024);
	struct limits_key k = key("127.0.0.1"), other = key("127.0.0.2");
	struct limits_entry *e[6], *o;
	struct limits_stats st;
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	/* Off: nothing is tracked. */
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1000, &e[0]), LIMITS_OK);
	CU_ASSERT_PTR_NULL(e[0]);
	limits_configure(l, 2, 0, 0);
	CU_ASSERT(limits_enabled(l));
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1000, &e[0]), LIMITS_OK);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1001, &e[1]), LIMITS_OK);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1002, &e[2]), LIMITS_OVER);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1003, &e[3]), LIMITS_OVER);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1004, &e[4]), LIMITS_REFUSE);
	CU_ASSERT_PTR_NULL(e[4]);
	for (i = 0; i < 4; i++)
		CU_ASSERT_PTR_EQUAL(e[i], e[0]);
	/* Another address has its own count. */
	CU_ASSERT_EQUAL(limits_conn_open(l, &other, 1005, &o), LIMITS_OK);
	CU_ASSERT_PTR_NOT_EQUAL(o, e[0]);
	/* Closing gives room back. */
	limits_conn_close(l, e[3]);
	limits_conn_close(l, e[2]);
	limits_conn_close(l, e[1]);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1006, &e[5]), LIMITS_OK);
	limits_get_stats(l, &st);
	CU_ASSERT_EQUAL(st.rejected_conns, 2);
	CU_ASSERT_EQUAL(st.refused_conns, 1);
	CU_ASSERT_EQUAL(st.tracked, 2);
	/* A reload that raises the limit applies to the next connection. */
	limits_configure(l, 10, 0, 0);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1007, &e[1]), LIMITS_OK);
	limits_free(l);
}

static void test_bucket(void)
{
	struct limits *l = limits_new(64);
	struct limits_key k = key("198.51.100.1");
	struct limits_entry *e;
	unsigned ra, i, ok;

	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	limits_configure(l, 0, 10, 5);   /* 10/s, burst 5 */
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1000, &e), LIMITS_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	for (i = 0; i < 5; i++)
		CU_ASSERT(limits_request(l, e, 1000, &ra));
	CU_ASSERT_FALSE(limits_request(l, e, 1000, &ra));
	CU_ASSERT_EQUAL(ra, 1);
	/* 100 ms earn one request at 10/s, 99 ms do not. */
	CU_ASSERT_FALSE(limits_request(l, e, 1099, &ra));
	CU_ASSERT(limits_request(l, e, 1100, &ra));
	CU_ASSERT_FALSE(limits_request(l, e, 1100, &ra));
	/* A long pause refills to the burst, not beyond. */
	for (ok = 0, i = 0; i < 20; i++)
		ok += limits_request(l, e, 600000, &ra);
	CU_ASSERT_EQUAL(ok, 5);
	/* Steady state: 10 per second over 10 s, one every 100 ms. */
	for (ok = 0, i = 0; i < 1000; i++)
		ok += limits_request(l, e, 600000 + 10 * (i + 1), &ra);
	CU_ASSERT_EQUAL(ok, 100);
	/* Burst 0 means the rate; rate 0 means off. */
	limits_configure(l, 0, 3, 0);
	for (ok = 0, i = 0; i < 10; i++)
		ok += limits_request(l, e, 900000, &ra);
	CU_ASSERT_EQUAL(ok, 3);
	limits_configure(l, 0, 0, 0);
	CU_ASSERT(limits_request(l, e, 900000, &ra));
	CU_ASSERT(limits_request(l, NULL, 900000, &ra));   /* untracked */
	/* Rate 1 per second: the wait is under a second, said as 1. */
	limits_configure(l, 0, 1, 1);
	CU_ASSERT(limits_request(l, e, 2000000, &ra));
	CU_ASSERT_FALSE(limits_request(l, e, 2000400, &ra));
	CU_ASSERT_EQUAL(ra, 1);
	CU_ASSERT(limits_request(l, e, 2001000, &ra));
	limits_free(l);
}

static void test_eviction(void)
{
	/* One bucket: every address lands in the same LIMITS_WAYS entries. */
	struct limits *l = limits_new(LIMITS_WAYS);
	struct limits_entry *e[LIMITS_WAYS + 1], *x;
	struct limits_key k;
	struct limits_stats st;
	unsigned i, ra;

	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	limits_configure(l, 0, 1, 1);
	for (i = 0; i < LIMITS_WAYS; i++) {
		k = key_n(i);
		CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1000 + i, &e[i]), LIMITS_OK);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e[i]);
		CU_ASSERT(limits_request(l, e[i], 1000 + i, &ra));   /* bucket now empty */
		limits_conn_close(l, e[i]);
	}
	/* Address 0 used again: address 1 is now the least recently used. */
	k = key_n(0);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1100, &x), LIMITS_OK);
	CU_ASSERT_PTR_EQUAL(x, e[0]);
	CU_ASSERT_FALSE(limits_request(l, x, 1100, &ra));   /* remembered */
	limits_conn_close(l, x);
	k = key_n(100);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1200, &x), LIMITS_OK);
	CU_ASSERT_PTR_EQUAL(x, e[1]);
	CU_ASSERT(limits_request(l, x, 1200, &ra));         /* a fresh bucket */
	limits_get_stats(l, &st);
	CU_ASSERT_EQUAL(st.evictions, 1);
	CU_ASSERT_EQUAL(st.tracked, LIMITS_WAYS);
	/* Address 1 comes back: it evicts another, and starts over. */
	limits_conn_close(l, x);
	k = key_n(1);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1300, &x), LIMITS_OK);
	CU_ASSERT_PTR_EQUAL(x, e[2]);
	limits_conn_close(l, x);
	limits_free(l);
}

static void test_pinned(void)
{
	struct limits *l = limits_new(LIMITS_WAYS);
	struct limits_entry *e[LIMITS_WAYS], *x;
	struct limits_key k;
	struct limits_stats st;
	unsigned i, ra;

	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	limits_configure(l, 1, 1, 1);
	for (i = 0; i < LIMITS_WAYS; i++) {
		k = key_n(i);
		CU_ASSERT_EQUAL(limits_conn_open(l, &k, 1000 + i, &e[i]), LIMITS_OK);
	}
	/* Every entry holds a connection: a new address is not tracked, and
	 * no open connection loses its count. */
	k = key_n(500);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 2000, &x), LIMITS_OK);
	CU_ASSERT_PTR_NULL(x);
	CU_ASSERT(limits_request(l, x, 2000, &ra));
	limits_get_stats(l, &st);
	CU_ASSERT_EQUAL(st.untracked, 1);
	CU_ASSERT_EQUAL(st.evictions, 0);
	for (i = 0; i < LIMITS_WAYS; i++) {
		k = key_n(i);
		CU_ASSERT_EQUAL(limits_conn_open(l, &k, 3000, &x), LIMITS_OVER);
		CU_ASSERT_PTR_EQUAL(x, e[i]);
		limits_conn_close(l, x);
	}
	/* One closes: its entry may go to the newcomer. */
	limits_conn_close(l, e[3]);
	k = key_n(500);
	CU_ASSERT_EQUAL(limits_conn_open(l, &k, 4000, &x), LIMITS_OK);
	CU_ASSERT_PTR_EQUAL(x, e[3]);
	limits_free(l);
}

static void test_bounded(void)
{
	struct limits *l = limits_new(1000);   /* rounds up to 1024 */
	struct limits_stats st;
	struct limits_entry *e;
	struct limits_key k;
	unsigned i, held = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	limits_configure(l, 4, 100, 0);
	limits_get_stats(l, &st);
	CU_ASSERT_EQUAL(st.size, 1024);
	/* 200,000 addresses, one connection each, opened and closed: the
	 * table never holds more than its size. */
	for (i = 0; i < 200000; i++) {
		k = key_n(i);
		CU_ASSERT_EQUAL_FATAL(limits_conn_open(l, &k, 1000 + i, &e), LIMITS_OK);
		limits_conn_close(l, e);
	}
	limits_get_stats(l, &st);
	CU_ASSERT(st.tracked <= 1024);
	CU_ASSERT(st.tracked > 900);   /* the keyed hash spreads them */
	CU_ASSERT_EQUAL(st.evictions + st.tracked, 200000);
	CU_ASSERT_EQUAL(st.untracked, 0);
	/* With 1024 connections held (as many as entries), most addresses
	 * are tracked and none is double-counted. */
	for (i = 0; i < 1024; i++) {
		k = key_n(1000000 + i);
		CU_ASSERT_EQUAL(limits_conn_open(l, &k, 300000, &e), LIMITS_OK);
		held += e != NULL;
	}
	limits_get_stats(l, &st);
	CU_ASSERT_EQUAL(held + st.untracked, 1024);
	CU_ASSERT(st.tracked <= 1024);
	limits_free(l);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("limits", NULL, NULL);

	UNIT_TEST(s, test_keys);
	UNIT_TEST(s, test_connections);
	UNIT_TEST(s, test_bucket);
	UNIT_TEST(s, test_eviction);
	UNIT_TEST(s, test_pinned);
	UNIT_TEST(s, test_bounded);
}
