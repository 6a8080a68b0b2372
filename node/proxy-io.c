/*
 * Socket I/O for client and backend connections (struct conn_io in
 * conn-io.h). Bufferevents hold the buffers, connect, and take over when
 * a socket is full; the common case goes around them: a read is one
 * recv() sized by the previous one (no FIONREAD ioctl, no 4 KB cap), a
 * write is one send() at the end of the loop's turn (struct conn_flushq)
 * with no write event armed, and every timeout is a libevent "common
 * timeout". That leaves 4 system calls per proxied keep-alive request,
 * plus a share of epoll_wait. TLS client connections take the same road
 * through proxy-tls.c, which drives their SSL object on the socket.
 */
#include <config.h>

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "node/conn-io.h"

/* Small outputs in several chains (a head and a body) are copied into one
 * so that they go out with a plain send(). */
#define CONN_PULLUP_MAX (8u * 1024)

/* The least time between two yields of the CPU after writing (flushq_cb).
 * wrk -c64 through two backends, all on 2 CPUs, alternated 5 s runs
 * (medians of 10): a yield after every turn that wrote gave 23.0k req/s,
 * p99 5.12 ms; at most every 50 us 24.9-26.1k, p99 4.70-4.91 ms; never,
 * 26.1k with p99 5.64 ms. */
#define CONN_YIELD_EVERY_US 50

/* Writes what `out` holds to `fd` and drains what went: a plain send()
 * when the bytes are contiguous (no iovec for the kernel to import), a
 * writev of the chains otherwise. Returns what the system call returned. */
static ssize_t conn_send(struct evbuffer *out, evutil_socket_t fd)
{
	size_t len = evbuffer_get_length(out);
	size_t first = evbuffer_get_contiguous_space(out);
	ssize_t sent;

	if (first < len && len <= CONN_PULLUP_MAX) {
		if (evbuffer_pullup(out, (ev_ssize_t)len) == NULL)
			return evbuffer_write(out, fd);
		first = len;
	}
	if (first < len)
		return evbuffer_write(out, fd);
	sent = send(fd, evbuffer_pullup(out, (ev_ssize_t)first), first, MSG_NOSIGNAL);
	if (sent > 0)
		evbuffer_drain(out, (size_t)sent);
	return sent;
}

static void conn_arm_failed(struct conn_io *io, const char *what);
static void conn_bev_timeouts(struct conn_io *io);

bool conn_flush_now(struct conn_io *io)
{
	struct bufferevent *bev = io->bev;
	struct evbuffer *out;
	ssize_t sent;

	if (bev == NULL)
		return false;   /* parked: nothing buffered */
	out = bufferevent_get_output(bev);
	if (io->ssl && !io->bev_reads)
		return conn_tls_flush(io);
	if (io->bev_reads || evbuffer_get_length(out) == 0 ||
	    (bufferevent_get_enabled(bev) & EV_WRITE))
		return false;
	/* A socket bufferevent keeps its output's start frozen outside its
	 * own write callback; we write the way that callback does. A hard
	 * error leaves the bytes in place: the write event then meets the
	 * same error and reports it through the event callback. */
	evbuffer_unfreeze(out, 1);
	sent = conn_send(out, bufferevent_getfd(bev));
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0 && bufferevent_enable(bev, EV_WRITE) != 0)
		conn_arm_failed(io, "writes");
	/* As after the bufferevent's own write: its write callback runs
	 * when the output is down to the low watermark. */
	if (sent > 0)
		bufferevent_trigger(bev, EV_WRITE, 0);
	return sent > 0;
}

static void conn_unqueue(struct conn_io *io)
{
	struct conn_flushq *q = io->fq;
	size_t i;

	if (!io->queued)
		return;
	io->queued = false;
	for (i = 0; i < q->n; i++)
		if (q->items[i] == io)
			q->items[i] = NULL;
}

/* Puts io on the queue served at the end of the loop's turn. */
static bool conn_enqueue(struct conn_io *io)
{
	struct conn_flushq *q = io->fq;

	if (io->queued)
		return true;
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64;
		struct conn_io **items = realloc(q->items, cap * sizeof(*items));

		if (items == NULL)
			return false;
		q->items = items;
		q->cap = cap;
	}
	if (q->n == 0)
		event_active(q->ev, EV_WRITE, 0);
	q->items[q->n++] = io;
	io->queued = true;
	return true;
}

