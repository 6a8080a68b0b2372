/*
 * Process-wide state shared by every proxy (one per worker loop): what
 * one worker learns about an instance or spends of a budget must hold for
 * all of them at once.
 *
 *   proxy_shared ──┬─ instance map (domain, id, host, port) ─> shared_instance
 *                  │      ejection, health verdict, resolved address
 *                  ├─ app map (domain) ─> shared_app: slots in use, waiters
 *                  ├─ connection budget (max-client-connections)
 *                  ├─ per-client-address limits (node/limits.h, striped locks)
 *                  └─ evdns on the control loop: instance host names
 *
 * Threads. main() creates the proxy_shared on the control thread, before
 * any proxy, with that thread's event_base (the "control base": DNS
 * lookups and their retry timers run there), gives it to every proxy with
 * proxy_set_shared() right after proxy_new(), and frees it after every
 * proxy is freed. Maps are taken only when a struct backend or an app's
 * load is created (a table change) or by the health checker; per request
 * a worker only loads atomics (relaxed, or acquire for the address), and
 * writes only on a failure, the first success after failures, or while an
 * app is capped. evthread_use_pthreads() must have been called before the
 * control loop is made: workers activate its lookup event. A worker's own
 * loop needs no locks: other threads wake it through the function it
 * attached with (proxy_shared_attach), which writes to its eventfd.
 *
 * Who may call what:
 *   any thread:     shared_instance_get/ref/unref and every shared_instance_*
 *                   reader/recorder, shared_app_*, shared_conn_*,
 *                   proxy_shared_limits (the table locks itself)
 *   control thread: proxy_shared_new/free/apply_config, proxy_shared_dns,
 *                   shared_instance_set_health (health checks); the DNS
 *                   callbacks run there
 *   a proxy's own thread: proxy_shared_attach/detach for that proxy
 */
#ifndef ZKR_SHARED_H
#define ZKR_SHARED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "node/config.h"

struct event;
struct event_base;
struct evdns_base;
struct evdns_getaddrinfo_request;
struct limits;
struct proxy_shared;

/* At most this many proxies (worker loops) attach to one proxy_shared. */
#define SHARED_MAX_PROXIES 256
#define SHARED_MASK_WORDS (SHARED_MAX_PROXIES / 64)

/*
 * One instance (app domain, instance id, host, port): a new endpoint for
 * the same id starts over. Reference counted; workers' backends hold one,
 * so do the health check and a pending lookup.
 */
struct shared_instance {
	/* Read per request (by every worker), written on failures: apart
	 * from the fields below, which change with the refs. */
	_Atomic uint64_t ejected_until_ms;  /* monotonic; 0: not ejected */
	_Atomic unsigned consecutive_failures;
	_Atomic bool health_down;
	_Atomic uint64_t addr_gen;          /* 0: no address yet; bumped per new one */
	char pad[64];                        /* refs below move per table change */
	_Atomic unsigned refs;
	struct proxy_shared *sh;             /* NULL: private (not in the map) */
	char *domain, *id, *host;
	uint16_t port;
	uint64_t hash;
	struct shared_instance *next;        /* map chain, under sh->lock */
	/* The address, under addr_lock (copied only when addr_gen moved). */
	pthread_mutex_t addr_lock;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/* Control thread only: the lookup of a host name. */
	bool resolving;                      /* queued, looking up or retry armed
					      * (set and cleared under sh->lock) */
	struct shared_instance *pending_next;
	bool stale_queued;                   /* in sh->stale (under sh->lock) */
	struct shared_instance *stale_next;
	struct evdns_getaddrinfo_request *lookup;
	struct event *lookup_retry;
	unsigned lookup_failures;
};

/* ---- the shared state as a whole ----------------------------------------- */

/* With `control` the control thread's base (DNS runs there) and the
 * options of `cfg` (resolver, per-IP table size and limits). NULL on
 * failure, with a log line. */
struct proxy_shared *proxy_shared_new(struct event_base *control, const struct zkr_config *cfg);
/* After every proxy attached to it is freed. */
void proxy_shared_free(struct proxy_shared *sh);
/* Reloadable options (per-IP limits). */
void proxy_shared_apply_config(struct proxy_shared *sh, const struct zkr_config *cfg);
/* The resolver of instance host names (the health checks use it too). */
struct evdns_base *proxy_shared_dns(struct proxy_shared *sh);
/* The per-client-address table (thread-safe, see limits.h). */
struct limits *proxy_shared_limits(struct proxy_shared *sh);

/* What wakes a proxy's loop from another thread, with what happened:
 * an app slot it waits for freed, or the connection budget dropped while
 * its accepting paused. Called from any thread with the shared lock held:
 * it must not block nor call into the shared state. */
#define SHARED_WAKE_APPQ 1u
#define SHARED_WAKE_ACCEPT 2u
typedef void (*shared_wake_fn)(void *arg, unsigned what);

