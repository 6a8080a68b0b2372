/*
 * Per-app counters of one worker (each worker's access log holds one, see
 * accesslog_appstats): requests, responses by status class, our own
 * errors by X-Zkrouter-Error code and a histogram of the time spent on
 * the instance, kept for every app that had a request on this worker.
 *
 * /metrics does not print them all: a platform with 100k apps would give
 * millions of series. The control thread (admin-apps.c) names at most N
 * apps (--metrics-app-series); a gather asks each worker, on its own
 * thread, for the counters of those, the sum of every other app, and its
 * N busiest other apps (the candidates for a name of their own).
 */
#ifndef ZKR_APPSTATS_H
#define ZKR_APPSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/accesslog.h"

struct route_table;

struct appstats_counts {
	uint64_t requests;
	uint64_t by_class[6];                   /* [status / 100]; [0]: none */
	uint64_t errors[ACCESSLOG_ERRORS];      /* our own answers, by code */
	uint64_t upstream_bucket[ACCESSLOG_BUCKETS];   /* cumulative, le seconds */
	uint64_t upstream_count;                /* requests that reached an instance */
	double upstream_sum_s;
};

/* a += b; a -= b (modulo 2^64, see admin-apps.c for why that is right). */
void appstats_counts_add(struct appstats_counts *a, const struct appstats_counts *b);
void appstats_counts_sub(struct appstats_counts *a, const struct appstats_counts *b);

struct appstats;

struct appstats *appstats_new(void);
void appstats_free(struct appstats *s);

/* Counts a finished request of app e->app. An allocation failure leaves it
 * uncounted per app (it is still in the totals of the access log). */
void appstats_count(struct appstats *s, const struct access_entry *e);

/* Apps with counters now. */
size_t appstats_size(const struct appstats *s);

struct appstats_top {
	char *domain;
	struct appstats_counts n;
};

/* One worker's answer to a gather. */
struct appstats_snap {
	struct appstats_counts *named;   /* [n_named]: in the order of `names` */
	struct appstats_counts other;    /* every app not named, and apps gone */
	struct appstats_top *top;        /* the busiest apps not named, [n_top] */
	size_t n_top;
};

/*
 * Fills `out` (on the worker's thread): names are the apps with series of
 * their own, sorted by strcmp; `want_top` candidates at most. Apps that
 * are no longer in `t` (NULL: keep all) leave the set here: an unnamed
 * one's counters stay in `other`, a named one's are reported one last
 * time. False on allocation failure (out is then freed and zeroed).
 */
bool appstats_snapshot(struct appstats *s, const struct route_table *t, const char *const *names,
		       size_t n_names, size_t want_top, struct appstats_snap *out);
void appstats_snap_free(struct appstats_snap *snap);

#endif
