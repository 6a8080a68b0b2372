/*
 * Per-client-address limits (see limits.h): the fixed-size table, its
 * keyed hash, connection counting and the request token buckets.
 */
#include <config.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node/limits.h"
#include "registry/hash.h"

/* A burst of at most this many requests: milli-tokens then fit 32 bits. */
#define LIMITS_BURST_MAX 1000000u
/* Past this much idle time every bucket is full again anyway
 * (LIMITS_BURST_MAX tokens at 1 per second, in ms). */
#define LIMITS_REFILL_CAP_MS (1000ull * LIMITS_BURST_MAX + 1)

/* Buckets are guarded by LIMITS_STRIPES locks (bucket i by lock
 * i % LIMITS_STRIPES), each on a cache line of its own: workers touching
 * different addresses rarely meet on a lock. */
#define LIMITS_STRIPES 64

struct limits_stripe {
	_Alignas(64) pthread_mutex_t m;
};

struct limits {
	struct limits_entry *e;
	size_t n_buckets;          /* power of two */
	struct hash_key key;       /* SipHash key, random per process */
	/* Set on SIGHUP while workers read them: each alone is consistent. */
	_Atomic unsigned max_conns, rate, burst;
	_Atomic uint64_t rejected_conns, refused_conns, rejected_reqs, evictions, untracked;
	_Atomic size_t tracked;
	size_t size;
	struct limits_stripe locks[LIMITS_STRIPES];
};

/* SipHash under the process's key: addresses a client picks cannot be
 * aimed at one bucket. */
static uint64_t key_hash(const struct limits *l, const struct limits_key *k)
{
	return hash_sip(&l->key, k->b, sizeof(k->b));
}

/* ---- the table ---------------------------------------------------------- */

struct limits *limits_new(size_t size)
{
	struct limits *l = NULL;

	/* The stripes' alignment (a cache line each) is more than malloc's. */
	if (posix_memalign((void **)&l, _Alignof(struct limits), sizeof(*l)) != 0)
		return NULL;
	memset(l, 0, sizeof(*l));
	l->n_buckets = 1;
	while (l->n_buckets * LIMITS_WAYS < size && l->n_buckets < ((size_t)1 << 40))
		l->n_buckets *= 2;
	/* calloc: the kernel hands out zero pages, so only the buckets that
	 * addresses reach cost resident memory. */
	l->e = calloc(l->n_buckets * LIMITS_WAYS, sizeof(*l->e));
	if (l->e == NULL) {
		free(l);
		return NULL;
	}
	hash_key_random(&l->key);
	l->size = l->n_buckets * LIMITS_WAYS;
	for (size_t i = 0; i < LIMITS_STRIPES; i++)
		pthread_mutex_init(&l->locks[i].m, NULL);
	return l;
}

void limits_free(struct limits *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < LIMITS_STRIPES; i++)
		pthread_mutex_destroy(&l->locks[i].m);
	free(l->e);
	free(l);
}

void limits_configure(struct limits *l, unsigned max_conns, unsigned rate, unsigned burst)
{
	burst = burst ? burst : rate;
	atomic_store_explicit(&l->max_conns, max_conns, memory_order_relaxed);
	atomic_store_explicit(&l->rate, rate, memory_order_relaxed);
	atomic_store_explicit(&l->burst, burst > LIMITS_BURST_MAX ? LIMITS_BURST_MAX : burst,
			      memory_order_relaxed);
}

bool limits_enabled(const struct limits *l)
{
	return atomic_load_explicit(&l->max_conns, memory_order_relaxed) > 0 ||
	       atomic_load_explicit(&l->rate, memory_order_relaxed) > 0;
}

static pthread_mutex_t *bucket_lock(struct limits *l, size_t bucket)
{
	return &l->locks[bucket % LIMITS_STRIPES].m;
}

bool limits_key_parse(const char *ip, struct limits_key *k)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct in_addr a4;
	struct in6_addr a6;

	memset(k, 0, sizeof(*k));
	/* IPv4 as its IPv4-mapped IPv6 form: one key space for both. */
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		memcpy(k->b, v4mapped, sizeof(v4mapped));
		memcpy(k->b + 12, &a4, 4);
		return true;
	}
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return false;
	if (memcmp(a6.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
		memcpy(k->b, a6.s6_addr, 16);   /* a dual-stack listener's IPv4 client */
		return true;
	}
	memcpy(k->b, a6.s6_addr, 8);         /* the /64; the rest stays zero */
	return true;
}

/* Adds the tokens earned since the entry was last touched (its
 * bucket's lock held). */
static void refill(const struct limits *l, unsigned rate, struct limits_entry *e, uint64_t now_ms)
{
	uint64_t cap = (uint64_t)atomic_load_explicit(&l->burst, memory_order_relaxed) * 1000;
	uint64_t t = e->milli_tokens;
	uint64_t dt = now_ms > e->stamp_ms ? now_ms - e->stamp_ms : 0;

	e->stamp_ms = now_ms ? now_ms : 1;
	/* With the rate off the bucket stays as it was (full for a new
	 * address), so turning the rate on by a reload starts from full. */
	if (rate == 0)
		return;
	if (dt > LIMITS_REFILL_CAP_MS)
		dt = LIMITS_REFILL_CAP_MS;
	/* `rate` requests per second are `rate` milli-tokens per ms. */
	t += dt * rate;
	e->milli_tokens = (uint32_t)(t < cap ? t : cap);
}

