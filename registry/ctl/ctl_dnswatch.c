/*
 * zkrouterctl dns --watch: keeps the router records of a DNS zone equal to
 * what /routers says, so that a router that leaves (stopped, crashed, its
 * session expired) leaves DNS within a second or so, and one that joins is
 * published as soon as it registers.
 *
 * It watches /routers and each router's node; a watch only marks the set
 * dirty, and the main loop reads /routers again (with fresh watches),
 * computes the records as `zkrouterctl dns` prints them, and, only when
 * they differ from what it last pushed, sends one RFC 2136 dynamic update
 * that replaces the whole RRset: "delete NAME A, delete NAME AAAA, add
 * each record", which the server applies atomically, so a resolver never
 * sees the name empty. A burst of changes costs one read and one update.
 *
 * The update is sent by nsupdate (Debian's bind9-dnsutils; knsupdate from
 * knot-dnsutils reads the same script, and its own key-file format), run
 * as a child with the script on
 * its standard input and the TSIG key named by -k, so the secret is never
 * on a command line. Why not speak the protocol here: TSIG (RFC 8945)
 * signing, time checks and the server's error answers are where a
 * hand-written client goes wrong, nsupdate is the reference implementation
 * that every DNS server is tested against, and updates are rare (a router
 * joining or leaving), so a process per update costs nothing.
 *
 * Fail static, like the routers: while ZooKeeper is unreachable, or when no
 * router is left with a usable address, the zone is left as it is (an
 * empty RRset would send every client away, stale addresses only some). A
 * failed update is retried with a growing pause (0.5 s to 30 s).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "registry/ctl/ctl_dns.h"

#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
/* nsupdate gets -t 5 (its own bound per attempt); this one is ours. */
#define NSUPDATE_KILL_MS 15000

struct dwatch {
	struct ctl *c;
	const struct dns_watch_opts *o;
	bool dirty;                /* /routers changed since the last read */
	bool wake;                 /* leave the loop: something to do */
	bool stop;
	struct dns_rr *want;       /* the records /routers gives */
	size_t n_want;
	struct dns_rr *pushed;     /* what the server has (as far as we know) */
	size_t n_pushed;
	bool have_pushed;
};

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct dwatch *w = ctx;
	if (type == ZOO_SESSION_EVENT)
		return;
	w->dirty = true;
	w->wake = true;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct dwatch *w = arg;
	w->stop = true;
	w->wake = true;
}

/* One line on stdout, with the time, like `zkrouterctl watch`. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	char when[40];
	va_list ap;
	ctl_format_time(ctl_now_ms(), when, sizeof(when));
	printf("%s ", when);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* The update script for nsupdate: one message that replaces the RRset. */
static char *update_script(const struct dwatch *w, size_t *len)
{
	const struct dns_watch_opts *o = w->o;
	size_t cap = 512 + w->n_want * (strlen(o->owner) + INET6_ADDRSTRLEN + 48);
	char *s = malloc(cap);
	if (s == NULL)
		return NULL;
	size_t n = (size_t)snprintf(s, cap,
		"server %s %d\nzone %s.\nupdate delete %s A\nupdate delete %s AAAA\n",
		o->server, o->port, o->zone, o->owner, o->owner);
	for (size_t i = 0; i < w->n_want && n < cap; i++)
		n += (size_t)snprintf(s + n, cap - n, "update add %s %" PRIu64 " IN %s %s\n", o->owner,
				      o->ttl, w->want[i].family == AF_INET ? "A" : "AAAA", w->want[i].addr);
	if (n < cap)
		n += (size_t)snprintf(s + n, cap - n, "send\n");
	if (n >= cap) {
		free(s);
		return NULL;
	}
	*len = n;
	return s;
}

/*
 * Runs nsupdate with the script on its stdin and waits for it, serving the
 * ZooKeeper session meanwhile (nsupdate may wait for a slow server; our
 * session must not expire for that). Returns true when it exited 0.
 */
static bool push(struct dwatch *w)
{
	const struct dns_watch_opts *o = w->o;
	size_t len = 0;
	char *script = update_script(w, &len);
	int fds[2] = { -1, -1 };
	pid_t pid = -1;
	bool ok = false;
	if (script == NULL) {
		ctl_err("dns: out of memory for the update");
		goto done;
	}
	if (pipe2(fds, O_CLOEXEC) != 0) {
		ctl_err("dns: pipe: %s", strerror(errno));
		goto done;
	}
	const char *argv[8];
	int a = 0;
	argv[a++] = o->nsupdate;
	argv[a++] = "-v";          /* TCP: no lost datagram to wait out */
	argv[a++] = "-t";
	argv[a++] = "5";
	if (o->key_file != NULL) {
		argv[a++] = "-k";
		argv[a++] = o->key_file;
	}
	argv[a] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		ctl_err("dns: fork: %s", strerror(errno));
		goto done;
	}
	if (pid == 0) {
		if (dup2(fds[0], STDIN_FILENO) < 0)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "zkrouterctl: dns: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[0]);
	fds[0] = -1;
	/* The script is a few hundred bytes: within the pipe's buffer, so
	 * this write does not wait for the child. */
	for (size_t off = 0; off < len;) {
		ssize_t k = write(fds[1], script + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ctl_err("dns: writing the update to %s: %s", o->nsupdate, strerror(errno));
			break;
		}
		off += (size_t)k;
	}
	close(fds[1]);
	fds[1] = -1;
	uint64_t deadline = ctl_now_ms() + NSUPDATE_KILL_MS;
	int status = 0;
	bool never = false;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			ctl_err("dns: waitpid: %s", strerror(errno));
			goto done;
		}
		if (ctl_now_ms() > deadline) {
			ctl_err("dns: %s did not finish within %d ms; killed", o->nsupdate, NSUPDATE_KILL_MS);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			goto done;
		}
		ctl_zk_run_until(&w->c->conn, &never, 10);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		ok = true;
	else if (WIFEXITED(status))
		ctl_err("dns: %s exited with status %d: update not applied", o->nsupdate, WEXITSTATUS(status));
	else
		ctl_err("dns: %s ended by signal %d: update not applied", o->nsupdate,
			WIFSIGNALED(status) ? WTERMSIG(status) : 0);
done:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	free(script);
	return ok;
}

static void describe(const struct dwatch *w, char *out, size_t outlen)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < w->n_want && n + 1 < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? " " : "", w->want[i].addr);
	if (n >= outlen && outlen > 4)
		strcpy(out + outlen - 4, "...");
}

int ctl_dns_watch(struct ctl *c, const struct dns_watch_opts *o)
{
	struct dwatch w = { .c = c, .o = o, .dirty = true };
	struct event *sigint = evsignal_new(c->conn.base, SIGINT, on_signal, &w);
	struct event *sigterm = evsignal_new(c->conn.base, SIGTERM, on_signal, &w);
	int rc = CTL_EXIT_OK;
	if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
	    evsignal_add(sigterm, NULL) != 0) {
		ctl_err("cannot install signal handlers");
		rc = CTL_EXIT_FAIL;
		goto done;
	}
	/* nsupdate exiting before it read the script must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	note("dns: watching /routers for %s (zone %s., server %s port %d%s)", o->owner, o->zone,
	     o->server, o->port, o->key_file ? ", TSIG" : ", no TSIG key");
	bool connected = true, pending = false, warned_empty = false, read_failed = false;
	int retry_ms = RETRY_MIN_MS;
	uint64_t retry_at = 0, changed_at = 0;
	while (!w.stop) {
		if (w.dirty && c->conn.connected) {
			struct dns_rr *rrs;
			size_t n;
			int live;
			w.dirty = false;
			read_failed = ctl_dns_records(c, watcher, &w, false, &rrs, &n, &live) != CTL_EXIT_OK;
			if (read_failed) {
				w.dirty = true;  /* retried after the pause below */
			} else if (n == 0) {
				free(rrs);
				if (!warned_empty)
					note("dns: no live router advertises a usable address (%d in /routers); "
					     "the zone keeps its records", live);
				warned_empty = true;
			} else {
				warned_empty = false;
				free(w.want);
				w.want = rrs;
				w.n_want = n;
				bool same = w.have_pushed && ctl_dns_same(w.want, w.n_want, w.pushed, w.n_pushed);
				if (!same && !pending) {
					pending = true;
					retry_ms = RETRY_MIN_MS;
					retry_at = 0;
					changed_at = ctl_now_ms();
				} else if (same) {
					pending = false;
				}
			}
		}
		if (pending && ctl_now_ms() >= retry_at) {
			char list[512];
			describe(&w, list, sizeof(list));
			uint64_t t0 = ctl_now_ms();
			if (push(&w)) {
				struct dns_rr *copy = malloc((w.n_want + 1) * sizeof(*copy));
				if (copy != NULL) {
					memcpy(copy, w.want, w.n_want * sizeof(*copy));
					free(w.pushed);
					w.pushed = copy;
					w.n_pushed = w.n_want;
					w.have_pushed = true;
				}
				pending = copy == NULL;
				note("dns: updated %s -> %s (%zu record%s; %" PRIu64 " ms after the change, "
				     "update took %" PRIu64 " ms)", o->owner, list, w.n_want,
				     w.n_want == 1 ? "" : "s", ctl_now_ms() - changed_at, ctl_now_ms() - t0);
			} else {
				retry_at = ctl_now_ms() + (uint64_t)retry_ms;
				note("dns: update of %s failed; retrying in %d ms", o->owner, retry_ms);
				retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
			}
		}
		/* A read that failed (and said why) is retried once a second. */
		int wait_ms = w.dirty && !read_failed ? 200 : 1000;
		if (pending) {
			uint64_t now = ctl_now_ms();
			int left = retry_at > now ? (int)(retry_at - now) : 0;
			if (left < wait_ms)
				wait_ms = left;
		}
		w.wake = false;
		if (wait_ms > 0)
			ctl_zk_run_until(&c->conn, &w.wake, wait_ms);
		if (connected && !c->conn.connected) {
			note("dns: disconnected from ZooKeeper; the zone keeps its records");
			connected = false;
		} else if (!connected && c->conn.connected) {
			note("dns: reconnected to ZooKeeper%s", c->conn.expired ? " on a new session" : "");
			/* After an expiry every watch is gone; a plain reconnect may
			 * have missed nothing, but a read is cheap. */
			c->conn.expired = false;
			w.dirty = true;
			connected = true;
		}
	}
	note("dns: stopped");
done:
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	free(w.want);
	free(w.pushed);
	return rc;
}
