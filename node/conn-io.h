/*
 * Connection I/O, the lowest layer of the request path (proxy-io.c and
 * proxy-tls.c): reading a socket (or a TLS connection) into a
 * bufferevent's input, writing its output at the end of the loop's turn,
 * read and write timeouts. It knows nothing of HTTP, clients or backends:
 * it calls only libevent, OpenSSL and the clock, and reports upward
 * through the read and event callbacks each connection is opened with.
 * Used by the stream layer (node/stream.h) for client connections and by
 * the upstream layer (node/upstream.h) for backend connections.
 */
#ifndef ZKR_CONN_IO_H
#define ZKR_CONN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "registry/clock.h"
#include "registry/log.h"

struct proxy_tls_counters;
struct ssl_st;

/* Callbacks get their object back as a void *: check it is one. One that
 * is not is a use after free: debug and sanitizer builds stop there
 * (ZKR_BUG); production logs it and returns without touching the object,
 * so that one broken connection does not end every other one. */
#define CHECK_MAGIC(obj, m) \
	do { \
		if ((obj) == NULL || (obj)->magic != (m)) { \
			ZKR_BUG("%s: not a live object (%p)", __func__, (void *)(obj)); \
			return; \
		} \
	} while (0)

/*
 * Our own read side of a bufferevent. libevent's socket bufferevent asks
 * the kernel how much is readable (an ioctl) before every read and reads
 * at most 4 KB; this reads with one recv(): up to 4 KB into a scratch
 * buffer that is then copied into the input (small requests and answers),
 * and straight into the input, doubling up to CONN_READ_MAX, while reads
 * come back full (bodies). It then calls the same read and event
 * callbacks a bufferevent would (EOF, ERROR, TIMEOUT with READING). The
 * bufferevent keeps the output side, connects and write timeouts; tunnels
 * hand reading back to it. TLS client connections take the same road
 * through an SSL object driven here (proxy-tls.c): their bufferevent has
 * no socket and only holds the buffers, callbacks and watermarks. A TLS
 * tunnel hands its SSL to an OpenSSL bufferevent (`bev_reads`): the same
 * calls then just drive that.
 */
#define CONN_READ_MIN (4u * 1024)
#define CONN_READ_MAX (64u * 1024)

/*
 * Connections whose output waits for the end of the event loop's turn.
 * Every socket made ready by one epoll_wait is read first, then all the
 * outputs go out: a backend or client then finds several requests or
 * answers per wake-up instead of being woken for each (measured: the
 * backends' context switches per request drop by a quarter and their CPU
 * time per request by 10-15%). The flush is an event activated behind the
 * turn's I/O events, so any loop driving the base runs it. After writing,
 * the router yields the CPU, at most once per CONN_YIELD_EVERY_US (see
 * flushq_cb).
 */
struct conn_flushq {
	struct event_base *base;
	struct event *ev;
	struct conn_io **items;    /* NULL where a connection closed meanwhile */
	size_t n, cap;
	struct timeval yielded;    /* the loop's time at the last yield */
};

bool conn_flushq_init(struct conn_flushq *q, struct event_base *base);
void conn_flushq_free(struct conn_flushq *q);

struct conn_io {
	struct event_base *base;
	struct conn_flushq *fq;
	struct bufferevent *bev;
	struct event *rev;         /* EV_READ | EV_PERSIST on the socket: rev_mem
				    * (plain or TLS), NULL once a bufferevent reads */
	struct event rev_mem;      /* its memory, inside the connection's */
	/* A client parked while idle (proxy-mem.c) has no bufferevent (bev
	 * NULL): unpark gives it one again before a read, or closes the
	 * connection and returns false. NULL on connections never parked. */
	bool (*unpark)(void *arg);
	bufferevent_data_cb readcb;
	bufferevent_event_cb eventcb;
	void *arg;
	unsigned timeout_ms;       /* read inactivity timeout, 0: none */
	unsigned wtimeout_ms;      /* write timeout (bytes stuck), 0: none */
	unsigned rsize;            /* next read size: grows while reads fill it */
	bool reading;
	bool eof;                  /* the peer will send nothing more */
	bool bev_reads;            /* TLS: the bufferevent does the I/O */
	bool queued;               /* in fq, to be written at the turn's end */
	bool arm_failed;           /* a read or write could not be armed: fq
				    * reports BEV_EVENT_ERROR to eventcb */
	bool halted;               /* conn_io_halt: the connection is closing */
	evutil_socket_t fd;        /* the socket (a TLS bufferevent has none) */
	/* TLS (proxy-tls.c); ssl is NULL on a plain connection. */
	struct ssl_st *ssl;
	struct event *wev;         /* EV_WRITE, armed only while the socket is full */
	struct proxy_tls_counters *tlsn;
	const char *name;          /* for log lines: the peer */
	uint64_t hs_deadline_ms;   /* the handshake is cut then */
	size_t wlen;               /* an SSL_write to repeat with at least this */
	bool hs_done;
	bool tls_dead;             /* a fatal TLS error: no more writing, no close_notify */
	bool wblocked;             /* wev armed: writes wait for it */
	bool rwants_write;         /* a read or the handshake waits for wev */
	bool notified;             /* close_notify sent, or tried */
	bool cut;                  /* the stream ends short: no close_notify */
};

