/*
 * HTTP/2 to clients (h2.c, h2-stream.c, h2-check.c), with nghttp2. A
 * client connection that chose "h2" by ALPN, or began with the HTTP/2
 * preface on a plain listener with --h2c, becomes CS_H2: its bufferevent
 * stays the transport, nghttp2 reads its input and writes its output,
 * and each stream is a struct request going through the one request
 * path (request_route_head), its response coming back through the
 * HTTP/2 resp_sink. The stream layer (proxy.c, proxy-request.c,
 * proxy-drain.c) calls the functions below; nothing else does.
 */
#ifndef ZKR_H2_H
#define ZKR_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct evbuffer;
struct proxy;
struct request;

/* Whether the input begins with the HTTP/2 client preface: 1 yes, 0 too
 * short to tell, -1 no. */
int h2_preface(struct evbuffer *in);
/* The client speaks HTTP/2 from now on (CS_H2): the session is made, our
 * SETTINGS queued and its input read. False when it was closed. */
bool h2_start(struct client *c);

/* The client's callbacks, for CS_H2 (proxy.c). */
void h2_read(struct client *c);
void h2_writable(struct client *c);
/* Its read or write timeout: idle connections end with a GOAWAY. */
void h2_timeout(struct client *c, short what);
/* Sends what nghttp2 has for the client, as far as its output allows;
 * then closes it if the session is over. Safe from anywhere. */
void h2_flush(struct client *c);
/* From client_close: every stream's request ends. */
void h2_close(struct client *c);
/* From the reaper: the session and the streams' memory. */
void h2_free(struct client *c);
/* From proxy_free: the proxy's event for h2_flush. */
void h2_proxy_free(struct proxy *p);
/* The memory janitor found the connection without a stream for a while
 * (it is listed in the proxy's idle clients while it has none): nghttp2's
 * buffers give their pages back (h2-mem.c) and the client is parked, its
 * bufferevent freed (client_mem_park); not while it drains. True when
 * something was freed (the heap trim counts it). */
bool h2_mem_park(struct client *c);
/* Frees n of the worker's pooled streams (SIZE_MAX: all): the janitor
 * frees those a whole tick did not use, the proxy's end all. */
void h2_stream_pool_trim(struct proxy *p, size_t n);
/* A drain tick (proxy-drain.c): the two GOAWAYs, then the close once the
 * streams ended. True while the connection still counts. */
bool h2_drain_tick(struct client *c, uint64_t now_ms);

/* The request side of the seams (stream.h), for a request on a stream. */
struct evbuffer *h2_body_in(struct request *r);
void h2_body_taken(struct request *r, size_t n);
/* From request_finish: the request is over, its stream ends (or is reset
 * when the response was cut), and forgets it. */
void h2_request_done(struct request *r);

#endif
