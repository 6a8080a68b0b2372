/*
 * tablewatch: runs a zkr_router (session + watcher + membership, exactly
 * what zkrouterd embeds) and writes every table it publishes as stable
 * text, so the shell tests can assert on what a router would serve.
 *
 *   tablewatch --zk CONNECT --out FILE [--node-id ID] [--timeout MS]
 *              [--auth U:P] [--listen ADDR] [--debug]
 *
 * FILE is replaced atomically (write + rename) on each publication:
 *
 *   generation 3
 *   digest <64 hex>
 *   app a.example.com balance=round-robin retries=2 instances=1
 *   instance a.example.com i1 127.0.0.1:8080 weight=100 zone=- up
 *
 * Apps and instances come in table order (sorted), so equal tables give
 * equal files apart from the generation. A line "published <gen> <digest>"
 * also goes to stdout per publication. SIGTERM/SIGINT close the session
 * (our /routers node goes at once) and exit 0.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "registry/log.h"
#include "registry/record.h"
#include "registry/router.h"

struct tw {
	struct event_base *base;
	const char *out;
};

static void write_table(const struct tw *tw, const struct route_table *t)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", tw->out);
	FILE *f = fopen(tmp, "w");
	if (f == NULL) {
		log_error("tablewatch: cannot write %s", tmp);
		return;
	}
	fprintf(f, "generation %llu\ndigest %s\n", (unsigned long long)t->generation, t->digest_hex);
	for (size_t i = 0; i < t->n_apps; i++) {
		const struct route_app *a = t->apps[i];
		const struct route_app_config *c = &a->config;
		fprintf(f, "app %s balance=%s retries=%d connect_timeout_ms=%u sticky=%s https=%d backend=%s "
			"instances=%zu\n",
			a->domain, record_balance_name(c->balance), c->retries, c->connect_timeout_ms,
			c->sticky_cookie ? c->sticky_cookie : "-", c->redirect_https ? 1 : 0,
			c->backend_h2c ? "h2c" : "http1", a->n_instances);
		for (size_t k = 0; k < a->n_instances; k++) {
			const struct route_instance *in = &a->instances[k];
			fprintf(f, "instance %s %s %s:%u weight=%u zone=%s %s\n", a->domain, in->id, in->host,
				in->port, in->weight, in->zone ? in->zone : "-", in->draining ? "draining" : "up");
		}
	}
	if (fclose(f) != 0 || rename(tmp, tw->out) != 0)
		log_error("tablewatch: cannot replace %s", tw->out);
}

static void on_table(struct route_table *t, void *arg)
{
	struct tw *tw = arg;
	write_table(tw, t);
	printf("published %llu %s %zu\n", (unsigned long long)t->generation, t->digest_hex, t->n_apps);
	fflush(stdout);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	struct zkr_router_opts o = { .session_timeout_ms = 10000, .node_id = "tablewatch", .version = "test" };
	struct tw tw = { 0 };
	const char *listen[1];
	enum zkr_log_level level = ZKR_LOG_INFO;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--debug") == 0) {
			level = ZKR_LOG_DEBUG;
			continue;
		}
		if (v == NULL)
			goto usage;
		if (strcmp(argv[i], "--zk") == 0)
			o.connect = v;
		else if (strcmp(argv[i], "--out") == 0)
			tw.out = v;
		else if (strcmp(argv[i], "--node-id") == 0)
			o.node_id = v;
		else if (strcmp(argv[i], "--timeout") == 0)
			o.session_timeout_ms = atoi(v);
		else if (strcmp(argv[i], "--auth") == 0)
			o.auth = v;
		else if (strcmp(argv[i], "--listen") == 0) {
			listen[0] = v;
			o.listen = listen;
			o.n_listen = 1;
		} else
			goto usage;
		i++;
	}
	if (o.connect == NULL || tw.out == NULL)
		goto usage;
	zkr_log_init("tablewatch", level, false);

	tw.base = event_base_new();
	if (tw.base == NULL)
		return 1;
	char why[256];
	struct zkr_router *r = zkr_router_new(tw.base, &o, on_table, &tw, why, sizeof(why));
	if (r == NULL) {
		fprintf(stderr, "tablewatch: %s\n", why);
		return 2;
	}
	struct event *term = evsignal_new(tw.base, SIGTERM, on_signal, tw.base);
	struct event *intr = evsignal_new(tw.base, SIGINT, on_signal, tw.base);
	if (term == NULL || intr == NULL || event_add(term, NULL) != 0 || event_add(intr, NULL) != 0)
		return 1;
	event_base_dispatch(tw.base);
	zkr_router_free(r);
	event_free(term);
	event_free(intr);
	event_base_free(tw.base);
	return 0;
usage:
	fprintf(stderr, "usage: tablewatch --zk CONNECT --out FILE [--node-id ID] [--timeout MS] "
			"[--auth U:P] [--listen ADDR] [--debug]\n");
	return 2;
}
