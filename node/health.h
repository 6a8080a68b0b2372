/*
 * Active health checks. For each app whose AppConfig names a health_path
 * (and an interval), every instance gets a GET of that path every interval;
 * an instance that fails `health-fall` checks in a row is marked down in
 * the request path (the health_mark_fn main.c gives) and marked up again after
 * `health-rise` passes. Passive ejection in the proxy still applies; the
 * two only add up (the proxy fails open when every instance looks down).
 */
#ifndef ZKR_HEALTH_H
#define ZKR_HEALTH_H

#include <stdbool.h>

#include <event2/event.h>

#include "node/config.h"
#include "registry/table.h"

struct health;
struct evdns_base;

/* Marks an instance down (up false) or up again for the request path;
 * health.c calls it on its own loop, the callee hands it on. */
typedef void (*health_mark_fn)(const char *domain, const char *instance_id, bool up, void *arg);

/* Checks run on `base`, names resolved with `dns` (not owned). */
struct health *health_new(struct event_base *base, struct evdns_base *dns, const struct zkr_config *cfg,
			  health_mark_fn mark, void *mark_arg);

/* Brings the set of checks in line with `t` (borrowed for the call): new
 * instances get a check, removed ones lose theirs, the rest keep their
 * state. Work is linear in the table's size. */
void health_set_table(struct health *h, const struct route_table *t);

/* Timeout, rise, fall and the default interval after a SIGHUP (checks
 * whose interval changes restart with the next table). */
void health_apply_config(struct health *h, const struct zkr_config *cfg);

/* Number of instances under active checks (for logs and tests). */
size_t health_checks(const struct health *h);

void health_free(struct health *h);

#endif
