/*
 * TLS client connections on struct conn_io: the SSL object is driven here,
 * on the socket, the way proxy-io.c drives a plain one, instead of by an
 * OpenSSL bufferevent.
 *
 *   socket <--SSL_read / SSL_write--> SSL <---> conn_io ---> bufferevent
 *   (rev: EV_READ, persistent;                 (no socket: input and
 *    wev: EV_WRITE, made when first full)       output buffers, callbacks,
 *                                                write watermark)
 *
 * Why: the OpenSSL bufferevent armed and disarmed EV_WRITE for every
 * answer (about 2.25 epoll_ctl per keep-alive request), wrote a head and
 * its body as two records (two writes, two MACs), read a record in two
 * recv() (its 5-byte header, then the rest), and never sent close_notify,
 * so OpenSSL dropped every session from the cache and TLS 1.2 session IDs
 * never resumed. Here:
 *
 * - The bufferevent is made without a socket: it holds the buffers the
 *   layers above fill and drain, calls nothing on its own (its events stay
 *   disabled) and can write nothing anywhere, so no plaintext reaches the
 *   socket through it. Its callbacks and write watermark are called by us
 *   as proxy-io.c calls them for a plain connection.
 * - The handshake runs on readiness (SSL_do_handshake) under its own
 *   deadline (tls_handshake_timeout_ms, from the accept); failures are
 *   counted by reason and logged at debug level.
 * - Reads: read-ahead on, so one recv() takes whole records (the SSL's
 *   buffer, 16 KB and more); SSL_read goes on while the SSL still holds
 *   bytes, since epoll will not report them.
 * - Writes: at the end of the loop's turn (struct conn_flushq), up to 16 KB
 *   of the output pulled up into one block and given to one SSL_write: a
 *   small answer, head and body, is one record and one write(). Only when
 *   the socket is full is wev armed (with the write timeout); partial and
 *   moving-buffer modes let a repeat carry the same bytes from a buffer
 *   that grew.
 * - SSL_MODE_RELEASE_BUFFERS (set on the listener's context): an idle
 *   connection holds no record buffers. An idle HTTP/2 one is parked
 *   (proxy-mem.c): its bufferevent is freed, and made again by tls_input
 *   (io->unpark) before anything is read.
 * - Closing sends close_notify (conn_tls_close_notify) when the stream is
 *   whole, without waiting for anything: if the socket does not take it,
 *   there is none. A cut response gets none (conn_tls_cut), so the client
 *   sees an unclean end instead of a short body that looks complete.
 * - A tunnel (WebSocket) hands the SSL to an OpenSSL bufferevent
 *   (conn_tls_to_bev), as plain tunnels hand reading to theirs; the SSL
 *   and the socket stay ours, freed after that bufferevent.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "node/conn-io.h"
#include "node/proxy.h"

/* One record's worth of plaintext: the most an SSL_write turns into one
 * record, and the most one SSL_read returns. */
#define TLS_RECORD_MAX (16u * 1024)
/* Plaintext read in one callback at most, before yielding to the loop. */
#define TLS_READ_TURN_MAX (64u * 1024)

const char *const proxy_tls_fail_names[TLS_FAIL_N] = {
	[TLS_FAIL_TIMEOUT] = "timeout",
	[TLS_FAIL_EOF] = "eof",
	[TLS_FAIL_NO_SHARED_CIPHER] = "no_shared_cipher",
	[TLS_FAIL_UNSUPPORTED_PROTOCOL] = "unsupported_protocol",
	[TLS_FAIL_UNRECOGNIZED_NAME] = "unrecognized_name",
	[TLS_FAIL_HTTP] = "http_on_https",
	[TLS_FAIL_OTHER] = "other",
};

static void tls_read_cb(evutil_socket_t fd, short what, void *arg);
static void tls_write_cb(evutil_socket_t fd, short what, void *arg);

bool conn_io_open_tls(struct conn_io *io, struct event_base *base, struct conn_flushq *fq,
		      struct bufferevent *bev, evutil_socket_t fd, SSL *ssl,
		      bufferevent_data_cb readcb, bufferevent_event_cb eventcb, void *arg,
		      unsigned handshake_ms, struct proxy_tls_counters *n, const char *name)
{
	memset(io, 0, sizeof(*io));
	io->base = base;
	io->fq = fq;
	io->bev = bev;
	io->readcb = readcb;
	io->eventcb = eventcb;
	io->arg = arg;
	io->fd = fd;
	io->tlsn = n;
	io->name = name;
	io->hs_deadline_ms = clock_now_ms() + (handshake_ms ? handshake_ms : 10000);
	if (SSL_set_fd(ssl, (int)fd) != 1)
		goto failed;
	SSL_set_accept_state(ssl);
	SSL_set_read_ahead(ssl, 1);
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			  SSL_MODE_RELEASE_BUFFERS);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A client that closes without close_notify has sent all it will,
	 * as over plain TCP: its EOF reads as one (what it sent in full is
	 * still answered), not as an error that forbids writing. */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	/* The read event in the connection's own memory, as on a plain
	 * one: an allocation less for every idle connection. */
	if (event_assign(&io->rev_mem, base, fd, EV_READ | EV_PERSIST, tls_read_cb, io) != 0)
		goto failed;
	io->rev = &io->rev_mem;
	/* The write event is made the first time the socket is full
	 * (tls_arm_write): most connections, idle ones too, never need it. */
	io->ssl = ssl;
	return true;
