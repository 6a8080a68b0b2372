/*
 * Per-instance runtime state across table snapshots (see backend.h), and
 * the map from a snapshot's apps to that state, rebuilt on every snapshot
 * by walking the old and the new app lists side by side: an unchanged app
 * (same pointer, apps are shared between snapshots) costs one lookup.
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "node/backend.h"
#include "registry/hash.h"
#include "registry/log.h"

/* base_ms doubled `doublings` times, at most max_ms: the backoff of
 * passive ejection and of failed lookups. */
static uint64_t backoff_ms(unsigned base_ms, unsigned max_ms, unsigned doublings)
{
	uint64_t d = base_ms ? base_ms : 1;

	for (unsigned i = 0; i < doublings && d < max_ms; i++)
		d *= 2;
	return d > max_ms ? max_ms : d;
}

/* ---- host names -------------------------------------------------------- */

#define LOOKUP_RETRY_MIN_MS 1000u
#define LOOKUP_RETRY_MAX_MS 60000u

static void backend_lookup(struct backend *b);

static void backend_looked_up(int err, struct evutil_addrinfo *res, void *arg)
{
	struct backend *b = arg;
	struct evutil_addrinfo *pick;
	char addr[64];

	b->looking_up = false;
	b->lookup = NULL;
	/* IPv4 first when the name has both, as most apps listen on it. */
	for (pick = res; pick != NULL && pick->ai_family != AF_INET; pick = pick->ai_next)
		;
	if (pick == NULL)
		pick = res;
	if (err == 0 && pick != NULL && pick->ai_addrlen <= sizeof(b->addr)) {
		memcpy(&b->addr, pick->ai_addr, pick->ai_addrlen);
		b->addrlen = pick->ai_addrlen;
		b->lookup_failures = 0;
		if (evutil_inet_ntop(b->addr.ss_family,
				     b->addr.ss_family == AF_INET6
					     ? (const void *)&((struct sockaddr_in6 *)&b->addr)->sin6_addr
					     : (const void *)&((struct sockaddr_in *)&b->addr)->sin_addr,
				     addr, sizeof(addr)) == NULL)
			snprintf(addr, sizeof(addr), "?");
		log_info("app %s instance %s: %s is %s", b->domain, b->id, b->host, addr);
	} else if (err != EVUTIL_EAI_CANCEL && !b->removed && b->lookup_retry != NULL &&
		   b->refs > 1) {
		/* (refs == 1: only this lookup holds it, a table that was
		 * never installed made it; nothing to retry for.) */
		unsigned ms = (unsigned)backoff_ms(LOOKUP_RETRY_MIN_MS, LOOKUP_RETRY_MAX_MS,
						   b->lookup_failures);
		struct timeval tv;

		/* One warning per instance; the retries after it are quiet. */
		zkr_log_at(b->lookup_failures ? ZKR_LOG_DEBUG : ZKR_LOG_WARN,
			   "app %s instance %s: cannot resolve %s: %s; retrying in %u ms", b->domain,
			   b->id, b->host, err ? evutil_gai_strerror(err) : "no usable address", ms);
		b->lookup_failures++;
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		if (evtimer_add(b->lookup_retry, &tv) == 0)
			backend_ref(b);   /* the timer's */
	}
	if (res != NULL)
		evutil_freeaddrinfo(res);
	backend_unref(b);   /* the lookup's */
}

static void backend_lookup_again(evutil_socket_t fd, short what, void *arg)
{
	struct backend *b = arg;

	(void)fd;
	(void)what;
	if (!b->removed && b->refs > 1)
		backend_lookup(b);
	backend_unref(b);   /* the timer's */
}

static void backend_lookup(struct backend *b)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	char port[8];

	snprintf(port, sizeof(port), "%u", (unsigned)b->port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_NUMERICSERV;
	backend_ref(b);   /* the lookup's, dropped in backend_looked_up */
	b->looking_up = true;
	req = evdns_getaddrinfo(b->resolver->dns, b->host, port, &hints, backend_looked_up, b);
	/* An answer from /etc/hosts or an immediate error has already run
	 * the callback. */
	if (b->looking_up)
		b->lookup = req;
}

