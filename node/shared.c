/*
 * Process-wide state shared by the proxies of every worker (see shared.h):
 * the instance and app maps, instance host names resolved on the control
 * loop, the connection budget and the wake-ups that let a worker tell
 * another "a slot freed" or "a connection closed".
 *
 * Locking: one mutex (sh->lock) guards both maps, the list of names to
 * look up and the proxies' wake-up events; it is taken at table changes,
 * by health checks and DNS answers, and on the rare wake-up paths, never
 * per request. A reference count drops to zero only under that lock, so
 * a lookup under it never finds an object being freed. The address of an
 * instance has a lock of its own, taken by a worker only when the
 * address's generation moved since it last copied it. Host names are
 * looked up in shared-dns.c.
 */
#include <config.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "node/limits.h"
#include "node/shared-int.h"
#include "node/shared.h"
#include "registry/hash.h"
#include "registry/log.h"

/* The map's index of an instance (names from the table, not from clients). */
static uint64_t inst_hash(const char *domain, const char *id, const char *host, uint16_t port)
{
	uint64_t h = hash_mix64(hash_fnv1a_str(domain));

	h = hash_mix64(h ^ hash_fnv1a_str(id));
	h = hash_mix64(h ^ hash_fnv1a_str(host));
	return hash_mix64(h ^ port);
}

/* Wakes the proxies whose bits are set in `mask` (but `skip`) with `what`. */
static void post_mask(struct proxy_shared *sh, _Atomic uint64_t *mask, unsigned what, int skip)
{
	pthread_mutex_lock(&sh->lock);
	for (int w = 0; w < SHARED_MASK_WORDS; w++) {
		uint64_t m = atomic_load(&mask[w]);

		while (m) {
			int slot = w * 64 + __builtin_ctzll(m);

			m &= m - 1;
			if (slot != skip && sh->attached[slot] && sh->wake[slot] != NULL)
				sh->wake[slot](sh->wake_arg[slot], what);
		}
	}
	pthread_mutex_unlock(&sh->lock);
}

/* ---- instances ----------------------------------------------------------- */

static void instance_free(struct shared_instance *si)
{
	if (si->lookup_retry != NULL)
		event_free(si->lookup_retry);
	pthread_mutex_destroy(&si->addr_lock);
	free(si->domain);
	free(si->id);
	free(si->host);
	free(si);
}

static struct shared_instance *instance_new(const char *domain, const char *id, const char *host,
					    uint16_t port)
{
	struct shared_instance *si = calloc(1, sizeof(*si));
	char hostport[300];
	int len = (int)sizeof(si->addr);

	if (si == NULL)
		return NULL;
	if (pthread_mutex_init(&si->addr_lock, NULL) != 0) {
		free(si);
		return NULL;
	}
	si->domain = strdup(domain);
	si->id = strdup(id);
	si->host = strdup(host);
	if (si->domain == NULL || si->id == NULL || si->host == NULL) {
		instance_free(si);
		return NULL;
	}
	si->port = port;
	atomic_init(&si->refs, 1);
	if (strchr(host, ':'))
		snprintf(hostport, sizeof(hostport), "[%s]:%u", host, (unsigned)port);
	else
		snprintf(hostport, sizeof(hostport), "%s:%u", host, (unsigned)port);
	/* A numeric host is its address at once. */
	if (evutil_parse_sockaddr_port(hostport, (struct sockaddr *)&si->addr, &len) == 0) {
		si->addrlen = (socklen_t)len;
		atomic_init(&si->addr_gen, 1);
	}
	return si;
}

static bool inst_grow(struct proxy_shared *sh)
{
	size_t cap = sh->inst_cap ? sh->inst_cap * 2 : 256;
	struct shared_instance **b = calloc(cap, sizeof(*b));

	if (b == NULL)
		return false;
	for (size_t i = 0; i < sh->inst_cap; i++) {
		struct shared_instance *si, *next;

		for (si = sh->inst[i]; si != NULL; si = next) {
			next = si->next;
			si->next = b[si->hash & (cap - 1)];
			b[si->hash & (cap - 1)] = si;
		}
	}
	free(sh->inst);
	sh->inst = b;
	sh->inst_cap = cap;
	return true;
}