/* The entry of `k` in `bucket` (its lock held): found, free, or taken
 * from the least recently used address of its bucket that holds no
 * connection. NULL when every entry of the bucket is pinned. */
static struct limits_entry *lookup(struct limits *l, size_t bucket, const struct limits_key *k,
				   uint64_t now_ms, unsigned rate)
{
	struct limits_entry *b = &l->e[bucket * LIMITS_WAYS];
	struct limits_entry *free_e = NULL, *lru = NULL;
	size_t i;

	for (i = 0; i < LIMITS_WAYS; i++) {
		struct limits_entry *e = &b[i];

		if (e->stamp_ms == 0) {
			if (free_e == NULL)
				free_e = e;
			continue;
		}
		if (memcmp(&e->key, k, sizeof(*k)) == 0) {
			refill(l, rate, e, now_ms);
			return e;
		}
		if (e->conns == 0 && (lru == NULL || e->stamp_ms < lru->stamp_ms))
			lru = e;
	}
	if (free_e == NULL && lru == NULL) {
		atomic_fetch_add_explicit(&l->untracked, 1, memory_order_relaxed);
		return NULL;
	}
	if (free_e == NULL) {
		free_e = lru;
		atomic_fetch_add_explicit(&l->evictions, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&l->tracked, 1, memory_order_relaxed);
	}
	free_e->key = *k;
	free_e->conns = 0;
	/* A new address starts with a full bucket (refill clamps it). */
	free_e->milli_tokens = UINT32_MAX;
	free_e->stamp_ms = now_ms;
	refill(l, rate, free_e, now_ms);
	return free_e;
}

enum limits_verdict limits_conn_open(struct limits *l, const struct limits_key *k,
				     uint64_t now_ms, struct limits_entry **out)
{
	unsigned max_conns = atomic_load_explicit(&l->max_conns, memory_order_relaxed);
	unsigned rate = atomic_load_explicit(&l->rate, memory_order_relaxed);
	enum limits_verdict v = LIMITS_OK;
	struct limits_entry *e;
	pthread_mutex_t *lock;
	size_t bucket;

	*out = NULL;
	if (max_conns == 0 && rate == 0)
		return LIMITS_OK;   /* off: no hash, no lock */
	bucket = key_hash(l, k) & (l->n_buckets - 1);
	lock = bucket_lock(l, bucket);
	pthread_mutex_lock(lock);
	e = lookup(l, bucket, k, now_ms, rate);
	if (e == NULL)
		goto done;
	if (max_conns && e->conns >= 2 * (uint64_t)max_conns) {
		/* Answering each with a 429 would let one address hold
		 * descriptors without bound: past twice the limit, close. */
		atomic_fetch_add_explicit(&l->refused_conns, 1, memory_order_relaxed);
		v = LIMITS_REFUSE;
		goto done;
	}
	e->conns++;
	*out = e;
	if (max_conns && e->conns > max_conns) {
		atomic_fetch_add_explicit(&l->rejected_conns, 1, memory_order_relaxed);
		v = LIMITS_OVER;
	}
done:
	pthread_mutex_unlock(lock);
	return v;
}

void limits_conn_close(struct limits *l, struct limits_entry *e)
{
	pthread_mutex_t *lock;

	if (e == NULL)
		return;
	lock = bucket_lock(l, (size_t)(e - l->e) / LIMITS_WAYS);
	pthread_mutex_lock(lock);
	if (e->conns > 0)
		e->conns--;
	pthread_mutex_unlock(lock);
}

bool limits_request(struct limits *l, struct limits_entry *e, uint64_t now_ms,
		    unsigned *retry_after_s)
{
	unsigned rate = atomic_load_explicit(&l->rate, memory_order_relaxed);
	uint64_t need_ms;
	uint32_t have;
	pthread_mutex_t *lock;

	*retry_after_s = 0;
	if (e == NULL || rate == 0)
		return true;
	lock = bucket_lock(l, (size_t)(e - l->e) / LIMITS_WAYS);
	pthread_mutex_lock(lock);
	refill(l, rate, e, now_ms);
	have = e->milli_tokens;
	if (have >= 1000)
		e->milli_tokens -= 1000;
	pthread_mutex_unlock(lock);
	if (have >= 1000)
		return true;
	atomic_fetch_add_explicit(&l->rejected_reqs, 1, memory_order_relaxed);
	need_ms = (1000 - have + rate - 1) / rate;
	*retry_after_s = (unsigned)((need_ms + 999) / 1000);
	if (*retry_after_s == 0)
		*retry_after_s = 1;
	return false;
}

void limits_get_stats(const struct limits *l, struct limits_stats *out)
{
	out->rejected_conns = atomic_load_explicit(&l->rejected_conns, memory_order_relaxed);
	out->refused_conns = atomic_load_explicit(&l->refused_conns, memory_order_relaxed);
	out->rejected_reqs = atomic_load_explicit(&l->rejected_reqs, memory_order_relaxed);
	out->evictions = atomic_load_explicit(&l->evictions, memory_order_relaxed);
	out->untracked = atomic_load_explicit(&l->untracked, memory_order_relaxed);
	out->tracked = atomic_load_explicit(&l->tracked, memory_order_relaxed);
	out->size = l->size;
}