failed:
	ERR_clear_error();
	io->rev = io->wev = NULL;
	return false;
}

void conn_tls_handshake_tv(const struct conn_io *io, struct timeval *tv)
{
	uint64_t now = clock_now_ms();
	uint64_t left = io->hs_deadline_ms > now ? io->hs_deadline_ms - now : 0;

	tv->tv_sec = (time_t)(left / 1000);
	tv->tv_usec = (suseconds_t)(left % 1000) * 1000;
}

bool conn_tls_pending(const struct conn_io *io)
{
	return io->ssl != NULL && io->hs_done &&
	       (io->tls_dead || SSL_has_pending(io->ssl) ||
		(SSL_get_shutdown(io->ssl) & SSL_RECEIVED_SHUTDOWN));
}

/* OpenSSL's reason for the last failure, for a log line. */
static const char *tls_why(unsigned long e, int sslerr, int err, char *buf, size_t len)
{
	if (e != 0)
		ERR_error_string_n(e, buf, len);
	else if (sslerr == SSL_ERROR_SYSCALL && err != 0)
		snprintf(buf, len, "%s", strerror(err));
	else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
		snprintf(buf, len, "the peer closed");
	else
		snprintf(buf, len, "SSL error %d", sslerr);
	return buf;
}

static enum tls_fail tls_fail_reason(unsigned long e, int sslerr)
{
	if (e == 0 || ERR_GET_LIB(e) != ERR_LIB_SSL)
		return sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN ? TLS_FAIL_EOF
										      : TLS_FAIL_OTHER;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_NO_SHARED_CIPHER:
		return TLS_FAIL_NO_SHARED_CIPHER;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
		return TLS_FAIL_UNSUPPORTED_PROTOCOL;
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
		return TLS_FAIL_HTTP;
	/* The one callback of ours that can refuse a handshake is the
	 * choice of a certificate by its server name. */
	case SSL_R_CALLBACK_FAILED:
		return TLS_FAIL_UNRECOGNIZED_NAME;
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return TLS_FAIL_EOF;
	default:
		return TLS_FAIL_OTHER;
	}
}

static void tls_handshake_failed(struct conn_io *io, enum tls_fail why, const char *detail)
{
	io->tls_dead = true;
	io->tlsn->failures[why]++;
	log_debug("%s: TLS handshake failed (%s): %s", io->name, proxy_tls_fail_names[why], detail);
}

static void tls_arm_write(struct conn_io *io)
{
	unsigned ms = io->hs_done ? io->wtimeout_ms : 0;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (io->wev == NULL) {
		io->wev = event_new(io->base, io->fd, EV_WRITE, tls_write_cb, io);
		if (io->wev == NULL) {
			log_error("%s: out of memory for a write event: closing the connection",
				  io->name);
			conn_fail_later(io);
			return;
		}
	}
	io->wblocked = true;
	/* The handshake is bounded by the read side's deadline. */
	if (event_add(io->wev, ms ? &tv : NULL) != 0) {
		log_error("%s: cannot arm writes (%s): closing the connection", io->name,
			  strerror(errno));
		conn_fail_later(io);
	}
}

enum hs_result { HS_DONE, HS_WAIT, HS_FAILED };

static enum hs_result tls_handshake(struct conn_io *io)
{
	int r = SSL_do_handshake(io->ssl), e, err = errno;
	unsigned long le;
	char buf[200];

	if (r == 1) {
		io->hs_done = true;
		switch (SSL_version(io->ssl)) {
		case TLS1_3_VERSION:
			io->tlsn->handshakes_tls13++;
			break;
		case TLS1_2_VERSION:
			io->tlsn->handshakes_tls12++;
			break;
		default:
			io->tlsn->handshakes_other++;
			break;
		}
		if (SSL_session_reused(io->ssl))
			io->tlsn->resumed++;
		/* From now on the read timeout is the connection's own. */
		if (io->reading)
			conn_read_arm(io);
		return HS_DONE;
	}
	e = SSL_get_error(io->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		/* Bytes came: what is left of the deadline, not a new one. */
		if (io->reading)
			conn_read_arm(io);
		return HS_WAIT;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		io->rwants_write = true;
		if (!io->wblocked)
			tls_arm_write(io);
		return HS_WAIT;
	}
	le = ERR_peek_last_error();
	tls_handshake_failed(io, tls_fail_reason(le, e), tls_why(le, e, err, buf, sizeof(buf)));
	ERR_clear_error();
	return HS_FAILED;
}

