/*
 * The admin endpoint's view of the workers (admin-int.h): each worker fills
 * its own slot of a struct gather inside its loop; the control loop sums
 * the slots and renders the answer once the last worker is done. Nothing
 * here reads a worker's objects from another thread.
 */
#include <config.h>

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "node/admin-int.h"
#include "node/workers.h"

static void gather_fn(struct worker *w, void *arg)
{
	struct gather *g = arg;
	struct proxy *p = worker_proxy(w);
	unsigned i = worker_index(w);
	struct worker_snap *s = &g->snap[i];
	const struct route_table *t = g->t;
	size_t k = 0;

	s->clients = proxy_client_connections(p);
	s->active = proxy_active_requests(p);
	accesslog_counters(worker_log(w), &s->req);
	proxy_limits_stats(p, &s->lim);
	appq_totals(p, &s->app_queued, &s->app_overloaded);
	proxy_pp_counters(p, &s->pp);
	proxy_tls_counters(p, &s->tls);
	proxy_h2_counters(p, &s->h2);
	proxy_h2c_stats(p, &s->h2c);
	proxy_pool_counters(p, &s->pool);
	if (g->apps.active)
		appstats_snapshot(accesslog_appstats(worker_log(w)), t,
				  (const char *const *)g->apps.names, g->apps.n, g->apps.want_top,
				  &g->app_snap[i]);
	for (size_t a = 0; t != NULL && a < t->n_apps; a++) {
		const struct route_app *app = t->apps[a];
		size_t ai = (size_t)i * t->n_apps + a;
		g->app_known[ai] = appq_info(p, app->domain, &g->in_flight[ai], &g->queued[ai]);
		for (size_t j = 0; j < app->n_instances; j++, k++) {
			size_t ik = (size_t)i * g->n_inst + k;
			g->inst_known[ik] = proxy_backend_info(p, app->domain, app->instances[j].id,
							       &g->inst[ik]);
		}
	}
}

static void gather_free(struct gather *g)
{
	for (unsigned i = 0; g->app_snap != NULL && i < g->n; i++)
		appstats_snap_free(&g->app_snap[i]);
	free(g->app_snap);
	appseries_req_free(&g->apps);
	route_table_unref(g->t);
	free(g->snap);
	free(g->inst);
	free(g->inst_known);
	free(g->in_flight);
	free(g->queued);
	free(g->app_known);
	free(g);
}

static void gather_closed(struct evhttp_connection *evcon, void *arg)
{
	struct gather *g = arg;
	g->req = NULL;
}

static void add_counters(uint64_t *sum, const uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sum[i] += v[i];
}

static void gather_done(void *arg)
{
	struct gather *g = arg;
	struct worker_snap *m = &g->sum;

	for (unsigned i = 0; i < g->n; i++) {
		const struct worker_snap *s = &g->snap[i];
		m->clients += s->clients;
		m->active += s->active;
		m->req.requests += s->req.requests;
		add_counters(m->req.by_class, s->req.by_class, 6);
		m->req.bytes_in += s->req.bytes_in;
		m->req.bytes_out += s->req.bytes_out;
		m->req.retried += s->req.retried;
		add_counters(m->req.duration_bucket, s->req.duration_bucket, ACCESSLOG_BUCKETS);
		m->req.duration_sum_s += s->req.duration_sum_s;
		m->req.write_errors += s->req.write_errors;
		add_counters(m->req.errors, s->req.errors, ACCESSLOG_ERRORS);
		m->req.client_gone += s->req.client_gone;
		/* One per-IP table for the process (node/shared.h): every
		 * worker reports the same one, so it is taken once. */
		if (i == 0)
			m->lim = s->lim;
		m->app_queued += s->app_queued;
		m->app_overloaded += s->app_overloaded;
		m->pp.headers += s->pp.headers;
		m->pp.malformed += s->pp.malformed;
		m->pp.timeout += s->pp.timeout;
		m->pp.closed += s->pp.closed;
		m->tls.handshakes_tls12 += s->tls.handshakes_tls12;
		m->tls.handshakes_tls13 += s->tls.handshakes_tls13;
		m->tls.handshakes_other += s->tls.handshakes_other;
		m->tls.resumed += s->tls.resumed;
		add_counters(m->tls.failures, s->tls.failures, TLS_FAIL_N);
		m->tls.close_notify_sent += s->tls.close_notify_sent;
		add_counters((uint64_t *)&m->h2, (const uint64_t *)&s->h2,
			     sizeof(s->h2) / sizeof(uint64_t));
		add_counters((uint64_t *)&m->pool, (const uint64_t *)&s->pool,
			     sizeof(s->pool) / sizeof(uint64_t));
		m->h2c.conns += s->h2c.conns;
		m->h2c.conns_ready += s->h2c.conns_ready;
		m->h2c.streams += s->h2c.streams;
		m->h2c.pending += s->h2c.pending;
		m->h2c.conns_opened += s->h2c.conns_opened;
		m->h2c.conns_idle_closed += s->h2c.conns_idle_closed;
		m->h2c.conns_failed += s->h2c.conns_failed;
		m->h2c.streams_done += s->h2c.streams_done;
		m->h2c.streams_failed += s->h2c.streams_failed;
	}
	if (g->req != NULL) {
		evhttp_connection_set_closecb(g->evcon, NULL, NULL);
		g->render(g);
	}
	gather_free(g);
}

