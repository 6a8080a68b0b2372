/*
 * The PROXY protocol on the listeners that ask for it ("ADDR:PORT,proxy"):
 * an L4 load balancer in front of the router opens each connection with
 * a header naming the client, and that client is the one the router
 * forwards (X-Forwarded-For), logs and limits.
 *
 * A connection accepted there is a struct pp_conn (stream.h) until its
 * header is whole: no bufferevent, no client yet. Each time the socket is
 * readable we peek at what it holds and let proxyproto_parse judge the
 * header so far; then we take from the socket only bytes that belong to
 * the header: all we peeked while the parser wants more (each is part of
 * the header, or the parse would have failed), exactly the rest once it is
 * whole. What follows stays in the socket for the connection made next,
 * so on a TLS listener its SSL (proxy-tls.c) reads the ClientHello itself.
 * A missing, malformed or late (head_timeout_ms from the accept) header
 * closes the connection, counted for /metrics and logged at debug level.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "node/stream.h"

/* "ip:port" or "[ip6]:port", for the log. */
static void pp_addr_text(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		evutil_inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(out, outlen, "[%s]:%u", ip, (unsigned)ntohs(sin6->sin6_port));
	} else {
		snprintf(out, outlen, "unknown");
	}
}

/*
 * Unlinks and frees a connection, closing its socket unless a client took
 * it over. Freed at once, even from its own callback: nothing else points
 * at it, and its one event is not persistent, so libevent does not touch
 * the event again once that callback returns.
 */
static void pp_conn_free(struct pp_conn *pc, bool close_fd)
{
	struct proxy *p = pc->p;

	TAILQ_REMOVE(&p->pp_conns, pc, link);
	p->n_pp_conns--;
	if (pc->ev)
		event_free(pc->ev);
	if (close_fd) {
		if (pc->ssl)
			SSL_free(pc->ssl);
		evutil_closesocket(pc->fd);
	}
	pc->magic = 0;
	free(pc);
}

/* Waits for more bytes, until what is left of the deadline. */
static bool pp_arm(struct pp_conn *pc)
{
	uint64_t now = clock_now_ms();
	uint64_t left = pc->deadline_ms > now ? pc->deadline_ms - now : 0;
	struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};

	return event_add(pc->ev, &tv) == 0;
}

static void pp_reject(struct pp_conn *pc, uint64_t *counter, const char *why)
{
	struct proxy *p = pc->p;
	char peer[INET6_ADDRSTRLEN + 8];

	(*counter)++;
	pp_addr_text(&pc->peer, peer, sizeof(peer));
	log_debug("%s: PROXY protocol header: %s; closing", peer, why);
	pp_conn_free(pc, true);
	proxy_accept_recheck(p);
}

/* The header is whole and taken: the connection becomes a client. */
static void pp_done(struct pp_conn *pc, const struct proxyproto_result *res)
{
	struct proxy *p = pc->p;
	struct sockaddr_storage peer = pc->peer;
	evutil_socket_t fd = pc->fd;
	SSL *ssl = pc->ssl;
	unsigned short local_port = pc->local_port;
	char from[INET6_ADDRSTRLEN + 8];
	struct client *c;

	if (res->has_addr) {
		/* The port the client connected to is the balancer's. */
		local_port = res->dst.ss_family == AF_INET
				     ? ntohs(((const struct sockaddr_in *)&res->dst)->sin_port)
				     : ntohs(((const struct sockaddr_in6 *)&res->dst)->sin6_port);
	}
	p->pp_count.headers++;
	pp_conn_free(pc, false);
	c = client_start(p, fd, res->has_addr ? (const struct sockaddr *)&res->src
					      : (const struct sockaddr *)&peer,
			 local_port, ssl);
	if (c != NULL) {
		pp_addr_text(&peer, from, sizeof(from));
		clog_debug(c, "PROXY v%d header from %s%s", res->version, from,
			   res->has_addr ? "" : " names no client: the socket's address stands");
	}
	proxy_accept_recheck(p);
}

