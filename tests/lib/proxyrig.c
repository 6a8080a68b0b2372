/*
 * The one-loop request path for unit suites. See proxyrig.h.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "node/stream.h"
#include "registry/clock.h"
#include "registry/table.h"
#include "tests/lib/proxyrig.h"

struct rig_bconn {
	struct rig_backend *b;
	struct bufferevent *bev;
	unsigned n;                /* which connection of its backend, from 1 */
	uint64_t body_left;        /* of the request being read */
	bool in_body;
	char host[128];
	struct rig_bconn *next;
};

static int listen_local(unsigned short *port);

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

bool rig_init(struct rig *r)
{
	char why[256];
	struct timeval tv = { 0, 20000 };
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	memset(r, 0, sizeof(*r));
	if ((r->base = event_base_new()) == NULL || !config_init(&r->cfg))
		return false;
	r->tick = event_new(r->base, -1, EV_PERSIST, tick_cb, NULL);
	if (r->tick == NULL || event_add(r->tick, &tv) != 0)
		return false;
	if ((r->p = proxy_new(r->base, &r->cfg, NULL)) == NULL)
		return false;
	/* A free port from the kernel (the proxy wants a number): tried again
	 * if another process took it in between. */
	for (int i = 0;; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "127.0.0.1:%u", rig_refused_port());
		if (proxy_listen(r->p, addr, false, why, sizeof(why)))
			break;
		if (i == 5) {
			fprintf(stderr, "rig: %s\n", why);
			return false;
		}
	}
	if (getsockname(evconnlistener_get_fd(r->p->listeners[0]->l), (struct sockaddr *)&sin,
			&sl) != 0)
		return false;
	r->port = ntohs(sin.sin_port);
	return true;
}

void rig_free(struct rig *r)
{
	proxy_free(r->p);
	if (r->tick)
		event_free(r->tick);
	config_free(&r->cfg);
	if (r->base)
		event_base_free(r->base);
	memset(r, 0, sizeof(*r));
}

/* ---- backends ------------------------------------------------------------ */

/* The value of header `name` in a head (NUL-terminated), into out. */
static bool head_value(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *l = strstr(head, "\r\n");

	while (l != NULL && l[2] != '\r' && l[2] != '\0') {
		const char *h = l + 2, *e = strstr(h, "\r\n");
		if (e == NULL)
			break;
		if ((size_t)(e - h) > nl && strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
			const char *v = h + nl + 1;
			size_t n;
			while (*v == ' ')
				v++;
			n = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		l = e;
	}
	if (cap > 0)
		out[0] = '\0';
	return false;
}

static void bconn_answer(struct rig_bconn *bc)
{
	struct evbuffer *out = bufferevent_get_output(bc->bev);

	bc->b->requests++;
	evbuffer_add_printf(out,
			    "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nX-Backend: %s\r\n"
			    "X-Conn: %u\r\nX-Host: %s\r\n\r\n%s",
			    strlen(bc->b->name), bc->b->name, bc->n, bc->host, bc->b->name);
}

static void bconn_read(struct bufferevent *bev, void *arg)
{
	struct rig_bconn *bc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		if (bc->in_body) {
			size_t have = evbuffer_get_length(in);
			size_t take = have < bc->body_left ? have : (size_t)bc->body_left;

			evbuffer_drain(in, take);
			bc->body_left -= take;
			bc->b->body_bytes += take;
			if (bc->body_left > 0)
				return;
			bc->in_body = false;
			bconn_answer(bc);
			continue;
		}
		struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		char head[4096], cl[32];

		if (end.pos < 0 || (size_t)end.pos + 4 >= sizeof(head))
			return;
		evbuffer_remove(in, head, (size_t)end.pos + 4);
		head[end.pos + 4] = '\0';
		head_value(head, "Host", bc->host, sizeof(bc->host));
		bc->body_left = head_value(head, "Content-Length", cl, sizeof(cl))
					? strtoull(cl, NULL, 10) : 0;
		bc->in_body = true;
	}
}

static void bconn_event(struct bufferevent *bev, short what, void *arg)
{
	struct rig_bconn *bc = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bc->b->closed++;
		bufferevent_free(bc->bev);
		bc->bev = NULL;
	}
}

static void backend_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct rig_backend *b = arg;
	evutil_socket_t fd = accept(lfd, NULL, NULL);
	struct rig_bconn *bc;

	if (fd < 0)
		return;
	evutil_make_socket_nonblocking(fd);
	if ((bc = calloc(1, sizeof(*bc))) == NULL) {
		close(fd);
		return;
	}
	bc->b = b;
	bc->n = ++b->accepted;
	bc->bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bc->next = b->conns;
	b->conns = bc;
	if (bc->bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bc->bev, bconn_read, NULL, bconn_event, bc);
	bufferevent_enable(bc->bev, EV_READ | EV_WRITE);
}

