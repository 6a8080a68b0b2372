/*
 * The per-app concurrency cap: an app's AppConfig max_concurrent_requests
 * bounds its requests in flight on this router across all its instances
 * (where max_connections bounds each instance). A request past the cap
 * waits, first come first served, in a queue of at most
 * max_queued_requests, for at most --app-queue-timeout-ms; past either it
 * is answered 503 app_overloaded. Heroku's router does the same per dyno
 * (a backlog of 50). The count lives in the app's app_load, which the
 * app's successive app_states share, so a change of instances or config
 * while requests run or wait keeps both.
 *
 *   request_route --appq_admit--> upstream_attempt
 *                      |  (over the cap)
 *                      v
 *                 load->queue --appq_dispatch (a slot freed)--> upstream_attempt
 *                      |  (timer)
 *                      v
 *                 503 app_overloaded
 *
 * The cap holds for the process: the slots are one count per app shared
 * by every worker (struct shared_app, node/shared.h), while each worker
 * queues its own requests. A worker whose queue for an app turns
 * non-empty marks itself waiting there; a slot given back on any worker
 * wakes the waiting ones (an event of their loop, activated from the
 * releasing thread), which take the slot if it is still free. Marking
 * and giving back are both sequentially consistent, and a worker checks
 * for a free slot again after marking itself, so no wake-up is lost.
 *
 * Each worker counts every request of its own, capped or not (in_flight),
 * but takes a shared slot only while the app is capped: an uncapped app
 * costs no shared write per request. A cap that appears in a new table
 * adds the requests already running on that worker to the shared count
 * (app_state_build), so it starts from the true load.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "node/stream.h"
#include "node/proxy.h"
#include "node/shared.h"

static void overloaded(struct request *r, const char *why)
{
	r->c->p->app_overloaded++;
	request_fail(r, 503, "app_overloaded", why);
}

static void dequeue(struct proxy *p, struct request *r)
{
	struct app_load *ld = r->as->load;

	TAILQ_REMOVE(&ld->queue, r, qlink);
	ld->n_queued--;
	p->n_queued--;
	atomic_fetch_sub(&ld->sa->queued, 1);
	r->queued = false;
	evtimer_del(r->qtimer);
	if (ld->n_queued == 0) {
		shared_app_wait(ld->sa, p->shared_slot, false);
		/* Callers hold another reference (the request's app_state,
		 * or appq_dispatch's). */
		TAILQ_REMOVE(&p->waiting_loads, ld, wlink);
		app_load_unref(ld);
	}
}

static void queue_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct request *r = arg;

	if (!r->queued)
		return;
	dequeue(r->c->p, r);
	overloaded(r, "the app is at its max_concurrent_requests; no slot freed in time");
}

bool appq_admit(struct request *r)
{
	struct proxy *p = r->c->p;
	struct app_load *ld = r->as->load;
	struct shared_app *sa = ld->sa;
	unsigned ms = p->cfg.app_queue_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ld->max_concurrent == 0) {
		ld->in_flight++;
		r->admitted = true;
		return true;
	}
	/* First come, first served across workers: none may wait anywhere. */
	if (atomic_load(&sa->queued) == 0 && shared_app_take(sa, ld->max_concurrent)) {
		ld->in_flight++;
		ld->counted++;
		r->admitted = true;
		return true;
	}
	if (atomic_fetch_add(&sa->queued, 1) >= ld->max_queued) {
		atomic_fetch_sub(&sa->queued, 1);
		overloaded(r, ld->max_queued ? "the app is at its max_concurrent_requests and its queue is full"
					     : "the app is at its max_concurrent_requests");
		return false;
	}
	if (r->qtimer == NULL)
		r->qtimer = evtimer_new(p->base, queue_timeout_cb, r);
	if (r->qtimer == NULL || evtimer_add(r->qtimer, &tv) != 0) {
		atomic_fetch_sub(&sa->queued, 1);
		request_fail(r, 503, "out_of_memory", "cannot queue the request");
		return false;
	}
	TAILQ_INSERT_TAIL(&ld->queue, r, qlink);
	ld->n_queued++;
	p->n_queued++;
	r->queued = true;
	if (ld->n_queued == 1) {
		/* (The macro names its element more than once.) */
		app_load_ref(ld);
		TAILQ_INSERT_TAIL(&p->waiting_loads, ld, wlink);
		shared_app_wait(sa, p->shared_slot, true);
	}
	/* A slot freed since the try above saw no waiter: wake them all,
	 * this loop included (the request must not run from here). */
	if (atomic_load(&sa->in_flight) < ld->max_concurrent)
		shared_app_kick(sa);
	rlog_debug(r, "queued: app at %u requests in flight, %u waiting here, %u in all",
		   atomic_load(&sa->in_flight), ld->n_queued, atomic_load(&sa->queued));
	return false;
}