/* Readiness to read (or to write, for a read that waited on it): the
 * handshake, then SSL_read into the input until the SSL holds nothing
 * more, then the read callback, then an EOF or error seen meanwhile. */
static void tls_input(struct conn_io *io)
{
	static _Thread_local unsigned char scratch[TLS_RECORD_MAX];
	struct evbuffer *in;
	size_t got = 0;
	short ev = 0;
	int err = 0;

	/* A parked connection (an idle HTTP/2 one, proxy-mem.c) gets its
	 * bufferevent back before anything is read into it. */
	if (io->bev == NULL && (io->unpark == NULL || !io->unpark(io->arg)))
		return;   /* closed */
	in = bufferevent_get_input(io->bev);
	if (!io->hs_done) {
		switch (tls_handshake(io)) {
		case HS_WAIT:
			return;
		case HS_FAILED:
			conn_read_off(io);
			io->eventcb(io->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, io->arg);
			return;
		case HS_DONE:
			break;
		}
	}
	if (!io->reading || io->halted)
		return;
	/* The bufferevent keeps its input's end frozen outside its own read
	 * callback; we read the way that callback does. */
	evbuffer_unfreeze(in, 0);
	while (got < TLS_READ_TURN_MAX) {
		int n = SSL_read(io->ssl, scratch, (int)sizeof(scratch)), e;

		if (n > 0) {
			if (evbuffer_add(in, scratch, (size_t)n) != 0) {
				ev = BEV_EVENT_ERROR;
				err = ENOMEM;
				break;
			}
			got += (size_t)n;
			if (SSL_has_pending(io->ssl))
				continue;
			break;
		}
		err = errno;
		e = SSL_get_error(io->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			break;
		if (e == SSL_ERROR_WANT_WRITE) {
			io->rwants_write = true;
			if (!io->wblocked)
				tls_arm_write(io);
			break;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			ev = BEV_EVENT_EOF;   /* close_notify, or a plain EOF */
			break;
		}
		if (e == SSL_ERROR_SYSCALL && err == 0) {
			ev = BEV_EVENT_EOF;
			io->tls_dead = true;
			break;
		}
		{
			unsigned long le = ERR_peek_last_error();
			char buf[200];

			log_debug("%s: TLS read failed: %s", io->name, tls_why(le, e, err, buf, sizeof(buf)));
		}
		io->tls_dead = true;
		ev = BEV_EVENT_ERROR;
		if (err == 0)
			err = EPROTO;
		break;
	}
	ERR_clear_error();
	evbuffer_freeze(in, 0);
	if (got > 0) {
		io->readcb(io->bev, io->arg);
		/* Paused or closed: conn_read_on sees what the SSL still
		 * holds (conn_tls_pending) when reading resumes. */
		if (!io->reading || io->halted)
			return;
		if (ev == 0 && SSL_has_pending(io->ssl))
			event_active(io->rev, EV_READ, 0);
	}
	if (ev == 0)
		return;
	conn_read_off(io);
	io->eof = ev == BEV_EVENT_EOF;
	errno = err;
	io->eventcb(io->bev, BEV_EVENT_READING | ev, io->arg);
}

static void tls_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_io *io = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		conn_read_off(io);   /* as a bufferevent does after a timeout */
		if (!io->hs_done) {
			tls_handshake_failed(io, TLS_FAIL_TIMEOUT, "not done within tls-handshake-timeout-ms");
			io->eventcb(io->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, io->arg);
			return;
		}
		io->eventcb(io->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, io->arg);
		return;
	}
	tls_input(io);
}

static void tls_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_io *io = arg;

	(void)fd;
	io->wblocked = false;
	if (io->halted)
		return;
	if (what & EV_TIMEOUT) {
		io->eventcb(io->bev, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT, io->arg);
		return;
	}
	if (io->rwants_write) {
		io->rwants_write = false;
		if (io->reading || !io->hs_done)
			tls_input(io);
		if (io->halted)
			return;
	}
	if (io->hs_done && !io->wblocked)
		conn_tls_flush(io);
}

