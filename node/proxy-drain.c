/*
 * The router's side of a SIGTERM drain (main.c runs the clock): from the
 * signal on, every response says "Connection: close" and its connection
 * closes after it, so keep-alive clients reconnect, elsewhere once DNS
 * and the health checks moved them. Once the listeners are closed, a
 * keep-alive connection is closed only between two requests: a request
 * in flight, a head partly received or bytes still waiting on the socket
 * keep it until answered, and the drain waits for them and for answers
 * still being written (at most drain-timeout-ms).
 */
#include <config.h>

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "node/h2.h"
#include "node/stream.h"
#include "node/proxy.h"

/* A connection accepted just before the listeners closed has its first
 * request on the way (it arrives a round trip after the accept): it is
 * given this long, within the head timeout, before it counts as idle. A
 * connection opened ahead of need (a browser's preconnect) then delays
 * the exit by at most this. */
#define DRAIN_FIRST_REQUEST_MS 1000

void proxy_drain(struct proxy *p)
{
	p->draining = true;
}

/* True when a client sent nothing of a next request: nothing in its
 * input, nothing waiting on its socket (read in a later turn of the
 * loop), and it is not a new connection whose first request may be on
 * the way. A request that crosses the close on the wire is not
 * prevented, but the close is a FIN with lingering
 * (client_close_after_flush), not a reset: the client sees its reused
 * connection closed before any answer, which HTTP clients retry on a new
 * one. */
static bool between_requests(const struct client *c, uint64_t now)
{
	evutil_socket_t fd = c->io.fd;
	unsigned grace = DRAIN_FIRST_REQUEST_MS;
	char b;

	if (c->state != CS_IDLE ||
	    (c->bev != NULL && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) ||
	    conn_tls_pending(&c->io))
		return false;
	if (c->p->cfg.head_timeout_ms < grace)
		grace = c->p->cfg.head_timeout_ms;
	/* Added, not subtracted: a connection started in this very tick
	 * (one held for the budget, proxy_deferred_drain) became idle after
	 * `now` was read, and the difference would wrap. */
	if (c->n_requests == 0 && c->idle_since_ms + grace > now)
		return false;
	/* For TLS the bytes may be records that hold no request: the
	 * connection then ends at its head timeout, within the drain. */
	return fd < 0 || recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

size_t proxy_drain_tick(struct proxy *p)
{
	struct client *c, *next;
	size_t n = proxy_active_requests(p);
	uint64_t now = clock_now_ms();
	unsigned grace = DRAIN_FIRST_REQUEST_MS;

	p->draining = true;
	if (p->cfg.head_timeout_ms < grace)
		grace = p->cfg.head_timeout_ms;
	/* Connections still reading a PROXY header: a client soon. */
	n += pp_conn_drain(p, now, grace);
	/* Connections accepted past the budget: clients once it has room. */
	n += proxy_deferred_drain(p);
	for (c = TAILQ_FIRST(&p->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state == CS_H2) {
			/* HTTP/2: two GOAWAYs, then closed once its streams
			 * ended (h2.c). */
			if (h2_drain_tick(c, now))
				n++;
			continue;
		}
		if (between_requests(c, now)) {
			clog_debug(c, "drain: closing a keep-alive connection between requests");
			client_close_after_flush(c);
		}
		/* Still idle: a request on its way. Closing: its last
		 * answer is still being written. */
		if (c->state == CS_IDLE || c->state == CS_CLOSING)
			n++;
	}
	return n;
}
