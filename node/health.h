/*
 * Active health checks. For each app whose AppConfig names a health_path
 * (and an interval), every instance gets a GET of that path every interval;
 * an instance that fails `health-fall` checks in a row is marked down in
 * the instance's shared state (node/shared.h, seen by every worker) and
 * marked up again after `health-rise` passes. The checks run once per
 * process, on the control thread's loop `base`. Passive ejection in the
 * proxy still applies; the two only add up (the proxy fails open when
 * every instance looks down).
 */
#ifndef ZKR_HEALTH_H
#define ZKR_HEALTH_H

#include <stdbool.h>

#include <event2/event.h>

#include "node/config.h"
#include "registry/table.h"

struct health;
struct proxy_shared;

struct health *health_new(struct event_base *base, struct proxy_shared *sh, const struct zkr_config *cfg);

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
