/*
 * zkrouter-agent: registers one app instance in ZooKeeper and holds the
 * registration in the foreground (registry/agent/agent.h does the ZooKeeper
 * side). Around it this program adds what an operator needs from a
 * process manager's point of view:
 *
 *   --check-http PATH   register only while GET PATH on host:port answers
 *                       2xx/3xx (with rise/fall counts against flapping);
 *   -- CMD ARGS         run the app as a child, register once its port
 *                       accepts connections (with --check-http: start the
 *                       checks then, so a child still starting is not
 *                       reported failing), deregister before stopping
 *                       it, and exit with its status.
 *
 * Shutdown order matters: the node goes first (closing the session removes
 * it at once), then the child is asked to stop, so routers stop sending
 * before the app stops answering.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "registry/agent/agent.h"
#include "registry/authfile.h"
#include "registry/log.h"
#include "registry/record.h"

#define EXIT_USAGE 2
#define EXIT_REFUSED 3
#define PROBE_READY_MS 200
#define MAX_LABELS RECORD_LABELS_MAX

static const char usage_text[] =
"usage: zkrouter-agent --zk CONNECT --domain DOMAIN --host HOST --port PORT [OPTIONS] [-- CMD ARGS...]\n"
"\n"
"Registers one instance of an app in ZooKeeper (an ephemeral node\n"
"/apps/DOMAIN/instances/ID) and keeps it registered while running in the\n"
"foreground. SIGTERM, SIGINT or SIGHUP removes the node at once and exits.\n"
"\n"
"  --zk CONNECT            ZooKeeper \"host:port[,host:port...][/chroot]\" (default\n"
"                          chroot /zkrouter)\n"
"  --domain DOMAIN         the app; it must exist (`zkrouterctl app add DOMAIN`)\n"
"  --host HOST --port PORT where routers reach this instance\n"
"  --id ID                 node name, stable across restarts (default HOST:PORT)\n"
"  --weight W              1-10000 relative to the app's other instances (default 100)\n"
"  --zone Z                failure domain label\n"
"  --label KEY=VALUE       extra label (repeatable, up to 32)\n"
"  --auth USER:PASS        digest identity; needed when the app has an owner (other\n"
"                          users of the host can read a command line: prefer\n"
"                          --auth-file)\n"
"  --auth-file FILE        read USER:PASS from FILE, which only its owner may read\n"
"                          (chmod 600); default $ZKROUTER_AUTH_FILE\n"
"  --session-timeout MS    ZooKeeper session timeout (default 10000): how long the\n"
"                          node outlives a crashed agent\n"
"  --wait-app              if the app does not exist yet, keep retrying every few\n"
"                          seconds instead of exiting with status 3\n"
"  --check-http PATH       register only while GET PATH on HOST:PORT answers 2xx or\n"
"                          3xx; deregister while it fails (refused, timeout, other)\n"
"  --check-interval MS     time between checks (default 2000)\n"
"  --check-timeout MS      bound on one check (default: the interval, at most 2000)\n"
"  --check-rise N          passes in a row before registering (default 1)\n"
"  --check-fall N          failures in a row before deregistering (default 1)\n"
"  --stop-timeout MS       with CMD: wait this long after SIGTERM before SIGKILL\n"
"                          (default 10000)\n"
"  --log-level LEVEL       error, warn, info (default) or debug\n"
"  --syslog                log to syslog instead of stderr\n"
"  -h, --help, --version\n"
"\n"
"-- CMD ARGS: run the app as a child (in its own process group, which gets\n"
"SIGTERM if the agent dies); register once HOST:PORT accepts connections (or\n"
"the HTTP check passes); on SIGTERM/SIGINT deregister first, then SIGTERM the\n"
"child's process group and wait. If the child exits, deregister, end what is\n"
"left of its group, and exit with its status (128+N for signal N).\n"
"\n"
"exit status: 0 stopped by a signal; the child's status with CMD; 1 runtime\n"
"error; 2 bad arguments or invalid instance record; 3 registration refused:\n"
"the app does not exist, ZooKeeper denied access (ZNOAUTH), or another live\n"
"agent took over the same id.\n";

struct prog {
	struct event_base *base;
	struct zkr_agent *agent;
	struct event *sig_term, *sig_int, *sig_hup, *sig_chld, *probe_timer, *probe_done, *kill_timer;

	const char *host;
	uint16_t port;
	struct sockaddr_storage addr;  /* HOST:PORT, resolved once */
	socklen_t addrlen;

	const char *check_path;        /* NULL: no HTTP check */
	int check_interval_ms, check_timeout_ms, rise, fall;
	int passes, fails;             /* consecutive results */
	bool healthy;
	bool ready;                    /* child's port accepted a connection */

	struct bufferevent *probe;     /* the check in flight, or NULL */
	bool probe_ok;
	char probe_why[160];

	char **cmd;
	pid_t child;
	int child_status;              /* exit status to report */
	int stop_timeout_ms;

	bool stopping;
	int exit_code;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("zkrouter-agent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see zkrouter-agent --help)\n", stderr);
	return EXIT_USAGE;
}