/* Numeric hosts are their address; names are looked up, see backend_new. */
static void backend_resolve(struct backend *b)
{
	int len = (int)sizeof(b->addr);
	char hostport[300];

	if (strchr(b->host, ':'))
		snprintf(hostport, sizeof(hostport), "[%s]:%u", b->host, (unsigned)b->port);
	else
		snprintf(hostport, sizeof(hostport), "%s:%u", b->host, (unsigned)b->port);
	if (evutil_parse_sockaddr_port(hostport, (struct sockaddr *)&b->addr, &len) == 0) {
		b->addrlen = (socklen_t)len;
		return;
	}
	b->addrlen = 0;
	if (b->resolver == NULL) {
		log_warn("app %s instance %s: %s is a host name and there is no DNS resolver",
			 b->domain, b->id, b->host);
		return;
	}
	b->lookup_retry = evtimer_new(b->resolver->base, backend_lookup_again, b);
	backend_lookup(b);
}

/* Stops a pending lookup or retry; each drops its reference. A cancelled
 * lookup's callback is deferred to the loop: at shutdown, when the loop
 * does not run again, its backend is left to the process's exit. */
static void backend_lookup_stop(struct backend *b)
{
	if (b->lookup != NULL)
		evdns_getaddrinfo_cancel(b->lookup);
	if (b->lookup_retry != NULL && evtimer_pending(b->lookup_retry, NULL)) {
		evtimer_del(b->lookup_retry);
		backend_unref(b);
	}
}

/* Closes the backend's idle connections through its owner's hook (an
 * empty pool needs no call: the owner may be gone at exit). */
static void backend_idle_close(struct backend *b)
{
	if (TAILQ_EMPTY(&b->idle))
		return;
	if (b->resolver != NULL && b->resolver->idle_close != NULL)
		b->resolver->idle_close(b);
}

struct backend *backend_new(const char *domain, const struct route_instance *inst,
			    const struct backend_resolver *resolver)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->refs = 1;
	b->id = strdup(inst->id);
	b->domain = strdup(domain);
	b->host = strdup(inst->host);
	if (b->id == NULL || b->domain == NULL || b->host == NULL) {
		free(b->id);
		free(b->domain);
		free(b->host);
		free(b);
		return NULL;
	}
	b->port = inst->port;
	b->weight = inst->weight ? inst->weight : 1;
	b->draining = inst->draining;
	/* The seed depends on the id only, so every router hashes alike. */
	b->hash_seed = hash_fnv1a_str(inst->id);
	b->resolver = resolver;
	TAILQ_INIT(&b->idle);
	if (strchr(b->host, ':'))
		snprintf(b->name, sizeof(b->name), "[%s]:%u", b->host, (unsigned)b->port);
	else
		snprintf(b->name, sizeof(b->name), "%s:%u", b->host, (unsigned)b->port);
	backend_resolve(b);
	return b;
}

struct backend *backend_ref(struct backend *b)
{
	if (b->refs == 0)
		ZKR_BUG("backend %s: reference taken on a released instance", b->name);
	b->refs++;
	return b;
}

void backend_unref(struct backend *b)
{
	if (b == NULL)
		return;
	if (b->refs == 0) {
		/* Released once too often: leave it be rather than free twice. */
		ZKR_BUG("backend %s: reference count underflow", b->name);
		return;
	}
	if (--b->refs > 0)
		return;
	backend_idle_close(b);
	if (b->lookup_retry != NULL)
		event_free(b->lookup_retry);
	free(b->id);
	free(b->domain);
	free(b->host);
	free(b);
}

bool backend_routable(const struct backend *b)
{
	return !b->draining && !b->removed && b->addrlen != 0;
}

bool backend_ejected(const struct backend *b, uint64_t now_ms)
{
	return b->ejected_until_ms > now_ms;
}

