/*
 * proxy-idle: opens N keep-alive client connections to a proxy, sends one
 * request on each, reads its answer, and then holds them all open and idle,
 * so the proxy benchmarks (tests/bench/proxy-bench, tests/bench/idle-bench)
 * can read the proxy's resident memory with N idle keep-alive clients.
 * Built by those scripts with plain cc; not part of the build or of make
 * check.
 *
 *   proxy-idle [--burst] ADDR:PORT HOST N
 *
 * By default each connection sends its request as soon as it is connected,
 * at most 500 at a time. With --burst every connection is opened first,
 * and then all N send their request at the same moment: the proxy then
 * holds N requests (and backend connections) at once.
 *
 * Prints "ready N" once every connection got its answer (or "failed ..."
 * and exits 1), then waits until stdin ends (or SIGTERM) and prints how
 * many connections the proxy closed meanwhile. Raise `ulimit -n` first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

enum cstate { CONNECTING, CONNECTED, SENT, ANSWERED, DEAD };

struct client {
	int fd;
	enum cstate st;
	size_t got;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	bool burst = argc > 1 && strcmp(argv[1], "--burst") == 0;

	if (burst) {
		argv++;
		argc--;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: proxy-idle [--burst] ADDR:PORT HOST N\n");
		return 2;
	}
	char host[64];
	const char *colon = strrchr(argv[1], ':');
	if (!colon || (size_t)(colon - argv[1]) >= sizeof(host)) {
		fprintf(stderr, "proxy-idle: bad address %s\n", argv[1]);
		return 2;
	}
	memcpy(host, argv[1], colon - argv[1]);
	host[colon - argv[1]] = '\0';
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(atoi(colon + 1)) };
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "proxy-idle: bad address %s\n", argv[1]);
		return 2;
	}
	int n = atoi(argv[3]);
	if (n < 1 || n > 200000) {
		fprintf(stderr, "proxy-idle: N out of range\n");
		return 2;
	}
	char req[512];
	int reqlen = snprintf(req, sizeof(req), "GET /?idle HTTP/1.1\r\nHost: %s\r\n\r\n", argv[2]);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);

	struct client *cs = calloc((size_t)n, sizeof(*cs));
	int ep = epoll_create1(0);
	if (!cs || ep < 0) {
		perror("proxy-idle");
		return 1;
	}
	/* Open in batches so the proxy's accept queue is not overrun. */
	int opened = 0, connected = 0, answered = 0, dead = 0, batch = 500;
	bool sent_all = !burst;
	time_t deadline = time(NULL) + 120;
	while (answered + dead < n && time(NULL) < deadline) {
		if (!sent_all && connected + dead == n) {
			/* Every connection is up: let the proxy accept the last
			 * ones, then send all the requests back to back. */
			sleep(1);
			for (int i = 0; i < n; i++) {
				struct client *c = &cs[i];

				if (c->st != CONNECTED)
					continue;
				if (write(c->fd, req, (size_t)reqlen) != reqlen) {
					c->st = DEAD;
					dead++;
					continue;
				}
				c->st = SENT;
			}
			sent_all = true;
		}
		while (opened < n && opened - (burst ? connected : answered) - dead < batch) {
			struct client *c = &cs[opened];
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (c->fd < 0) {
				fprintf(stderr, "failed: socket %d: %s\n", opened, strerror(errno));
				return 1;
			}
			if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
				fprintf(stderr, "failed: connect %d: %s\n", opened, strerror(errno));
				return 1;
			}
			struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)opened };
			if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
				perror("epoll_ctl");
				return 1;
			}
			opened++;
		}
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < k; i++) {
			struct client *c = &cs[evs[i].data.u32];
			if (c->st == CONNECTING && (evs[i].events & (EPOLLHUP | EPOLLERR))) {
				c->st = DEAD;
				dead++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				continue;
			}
			if (c->st == CONNECTING && burst && (evs[i].events & EPOLLOUT)) {
				c->st = CONNECTED;
				connected++;
				struct epoll_event ev = { .events = EPOLLIN, .data.u32 = evs[i].data.u32 };
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (c->st == CONNECTED)
				continue;   /* an early close shows once the request is sent */
			if (c->st == CONNECTING && (evs[i].events & EPOLLOUT)) {
				if (write(c->fd, req, (size_t)reqlen) != reqlen) {
					c->st = DEAD;
					dead++;
					continue;
				}
				c->st = SENT;
				struct epoll_event ev = { .events = EPOLLIN, .data.u32 = evs[i].data.u32 };
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			}
			if (c->st == SENT && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				char buf[4096];
				ssize_t r = read(c->fd, buf, sizeof(buf));
				if (r <= 0) {
					if (r < 0 && errno == EAGAIN)
						continue;
					c->st = DEAD;
					dead++;
					continue;
				}
				c->got += (size_t)r;
				/* The small answer arrives whole; one read is the answer. */
				c->st = ANSWERED;
				answered++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			}
		}
	}
	if (answered < n) {
		printf("failed: %d of %d answered, %d closed\n", answered, n, dead);
		fflush(stdout);
		return 1;
	}
	printf("ready %d\n", answered);
	fflush(stdout);

	/* Hold, idle, until told to stop. */
	char b;
	while (!stop && read(0, &b, 1) > 0)
		;
	int closed = 0;
	for (int i = 0; i < n; i++) {
		char buf[16];
		ssize_t r = recv(cs[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN))
			closed++;
		close(cs[i].fd);
	}
	printf("closed-by-proxy %d\n", closed);
	return 0;
}
