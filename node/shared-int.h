/*
 * What shared.c and shared-dns.c both see of the process-wide state:
 * the structure itself and the lookups of instance host names.
 */
#ifndef ZKR_SHARED_INT_H
#define ZKR_SHARED_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/util.h>

#include "node/shared.h"

struct proxy_shared {
	struct event_base *base;             /* the control loop */
	struct evdns_base *dns;
	struct limits *perip;
	struct event *resolve_ev;            /* names queued for lookup */
	pthread_mutex_t lock;
	struct shared_instance **inst;       /* chained hash, power-of-two buckets */
	size_t inst_cap, n_inst;
	struct shared_app **apps;
	size_t app_cap, n_apps;
	struct shared_instance *pending;     /* to look up (each holds a ref) */
	bool closing;                        /* proxy_shared_free runs */
	struct shared_instance *stale;       /* only their lookup may still hold
					      * them: to cancel (each holds a ref) */
	shared_wake_fn wake[SHARED_MAX_PROXIES];
	void *wake_arg[SHARED_MAX_PROXIES];
	bool attached[SHARED_MAX_PROXIES];
	/* Written per connection opened or closed: a line of its own. */
	_Alignas(64) _Atomic unsigned conns;
	_Alignas(64) _Atomic uint64_t accept_paused[SHARED_MASK_WORDS];
	_Atomic uint64_t accept_warned_ms;   /* last "out of descriptors" warning */
};

/* base_ms doubled `doublings` times, at most max_ms: the backoff of
 * passive ejection and of failed lookups. */
static inline uint64_t shared_backoff_ms(unsigned base_ms, unsigned max_ms, unsigned doublings)
{
	uint64_t d = base_ms ? base_ms : 1;

	for (unsigned i = 0; i < doublings && d < max_ms; i++)
		d *= 2;
	return d > max_ms ? max_ms : d;
}

/* ---- shared-dns.c (control thread) ---------------------------------------- */

/* The resolver: `nameserver` (IP[:PORT]) or the system's; NULL on failure. */
struct evdns_base *shared_dns_new(struct event_base *base, const char *nameserver);
/* sh->resolve_ev: starts the lookups queued in sh->pending and stops those
 * of the instances in sh->stale. */
void shared_resolve_cb(evutil_socket_t fd, short what, void *arg);

#endif
