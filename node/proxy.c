/*
 * The proxy object and its client connections: client timeouts, closing
 * and the deferred freeing of connections, table snapshots and the API
 * main.c and admin.c use. proxy-listen.c holds the listeners and
 * accepting; proxy-io.c holds
 * the socket I/O shared with upstream.c. proxy-request.c reads, routes and ends requests;
 * upstream.c carries them to a backend and the response back; tunnel.c
 * takes over after an Upgrade; proxy-drain.c closes connections for a
 * SIGTERM drain. See stream.h for the picture.
 */
#include <config.h>

#include <errno.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "node/accesslog.h"
#include "node/balancer.h"
#include "node/h2.h"
#include "node/stream.h"
#include "node/proxy.h"
#include "node/shared.h"
#include "node/tls.h"
#include "node/upstream.h"
#include "registry/prng.h"

static const char *const client_state_names[] = {
	[CS_IDLE] = "idle", [CS_REQUEST] = "request", [CS_TUNNEL] = "tunnel", [CS_H2] = "h2",
	[CS_CLOSING] = "closing", [CS_LINGER] = "linger", [CS_DEAD] = "dead",
};

void client_set_state(struct client *c, enum client_state s)
{
	if (c->state == s)
		return;
	clog_debug(c, "state %s -> %s", client_state_names[c->state], client_state_names[s]);
	if (c->state == CS_IDLE)
		client_mem_busy(c);
	c->state = s;
}

/* ---- reaping ----------------------------------------------------------- */

static void client_destroy(struct client *c);

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	struct client *c;

	while ((c = TAILQ_FIRST(&p->dead_clients)) != NULL) {
		TAILQ_REMOVE(&p->dead_clients, c, link);
		client_destroy(c);
	}
	upstream_free_dead(p);
}

void proxy_reap_later(struct proxy *p)
{
	event_active(p->reaper, EV_TIMEOUT, 0);
}

/* ---- client connections ----------------------------------------------- */

/*
 * The protocol of a new connection, at its first bytes: HTTP/2 when TLS
 * chose "h2" by ALPN, or (with --h2c) when a plain connection begins with
 * the HTTP/2 preface; HTTP/1.1 otherwise. False when the bytes are not
 * HTTP/1.1's to read (HTTP/2 took the connection, or the preface is not
 * whole yet: the head timeout bounds the wait as for any head).
 */
static bool client_choose_proto(struct client *c)
{
	int pre;

	if (c->tls) {
		c->proto_chosen = true;
		if (tls_conn_protocol(c->io.ssl) != TLS_PROTO_H2)
			return true;
		h2_start(c);
		return false;
	}
	if (!c->p->cfg.h2c) {
		c->proto_chosen = true;
		return true;
	}
	pre = h2_preface(bufferevent_get_input(c->bev));
	if (pre == 0)
		return false;
	c->proto_chosen = true;
	if (pre < 0)
		return true;
	h2_start(c);
	return false;
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	CHECK_MAGIC(c, CLIENT_MAGIC);
	switch (c->state) {
	case CS_IDLE:
		if (!c->proto_chosen && c->n_requests == 0 && !client_choose_proto(c))
			break;
		client_process(c);
		break;
	case CS_H2:
		h2_read(c);
		break;
	case CS_REQUEST:
		/* The body goes on after the response head too: an app may
		 * answer before it read the whole body (streaming, duplex). */
		if (c->req && !c->req->req_body_done && upstream_sending(c->req))
			upstream_pump_request(c->req);
		else if (evbuffer_get_length(in) >= c->p->cfg.buffer_high_bytes && !c->read_paused) {
			/* Pipelined requests wait, bounded, until this one ends. */
			c->read_paused = true;
			conn_read_off(&c->io);
		}
		break;
	case CS_CLOSING:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	case CS_LINGER:
		/* The read timeout restarts with every read: a client that
		 * keeps sending would linger for ever without this bound. */
		evbuffer_drain(in, evbuffer_get_length(in));
		if (clock_now_ms() >= c->linger_until_ms)
			client_close(c);
		break;
	default:
		break;
	}
}

