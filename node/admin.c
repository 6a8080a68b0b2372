/*
 * The admin endpoint (see admin.h). It renders the table the workers
 * serve and their runtime state; it never changes routing. It runs on the
 * control thread: what /routes and /metrics report of the workers (their
 * counters, each instance's state) is gathered on each worker's own loop
 * (workers_call), summed here once every worker answered, and only then
 * sent, so one answer is consistent per worker; a /routes of a large table
 * is built into one evbuffer and sent without copying.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "node/accesslog.h"
#include "node/admin.h"
#include "node/admin-int.h"
#include "node/config.h"
#include "node/proxy.h"
#include "node/tls.h"
#include "node/tls-tickets.h"
#include "node/workers.h"
#include "registry/clock.h"
#include "registry/log.h"
#include "registry/record.h"
#include "registry/router.h"
#include "registry/statefile.h"
#include "registry/table.h"

/* Small, bounded requests only: the admin port is for probes and humans. */
#define ADMIN_MAX_HEADERS_BYTES 8192
#define ADMIN_TIMEOUT_S 10

struct admin {
	struct evhttp *http;
	struct workers *ws;
	struct route_table *table; /* what every worker serves (a reference) */
	struct zkr_router *router;
	struct statefile *state;
	struct tls_store *tls;
	struct tls_tickets *tickets;
	struct appseries *apps;    /* per-app series; NULL: none */
	char *node_id;
	bool draining;
	bool from_disk;            /* the table in use was read from the state file */
	uint64_t disk_written_at_ms;
};

/* Seconds since the state file in use was written; 0 for ZooKeeper's table. */
static uint64_t table_age_s(const struct admin *a)
{
	struct timespec now;
	if (!a->from_disk)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	return ms > a->disk_written_at_ms ? (ms - a->disk_written_at_ms) / 1000 : 0;
}

void admin_json_string(struct evbuffer *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	evbuffer_add(out, "\"", 1);
	while (*p) {
		unsigned char c;
		const unsigned char *run = p;
		/* Copy runs of plain ASCII in one call. */
		while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			p++;
		if (p > run) {
			evbuffer_add(out, run, (size_t)(p - run));
			continue;
		}
		c = *p++;
		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };
			evbuffer_add(out, esc, 2);
		} else if (c == '\n') {
			evbuffer_add(out, "\\n", 2);
		} else if (c == '\r') {
			evbuffer_add(out, "\\r", 2);
		} else if (c == '\t') {
			evbuffer_add(out, "\\t", 2);
		} else {
			/* Controls, DEL and every byte >= 0x80: our strings come from
			 * validated records, so this only guards the output's validity. */
			char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			evbuffer_add(out, esc, 6);
		}
	}
	evbuffer_add(out, "\"", 1);
}

static void json_key(struct evbuffer *out, const char *key, bool *first)
{
	if (!*first)
		evbuffer_add(out, ",", 1);
	*first = false;
	admin_json_string(out, key);
	evbuffer_add(out, ":", 1);
}

static void json_str(struct evbuffer *out, const char *key, const char *v, bool *first)
{
	json_key(out, key, first);
	if (v == NULL)
		evbuffer_add(out, "null", 4);
	else
		admin_json_string(out, v);
}

static void json_u64(struct evbuffer *out, const char *key, uint64_t v, bool *first)
{
	json_key(out, key, first);
	evbuffer_add_printf(out, "%" PRIu64, v);
}

static void json_bool(struct evbuffer *out, const char *key, bool v, bool *first)
{
	json_key(out, key, first);
	evbuffer_add_printf(out, "%s", v ? "true" : "false");
}

