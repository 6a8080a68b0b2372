/*
 * Shared by the test backend's two files: backend.c (connections, request
 * framing with llhttp, the main loop) and backend_answer.c (what each path
 * answers). See backend.c for what the backend is for.
 */
#ifndef ZKR_TESTS_BACKEND_H
#define ZKR_TESTS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include <llhttp.h>

#define ECHO_BODY_MAX (16u * 1024 * 1024)
#define BIG_PIECE (64u * 1024)
#define WRITE_LOW_MARK (64u * 1024)
#define OUT_FILL_MARK (256u * 1024)
#define READ_HIGH_MARK (64u * 1024)

enum route {
	R_PLAIN, R_ECHO, R_SLOW, R_CLOSE, R_STREAM, R_BIG, R_STATUS,
	R_UPLOAD, R_HOP, R_WS, R_BADRESP, R_CONTINUES, R_UPGRADE,
};

/* What the connection is doing between requests and while answering. */
enum conn_state {
	C_READING,   /* parsing requests; answers so far are complete */
	C_ANSWERING, /* an answer is in progress (timer or backpressure) */
	C_TUNNEL,    /* after 101: echo bytes */
	C_CLOSING,   /* flush the output, then close */
};

struct server {
	struct event_base *base;
	const char *id;
	unsigned idle_close_ms;
	bool idle_drop;      /* --idle-drop: mark idle connections stale instead */
	bool quiet;
	llhttp_settings_t settings;
	unsigned long long next_conn;
	unsigned long long requests;
	LIST_HEAD(, conn) conns;  /* open connections, freed at exit */
};

struct conn {
	struct server *srv;
	LIST_ENTRY(conn) link;
	bool listed;         /* in srv->conns */
	struct bufferevent *bev;
	llhttp_t parser;
	unsigned long long id;
	char peer[64];
	enum conn_state state;
	bool in_message;     /* between message begin and complete */
	bool message_done;   /* set by on_message_complete, handled after execute */
	bool peer_eof;
	bool stale;          /* --idle-drop: the next request is dropped */
	struct event *timer; /* slow/stream delays */
	struct event *idle;  /* --idle-close */
	struct event *throttle; /* /upload?rate=: resumes reading */

	/* The request being read. */
	struct evbuffer *url, *hname, *hvalue, *headers, *body;
	bool in_value;
	bool expect_continue;
	enum route route;
	uint64_t body_bytes;
	long upload_rate;    /* bytes per second, 0: as fast as it comes */
	struct timespec body_start;
	EVP_MD_CTX *sha;
	bool keep_alive;
	bool http10;
	bool upgrade;        /* the request asked for an Upgrade */
	char ws_accept[32];  /* Sec-WebSocket-Accept for its key, or "" */
	char method[24];

	/* The answer being sent. */
	long stream_left, stream_delay_ms, stream_index;
	uint64_t big_left, big_off;
	bool chunked_out;
};

/* backend.c */
void conn_answer_done(struct conn *c);
bool conn_parse(struct conn *c);

/* backend_answer.c */
long answer_query_long(const char *url, const char *name, long def);
enum route answer_route_of(const char *url);
const char *answer_evbuf_str(struct evbuffer *b);
void answer_text(struct conn *c, int code, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void answer_big_fill(struct conn *c);
void answer_continues_fill(struct conn *c);
void answer_dispatch(struct conn *c);

#endif
