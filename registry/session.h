/*
 * A ZooKeeper session driven by a libevent loop, with the single-threaded
 * C client (zookeeper_interest / zookeeper_process). Nothing here runs on
 * a thread of its own: watchers and completions run inside the loop.
 *
 * The session survives disconnects (the client reconnects on its own and
 * re-sends watches). After expiry it makes a new handle from the main loop
 * with jittered backoff, re-authenticates and tells every subscriber with
 * ZKR_SESSION_NEW, so they re-create ephemerals and re-read with watches.
 */
#ifndef ZKR_SESSION_H
#define ZKR_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <zookeeper/zookeeper.h>

enum zkr_session_event {
	ZKR_SESSION_NEW,           /* connected on a new session (first, or after expiry) */
	ZKR_SESSION_RECONNECTED,   /* connected again on the same session */
	ZKR_SESSION_DISCONNECTED,  /* connection lost; the library reconnects */
	ZKR_SESSION_EXPIRED,       /* the session is gone; a new one is on its way */
};

struct zkr_session_opts {
	const char *connect;       /* "host:port,host:port[/chroot]"; chroot default /zkrouter */
	const char *auth;          /* "user:password" for digest auth, or NULL */
	int timeout_ms;            /* requested session timeout */
};

struct zkr_session;

typedef void (*zkr_session_cb)(struct zkr_session *s, enum zkr_session_event ev, void *arg);

struct zkr_session *zkr_session_new(struct event_base *base, const struct zkr_session_opts *opts,
				    char *why, size_t whylen);
void zkr_session_free(struct zkr_session *s);

/* Adds a listener for session events; returns false on allocation failure. */
bool zkr_session_subscribe(struct zkr_session *s, zkr_session_cb cb, void *arg);
void zkr_session_unsubscribe(struct zkr_session *s, zkr_session_cb cb, void *arg);

/* The live handle, or NULL while a new one is being made after expiry. */
zhandle_t *zkr_session_zh(struct zkr_session *s);
bool zkr_session_connected(const struct zkr_session *s);

/* Re-arm the loop's interest after issuing requests from outside a
 * ZooKeeper callback (a timer, a signal), so queued writes go out. */
void zkr_session_kick(struct zkr_session *s);

#endif
