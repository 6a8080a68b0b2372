/*
 * Registering one app instance in ZooKeeper, for embedding in an app that
 * runs a libevent loop (zkrouter-agent is a thin program around it).
 *
 * The agent holds its own ZooKeeper session and keeps one EPHEMERAL node,
 * /apps/<domain>/instances/<id>, holding an Instance record, for as long as
 * it is started: it creates the node when the session comes up, replaces a
 * stale node left by an earlier session under the same id, creates it
 * again after a session expiry, and removes it on stop. Routers see the
 * node disappear by itself if the process dies (after the session timeout)
 * and at once when the agent is freed (the session closes).
 *
 *   zkr_agent_new --> STOPPED --start--> CONNECTING --session--> REGISTERING
 *                        ^                    ^                     |   |
 *                        |                 expired        node of an |   | created (or
 *                        |                    |         old session  |   | found our own)
 *                        |                    |          we cannot   v   v
 *                        +--- DEREGISTERING <-+-- stop --- WAITING   REGISTERED
 *
 *   FAILED: refused for good (no such app, ZNOAUTH, another live agent
 *   took the id); zkr_agent_error() says why. zkr_agent_start retries.
 *
 * Everything runs inside the event loop; the state callback runs inside
 * it too (often inside a ZooKeeper callback): it may call start and stop,
 * but must not free the agent.
 */
#ifndef ZKR_AGENT_H
#define ZKR_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

enum zkr_agent_state {
	ZKR_AGENT_STOPPED,        /* not registered and not trying to be */
	ZKR_AGENT_CONNECTING,     /* wants to register; waiting for the session */
	ZKR_AGENT_REGISTERING,    /* create (or stale-node cleanup) in flight */
	ZKR_AGENT_WAITING,        /* an old session's node holds the id and we may
				     not delete it: waiting for it to expire */
	ZKR_AGENT_REGISTERED,     /* our node is in place */
	ZKR_AGENT_DEREGISTERING,  /* removing our node */
	ZKR_AGENT_FAILED,         /* refused; see zkr_agent_error() */
};

struct zkr_agent_label {
	const char *key;
	const char *value;
};

struct zkr_agent_opts {
	const char *connect;          /* "host:port,...[/chroot]" (default chroot /zkrouter) */
	const char *auth;             /* digest "user:password" or NULL */
	int session_timeout_ms;       /* 0: 10000 */
	const char *domain;           /* the app, as in /apps/<domain> */
	const char *host;             /* where routers send requests */
	uint16_t port;
	const char *id;               /* node name; NULL: "host:port" */
	uint32_t weight;              /* 0: the record's default (100) */
	const char *zone;             /* or NULL */
	const struct zkr_agent_label *labels;
	size_t n_labels;
	/* When the app does not exist (/apps/<domain>/instances missing):
	 * false -> FAILED; true -> keep retrying every few seconds. */
	bool wait_for_app;
};

struct zkr_agent;

/*
 * Called on every state change. zrc is the ZooKeeper result that caused
 * it (ZOK when none) and msg a human-readable line (never NULL).
 */
typedef void (*zkr_agent_state_cb)(struct zkr_agent *a, enum zkr_agent_state state, int zrc,
				   const char *msg, void *arg);

/*
 * Validates the options and the Instance record they make (the reason goes
 * to `why`, e.g. "port 0 out of range 1-65535") and connects the session.
 * Nothing is registered before zkr_agent_start.
 */
struct zkr_agent *zkr_agent_new(struct event_base *base, const struct zkr_agent_opts *opts,
				zkr_agent_state_cb cb, void *arg, char *why, size_t whylen);

/* Register, and keep the node registered until stop or free. */
void zkr_agent_start(struct zkr_agent *a);

/* Remove the node but keep the session (e.g. while a health check fails). */
void zkr_agent_stop(struct zkr_agent *a);

/* Closes the session, which removes the node at once, and frees. Not
 * from inside the state callback. */
void zkr_agent_free(struct zkr_agent *a);

enum zkr_agent_state zkr_agent_state(const struct zkr_agent *a);
const char *zkr_agent_state_name(enum zkr_agent_state st);
/* Why the agent is FAILED (or the last problem), "" if none. */
const char *zkr_agent_error(const struct zkr_agent *a);
/* "/apps/<domain>/instances/<id>" (relative to the chroot). */
const char *zkr_agent_path(const struct zkr_agent *a);

#endif
