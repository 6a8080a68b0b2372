/*
 * Active health checks (see health.h), one evhttp client connection per
 * checked instance, kept open between checks so a check costs a request,
 * not a handshake. Checks are kept in an array sorted like the table
 * (domain, then instance id), so a new table is reconciled with one merge
 * walk instead of a lookup per instance.
 *
 * Lifetimes: a check is freed only from health_set_table or health_free,
 * never from its own timer or request callback; freeing its connection
 * drops a pending request without calling back.
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/http.h>

#include "node/health.h"
#include "node/shared.h"
#include "registry/log.h"
#include "registry/prng.h"

struct check {
	struct health *h;
	char *domain, *id, *host, *path, *host_header;
	unsigned short port;
	unsigned interval_ms;
	struct event *timer;
	struct evhttp_connection *conn;
	bool in_flight;
	bool up;
	unsigned passes, fails;
	struct shared_instance *si;   /* where the verdict goes (reference) */
};

struct health {
	struct event_base *base;
	struct evdns_base *dns;    /* the shared state's */
	struct proxy_shared *sh;
	uint64_t rng;              /* jitter; this thread's own state */
	unsigned timeout_ms, rise, fall;
	unsigned default_interval_ms;   /* for apps with a path and no interval */
	struct check **checks;
	size_t n;
};

static void check_free(struct check *c)
{
	if (c == NULL)
		return;
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->conn != NULL)
		evhttp_connection_free(c->conn);
	free(c->domain);
	free(c->id);
	free(c->host);
	free(c->path);
	free(c->host_header);
	shared_instance_unref(c->si);
	free(c);
}

static void check_result(struct check *c, bool ok, const char *detail)
{
	struct health *h = c->h;
	if (ok) {
		c->fails = 0;
		if (++c->passes >= h->rise && !c->up) {
			c->up = true;
			log_info("health: %s instance %s is up again (%s)", c->domain, c->id, detail);
			shared_instance_set_health(c->si, true);
		}
	} else {
		c->passes = 0;
		if (++c->fails >= h->fall && c->up) {
			c->up = false;
			log_warn("health: %s instance %s is down: %s", c->domain, c->id, detail);
			shared_instance_set_health(c->si, false);
		}
	}
}

static void response_cb(struct evhttp_request *req, void *arg)
{
	struct check *c = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	char detail[64];

	c->in_flight = false;
	if (code == 0)
		snprintf(detail, sizeof(detail), "no response");
	else
		snprintf(detail, sizeof(detail), "GET %.32s: %d", c->path, code);
	check_result(c, code >= 200 && code < 400, detail);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check *c = arg;
	struct health *h = c->h;
	struct evhttp_request *req;
	struct timeval every = { c->interval_ms / 1000, (c->interval_ms % 1000) * 1000 };

	if (evtimer_add(c->timer, &every) != 0)
		log_error("health: %s instance %s: cannot re-arm its timer", c->domain, c->id);
	if (c->in_flight)
		return;          /* the timeout will answer first */
	if (c->conn == NULL) {
		c->conn = evhttp_connection_base_new(h->base, h->dns, c->host, c->port);
		if (c->conn == NULL) {
			check_result(c, false, "cannot create a connection");
			return;
		}
		evhttp_connection_set_retries(c->conn, 0);
	}
	struct timeval tv = { h->timeout_ms / 1000, (h->timeout_ms % 1000) * 1000 };
	evhttp_connection_set_timeout_tv(c->conn, &tv);
	if ((req = evhttp_request_new(response_cb, c)) == NULL) {
		check_result(c, false, "out of memory");
		return;
	}
	struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
	evhttp_add_header(hd, "Host", c->host_header);
	evhttp_add_header(hd, "User-Agent", "zkrouter-health/" PACKAGE_VERSION);
	if (evhttp_make_request(c->conn, req, EVHTTP_REQ_GET, c->path) != 0) {
		/* evhttp_make_request frees req on failure. */
		check_result(c, false, "request not sent");
		return;
	}
	c->in_flight = true;
}

static bool check_arm(struct check *c)
{
	/* First check at a random point of the interval, so many routers and
	 * many instances do not all fire together; timer_cb re-arms. */
	unsigned first = (unsigned)(prng_next(&c->h->rng) % c->interval_ms);
	struct timeval tv = { first / 1000, (first % 1000) * 1000 };
	c->timer = evtimer_new(c->h->base, timer_cb, c);
	if (c->timer == NULL || evtimer_add(c->timer, &tv) != 0)
		return false;
	/* Says which interval was chosen (the app's or the router's), and,
	 * by its absence, that an app without a path gets no check. */
	log_debug("health: checking %s instance %s: GET %s every %u ms", c->domain, c->id, c->path,
		  c->interval_ms);
	return true;
}

