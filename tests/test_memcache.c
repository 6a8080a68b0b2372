/*
 * The workers' block cache (node/mem-cache.c): blocks freed on a thread
 * with a cache serve that thread's next requests of their class, come
 * back zeroed through calloc, are given back to malloc by the janitor's
 * ticks (what a whole tick did not use) and at the thread's end, and are
 * bounded; a thread without a cache goes straight to malloc. In a build
 * without the cache (AddressSanitizer's) every call is malloc's.
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/mem-cache.h"
#include "tests/lib/unit.h"

#define N 20

/* Without a cache on the thread, nothing is kept. */
static void test_no_cache(void)
{
	void *b[N];

	for (int i = 0; i < N; i++)
		CU_ASSERT_PTR_NOT_NULL_FATAL(b[i] = memc_malloc(152));
	for (int i = 0; i < N; i++)
		memc_free(b[i]);
	CU_ASSERT_EQUAL(memc_tick(), 0);
	CU_ASSERT_EQUAL(memc_tick(), 0);
}

/* Freed blocks come back, last freed first, for any size of their class
 * (152 and 150 share one); a 1030-byte block serves libevent's 1024. */
static void test_reuse(void)
{
	void *b[N], *big;

	if (!memc_available())
		return;
	memc_thread_start();
	for (int i = 0; i < N; i++)
		CU_ASSERT_PTR_NOT_NULL_FATAL(b[i] = memc_malloc(152));
	for (int i = 0; i < N; i++)
		memc_free(b[i]);
	for (int i = N - 1; i >= 0; i--) {
		void *p = memc_malloc(i % 2 ? 152 : 150);

		CU_ASSERT_PTR_EQUAL(p, b[i]);
		b[i] = p;
	}
	for (int i = 0; i < N; i++)
		memc_free(b[i]);
	big = malloc(1030);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memc_free(big);
	CU_ASSERT_PTR_EQUAL(memc_malloc(1024), big);
	memc_free(big);
	memc_thread_end();
}

/* calloc from the cache is zeroed, and realloc keeps the bytes. */
static void test_calloc_realloc(void)
{
	unsigned char *p, *q;

	memc_thread_start();
	p = memc_malloc(200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 0xa5, 200);
	memc_free(p);
	q = memc_calloc(10, 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	if (memc_available())
		CU_ASSERT_PTR_EQUAL(q, p);
	for (int i = 0; i < 200; i++)
		CU_ASSERT_EQUAL_FATAL(q[i], 0);
	memset(q, 7, 200);
	q = memc_realloc(q, 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(q[0], 7);
	CU_ASSERT_EQUAL(q[199], 7);
	memc_free(q);
	CU_ASSERT_PTR_NULL(memc_calloc(SIZE_MAX / 2, 4));
	memc_thread_end();
}

/* A tick gives back what the whole last tick did not use: blocks freed
 * after a tick stay one more, then go; those the thread took again stay.
 * (72 bytes: a size glibc gives exactly, as do the sanitizers' allocators,
 * so that a block freed is in the class its size asks for.) */
static void test_ticks(void)
{
	void *b[N];

	if (!memc_available())
		return;
	memc_thread_start();
	CU_ASSERT_EQUAL(memc_tick(), 0);
	for (int i = 0; i < N; i++)
		CU_ASSERT_PTR_NOT_NULL_FATAL(b[i] = memc_malloc(72));
	for (int i = 0; i < N; i++)
		memc_free(b[i]);
	CU_ASSERT_EQUAL(memc_tick(), 0);     /* freed during that tick */
	for (int i = 0; i < 5; i++)
		b[i] = memc_malloc(72);          /* 15 left: the low mark */
	for (int i = 0; i < 5; i++)
		memc_free(b[i]);
	CU_ASSERT_EQUAL(memc_tick(), 15);
	CU_ASSERT_EQUAL(memc_tick(), 5);
	CU_ASSERT_EQUAL(memc_tick(), 0);
	memc_thread_end();
}

/* At most 1 MB is kept: 1,500 blocks of 1 KB freed, 1,024 kept. */
static void test_bound(void)
{
	enum { M = 1500 };
	void **b = calloc(M, sizeof(*b));

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	if (!memc_available()) {
		free(b);
		return;
	}
	memc_thread_start();
	for (int i = 0; i < M; i++)
		CU_ASSERT_PTR_NOT_NULL_FATAL(b[i] = memc_malloc(1024));
	for (int i = 0; i < M; i++)
		memc_free(b[i]);
	CU_ASSERT_EQUAL(memc_tick(), 0);
	CU_ASSERT_EQUAL(memc_tick(), 1024);
	memc_thread_end();
	free(b);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("memcache", NULL, NULL);
	UNIT_TEST(s, test_no_cache);
	UNIT_TEST(s, test_reuse);
	UNIT_TEST(s, test_calloc_realloc);
	UNIT_TEST(s, test_ticks);
	UNIT_TEST(s, test_bound);
}