static bool parse_num(const char *opt, const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		usage_error("%s: \"%s\" is not a whole number in %ld-%ld", opt, s, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

/* ---- shutdown ----------------------------------------------------------- */

static void finish(struct prog *p, int code)
{
	p->exit_code = code;
	event_base_loopexit(p->base, NULL);
}

/* Removes the node now: closing the session deletes it on the server. */
static void deregister_now(struct prog *p)
{
	if (p->agent != NULL) {
		bool was = zkr_agent_state(p->agent) == ZKR_AGENT_REGISTERED;
		zkr_agent_free(p->agent);
		p->agent = NULL;
		log_info(was ? "deregistered (session closed)" : "session closed");
	}
}

/* Stops: node first, then the child (if any); exits when it is reaped. */
static void begin_stop(struct prog *p, int code_without_child)
{
	if (p->stopping)
		return;
	p->stopping = true;
	deregister_now(p);
	if (p->probe_timer != NULL)
		evtimer_del(p->probe_timer);
	if (p->child > 0) {
		log_info("stopping the app (pid %ld) with SIGTERM", (long)p->child);
		/* The whole group: a wrapper shell may not pass signals on. */
		if (kill(-p->child, SIGTERM) != 0)
			kill(p->child, SIGTERM);
		struct timeval tv = { p->stop_timeout_ms / 1000, (p->stop_timeout_ms % 1000) * 1000 };
		evtimer_add(p->kill_timer, &tv);
		p->exit_code = code_without_child;
		return;
	}
	finish(p, code_without_child);
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	struct prog *p = arg;
	if (p->child > 0) {
		log_warn("the app (pid %ld) did not stop within %d ms; sending SIGKILL", (long)p->child,
			 p->stop_timeout_ms);
		if (kill(-p->child, SIGKILL) != 0)
			kill(p->child, SIGKILL);
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct prog *p = arg;
	log_info("%s received: deregistering", sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP");
	begin_stop(p, 0);
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct prog *p = arg;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != p->child)
			continue;
		/* What the app left behind in its process group goes with it. */
		kill(-pid, SIGTERM);
		p->child = 0;
		int code = WIFEXITED(status) ? WEXITSTATUS(status)
			 : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
		if (WIFSIGNALED(status))
			log_info("the app exited on signal %d", WTERMSIG(status));
		else
			log_info("the app exited with status %d", code);
		evtimer_del(p->kill_timer);
		if (!p->stopping) {
			/* Died on its own: take the node away, report its status. */
			p->stopping = true;
			deregister_now(p);
		} else if (p->exit_code == EXIT_REFUSED) {
			code = EXIT_REFUSED;
		}
		finish(p, code);
	}
}

/* ---- agent state ---------------------------------------------------------- */

static void on_agent(struct zkr_agent *a, enum zkr_agent_state st, int zrc, const char *msg, void *arg)
{
	struct prog *p = arg;
	if (st == ZKR_AGENT_FAILED) {
		/* The agent logged why. Stop from the loop: the agent must not be
		 * freed inside its own callback. */
		p->exit_code = EXIT_REFUSED;
		event_active(p->probe_done, EV_TIMEOUT, 0);
	}
}

/* ---- probes: port readiness and HTTP checks ------------------------------ */

/* A probe only connects while there is no HTTP check, and while a child
 * has not bound its port yet: the HTTP checks start once it has. */
static bool probing_port(const struct prog *p)
{
	return p->check_path == NULL || (p->cmd != NULL && !p->ready);
}

static void probe_result(struct prog *p, bool ok, const char *why)
{
	p->probe_ok = ok;
	snprintf(p->probe_why, sizeof(p->probe_why), "%s", why);
	/* The bufferevent is freed from the loop, not inside its own callback. */
	event_active(p->probe_done, EV_TIMEOUT, 0);
}

static void probe_read(struct bufferevent *bev, void *arg)
{
	struct prog *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
	if (eol.pos < 0) {
		if (n > 1024)
			probe_result(p, false, "no HTTP status line in the first 1 KiB");
		return;
	}
	char line[64] = "";
	evbuffer_copyout(in, line, eol.pos < (ssize_t)sizeof(line) - 1 ? (size_t)eol.pos : sizeof(line) - 1);
	/* "HTTP/1.x NNN ..." */
	int code = 0;
	if (strncmp(line, "HTTP/1.", 7) == 0 && line[8] == ' ' && sscanf(line + 9, "%3d", &code) == 1 &&
	    code >= 200 && code < 400) {
		probe_result(p, true, "");
	} else {
		char why[120];
		snprintf(why, sizeof(why), "answered \"%.40s\"", line);
		probe_result(p, false, why);
	}
}

static void probe_event(struct bufferevent *bev, short what, void *arg)
{
	struct prog *p = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (probing_port(p)) {
			probe_result(p, true, "");  /* readiness: the port accepts */
			return;
		}
		char portbuf[8];
		snprintf(portbuf, sizeof(portbuf), "%u", p->port);
		evbuffer_add_printf(bufferevent_get_output(bev),
				    "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: zkrouter-agent/%s\r\n"
				    "Connection: close\r\n\r\n", p->check_path,
				    strchr(p->host, ':') ? "[" : "", p->host, strchr(p->host, ':') ? "]" : "",
				    portbuf, PACKAGE_VERSION);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		probe_result(p, false, "timed out");
	else if (what & BEV_EVENT_EOF)
		probe_result(p, false, "connection closed before a status line");
	else
		probe_result(p, false, strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : ECONNREFUSED));
}

static void probe_start(evutil_socket_t fd, short what, void *arg)
{
	struct prog *p = arg;
	if (p->stopping || p->probe != NULL)
		return;
	p->probe = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (p->probe == NULL) {
		probe_result(p, false, "out of memory");
		return;
	}
	int ms = probing_port(p) ? PROBE_READY_MS * 5 : p->check_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	bufferevent_set_timeouts(p->probe, &tv, &tv);
	bufferevent_setcb(p->probe, probe_read, NULL, probe_event, p);
	bufferevent_enable(p->probe, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(p->probe, (struct sockaddr *)&p->addr, (int)p->addrlen) != 0)
		probe_result(p, false, "connect failed");
}

static void schedule_probe(struct prog *p, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(p->probe_timer, &tv);
}

/* A probe finished (or the agent failed): act on it from the loop. */
static void on_probe_done(evutil_socket_t fd, short what, void *arg)
{
	struct prog *p = arg;
	if (p->probe != NULL) {
		bufferevent_free(p->probe);
		p->probe = NULL;
	}
	if (p->exit_code == EXIT_REFUSED && !p->stopping) {
		begin_stop(p, EXIT_REFUSED);
		return;
	}
	if (p->stopping || p->agent == NULL)
		return;
	/* Every probe, at debug level: the warnings below name transitions
	 * only, and a reader (or a test) may need to know a probe happened. */
	if (probing_port(p))
		log_debug("probe of %s:%u: %s", p->host, p->port,
			  p->probe_ok ? "accepts connections" : "not accepting connections yet");
	else
		log_debug("health check GET %s on %s:%u: %s", p->check_path, p->host, p->port,
			  p->probe_ok ? "passes" : p->probe_why);
	if (probing_port(p)) {
		/* Readiness of a child's port: once ready, register for good,
		 * or start the HTTP checks (the first one at once). */
		if (!p->probe_ok) {
			schedule_probe(p, PROBE_READY_MS);
		} else if (p->check_path == NULL) {
			p->ready = true;
			log_info("the app accepts connections on %s:%u; registering", p->host, p->port);
			zkr_agent_start(p->agent);
		} else {
			p->ready = true;
			log_info("the app accepts connections on %s:%u; starting its health checks",
				 p->host, p->port);
			schedule_probe(p, 0);
		}
		return;
	}
	if (p->probe_ok) {
		p->fails = 0;
		if (++p->passes >= p->rise && !p->healthy) {
			p->healthy = true;
			log_info("health check GET %s passes; registering", p->check_path);
			zkr_agent_start(p->agent);
		}
	} else {
		p->passes = 0;
		/* Log the transition once, not every failed check. */
		if (++p->fails == p->fall) {
			log_warn("health check GET %s on %s:%u fails (%s); %s", p->check_path, p->host,
				 p->port, p->probe_why, p->healthy ? "deregistering" : "not registering");
			p->healthy = false;
			zkr_agent_stop(p->agent);
		}
	}
	schedule_probe(p, p->check_interval_ms);
}

/* ---- the child ------------------------------------------------------------ */

static bool spawn_child(struct prog *p)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_error("cannot start %s: %s", p->cmd[0], strerror(errno));
		return false;
	}
	if (pid == 0) {
		/* Own process group: a terminal's Ctrl-C reaches only the agent,
		 * which deregisters before stopping the app. If the agent dies
		 * anyway, the app gets SIGTERM rather than running unregistered. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* The app must not inherit the ZooKeeper socket or the loop's
		 * descriptors: only stdin, stdout and stderr cross exec. */
		if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
			long max = sysconf(_SC_OPEN_MAX);
			for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
		}
		execvp(p->cmd[0], p->cmd);
		fprintf(stderr, "zkrouter-agent: cannot run %s: %s\n", p->cmd[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	p->child = pid;
	log_info("started the app: %s (pid %ld)", p->cmd[0], (long)pid);
	return true;
}

/* ---- main ----------------------------------------------------------------- */

enum {
	OPT_ZK = 1000, OPT_DOMAIN, OPT_HOST, OPT_PORT, OPT_ID, OPT_WEIGHT, OPT_ZONE, OPT_LABEL,
	OPT_AUTH, OPT_TIMEOUT, OPT_WAIT_APP, OPT_CHECK, OPT_INTERVAL, OPT_CHECK_TIMEOUT, OPT_RISE,
	OPT_FALL, OPT_STOP_TIMEOUT, OPT_LOG_LEVEL, OPT_SYSLOG, OPT_VERSION, OPT_AUTH_FILE,
};

static bool resolve(struct prog *p)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", p->port);
	int rc = getaddrinfo(p->host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		fprintf(stderr, "zkrouter-agent: cannot resolve --host %s: %s\n", p->host, gai_strerror(rc));
		return false;
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

/* Frees what main set up, whether the loop ran or setup failed half-way:
 * under LeakSanitizer a leak at exit would change the exit status. */
static void prog_free(struct prog *p)
{
	struct event **evs[] = { &p->sig_term, &p->sig_int, &p->sig_hup, &p->sig_chld,
				 &p->probe_timer, &p->probe_done, &p->kill_timer };

	deregister_now(p);
	if (p->probe != NULL)
		bufferevent_free(p->probe);
	p->probe = NULL;
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (*evs[i] != NULL)
			event_free(*evs[i]);
		*evs[i] = NULL;
	}
	event_base_free(p->base);
	p->base = NULL;
}

/* Sets up the signals, the agent and the child, then runs the loop.
 * Returns the exit status; prog_free() releases what it set up. */
static int run(struct prog *p, const struct zkr_agent_opts *ao)
{
	char why[512];

	p->sig_term = evsignal_new(p->base, SIGTERM, on_signal, p);
	p->sig_int = evsignal_new(p->base, SIGINT, on_signal, p);
	/* A closed terminal should not leave the node behind for a session timeout. */
	p->sig_hup = evsignal_new(p->base, SIGHUP, on_signal, p);
	p->sig_chld = evsignal_new(p->base, SIGCHLD, on_sigchld, p);
	p->probe_timer = evtimer_new(p->base, probe_start, p);
	p->probe_done = evtimer_new(p->base, on_probe_done, p);
	p->kill_timer = evtimer_new(p->base, on_kill_timer, p);
	if (p->sig_term == NULL || p->sig_int == NULL || p->sig_hup == NULL || p->sig_chld == NULL ||
	    p->probe_timer == NULL || p->probe_done == NULL || p->kill_timer == NULL ||
	    evsignal_add(p->sig_term, NULL) != 0 ||
	    evsignal_add(p->sig_int, NULL) != 0 || evsignal_add(p->sig_hup, NULL) != 0 ||
	    evsignal_add(p->sig_chld, NULL) != 0) {
		log_error("cannot set up signal handling");
		return 1;
	}

	p->agent = zkr_agent_new(p->base, ao, on_agent, p, why, sizeof(why));
	if (p->agent == NULL) {
		fprintf(stderr, "zkrouter-agent: %s\n", why);
		return EXIT_USAGE;
	}
	/* Only the local probes need the address, resolved once. */
	if ((p->check_path != NULL || p->cmd != NULL) && !resolve(p))
		return EXIT_USAGE;
	log_info("instance %s of %s at %s:%u (%s)", zkr_agent_path(p->agent), ao->domain, ao->host,
		 ao->port,
		 p->check_path ? "registering while the HTTP check passes"
		 : p->cmd ? "registering once the app accepts connections" : "registering now");

	p->exit_code = 0;
	if (p->cmd != NULL && !spawn_child(p))
		return 1;
	if (p->check_path != NULL || p->cmd != NULL)
		schedule_probe(p, 0);
	else
		zkr_agent_start(p->agent);

	event_base_dispatch(p->base);
	return p->exit_code;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "zk", required_argument, NULL, OPT_ZK },
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "host", required_argument, NULL, OPT_HOST },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "id", required_argument, NULL, OPT_ID },
		{ "weight", required_argument, NULL, OPT_WEIGHT },
		{ "zone", required_argument, NULL, OPT_ZONE },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "auth", required_argument, NULL, OPT_AUTH },
		{ "auth-file", required_argument, NULL, OPT_AUTH_FILE },
		{ "session-timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "wait-app", no_argument, NULL, OPT_WAIT_APP },
		{ "check-http", required_argument, NULL, OPT_CHECK },
		{ "check-interval", required_argument, NULL, OPT_INTERVAL },
		{ "check-timeout", required_argument, NULL, OPT_CHECK_TIMEOUT },
		{ "check-rise", required_argument, NULL, OPT_RISE },
		{ "check-fall", required_argument, NULL, OPT_FALL },
		{ "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct prog p = {
		.check_interval_ms = 2000, .check_timeout_ms = -1, .rise = 1, .fall = 1,
		.stop_timeout_ms = 10000,
	};
	struct zkr_agent_opts ao = { 0 };
	struct zkr_agent_label labels[MAX_LABELS];
	enum zkr_log_level level = ZKR_LOG_INFO;
	bool use_syslog = false, have_port = false, have_interval = false;
	const char *auth_file = NULL;
	char *auth_buf = NULL, why[512];
	long v;
	int ch;

	opterr = 0;
	/* '+': everything after "--" (or the first non-option) is CMD. */
	while ((ch = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_ZK: ao.connect = optarg; break;
		case OPT_DOMAIN: ao.domain = optarg; break;
		case OPT_HOST: ao.host = p.host = optarg; break;
		case OPT_PORT:
			if (!parse_num("--port", optarg, 1, 65535, &v))
				return EXIT_USAGE;
			ao.port = p.port = (uint16_t)v;
			have_port = true;
			break;
		case OPT_ID: ao.id = optarg; break;
		case OPT_WEIGHT:
			if (!parse_num("--weight", optarg, RECORD_WEIGHT_MIN, RECORD_WEIGHT_MAX, &v))
				return EXIT_USAGE;
			ao.weight = (uint32_t)v;
			break;
		case OPT_ZONE: ao.zone = optarg; break;
		case OPT_LABEL: {
			char *eq = strchr(optarg, '=');
			if (eq == NULL || eq == optarg)
				return usage_error("--label wants KEY=VALUE, got \"%s\"", optarg);
			if (ao.n_labels == MAX_LABELS)
				return usage_error("at most %d labels", MAX_LABELS);
			*eq = '\0';
			labels[ao.n_labels].key = optarg;
			labels[ao.n_labels].value = eq + 1;
			ao.n_labels++;
			break;
		}
		case OPT_AUTH:
			if (strchr(optarg, ':') == NULL || optarg[0] == ':')
				return usage_error("--auth must be USER:PASSWORD");
			ao.auth = optarg;
			break;
		case OPT_AUTH_FILE: auth_file = optarg; break;
		case OPT_TIMEOUT:
			if (!parse_num("--session-timeout", optarg, 1000, 600000, &v))
				return EXIT_USAGE;
			ao.session_timeout_ms = (int)v;
			break;
		case OPT_WAIT_APP: ao.wait_for_app = true; break;
		case OPT_CHECK:
			if (optarg[0] != '/' || strpbrk(optarg, " \r\n\t") != NULL)
				return usage_error("--check-http PATH must start with '/' and hold no spaces");
			p.check_path = optarg;
			break;
		case OPT_INTERVAL:
			if (!parse_num("--check-interval", optarg, 100, 3600000, &v))
				return EXIT_USAGE;
			p.check_interval_ms = (int)v;
			have_interval = true;
			break;
		case OPT_CHECK_TIMEOUT:
			if (!parse_num("--check-timeout", optarg, 50, 600000, &v))
				return EXIT_USAGE;
			p.check_timeout_ms = (int)v;
			break;
		case OPT_RISE:
			if (!parse_num("--check-rise", optarg, 1, 100, &v))
				return EXIT_USAGE;
			p.rise = (int)v;
			break;
		case OPT_FALL:
			if (!parse_num("--check-fall", optarg, 1, 100, &v))
				return EXIT_USAGE;
			p.fall = (int)v;
			break;
		case OPT_STOP_TIMEOUT:
			if (!parse_num("--stop-timeout", optarg, 0, 3600000, &v))
				return EXIT_USAGE;
			p.stop_timeout_ms = (int)v;
			break;
		case OPT_LOG_LEVEL:
			if (!zkr_log_parse_level(optarg, &level))
				return usage_error("--log-level: error, warn, info or debug");
			break;
		case OPT_SYSLOG: use_syslog = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case OPT_VERSION: printf("zkrouter-agent %s\n", PACKAGE_VERSION); return 0;
		case ':': return usage_error("option %s needs a value", argv[optind - 1]);
		default: return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (strcmp(argv[optind - 1], "--") != 0)
			return usage_error("unexpected argument \"%s\" (put the command after --)", argv[optind]);
		p.cmd = argv + optind;
	}
	if (ao.connect == NULL)
		return usage_error("--zk CONNECT is required");
	if (ao.domain == NULL)
		return usage_error("--domain DOMAIN is required");
	if (!record_valid_domain(ao.domain))
		return usage_error("invalid --domain \"%s\": lower-case DNS name without port or trailing "
				   "dot, optionally starting with \"*.\"", ao.domain);
	if (ao.host == NULL || !have_port)
		return usage_error("--host HOST and --port PORT are required");
	if (have_interval && p.check_path == NULL)
		return usage_error("--check-interval needs --check-http PATH");
	if (p.check_timeout_ms < 0)
		p.check_timeout_ms = p.check_interval_ms < 2000 ? p.check_interval_ms : 2000;
	ao.labels = labels;
	if (ao.auth != NULL && auth_file != NULL)
		return usage_error("--auth and --auth-file both given: keep one");
	if (ao.auth == NULL && auth_file == NULL)
		auth_file = getenv(ZKR_AUTH_FILE_ENV);
	if (auth_file != NULL && auth_file[0] != '\0') {
		if (!zkr_auth_file_read(auth_file, &auth_buf, why, sizeof(why)))
			return usage_error("--auth-file: %s", why);
		ao.auth = auth_buf;
	}

	zkr_log_init("zkrouter-agent", level, use_syslog);
	signal(SIGPIPE, SIG_IGN);
	p.base = event_base_new();
	if (p.base == NULL) {
		log_error("cannot create the event loop");
		zkr_auth_free(auth_buf);
		return 1;
	}
	p.exit_code = run(&p, &ao);
	prog_free(&p);
	zkr_auth_free(auth_buf);
	return p.exit_code;
}
