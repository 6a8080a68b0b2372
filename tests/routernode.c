/*
 * routernode: a test tool that stands in for a router in /routers, so the
 * tests of `zkrouterctl routers`, `dns` and `watch` can set up live router
 * nodes with chosen addresses, generations and digests (including
 * disagreeing ones) without running zkrouterd.
 *
 *   routernode --zk CONNECT --id NODE [--listen ADDR]... [--admin ADDR]
 *              [--generation N] [--digest HEX] [--version V] [--raw TEXT]
 *
 * Creates /routers/NODE as an EPHEMERAL node holding a RouterNode record
 * (or the raw bytes of --raw, for garbage), prints "ready" and holds the
 * session until SIGTERM/SIGINT; exit 1 if the create fails, 2 on bad
 * arguments, 3 if ZooKeeper stays away for 10 s.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "registry/log.h"
#include "registry/record.h"
#include "registry/session.h"

struct tool {
	struct event_base *base;
	struct zkr_session *s;
	const char *path;
	uint8_t *data;
	size_t len;
	bool issued;
	int rc;
};

static void created(int rc, const char *value, const void *arg)
{
	struct tool *t = (struct tool *)arg;
	if (rc == ZCLOSING)
		return;
	if (rc != ZOK) {
		fprintf(stderr, "routernode: create %s: %s\n", t->path, zerror(rc));
		t->rc = 1;
		event_base_loopexit(t->base, NULL);
		return;
	}
	printf("ready\n");
	fflush(stdout);
}

static void on_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct tool *t = arg;
	if (ev != ZKR_SESSION_NEW)
		return;
	/* Also after an expiry, like a router re-creating its node. */
	int rc = zoo_acreate(zkr_session_zh(s), t->path, (const char *)t->data, (int)t->len,
			     &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, created, t);
	if (rc != ZOK) {
		fprintf(stderr, "routernode: create %s: %s\n", t->path, zerror(rc));
		t->rc = 1;
		event_base_loopexit(t->base, NULL);
	}
	t->issued = true;
	zkr_session_kick(s);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(((struct tool *)arg)->base, NULL);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct tool *t = arg;
	if (!t->issued) {
		fprintf(stderr, "routernode: ZooKeeper unreachable\n");
		t->rc = 3;
		event_base_loopexit(t->base, NULL);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "zk", required_argument, NULL, 'z' }, { "id", required_argument, NULL, 'i' },
		{ "listen", required_argument, NULL, 'l' }, { "admin", required_argument, NULL, 'a' },
		{ "generation", required_argument, NULL, 'g' }, { "digest", required_argument, NULL, 'd' },
		{ "version", required_argument, NULL, 'v' }, { "raw", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	record_router_node r = ZKROUTER__ROUTER_NODE__INIT;
	char *listen[16];
	const char *zk = NULL, *raw = NULL;
	struct tool t = { .rc = 0 };
	int ch;
	r.listen = listen;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'z': zk = optarg; break;
		case 'i': r.node_id = optarg; break;
		case 'l':
			if (r.n_listen == 16)
				return 2;
			listen[r.n_listen++] = optarg;
			break;
		case 'a': r.admin = optarg; break;
		case 'g': r.has_table_generation = 1; r.table_generation = strtoull(optarg, NULL, 10); break;
		case 'd': r.table_digest = optarg; break;
		case 'v': r.version = optarg; break;
		case 'r': raw = optarg; break;
		default:
			fprintf(stderr, "usage: routernode --zk CONNECT --id NODE [--listen ADDR]... [--admin ADDR]\n"
				"       [--generation N] [--digest HEX] [--version V] [--raw TEXT]\n");
			return 2;
		}
	}
	if (zk == NULL || r.node_id == NULL) {
		fprintf(stderr, "routernode: --zk and --id are required\n");
		return 2;
	}
	char why[RECORD_WHY_MAX];
	if (raw != NULL) {
		t.data = (uint8_t *)strdup(raw);
		t.len = strlen(raw);
	} else {
		t.data = record_router_node_encode(&r, &t.len, why, sizeof(why));
		if (t.data == NULL) {
			fprintf(stderr, "routernode: invalid record: %s\n", why);
			return 2;
		}
	}
	char path[300];
	snprintf(path, sizeof(path), "/routers/%s", r.node_id);
	t.path = path;
	zkr_log_init("routernode", ZKR_LOG_WARN, false);
	t.base = event_base_new();
	struct zkr_session_opts so = { .connect = zk, .timeout_ms = 4000 };
	t.s = t.base ? zkr_session_new(t.base, &so, why, sizeof(why)) : NULL;
	if (t.s == NULL || !zkr_session_subscribe(t.s, on_session, &t)) {
		fprintf(stderr, "routernode: %s\n", why);
		return 3;
	}
	struct event *term = evsignal_new(t.base, SIGTERM, on_stop, &t);
	struct event *intr = evsignal_new(t.base, SIGINT, on_stop, &t);
	struct event *timer = evtimer_new(t.base, on_timeout, &t);
	struct timeval ten = { 10, 0 };
	if (term == NULL || intr == NULL || timer == NULL)
		return 3;
	evsignal_add(term, NULL);
	evsignal_add(intr, NULL);
	evtimer_add(timer, &ten);
	event_base_dispatch(t.base);
	zkr_session_free(t.s);
	event_free(term);
	event_free(intr);
	event_free(timer);
	event_base_free(t.base);
	free(t.data);
	return t.rc;
}