#define CLIENT_LINGER_MS 1000

static void client_linger(struct client *c)
{
	evutil_socket_t fd = c->io.fd;

	/* TLS: the end of the stream, before the end of the socket's. */
	if (c->tls)
		conn_tls_close_notify(&c->io);
	/* Lingering reads what a client still sends; after its EOF there is
	 * nothing left to read. */
	if (fd < 0 || shutdown(fd, SHUT_WR) != 0 || c->io.eof) {
		client_close(c);
		return;
	}
	client_set_state(c, CS_LINGER);
	c->linger_until_ms = clock_now_ms() + CLIENT_LINGER_MS;
	evbuffer_drain(bufferevent_get_input(c->bev),
		       evbuffer_get_length(bufferevent_get_input(c->bev)));
	conn_write_timeout(&c->io, 0);
	conn_read_timeout(&c->io, CLIENT_LINGER_MS);
	conn_read_on(&c->io);
}

void client_close_after_flush(struct client *c)
{
	/* Lingering reads into the input (a drain closes parked clients). */
	if (c->parked && !client_mem_unpark(c))
		return;   /* closed */
	client_set_state(c, CS_CLOSING);
	conn_flush_now(&c->io);   /* its write callback may linger already */
	if (c->state == CS_CLOSING && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		client_linger(c);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	CHECK_MAGIC(c, CLIENT_MAGIC);
	conn_write_done(&c->io);
	if (c->state == CS_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			client_linger(c);
	} else if (c->state == CS_REQUEST && c->req) {
		upstream_resume_response(c->req);
	} else if (c->state == CS_H2) {
		h2_writable(c);
	} else if (c->state == CS_IDLE) {
		client_output_resume(c);
	}
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	struct proxy *p;
	uint64_t now;
	bool eof;

	CHECK_MAGIC(c, CLIENT_MAGIC);
	p = c->p;
	if (c->state == CS_LINGER || c->state == CS_DEAD) {
		client_close(c);
		return;
	}
	if (c->state == CS_H2 && (what & BEV_EVENT_TIMEOUT)) {
		h2_timeout(c, what);
		return;
	}
	if (c->state == CS_H2 && (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* Its streams in flight still get their answers. */
		h2_read(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		now = clock_now_ms();
		if (what & BEV_EVENT_WRITING) {
			clog_info(c, "client stopped reading: closing");
		} else if (c->state == CS_IDLE && bev != NULL &&
			   evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
			if (now - c->head_start_ms >= p->cfg.head_timeout_ms) {
				client_reject(c, 408, "request_timeout", "request head too slow");
				return;
			}
			conn_read_on(&c->io);
			return;
		} else if (c->state == CS_IDLE) {
			if (now - c->idle_since_ms < p->cfg.client_idle_timeout_ms && !p->stopping) {
				conn_read_on(&c->io);
				return;
			}
			clog_debug(c, "keep-alive idle timeout");
		} else if (c->state == CS_REQUEST && c->req && request_body_stalled(c->req)) {
			/* The response timeout waits for the whole body, so a
			 * client that stops sending it is bounded here: no body
			 * byte for head_timeout_ms (the read timeout, re-armed
			 * by every read). */
			request_fail(c->req, 408, "request_timeout", "request body too slow");
			return;
		} else if (c->state == CS_REQUEST || c->state == CS_CLOSING) {
			if (!c->read_paused)
				conn_read_on(&c->io);
			return;
		}
		client_close(c);
		return;
	}
	eof = (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR);
	/* TLS too: a client's close_notify ends its side only; what is
	 * queued is still written, and our close_notify ends ours. */
	if (eof && c->state == CS_REQUEST && c->req) {
		/* A half-close: what the client sent completely is answered,
		 * pipelined requests too, then the connection closes
		 * (client_process). A body still in the input goes on once
		 * the backend connection is up; one cut short is a 400. */
		if (!c->req->req_body_done)
			upstream_pump_request(c->req);
		return;
	}
	if (eof && c->state == CS_IDLE) {
		/* An answer finished in this same turn may still be queued. */
		client_close_after_flush(c);
		return;
	}
	if (c->state == CS_CLOSING && !(what & BEV_EVENT_ERROR)) {
		return;   /* the flush goes on; the write callback ends it */
	}
	if (c->req) {
		rlog_debug(c->req, "client went away");
		c->req->obs.client_gone = true;   /* logged 499 */
	}
	client_close(c);   /* ends the request in flight, if any */
}

static void client_set_limits(struct client *c)
{
	struct proxy *p = c->p;

	conn_write_timeout(&c->io, p->cfg.client_idle_timeout_ms);
	conn_read_timeout(&c->io, p->cfg.head_timeout_ms);
	if (c->bev != NULL)   /* parked: set when it gets one again */
		bufferevent_setwatermark(c->bev, EV_WRITE, p->cfg.buffer_high_bytes / 2, 0);
}

/* Parking (proxy-mem.c), here for the callbacks: an idle client with
 * nothing buffered nor under way loses its bufferevent; the socket stays
 * (the bufferevent never owns it), its read event with its timeout too.
 * An HTTP/2 connection without a stream is parked the same way, plain or
 * TLS (h2_mem_park): its session stays, and its paths that write
 * (h2_timeout's GOAWAY, a drain, a close) unpark it first. An idle
 * HTTP/1.1 client over TLS is not listed idle (client_mem_idle). */
bool client_mem_park(struct client *c)
{
	struct bufferevent *bev = c->bev;

	if (c->parked || (c->state != CS_IDLE && c->state != CS_H2) ||
	    (c->tls && c->state != CS_H2) || c->tun || bev == NULL || c->processing ||
	    c->out_full || c->read_paused || c->io.queued || c->io.eof || !c->io.reading ||
	    (bufferevent_get_enabled(bev) & EV_WRITE) ||
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return false;
	/* TLS: nothing waits on the socket's write side, and no record the
	 * SSL holds waits to be read into the input. */
	if (c->tls && (c->io.wblocked || c->io.rwants_write || c->io.wlen > 0 || c->io.tls_dead ||
		       conn_tls_pending(&c->io)))
		return false;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_free(bev);
	c->bev = NULL;
	conn_io_set_bev(&c->io, NULL);
	c->parked = true;
	return true;
}

bool client_mem_unpark(struct client *c)
{
	struct bufferevent *bev;

	if (!c->parked)
		return true;
	/* TLS: as at the start, a bufferevent without a socket (proxy-tls.c
	 * does the I/O). */
	bev = bufferevent_socket_new(c->p->base, c->tls ? -1 : c->io.fd, 0);
	if (bev == NULL) {
		clog_warn(c, "out of memory for an idle connection's buffers: closing");
		c->parked = false;
		client_close(c);
		return false;
	}
	c->parked = false;
	c->bev = bev;
	bufferevent_setcb(bev, client_read_cb, client_write_cb, client_event_cb, c);
	/* Writes go out directly (conn_flush); EV_WRITE only when stuck. */
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_setwatermark(bev, EV_WRITE, c->p->cfg.buffer_high_bytes / 2, 0);
	conn_io_set_bev(&c->io, bev);
	return true;
}

static bool client_unpark_cb(void *arg)
{
	struct client *c = arg;

	return client_mem_unpark(c);
}

struct client *client_start(struct proxy *p, evutil_socket_t fd, const struct sockaddr *sa,
			    unsigned short local_port, SSL *ssl)
{
	struct client *c;
	int one = 1;
	uint16_t port = 0;

	c = client_mem_alloc(p);
	if (c == NULL) {
		if (ssl)
			SSL_free(ssl);
		evutil_closesocket(fd);
		shared_conn_put(p->shared);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	proxy_mem_fd_seen(p, fd);
	c->magic = CLIENT_MAGIC;
	c->p = p;
	c->id = ++p->next_id;
	c->local_port = local_port;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		evutil_inet_ntop(AF_INET, &sin->sin_addr, c->ip, sizeof(c->ip));
		port = ntohs(sin->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%u", c->ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, c->ip, sizeof(c->ip));
		port = ntohs(sin6->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", c->ip, port);
	} else {
		snprintf(c->ip, sizeof(c->ip), "unknown");
		snprintf(c->peer, sizeof(c->peer), "unknown");
	}
	/* TLS: a bufferevent without a socket, to hold the buffers;
	 * proxy-tls.c does the I/O (see there why). */
	c->tls = ssl != NULL;
	/* The socket is ours, not the bufferevent's. A plain client starts
	 * parked, without one: its buffers are made when its first bytes
	 * arrive, so that accepting many connections at once lays out their
	 * small lasting parts together, apart from what their requests
	 * allocate and free (proxy-mem.c). */
	if (ssl) {
		c->bev = bufferevent_socket_new(p->base, -1, 0);
		if (c->bev == NULL)
			goto failed;
		bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
		if (!conn_io_open_tls(&c->io, p->base, &p->flushq, c->bev, fd, ssl, client_read_cb,
				      client_event_cb, c, p->cfg.tls_handshake_timeout_ms, &p->tls_count,
				      c->peer)) {
			bufferevent_free(c->bev);
			goto failed;
		}
	} else {
		c->io.fd = fd;
		c->parked = true;
		if (!conn_io_open(&c->io, p->base, &p->flushq, NULL, client_read_cb, client_event_cb, c,
				  false))
			goto failed;
	}
	c->io.unpark = client_unpark_cb;
	client_set_limits(c);
	c->state = CS_IDLE;
	c->idle_since_ms = clock_now_ms();
	client_mem_idle(c);
	TAILQ_INSERT_TAIL(&p->clients, c, link);
	p->n_clients++;
	/* Writes go out directly (conn_flush); EV_WRITE only when stuck. */
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_WRITE);
	conn_read_on(&c->io);
	clog_debug(c, "accepted on port %u", (unsigned)local_port);
	/* Counted by the address `sa` names: behind a PROXY header, the
	 * client's, never the load balancer's. */
	if (!client_limits_open(c))
		return NULL;   /* closed: far over max-connections-per-ip */
	return c;
failed:
	if (ssl)
		SSL_free(ssl);
	evutil_closesocket(fd);
	client_mem_free(c);
	shared_conn_put(p->shared);
	return NULL;
}

/*
 * The one way a client connection ends. A request still in flight on it is
 * ended here too (its backend connection dropped, the access log written),
 * so no request or upstream can point at a client the reaper frees: every
 * path that closes a client, timeout, reset or our own error, goes
 * through this.
 */
void client_close(struct client *c)
{
	struct proxy *p = c->p;
	struct request *r = c->req;

	if (c->state == CS_DEAD)
		return;
	client_set_state(c, CS_DEAD);
	client_limits_close(c);
	if (c->tls) {
		/* A response cut short must not end like a whole one. */
		if (r != NULL && r->resp_head_done)
			conn_tls_cut(&c->io);
		conn_tls_close_notify(&c->io);
	}
	if (c->tun)
		tunnel_stop(c->tun);
	if (c->h2)
		h2_close(c);   /* ends the requests of its streams */
	conn_io_halt(&c->io);
	client_mem_busy(c);
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	}
	TAILQ_REMOVE(&p->clients, c, link);
	p->n_clients--;
	shared_conn_put(p->shared);
	TAILQ_INSERT_TAIL(&p->dead_clients, c, link);
	proxy_reap_later(p);
	proxy_accept_recheck(p);
	if (r != NULL) {
		rlog_debug(r, "client connection closed with the request in flight");
		r->keep_alive = false;
		r->resp_reusable = false;
		upstream_abandon(r);
		request_finish(r);   /* sees CS_DEAD: frees nothing of the client's */
	}
}

static void client_destroy(struct client *c)
{
	if (c->tun)
		tunnel_free(c->tun);
	h2_free(c);
	/* TLS: the bufferevent (an OpenSSL one in a tunnel) goes before the
	 * SSL and the socket it uses, which conn_io_close frees. */
	if (c->tls && c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	conn_io_close(&c->io);
	if (c->bev)
		bufferevent_free(c->bev);
	/* TLS: conn_io_close closed it. */
	if (!c->tls && c->io.fd >= 0)
		evutil_closesocket(c->io.fd);
	c->magic = 0;
	c->p->mem_released++;
	client_mem_free(c);
}

/* ---- the proxy --------------------------------------------------------- */

static void proxy_copy_config(struct proxy *p, const struct zkr_config *cfg)
{
	char *up = NULL;

	/* The one string the request path reads gets a copy of its own; if
	 * that fails, the previous list stays. */
	if (cfg->upgrade_protocols == NULL || (up = strdup(cfg->upgrade_protocols)) != NULL) {
		free(p->upgrade_protocols);
		p->upgrade_protocols = up;
	} else {
		log_error("out of memory: upgrade-protocols unchanged");
	}
	p->cfg = *cfg;
	/* Only the scalar options are used here; the strings stay the
	 * caller's, so clear them rather than keep dangling copies. */
	p->cfg.config_file = p->cfg.zk_connect = p->cfg.zk_auth = p->cfg.node_id = NULL;
	p->cfg.listen = NULL;
	p->cfg.n_listen = 0;
	p->cfg.admin = p->cfg.access_log = p->cfg.log_level = p->cfg.resolver = NULL;
	p->cfg.upgrade_protocols = NULL;
	p->cfg.cli_argv = NULL;
	p->cfg.cli_argc = 0;
	if (p->cfg.max_headers == 0)
		p->cfg.max_headers = 100;
	if (p->cfg.max_head_bytes < 64)
		p->cfg.max_head_bytes = 64;
	if (p->cfg.buffer_high_bytes < 4096)
		p->cfg.buffer_high_bytes = 4096;
	if (p->cfg.max_client_connections == 0)
		p->cfg.max_client_connections = 1;
	p->lim.max_head_bytes = p->cfg.max_head_bytes;
	p->lim.max_headers = p->cfg.max_headers;
	/* Each h2c pool takes these when it is made (upstream-h2c.c). */
	uh2_limits_default(&p->h2c_lim);
	if (p->cfg.h2c_backend_max_streams)
		p->h2c_lim.max_streams = p->cfg.h2c_backend_max_streams;
	if (p->cfg.h2c_backend_max_connections)
		p->h2c_lim.max_conns = p->cfg.h2c_backend_max_connections;
	if (p->cfg.connect_timeout_ms)
		p->h2c_lim.connect_timeout_ms = p->cfg.connect_timeout_ms;
	if (p->cfg.upstream_idle_timeout_ms)
		p->h2c_lim.idle_timeout_ms = p->cfg.upstream_idle_timeout_ms;
	p->h2c_lim.max_header_bytes = p->cfg.max_head_bytes;
	p->lim.max_target_bytes = p->cfg.max_target_bytes ? p->cfg.max_target_bytes : 8192;
	if (p->perip != NULL)
		limits_configure(p->perip, p->cfg.max_connections_per_ip,
				 p->cfg.max_requests_per_ip_per_s, p->cfg.requests_per_ip_burst);
}

/*
 * Another thread wakes this proxy's loop (shared_wake_fn): the bits say
 * why, the eventfd makes the loop look. The loop itself takes no lock
 * (a worker's base is made without them), so this is the only way in.
 */
static void proxy_wake(void *arg, unsigned what)
{
	struct proxy *p = arg;
	uint64_t one = 1;

	atomic_fetch_or(&p->wake_bits, what);
	if (write(p->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		ZKR_BUG("proxy wake: eventfd write: %s", strerror(errno));
}

static void proxy_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	uint64_t n;
	unsigned bits;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("proxy wake: eventfd read: %s", strerror(errno));
	bits = atomic_exchange(&p->wake_bits, 0);
	/* An app slot this proxy's requests wait for freed on another worker
	 * (shared_app_put): each waiting app gets its queue looked at. */
	if (bits & SHARED_WAKE_APPQ)
		appq_wake(p);
	/* A connection closed somewhere while accepting paused at
	 * max-client-connections. */
	if (bits & SHARED_WAKE_ACCEPT)
		proxy_accept_recheck(p);
}

static void proxy_detach_shared(struct proxy *p)
{
	if (p->shared == NULL)
		return;
	proxy_shared_detach(p->shared, p->shared_slot);
	p->shared_slot = -1;
	if (p->shared_owned)
		proxy_shared_free(p->shared);
	p->shared = NULL;
	p->perip = NULL;
}

static bool proxy_attach_shared(struct proxy *p, struct proxy_shared *sh, bool owned)
{
	proxy_detach_shared(p);
	p->shared = sh;
	p->shared_owned = owned;
	p->perip = proxy_shared_limits(sh);
	p->map.shared = sh;
	p->shared_slot = proxy_shared_attach(sh, proxy_wake, p);
	if (p->shared_slot < 0) {
		log_error("more than %d proxies share the process's state", SHARED_MAX_PROXIES);
		return false;
	}
	return true;
}

void proxy_set_shared(struct proxy *p, struct proxy_shared *sh)
{
	if (p->table != NULL || p->n_listeners > 0)
		ZKR_BUG("proxy_set_shared after the proxy started");
	if (sh != p->shared && !proxy_attach_shared(p, sh, false))
		ZKR_BUG("proxy_set_shared: no slot left");
}

struct proxy_shared *proxy_get_shared(struct proxy *p)
{
	return p->shared;
}

/* How the upstream layer reports to this one (node/upstream.h). */
static const struct upstream_ops proxy_upstream_ops = {
	.request_fail = request_fail,
	.request_finish = request_finish,
	.request_set_state = request_set_state,
	.tunnel_start = tunnel_start,
	.client_close = client_close,
	.reap_later = proxy_reap_later,
};

struct proxy *proxy_new(struct event_base *base, const struct zkr_config *cfg,
			struct accesslog *log)
{
	struct proxy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->base = base;
	p->log = log;
	p->shared_slot = -1;
	proxy_copy_config(p, cfg);
	TAILQ_INIT(&p->clients);
	TAILQ_INIT(&p->pp_conns);
	TAILQ_INIT(&p->waiting_loads);
	TAILQ_INIT(&p->dead_clients);
	TAILQ_INIT(&p->dead_upstreams);
	TAILQ_INIT(&p->pooled);
	backend_map_init(&p->map);
	p->uops = &proxy_upstream_ops;
	p->map.idle_close = upstream_pool_close;
	prng_seed(&p->rng, 0);
	p->reaper = event_new(base, -1, 0, reaper_cb, p);
	p->scratch = evbuffer_new();
	p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->wake_fd >= 0)
		p->wake_ev = event_new(base, p->wake_fd, EV_READ | EV_PERSIST, proxy_wake_cb, p);
	/* State of its own until proxy_set_shared gives it the process's
	 * (a proxy alone, as in the unit suites, works as before). */
	if (p->wake_ev == NULL || event_add(p->wake_ev, NULL) != 0) {
		proxy_free(p);
		return NULL;
	}
	{
		struct proxy_shared *own = proxy_shared_new(base, cfg);

		if (own == NULL || !proxy_attach_shared(p, own, true)) {
			if (p->shared != own)
				proxy_shared_free(own);
			proxy_free(p);
			return NULL;
		}
	}
	if (p->reaper == NULL || !proxy_accept_init(p) || p->scratch == NULL ||
	    !conn_flushq_init(&p->flushq, base) || !proxy_mem_init(p)) {
		proxy_free(p);
		return NULL;
	}
	return p;
}

void proxy_set_table(struct proxy *p, struct route_table *t)
{
	if (t == p->table)
		return;
	if (!backend_map_update(&p->map, p->table, t)) {
		log_error("out of memory applying table generation %llu; keeping the previous one",
			  (unsigned long long)t->generation);
		return;
	}
	route_table_ref(t);
	if (p->table)
		route_table_unref(p->table);
	p->table = t;
	log_debug("table generation %llu in use (%zu apps)", (unsigned long long)t->generation,
		  t->n_apps);
	appq_table_changed(p);
}

struct route_table *proxy_table(struct proxy *p)
{
	return p->table;
}

struct evdns_base *proxy_resolver(struct proxy *p)
{
	return proxy_shared_dns(p->shared);
}

void proxy_apply_config(struct proxy *p, const struct zkr_config *cfg)
{
	unsigned old_max_headers = p->cfg.max_headers;
	struct client *c;

	proxy_copy_config(p, cfg);
	if (p->cfg.max_headers != old_max_headers)
		request_pool_clear(p);   /* header arrays of the old size */
	TAILQ_FOREACH(c, &p->clients, link)
		if (c->state == CS_IDLE || c->state == CS_REQUEST)
			client_set_limits(c);
	proxy_accept_recheck(p);
}

size_t proxy_active_requests(const struct proxy *p)
{
	/* An open tunnel is a request that has not ended (a WebSocket
	 * session): a drain waits for it as for any other, within
	 * drain_timeout_ms. */
	return p->n_active + p->n_tunnels;
}

size_t proxy_client_connections(const struct proxy *p)
{
	return p->n_clients;
}

void proxy_limits_stats(const struct proxy *p, struct limits_stats *out)
{
	limits_get_stats(p->perip, out);
}

void proxy_tls_counters(const struct proxy *p, struct proxy_tls_counters *out)
{
	*out = p->tls_count;
}

static struct backend *proxy_find_backend(struct proxy *p, const char *domain, const char *id)
{
	struct route_app *app;
	struct app_state *s;

	if (p->table == NULL)
		return NULL;
	app = route_table_find(p->table, domain, strlen(domain));
	if (app == NULL)
		return NULL;
	s = backend_map_get(&p->map, app);
	return s ? app_state_find(s, id) : NULL;
}

bool proxy_backend_info(struct proxy *p, const char *domain, const char *instance_id,
			struct backend_info *out)
{
	struct backend *b = proxy_find_backend(p, domain, instance_id);
	uint64_t now = clock_now_ms();

	memset(out, 0, sizeof(*out));
	if (b == NULL)
		return false;
	/* The instance's shared state, and this proxy's own counts. */
	out->ejected = backend_ejected(b, now);
	out->ejected_until_ms = out->ejected ? atomic_load(&b->si->ejected_until_ms) : 0;
	out->outstanding = b->outstanding;
	out->consecutive_failures = atomic_load(&b->si->consecutive_failures);
	out->health_down = backend_health_down(b);
	out->idle_pooled = b->n_idle;
	out->resolved = shared_instance_addr_gen(b->si) != 0;
	return true;
}

void proxy_free(struct proxy *p)
{
	struct client *c;

	if (p == NULL)
		return;
	p->stopping = true;
	proxy_listeners_free(p);
	pp_conn_close_all(p);
	while ((c = TAILQ_FIRST(&p->clients)) != NULL)
		client_close(c);   /* ends its request in flight too */
	backend_map_clear(&p->map);
	if (p->table)
		route_table_unref(p->table);
	reaper_cb(-1, 0, p);
	/* Every backend and load is released: the shared state may go. */
	proxy_detach_shared(p);
	if (p->wake_ev)
		event_free(p->wake_ev);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	request_pool_clear(p);
	h2_stream_pool_trim(p, SIZE_MAX);
	proxy_mem_free(p);
	if (p->scratch)
		evbuffer_free(p->scratch);
	hbuf_free(&p->resp_head);
	free(p->upgrade_protocols);
	conn_flushq_free(&p->flushq);
	h2_proxy_free(p);
	if (p->reaper)
		event_free(p->reaper);
	free(p);
}
