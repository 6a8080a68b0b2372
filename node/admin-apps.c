/*
 * The per-app series of /metrics, and their guard against cardinality.
 *
 * Every worker counts every app (node/appstats.h), but /metrics names at
 * most `max` apps (--metrics-app-series): on a platform with 100k apps, a
 * series set per app (about 40 series each) would be millions of series
 * per router, which no Prometheus keeps. The apps named are the busiest:
 * at each scrape the workers also report their busiest unnamed apps, and
 * while there is room the busiest of those get a name from the next
 * scrape on. A named app keeps its name (its series stay continuous)
 * until it has had no request for APPSERIES_IDLE_MS while another app
 * waits for a name; it then goes back to the rest. Everything not named
 * is summed under app="_other" (a label no domain can be). A named app's
 * series count from its naming on (they start at 0), and what it had
 * before stays in _other: the per-app families add up to the router's
 * traffic, counters and rates alike.
 *
 * _other is a counter and must never go down, although apps move in and
 * out of it. It is kept as `base` plus the live sum of the unnamed apps:
 * when an app gets a name its counters, as the same scrape saw them, are
 * added to base (they leave the live sum at that very scrape); when it
 * loses its name they are taken out of base (they return to the sum).
 * Both are exact because they use one scrape's numbers on both sides; the
 * subtraction may wrap base below zero for a while (the app's requests
 * while named never were in base), which modulo 2^64 arithmetic carries
 * through to the right sum.
 *
 * Only one scrape at a time changes the set: a gather started while the
 * set changed renders with the names, base and state it started with.
 */
#include <config.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "node/admin-int.h"
#include "node/appstats.h"
#include "registry/table.h"

#define APPSERIES_IDLE_MS (5 * 60 * 1000)
#define APPSERIES_OTHER "_other"

struct named_app {
	char *domain;
	bool fresh;                    /* named, not yet seen by a scrape */
	struct appstats_counts settled;   /* what was added to base at its first scrape */
	uint64_t last_requests, last_change_ms;
};

struct appseries {
	unsigned max;
	struct named_app *apps;        /* [n], sorted by domain */
	size_t n;
	struct appstats_counts base;
	uint64_t gen;                  /* bumped on every change of the set */
};

struct appseries *appseries_new(unsigned max)
{
	struct appseries *as = calloc(1, sizeof(*as));

	if (as == NULL)
		return NULL;
	as->max = max;
	if (max > 0 && (as->apps = calloc(max, sizeof(*as->apps))) == NULL) {
		free(as);
		return NULL;
	}
	return as;
}

void appseries_free(struct appseries *as)
{
	if (as == NULL)
		return;
	for (size_t i = 0; i < as->n; i++)
		free(as->apps[i].domain);
	free(as->apps);
	free(as);
}

void appseries_req_free(struct appseries_req *rq)
{
	for (size_t i = 0; i < rq->n; i++)
		free(rq->names[i]);
	free(rq->names);
	free(rq->fresh);
	free(rq->settled);
	memset(rq, 0, sizeof(*rq));
}

bool appseries_req_init(struct appseries *as, struct appseries_req *rq)
{
	memset(rq, 0, sizeof(*rq));
	if (as == NULL || as->max == 0)
		return true;
	rq->want_top = as->max;
	rq->gen = as->gen;
	rq->base = as->base;
	rq->names = calloc(as->n + 1, sizeof(*rq->names));
	rq->fresh = calloc(as->n + 1, sizeof(*rq->fresh));
	rq->settled = calloc(as->n + 1, sizeof(*rq->settled));
	if (rq->names == NULL || rq->fresh == NULL || rq->settled == NULL)
		goto nomem;
	for (size_t i = 0; i < as->n; i++) {
		if ((rq->names[i] = strdup(as->apps[i].domain)) == NULL)
			goto nomem;
		rq->fresh[i] = as->apps[i].fresh;
		rq->settled[i] = as->apps[i].settled;
		rq->n++;
	}
	rq->active = true;
	return true;
nomem:
	appseries_req_free(rq);
	return false;
}

static struct named_app *find_named(struct appseries *as, const char *domain)
{
	size_t lo = 0, hi = as->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(domain, as->apps[mid].domain);

		if (c == 0)
			return &as->apps[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct named_app *)a)->domain, ((const struct named_app *)b)->domain);
}

static int cmp_top_domain(const void *a, const void *b)
{
	return strcmp(((const struct appstats_top *)a)->domain, ((const struct appstats_top *)b)->domain);
}

