/*
 * What admin.c shares with admin-gather.c: the runtime state and counters
 * of the workers, gathered on each worker's loop (workers_call) for one
 * /routes or /metrics answer, and summed once every worker answered.
 */
#ifndef ZKR_ADMIN_INT_H
#define ZKR_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "node/accesslog.h"
#include "node/appstats.h"
#include "node/limits.h"
#include "node/proxy.h"
#include "node/upstream-h2.h"
#include "registry/table.h"

struct admin;
struct workers;

/* One worker's view, filled on its own thread. */
struct worker_snap {
	size_t clients, active;
	struct accesslog_counters req;
	struct limits_stats lim;
	size_t app_queued;
	uint64_t app_overloaded;
	struct proxy_pp_counters pp;
	struct proxy_tls_counters tls;
	struct proxy_h2_counters h2;
	struct uh2_pool_stats h2c;
	struct proxy_pool_counters pool;
};

/* ---- per-app series (admin-apps.c) ---------------------------------- */

struct appseries;

/* What one /metrics gather asks the workers about the apps, and the
 * state of the set it started with (copied: the set may change before
 * it is rendered). */
struct appseries_req {
	bool active;                   /* per-app series are on */
	char **names;                  /* [n], sorted: the apps named */
	bool *fresh;                   /* [n]: named since the last scrape */
	struct appstats_counts *settled;   /* [n]: counters at naming (not fresh) */
	size_t n, want_top;
	struct appstats_counts base;
	uint64_t gen;
};

/* max: apps with series of their own; 0: none (no per-app families). */
struct appseries *appseries_new(unsigned max);
void appseries_free(struct appseries *as);
/* False on allocation failure. */
bool appseries_req_init(struct appseries *as, struct appseries_req *rq);
void appseries_req_free(struct appseries_req *rq);
/* Writes the per-app families from the workers' snaps, then updates the
 * set (which apps are named from the next scrape on). */
void appseries_render(struct appseries *as, const struct appseries_req *rq,
		      const struct appstats_snap *snaps, unsigned n_snaps,
		      const struct route_table *t, struct evbuffer *b, uint64_t now_ms);

/* One sample (admin.c) with its HELP and TYPE lines: an integer, or a value already
 * formatted (a float). */
void admin_metric(struct evbuffer *b, const char *name, const char *type, const char *help,
		  uint64_t v);
void admin_metric_text(struct evbuffer *b, const char *name, const char *type, const char *help,
		       const char *v);

/* ---- process and ZooKeeper series (admin-process.c) ------------------ */

/* process_*: CPU seconds, resident and virtual memory, open and maximum
 * file descriptors, start time, from /proc. */
void admin_process_metrics(struct evbuffer *b);

struct zkr_router;
/* The ZooKeeper session: state, sessions, expirations, reconnects, and
 * the seconds since the table was last known to be ZooKeeper's. */
void admin_zk_metrics(struct zkr_router *r, struct evbuffer *b);

/* A /routes or /metrics answer on its way: each worker fills its slot,
 * then the answer is rendered from their sum. */
struct gather {
	struct admin *a;
	struct evhttp_request *req;    /* NULL once its connection closed */
	struct evhttp_connection *evcon;
	void (*render)(struct gather *g);
	struct route_table *t;         /* a reference */
	size_t n_inst;                 /* instances of t, in its order */
	unsigned n;                    /* workers */
	struct worker_snap *snap;      /* [n] */
	struct backend_info *inst;     /* [n][n_inst] */
	bool *inst_known;              /* [n][n_inst]: the worker has a backend */
	unsigned *in_flight, *queued;  /* [n][n_apps] */
	bool *app_known;               /* [n][n_apps] */
	struct appseries_req apps;     /* /metrics only */
	struct appstats_snap *app_snap;   /* [n], when apps.active */
	struct worker_snap sum;
};

/* Gathers from every worker of ws for an answer about `table`, then
 * calls render (on this loop), unless the client went away meanwhile. */
void admin_gather_start(struct admin *a, struct workers *ws, struct route_table *table,
			struct evhttp_request *req, void (*render)(struct gather *g),
			struct appseries *apps);

/* Instance k of g->t (in table order) summed over the workers: ejected or
 * down on one is ejected or down; outstanding requests and idle
 * connections add up. `known`: some worker has a backend for it. */
void admin_instance_info(const struct gather *g, size_t k, struct backend_info *out, bool *known);

/* App a of g->t: requests in flight and queued, summed; false when no
 * worker has its state. */
bool admin_app_info(const struct gather *g, size_t a, unsigned *in_flight, unsigned *queued);

/* The per-worker series of /metrics. */
void admin_worker_metrics(const struct gather *g, struct evbuffer *b);

/* admin-gather.c: the HTTP/2 counters of /metrics. */
void admin_h2_metrics(const struct proxy_h2_counters *n, struct evbuffer *b);
/* The h2c pools' gauges and counters (connections to h2c apps). */
void admin_h2c_metrics(const struct uh2_pool_stats *s, struct evbuffer *b);
/* The pools of idle HTTP/1.1 backend connections. */
void admin_pool_metrics(const struct proxy_pool_counters *n, struct evbuffer *b);

#endif