void conn_flush(struct conn_io *io)
{
	if (io->queued || io->bev_reads || io->bev == NULL ||
	    evbuffer_get_length(bufferevent_get_output(io->bev)) == 0)
		return;
	if (!conn_enqueue(io))
		conn_flush_now(io);
}

/*
 * Reading or writing could not be armed (event_add or bufferevent_enable
 * failed: epoll or the timer heap out of memory): the connection would
 * wait forever, with neither reads nor timeouts. Its owner hears of it as
 * an error (BEV_EVENT_ERROR), which closes it; from the queue at the end
 * of the turn, not here, since the caller may be in the middle of its own
 * work on the connection.
 */
static void conn_arm_failed(struct conn_io *io, const char *what)
{
	log_error("fd %d: cannot arm %s (%s): closing the connection", (int)io->fd, what,
		  strerror(errno));
	conn_fail_later(io);
}

void conn_fail_later(struct conn_io *io)
{
	io->arm_failed = true;
	if (io->fq == NULL || !conn_enqueue(io))
		log_error("fd %d: cannot queue the close: the connection may hang", (int)io->fd);
}

/* The turn's I/O callbacks have run: write every queued output. A write
 * callback run from here may queue more; they are written too. */
static void flushq_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_flushq *q = arg;
	bool wrote = false;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < q->n; i++) {
		struct conn_io *io = q->items[i];

		if (io == NULL)
			continue;
		io->queued = false;
		q->items[i] = NULL;
		if (io->arm_failed) {
			io->arm_failed = false;
			conn_read_off(io);
			io->eventcb(io->bev, BEV_EVENT_ERROR, io->arg);
			continue;
		}
		if (conn_flush_now(io))
			wrote = true;
	}
	q->n = 0;
	/* The processes these writes woke (backends, or clients, on this
	 * host) are often queued on this CPU, where the kernel puts a task
	 * woken by socket data, behind us: we would keep them waiting as
	 * long as new events keep us busy. Let them run, at most once per
	 * CONN_YIELD_EVERY_US of the loop's time: yielding after every turn
	 * handed the CPU back and forth one request at a time. With nobody
	 * waiting the call returns at once. */
	if (wrote) {
		struct timeval now;
		int64_t us;

		event_base_gettimeofday_cached(q->base, &now);
		us = (int64_t)(now.tv_sec - q->yielded.tv_sec) * 1000000 +
		     (now.tv_usec - q->yielded.tv_usec);
		if (us >= CONN_YIELD_EVERY_US || us < 0) {
			q->yielded = now;
			sched_yield();
		}
	}
}

bool conn_flushq_init(struct conn_flushq *q, struct event_base *base)
{
	memset(q, 0, sizeof(*q));
	q->base = base;
	q->ev = event_new(base, -1, 0, flushq_cb, q);
	return q->ev != NULL;
}

void conn_flushq_free(struct conn_flushq *q)
{
	if (q->ev)
		event_free(q->ev);
	free(q->items);
	memset(q, 0, sizeof(*q));
}