struct app_load *appq_leave(struct request *r)
{
	struct app_load *ld = r->as ? r->as->load : NULL;

	if (r->queued) {
		dequeue(r->c->p, r);
		return NULL;
	}
	if (!r->admitted)
		return NULL;
	r->admitted = false;
	ld->in_flight--;
	if (ld->counted > 0) {
		/* Wakes the other workers with requests waiting; this one's
		 * queue is dispatched by the caller. */
		ld->counted--;
		shared_app_put(ld->sa, r->c->p->shared_slot);
	}
	return ld->n_queued > 0 ? app_load_ref(ld) : NULL;
}

/* A request that waited may find a newer app_state of its app (instances
 * added to take the load, say): it goes there. */
static void refresh_app(struct proxy *p, struct request *r)
{
	struct route_app *app = p->table ? route_table_match(p->table, r->host, r->host_len) : NULL;
	struct app_state *s = app ? backend_map_get(&p->map, app) : NULL;

	if (s == NULL || s == r->as || s->load != r->as->load)
		return;
	/* The sticky instance is looked up in the new state before the old
	 * one (which may hold its last reference) goes. */
	if (r->sticky != NULL)
		r->sticky = app_state_find(s, r->sticky->id);
	app_state_ref(s);
	app_state_unref(r->as);
	r->as = s;
}

void appq_table_changed(struct proxy *p)
{
	size_t i;

	/* Only while requests wait, which is rare: then a raised or removed
	 * cap lets them go now rather than at the next request's end. */
	for (i = 0; p->n_queued > 0 && p->table != NULL && i < p->table->n_apps; i++) {
		struct app_state *s = backend_map_get(&p->map, p->table->apps[i]);

		if (s != NULL && s->load->n_queued > 0)
			appq_dispatch(p, app_load_ref(s->load));
	}
}

void appq_wake(struct proxy *p)
{
	struct app_load *ld, **v;
	size_t n = 0, i;

	/* Dispatching may end requests and change the list: the loads are
	 * taken (each with a reference) first. */
	TAILQ_FOREACH(ld, &p->waiting_loads, wlink)
		n++;
	if (n == 0)
		return;
	if ((v = calloc(n, sizeof(*v))) == NULL) {
		appq_table_changed(p);
		return;
	}
	n = 0;
	TAILQ_FOREACH(ld, &p->waiting_loads, wlink)
		v[n++] = app_load_ref(ld);
	for (i = 0; i < n; i++)
		appq_dispatch(p, v[i]);   /* drops the reference */
	free(v);
}

bool appq_info(struct proxy *p, const char *domain, unsigned *in_flight, unsigned *queued)
{
	struct route_app *app = p->table ? route_table_find(p->table, domain, strlen(domain)) : NULL;
	struct app_state *s = app ? backend_map_get(&p->map, app) : NULL;

	*in_flight = *queued = 0;
	if (s == NULL)
		return false;
	*in_flight = s->load->in_flight;
	*queued = s->load->n_queued;
	return true;
}

void appq_totals(const struct proxy *p, size_t *queued, uint64_t *overloaded)
{
	*queued = p->n_queued;
	*overloaded = p->app_overloaded;
}

void appq_dispatch(struct proxy *p, struct app_load *ld)
{
	struct request *r;

	/* A request started here may fail at once and end, which frees a
	 * slot again: the loop below takes it, instead of a recursion as
	 * deep as the queue. */
	if (!ld->dispatching) {
		ld->dispatching = true;
		while ((r = TAILQ_FIRST(&ld->queue)) != NULL &&
		       (ld->max_concurrent == 0 || shared_app_take(ld->sa, ld->max_concurrent))) {
			dequeue(p, r);
			ld->in_flight++;
			if (ld->max_concurrent)
				ld->counted++;
			r->admitted = true;
			refresh_app(p, r);
			rlog_debug(r, "dequeued: %u in flight, %u waiting", ld->in_flight, ld->n_queued);
			upstream_attempt(r);
		}
		ld->dispatching = false;
	}
	app_load_unref(ld);
}