/* An app's check interval: its own, or the router's default. */
static unsigned app_interval(const struct health *h, const struct route_app *app)
{
	return app->config.health_interval_ms ? app->config.health_interval_ms : h->default_interval_ms;
}

static struct check *check_new(struct health *h, const struct route_app *app,
			       const struct route_instance *in)
{
	struct check *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->h = h;
	c->up = true;
	c->port = in->port;
	c->interval_ms = app_interval(h, app);
	c->domain = strdup(app->domain);
	c->id = strdup(in->id);
	c->host = strdup(in->host);
	c->path = strdup(app->config.health_path);
	/* A wildcard app has no single name: present the instance's own. */
	c->host_header = strdup(strncmp(app->domain, "*.", 2) == 0 ? in->host : app->domain);
	/* Every worker sees the verdict through the instance's shared
	 * state, which the check keeps while it runs. */
	c->si = shared_instance_get(h->sh, app->domain, in->id, in->host, in->port);
	if (!c->domain || !c->id || !c->host || !c->path || !c->host_header || !c->si) {
		check_free(c);
		return NULL;
	}
	return c;
}

/* A check leaves the set (instance gone, or checked differently now). If
 * it had marked the instance down, lift that: nothing else would. */
static void check_retire(struct check *c)
{
	if (!c->up)
		shared_instance_set_health(c->si, true);
	check_free(c);
}

static int key_cmp(const char *d1, const char *i1, const char *d2, const char *i2)
{
	int r = strcmp(d1, d2);
	return r != 0 ? r : strcmp(i1, i2);
}

/* The same instance, checked the same way (else the check restarts). */
static bool check_same(const struct check *c, const struct route_app *app,
		       const struct route_instance *in)
{
	return c->port == in->port && strcmp(c->host, in->host) == 0 &&
	       strcmp(c->path, app->config.health_path) == 0 &&
	       c->interval_ms == app_interval(c->h, app);
}

void health_set_table(struct health *h, const struct route_table *t)
{
	size_t total = 0, n = 0, old = 0;
	struct check **next;

	for (size_t i = 0; t != NULL && i < t->n_apps; i++)
		if (t->apps[i]->config.health_path != NULL)
			total += t->apps[i]->n_instances;
	next = calloc(total ? total : 1, sizeof(*next));
	if (next == NULL) {
		log_error("health: out of memory; keeping the previous set of checks");
		return;
	}
	for (size_t i = 0; t != NULL && i < t->n_apps; i++) {
		const struct route_app *app = t->apps[i];
		if (app->config.health_path == NULL)
			continue;
		for (size_t j = 0; j < app->n_instances; j++) {
			const struct route_instance *in = &app->instances[j];
			int cmp = -1;
			/* Checks before this key are gone from the table. */
			while (old < h->n &&
			       (cmp = key_cmp(h->checks[old]->domain, h->checks[old]->id, app->domain, in->id)) < 0)
				check_retire(h->checks[old++]);
			if (old < h->n && cmp == 0 && check_same(h->checks[old], app, in)) {
				next[n++] = h->checks[old++];
				continue;
			}
			if (old < h->n && cmp == 0)
				check_retire(h->checks[old++]);
			struct check *c = check_new(h, app, in);
			if (c == NULL || !check_arm(c)) {
				log_error("health: cannot start checks of %s instance %s", app->domain, in->id);
				check_free(c);
				continue;
			}
			next[n++] = c;
		}
	}
	while (old < h->n)
		check_retire(h->checks[old++]);
	free(h->checks);
	h->checks = next;
	h->n = n;
}

void health_apply_config(struct health *h, const struct zkr_config *cfg)
{
	h->timeout_ms = cfg->health_timeout_ms;
	h->rise = cfg->health_rise;
	h->fall = cfg->health_fall;
	h->default_interval_ms = cfg->health_interval_ms;
}

struct health *health_new(struct event_base *base, struct proxy_shared *sh, const struct zkr_config *cfg)
{
	struct health *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->base = base;
	h->sh = sh;
	/* Instance hosts may be DNS names: resolved without blocking the loop. */
	h->dns = proxy_shared_dns(sh);
	prng_seed(&h->rng, (uintptr_t)h);
	health_apply_config(h, cfg);
	return h;
}

size_t health_checks(const struct health *h)
{
	return h->n;
}

void health_free(struct health *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		check_free(h->checks[i]);
	free(h->checks);
	free(h);
}
