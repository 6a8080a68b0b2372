/*
 * Listeners and accepting: plain and TLS listening sockets (each may
 * expect a PROXY protocol header first), the cap on client connections
 * (one budget for the process, node/shared.h: accepting pauses when it
 * is spent and resumes when a connection closes on any worker), a
 * backoff when descriptors run out, and closing the listeners for a drain
 * without resetting connections the kernel already completed. What is
 * accepted goes to client_start (proxy.c) or, behind a PROXY header, to
 * pp_conn_start (proxy-pp.c).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "node/stream.h"
#include "node/proxy.h"
#include "node/shared.h"
#include "node/tls.h"

/* At most this many connections wait, accepted, for the budget: more
 * would mean the other workers do not pause, and are closed. */
#define DEFERRED_MAX 64

struct deferred_conn {
	evutil_socket_t fd;
	struct listener *li;
	struct sockaddr_storage sa;
	int salen;
};

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg);
static void deferred_start(struct proxy *p);

static bool budget_free(struct proxy *p)
{
	return shared_conn_count(p->shared) < p->cfg.max_client_connections;
}

static void accept_resume(struct proxy *p)
{
	size_t i;

	if (!p->accept_paused || p->stopping)
		return;
	p->accept_paused = false;
	shared_conn_paused(p->shared, p->shared_slot, false);
	for (i = 0; i < p->n_listeners; i++)
		evconnlistener_enable(p->listeners[i]->l);
}

static void accept_pause(struct proxy *p, unsigned retry_ms)
{
	size_t i;

	if (!p->accept_paused)
		for (i = 0; i < p->n_listeners; i++)
			evconnlistener_disable(p->listeners[i]->l);
	p->accept_paused = true;
	/* The budget is the process's: a close on any worker wakes this one
	 * (SHARED_WAKE_ACCEPT). Marked before the count is read again, so a
	 * close in between either sees the mark or is seen here. */
	shared_conn_paused(p->shared, p->shared_slot, true);
	if (retry_ms == 0 && budget_free(p)) {
		deferred_start(p);
		accept_resume(p);
		return;
	}
	if (retry_ms) {
		struct timeval tv = {retry_ms / 1000, (retry_ms % 1000) * 1000};

		/* Without the timer, accepting resumes when a client closes. */
		if (evtimer_add(p->accept_timer, &tv) != 0)
			log_error("cannot arm the accept retry timer");
	}
}

static void accept_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;

	deferred_start(p);
	if (budget_free(p))
		accept_resume(p);
	else
		accept_pause(p, 100);
}

/* Connections held for the budget start, oldest first, while it has
 * room (each takes its unit in accept_cb, or waits again). */
static void deferred_start(struct proxy *p)
{
	while (p->n_deferred > 0 && budget_free(p)) {
		struct deferred_conn d = p->deferred[0];

		memmove(p->deferred, p->deferred + 1, --p->n_deferred * sizeof(*p->deferred));
		accept_cb(d.li->l, d.fd, (struct sockaddr *)&d.sa, d.salen, d.li);
	}
}

/* Holds a connection accepted past the budget; false when too many are. */
static bool deferred_add(struct proxy *p, struct listener *li, evutil_socket_t fd,
			 const struct sockaddr *sa, int salen)
{
	struct deferred_conn *d;

	if (p->deferred == NULL && (p->deferred = calloc(DEFERRED_MAX, sizeof(*d))) == NULL)
		return false;
	if (p->n_deferred >= DEFERRED_MAX || salen < 0 || (size_t)salen > sizeof(d->sa))
		return false;
	log_debug("port %u: a connection accepted past max-client-connections waits for room",
		  (unsigned)li->port);
	d = &p->deferred[p->n_deferred++];
	d->fd = fd;
	d->li = li;
	memcpy(&d->sa, sa, (size_t)salen);
	d->salen = salen;
	return true;
}

size_t proxy_deferred_drain(struct proxy *p)
{
	deferred_start(p);
	return p->n_deferred;
}

/* Woken by the shared budget (SHARED_WAKE_ACCEPT) or after a close here:
 * resume when it has room, pause when another worker spent it. */