static int cmp_top_requests(const void *a, const void *b)
{
	const struct appstats_top *x = a, *y = b;
	if (x->n.requests != y->n.requests)
		return x->n.requests > y->n.requests ? -1 : 1;
	return strcmp(x->domain, y->domain);
}

/* The candidates of every worker, summed per domain, busiest first, in
 * *out (pointing at the snaps' domains); their count, or -1. */
static ssize_t merge_candidates(const struct appstats_snap *snaps, unsigned n_snaps,
				struct appstats_top **out)
{
	size_t total = 0, m = 0;
	struct appstats_top *all;

	for (unsigned w = 0; w < n_snaps; w++)
		total += snaps[w].n_top;
	if ((all = calloc(total + 1, sizeof(*all))) == NULL)
		return -1;
	for (unsigned w = 0; w < n_snaps; w++)
		for (size_t i = 0; i < snaps[w].n_top; i++)
			all[m++] = snaps[w].top[i];
	qsort(all, m, sizeof(*all), cmp_top_domain);
	size_t k = 0;
	for (size_t i = 0; i < m; i++) {
		if (k > 0 && strcmp(all[k - 1].domain, all[i].domain) == 0)
			appstats_counts_add(&all[k - 1].n, &all[i].n);
		else
			all[k++] = all[i];
	}
	qsort(all, k, sizeof(*all), cmp_top_requests);
	*out = all;
	return (ssize_t)k;
}

/* Changes the set after a scrape that saw `named`. Only called while the
 * set is the one the scrape started with, so as->apps[i] is rq->names[i].
 * Settles the fresh, drops apps gone from t, retires the idle ones when
 * the set is full and others wait, and names the busiest candidates while
 * there is room. */
static void update_set(struct appseries *as, const struct appstats_counts *named,
		       const struct appstats_snap *snaps, unsigned n_snaps,
		       const struct route_table *t, uint64_t now_ms)
{
	struct appstats_top *cand = NULL;
	ssize_t n_cand = merge_candidates(snaps, n_snaps, &cand);
	bool full = as->n >= as->max;
	size_t k = 0;

	for (size_t i = 0; i < as->n; i++) {
		struct named_app *na = &as->apps[i];

		if (na->fresh) {
			na->fresh = false;
			na->settled = named[i];
			appstats_counts_add(&as->base, &named[i]);
		}
		if (named[i].requests != na->last_requests || na->last_change_ms == 0) {
			na->last_requests = named[i].requests;
			na->last_change_ms = now_ms;
		}
		if (t != NULL && route_table_find(t, na->domain, strlen(na->domain)) == NULL) {
			/* Gone: its series end; what it had before its name
			 * stays in _other (the workers dropped the rest). */
			free(na->domain);
			continue;
		}
		if (full && n_cand > 0 && now_ms - na->last_change_ms >= APPSERIES_IDLE_MS) {
			/* Back to the rest, with all its counters. */
			appstats_counts_sub(&as->base, &named[i]);
			free(na->domain);
			continue;
		}
		as->apps[k++] = *na;
	}
	as->n = k;
	for (ssize_t c = 0; c < n_cand && as->n < as->max; c++) {
		char *d;
		if (find_named(as, cand[c].domain) != NULL || (d = strdup(cand[c].domain)) == NULL)
			continue;
		memset(&as->apps[as->n], 0, sizeof(as->apps[as->n]));
		as->apps[as->n].domain = d;
		as->apps[as->n].fresh = true;
		as->n++;
		qsort(as->apps, as->n, sizeof(*as->apps), cmp_named);
	}
	free(cand);
	as->gen++;
}