static int listen_local(unsigned short *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

bool rig_backend_start(struct rig *r, struct rig_backend *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->base = r->base;
	if ((b->lfd = listen_local(&b->port)) < 0 || listen(b->lfd, 64) != 0)
		return false;
	evutil_make_socket_nonblocking(b->lfd);
	b->lev = event_new(r->base, b->lfd, EV_READ | EV_PERSIST, backend_accept, b);
	return b->lev != NULL && event_add(b->lev, NULL) == 0;
}

void rig_backend_stop(struct rig_backend *b)
{
	struct rig_bconn *bc, *next;

	if (b->lev)
		event_free(b->lev);
	if (b->lfd > 0)
		close(b->lfd);
	for (bc = b->conns; bc != NULL; bc = next) {
		next = bc->next;
		if (bc->bev)
			bufferevent_free(bc->bev);
		free(bc);
	}
	memset(b, 0, sizeof(*b));
}

unsigned short rig_refused_port(void)
{
	unsigned short port = 0;
	int fd = listen_local(&port);    /* bound, never listening */

	if (fd >= 0)
		close(fd);
	return port;
}

/* ---- the table ------------------------------------------------------------ */

bool rig_table(struct rig *r, const char *const *domains, const size_t *n_inst,
	       const struct rig_inst *insts, size_t n_apps)
{
	struct route_table *t = route_table_new();
	size_t at = 0;

	for (size_t i = 0; t != NULL && i < n_apps; i++) {
		struct route_app *a = route_app_new(domains[i], NULL);
		struct route_table *next;

		if (a == NULL)
			break;
		for (size_t j = 0; j < n_inst[i]; j++, at++) {
			record_instance ri = ZKROUTER__INSTANCE__INIT;

			ri.host = "127.0.0.1";
			ri.has_port = true;
			ri.port = insts[at].port;
			ri.weight = 100;
			ri.state = ZKROUTER__INSTANCE__STATE__UP;
			if (!route_app_add_instance(a, insts[at].id, &ri))
				return false;
		}
		route_app_seal(a);
		next = route_table_with_app(t, a);
		route_table_unref(t);
		t = next;
	}
	if (t == NULL)
		return false;
	proxy_set_table(r->p, t);
	route_table_unref(t);
	return true;
}

/* ---- clients ---------------------------------------------------------------- */

int rig_connect(struct rig *r)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(r->port);
	/* A blocking connect to loopback completes from the kernel's backlog,
	 * before the proxy accepts. */
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	return fd;
}

bool rig_send(struct rig *r, int fd, const void *buf, size_t len)
{
	const char *p = buf;
	uint64_t deadline = clock_now_ms() + 3000;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (clock_now_ms() > deadline)
				return false;
			event_base_loop(r->base, EVLOOP_ONCE);
		} else {
			return false;
		}
	}
	return true;
}

/* The status of a whole response in buf, 0 while it is not whole. */
static int response_whole(const char *buf, size_t len)
{
	const char *end = strstr(buf, "\r\n\r\n");
	char cl[32];
	size_t want;

	if (end == NULL || len < 12)
		return 0;
	want = (size_t)(end - buf) + 4;
	if (head_value(buf, "Content-Length", cl, sizeof(cl)))
		want += strtoull(cl, NULL, 10);
	if (len < want)
		return 0;
	return atoi(buf + 9);
}

int rig_response(struct rig *r, int fd, char *out, size_t cap, unsigned timeout_ms)
{
	uint64_t deadline = clock_now_ms() + timeout_ms;
	size_t len = 0;
	int status;

	out[0] = '\0';
	while (clock_now_ms() < deadline) {
		ssize_t n = recv(fd, out + len, cap - 1 - len, MSG_DONTWAIT);

		if (n > 0) {
			len += (size_t)n;
			out[len] = '\0';
			if ((status = response_whole(out, len)) != 0)
				return status;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || len + 1 >= cap)
			return 0;
		event_base_loop(r->base, EVLOOP_ONCE);
	}
	return 0;
}

const char *rig_header(const char *resp, const char *name)
{
	static char v[256];

	head_value(resp, name, v, sizeof(v));
	return v;
}

bool rig_until(struct rig *r, bool (*cond)(void *), void *arg, unsigned timeout_ms)
{
	uint64_t deadline = clock_now_ms() + timeout_ms;

	while (!cond(arg)) {
		if (clock_now_ms() > deadline)
			return false;
		event_base_loop(r->base, EVLOOP_ONCE);
	}
	return true;
}
