/*
 * zkrouterctl watch: prints each change to apps, instances and routers as
 * one line (or one JSON object) as it happens, until SIGINT/SIGTERM.
 *
 * Watchers only note which path changed; the main loop re-reads that path
 * with a fresh watch and prints the difference against what it saw last,
 * so a burst of events costs one read per path. After a session expiry
 * every watch is gone: it re-reads everything and prints only what changed
 * meanwhile.
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "registry/ctl/ctl.h"

#define PATH_LEN 600

struct wapp {
	char *domain;
	char *cfg;                 /* raw AppConfig bytes, to detect changes */
	int cfglen;
	bool have_cfg;
	struct String_vector ids;  /* instance ids, sorted */
	bool listed;
};

struct wrouter {
	char *id;
	char *data;
	int len;
};

struct watch {
	struct ctl *c;
	struct wapp *apps;
	int n_apps;
	struct wrouter *routers;
	int n_routers;
	char **dirty;              /* paths to re-read */
	int n_dirty;
	bool stop;
	bool wake;                 /* something to do: leave the loop */
};

static void mark_dirty(struct watch *w, const char *path)
{
	for (int i = 0; i < w->n_dirty; i++)
		if (strcmp(w->dirty[i], path) == 0)
			return;
	char **d = realloc(w->dirty, sizeof(char *) * (size_t)(w->n_dirty + 1));
	char *p = strdup(path);
	if (d == NULL || p == NULL) {
		free(p);
		if (d != NULL)
			w->dirty = d;
		ctl_err("out of memory: a change may be missed");
		return;
	}
	w->dirty = d;
	w->dirty[w->n_dirty++] = p;
	w->wake = true;
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	if (type == ZOO_SESSION_EVENT || path == NULL)
		return;
	mark_dirty(ctx, path);
}

/* ---- output ------------------------------------------------------------- */

static void event_head(struct watch *w, const char *event)
{
	uint64_t now = ctl_now_ms();
	if (w->c->json) {
		printf("{\"time_ms\":%" PRIu64 ",\"event\":\"%s\"", now, event);
	} else {
		char when[40];
		ctl_format_time(now, when, sizeof(when));
		printf("%s %-10s", when, event);
	}
}

static void event_end(struct watch *w)
{
	printf(w->c->json ? "}\n" : "\n");
	fflush(stdout);
}

static void print_note(struct watch *w, const char *msg)
{
	event_head(w, "note");
	if (w->c->json) {
		printf(",\"message\":");
		json_str(stdout, msg);
	} else {
		printf(" %s", msg);
	}
	event_end(w);
}

static void print_app(struct watch *w, const char *event, const char *domain, const char *data, int len)
{
	char why[RECORD_WHY_MAX] = "";
	if (data == NULL && len < 0 && strcmp(event, "app-") != 0)
		snprintf(why, sizeof(why), "config not readable with these credentials");
	record_app_config *cfg = data != NULL || len == 0
		? record_app_config_decode((const uint8_t *)(data ? data : ""), (size_t)len, why, sizeof(why))
		: NULL;
	event_head(w, event);
	if (w->c->json) {
		printf(",\"domain\":");
		json_str(stdout, domain);
		if (cfg != NULL) {
			printf(",\"config\":");
			ctl_print_app_config_json(stdout, cfg);
		} else if (why[0]) {
			printf(",\"error\":");
			json_str(stdout, why);
		}
	} else {
		char sum[512] = "";
		if (cfg != NULL)
			ctl_app_config_summary(cfg, sum, sizeof(sum));
		printf(" %s%s%s", domain, sum[0] ? " " : "", sum);
		if (why[0])
			printf(" (%s)", why);
	}
	record_app_config_free(cfg);
	event_end(w);
}

static void print_instance(struct watch *w, const char *event, const char *domain, const char *id,
			   const record_instance *r, const char *why)
{
	event_head(w, event);
	if (w->c->json) {
		printf(",\"domain\":");
		json_str(stdout, domain);
		if (r != NULL) {
			printf(",\"instance\":{");
			ctl_print_instance_fields(stdout, id, r);
			printf("}");
		} else {
			printf(",\"id\":");
			json_str(stdout, id);
			if (why != NULL) {
				printf(",\"error\":");
				json_str(stdout, why);
			}
		}
	} else {
		printf(" %s %s", domain, id);
		if (r != NULL)
			printf(strchr(r->host, ':') ? " [%s]:%u weight=%u%s%s" : " %s:%u weight=%u%s%s",
			       r->host, r->port, r->weight, r->zone ? " zone=" : "", r->zone ? r->zone : "");
		if (why != NULL)
			printf(" INVALID: %s", why);
	}
	event_end(w);
}