static void label_value(struct evbuffer *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void series_start(struct evbuffer *b, const char *name, const char *app)
{
	evbuffer_add_printf(b, "%s{app=\"", name);
	label_value(b, app);
	evbuffer_add(b, "\"", 1);
}

static void render_family(struct evbuffer *b, int family, const char *app,
			  const struct appstats_counts *n)
{
	static const char *const classes[] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };

	switch (family) {
	case 0:
		series_start(b, "zkrouter_app_requests_total", app);
		evbuffer_add_printf(b, "} %" PRIu64 "\n", n->requests);
		break;
	case 1:
		for (size_t i = 0; i < 6; i++) {
			series_start(b, "zkrouter_app_responses_total", app);
			evbuffer_add_printf(b, ",class=\"%s\"} %" PRIu64 "\n", classes[i], n->by_class[i]);
		}
		break;
	case 2:
		for (size_t i = 0; i < ACCESSLOG_ERRORS; i++) {
			series_start(b, "zkrouter_app_router_errors_total", app);
			evbuffer_add_printf(b, ",code=\"%s\"} %" PRIu64 "\n", accesslog_error_names[i],
					    n->errors[i]);
		}
		break;
	default:
		for (size_t i = 0; i < ACCESSLOG_BUCKETS; i++) {
			series_start(b, "zkrouter_app_upstream_duration_seconds_bucket", app);
			evbuffer_add_printf(b, ",le=\"%g\"} %" PRIu64 "\n", accesslog_bucket_le[i],
					    n->upstream_bucket[i]);
		}
		series_start(b, "zkrouter_app_upstream_duration_seconds_bucket", app);
		evbuffer_add_printf(b, ",le=\"+Inf\"} %" PRIu64 "\n", n->upstream_count);
		series_start(b, "zkrouter_app_upstream_duration_seconds_sum", app);
		evbuffer_add_printf(b, "} %.6f\n", n->upstream_sum_s);
		series_start(b, "zkrouter_app_upstream_duration_seconds_count", app);
		evbuffer_add_printf(b, "} %" PRIu64 "\n", n->upstream_count);
		break;
	}
}

void appseries_render(struct appseries *as, const struct appseries_req *rq,
		      const struct appstats_snap *snaps, unsigned n_snaps,
		      const struct route_table *t, struct evbuffer *b, uint64_t now_ms)
{
	static const char *const heads[] = {
		"# HELP zkrouter_app_requests_total Requests finished, by app (the busiest apps; "
		"_other: the rest).\n# TYPE zkrouter_app_requests_total counter\n",
		"# HELP zkrouter_app_responses_total Requests finished, by app and status class "
		"(none: the client left before a status).\n# TYPE zkrouter_app_responses_total counter\n",
		"# HELP zkrouter_app_router_errors_total Answers of the router's own, by app and "
		"X-Zkrouter-Error code.\n# TYPE zkrouter_app_router_errors_total counter\n",
		"# HELP zkrouter_app_upstream_duration_seconds Time on the instance, from the first "
		"connect to the last response byte, by app.\n"
		"# TYPE zkrouter_app_upstream_duration_seconds histogram\n",
	};
	struct appstats_counts *named, *shown, other;
	bool complete = true;

	if (!rq->active)
		return;
	named = calloc(rq->n + 1, sizeof(*named));
	shown = calloc(rq->n + 1, sizeof(*shown));
	if (named == NULL || shown == NULL) {
		free(named);
		free(shown);
		return;
	}
	other = rq->base;
	for (unsigned w = 0; w < n_snaps; w++) {
		if (snaps[w].named == NULL) {
			complete = false;   /* that worker ran out of memory */
			continue;
		}
		appstats_counts_add(&other, &snaps[w].other);
		for (size_t i = 0; i < rq->n; i++)
			appstats_counts_add(&named[i], &snaps[w].named[i]);
	}
	/* A fresh app's counters leave the sum of the unnamed in this very
	 * scrape: base takes them (the set's settled copy once a scrape did),
	 * and its own series start from there. */
	for (size_t i = 0; i < rq->n; i++) {
		const struct appstats_counts *s = &rq->settled[i];
		if (rq->fresh[i]) {
			const struct named_app *na = find_named(as, rq->names[i]);
			s = na != NULL && !na->fresh ? &na->settled : &named[i];
			appstats_counts_add(&other, s);
		}
		shown[i] = named[i];
		appstats_counts_sub(&shown[i], s);
		if (shown[i].upstream_sum_s < 0)
			shown[i].upstream_sum_s = 0;   /* rounding */
	}
	for (int f = 0; f < 4; f++) {
		evbuffer_add(b, heads[f], strlen(heads[f]));
		for (size_t i = 0; i < rq->n; i++)
			render_family(b, f, rq->names[i], &shown[i]);
		render_family(b, f, APPSERIES_OTHER, &other);
	}
	evbuffer_add_printf(b, "# HELP zkrouter_app_series_apps Apps with series of their own "
			    "(at most metrics-app-series).\n# TYPE zkrouter_app_series_apps gauge\n"
			    "zkrouter_app_series_apps %zu\n", rq->n);
	if (complete && rq->gen == as->gen)
		update_set(as, named, snaps, n_snaps, t, now_ms);
	free(named);
	free(shown);
}
