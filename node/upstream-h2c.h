/*
 * Requests to h2c apps (upstream-h2c.c): the part of the upstream layer
 * that sends a request as a stream of an instance's pool of HTTP/2
 * connections (upstream-h2.h) instead of over HTTP/1.1. upstream.c calls
 * it where it would open or reuse an HTTP/1.1 connection.
 */
#ifndef ZKR_UPSTREAM_H2C_H
#define ZKR_UPSTREAM_H2C_H

#include <stdbool.h>

struct backend;
struct request;

enum h2c_start {
	H2C_STARTED,               /* the stream is on its way */
	H2C_NEXT,                  /* this instance cannot take it: another one */
	H2C_NOMEM,                 /* our own shortage: no point trying others */
};

/* Sends request `r` (r->be set) to `be` as a stream of its pool. */
enum h2c_start upstream_h2c_start(struct request *r, struct backend *be);
/* Moves request body bytes from the client to the stream. */
void upstream_h2c_pump(struct request *r);
/* True while the request has a stream to send its body on. */
bool upstream_h2c_sending(const struct request *r);
/* The client took response bytes: the stream's window opens again. */
void upstream_h2c_resume(struct request *r);
/* The request is over: its stream is cancelled if still open. */
void upstream_h2c_release(struct request *r);
/* The backend's pool retires (it left, drains or moved); the idle_close
 * hook of struct backend calls it. */
void upstream_h2c_pool_close(struct backend *b);

#endif