static void print_router(struct watch *w, const char *event, const char *id, const char *data, int len)
{
	char why[RECORD_WHY_MAX] = "";
	record_router_node *r = data != NULL
		? record_router_node_decode((const uint8_t *)data, (size_t)len, why, sizeof(why)) : NULL;
	event_head(w, event);
	if (w->c->json) {
		printf(",\"id\":");
		json_str(stdout, id);
		if (r != NULL) {
			printf(",\"generation\":%" PRIu64 ",\"digest\":", (uint64_t)r->table_generation);
			json_str(stdout, r->table_digest);
			json_str_array(stdout, "listen", r->listen, r->n_listen);
			json_str_array(stdout, "tls_listen", r->tls_listen, r->n_tls_listen);
		} else if (why[0]) {
			printf(",\"error\":");
			json_str(stdout, why);
		}
	} else {
		printf(" %s", id);
		if (r != NULL) {
			printf(" generation=%" PRIu64 " digest=%.12s", (uint64_t)r->table_generation,
			       r->table_digest ? r->table_digest : "-");
			if (r->n_listen + r->n_tls_listen > 0) {
				char listen[256];

				ctl_router_addresses(listen, sizeof(listen), r->listen, r->n_listen,
						     r->tls_listen, r->n_tls_listen);
				printf(" listen=%s", listen);
			}
		} else if (why[0]) {
			printf(" INVALID: %s", why);
		}
	}
	record_router_node_free(r);
	event_end(w);
}

/* ---- model -------------------------------------------------------------- */

/* Worth another try later; anything else (ZNOAUTH...) is reported once. */
static bool transient(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONEXPIRED ||
	       rc == ZCLOSING || rc == ZINVALIDSTATE || rc == ZBADARGUMENTS;
}

static struct wapp *find_app(struct watch *w, const char *domain)
{
	for (int i = 0; i < w->n_apps; i++)
		if (strcmp(w->apps[i].domain, domain) == 0)
			return &w->apps[i];
	return NULL;
}

static bool in_sorted(const struct String_vector *v, const char *s)
{
	for (int i = 0; i < v->count; i++)
		if (strcmp(v->data[i], s) == 0)
			return true;
	return false;
}

/* Returns false when the read failed for a reason worth retrying. */
static bool read_instances(struct watch *w, struct wapp *a, bool announce)
{
	char ipath[PATH_LEN];
	snprintf(ipath, sizeof(ipath), "/apps/%s/instances", a->domain);
	struct String_vector now;
	int rc = ctl_zk_wchildren(&w->c->conn, ipath, watcher, w, &now);
	if (rc == ZNONODE || (rc != ZOK && !transient(rc))) {
		/* ZNONODE: the app's data watch reports the removal. */
		if (rc != ZNONODE && !a->listed) {
			char msg[PATH_LEN + 80];
			snprintf(msg, sizeof(msg), "cannot list %s: %s", ipath, ctl_zk_strerror(rc));
			print_note(w, msg);
		}
		memset(&now, 0, sizeof(now));
	} else if (rc != ZOK) {
		return false;
	}
	for (int i = 0; i < a->ids.count; i++)
		if (!in_sorted(&now, a->ids.data[i]))
			print_instance(w, "instance-", a->domain, a->ids.data[i], NULL, NULL);
	for (int i = 0; i < now.count; i++) {
		if (in_sorted(&a->ids, now.data[i]))
			continue;
		char path[PATH_LEN * 2], why[RECORD_WHY_MAX] = "";
		char *data = NULL;
		int len = 0;
		snprintf(path, sizeof(path), "%s/%s", ipath, now.data[i]);
		rc = ctl_zk_get(&w->c->conn, path, &data, &len, NULL);
		if (rc == ZNONODE)
			continue;
		record_instance *r = rc == ZOK
			? record_instance_decode((const uint8_t *)(data ? data : ""), (size_t)len, why, sizeof(why))
			: NULL;
		if (rc != ZOK)
			snprintf(why, sizeof(why), "cannot read: %s", ctl_zk_strerror(rc));
		if (announce || r == NULL)
			print_instance(w, "instance+", a->domain, now.data[i], r, r ? NULL : why);
		record_instance_free(r);
		free(data);
	}
	deallocate_String_vector(&a->ids);
	a->ids = now;
	a->listed = true;
	return true;
}

