/*
 * zkrouterd's worker threads (--workers N). Each worker is a thread with
 * its own event_base, its own struct proxy (listeners with SO_REUSEPORT,
 * connections, pools, timers) and its own access-log buffer. The control
 * thread (main.c: signals, ZooKeeper, admin, health checks, state file)
 * never touches a worker's objects: it posts messages to the worker's
 * mailbox (a mutex-protected queue plus an eventfd the worker's loop
 * watches), and the worker runs them inside its loop.
 *
 *   control loop --workers_call(fn, done)--> mailbox[i] --eventfd--> worker i
 *        ^                                                     runs fn(w)
 *        +---------- eventfd <-- completions <-- the last worker to run fn
 *   done(arg) runs on the control loop once every worker ran fn.
 *
 * Messages to one worker run in the order they were posted, so the done
 * callbacks of two calls run in the order of the calls.
 */
#ifndef ZKR_WORKERS_H
#define ZKR_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "node/config.h"
#include "registry/table.h"

struct workers;
struct worker;
struct proxy;
struct accesslog;

/* Runs on worker w's thread, inside its loop. */
typedef void (*workers_fn)(struct worker *w, void *arg);
/* Runs on the control thread's loop once every worker ran its fn. */
typedef void (*workers_done_fn)(void *arg);

/*
 * n workers with their loops, proxies (the options of cfg, sharing `sh`:
 * node/shared.h) and access logs (cfg->access_log; NULL: counting only),
 * and their listeners on every listen and tls-listen address (tls: the
 * certificates of TLS listeners, NULL without any). Threads do not run
 * yet. NULL with a reason (the address named when a listener cannot be
 * opened).
 */
struct tls_store;
struct proxy_shared;
struct workers *workers_new(struct event_base *control, unsigned n, const struct zkr_config *cfg,
			    struct proxy_shared *sh, struct tls_store *tls, char *why, size_t whylen);

/* Starts the threads; false (with the reason logged) if one cannot be. */
bool workers_start(struct workers *ws) __attribute__((warn_unused_result));

unsigned workers_count(const struct workers *ws);
/* Worker i's objects: read them only on its own thread (inside a fn)
 * once the threads run. */
struct proxy *worker_proxy(struct worker *w);
struct accesslog *worker_log(struct worker *w);
unsigned worker_index(const struct worker *w);

/* Runs fn(w, arg) on every worker's loop, then done(arg) (may be NULL)
 * on the control loop. Only from the control thread. */
void workers_call(struct workers *ws, workers_fn fn, workers_done_fn done, void *arg);

/* Every worker swaps `t` in (proxy_set_table) inside its loop; then
 * done(arg) on the control loop. Takes its own reference on t. */
void workers_set_table(struct workers *ws, struct route_table *t, workers_done_fn done, void *arg);

/* SIGHUP: every worker reopens its access log and applies the
 * reloadable options of cfg (copied now; NULL: the log only). */
void workers_reload(struct workers *ws, const struct zkr_config *cfg);

/* Drain across workers. workers_drain: every response closes its
 * connection from now on. workers_stop_listening: the listeners close;
 * both then report what each worker still waits for, summed, to
 * done(left, arg) on the control loop (workers_drain_tick too, which
 * also closes the connections that went idle). */
typedef void (*workers_left_fn)(size_t left, void *arg);
void workers_drain(struct workers *ws, workers_left_fn done, void *arg);
void workers_stop_listening(struct workers *ws, workers_left_fn done, void *arg);
void workers_drain_tick(struct workers *ws, workers_left_fn done, void *arg);

/* Asks every worker to leave its loop and joins the threads; the done
 * callbacks of calls still pending then run here. After it, no call may
 * be made. Worker objects stay until workers_free. */
void workers_stop(struct workers *ws);

/* Frees the proxies, logs and loops (after workers_stop). NULL is fine. */
void workers_free(struct workers *ws);

/* --workers: "auto" (the CPUs this process may run on) or 1..WORKERS_MAX;
 * 0 when the text is neither. */
#define WORKERS_MAX 256
unsigned workers_parse(const char *text);

#endif