void backend_record_failure(struct backend *b, uint64_t now_ms, unsigned base_ms, unsigned max_ms)
{
	uint64_t d;

	b->consecutive_failures++;
	d = backoff_ms(base_ms, max_ms, b->consecutive_failures - 1);
	/* Only the way into ejection is worth an info line; failing-open
	 * retries of an ejected instance would repeat it. */
	zkr_log_at(backend_ejected(b, now_ms) ? ZKR_LOG_DEBUG : ZKR_LOG_INFO,
		   "app %s instance %s (%s): ejected for %llu ms after %u failure(s)", b->domain,
		   b->id, b->name, (unsigned long long)d, b->consecutive_failures);
	b->ejected_until_ms = now_ms + d;
}

void backend_record_success(struct backend *b)
{
	if (b->consecutive_failures && b->ejected_until_ms)
		log_info("app %s instance %s (%s): back in service", b->domain, b->id, b->name);
	b->consecutive_failures = 0;
	b->ejected_until_ms = 0;
}

void backend_retire(struct backend *b)
{
	if (b->removed)
		return;
	b->removed = true;
	log_debug("app %s instance %s (%s): retired, %u in flight", b->domain, b->id, b->name,
		  b->outstanding);
	backend_idle_close(b);
	backend_lookup_stop(b);
}

/* ---- app states -------------------------------------------------------- */

struct app_load *app_load_ref(struct app_load *l)
{
	l->refs++;
	return l;
}

void app_load_unref(struct app_load *l)
{
	/* Queued requests hold their app_state, which holds this. */
	if (l != NULL && --l->refs == 0)
		free(l);
}

struct app_state *app_state_ref(struct app_state *s)
{
	if (s->refs == 0)
		ZKR_BUG("app %s: reference taken on a released app state", s->app->domain);
	s->refs++;
	return s;
}

void app_state_unref(struct app_state *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->refs == 0) {
		/* Released once too often: leave it be rather than free twice. */
		ZKR_BUG("app %s: app state reference count underflow", s->app->domain);
		return;
	}
	if (--s->refs > 0)
		return;
	for (i = 0; i < s->n; i++)
		backend_unref(s->bes[i]);
	free(s->bes);
	app_load_unref(s->load);
	route_app_unref(s->app);
	free(s);
}

struct backend *app_state_find(const struct app_state *s, const char *id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(id, s->bes[mid]->id);

		if (c == 0)
			return s->bes[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static bool same_endpoint(const struct backend *b, const struct route_instance *inst)
{
	return b->port == inst->port && strcmp(b->host, inst->host) == 0;
}

/* A new app_state for `app`, carrying over the backends of `old` (may be
 * NULL) whose instance still exists at the same address. */
static struct app_state *app_state_build(struct route_app *app, const struct app_state *old,
					 const struct backend_resolver *resolver)
{
	struct app_state *s = calloc(1, sizeof(*s));
	size_t i;

	if (s == NULL)
		return NULL;
	s->refs = 1;
	s->bes = calloc(app->n_instances ? app->n_instances : 1, sizeof(*s->bes));
	if (old != NULL && old->load != NULL) {
		s->load = app_load_ref(old->load);
	} else if ((s->load = calloc(1, sizeof(*s->load))) != NULL) {
		s->load->refs = 1;
		TAILQ_INIT(&s->load->queue);
	}
	if (s->bes == NULL || s->load == NULL) {
		free(s->bes);
		app_load_unref(s->load);
		free(s);
		return NULL;
	}
	/* The newest config sets the cap for every request of the app. */
	s->load->max_concurrent = app->config.max_concurrent_requests;
	s->load->max_queued = app->config.max_queued_requests;
	for (i = 0; i < app->n_instances; i++) {
		const struct route_instance *inst = &app->instances[i];
		struct backend *b = old ? app_state_find(old, inst->id) : NULL;

		if (b != NULL && same_endpoint(b, inst) && !b->removed) {
			backend_ref(b);
			b->weight = inst->weight ? inst->weight : 1;
			b->draining = inst->draining;
			if (b->draining)
				backend_idle_close(b);
		} else {
			b = backend_new(app->domain, inst, resolver);
			if (b == NULL)
				goto failed;
		}
		s->bes[s->n++] = b;
	}
	s->app = route_app_ref(app);
	return s;
failed:
	for (i = 0; i < s->n; i++)
		backend_unref(s->bes[i]);
	free(s->bes);
	app_load_unref(s->load);
	free(s);
	return NULL;
}

/* Retires the backends of `old` that `repl` (may be NULL) does not hold. */
static void app_state_retire_missing(const struct app_state *old, const struct app_state *repl)
{
	size_t i;

	for (i = 0; i < old->n; i++) {
		struct backend *b = old->bes[i];

		if (repl == NULL || app_state_find(repl, b->id) != b)
			backend_retire(b);
	}
}

void backend_map_init(struct backend_map *m)
{
	memset(m, 0, sizeof(*m));
}

static size_t ptr_hash(const void *p, size_t cap)
{
	return (size_t)hash_mix64((uint64_t)(uintptr_t)p) & (cap - 1);
}

struct app_state *backend_map_get(const struct backend_map *m, const struct route_app *app)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = ptr_hash(app, m->cap);; i = (i + 1) & (m->cap - 1)) {
		struct app_state *s = m->slots[i];

		if (s == NULL)
			return NULL;
		if (s->app == app)
			return s;
	}
}

