/*
 * Per-app counters of one worker (see appstats.h): an open-addressing
 * table from an app's domain to its counters, filled by the access log on
 * the worker's thread and read only there, by appstats_snapshot inside a
 * gather. Entries are made at an app's first request, so memory follows
 * the apps that have traffic on this worker (about 400 bytes each), not
 * the size of the table; apps that left the table are dropped at the next
 * snapshot.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "node/appstats.h"
#include "registry/hash.h"
#include "registry/table.h"

struct app_entry {
	char *domain;
	uint64_t hash;
	struct appstats_counts n;
};

struct appstats {
	struct app_entry **slots;   /* [cap], NULL: free */
	size_t cap, count;          /* cap: a power of two, 0 before the first */
	struct appstats_counts retired;   /* apps gone from the table */
};

void appstats_counts_add(struct appstats_counts *a, const struct appstats_counts *b)
{
	a->requests += b->requests;
	for (size_t i = 0; i < 6; i++)
		a->by_class[i] += b->by_class[i];
	for (size_t i = 0; i < ACCESSLOG_ERRORS; i++)
		a->errors[i] += b->errors[i];
	for (size_t i = 0; i < ACCESSLOG_BUCKETS; i++)
		a->upstream_bucket[i] += b->upstream_bucket[i];
	a->upstream_count += b->upstream_count;
	a->upstream_sum_s += b->upstream_sum_s;
}

void appstats_counts_sub(struct appstats_counts *a, const struct appstats_counts *b)
{
	a->requests -= b->requests;
	for (size_t i = 0; i < 6; i++)
		a->by_class[i] -= b->by_class[i];
	for (size_t i = 0; i < ACCESSLOG_ERRORS; i++)
		a->errors[i] -= b->errors[i];
	for (size_t i = 0; i < ACCESSLOG_BUCKETS; i++)
		a->upstream_bucket[i] -= b->upstream_bucket[i];
	a->upstream_count -= b->upstream_count;
	a->upstream_sum_s -= b->upstream_sum_s;
}

struct appstats *appstats_new(void)
{
	return calloc(1, sizeof(struct appstats));
}

static void entry_free(struct app_entry *e)
{
	if (e != NULL) {
		free(e->domain);
		free(e);
	}
}

void appstats_free(struct appstats *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->cap; i++)
		entry_free(s->slots[i]);
	free(s->slots);
	free(s);
}

size_t appstats_size(const struct appstats *s)
{
	return s != NULL ? s->count : 0;
}

static void slot_put(struct app_entry **slots, size_t cap, struct app_entry *e)
{
	size_t i = (size_t)e->hash & (cap - 1);

	while (slots[i] != NULL)
		i = (i + 1) & (cap - 1);
	slots[i] = e;
}

/* Rebuilds the table at `cap` with the entries kept (those not NULL). */
static bool rehash(struct appstats *s, size_t cap)
{
	struct app_entry **slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return false;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i] != NULL)
			slot_put(slots, cap, s->slots[i]);
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return true;
}

static struct app_entry *entry_get(struct appstats *s, const char *domain)
{
	uint64_t h = hash_fnv1a_str(domain);
	struct app_entry *e;

	for (size_t i = s->cap ? (size_t)h & (s->cap - 1) : 0; s->cap; i = (i + 1) & (s->cap - 1)) {
		e = s->slots[i];
		if (e == NULL)
			break;
		if (e->hash == h && strcmp(e->domain, domain) == 0)
			return e;
	}
	/* At most half full: probes stay short. */
	if (2 * (s->count + 1) > s->cap && !rehash(s, s->cap ? 2 * s->cap : 64))
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL || (e->domain = strdup(domain)) == NULL) {
		free(e);
		return NULL;
	}
	e->hash = h;
	slot_put(s->slots, s->cap, e);
	s->count++;
	return e;
}

void appstats_count(struct appstats *s, const struct access_entry *e)
{
	struct app_entry *a;
	struct appstats_counts *n;

	if (s == NULL || e->app == NULL || (a = entry_get(s, e->app)) == NULL)
		return;
	n = &a->n;
	n->requests++;
	n->by_class[e->status >= 100 && e->status < 600 ? e->status / 100 : 0]++;
	if (e->error != NULL)
		n->errors[accesslog_error_index(e->error)]++;
	if (e->upstream_used) {
		double sec = e->upstream_ms / 1000.0;
		n->upstream_count++;
		n->upstream_sum_s += sec;
		for (size_t i = 0; i < ACCESSLOG_BUCKETS; i++)
			if (sec <= accesslog_bucket_le[i])
				n->upstream_bucket[i]++;
	}
}