void admin_instance_info(const struct gather *g, size_t k, struct backend_info *out, bool *known)
{
	memset(out, 0, sizeof(*out));
	*known = false;
	for (unsigned i = 0; i < g->n; i++) {
		const struct backend_info *b = &g->inst[(size_t)i * g->n_inst + k];
		*known = *known || g->inst_known[(size_t)i * g->n_inst + k];
		out->ejected = out->ejected || b->ejected;
		if (b->ejected_until_ms > out->ejected_until_ms)
			out->ejected_until_ms = b->ejected_until_ms;
		out->outstanding += b->outstanding;
		if (b->consecutive_failures > out->consecutive_failures)
			out->consecutive_failures = b->consecutive_failures;
		out->health_down = out->health_down || b->health_down;
		out->idle_pooled += b->idle_pooled;
		out->resolved = out->resolved || b->resolved;
	}
}

bool admin_app_info(const struct gather *g, size_t a, unsigned *in_flight, unsigned *queued)
{
	bool known = false;
	*in_flight = *queued = 0;
	for (unsigned i = 0; i < g->n; i++) {
		size_t ai = (size_t)i * g->t->n_apps + a;
		known = known || g->app_known[ai];
		*in_flight += g->in_flight[ai];
		*queued += g->queued[ai];
	}
	return known;
}

void admin_gather_start(struct admin *a, struct workers *ws, struct route_table *table,
			struct evhttp_request *req, void (*render)(struct gather *g),
			struct appseries *apps)
{
	struct gather *g = calloc(1, sizeof(*g));
	size_t n_apps = 0;

	if (g == NULL)
		goto nomem;
	g->a = a;
	g->req = req;
	g->render = render;
	g->n = workers_count(ws);
	if (table != NULL) {
		g->t = route_table_ref(table);
		n_apps = g->t->n_apps;
		for (size_t i = 0; i < n_apps; i++)
			g->n_inst += g->t->apps[i]->n_instances;
	}
	g->snap = calloc(g->n, sizeof(*g->snap));
	g->inst = calloc((size_t)g->n * g->n_inst + 1, sizeof(*g->inst));
	g->inst_known = calloc((size_t)g->n * g->n_inst + 1, sizeof(*g->inst_known));
	g->in_flight = calloc((size_t)g->n * n_apps + 1, sizeof(*g->in_flight));
	g->queued = calloc((size_t)g->n * n_apps + 1, sizeof(*g->queued));
	g->app_known = calloc((size_t)g->n * n_apps + 1, sizeof(*g->app_known));
	if (!appseries_req_init(apps, &g->apps))
		goto nomem;
	if (g->apps.active && (g->app_snap = calloc(g->n, sizeof(*g->app_snap))) == NULL)
		goto nomem;
	if (g->snap == NULL || g->inst == NULL || g->inst_known == NULL || g->in_flight == NULL || g->queued == NULL ||
	    g->app_known == NULL)
		goto nomem;
	/* A client that goes away meanwhile frees its request with its
	 * connection: the answer is then dropped. */
	g->evcon = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(g->evcon, gather_closed, g);
	workers_call(ws, gather_fn, gather_done, g);
	return;
nomem:
	if (g != NULL)
		gather_free(g);
	evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
}

/* Connections and requests of each worker, to see an uneven spread. */
void admin_worker_metrics(const struct gather *g, struct evbuffer *b)
{
	evbuffer_add_printf(b, "# HELP zkrouter_worker_client_connections Open client connections, "
			    "by worker thread.\n# TYPE zkrouter_worker_client_connections gauge\n");
	for (unsigned i = 0; i < g->n; i++)
		evbuffer_add_printf(b, "zkrouter_worker_client_connections{worker=\"%u\"} %zu\n", i,
				    g->snap[i].clients);
	evbuffer_add_printf(b, "# HELP zkrouter_worker_active_requests Requests in flight plus open "
			    "tunnels, by worker thread.\n# TYPE zkrouter_worker_active_requests gauge\n");
	for (unsigned i = 0; i < g->n; i++)
		evbuffer_add_printf(b, "zkrouter_worker_active_requests{worker=\"%u\"} %zu\n", i,
				    g->snap[i].active);
	evbuffer_add_printf(b, "# HELP zkrouter_worker_requests_total Requests finished, by worker "
			    "thread.\n# TYPE zkrouter_worker_requests_total counter\n");
	for (unsigned i = 0; i < g->n; i++)
		evbuffer_add_printf(b, "zkrouter_worker_requests_total{worker=\"%u\"} %" PRIu64 "\n", i,
				    g->snap[i].req.requests);
}