/*
 * Writes a connection's output at the end of this turn of the event loop
 * (struct conn_flushq), from our code instead of a write event: small
 * answers then cost one send() and no epoll_ctl pair. Only what the socket
 * does not take waits for the write event (armed then, disarmed by the
 * write callback once drained), so EV_WRITE is enabled on client and
 * backend connections only while bytes are stuck. After each write the
 * bufferevent's write callback runs as it would after its own write
 * (output at or below the low watermark). Call after filling an output.
 */
void conn_flush(struct conn_io *io);
/* Writes the output now (a connection about to close or linger). True
 * when bytes went out. */
bool conn_flush_now(struct conn_io *io);
/* From a write callback: disarms EV_WRITE once the output is empty. */
void conn_write_done(struct conn_io *io);
/* The read side (struct conn_io): open once the socket exists. A client
 * starts parked (proxy-mem.c): `bev` NULL, and io->fd set before. */
bool conn_io_open(struct conn_io *io, struct event_base *base, struct conn_flushq *fq,
		  struct bufferevent *bev, bufferevent_data_cb readcb,
		  bufferevent_event_cb eventcb, void *arg, bool bev_reads);
void conn_io_close(struct conn_io *io);
/* A parked client's bufferevent goes (NULL) or comes back: the timeouts
 * set meanwhile are applied to the new one. */
void conn_io_set_bev(struct conn_io *io, struct bufferevent *bev);
/* The connection is being closed: no more reading, and its queued
 * output is not written at the turn's end. */
void conn_io_halt(struct conn_io *io);
/* Reading again is a no-op once the peer's EOF was seen (io->eof). */
void conn_read_on(struct conn_io *io);
void conn_read_off(struct conn_io *io);
/* The read inactivity timeout; unchanged values leave the countdown
 * running. conn_read_timeout_restart starts it again in any case (a new
 * wait begins). */
void conn_read_timeout(struct conn_io *io, unsigned ms);
void conn_read_timeout_restart(struct conn_io *io, unsigned ms);
void conn_write_timeout(struct conn_io *io, unsigned ms);
/* An error found by a write: eventcb hears BEV_EVENT_ERROR from the queue
 * at the turn's end (the caller may be in the middle of its work). */
void conn_fail_later(struct conn_io *io);
/* Arms reading (rev) with the read timeout, or the handshake's. */
void conn_read_arm(struct conn_io *io);

/* ---- proxy-tls.c: TLS client connections on struct conn_io ------------ */

/* Opens a TLS connection on `fd` with `ssl` (accepting side), `bev` being
 * a bufferevent without a socket. False on failure: fd and ssl are then
 * still the caller's. */
bool conn_io_open_tls(struct conn_io *io, struct event_base *base, struct conn_flushq *fq,
		      struct bufferevent *bev, evutil_socket_t fd, struct ssl_st *ssl,
		      bufferevent_data_cb readcb, bufferevent_event_cb eventcb, void *arg,
		      unsigned handshake_ms, struct proxy_tls_counters *n, const char *name);
/* conn_flush_now for TLS: the output in records of up to 16 KB. */
bool conn_tls_flush(struct conn_io *io);
/* The time left for the handshake, for conn_read_arm. */
void conn_tls_handshake_tv(const struct conn_io *io, struct timeval *tv);
/* True when the SSL holds what a read would return (bytes, EOF, an error)
 * without the socket becoming readable again. */
bool conn_tls_pending(const struct conn_io *io);
/* Sends close_notify, once, if the stream is whole: handshake done, no
 * fatal error, the output all written and not marked cut. Never waits: a
 * socket that takes nothing more gets none. */
void conn_tls_close_notify(struct conn_io *io);
/* The stream ends short (a response cut): the close sends no close_notify,
 * so the client can tell it from a complete one. */
void conn_tls_cut(struct conn_io *io);
/* Hands the SSL to an OpenSSL bufferevent, which becomes io->bev (the old
 * one is freed, its buffers moved): tunnels use the bufferevent's own
 * I/O. False on failure (the connection is unchanged). */
bool conn_tls_to_bev(struct conn_io *io);
/* Frees the SSL and closes the socket (from conn_io_close). */
void conn_tls_free(struct conn_io *io);

#endif