static int name_index(const char *const *names, size_t n, const char *domain)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(domain, names[mid]);

		if (c == 0)
			return (int)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* A min-heap on requests of the `want` busiest candidates seen so far
 * (pointers to entries; their domains are copied at the end). */
struct top_heap {
	struct app_entry **e;
	size_t n, want;
};

static void heap_down(struct top_heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < h->n && h->e[l]->n.requests < h->e[m]->n.requests)
			m = l;
		if (l + 1 < h->n && h->e[l + 1]->n.requests < h->e[m]->n.requests)
			m = l + 1;
		if (m == i)
			return;
		struct app_entry *t = h->e[i];
		h->e[i] = h->e[m];
		h->e[m] = t;
		i = m;
	}
}

static void heap_offer(struct top_heap *h, struct app_entry *e)
{
	if (h->want == 0 || e->n.requests == 0)
		return;
	if (h->n < h->want) {
		size_t i = h->n++;
		h->e[i] = e;
		while (i > 0 && h->e[(i - 1) / 2]->n.requests > h->e[i]->n.requests) {
			struct app_entry *t = h->e[i];
			h->e[i] = h->e[(i - 1) / 2];
			h->e[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
	} else if (e->n.requests > h->e[0]->n.requests) {
		h->e[0] = e;
		heap_down(h, 0);
	}
}

void appstats_snap_free(struct appstats_snap *snap)
{
	for (size_t i = 0; i < snap->n_top; i++)
		free(snap->top[i].domain);
	free(snap->top);
	free(snap->named);
	memset(snap, 0, sizeof(*snap));
}

bool appstats_snapshot(struct appstats *s, const struct route_table *t, const char *const *names,
		       size_t n_names, size_t want_top, struct appstats_snap *out)
{
	struct top_heap h = { NULL, 0, want_top };
	bool removed = false, ok = true;

	memset(out, 0, sizeof(*out));
	out->named = calloc(n_names ? n_names : 1, sizeof(*out->named));
	out->top = calloc(want_top ? want_top : 1, sizeof(*out->top));
	h.e = calloc(want_top ? want_top : 1, sizeof(*h.e));
	if (out->named == NULL || out->top == NULL || h.e == NULL) {
		free(h.e);
		appstats_snap_free(out);
		return false;
	}
	out->other = s->retired;
	for (size_t i = 0; i < s->cap; i++) {
		struct app_entry *e = s->slots[i];
		int k;

		if (e == NULL)
			continue;
		k = name_index(names, n_names, e->domain);
		if (k >= 0)
			out->named[k] = e->n;
		bool gone = t != NULL && route_table_find(t, e->domain, strlen(e->domain)) == NULL;
		if (gone) {
			/* An unnamed app's requests stay in `other` for good. */
			if (k < 0) {
				appstats_counts_add(&s->retired, &e->n);
				appstats_counts_add(&out->other, &e->n);
			}
			entry_free(e);
			s->slots[i] = NULL;
			s->count--;
			removed = true;
			continue;
		}
		if (k < 0) {
			appstats_counts_add(&out->other, &e->n);
			heap_offer(&h, e);
		}
	}
	for (size_t i = 0; i < h.n && ok; i++) {
		if ((out->top[out->n_top].domain = strdup(h.e[i]->domain)) == NULL)
			ok = false;
		else
			out->top[out->n_top++].n = h.e[i]->n;
	}
	free(h.e);
	/* Entries were taken out of their probe chains: rebuild them (on
	 * failure the old chains stay broken, so empty the table rather). */
	if (removed && !rehash(s, s->cap)) {
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i] != NULL)
				appstats_counts_add(&s->retired, &s->slots[i]->n);
		for (size_t i = 0; i < s->cap; i++)
			entry_free(s->slots[i]);
		memset(s->slots, 0, s->cap * sizeof(*s->slots));
		s->count = 0;
	}
	if (!ok)
		appstats_snap_free(out);
	return ok;
}
