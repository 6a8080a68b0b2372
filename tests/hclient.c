/*
 * hclient: a raw-socket HTTP client for the process-level proxy tests.
 *
 * curl refuses to send most of what a hostile client sends (a request with
 * both Content-Length and Transfer-Encoding, obs-fold, a TLS ClientHello on
 * a plain port) and hides the exact bytes of the answer, so the tests use
 * this instead when the wire itself is the point. It connects, then performs
 * its steps in order, reading all the while, and prints every byte it
 * receives on stdout, untouched:
 *
 *   TEXT            send TEXT, with C escapes (\r \n \t \\ \0 \xHH)
 *   --file PATH     send the bytes of a file
 *   --sleep MS      pause (a slowloris, or pieces of a pipeline)
 *   --expect TEXT   wait until the bytes received so far contain TEXT
 *   --shut          half-close (shutdown the write side)
 *   --stdin         send what arrives on stdin, as it arrives, until EOF
 *                   (a test drives a WebSocket tunnel through a fifo)
 *
 * Then it reads until the peer closes or nothing arrives for --timeout MS.
 * The exit status says how the connection ended, so a test can assert
 * "answered 400 and closed" rather than "answered 400":
 *   0 closed by the peer    2 still open at the timeout    3 reset
 *   4 an --expect was not met before the timeout
 *   1 cannot connect, or a usage error
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

enum { EXIT_CLOSED = 0, EXIT_USAGE = 1, EXIT_TIMEOUT = 2, EXIT_RESET = 3, EXIT_NOT_MET = 4 };

enum step_kind { S_SEND, S_FILE, S_SLEEP, S_EXPECT, S_SHUT, S_STDIN };

struct step {
	enum step_kind kind;
	char *data;
	size_t len;
	long ms;
};

struct conn {
	int fd;
	bool eof, reset;
	char *got;        /* everything received, for --expect */
	size_t got_len, got_cap;
	long timeout_ms;
	bool quiet;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes C escapes of S into a new buffer; false on a bad escape. */
static bool unescape(const char *s, char **out, size_t *outlen)
{
	size_t n = strlen(s);
	char *buf = malloc(n + 1);
	size_t j = 0;
	if (!buf)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			buf[j++] = s[i];
			continue;
		}
		if (++i >= n)
			goto bad;
		switch (s[i]) {
		case 'r': buf[j++] = '\r'; break;
		case 'n': buf[j++] = '\n'; break;
		case 't': buf[j++] = '\t'; break;
		case '0': buf[j++] = '\0'; break;
		case '\\': buf[j++] = '\\'; break;
		case 'x': {
			int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				goto bad;
			buf[j++] = (char)(hi * 16 + lo);
			i += 2;
			break;
		}
		default:
			goto bad;
		}
	}
	*out = buf;
	*outlen = j;
	return true;
bad:
	free(buf);
	fprintf(stderr, "hclient: bad escape in \"%s\"\n", s);
	return false;
}

static bool read_file(const char *path, char **out, size_t *outlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	if (!f) {
		fprintf(stderr, "hclient: %s: %s\n", path, strerror(errno));
		return false;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return false;
			}
			buf = nb;
		}
		size_t r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (r == 0)
			break;
	}
	bool ok = !ferror(f);
	fclose(f);
	if (!ok) {
		free(buf);
		fprintf(stderr, "hclient: cannot read %s\n", path);
		return false;
	}
	*out = buf;
	*outlen = len;
	return true;
}

/* Reads what is there; false once the connection has ended. */
static bool take_input(struct conn *c)
{
	char buf[65536];
	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof(buf));
		if (r > 0) {
			if (!c->quiet && fwrite(buf, 1, (size_t)r, stdout) != (size_t)r)
				return false;
			fflush(stdout);
			if (c->got_len + (size_t)r + 1 > c->got_cap) {
				size_t cap = (c->got_cap ? c->got_cap * 2 : 65536);
				while (cap < c->got_len + (size_t)r + 1)
					cap *= 2;
				char *nb = realloc(c->got, cap);
				if (!nb)
					return false;
				c->got = nb;
				c->got_cap = cap;
			}
			memcpy(c->got + c->got_len, buf, (size_t)r);
			c->got_len += (size_t)r;
			c->got[c->got_len] = '\0';
			continue;
		}
		if (r == 0) {
			c->eof = true;
			return false;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return true;
		if (errno == ECONNRESET)
			c->reset = true;
		else
			c->eof = true;
		return false;
	}
}

static bool contains(const struct conn *c, const char *needle, size_t nlen)
{
	if (nlen == 0)
		return true;
	if (c->got_len < nlen)
		return false;
	for (size_t i = 0; i + nlen <= c->got_len; i++)
		if (memcmp(c->got + i, needle, nlen) == 0)
			return true;
	return false;
}

/*
 * Waits for input until DEADLINE (ms, monotonic) or, with IDLE set, until
 * nothing arrived for timeout_ms; stops early once NEEDLE was received.
 * Returns false when the connection ended.
 */
static bool pump(struct conn *c, long long deadline, bool idle, const char *needle, size_t nlen)
{
	long long last = now_ms();
	while (!c->eof && !c->reset) {
		if (needle && contains(c, needle, nlen))
			return true;
		long long now = now_ms();
		long long until = idle ? last + c->timeout_ms : deadline;
		if (now >= until)
			return true;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(until - now));
		if (r < 0 && errno != EINTR)
			return false;
		if (r > 0) {
			size_t before = c->got_len;
			if (!take_input(c))
				break;
			if (c->got_len > before)
				last = now_ms();
		}
	}
	return !(c->eof || c->reset);
}