static bool read_app(struct watch *w, const char *domain)
{
	char path[PATH_LEN];
	snprintf(path, sizeof(path), "/apps/%s", domain);
	char *data = NULL;
	int len = 0;
	int rc = ctl_zk_wget(&w->c->conn, path, watcher, w, &data, &len, NULL);
	struct wapp *a = find_app(w, domain);
	if (rc == ZNONODE) {
		if (a != NULL) {
			for (int i = 0; i < a->ids.count; i++)
				print_instance(w, "instance-", domain, a->ids.data[i], NULL, NULL);
			print_app(w, "app-", domain, NULL, -1);
			free(a->domain);
			free(a->cfg);
			deallocate_String_vector(&a->ids);
			*a = w->apps[--w->n_apps];
		}
		return true;
	}
	if (rc != ZOK && transient(rc))
		return false;
	if (rc != ZOK) {
		/* Unreadable (an ACL): show the app once, with the reason. */
		free(data);
		data = NULL;
		len = -1;
	}
	if (a == NULL) {
		struct wapp *na = realloc(w->apps, sizeof(*na) * (size_t)(w->n_apps + 1));
		if (na == NULL)
			goto oom;
		w->apps = na;
		a = &w->apps[w->n_apps];
		memset(a, 0, sizeof(*a));
		if ((a->domain = strdup(domain)) == NULL)
			goto oom;
		w->n_apps++;
		print_app(w, "app+", domain, data, len);
	} else if (!a->have_cfg || a->cfglen != len || (len > 0 && memcmp(a->cfg, data, (size_t)len) != 0)) {
		print_app(w, "app~", domain, data, len);
	}
	free(a->cfg);
	a->cfg = data;
	a->cfglen = len;
	a->have_cfg = true;
	return read_instances(w, a, true);
oom:
	free(data);
	ctl_err("out of memory");
	w->stop = true;
	return true;
}

static bool read_apps(struct watch *w)
{
	struct String_vector now;
	int rc = ctl_zk_wchildren(&w->c->conn, "/apps", watcher, w, &now);
	if (rc == ZNONODE) {
		/* Someone removed the whole tree: report it, keep the routers. */
		print_note(w, "/apps is gone (run `zkrouterctl init` to recreate it)");
		return true;
	}
	if (rc != ZOK)
		return false;
	for (int i = 0; i < now.count; i++)
		if (find_app(w, now.data[i]) == NULL && !read_app(w, now.data[i])) {
			char path[PATH_LEN];
			snprintf(path, sizeof(path), "/apps/%s", now.data[i]);
			mark_dirty(w, path);
		}
	/* Removals show up through each app's data watch; after an expiry the
	 * watches are gone, so compare here too. */
	for (int i = w->n_apps - 1; i >= 0; i--)
		if (!in_sorted(&now, w->apps[i].domain))
			read_app(w, w->apps[i].domain);
	deallocate_String_vector(&now);
	return true;
}

static struct wrouter *find_router(struct watch *w, const char *id)
{
	for (int i = 0; i < w->n_routers; i++)
		if (strcmp(w->routers[i].id, id) == 0)
			return &w->routers[i];
	return NULL;
}

static bool read_router(struct watch *w, const char *id)
{
	char path[PATH_LEN];
	snprintf(path, sizeof(path), "/routers/%s", id);
	char *data = NULL;
	int len = 0;
	int rc = ctl_zk_wget(&w->c->conn, path, watcher, w, &data, &len, NULL);
	struct wrouter *r = find_router(w, id);
	if (rc == ZNONODE) {
		if (r != NULL) {
			print_router(w, "router-", id, NULL, 0);
			free(r->id);
			free(r->data);
			*r = w->routers[--w->n_routers];
		}
		return true;
	}
	if (rc != ZOK)
		return false;
	if (r == NULL) {
		struct wrouter *nr = realloc(w->routers, sizeof(*nr) * (size_t)(w->n_routers + 1));
		char *copy = strdup(id);
		if (nr == NULL || copy == NULL) {
			if (nr != NULL)
				w->routers = nr;
			free(copy);
			free(data);
			return true;
		}
		w->routers = nr;
		r = &w->routers[w->n_routers++];
		r->id = copy;
		r->data = NULL;
		r->len = 0;
		print_router(w, "router+", id, data ? data : "", len);
	} else if (r->len != len || (len > 0 && memcmp(r->data, data, (size_t)len) != 0)) {
		print_router(w, "router~", id, data ? data : "", len);
	}
	free(r->data);
	r->data = data;
	r->len = len;
	return true;
}

