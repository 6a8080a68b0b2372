/*
 * Upgraded connections (WebSocket and the like): after the backend's 101
 * the client and the backend connection become a plain byte tunnel. Bytes
 * move with evbuffer_add_buffer (no copy), each direction is paused when
 * its destination's output passes the high mark and resumed from the
 * destination's write callback. One timer per tunnel closes it after
 * tunnel_idle_timeout_ms without traffic in either direction.
 *
 * A tunnel holds no reference to the table or the app: table changes and
 * instance removals never touch it.
 */
#include <config.h>

#include <stdlib.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "node/stream.h"

struct tunnel {
	struct client *c;
	struct upstream *up;
	struct event *timer;
	uint64_t last_ms;
	unsigned idle_ms;
	size_t high;
	bool client_eof, up_eof;
	bool stopped;
	bool arm_failed;           /* tunnel_start could not arm it: end it */
};

static struct bufferevent *peer_of(struct tunnel *t, struct bufferevent *bev)
{
	return bev == t->c->bev ? t->up->bev : t->c->bev;
}

static void tunnel_end(struct tunnel *t)
{
	client_close(t->c);   /* stops the tunnel and closes the upstream */
}

/* Moves what `src` read into its peer's output. */
static void tunnel_move(struct tunnel *t, struct bufferevent *src)
{
	struct bufferevent *dst = peer_of(t, src);
	struct evbuffer *out = bufferevent_get_output(dst);

	t->last_ms = clock_now_ms();
	evbuffer_add_buffer(out, bufferevent_get_input(src));
	if (evbuffer_get_length(out) >= t->high)
		bufferevent_disable(src, EV_READ);
}

static void tunnel_read_cb(struct bufferevent *bev, void *arg)
{
	tunnel_move(arg, bev);
}

static void tunnel_write_cb(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;
	struct bufferevent *src = peer_of(t, bev);
	bool src_eof = src == t->c->bev ? t->client_eof : t->up_eof;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && src_eof) {
		/* The other side finished and all it sent is delivered. */
		tunnel_end(t);
		return;
	}
	if (!src_eof && !(bufferevent_get_enabled(src) & EV_READ) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) < t->high) {
		if (bufferevent_enable(src, EV_READ) != 0) {
			clog_at(ZKR_LOG_ERROR, t->c, "tunnel: cannot resume reading: closing");
			tunnel_end(t);
			return;
		}
		tunnel_move(t, src);
	}
}

static void tunnel_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel *t = arg;
	struct bufferevent *dst = peer_of(t, bev);

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		if (bev == t->c->bev)
			t->client_eof = true;
		else
			t->up_eof = true;
		evbuffer_add_buffer(bufferevent_get_output(dst), bufferevent_get_input(bev));
		if (evbuffer_get_length(bufferevent_get_output(dst)) == 0)
			tunnel_end(t);
		return;
	}
	/* An error, or a timeout we did not ask for. */
	tunnel_end(t);
}

static void tunnel_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = arg;
	uint64_t now = clock_now_ms(), idle = now - t->last_ms;
	struct timeval tv;

	if (t->arm_failed) {
		tunnel_end(t);
		return;
	}
	if (idle >= t->idle_ms) {
		clog_info(t->c, "tunnel idle for %llu ms: closing", (unsigned long long)idle);
		tunnel_end(t);
		return;
	}
	idle = t->idle_ms - idle;
	tv.tv_sec = (time_t)(idle / 1000);
	tv.tv_usec = (suseconds_t)(idle % 1000) * 1000;
	if (evtimer_add(t->timer, &tv) != 0) {
		clog_at(ZKR_LOG_ERROR, t->c, "tunnel: cannot arm the idle timer: closing");
		tunnel_end(t);
	}
}

bool tunnel_start(struct client *c, struct upstream *up)
{
	struct proxy *p = c->p;
	struct tunnel *t;
	struct timeval tv;

	/* TLS: an OpenSSL bufferevent carries the tunnel's client side. */
	if (c->tls) {
		if (!conn_tls_to_bev(&c->io))
			return false;
		c->bev = c->io.bev;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return false;
	t->timer = evtimer_new(p->base, tunnel_timer_cb, t);
	if (t->timer == NULL) {
		free(t);
		return false;
	}
	t->c = c;
	t->up = up;
	t->idle_ms = p->cfg.tunnel_idle_timeout_ms ? p->cfg.tunnel_idle_timeout_ms : 300000;
	t->high = p->cfg.buffer_high_bytes;
	t->last_ms = clock_now_ms();
	c->tun = t;
	p->n_tunnels++;   /* until tunnel_stop: the drain waits for it */
	up->state = US_TUNNEL;
	client_set_state(c, CS_TUNNEL);
	c->read_paused = false;

	/* Bytes move through the bufferevents' own reading from here on. */
	conn_read_off(&c->io);
	conn_read_off(&up->io);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_set_timeouts(up->bev, NULL, NULL);
	bufferevent_setwatermark(c->bev, EV_READ, 0, t->high);
	bufferevent_setwatermark(up->bev, EV_READ, 0, t->high);
	bufferevent_setcb(c->bev, tunnel_read_cb, tunnel_write_cb, tunnel_event_cb, t);
	bufferevent_setcb(up->bev, tunnel_read_cb, tunnel_write_cb, tunnel_event_cb, t);
	tv.tv_sec = t->idle_ms / 1000;
	tv.tv_usec = (t->idle_ms % 1000) * 1000;
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0 ||
	    bufferevent_enable(up->bev, EV_READ | EV_WRITE) != 0 || evtimer_add(t->timer, &tv) != 0) {
		/* The caller still holds the request: end the tunnel from
		 * its timer, made due now (event_active cannot fail). */
		clog_at(ZKR_LOG_ERROR, c, "tunnel: cannot arm reads or the idle timer: closing");
		t->arm_failed = true;
		event_active(t->timer, EV_TIMEOUT, 1);
	}
	clog_debug(c, "tunnel to %s open", up->be->name);
	/* Bytes that came with the 101 or after the request head. */
	if (evbuffer_get_length(bufferevent_get_input(up->bev)))
		tunnel_move(t, up->bev);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)))
		tunnel_move(t, c->bev);
	return true;
}

void tunnel_stop(struct tunnel *t)
{
	if (t->stopped)
		return;
	t->stopped = true;
	t->c->p->n_tunnels--;
	evtimer_del(t->timer);
	if (t->up) {
		upstream_close(t->up);
		t->up = NULL;
	}
}

void tunnel_free(struct tunnel *t)
{
	tunnel_stop(t);
	event_free(t->timer);
	free(t);
}