bool conn_tls_flush(struct conn_io *io)
{
	struct evbuffer *out = bufferevent_get_output(io->bev);
	bool wrote = false;
	size_t len;

	if (!io->hs_done || io->tls_dead || io->wblocked || evbuffer_get_length(out) == 0)
		return false;
	/* A socket bufferevent keeps its output's start frozen outside its
	 * own write callback; we write the way that callback does. */
	evbuffer_unfreeze(out, 1);
	while ((len = evbuffer_get_length(out)) > 0) {
		/* The output only grows until a write succeeds, so a repeat
		 * after WANT_WRITE is at least as long as the first try and
		 * begins with the same bytes, as OpenSSL requires. */
		size_t n = len < TLS_RECORD_MAX ? len : TLS_RECORD_MAX;
		unsigned char *data = evbuffer_pullup(out, (ev_ssize_t)n);
		int r, e, err;

		if (data == NULL) {
			log_error("%s: out of memory writing: closing the connection", io->name);
			conn_fail_later(io);
			break;
		}
		r = SSL_write(io->ssl, data, (int)n);
		if (r > 0) {
			evbuffer_drain(out, (size_t)r);
			io->wlen = 0;
			wrote = true;
			continue;
		}
		err = errno;
		e = SSL_get_error(io->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE) {
			io->wlen = n;
			tls_arm_write(io);
			break;
		}
		{
			unsigned long le = ERR_peek_last_error();
			char buf[200];

			/* Renegotiation is off: a write never waits for a read. */
			log_debug("%s: TLS write failed: %s", io->name,
				  tls_why(le, e, err, buf, sizeof(buf)));
		}
		ERR_clear_error();
		io->tls_dead = true;
		conn_fail_later(io);
		break;
	}
	evbuffer_freeze(out, 1);
	/* As after the bufferevent's own write: its write callback runs
	 * when the output is down to the low watermark. */
	if (wrote)
		bufferevent_trigger(io->bev, EV_WRITE, 0);
	return wrote;
}

void conn_tls_cut(struct conn_io *io)
{
	io->cut = true;
}

void conn_tls_close_notify(struct conn_io *io)
{
	int r;

	if (io->ssl == NULL || !io->hs_done || io->tls_dead || io->notified || io->cut)
		return;
	/* Bytes still queued would never arrive: their absence must not
	 * look like the end of the stream. */
	if (io->wlen > 0 ||
	    (io->bev != NULL && evbuffer_get_length(bufferevent_get_output(io->bev)) > 0))
		return;
	io->notified = true;
	r = SSL_shutdown(io->ssl);
	if (r >= 0)
		io->tlsn->close_notify_sent++;
	else
		log_debug("%s: close_notify not sent (the socket is full or failed)", io->name);
	ERR_clear_error();
}

bool conn_tls_to_bev(struct conn_io *io)
{
	static _Thread_local unsigned char scratch[TLS_RECORD_MAX];
	struct evbuffer *in = bufferevent_get_input(io->bev);
	struct evbuffer *out = bufferevent_get_output(io->bev);
	struct bufferevent *bev;
	int n;

	if (io->bev_reads)
		return true;
	/* What the SSL holds now would wait for the socket to become
	 * readable again under the bufferevent: take it first. */
	while (SSL_has_pending(io->ssl) &&
	       (n = SSL_read(io->ssl, scratch, (int)sizeof(scratch))) > 0)
		if (evbuffer_add(in, scratch, (size_t)n) != 0)
			return false;
	ERR_clear_error();
	SSL_set_read_ahead(io->ssl, 0);
	/* Without BEV_OPT_CLOSE_ON_FREE: the SSL and the socket stay ours
	 * (conn_tls_free), whichever bufferevent holds them. */
	bev = bufferevent_openssl_socket_new(io->base, io->fd, io->ssl, BUFFEREVENT_SSL_OPEN, 0);
	if (bev == NULL)
		return false;
	evbuffer_unfreeze(in, 0);
	evbuffer_unfreeze(out, 1);
	if (evbuffer_add_buffer(bufferevent_get_input(bev), in) != 0 ||
	    evbuffer_add_buffer(bufferevent_get_output(bev), out) != 0) {
		/* Put back what moved (an addition to an empty buffer). */
		evbuffer_prepend_buffer(in, bufferevent_get_input(bev));
		evbuffer_freeze(in, 0);
		evbuffer_freeze(out, 1);
		bufferevent_free(bev);
		return false;
	}
	if (io->wblocked)
		event_del(io->wev);
	io->wblocked = io->rwants_write = false;
	event_del(io->rev);   /* io->rev_mem */
	io->rev = NULL;
	io->reading = false;
	bufferevent_free(io->bev);
	io->bev = bev;
	io->bev_reads = true;   /* the bufferevent does the I/O now */
	return true;
}

void conn_tls_free(struct conn_io *io)
{
	if (io->wev) {
		event_free(io->wev);
		io->wev = NULL;
	}
	if (io->ssl) {
		SSL_free(io->ssl);
		evutil_closesocket(io->fd);
	}
	io->ssl = NULL;
}