void conn_write_done(struct conn_io *io)
{
	/* Also called after our own writes, with EV_WRITE off: then
	 * there is nothing to disarm (and no event_del to pay). */
	if (!io->bev_reads && io->bev && (bufferevent_get_enabled(io->bev) & EV_WRITE) &&
	    evbuffer_get_length(bufferevent_get_output(io->bev)) == 0)
		bufferevent_disable(io->bev, EV_WRITE);
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_io *io = arg;
	struct evbuffer *in;
	struct evbuffer_iovec v;
	ssize_t got;
	int err;

	/* A timeout needs no buffer: a parked client stays parked. */
	if (!(what & EV_TIMEOUT) && io->bev == NULL && !io->unpark(io->arg))
		return;   /* closed */
	if (what & EV_TIMEOUT) {
		conn_read_off(io);   /* as a bufferevent does after a timeout */
		io->eventcb(io->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, io->arg);
		return;
	}
	/* The bufferevent keeps its input's end frozen outside its own read
	 * callback; we read the way that callback does. */
	in = bufferevent_get_input(io->bev);
	evbuffer_unfreeze(in, 0);
	if (io->rsize < CONN_READ_MIN)
		io->rsize = CONN_READ_MIN;
	if (io->rsize == CONN_READ_MIN) {
		/* A small read goes through one buffer shared by every
		 * connection and is then copied: a head of a few hundred bytes
		 * then takes a 1 KB chain, which malloc keeps in its
		 * per-thread cache, instead of a 4 KB reservation. */
		static _Thread_local unsigned char scratch[CONN_READ_MIN];

		got = recv(fd, scratch, sizeof(scratch), 0);
		err = errno;
		if (got > 0 && evbuffer_add(in, scratch, (size_t)got) != 0) {
			got = -1;
			err = ENOMEM;
		}
	} else if (evbuffer_reserve_space(in, io->rsize, &v, 1) != 1) {
		got = -1;
		err = ENOMEM;
	} else {
		/* A stream: one contiguous reservation, read with a plain recv(). */
		got = recv(fd, v.iov_base, v.iov_len, 0);
		err = errno;
		v.iov_len = got > 0 ? (size_t)got : 0;
		evbuffer_commit_space(in, &v, got > 0 ? 1 : 0);
		/* Drop the chain reserved for nothing, so an idle
		 * connection holds no read buffer. */
		if (got <= 0 && evbuffer_get_length(in) == 0)
			evbuffer_drain(in, 0);
	}
	if (got > 0) {
		/* Full reads mean a stream: read bigger; short ones, smaller. */
		if ((size_t)got >= io->rsize && io->rsize < CONN_READ_MAX)
			io->rsize *= 2;
		else if ((size_t)got < io->rsize / 4 && io->rsize > CONN_READ_MIN)
			io->rsize /= 2;
	}
	evbuffer_freeze(in, 0);
	if (got > 0) {
		io->readcb(io->bev, io->arg);
		return;
	}
	if (got < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
		return;
	conn_read_off(io);
	io->eof = got == 0;
	errno = err;
	io->eventcb(io->bev, BEV_EVENT_READING | (got == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR),
		    io->arg);
}

bool conn_io_open(struct conn_io *io, struct event_base *base, struct conn_flushq *fq,
		  struct bufferevent *bev, bufferevent_data_cb readcb,
		  bufferevent_event_cb eventcb, void *arg, bool bev_reads)
{
	io->base = base;
	io->fq = fq;
	io->queued = false;
	io->bev = bev;
	io->readcb = readcb;
	io->eventcb = eventcb;
	io->arg = arg;
	io->reading = false;
	io->eof = false;
	io->arm_failed = false;
	io->halted = false;
	io->ssl = NULL;
	io->fd = bev ? bufferevent_getfd(bev) : io->fd;
	io->bev_reads = bev_reads;
	if (bev_reads)
		return true;
	/* In the connection's own memory: one allocation less, and the part
	 * an idle connection keeps stays in one piece (proxy-mem.c). */
	if (event_assign(&io->rev_mem, base, io->fd, EV_READ | EV_PERSIST, conn_read_cb, io) != 0)
		return false;
	io->rev = &io->rev_mem;
	return true;
}

void conn_io_set_bev(struct conn_io *io, struct bufferevent *bev)
{
	io->bev = bev;
	if (bev != NULL && (io->timeout_ms || io->wtimeout_ms))
		conn_bev_timeouts(io);
}

/*
 * A timeval for `ms` that libevent files in an O(1) queue shared by every
 * timer of that duration, instead of its heap: our timeouts take a handful
 * of values (head, keep-alive, response, pool idle), each re-armed on
 * every request of every connection.
 */
static const struct timeval *conn_tv(struct event_base *base, unsigned ms)
{
	/* Per thread: each worker's loop has its own common timeouts. */
	static _Thread_local struct {
		struct event_base *base;
		unsigned ms;
		const struct timeval *tv;
	} cache[16];
	static _Thread_local struct timeval plain;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	size_t i;

	for (i = 0; i < sizeof(cache) / sizeof(cache[0]); i++) {
		if (cache[i].tv == NULL) {
			cache[i].tv = event_base_init_common_timeout(base, &tv);
			if (cache[i].tv == NULL)
				break;
			cache[i].base = base;
			cache[i].ms = ms;
			return cache[i].tv;
		}
		if (cache[i].base == base && cache[i].ms == ms)
			return cache[i].tv;
	}
	/* Full (or failed): a plain timeout, which event_add copies. */
	plain = tv;
	return &plain;
}

static void conn_bev_timeouts(struct conn_io *io)
{
	if (io->bev == NULL)
		return;   /* parked: set again with the next bufferevent */
	if (bufferevent_set_timeouts(io->bev,
				     io->bev_reads && io->timeout_ms ? conn_tv(io->base, io->timeout_ms)
								     : NULL,
				     io->wtimeout_ms ? conn_tv(io->base, io->wtimeout_ms) : NULL) != 0)
		conn_arm_failed(io, "timeouts");
}

void conn_write_timeout(struct conn_io *io, unsigned ms)
{
	if (io->wtimeout_ms == ms)
		return;
	io->wtimeout_ms = ms;
	conn_bev_timeouts(io);
	/* TLS, the socket full: its write event carries the timeout. */
	if (io->ssl && !io->bev_reads && io->wblocked && io->hs_done) {
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

		if (event_add(io->wev, ms ? &tv : NULL) != 0)
			conn_arm_failed(io, "writes");
	}
}

void conn_io_close(struct conn_io *io)
{
	if (io->fq)
		conn_unqueue(io);
	if (io->rev == &io->rev_mem)
		event_del(io->rev);
	else if (io->rev)
		event_free(io->rev);
	io->rev = NULL;
	io->reading = false;
	conn_tls_free(io);
}

void conn_read_arm(struct conn_io *io)
{
	if (io->ssl && !io->hs_done && !io->bev_reads) {
		/* One deadline for the whole handshake, however it trickles. */
		struct timeval tv;

		conn_tls_handshake_tv(io, &tv);
		if (event_add(io->rev, &tv) != 0)
			conn_arm_failed(io, "reads");
		return;
	}
	if (io->timeout_ms) {
		if (event_add(io->rev, conn_tv(io->base, io->timeout_ms)) != 0)
			conn_arm_failed(io, "reads");
		return;
	}
	/* event_add with no timeval keeps a timeout set before: drop it
	 * explicitly (no system call either way). */
	event_remove_timer(io->rev);
	if (event_add(io->rev, NULL) != 0)
		conn_arm_failed(io, "reads");
}

void conn_read_on(struct conn_io *io)
{
	if (io->reading || io->eof)
		return;
	if (io->bev_reads) {
		io->reading = true;
		if (bufferevent_enable(io->bev, EV_READ) != 0)
			conn_arm_failed(io, "reads");
		return;
	}
	if (io->rev == NULL)
		return;
	io->reading = true;
	conn_read_arm(io);
	/* TLS: what the SSL read ahead makes the socket readable no more. */
	if (conn_tls_pending(io))
		event_active(io->rev, EV_READ, 0);
}

void conn_io_halt(struct conn_io *io)
{
	conn_read_off(io);
	conn_unqueue(io);
	io->halted = true;
	if (io->wev && io->wblocked) {
		event_del(io->wev);
		io->wblocked = false;
	}
}

void conn_read_off(struct conn_io *io)
{
	if (!io->reading)
		return;
	io->reading = false;
	if (io->bev_reads)
		bufferevent_disable(io->bev, EV_READ);
	else
		event_del(io->rev);
}

void conn_read_timeout(struct conn_io *io, unsigned ms)
{
	if (io->timeout_ms == ms)
		return;
	conn_read_timeout_restart(io, ms);
}

void conn_read_timeout_restart(struct conn_io *io, unsigned ms)
{
	io->timeout_ms = ms;
	if (io->bev_reads)
		conn_bev_timeouts(io);
	else if (io->reading)
		conn_read_arm(io);
}