struct shared_instance *shared_instance_get(struct proxy_shared *sh, const char *domain,
					    const char *id, const char *host, uint16_t port)
{
	struct shared_instance *si;
	uint64_t h;
	bool kick = false;

	if (sh == NULL)
		return instance_new(domain, id, host, port);
	h = inst_hash(domain, id, host, port);
	pthread_mutex_lock(&sh->lock);
	for (si = sh->inst_cap ? sh->inst[h & (sh->inst_cap - 1)] : NULL; si != NULL; si = si->next)
		if (si->hash == h && si->port == port && strcmp(si->id, id) == 0 &&
		    strcmp(si->domain, domain) == 0 && strcmp(si->host, host) == 0)
			break;
	if (si != NULL) {
		atomic_fetch_add(&si->refs, 1);
	} else if ((sh->n_inst + 1 <= 2 * sh->inst_cap || inst_grow(sh)) &&
		   (si = instance_new(domain, id, host, port)) != NULL) {
		si->sh = sh;
		si->hash = h;
		si->next = sh->inst[h & (sh->inst_cap - 1)];
		sh->inst[h & (sh->inst_cap - 1)] = si;
		sh->n_inst++;
	}
	/* A name without an address and no lookup under way: queue one
	 * (again, if the last one gave up when nobody held the instance). */
	if (si != NULL && atomic_load(&si->addr_gen) == 0 && !si->resolving) {
		if (sh->dns == NULL) {
			log_warn("app %s instance %s: %s is a host name and there is no DNS resolver",
				 domain, id, host);
		} else {
			si->resolving = true;
			atomic_fetch_add(&si->refs, 1);
			si->pending_next = sh->pending;
			sh->pending = si;
			kick = true;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	if (kick)
		event_active(sh->resolve_ev, EV_TIMEOUT, 0);
	return si;
}

struct shared_instance *shared_instance_ref(struct shared_instance *si)
{
	if (atomic_fetch_add_explicit(&si->refs, 1, memory_order_relaxed) == 0)
		ZKR_BUG("instance %s: reference taken on a released instance", si->id);
	return si;
}

void shared_instance_unref(struct shared_instance *si)
{
	struct proxy_shared *sh;
	unsigned r;

	if (si == NULL)
		return;
	sh = si->sh;
	r = atomic_load(&si->refs);
	while (r > 2)
		if (atomic_compare_exchange_weak(&si->refs, &r, r - 1))
			return;
	if (r == 0) {
		ZKR_BUG("instance %s: reference count underflow", si->id);
		return;
	}
	/* The last reference, or the last besides a lookup's: decided under
	 * the map's lock, where a lookup would take a new one. */
	if (sh != NULL)
		pthread_mutex_lock(&sh->lock);
	if (sh != NULL && !sh->closing && si->resolving && !si->stale_queued &&
	    atomic_load(&si->refs) == 2) {
		/* Only the lookup would be left: this reference goes to the
		 * control thread, which stops the lookup (stale_check). */
		si->stale_queued = true;
		si->stale_next = sh->stale;
		sh->stale = si;
		pthread_mutex_unlock(&sh->lock);
		event_active(sh->resolve_ev, EV_TIMEOUT, 0);
		return;
	}
	if (atomic_fetch_sub(&si->refs, 1) != 1) {
		if (sh != NULL)
			pthread_mutex_unlock(&sh->lock);
		return;
	}
	if (sh != NULL) {
		struct shared_instance **pp = &sh->inst[si->hash & (sh->inst_cap - 1)];

		while (*pp != si)
			pp = &(*pp)->next;
		*pp = si->next;
		sh->n_inst--;
		pthread_mutex_unlock(&sh->lock);
	}
	instance_free(si);
}

uint64_t shared_instance_addr(struct shared_instance *si, struct sockaddr_storage *addr,
			      socklen_t *len)
{
	uint64_t gen;

	pthread_mutex_lock(&si->addr_lock);
	gen = atomic_load_explicit(&si->addr_gen, memory_order_acquire);
	memcpy(addr, &si->addr, sizeof(*addr));
	*len = si->addrlen;
	pthread_mutex_unlock(&si->addr_lock);
	if (*len == 0)
		gen = 0;
	return gen;
}

void shared_instance_record_failure(struct shared_instance *si, uint64_t now_ms, unsigned base_ms,
				    unsigned max_ms, const char *name)
{
	unsigned n = atomic_fetch_add_explicit(&si->consecutive_failures, 1, memory_order_relaxed) + 1;
	uint64_t d = shared_backoff_ms(base_ms, max_ms, n - 1);
	uint64_t until = now_ms + d;
	uint64_t prev = atomic_load_explicit(&si->ejected_until_ms, memory_order_relaxed);
	bool was = prev > now_ms;

	/* Workers failing at once: the latest deadline wins. */
	while (prev < until && !atomic_compare_exchange_weak_explicit(
				       &si->ejected_until_ms, &prev, until, memory_order_relaxed,
				       memory_order_relaxed))
		;
	/* Only the way into ejection is worth an info line; failing-open
	 * retries of an ejected instance would repeat it. */
	zkr_log_at(was ? ZKR_LOG_DEBUG : ZKR_LOG_INFO,
		   "app %s instance %s (%s): ejected for %llu ms after %u failure(s)", si->domain,
		   si->id, name, (unsigned long long)d, n);
}

void shared_instance_record_success(struct shared_instance *si, const char *name)
{
	unsigned n;
	uint64_t until;

	/* The common case reads and writes nothing shared. */
	if (atomic_load_explicit(&si->consecutive_failures, memory_order_relaxed) == 0 &&
	    atomic_load_explicit(&si->ejected_until_ms, memory_order_relaxed) == 0)
		return;
	n = atomic_exchange_explicit(&si->consecutive_failures, 0, memory_order_relaxed);
	until = atomic_exchange_explicit(&si->ejected_until_ms, 0, memory_order_relaxed);
	if (n && until)
		log_info("app %s instance %s (%s): back in service", si->domain, si->id, name);
}

void shared_instance_set_health(struct shared_instance *si, bool up)
{
	if (atomic_exchange(&si->health_down, !up) == !up)
		return;
	log_info("app %s instance %s (%s:%u): health check says %s", si->domain, si->id, si->host,
		 (unsigned)si->port, up ? "up" : "down");
}

size_t proxy_shared_instances(struct proxy_shared *sh)
{
	size_t n;

	pthread_mutex_lock(&sh->lock);
	n = sh->n_inst;
	pthread_mutex_unlock(&sh->lock);
	return n;
}

/* ---- apps ---------------------------------------------------------------- */

static bool app_grow(struct proxy_shared *sh)
{
	size_t cap = sh->app_cap ? sh->app_cap * 2 : 64;
	struct shared_app **b = calloc(cap, sizeof(*b));

	if (b == NULL)
		return false;
	for (size_t i = 0; i < sh->app_cap; i++) {
		struct shared_app *sa, *next;

		for (sa = sh->apps[i]; sa != NULL; sa = next) {
			next = sa->next;
			sa->next = b[sa->hash & (cap - 1)];
			b[sa->hash & (cap - 1)] = sa;
		}
	}
	free(sh->apps);
	sh->apps = b;
	sh->app_cap = cap;
	return true;
}

static struct shared_app *app_new(const char *domain)
{
	struct shared_app *sa = calloc(1, sizeof(*sa));

	if (sa == NULL || (sa->domain = strdup(domain)) == NULL) {
		free(sa);
		return NULL;
	}
	atomic_init(&sa->refs, 1);
	return sa;
}

struct shared_app *shared_app_get(struct proxy_shared *sh, const char *domain)
{
	struct shared_app *sa;
	uint64_t h;

	if (sh == NULL)
		return app_new(domain);
	h = hash_mix64(hash_fnv1a_str(domain));
	pthread_mutex_lock(&sh->lock);
	for (sa = sh->app_cap ? sh->apps[h & (sh->app_cap - 1)] : NULL; sa != NULL; sa = sa->next)
		if (sa->hash == h && strcmp(sa->domain, domain) == 0)
			break;
	if (sa != NULL) {
		atomic_fetch_add(&sa->refs, 1);
	} else if ((sh->n_apps + 1 <= 2 * sh->app_cap || app_grow(sh)) &&
		   (sa = app_new(domain)) != NULL) {
		sa->sh = sh;
		sa->hash = h;
		sa->next = sh->apps[h & (sh->app_cap - 1)];
		sh->apps[h & (sh->app_cap - 1)] = sa;
		sh->n_apps++;
	}
	pthread_mutex_unlock(&sh->lock);
	return sa;
}

void shared_app_unref(struct shared_app *sa)
{
	struct proxy_shared *sh;
	unsigned r;

	if (sa == NULL)
		return;
	sh = sa->sh;
	r = atomic_load(&sa->refs);
	while (r > 1)
		if (atomic_compare_exchange_weak(&sa->refs, &r, r - 1))
			return;
	if (sh != NULL)
		pthread_mutex_lock(&sh->lock);
	if (atomic_fetch_sub(&sa->refs, 1) != 1) {
		if (sh != NULL)
			pthread_mutex_unlock(&sh->lock);
		return;
	}
	if (sh != NULL) {
		struct shared_app **pp = &sh->apps[sa->hash & (sh->app_cap - 1)];

		while (*pp != sa)
			pp = &(*pp)->next;
		*pp = sa->next;
		sh->n_apps--;
		pthread_mutex_unlock(&sh->lock);
	}
	free(sa->domain);
	free(sa);
}

bool shared_app_take(struct shared_app *sa, unsigned max)
{
	unsigned cur = atomic_load(&sa->in_flight);

	while (cur < max)
		if (atomic_compare_exchange_weak(&sa->in_flight, &cur, cur + 1))
			return true;
	return false;
}

void shared_app_add(struct shared_app *sa, unsigned n)
{
	atomic_fetch_add(&sa->in_flight, n);
}

void shared_app_put(struct shared_app *sa, int self)
{
	if (atomic_fetch_sub(&sa->in_flight, 1) == 0)
		ZKR_BUG("app %s: slot count underflow", sa->domain);
	/* seq_cst on both sides: a proxy that marked itself waiting and
	 * then found no slot is seen here (shared_app_wait). */
	if (atomic_load(&sa->queued) > 0 && sa->sh != NULL)
		post_mask(sa->sh, sa->waiters, SHARED_WAKE_APPQ, self);
}

void shared_app_wait(struct shared_app *sa, int slot, bool waiting)
{
	uint64_t bit;

	if (slot < 0)
		return;
	bit = 1ull << (slot % 64);
	if (waiting)
		atomic_fetch_or(&sa->waiters[slot / 64], bit);
	else
		atomic_fetch_and(&sa->waiters[slot / 64], ~bit);
}

void shared_app_kick(struct shared_app *sa)
{
	if (sa->sh != NULL)
		post_mask(sa->sh, sa->waiters, SHARED_WAKE_APPQ, -1);
}

/* ---- the connection budget ------------------------------------------------- */

bool shared_conn_take(struct proxy_shared *sh, unsigned max)
{
	unsigned cur = atomic_load_explicit(&sh->conns, memory_order_relaxed);

	while (cur < max)
		if (atomic_compare_exchange_weak(&sh->conns, &cur, cur + 1))
			return true;
	return false;
}

void shared_conn_put(struct proxy_shared *sh)
{
	bool any = false;

	if (atomic_fetch_sub(&sh->conns, 1) == 0)
		ZKR_BUG("connection budget underflow");
	for (int w = 0; w < SHARED_MASK_WORDS && !any; w++)
		any = atomic_load(&sh->accept_paused[w]) != 0;
	if (any)
		post_mask(sh, sh->accept_paused, SHARED_WAKE_ACCEPT, -1);
}

void shared_conn_full(struct proxy_shared *sh, int self)
{
	pthread_mutex_lock(&sh->lock);
	for (int slot = 0; slot < SHARED_MAX_PROXIES; slot++)
		if (slot != self && sh->attached[slot] && sh->wake[slot] != NULL)
			sh->wake[slot](sh->wake_arg[slot], SHARED_WAKE_ACCEPT);
	pthread_mutex_unlock(&sh->lock);
}

bool shared_accept_warn_due(struct proxy_shared *sh, uint64_t now_ms, unsigned every_ms)
{
	uint64_t last = atomic_load(&sh->accept_warned_ms);

	while (last == 0 || now_ms - last >= every_ms)
		if (atomic_compare_exchange_weak(&sh->accept_warned_ms, &last, now_ms))
			return true;
	return false;
}

unsigned shared_conn_count(struct proxy_shared *sh)
{
	return atomic_load_explicit(&sh->conns, memory_order_relaxed);
}

void shared_conn_paused(struct proxy_shared *sh, int slot, bool paused)
{
	uint64_t bit;

	if (slot < 0)
		return;
	bit = 1ull << (slot % 64);
	if (paused)
		atomic_fetch_or(&sh->accept_paused[slot / 64], bit);
	else
		atomic_fetch_and(&sh->accept_paused[slot / 64], ~bit);
}

/* ---- the whole ------------------------------------------------------------- */

int proxy_shared_attach(struct proxy_shared *sh, shared_wake_fn wake, void *arg)
{
	int slot = -1;

	pthread_mutex_lock(&sh->lock);
	for (int i = 0; i < SHARED_MAX_PROXIES; i++) {
		if (!sh->attached[i]) {
			sh->attached[i] = true;
			sh->wake[i] = wake;
			sh->wake_arg[i] = arg;
			slot = i;
			break;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return slot;
}

void proxy_shared_detach(struct proxy_shared *sh, int slot)
{
	if (slot < 0 || slot >= SHARED_MAX_PROXIES)
		return;
	shared_conn_paused(sh, slot, false);
	pthread_mutex_lock(&sh->lock);
	sh->attached[slot] = false;
	sh->wake[slot] = NULL;
	sh->wake_arg[slot] = NULL;
	pthread_mutex_unlock(&sh->lock);
}

struct proxy_shared *proxy_shared_new(struct event_base *control, const struct zkr_config *cfg)
{
	struct proxy_shared *sh = calloc(1, sizeof(*sh));

	if (sh == NULL)
		return NULL;
	if (pthread_mutex_init(&sh->lock, NULL) != 0) {
		free(sh);
		return NULL;
	}
	sh->base = control;
	/* The table's size is fixed for the process (not reloadable). */
	sh->perip = limits_new(cfg->per_ip_table_size ? cfg->per_ip_table_size : 65536);
	sh->dns = shared_dns_new(control, cfg->resolver);
	sh->resolve_ev = event_new(control, -1, 0, shared_resolve_cb, sh);
	if (sh->perip == NULL || sh->dns == NULL || sh->resolve_ev == NULL) {
		log_error("cannot create the shared proxy state (out of memory?)");
		proxy_shared_free(sh);
		return NULL;
	}
	proxy_shared_apply_config(sh, cfg);
	return sh;
}

void proxy_shared_apply_config(struct proxy_shared *sh, const struct zkr_config *cfg)
{
	limits_configure(sh->perip, cfg->max_connections_per_ip, cfg->max_requests_per_ip_per_s,
			 cfg->requests_per_ip_burst);
}

struct evdns_base *proxy_shared_dns(struct proxy_shared *sh)
{
	return sh->dns;
}

struct limits *proxy_shared_limits(struct proxy_shared *sh)
{
	return sh->perip;
}

void proxy_shared_free(struct proxy_shared *sh)
{
	struct shared_instance *si;

	if (sh == NULL)
		return;
	pthread_mutex_lock(&sh->lock);
	sh->closing = true;
	pthread_mutex_unlock(&sh->lock);
	/* Every proxy is gone: what is left is held by lookups, retry
	 * timers and the queue of names. A cancelled lookup's callback is
	 * deferred to a loop that does not run again; its instance is left
	 * to the process's exit. */
	while ((si = sh->stale) != NULL) {
		sh->stale = si->stale_next;
		si->stale_queued = false;
		shared_instance_unref(si);
	}
	while ((si = sh->pending) != NULL) {
		sh->pending = si->pending_next;
		si->resolving = false;
		shared_instance_unref(si);
	}
	for (size_t i = 0; i < sh->inst_cap; i++) {
		struct shared_instance *next;

		for (si = sh->inst[i]; si != NULL; si = next) {
			next = si->next;
			if (si->lookup != NULL) {
				evdns_getaddrinfo_cancel(si->lookup);
				si->lookup = NULL;
			}
			if (si->lookup_retry != NULL && evtimer_pending(si->lookup_retry, NULL)) {
				evtimer_del(si->lookup_retry);
				shared_instance_unref(si);
			}
		}
	}
	if (sh->dns != NULL)
		evdns_base_free(sh->dns, 1);
	if (sh->resolve_ev != NULL)
		event_free(sh->resolve_ev);
	limits_free(sh->perip);
	free(sh->inst);
	free(sh->apps);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}