void proxy_accept_recheck(struct proxy *p)
{
	deferred_start(p);
	if (p->accept_paused && budget_free(p))
		accept_resume(p);
	else if (!p->accept_paused && !p->stopping && !budget_free(p))
		accept_pause(p, 0);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct listener *li = arg;
	struct proxy *p = li->p;
	SSL *ssl = NULL;

	/* One budget for the process: the connection holds its unit until
	 * it closes (client_close, or a PROXY header never read). */
	if (!shared_conn_take(p->shared, p->cfg.max_client_connections)) {
		if (!deferred_add(p, li, fd, sa, salen)) {
			log_warn("port %u: a connection past max-client-connections %u closed: more "
				 "than %d wait for the budget", (unsigned)li->port,
				 p->cfg.max_client_connections, DEFERRED_MAX);
			evutil_closesocket(fd);
		}
		accept_pause(p, 0);
		return;
	}
	if (li->tls && (ssl = tls_store_new_ssl(li->tls)) == NULL) {
		evutil_closesocket(fd);
		shared_conn_put(p->shared);
		return;
	}
	if (li->proxy_header)
		pp_conn_start(p, fd, sa, salen, li->port, ssl);
	else
		client_start(p, fd, sa, li->port, ssl);
	if (!budget_free(p) && !p->accept_paused) {
		accept_pause(p, 0);
		shared_conn_full(p->shared, p->shared_slot);
	}
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct listener *li = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		struct proxy *p = li->p;
		uint64_t now = clock_now_ms();

		/* Retried every 100 ms while it lasts: one line per 10 s for
		 * the process, whichever worker meets it. */
		if (shared_accept_warn_due(p->shared, now, ACCEPT_WARN_EVERY_MS)) {
			char more[64] = "";

			if (p->accept_unwarned)
				snprintf(more, sizeof(more), " (%u more times since the last warning)",
					 p->accept_unwarned);
			log_warn("accept on port %u: %s; pausing accepts for 100 ms%s", (unsigned)li->port,
				 evutil_socket_error_to_string(err), more);
			p->accept_unwarned = 0;
		} else {
			p->accept_unwarned++;
			log_debug("accept on port %u: %s; pausing accepts for 100 ms again (warned already)",
				  (unsigned)li->port, evutil_socket_error_to_string(err));
		}
		accept_pause(p, 100);
		return;
	}
	log_warn("accept on port %u: %s", (unsigned)li->port, evutil_socket_error_to_string(err));
}

static bool listen_on(struct proxy *p, const char *addr_port, struct tls_store *tls, bool proxy_header,
		      char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct listener **arr, *ls;
	unsigned short port;

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr_port, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(why, whylen, "%s: not ADDR:PORT", addr_port);
		return false;
	}
	port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					: ntohs(((struct sockaddr_in *)&ss)->sin_port);
	arr = realloc(p->listeners, (p->n_listeners + 1) * sizeof(*arr));
	ls = calloc(1, sizeof(*ls));
	if (arr == NULL || ls == NULL) {
		if (arr)
			p->listeners = arr;
		free(ls);
		snprintf(why, whylen, "out of memory");
		return false;
	}
	p->listeners = arr;
	ls->p = p;
	ls->port = port;
	ls->tls = tls;
	ls->proxy_header = proxy_header;
	ls->l = evconnlistener_new_bind(p->base, accept_cb, ls,
					LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
						LEV_OPT_CLOSE_ON_EXEC,
					1024, (struct sockaddr *)&ss, sslen);
	if (ls->l == NULL) {
		snprintf(why, whylen, "%s: %s", addr_port,
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		free(ls);
		return false;
	}
	evconnlistener_set_error_cb(ls->l, accept_error_cb);
	p->listeners[p->n_listeners++] = ls;
	if (p->accept_paused || p->stopping)
		evconnlistener_disable(ls->l);
	if (tls && p->tls_port == 0)
		p->tls_port = port;
	log_info("listening on %s%s%s", addr_port, tls ? " (TLS)" : "",
		 proxy_header ? " (PROXY protocol)" : "");
	return true;
}