static bool read_routers(struct watch *w)
{
	struct String_vector now;
	int rc = ctl_zk_wchildren(&w->c->conn, "/routers", watcher, w, &now);
	if (rc == ZNONODE)
		return true;
	if (rc != ZOK)
		return false;
	for (int i = 0; i < now.count; i++)
		if (find_router(w, now.data[i]) == NULL && !read_router(w, now.data[i])) {
			char path[PATH_LEN];
			snprintf(path, sizeof(path), "/routers/%s", now.data[i]);
			mark_dirty(w, path);
		}
	for (int i = w->n_routers - 1; i >= 0; i--)
		if (!in_sorted(&now, w->routers[i].id))
			read_router(w, w->routers[i].id);
	deallocate_String_vector(&now);
	return true;
}

/* Re-reads one changed path; false to retry later. */
static bool refresh(struct watch *w, const char *path)
{
	if (strcmp(path, "/apps") == 0)
		return read_apps(w);
	if (strcmp(path, "/routers") == 0)
		return read_routers(w);
	if (strncmp(path, "/routers/", 9) == 0)
		return read_router(w, path + 9);
	if (strncmp(path, "/apps/", 6) == 0) {
		const char *d = path + 6;
		const char *slash = strchr(d, '/');
		if (slash == NULL)
			return read_app(w, d);
		if (strcmp(slash, "/instances") == 0) {
			char domain[PATH_LEN];
			snprintf(domain, sizeof(domain), "%.*s", (int)(slash - d), d);
			struct wapp *a = find_app(w, domain);
			return a == NULL || read_instances(w, a, true);
		}
	}
	return true;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct watch *w = arg;
	w->stop = true;
	w->wake = true;
}

int ctl_cmd_watch(struct ctl *c, int argc, char **argv)
{
	if (argc > 1)
		return ctl_usage_err("watch: unexpected argument \"%s\"", argv[1]);
	if (!ctl_connect(c))
		return CTL_EXIT_FAIL;
	struct Stat st;
	int rc = ctl_zk_exists(&c->conn, "/apps", &st);
	if (rc == ZNONODE) {
		ctl_err("/apps does not exist: run `zkrouterctl init` first");
		return CTL_EXIT_FAIL;
	}
	if (rc != ZOK)
		return ctl_zk_fail("cannot read", "/apps", rc);
	struct watch w = { .c = c };
	struct event *sigint = evsignal_new(c->conn.base, SIGINT, on_signal, &w);
	struct event *sigterm = evsignal_new(c->conn.base, SIGTERM, on_signal, &w);
	if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
	    evsignal_add(sigterm, NULL) != 0) {
		ctl_err("cannot install signal handlers");
		return CTL_EXIT_FAIL;
	}
	bool connected = true, resync = true;
	while (!w.stop) {
		if (resync) {
			/* Start, or after expiry: read everything again, print the difference. */
			bool ok = read_apps(&w) && read_routers(&w);
			if (ok) {
				resync = false;
				int n = 0;
				for (int i = 0; i < w.n_apps; i++)
					n += w.apps[i].ids.count;
				char msg[160];
				snprintf(msg, sizeof(msg), "synced: %d apps, %d instances, %d routers; watching",
					 w.n_apps, n, w.n_routers);
				print_note(&w, msg);
			}
		}
		for (int i = 0; !resync && i < w.n_dirty && !w.stop;) {
			char *p = w.dirty[i];
			if (refresh(&w, p)) {
				w.dirty[i] = w.dirty[--w.n_dirty];
				free(p);
			} else {
				i++;
			}
		}
		/* Wake at once on a change; retry failed reads after a pause. */
		w.wake = false;
		ctl_zk_run_until(&c->conn, &w.wake, w.n_dirty > 0 || resync ? 200 : 1000);
		if (connected && !c->conn.connected) {
			print_note(&w, "disconnected from ZooKeeper; the changes below may arrive late");
			connected = false;
		} else if (!connected && c->conn.connected) {
			print_note(&w, c->conn.expired ? "reconnected on a new session; resyncing"
					  : "reconnected");
			if (c->conn.expired)
				resync = true;
			c->conn.expired = false;
			connected = true;
		}
	}
	event_free(sigint);
	event_free(sigterm);
	for (int i = 0; i < w.n_apps; i++) {
		free(w.apps[i].domain);
		free(w.apps[i].cfg);
		deallocate_String_vector(&w.apps[i].ids);
	}
	free(w.apps);
	for (int i = 0; i < w.n_routers; i++) {
		free(w.routers[i].id);
		free(w.routers[i].data);
	}
	free(w.routers);
	for (int i = 0; i < w.n_dirty; i++)
		free(w.dirty[i]);
	free(w.dirty);
	return CTL_EXIT_OK;
}
