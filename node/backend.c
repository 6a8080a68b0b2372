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

#include "node/backend.h"
#include "registry/hash.h"
#include "registry/log.h"

/* Closes the backend's idle connections through its owner's hook (an
 * empty pool needs no call: the owner may be gone at exit). */
static void backend_idle_close(struct backend *b)
{
	if (TAILQ_EMPTY(&b->idle) && b->h2c == NULL)
		return;
	if (b->idle_close != NULL)
		b->idle_close(b);
}

struct backend *backend_new(const char *domain, const struct route_instance *inst,
			    struct proxy_shared *sh)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->refs = 1;
	b->id = strdup(inst->id);
	b->domain = strdup(domain);
	b->host = strdup(inst->host);
	if (b->id == NULL || b->domain == NULL || b->host == NULL ||
	    (b->si = shared_instance_get(sh, domain, inst->id, inst->host, inst->port)) == NULL) {
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
	TAILQ_INIT(&b->idle);
	if (strchr(b->host, ':'))
		snprintf(b->name, sizeof(b->name), "[%s]:%u", b->host, (unsigned)b->port);
	else
		snprintf(b->name, sizeof(b->name), "%s:%u", b->host, (unsigned)b->port);
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
	shared_instance_unref(b->si);
	free(b->id);
	free(b->domain);
	free(b->host);
	free(b);
}

bool backend_routable(const struct backend *b)
{
	return !b->draining && !b->removed && shared_instance_addr_gen(b->si) != 0;
}

bool backend_ejected(const struct backend *b, uint64_t now_ms)
{
	return shared_instance_ejected(b->si, now_ms);
}

bool backend_health_down(const struct backend *b)
{
	return shared_instance_down(b->si);
}

bool backend_addr(struct backend *b)
{
	uint64_t gen = shared_instance_addr_gen(b->si);

	/* The lock and the copy only when the control thread published a
	 * new address since the last connect. */
	if (gen != 0 && gen != b->addr_gen)
		b->addr_gen = shared_instance_addr(b->si, &b->addr, &b->addrlen);
	return b->addrlen != 0;
}

void backend_record_failure(struct backend *b, uint64_t now_ms, unsigned base_ms, unsigned max_ms)
{
	shared_instance_record_failure(b->si, now_ms, base_ms, max_ms, b->name);
}

void backend_record_success(struct backend *b)
{
	shared_instance_record_success(b->si, b->name);
}

void backend_retire(struct backend *b)
{
	if (b->removed)
		return;
	b->removed = true;
	log_debug("app %s instance %s (%s): retired, %u in flight", b->domain, b->id, b->name,
		  b->outstanding);
	backend_idle_close(b);
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
	if (l != NULL && --l->refs == 0) {
		/* Slots still counted (a request ended without giving its
		 * back cannot happen; this keeps the process's count whole
		 * if one ever did). */
		while (l->counted > 0) {
			l->counted--;
			shared_app_put(l->sa, -1);
		}
		shared_app_unref(l->sa);
		free(l);
	}
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
					 const struct backend_map *m)
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
		if ((s->load->sa = shared_app_get(m->shared, app->domain)) == NULL) {
			free(s->load);
			s->load = NULL;
		}
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
	/* A cap that appears counts the requests already running here. */
	if (s->load->max_concurrent && s->load->counted < s->load->in_flight) {
		shared_app_add(s->load->sa, s->load->in_flight - s->load->counted);
		s->load->counted = s->load->in_flight;
	}
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
			b = backend_new(app->domain, inst, m->shared);
			if (b == NULL)
				goto failed;
			b->idle_close = m->idle_close;
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
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
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
	struct proxy_shared *sh = m->shared;
	void (*idle_close)(struct backend *) = m->idle_close;
	size_t i;

	for (i = 0; i < m->cap; i++)
		app_state_unref(m->slots[i]);
	free(m->slots);
	backend_map_init(m);
	m->shared = sh;
	m->idle_close = idle_close;
}

bool backend_map_update(struct backend_map *m, const struct route_table *old,
			const struct route_table *t)
{
	struct backend_map nm;
	size_t i, j;

	backend_map_init(&nm);
	nm.shared = m->shared;
	nm.idle_close = m->idle_close;
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
			s = app_state_build(app, prev, m);
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