static void send_text(struct evhttp_request *req, int code, const char *reason, const char *ctype,
		      struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void reply_plain(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();
	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	evbuffer_add_printf(b, "%s\n", text);
	send_text(req, code, reason, "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

static void handle_healthz(struct admin *a, struct evhttp_request *req)
{
	struct route_table *t = a->table;
	char text[96];

	if (a->draining) {
		reply_plain(req, 503, "Service Unavailable", "draining");
	} else if (t == NULL) {
		reply_plain(req, 503, "Service Unavailable", "no routing table loaded yet");
	} else if (a->from_disk) {
		/* Still ready: the last known table serves (fail static). The
		 * first line stays "ok" for checkers that match the body. */
		snprintf(text, sizeof(text), "ok\ntable_from_disk: 1\ntable_age_seconds: %" PRIu64,
			 table_age_s(a));
		reply_plain(req, 200, "OK", text);
	} else {
		reply_plain(req, 200, "OK", "ok");
	}
}

static void render_config(struct evbuffer *b, const struct route_app_config *c)
{
	bool f = true;
	evbuffer_add(b, "{", 1);
	json_str(b, "balance", record_balance_name(c->balance), &f);
	json_str(b, "hash_key", c->hash_key, &f);
	json_u64(b, "connect_timeout_ms", c->connect_timeout_ms, &f);
	json_u64(b, "response_timeout_ms", c->response_timeout_ms, &f);
	json_u64(b, "idle_timeout_ms", c->idle_timeout_ms, &f);
	json_str(b, "health_path", c->health_path, &f);
	json_u64(b, "health_interval_ms", c->health_interval_ms, &f);
	json_str(b, "sticky_cookie", c->sticky_cookie, &f);
	json_bool(b, "redirect_https", c->redirect_https, &f);
	json_u64(b, "max_connections", c->max_connections, &f);
	json_u64(b, "max_body_bytes", c->max_body_bytes, &f);
	json_u64(b, "max_concurrent_requests", c->max_concurrent_requests, &f);
	json_u64(b, "max_queued_requests", c->max_queued_requests, &f);
	json_str(b, "backend_protocol", c->backend_h2c ? "h2c" : "http1", &f);
	json_key(b, "retries", &f);
	if (c->retries < 0)
		evbuffer_add(b, "null", 4);
	else
		evbuffer_add_printf(b, "%d", c->retries);
	evbuffer_add(b, "}", 1);
}

static void render_instance(const struct gather *g, struct evbuffer *b, size_t k,
			    const struct route_instance *in)
{
	struct backend_info bi;
	bool known, f = true;
	evbuffer_add(b, "{", 1);
	json_str(b, "id", in->id, &f);
	json_str(b, "host", in->host, &f);
	json_u64(b, "port", in->port, &f);
	json_u64(b, "weight", in->weight, &f);
	json_str(b, "zone", in->zone, &f);
	json_str(b, "state", in->draining ? "DRAINING" : "UP", &f);
	json_u64(b, "registered_at_ms", in->registered_at_ms, &f);
	admin_instance_info(g, k, &bi, &known);
	json_key(b, "runtime", &f);
	f = true;
	evbuffer_add(b, "{", 1);
	json_bool(b, "known", known, &f);
	json_bool(b, "ejected", bi.ejected, &f);
	json_u64(b, "ejected_until_ms", bi.ejected_until_ms, &f);
	json_u64(b, "outstanding", bi.outstanding, &f);
	json_u64(b, "consecutive_failures", bi.consecutive_failures, &f);
	json_bool(b, "health_down", bi.health_down, &f);
	json_u64(b, "idle_pooled", bi.idle_pooled, &f);
	json_bool(b, "resolved", bi.resolved, &f);
	evbuffer_add(b, "}}", 2);
}

static void render_routes(struct gather *g)
{
	struct admin *a = g->a;
	struct evhttp_request *req = g->req;
	struct route_table *t = g->t;
	struct evbuffer *b = evbuffer_new();
	size_t k = 0;
	bool f = true;

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	evbuffer_add(b, "{", 1);
	json_str(b, "node_id", a->node_id, &f);
	json_bool(b, "table_loaded", t != NULL, &f);
	json_u64(b, "generation", t ? t->generation : 0, &f);
	json_str(b, "digest", t ? t->digest_hex : NULL, &f);
	json_bool(b, "draining", a->draining, &f);
	if (a->router != NULL)
		json_bool(b, "zk_connected", zkr_router_connected(a->router), &f);
	json_bool(b, "table_from_disk", a->from_disk, &f);
	json_u64(b, "table_age_seconds", table_age_s(a), &f);
	json_str(b, "state_file", a->state ? statefile_path(a->state) : NULL, &f);
	json_key(b, "apps", &f);
	evbuffer_add(b, "[", 1);
	for (size_t i = 0; t != NULL && i < t->n_apps; i++) {
		const struct route_app *app = t->apps[i];
		char hex[ROUTE_DIGEST_HEX_LEN + 1];
		unsigned in_flight, queued;
		bool af = true;
		for (size_t x = 0; x < ROUTE_DIGEST_LEN; x++)
			snprintf(hex + 2 * x, 3, "%02x", app->digest[x]);
		evbuffer_add(b, i ? ",{" : "{", i ? 2 : 1);
		json_str(b, "domain", app->domain, &af);
		json_str(b, "digest", hex, &af);
		if (admin_app_info(g, i, &in_flight, &queued)) {
			json_u64(b, "in_flight", in_flight, &af);
			json_u64(b, "queued", queued, &af);
		}
		json_key(b, "config", &af);
		render_config(b, &app->config);
		json_key(b, "instances", &af);
		evbuffer_add(b, "[", 1);
		for (size_t j = 0; j < app->n_instances; j++) {
			if (j)
				evbuffer_add(b, ",", 1);
			render_instance(g, b, k++, &app->instances[j]);
		}
		evbuffer_add(b, "]}", 2);
	}
	evbuffer_add(b, "]}\n", 3);
	send_text(req, 200, "OK", "application/json", b);
	evbuffer_free(b);
}

void admin_metric(struct evbuffer *b, const char *name, const char *type, const char *help,
		  uint64_t v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
			    name, v);
}

void admin_metric_text(struct evbuffer *b, const char *name, const char *type, const char *help,
		       const char *v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type, name, v);
}

static void request_metrics(const struct accesslog_counters *c, struct evbuffer *b)
{
	static const char *const classes[] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct accesslog_counters n = *c;

	admin_metric(b, "zkrouter_requests_total", "counter", "Requests finished.", n.requests);
	evbuffer_add_printf(b, "# HELP zkrouter_responses_total Requests finished, by status class "
			    "(none: the client left before a status).\n"
			    "# TYPE zkrouter_responses_total counter\n");
	for (size_t i = 0; i < 6; i++)
		evbuffer_add_printf(b, "zkrouter_responses_total{class=\"%s\"} %" PRIu64 "\n",
				    classes[i], n.by_class[i]);
	admin_metric(b, "zkrouter_received_bytes_total", "counter",
		     "Bytes received from clients.", n.bytes_in);
	admin_metric(b, "zkrouter_sent_bytes_total", "counter",
		     "Bytes sent to clients.", n.bytes_out);
	admin_metric(b, "zkrouter_retried_requests_total", "counter",
		     "Requests that needed more than one instance.", n.retried);
	admin_metric(b, "zkrouter_access_log_write_errors_total", "counter",
		     "Access-log writes that failed (lines lost).", n.write_errors);
	evbuffer_add_printf(b, "# HELP zkrouter_request_duration_seconds Time from the first byte of "
			    "a request to its last answer byte.\n"
			    "# TYPE zkrouter_request_duration_seconds histogram\n");
	for (size_t i = 0; i < ACCESSLOG_BUCKETS; i++)
		evbuffer_add_printf(b, "zkrouter_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
				    accesslog_bucket_le[i], n.duration_bucket[i]);
	evbuffer_add_printf(b, "zkrouter_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
			    "zkrouter_request_duration_seconds_sum %.6f\n"
			    "zkrouter_request_duration_seconds_count %" PRIu64 "\n",
			    n.requests, n.duration_sum_s, n.requests);
	evbuffer_add_printf(b, "# HELP zkrouter_router_errors_total Answers of the router's own, by "
			    "X-Zkrouter-Error code.\n# TYPE zkrouter_router_errors_total counter\n");
	for (size_t i = 0; i < ACCESSLOG_ERRORS; i++)
		evbuffer_add_printf(b, "zkrouter_router_errors_total{code=\"%s\"} %" PRIu64 "\n",
				    accesslog_error_names[i], n.errors[i]);
	admin_metric(b, "zkrouter_client_closed_requests_total", "counter",
		     "Requests whose client closed before the whole answer (logged 499).", n.client_gone);
}

static void limits_metrics(const struct limits_stats *s, struct evbuffer *b)
{
	struct limits_stats st = *s;

	admin_metric(b, "zkrouter_per_ip_rejected_connections_total", "counter",
		     "Connections over max-connections-per-ip, answered 429.", st.rejected_conns);
	admin_metric(b, "zkrouter_per_ip_refused_connections_total", "counter",
		     "Connections over twice max-connections-per-ip, closed at once.", st.refused_conns);
	admin_metric(b, "zkrouter_per_ip_rejected_requests_total", "counter",
		     "Requests over max-requests-per-ip-per-s, answered 429.", st.rejected_reqs);
	admin_metric(b, "zkrouter_per_ip_tracked", "gauge", "Client addresses in the per-IP table.",
		     st.tracked);
	admin_metric(b, "zkrouter_per_ip_table_size", "gauge",
		     "Entries of the per-IP table.", st.size);
	admin_metric(b, "zkrouter_per_ip_evictions_total", "counter",
		     "Per-IP entries reused for another address (least recently used first).",
		     st.evictions);
	admin_metric(b, "zkrouter_per_ip_untracked_total", "counter",
		     "Connections whose address found no free per-IP entry (not limited).", st.untracked);
}

/* PROXY protocol headers on the listeners that expect them. */
static void pp_metrics(const struct proxy_pp_counters *c, struct evbuffer *b)
{
	struct proxy_pp_counters n = *c;

	admin_metric(b, "zkrouter_proxy_protocol_headers_total", "counter",
		     "PROXY protocol headers read on the listeners that expect them.", n.headers);
	evbuffer_add_printf(b, "# HELP zkrouter_proxy_protocol_rejected_total Connections closed on "
			    "a PROXY protocol listener without a valid header, by reason.\n"
			    "# TYPE zkrouter_proxy_protocol_rejected_total counter\n"
			    "zkrouter_proxy_protocol_rejected_total{reason=\"malformed\"} %" PRIu64 "\n"
			    "zkrouter_proxy_protocol_rejected_total{reason=\"timeout\"} %" PRIu64 "\n"
			    "zkrouter_proxy_protocol_rejected_total{reason=\"closed\"} %" PRIu64 "\n",
			    n.malformed, n.timeout, n.closed);
}

/* The /certs records this router read from ZooKeeper. */
static void certwatch_metrics(struct admin *a, struct evbuffer *b)
{
	struct zkr_certwatch_stats n;

	zkr_router_cert_stats(a->router, &n);
	admin_metric(b, "zkrouter_zk_certificate_records", "gauge",
		     "Certificates from ZooKeeper (/certs) in service.", n.served);
	admin_metric(b, "zkrouter_zk_certificate_reads_total", "counter",
		     "/certs records read from ZooKeeper.", n.records_read);
	admin_metric(b, "zkrouter_zk_certificate_records_skipped_total", "counter",
		     "/certs records skipped: undecodable, incomplete, or refused by the TLS store.",
		     n.bad_records);
	admin_metric(b, "zkrouter_zk_certificate_read_errors_total", "counter",
		     "/certs reads that failed (other than a record gone or a lost connection).",
		     n.read_errors);
}

/* Session tickets, and the keys they are made with. */
static void ticket_metrics(struct admin *a, struct evbuffer *b)
{
	struct tls_tickets_stats n;
	struct zkr_ticketkeys_stats ks;
	char name[2 * ZKR_TICKET_NAME_LEN + 1];

	tls_tickets_stats(a->tickets, &n);
	admin_metric(b, "zkrouter_tls_tickets_issued_total", "counter", "TLS session tickets issued.",
		     n.issued);
	admin_metric(b, "zkrouter_tls_tickets_resumed_total", "counter",
		     "TLS session tickets presented under a key in force (the session resumes).", n.resumed);
	admin_metric(b, "zkrouter_tls_tickets_renewed_total", "counter",
		     "Of those, tickets under an older key, replaced by one under the current key.", n.renewed);
	admin_metric(b, "zkrouter_tls_tickets_failed_total", "counter",
		     "TLS session tickets presented under an unknown or retired key (a full handshake).",
		     n.failed);
	if (a->router == NULL || !zkr_router_ticket_stats(a->router, &ks))
		return;
	for (size_t i = 0; i < ZKR_TICKET_NAME_LEN; i++)
		snprintf(name + 2 * i, 3, "%02x", ks.name[i]);
	evbuffer_add_printf(b, "# HELP zkrouter_tls_ticket_key_rotations_total Session-ticket key "
			    "rotations this router made: written to ZooKeeper, or of keys not shared.\n"
			    "# TYPE zkrouter_tls_ticket_key_rotations_total counter\n"
			    "zkrouter_tls_ticket_key_rotations_total{keys=\"zookeeper\"} %" PRIu64 "\n"
			    "zkrouter_tls_ticket_key_rotations_total{keys=\"local\"} %" PRIu64 "\n",
			    ks.rotations, ks.local_rotations);
	admin_metric(b, "zkrouter_tls_ticket_key_rotation_conflicts_total", "counter",
		     "Rotations another router wrote first (this router then read theirs).", ks.conflicts);
	admin_metric(b, "zkrouter_tls_ticket_key_updates_total", "counter",
		     "Session-ticket key sets read from ZooKeeper and put in force.", ks.updates);
	admin_metric(b, "zkrouter_tls_ticket_key_rejected_total", "counter",
		     "Reads of the session-ticket keys refused (undecodable, wrong sizes); the keys stayed.",
		     ks.rejected);
	admin_metric(b, "zkrouter_tls_ticket_keys_shared", "gauge",
		     "1 while the session-ticket keys in force are the ones shared in ZooKeeper.", ks.shared);
	evbuffer_add_printf(b, "# HELP zkrouter_tls_ticket_key_info The key that encrypts new "
			    "tickets (its public name) and the znode version it came from (-1: local).\n"
			    "# TYPE zkrouter_tls_ticket_key_info gauge\n"
			    "zkrouter_tls_ticket_key_info{name=\"%s\",version=\"%d\"} 1\n", name,
			    ks.shared ? (int)ks.version : -1);
	admin_metric(b, "zkrouter_tls_ticket_keys_rotated_at_seconds", "gauge",
		     "When the session-ticket keys in force were rotated (Unix time).",
		     ks.rotated_at_ms / 1000);
}

/* TLS handshakes on the client side, and how connections ended. */
static void tls_metrics(const struct proxy_tls_counters *c, struct evbuffer *b)
{
	struct proxy_tls_counters n = *c;

	evbuffer_add_printf(b, "# HELP zkrouter_tls_handshakes_total TLS handshakes completed, by "
			    "protocol version.\n"
			    "# TYPE zkrouter_tls_handshakes_total counter\n"
			    "zkrouter_tls_handshakes_total{version=\"TLSv1.2\"} %" PRIu64 "\n"
			    "zkrouter_tls_handshakes_total{version=\"TLSv1.3\"} %" PRIu64 "\n"
			    "zkrouter_tls_handshakes_total{version=\"other\"} %" PRIu64 "\n",
			    n.handshakes_tls12, n.handshakes_tls13, n.handshakes_other);
	admin_metric(b, "zkrouter_tls_sessions_resumed_total", "counter",
		     "TLS handshakes that resumed a session (session ID or ticket).", n.resumed);
	evbuffer_add_printf(b, "# HELP zkrouter_tls_handshake_failures_total TLS handshakes that "
			    "failed, by reason.\n"
			    "# TYPE zkrouter_tls_handshake_failures_total counter\n");
	for (size_t i = 0; i < TLS_FAIL_N; i++)
		evbuffer_add_printf(b, "zkrouter_tls_handshake_failures_total{reason=\"%s\"} %" PRIu64 "\n",
				    proxy_tls_fail_names[i], n.failures[i]);
	admin_metric(b, "zkrouter_tls_close_notify_sent_total", "counter",
		     "TLS connections closed with a close_notify alert.", n.close_notify_sent);
}

static void render_metrics(struct gather *g)
{
	struct admin *a = g->a;
	struct evhttp_request *req = g->req;
	struct route_table *t = g->t;
	struct evbuffer *b = evbuffer_new();
	uint64_t instances = 0, ejected = 0, health_down = 0;
	size_t k = 0;

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	for (size_t i = 0; t != NULL && i < t->n_apps; i++) {
		const struct route_app *app = t->apps[i];
		instances += app->n_instances;
		for (size_t j = 0; j < app->n_instances; j++) {
			struct backend_info bi;
			bool known;
			admin_instance_info(g, k++, &bi, &known);
			ejected += bi.ejected;
			health_down += bi.health_down;
		}
	}
	evbuffer_add_printf(b, "# HELP zkrouter_build_info Version of this zkrouterd.\n"
			    "# TYPE zkrouter_build_info gauge\n"
			    "zkrouter_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	admin_metric(b, "zkrouter_ready", "gauge", "1 while /healthz answers 200.",
		     t != NULL && !a->draining);
	admin_metric(b, "zkrouter_draining", "gauge", "1 after SIGTERM.", a->draining);
	admin_metric(b, "zkrouter_client_connections", "gauge", "Open client connections.",
		     g->sum.clients);
	admin_metric(b, "zkrouter_active_requests", "gauge", "Requests in flight plus open WebSocket tunnels (what a drain waits for).",
		     g->sum.active);
	admin_metric(b, "zkrouter_workers", "gauge", "Worker threads serving requests.", g->n);
	admin_metric(b, "zkrouter_table_generation", "gauge", "Generation of the routing table in use.",
		     t ? t->generation : 0);
	admin_metric(b, "zkrouter_table_from_disk", "gauge",
		     "1 while the table in use was read from the state file (ZooKeeper not read yet).",
		     a->from_disk);
	admin_metric(b, "zkrouter_table_age_seconds", "gauge",
		     "Age of the state file whose table is in use; 0 for ZooKeeper's table.", table_age_s(a));
	if (a->state != NULL) {
		struct statefile_stats ss;
		statefile_get_stats(a->state, &ss);
		admin_metric(b, "zkrouter_state_writes_total", "counter",
			     "State files written.", ss.writes);
		admin_metric(b, "zkrouter_state_write_errors_total", "counter",
			     "State-file writes that failed.", ss.write_errors);
		admin_metric(b, "zkrouter_state_written_generation", "gauge",
			     "Table generation in the last state file written.", ss.written_generation);
	}
	admin_metric(b, "zkrouter_apps", "gauge", "Apps in the routing table.", t ? t->n_apps : 0);
	admin_metric(b, "zkrouter_instances", "gauge",
		     "Instances in the routing table.", instances);
	admin_metric(b, "zkrouter_instances_ejected", "gauge",
		     "Instances passively ejected now.", ejected);
	admin_metric(b, "zkrouter_instances_health_down", "gauge", "Instances failing active checks.",
		     health_down);
	limits_metrics(&g->sum.lim, b);
	admin_metric(b, "zkrouter_app_queued_requests", "gauge",
		     "Requests waiting for a slot under their app's max_concurrent_requests.",
		     g->sum.app_queued);
	admin_metric(b, "zkrouter_app_overloaded_total", "counter",
		     "Requests answered 503 app_overloaded (queue full or wait too long).",
		     g->sum.app_overloaded);
	pp_metrics(&g->sum.pp, b);
	if (a->tls != NULL)
		tls_store_write_metrics(a->tls, b);
	if (a->tls != NULL && a->router != NULL)
		certwatch_metrics(a, b);
	if (a->tickets != NULL)
		ticket_metrics(a, b);
	tls_metrics(&g->sum.tls, b);
	admin_h2_metrics(&g->sum.h2, b);
	admin_h2c_metrics(&g->sum.h2c, b);
	admin_pool_metrics(&g->sum.pool, b);
	request_metrics(&g->sum.req, b);
	appseries_render(a->apps, &g->apps, g->app_snap, g->n, t, b, clock_now_ms());
	admin_worker_metrics(g, b);
	if (a->router != NULL)
		admin_zk_metrics(a->router, b);
	admin_process_metrics(b);
	send_text(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
	evbuffer_free(b);
}

/* The certificates in service; an empty list without TLS listeners. */
static void handle_certs(struct admin *a, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	if (a->tls != NULL)
		tls_store_write_json(a->tls, b, admin_json_string);
	else
		evbuffer_add_printf(b, "[]\n");
	send_text(req, 200, "OK", "application/json", b);
	evbuffer_free(b);
}

static void handle(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_plain(req, 405, "Method Not Allowed", "only GET and HEAD");
		return;
	}
	if (path == NULL) {
		reply_plain(req, 400, "Bad Request", "bad request target");
		return;
	}
	if (strcmp(path, "/healthz") == 0)
		handle_healthz(a, req);
	else if (strcmp(path, "/routes") == 0)
		admin_gather_start(a, a->ws, a->table, req, render_routes, NULL);
	else if (strcmp(path, "/metrics") == 0)
		admin_gather_start(a, a->ws, a->table, req, render_metrics, a->apps);
	else if (strcmp(path, "/certs") == 0)
		handle_certs(a, req);
	else
		reply_plain(req, 404, "Not Found", "not found; try /healthz, /routes, /metrics or /certs");
}

struct admin *admin_new(struct event_base *base, const char *addr_port, struct workers *ws,
			const char *node_id, char *why, size_t whylen)
{
	char addr[256];
	unsigned short port;
	struct admin *a;

	if (!config_split_addr(addr_port, addr, sizeof(addr), &port)) {
		snprintf(why, whylen, "admin address \"%s\" is not ADDR:PORT", addr_port);
		return NULL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->node_id = strdup(node_id)) == NULL)
		goto nomem;
	a->ws = ws;
	if ((a->http = evhttp_new(base)) == NULL)
		goto nomem;
	evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS_BYTES);
	evhttp_set_max_body_size(a->http, 0);
	evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
				   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(a->http, handle, a);
	if (evhttp_bind_socket_with_handle(a->http, addr, port) == NULL) {
		snprintf(why, whylen, "admin: cannot listen on %s: %s", addr_port, strerror(errno));
		admin_free(a);
		return NULL;
	}
	log_info("admin endpoint on http://%s/ (healthz, routes, metrics, certs)", addr_port);
	return a;
