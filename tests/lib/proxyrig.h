/*
 * A request path on one event loop, for unit suites: a real proxy (the
 * daemon's own code) listening on 127.0.0.1, a route table built in
 * memory (no ZooKeeper), backends that are real listening sockets answered
 * by the test's own loop, and real client sockets. Everything runs on the
 * test's thread: waiting for an answer turns the loop, with a bound.
 *
 * A rig backend answers every request, after reading its whole body
 * (Content-Length), with 200, keeps the connection open, and says who it
 * is: X-Backend (its name), X-Conn (which of its connections, from 1),
 * X-Host (the Host it was sent). It counts what it saw.
 */
#ifndef ZKR_TEST_PROXYRIG_H
#define ZKR_TEST_PROXYRIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "node/config.h"

struct proxy;
struct rig_bconn;

struct rig_backend {
	char name[32];
	evutil_socket_t lfd;
	struct event *lev;
	struct event_base *base;
	unsigned short port;
	unsigned accepted;         /* connections accepted */
	unsigned closed;           /* of those, closed by the proxy */
	unsigned requests;         /* requests answered */
	uint64_t body_bytes;       /* request body bytes read, every request */
	struct rig_bconn *conns;
};

struct rig {
	struct event_base *base;
	struct event *tick;        /* a turn of the loop never blocks long */
	struct zkr_config cfg;
	struct proxy *p;
	unsigned short port;       /* the proxy's listener */
};

/* An instance of an app in rig_table. */
struct rig_inst {
	const char *id;
	unsigned short port;
};

bool rig_init(struct rig *r);
void rig_free(struct rig *r);

bool rig_backend_start(struct rig *r, struct rig_backend *b, const char *name);
void rig_backend_stop(struct rig_backend *b);
/* A port on 127.0.0.1 where nothing listens (connects are refused). */
unsigned short rig_refused_port(void);

/* Gives the proxy a table of one app per domain: domains[i] with the
 * n_inst[i] instances starting at insts[sum of the previous counts]. */
bool rig_table(struct rig *r, const char *const *domains, const size_t *n_inst,
	       const struct rig_inst *insts, size_t n_apps);

/* A client connection to the proxy (non-blocking), or -1. */
int rig_connect(struct rig *r);
/* Sends all of buf, turning the loop while the socket is full. */
bool rig_send(struct rig *r, int fd, const void *buf, size_t len);
/* Turns the loop until the whole response (head and Content-Length body)
 * arrived on fd, at most timeout_ms; returns its status (0: none, or the
 * connection closed first) and copies it, NUL-terminated, into out. */
int rig_response(struct rig *r, int fd, char *out, size_t cap, unsigned timeout_ms);
/* The value of header `name` in a response, or "" (static buffer). */
const char *rig_header(const char *resp, const char *name);
/* Turns the loop until cond(arg) holds, at most timeout_ms. */
bool rig_until(struct rig *r, bool (*cond)(void *), void *arg, unsigned timeout_ms);

#endif
