/*
 * Series of /metrics about the process and its ZooKeeper session
 * (admin-int.h). The process_* names and meanings are the ones every
 * Prometheus client library exports, so the usual dashboards and alerts
 * (file descriptors near their limit, memory growth, restarts through the
 * start time) work unchanged. They are read from /proc at each scrape.
 */
#include <config.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "node/admin-int.h"
#include "registry/router.h"
#include "registry/session.h"

/* The system's boot time (Unix seconds), for the process's start time. */
static bool boot_time(uint64_t *out)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	bool ok = false;

	if (f == NULL)
		return false;
	while (!ok && fgets(line, sizeof(line), f) != NULL)
		ok = sscanf(line, "btime %" SCNu64, out) == 1;
	fclose(f);
	return ok;
}

/* Fields 14, 15, 22, 23 and 24 of /proc/self/stat (proc(5)), read after
 * the command name, which may hold spaces and parentheses. */
static bool self_stat(uint64_t *utime, uint64_t *stime, uint64_t *start, uint64_t *vsize,
		      uint64_t *rss_pages)
{
	FILE *f = fopen("/proc/self/stat", "re");
	char buf[1024];
	size_t n;
	char *p;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return false;
	/* After ") ": state (3), then fields 4..; skip to 14. */
	return sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %" SCNu64 " %" SCNu64
		      " %*d %*d %*d %*d %*d %*d %" SCNu64 " %" SCNu64 " %" SCNu64,
		      utime, stime, start, vsize, rss_pages) == 5;
}

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n > 0 ? n - 1 : 0;   /* not the one reading the directory */
}

void admin_process_metrics(struct evbuffer *b)
{
	uint64_t ut, st, start, vsize, rss, btime;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds = open_fds();
	struct rlimit rl;
	char v[64];

	if (hz > 0 && page > 0 && self_stat(&ut, &st, &start, &vsize, &rss)) {
		snprintf(v, sizeof(v), "%.2f", (double)(ut + st) / (double)hz);
		admin_metric_text(b, "process_cpu_seconds_total", "counter",
				  "Total user and system CPU time spent in seconds.", v);
		admin_metric(b, "process_resident_memory_bytes", "gauge",
			     "Resident memory size in bytes.", rss * (uint64_t)page);
		admin_metric(b, "process_virtual_memory_bytes", "gauge",
			     "Virtual memory size in bytes.", vsize);
		if (boot_time(&btime)) {
			snprintf(v, sizeof(v), "%.2f", (double)btime + (double)start / (double)hz);
			admin_metric_text(b, "process_start_time_seconds", "gauge",
					  "Start time of the process since unix epoch in seconds.", v);
		}
	}
	if (fds >= 0)
		admin_metric(b, "process_open_fds", "gauge", "Number of open file descriptors.",
			     (uint64_t)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		admin_metric(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
			     rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
}

void admin_zk_metrics(struct zkr_router *r, struct evbuffer *b)
{
	struct zkr_router_zk_stats z;
	char v[32];

	zkr_router_zk_stats(r, &z);
	admin_metric(b, "zkrouter_zk_connected", "gauge", "1 while the ZooKeeper session is connected.",
		     strcmp(z.state, "connected") == 0);
	evbuffer_add_printf(b, "# HELP zkrouter_zk_session_state The ZooKeeper session's state "
			    "(1 for the current one).\n# TYPE zkrouter_zk_session_state gauge\n");
	for (size_t i = 0; i < ZKR_SESSION_STATES; i++)
		evbuffer_add_printf(b, "zkrouter_zk_session_state{state=\"%s\"} %d\n",
				    zkr_session_state_names[i], strcmp(z.state, zkr_session_state_names[i]) == 0);
	admin_metric(b, "zkrouter_zk_sessions_total", "counter",
		     "ZooKeeper sessions established: the first, and a new one after each expiry.", z.sessions);
	admin_metric(b, "zkrouter_zk_session_expirations_total", "counter",
		     "ZooKeeper sessions lost (expired, or refused on reconnect).", z.expirations);
	admin_metric(b, "zkrouter_zk_disconnects_total", "counter",
		     "Connections to ZooKeeper lost (the session may survive them).", z.disconnects);
	admin_metric(b, "zkrouter_zk_reconnects_total", "counter",
		     "Connections to ZooKeeper regained on the same session.", z.reconnects);
	snprintf(v, sizeof(v), "%.3f", (double)z.unconfirmed_ms / 1000.0);
	admin_metric_text(b, "zkrouter_table_unconfirmed_seconds", "gauge",
			  "Seconds since the routing table was last known to be ZooKeeper's view (0 while "
			  "connected and in sync).", v);
}