static void map_put(struct app_state **slots, size_t cap, struct app_state *s)
{
	size_t i;

	for (i = ptr_hash(s->app, cap); slots[i] != NULL; i = (i + 1) & (cap - 1))
		;
	slots[i] = s;
}

static void map_release(struct backend_map *m)
{
	const struct backend_resolver *resolver = m->resolver;
	size_t i;

	for (i = 0; i < m->cap; i++)
		app_state_unref(m->slots[i]);
	free(m->slots);
	backend_map_init(m);
	m->resolver = resolver;
}

bool backend_map_update(struct backend_map *m, const struct route_table *old,
			const struct route_table *t)
{
	struct backend_map nm;
	size_t i, j;

	backend_map_init(&nm);
	nm.resolver = m->resolver;
	nm.cap = 16;
	while (nm.cap < 2 * (t->n_apps + 1))
		nm.cap *= 2;
	nm.slots = calloc(nm.cap, sizeof(*nm.slots));
	if (nm.slots == NULL)
		return false;

	/* Both app lists are sorted by domain: a merge walk pairs each app
	 * with its previous version; shared (unchanged) apps keep their state. */
	for (i = 0, j = 0; i < t->n_apps; i++) {
		struct route_app *app = t->apps[i];
		struct app_state *s = backend_map_get(m, app);
		struct app_state *prev = NULL;
		int c = 1;

		while (old && j < old->n_apps &&
		       (c = strcmp(old->apps[j]->domain, app->domain)) < 0)
			j++;
		if (old && j < old->n_apps && c == 0)
			prev = backend_map_get(m, old->apps[j]);
		if (s != NULL) {
			app_state_ref(s);
		} else {
			s = app_state_build(app, prev, m->resolver);
			if (s == NULL) {
				map_release(&nm);
				return false;
			}
		}
		map_put(nm.slots, nm.cap, s);
		nm.count++;
	}
	/* Retire the backends that left: those of apps replaced or removed
	 * that the new app_state does not carry over. */
	if (old) {
		for (i = 0, j = 0; i < old->n_apps; i++) {
			struct app_state *o = backend_map_get(m, old->apps[i]);
			struct app_state *repl = NULL;
			int c = 1;

			if (o == NULL)
				continue;
			while (j < t->n_apps && (c = strcmp(t->apps[j]->domain, o->app->domain)) < 0)
				j++;
			if (j < t->n_apps && c == 0)
				repl = backend_map_get(&nm, t->apps[j]);
			if (repl != o)
				app_state_retire_missing(o, repl);
		}
	}
	map_release(m);
	*m = nm;
	return true;
}

void backend_map_clear(struct backend_map *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		if (m->slots[i])
			app_state_retire_missing(m->slots[i], NULL);
	map_release(m);
}
