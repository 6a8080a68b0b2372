/*
 * A worker thread's cache of small heap blocks, in front of malloc for
 * libevent (its evbuffer chains of 1, 2 and 4 KB, its evbuffers) and
 * nghttp2 (its queued frames, streams and header entries).
 *
 * Why: a busy worker makes and frees about ten such blocks per HTTP/2
 * request, in bursts (every stream of a read, then every response of a
 * turn). glibc's per-thread cache keeps 7 blocks of a size, so past the
 * seventh each call takes malloc's slow path through its bins (and, with
 * several workers sharing the one arena, its lock). Here a worker keeps
 * up to MEMC_MAX_BYTES of the blocks it freed, by size class, and its
 * memory janitor gives back every second the blocks that second did not
 * use: an idle worker holds none.
 *
 * The blocks are malloc's own, classed by malloc_usable_size, so nothing
 * here needs a header: libevent hands some of its buffers to callers who
 * free() them, and a block freed here may have come from plain malloc.
 * Threads that did not start a cache (the control thread) go straight to
 * malloc. Under AddressSanitizer there is no cache, so that its
 * quarantine sees every use after free.
 */
#include <config.h>

#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/mem-cache.h"

#if defined(__SANITIZE_ADDRESS__)
#define MEMC_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEMC_DISABLED 1
#endif
#endif

/* Small classes: class c (1..32) holds blocks of at least 16c + 8 usable
 * bytes (glibc's sizes: 24, 40, ... 520). Big classes: libevent's chain
 * sizes, 1024 << k, for requests at most MEMC_BIG_SLACK under them. */
#define MEMC_SMALL_MAX 520
#define MEMC_SMALL_N 33
#define MEMC_BIG_N 3
#define MEMC_BIG_SLACK 64
#define MEMC_CLASSES (MEMC_SMALL_N + MEMC_BIG_N)
/* The most a worker keeps between two ticks. */
#define MEMC_MAX_BYTES (1024u * 1024)

struct memc_class {
	void *head;                /* free blocks, linked through their first word */
	unsigned n;
	unsigned low;              /* the fewest held since the last tick */
};

static _Thread_local struct {
	bool on;
	size_t bytes;
	struct memc_class c[MEMC_CLASSES];
} memc;

static size_t class_bytes(int c)
{
	return c < MEMC_SMALL_N ? (size_t)c * 16 + 8 : (size_t)1024 << (c - MEMC_SMALL_N);
}

/* The class that serves a request of n bytes, or -1. */
static int class_of_size(size_t n)
{
	if (n <= MEMC_SMALL_MAX)
		return n <= 24 ? 1 : (int)((n - 8 + 15) / 16);
	for (int k = 0; k < MEMC_BIG_N; k++) {
		size_t b = (size_t)1024 << k;

		if (n <= b && n > b - MEMC_BIG_SLACK)
			return MEMC_SMALL_N + k;
	}
	return -1;
}

/* The class a block of that many usable bytes can join, or -1. */
static int class_of_block(size_t usable)
{
	if (usable < 24)
		return -1;
	if (usable <= MEMC_SMALL_MAX)
		return (int)((usable - 8) / 16);
	for (int k = 0; k < MEMC_BIG_N; k++) {
		size_t b = (size_t)1024 << k;

		if (usable >= b && usable < b + MEMC_BIG_SLACK)
			return MEMC_SMALL_N + k;
	}
	return -1;
}

static void *pop(size_t size)
{
	struct memc_class *k;
	void *p;
	int c;

	if (!memc.on || (c = class_of_size(size)) < 0 || memc.c[c].head == NULL)
		return NULL;
	k = &memc.c[c];
	p = k->head;
	memcpy(&k->head, p, sizeof(void *));
	if (--k->n < k->low)
		k->low = k->n;
	memc.bytes -= class_bytes(c);
	return p;
}

void *memc_malloc(size_t size)
{
	void *p = pop(size);

	return p != NULL ? p : malloc(size);
}

void *memc_calloc(size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	p = pop(n * size);
	if (p == NULL)
		return calloc(n, size);
	memset(p, 0, n * size);
	return p;
}

void *memc_realloc(void *ptr, size_t size)
{
	return ptr == NULL ? memc_malloc(size) : realloc(ptr, size);
}

void memc_free(void *ptr)
{
	struct memc_class *k;
	int c;

	if (ptr == NULL)
		return;
	if (!memc.on || memc.bytes >= MEMC_MAX_BYTES ||
	    (c = class_of_block(malloc_usable_size(ptr))) < 0) {
		free(ptr);
		return;
	}
	k = &memc.c[c];
	memcpy(ptr, &k->head, sizeof(void *));
	k->head = ptr;
	k->n++;
	memc.bytes += class_bytes(c);
}

/* Gives back up to n blocks of class c. */
static size_t give_back(int c, unsigned n)
{
	struct memc_class *k = &memc.c[c];
	size_t done = 0;

	while (n-- > 0 && k->head != NULL) {
		void *p = k->head;

		memcpy(&k->head, p, sizeof(void *));
		k->n--;
		memc.bytes -= class_bytes(c);
		free(p);
		done++;
	}
	return done;
}

size_t memc_tick(void)
{
	size_t done = 0;

	for (int c = 0; c < MEMC_CLASSES; c++) {
		done += give_back(c, memc.c[c].low);
		memc.c[c].low = memc.c[c].n;
	}
	return done;
}

bool memc_available(void)
{
#ifdef MEMC_DISABLED
	return false;
#else
	return true;
#endif
}

void memc_thread_start(void)
{
#ifndef MEMC_DISABLED
	memc.on = true;
#endif
}

void memc_thread_end(void)
{
	for (int c = 0; c < MEMC_CLASSES; c++) {
		give_back(c, memc.c[c].n);
		memc.c[c].low = 0;
	}
	memc.on = false;
}