/* Every worker listens on its own socket with SO_REUSEPORT, which would
 * also let a second process (another zkrouterd of the same user) bind the
 * port and take part of its connections without an error. A socket
 * without SO_REUSEPORT cannot bind a port held by anyone, so one bound
 * (and closed at once) before the workers' sockets proves the port free. */
bool proxy_listen_probe(const char *addr_port, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss), one = 1;
	evutil_socket_t fd;
	bool ok;

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr_port, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(why, whylen, "%s: not ADDR:PORT", addr_port);
		return false;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", addr_port, strerror(errno));
		return false;
	}
	/* SO_REUSEADDR as the listeners have it: a port whose last
	 * connections are in TIME_WAIT is free. */
	ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	     bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) == 0;
	if (!ok)
		snprintf(why, whylen, "%s: %s", addr_port, strerror(errno));
	evutil_closesocket(fd);
	return ok;
}

bool proxy_listen(struct proxy *p, const char *addr_port, bool proxy_header, char *why,
		  size_t whylen)
{
	return listen_on(p, addr_port, NULL, proxy_header, why, whylen);
}

static void listener_free(struct listener *ls)
{
	if (ls->l)
		evconnlistener_free(ls->l);
	free(ls);
}

bool proxy_listen_tls(struct proxy *p, const char *addr_port, bool proxy_header,
		      struct tls_store *store, char *why, size_t whylen)
{
	return listen_on(p, addr_port, store, proxy_header, why, whylen);
}

/* The connections the kernel completed that we did not accept yet would
 * be reset when the listening socket closes, after their clients may
 * have sent a request: they are accepted and served like any other. Only
 * a handshake that completes between the last accept() and the close is
 * reset (a window of microseconds). */
static void listener_take_queued(struct listener *ls)
{
	evutil_socket_t lfd = evconnlistener_get_fd(ls->l), fd;
	struct sockaddr_storage ss;
	socklen_t sl;

	if (evutil_make_socket_nonblocking(lfd) != 0)
		return;
	while (budget_free(ls->p)) {
		sl = sizeof(ss);
		fd = accept(lfd, (struct sockaddr *)&ss, &sl);
		if (fd < 0)
			return;   /* EAGAIN: none left; an error: none we can take */
		if (evutil_make_socket_nonblocking(fd) != 0 || evutil_make_socket_closeonexec(fd) != 0) {
			evutil_closesocket(fd);
			continue;
		}
		accept_cb(ls->l, fd, (struct sockaddr *)&ss, (int)sl, ls);
	}
}

void proxy_stop_listening(struct proxy *p)
{
	size_t i;

	p->stopping = true;
	/* Every backlog first, then the closes: accepting one may reach
	 * max_client_connections, and accept_pause then disables every
	 * listener, which must all still be there. */
	for (i = 0; i < p->n_listeners; i++)
		listener_take_queued(p->listeners[i]);
	for (i = 0; i < p->n_listeners; i++) {
		listener_free(p->listeners[i]);
		p->listeners[i] = NULL;
	}
	p->n_listeners = 0;
	evtimer_del(p->accept_timer);
	/* Clients between two requests are closed now, and connections
	 * that sent nothing of their PROXY header, like new idle clients;
	 * busy ones after their current response (request_finish sees
	 * `draining`). Connections taken just above are among those kept. */
	(void)proxy_drain_tick(p);
}

bool proxy_accept_init(struct proxy *p)
{
	p->accept_timer = evtimer_new(p->base, accept_timer_cb, p);
	return p->accept_timer != NULL;
}

void proxy_listeners_free(struct proxy *p)
{
	size_t i;

	for (i = 0; i < p->n_listeners; i++)
		listener_free(p->listeners[i]);
	free(p->listeners);
	p->listeners = NULL;
	p->n_listeners = 0;
	if (p->accept_timer)
		event_free(p->accept_timer);
	p->accept_timer = NULL;
	for (i = 0; i < p->n_deferred; i++)
		evutil_closesocket(p->deferred[i].fd);
	free(p->deferred);
	p->deferred = NULL;
	p->n_deferred = 0;
}