nomem:
	snprintf(why, whylen, "admin: out of memory");
	admin_free(a);
	return NULL;
}

bool admin_set_app_series(struct admin *a, unsigned max)
{
	struct appseries *as = NULL;

	if (max > 0 && (as = appseries_new(max)) == NULL)
		return false;
	appseries_free(a->apps);
	a->apps = as;
	return true;
}

void admin_set_router(struct admin *a, struct zkr_router *router)
{
	a->router = router;
}

void admin_set_tls_tickets(struct admin *a, struct tls_tickets *t)
{
	a->tickets = t;
}

void admin_set_table(struct admin *a, struct route_table *t)
{
	if (t != NULL)
		route_table_ref(t);
	route_table_unref(a->table);
	a->table = t;
}

void admin_set_table_source(struct admin *a, bool from_disk, uint64_t written_at_ms)
{
	a->from_disk = from_disk;
	a->disk_written_at_ms = written_at_ms;
}

void admin_set_statefile(struct admin *a, struct statefile *sf)
{
	a->state = sf;
}

void admin_set_tls(struct admin *a, struct tls_store *tls)
{
	a->tls = tls;
}

void admin_set_draining(struct admin *a, bool draining)
{
	a->draining = draining;
}

void admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	if (a->http != NULL)
		evhttp_free(a->http);
	route_table_unref(a->table);
	appseries_free(a->apps);
	free(a->node_id);
	free(a);
}
