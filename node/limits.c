/*
 * Per-client-address limits (see limits.h): the fixed-size table, its
 * keyed hash, connection counting and the request token buckets.
 */
#include <config.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "node/limits.h"
#include "registry/hash.h"

/* A burst of at most this many requests: milli-tokens then fit 32 bits. */
#define LIMITS_BURST_MAX 1000000u
/* Past this much idle time every bucket is full again anyway
 * (LIMITS_BURST_MAX tokens at 1 per second, in ms). */
#define LIMITS_REFILL_CAP_MS (1000ull * LIMITS_BURST_MAX + 1)

struct limits {
	struct limits_entry *e;
	size_t n_buckets;          /* power of two */
	struct hash_key key;       /* SipHash key, random per process */
	unsigned max_conns, rate, burst;
	struct limits_stats st;
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
	struct limits *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
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
	l->st.size = l->n_buckets * LIMITS_WAYS;
	return l;
}

void limits_free(struct limits *l)
{
	if (l == NULL)
		return;
	free(l->e);
	free(l);
}

void limits_configure(struct limits *l, unsigned max_conns, unsigned rate, unsigned burst)
{
	l->max_conns = max_conns;
	l->rate = rate;
	l->burst = burst ? burst : rate;
	if (l->burst > LIMITS_BURST_MAX)
		l->burst = LIMITS_BURST_MAX;
}

bool limits_enabled(const struct limits *l)
{
	return l->max_conns > 0 || l->rate > 0;
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

/* Adds the tokens earned since the entry was last touched. */
static void refill(const struct limits *l, struct limits_entry *e, uint64_t now_ms)
{
	uint64_t cap = (uint64_t)l->burst * 1000, t = e->milli_tokens;
	uint64_t dt = now_ms > e->stamp_ms ? now_ms - e->stamp_ms : 0;

	e->stamp_ms = now_ms ? now_ms : 1;
	/* With the rate off the bucket stays as it was (full for a new
	 * address), so turning the rate on by a reload starts from full. */
	if (l->rate == 0)
		return;
	if (dt > LIMITS_REFILL_CAP_MS)
		dt = LIMITS_REFILL_CAP_MS;
	/* `rate` requests per second are `rate` milli-tokens per ms. */
	t += dt * l->rate;
	e->milli_tokens = (uint32_t)(t < cap ? t : cap);
}

/* The entry of `k`: found, free, or taken from the least recently used
 * address of its bucket that holds no connection. NULL when every entry
 * of the bucket is pinned. */
static struct limits_entry *lookup(struct limits *l, const struct limits_key *k, uint64_t now_ms)
{
	struct limits_entry *b = &l->e[(key_hash(l, k) & (l->n_buckets - 1)) * LIMITS_WAYS];
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
			refill(l, e, now_ms);
			return e;
		}
		if (e->conns == 0 && (lru == NULL || e->stamp_ms < lru->stamp_ms))
			lru = e;
	}
	if (free_e == NULL && lru == NULL) {
		l->st.untracked++;
		return NULL;
	}
	if (free_e == NULL) {
		free_e = lru;
		l->st.evictions++;
	} else {
		l->st.tracked++;
	}
	free_e->key = *k;
	free_e->conns = 0;
	/* A new address starts with a full bucket (refill clamps it). */
	free_e->milli_tokens = UINT32_MAX;
	free_e->stamp_ms = now_ms;
	refill(l, free_e, now_ms);
	return free_e;
}

enum limits_verdict limits_conn_open(struct limits *l, const struct limits_key *k,
				     uint64_t now_ms, struct limits_entry **out)
{
	struct limits_entry *e;

	*out = NULL;
	if (!limits_enabled(l))
		return LIMITS_OK;
	e = lookup(l, k, now_ms);
	if (e == NULL)
		return LIMITS_OK;
	if (l->max_conns && e->conns >= 2 * (uint64_t)l->max_conns) {
		/* Answering each with a 429 would let one address hold
		 * descriptors without bound: past twice the limit, close. */
		l->st.refused_conns++;
		return LIMITS_REFUSE;
	}
	e->conns++;
	*out = e;
	if (l->max_conns && e->conns > l->max_conns) {
		l->st.rejected_conns++;
		return LIMITS_OVER;
	}
	return LIMITS_OK;
}

void limits_conn_close(struct limits *l, struct limits_entry *e)
{
	(void)l;
	if (e != NULL && e->conns > 0)
		e->conns--;
}

bool limits_request(struct limits *l, struct limits_entry *e, uint64_t now_ms,
		    unsigned *retry_after_s)
{
	uint64_t need_ms;

	*retry_after_s = 0;
	if (e == NULL || l->rate == 0)
		return true;
	refill(l, e, now_ms);
	if (e->milli_tokens >= 1000) {
		e->milli_tokens -= 1000;
		return true;
	}
	l->st.rejected_reqs++;
	need_ms = (1000 - e->milli_tokens + l->rate - 1) / l->rate;
	*retry_after_s = (unsigned)((need_ms + 999) / 1000);
	if (*retry_after_s == 0)
		*retry_after_s = 1;
	return false;
}

void limits_get_stats(const struct limits *l, struct limits_stats *out)
{
	*out = l->st;
}