/* Sends LEN bytes, reading meanwhile so a large answer cannot deadlock us. */
static bool send_all(struct conn *c, const char *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLOUT };
		if (poll(&p, 1, (int)c->timeout_ms) <= 0) {
			fprintf(stderr, "hclient: send stalled after %zu of %zu bytes\n", off, len);
			return false;
		}
		if (p.revents & POLLIN) {
			if (!take_input(c) && (c->eof || c->reset))
				return false;
		}
		if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
			ssize_t w = write(c->fd, data + off, len - off);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				if (errno == ECONNRESET)
					c->reset = true;
				fprintf(stderr, "hclient: write: %s\n", strerror(errno));
				return false;
			}
			off += (size_t)w;
		}
	}
	return true;
}

/* Forwards stdin to the connection until stdin ends or the connection does. */
static void relay_stdin(struct conn *c)
{
	char buf[16384];
	while (!c->eof && !c->reset) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = c->fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
			take_input(c);
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(0, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return;
			if (!send_all(c, buf, (size_t)r))
				return;
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hclient [--timeout MS] [--quiet] ADDR:PORT STEP...\n"
		"steps: TEXT (C escapes \\r \\n \\t \\\\ \\0 \\xHH) | --file PATH | --sleep MS |\n"
		"       --expect TEXT | --shut | --stdin\n"
		"Prints the bytes received. Exit: 0 closed by peer, 2 still open at the\n"
		"idle timeout (default 2000 ms), 3 reset, 4 --expect not met, 1 error.\n");
}

static bool parse_addr(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return false;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 1 || port > 65535)
		return false;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1;
}

int main(int argc, char **argv)
{
	struct conn c = { .fd = -1, .timeout_ms = 2000 };
	struct step *steps = calloc((size_t)argc, sizeof(*steps));
	size_t nsteps = 0;
	const char *addr = NULL;
	int i = 1;

	if (!steps)
		return EXIT_USAGE;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			c.timeout_ms = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--quiet") == 0) {
			c.quiet = true;
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	addr = argv[i++];
	for (; i < argc; i++) {
		struct step *s = &steps[nsteps++];
		const char *a = argv[i];
		bool has_arg = i + 1 < argc;
		if (strcmp(a, "--timeout") == 0 && has_arg) {
			/* A setting, not a step: allowed anywhere. */
			c.timeout_ms = strtol(argv[++i], NULL, 10);
			nsteps--;
		} else if (strcmp(a, "--quiet") == 0) {
			c.quiet = true;
			nsteps--;
		} else if (strcmp(a, "--sleep") == 0 && has_arg) {
			s->kind = S_SLEEP;
			s->ms = strtol(argv[++i], NULL, 10);
		} else if (strcmp(a, "--file") == 0 && has_arg) {
			s->kind = S_FILE;
			if (!read_file(argv[++i], &s->data, &s->len))
				return EXIT_USAGE;
		} else if (strcmp(a, "--expect") == 0 && has_arg) {
			s->kind = S_EXPECT;
			if (!unescape(argv[++i], &s->data, &s->len))
				return EXIT_USAGE;
		} else if (strcmp(a, "--shut") == 0) {
			s->kind = S_SHUT;
		} else if (strcmp(a, "--stdin") == 0) {
			s->kind = S_STDIN;
		} else if (strncmp(a, "--", 2) == 0) {
			fprintf(stderr, "hclient: unknown step %s\n", a);
			usage(stderr);
			return EXIT_USAGE;
		} else {
			s->kind = S_SEND;
			if (!unescape(a, &s->data, &s->len))
				return EXIT_USAGE;
		}
	}

	struct sockaddr_in sin;
	if (!parse_addr(addr, &sin)) {
		fprintf(stderr, "hclient: bad address %s (want IPv4:PORT)\n", addr);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	c.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		fprintf(stderr, "hclient: cannot connect to %s: %s\n", addr, strerror(errno));
		return EXIT_USAGE;
	}
	int one = 1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) != 0) {
		fprintf(stderr, "hclient: fcntl: %s\n", strerror(errno));
		return EXIT_USAGE;
	}

	int rc = -1;
	for (size_t k = 0; k < nsteps && !c.eof && !c.reset; k++) {
		struct step *s = &steps[k];
		switch (s->kind) {
		case S_SEND:
		case S_FILE:
			send_all(&c, s->data, s->len);
			break;
		case S_SLEEP:
			pump(&c, now_ms() + s->ms, false, NULL, 0);
			break;
		case S_EXPECT:
			pump(&c, now_ms() + c.timeout_ms, false, s->data, s->len);
			if (!contains(&c, s->data, s->len)) {
				fprintf(stderr, "hclient: did not receive the expected bytes (%zu received)\n", c.got_len);
				rc = EXIT_NOT_MET;
			}
			break;
		case S_STDIN:
			relay_stdin(&c);
			break;
		case S_SHUT:
			if (shutdown(c.fd, SHUT_WR) != 0)
				fprintf(stderr, "hclient: shutdown: %s\n", strerror(errno));
			break;
		}
		if (rc >= 0)
			break;
	}
	if (rc < 0) {
		pump(&c, 0, true, NULL, 0);
		if (c.reset) {
			rc = EXIT_RESET;
			fprintf(stderr, "hclient: reset after %zu bytes\n", c.got_len);
		} else if (c.eof) {
			rc = EXIT_CLOSED;
			fprintf(stderr, "hclient: closed after %zu bytes\n", c.got_len);
		} else {
			rc = EXIT_TIMEOUT;
			fprintf(stderr, "hclient: open after %zu bytes (idle %ld ms)\n",
				c.got_len, c.timeout_ms);
		}
	}
	close(c.fd);
	for (size_t k = 0; k < nsteps; k++)
		free(steps[k].data);
	free(steps);
	free(c.got);
	return rc;
}