/* HTTP/2 to clients: the connections and streams, and every bound that
 * acted (h2.c), one counter each. */
void admin_h2_metrics(const struct proxy_h2_counters *n, struct evbuffer *b)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} m[] = {
#define H2M(field, name, help) { name, help, offsetof(struct proxy_h2_counters, field) }
		H2M(connections, "zkrouter_h2_connections_total",
		    "Client connections that spoke HTTP/2 (ALPN h2 or h2c)."),
		H2M(streams, "zkrouter_h2_streams_total", "HTTP/2 streams (requests) received."),
		H2M(refused_streams, "zkrouter_h2_refused_streams_total",
		    "HTTP/2 streams refused past h2-max-concurrent-streams."),
		H2M(malformed, "zkrouter_h2_malformed_total",
		    "HTTP/2 request heads refused as malformed (downgrade checks)."),
		H2M(header_too_large, "zkrouter_h2_header_too_large_total",
		    "HTTP/2 header lists past max-head-bytes or max-headers (431)."),
		H2M(rapid_reset, "zkrouter_h2_rapid_reset_total",
		    "HTTP/2 connections closed for resetting streams too fast."),
		H2M(control_flood, "zkrouter_h2_control_flood_total",
		    "HTTP/2 connections closed for a PING, SETTINGS, PRIORITY or empty DATA flood."),
		H2M(continuation_flood, "zkrouter_h2_continuation_flood_total",
		    "HTTP/2 connections closed for too many CONTINUATION frames."),
		H2M(ack_flood, "zkrouter_h2_ack_flood_total",
		    "HTTP/2 connections closed for leaving our ACKs unread."),
		H2M(protocol_error, "zkrouter_h2_protocol_errors_total",
		    "HTTP/2 connections closed on another protocol error."),
		H2M(stalled, "zkrouter_h2_stalled_total",
		    "HTTP/2 connections closed because the client stopped reading."),
		H2M(goaway_sent, "zkrouter_h2_goaway_sent_total", "HTTP/2 GOAWAY frames sent."),
		H2M(parked, "zkrouter_h2_parked_total",
		    "Idle HTTP/2 connections parked: their buffers freed until their next bytes."),
#undef H2M
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)n + m[i].off, sizeof(v));
		admin_metric(b, m[i].name, "counter", m[i].help, v);
	}
}

/* HTTP/2 toward h2c apps' instances (upstream-h2c.c): gauges of what is
 * open now, then counters. */
void admin_h2c_metrics(const struct uh2_pool_stats *s, struct evbuffer *b)
{
	const struct {
		const char *name, *type, *help;
		uint64_t v;
	} m[] = {
		{ "zkrouter_h2c_connections", "gauge",
		  "HTTP/2 connections to h2c instances, open or opening.", s->conns },
		{ "zkrouter_h2c_streams", "gauge", "Requests in flight on them.", s->streams },
		{ "zkrouter_h2c_streams_waiting", "gauge",
		  "Requests waiting for room (every connection of the instance at its stream limit).",
		  s->pending },
		{ "zkrouter_h2c_connections_opened_total", "counter",
		  "HTTP/2 connections opened to h2c instances.", s->conns_opened },
		{ "zkrouter_h2c_connections_idle_closed_total", "counter",
		  "HTTP/2 connections to h2c instances closed after upstream-idle-timeout-ms.",
		  s->conns_idle_closed },
		{ "zkrouter_h2c_connection_failures_total", "counter",
		  "HTTP/2 connections to h2c instances that failed to connect or broke.", s->conns_failed },
		{ "zkrouter_h2c_streams_total", "counter",
		  "Requests to h2c instances answered to their end.", s->streams_done },
		{ "zkrouter_h2c_stream_failures_total", "counter",
		  "Requests to h2c instances that failed (refused, reset, connection lost).",
		  s->streams_failed },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		admin_metric(b, m[i].name, m[i].type, m[i].help, m[i].v);
}

/* The pools of idle HTTP/1.1 backend connections (upstream.c). */
void admin_pool_metrics(const struct proxy_pool_counters *n, struct evbuffer *b)
{
	const struct {
		const char *name, *type, *help;
		uint64_t v;
	} m[] = {
		{ "zkrouter_upstream_idle_connections", "gauge",
		  "Idle pooled connections to instances (HTTP/1.1).", n->idle },
		{ "zkrouter_upstream_connections_opened_total", "counter",
		  "Connections opened to instances (HTTP/1.1).", n->opened },
		{ "zkrouter_upstream_pool_reused_total", "counter",
		  "Requests sent on a pooled connection.", n->reused },
		{ "zkrouter_upstream_pool_full_closed_total", "counter",
		  "Connections closed after a request because the pool held upstream-pool-max-idle.",
		  n->full_closed },
		{ "zkrouter_upstream_pool_trimmed_total", "counter",
		  "Idle pooled connections closed as unused for a whole second (the pool shrinking "
		  "to its demand).",
		  n->trimmed },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		admin_metric(b, m[i].name, m[i].type, m[i].help, m[i].v);
}
