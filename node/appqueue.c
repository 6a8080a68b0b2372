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
 * Every request is counted, capped or not, so a cap set by a config
 * change starts from the true load.
 */
#include <config.h>

#include <string.h>

#include <event2/event.h>

#include "node/stream.h"
#include "node/proxy.h"

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
	r->queued = false;
	evtimer_del(r->qtimer);
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
	unsigned ms = p->cfg.app_queue_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ld->max_concurrent == 0 || (ld->in_flight < ld->max_concurrent && ld->n_queued == 0)) {
		ld->in_flight++;
		r->admitted = true;
		return true;
	}
	if (ld->n_queued >= ld->max_queued) {
		overloaded(r, ld->max_queued ? "the app is at its max_concurrent_requests and its queue is full"
					     : "the app is at its max_concurrent_requests");
		return false;
	}
	if (r->qtimer == NULL)
		r->qtimer = evtimer_new(p->base, queue_timeout_cb, r);
	if (r->qtimer == NULL || evtimer_add(r->qtimer, &tv) != 0) {
		request_fail(r, 503, "out_of_memory", "cannot queue the request");
		return false;
	}
	TAILQ_INSERT_TAIL(&ld->queue, r, qlink);
	ld->n_queued++;
	p->n_queued++;
	r->queued = true;
	rlog_debug(r, "queued: app at %u requests in flight, %u waiting", ld->in_flight,
		   ld->n_queued);
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
		       (ld->max_concurrent == 0 || ld->in_flight < ld->max_concurrent)) {
			dequeue(p, r);
			ld->in_flight++;
			r->admitted = true;
			refresh_app(p, r);
			rlog_debug(r, "dequeued: %u in flight, %u waiting", ld->in_flight, ld->n_queued);
			upstream_attempt(r);
		}
		ld->dispatching = false;
	}
	app_load_unref(ld);
}