static void pp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pp_conn *pc = arg;
	struct proxy *p;
	struct proxyproto_result res;
	enum proxyproto_status st;
	ssize_t got;
	size_t take;

	CHECK_MAGIC(pc, PP_CONN_MAGIC);
	p = pc->p;
	if (what & EV_TIMEOUT) {
		pp_reject(pc, &p->pp_count.timeout, "not whole within head-timeout-ms");
		return;
	}
	if (pc->have >= sizeof(pc->buf)) {   /* the parser refuses this first */
		pp_reject(pc, &p->pp_count.malformed, "too long");
		return;
	}
	got = recv(fd, pc->buf + pc->have, sizeof(pc->buf) - pc->have, MSG_PEEK);
	if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		if (!pp_arm(pc))
			pp_reject(pc, &p->pp_count.closed, "cannot wait for it (event_add failed)");
		return;
	}
	if (got <= 0) {
		pp_reject(pc, &p->pp_count.closed,
			  got == 0 ? "connection closed before its end" : strerror(errno));
		return;
	}
	st = proxyproto_parse(pc->buf, pc->have + (size_t)got, &res);
	if (st == PROXYPROTO_ERROR) {
		pp_reject(pc, &p->pp_count.malformed, res.why);
		return;
	}
	if (st == PROXYPROTO_DONE && res.len <= pc->have) {
		/* Bytes already taken were a prefix the parser wanted more of. */
		pp_reject(pc, &p->pp_count.malformed, "header ended inside bytes already read");
		return;
	}
	take = st == PROXYPROTO_DONE ? res.len - pc->have : (size_t)got;
	/* Peeked, so they are there: a short read means a broken socket. */
	if (recv(fd, pc->buf + pc->have, take, 0) != (ssize_t)take) {
		pp_reject(pc, &p->pp_count.closed, "socket failed while reading it");
		return;
	}
	pc->have += take;
	if (st == PROXYPROTO_DONE) {
		pp_done(pc, &res);
		return;
	}
	if (!pp_arm(pc))
		pp_reject(pc, &p->pp_count.closed, "cannot wait for it (event_add failed)");
}

void pp_conn_start(struct proxy *p, evutil_socket_t fd, const struct sockaddr *sa, int salen,
		   unsigned short local_port, SSL *ssl)
{
	struct pp_conn *pc = calloc(1, sizeof(*pc));

	if (pc == NULL)
		goto failed;
	pc->magic = PP_CONN_MAGIC;
	pc->p = p;
	pc->fd = fd;
	pc->ssl = ssl;
	pc->local_port = local_port;
	if (salen > 0)
		memcpy(&pc->peer, sa, (size_t)salen < sizeof(pc->peer) ? (size_t)salen : sizeof(pc->peer));
	pc->accepted_ms = clock_now_ms();
	pc->deadline_ms = pc->accepted_ms + p->cfg.head_timeout_ms;
	pc->ev = event_new(p->base, fd, EV_READ, pp_read_cb, pc);
	if (pc->ev == NULL)
		goto failed;
	TAILQ_INSERT_TAIL(&p->pp_conns, pc, link);
	p->n_pp_conns++;
	if (!pp_arm(pc)) {
		log_warn("PROXY protocol: cannot wait for a header (event_add failed); closing");
		pp_conn_free(pc, true);
	}
	return;
failed:
	log_warn("PROXY protocol: out of memory for a new connection; closing it");
	free(pc);
	if (ssl)
		SSL_free(ssl);
	evutil_closesocket(fd);
}

void pp_conn_close_all(struct proxy *p)
{
	struct pp_conn *pc;

	while ((pc = TAILQ_FIRST(&p->pp_conns)) != NULL)
		pp_conn_free(pc, true);
}

size_t pp_conn_drain(struct proxy *p, uint64_t now_ms, unsigned grace_ms)
{
	struct pp_conn *pc, *next;
	size_t n = 0;
	char b;

	/* As for a client between two requests (proxy-drain.c): one that
	 * sent part of its header, or has bytes waiting, is on its way. */
	for (pc = TAILQ_FIRST(&p->pp_conns); pc; pc = next) {
		next = TAILQ_NEXT(pc, link);
		if (pc->have == 0 && now_ms - pc->accepted_ms >= grace_ms &&
		    recv(pc->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
			pp_conn_free(pc, true);
			continue;
		}
		n++;
	}
	return n;
}

void proxy_pp_counters(const struct proxy *p, struct proxy_pp_counters *out)
{
	*out = p->pp_count;
}