/* A proxy joins with its wake function. Returns its slot, or -1 when
 * SHARED_MAX_PROXIES are attached. */
int proxy_shared_attach(struct proxy_shared *sh, shared_wake_fn wake, void *arg);
void proxy_shared_detach(struct proxy_shared *sh, int slot);

/* ---- instances ----------------------------------------------------------- */

/* The state of an instance, made on first use (a reference for the
 * caller). `sh` NULL: a private one, never shared, never resolved unless
 * numeric. A host name starts a lookup on the control thread. NULL on
 * allocation failure. */
struct shared_instance *shared_instance_get(struct proxy_shared *sh, const char *domain,
					    const char *id, const char *host, uint16_t port);
struct shared_instance *shared_instance_ref(struct shared_instance *si);
void shared_instance_unref(struct shared_instance *si);

static inline bool shared_instance_ejected(const struct shared_instance *si, uint64_t now_ms)
{
	return atomic_load_explicit(&si->ejected_until_ms, memory_order_relaxed) > now_ms;
}

static inline bool shared_instance_down(const struct shared_instance *si)
{
	return atomic_load_explicit(&si->health_down, memory_order_relaxed);
}

/* The generation of its address: 0 while a host name has none. */
static inline uint64_t shared_instance_addr_gen(const struct shared_instance *si)
{
	return atomic_load_explicit(&si->addr_gen, memory_order_acquire);
}

/* Copies the current address; returns its generation (0: none yet). */
uint64_t shared_instance_addr(struct shared_instance *si, struct sockaddr_storage *addr,
			      socklen_t *len);

/* Passive ejection: ejected for base * 2^(failures-1) ms, at most max_ms.
 * `name` is for the log line. Safe from every worker at once. */
void shared_instance_record_failure(struct shared_instance *si, uint64_t now_ms, unsigned base_ms,
				    unsigned max_ms, const char *name);
/* A success: writes (and logs) only when failures were recorded. */
void shared_instance_record_success(struct shared_instance *si, const char *name);

/* Health checks (control thread): the verdict for that instance. */
void shared_instance_set_health(struct shared_instance *si, bool up);

/* Instances in the map (tests: back to 0 once every reference went). */
size_t proxy_shared_instances(struct proxy_shared *sh);

/* ---- per-app concurrency (max_concurrent_requests) ----------------------- */

/* The in-flight count of an app for the whole process, and which proxies
 * have requests waiting for a slot of it. */
struct shared_app {
	_Atomic unsigned in_flight;          /* slots taken (capped requests) */
	_Atomic unsigned queued;             /* waiting, all proxies */
	_Atomic uint64_t waiters[SHARED_MASK_WORDS];   /* bit per proxy slot */
	_Atomic unsigned refs;
	struct proxy_shared *sh;             /* NULL: private */
	char *domain;
	uint64_t hash;
	struct shared_app *next;
};

/* The app's shared load by domain (a reference); `sh` NULL: private. */
struct shared_app *shared_app_get(struct proxy_shared *sh, const char *domain);
void shared_app_unref(struct shared_app *sa);
/* Takes a slot if fewer than `max` are taken. */
bool shared_app_take(struct shared_app *sa, unsigned max);
/* Takes `n` slots whatever the cap (requests already running when a cap
 * appears). */
void shared_app_add(struct shared_app *sa, unsigned n);
/* Gives a slot back; when requests wait, wakes the proxies holding them
 * (except `self`, whose caller dispatches its own queue). */
void shared_app_put(struct shared_app *sa, int self);
/* A proxy's queue for the app turns non-empty / empty. After marking it
 * waiting, the caller must check for a free slot again (a slot freed in
 * between saw no waiter). */
void shared_app_wait(struct shared_app *sa, int slot, bool waiting);
/* Wakes every proxy with waiters (a slot is free, or the cap changed). */
void shared_app_kick(struct shared_app *sa);

/* ---- max-client-connections ---------------------------------------------- */

/* Takes a connection of the budget if fewer than `max` are held. */
bool shared_conn_take(struct proxy_shared *sh, unsigned max);
/* Gives one back; a proxy paused on the budget is woken. */
void shared_conn_put(struct proxy_shared *sh);
unsigned shared_conn_count(struct proxy_shared *sh);
/* A proxy's accepting pauses on the full budget (true) or resumes. After
 * pausing, the caller checks the count again (a close in between saw no
 * paused proxy). */
void shared_conn_paused(struct proxy_shared *sh, int slot, bool paused);
/* The budget just ran out on proxy `self`: every other proxy is woken to
 * pause its own accepting too, so that connections past the cap wait in
 * the kernel's backlog rather than being accepted by a worker that has
 * not noticed yet. */
void shared_conn_full(struct proxy_shared *sh, int self);
/* True for the first caller of any worker after `every_ms` since the last
 * true: one warning per period for the process (out of descriptors). */
bool shared_accept_warn_due(struct proxy_shared *sh, uint64_t now_ms, unsigned every_ms);

#endif
