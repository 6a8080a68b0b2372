/*
 * zkrouterctl routers and dns: what the live routers say about themselves
 * in /routers. `routers` answers "have they converged?" (all on one table
 * digest); `dns` turns their advertised listen addresses into A/AAAA
 * records for the DNS round-robin in front of them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/clock.h"
#include "registry/ctl/ctl.h"
#include "registry/ctl/ctl_dns.h"

#define PATH_LEN 400

struct router_entry {
	char *id;
	record_router_node *r;     /* NULL when invalid */
	char why[RECORD_WHY_MAX];
};

/* Reads every /routers child; returns an exit code, fills *out / *n.
 * With a watcher, each read also leaves a watch (`dns --watch`). */
static int read_routers_w(struct ctl *c, watcher_fn w, void *ctx, struct router_entry **out, int *n)
{
	struct String_vector kids;
	*out = NULL;
	*n = 0;
	int rc = w != NULL ? ctl_zk_wchildren(&c->conn, "/routers", w, ctx, &kids)
			   : ctl_zk_children(&c->conn, "/routers", &kids);
	if (rc == ZNONODE) {
		ctl_err("/routers does not exist: run `zkrouterctl init` first");
		return CTL_EXIT_FAIL;
	}
	if (rc != ZOK)
		return ctl_zk_fail("cannot list", "/routers", rc);
	struct router_entry *e = calloc((size_t)kids.count + 1, sizeof(*e));
	if (e == NULL) {
		deallocate_String_vector(&kids);
		ctl_err("out of memory");
		return CTL_EXIT_FAIL;
	}
	int m = 0;
	for (int i = 0; i < kids.count; i++) {
		char path[PATH_LEN];
		char *data = NULL;
		int len = 0;
		snprintf(path, sizeof(path), "/routers/%s", kids.data[i]);
		rc = w != NULL ? ctl_zk_wget(&c->conn, path, w, ctx, &data, &len, NULL)
			       : ctl_zk_get(&c->conn, path, &data, &len, NULL);
		if (rc == ZNONODE)
			continue;  /* that router just left */
		e[m].id = kids.data[i];
		kids.data[i] = NULL;
		if (rc != ZOK)
			snprintf(e[m].why, sizeof(e[m].why), "cannot read: %s", ctl_zk_strerror(rc));
		else
			e[m].r = record_router_node_decode((const uint8_t *)(data ? data : ""), (size_t)len,
							   e[m].why, sizeof(e[m].why));
		free(data);
		m++;
	}
	deallocate_String_vector(&kids);
	*out = e;
	*n = m;
	return CTL_EXIT_OK;
}

static int read_routers(struct ctl *c, struct router_entry **out, int *n)
{
	return read_routers_w(c, NULL, NULL, out, n);
}

static void free_routers(struct router_entry *e, int n)
{
	for (int i = 0; i < n; i++) {
		free(e[i].id);
		record_router_node_free(e[i].r);
	}
	free(e);
}

/* ---- routers ----------------------------------------------------------- */

/* Converged: at least one router, each with a valid record and a
 * published table, and all on the same digest. */
static bool routers_agree(const struct router_entry *e, int n, const char **digest, int *distinct)
{
	bool agree = n > 0;

	*digest = NULL;
	*distinct = 0;
	for (int i = 0; i < n; i++) {
		const char *d = e[i].r != NULL ? e[i].r->table_digest : NULL;
		if (d == NULL) {
			agree = false;
			continue;
		}
		bool seen = false;
		for (int j = 0; j < i; j++)
			if (e[j].r != NULL && e[j].r->table_digest != NULL &&
			    strcmp(e[j].r->table_digest, d) == 0)
				seen = true;
		if (!seen)
			(*distinct)++;
		if (*digest == NULL)
			*digest = d;
		else if (strcmp(*digest, d) != 0)
			agree = false;
	}
	return agree;
}

/* Between two reads of /routers under --wait. A router rewrites its record
 * at most every ~200 ms, so reading faster would only repeat the answer. */
#define ROUTERS_WAIT_POLL_MS 50

int ctl_cmd_routers(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t wait_ms = 0;
	int ch;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			if (!ctl_parse_u64("--wait", optarg, 0, 3600000, &wait_ms))
				return CTL_EXIT_USAGE;
			break;
		case ':':
			return ctl_usage_err("routers: option %s needs a value", argv[optind - 1]);
		default:
			return ctl_usage_err("routers: unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage_err("routers: unexpected argument \"%s\"", argv[optind]);
	if (!ctl_connect(c))
		return CTL_EXIT_FAIL;
	struct router_entry *e;
	int n, rc, distinct;
	const char *digest;
	bool agree;
	uint64_t deadline = clock_now_ms() + wait_ms;
	for (;;) {
		if ((rc = read_routers(c, &e, &n)) != CTL_EXIT_OK)
			return rc;
		agree = routers_agree(e, n, &digest, &distinct);
		if (agree || clock_now_ms() >= deadline)
			break;
		free_routers(e, n);
		struct timespec ts = { 0, ROUTERS_WAIT_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}

	if (c->json) {
		printf("{\"routers\":[");
		for (int i = 0; i < n; i++) {
			const record_router_node *r = e[i].r;
			printf("%s{\"id\":", i ? "," : "");
			json_str(stdout, e[i].id);
			if (r == NULL) {
				printf(",\"error\":");
				json_str(stdout, e[i].why);
				printf("}");
				continue;
			}
			json_str_array(stdout, "listen", r->listen, r->n_listen);
			json_str_array(stdout, "tls_listen", r->tls_listen, r->n_tls_listen);
			printf(",\"admin\":");
			json_str(stdout, r->admin);
			printf(",\"version\":");
			json_str(stdout, r->version);
			printf(",\"started_at_ms\":%" PRIu64 ",\"generation\":%" PRIu64 ",\"digest\":",
			       (uint64_t)r->started_at_ms, (uint64_t)r->table_generation);
			json_str(stdout, r->table_digest);
			printf("}");
		}
		printf("],\"count\":%d,\"converged\":%s,\"digest\":", n, agree ? "true" : "false");
		json_str(stdout, agree ? digest : NULL);
		printf("}\n");
	} else if (n == 0) {
		printf("no live routers in /routers\n");
	} else {
		printf("%-20s %-30s %-22s %-10s %10s  %s\n", "NODE", "LISTEN", "ADMIN", "VERSION",
		       "GENERATION", "DIGEST");
		for (int i = 0; i < n; i++) {
			const record_router_node *r = e[i].r;
			if (r == NULL) {
				printf("%-20s INVALID: %s\n", e[i].id, e[i].why);
				continue;
			}
			char listen[256];
			ctl_router_addresses(listen, sizeof(listen), r->listen, r->n_listen, r->tls_listen,
					     r->n_tls_listen);
			printf("%-20s %-30s %-22s %-10s %10" PRIu64 "  %.12s\n", e[i].id, listen,
			       r->admin ? r->admin : "-", r->version ? r->version : "-",
			       (uint64_t)r->table_generation, r->table_digest ? r->table_digest : "(no table yet)");
		}
		if (agree)
			printf("converged: all %d router%s on table digest %.12s\n", n, n == 1 ? "" : "s", digest);
		else
			printf("NOT converged: %d distinct digest%s among %d router%s%s\n", distinct,
			       distinct == 1 ? "" : "s", n, n == 1 ? "" : "s",
			       distinct < n ? " (some have no valid record or no table yet)" : "");
	}
	free_routers(e, n);
	return agree ? CTL_EXIT_OK : CTL_EXIT_CHECK;
}

/* ---- dns ----------------------------------------------------------------- */

/* Splits "ip:port" or "[ipv6]:port" and parses the address. */
static bool parse_listen(const char *s, struct dns_rr *rr)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *end;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || (size_t)(end - s - 1) >= sizeof(host))
			return false;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
	} else {
		end = strrchr(s, ':');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (len >= sizeof(host))
			return false;
		memcpy(host, s, len);
		host[len] = '\0';
	}
	memset(rr, 0, sizeof(*rr));
	if (inet_pton(AF_INET, host, rr->bin) == 1)
		rr->family = AF_INET;
	else if (inet_pton(AF_INET6, host, rr->bin) == 1)
		rr->family = AF_INET6;
	else
		return false;
	/* Normalized text form, so duplicates compare equal. */
	return inet_ntop(rr->family, rr->bin, rr->addr, sizeof(rr->addr)) != NULL;
}

static bool unspecified(const struct dns_rr *rr)
{
	static const unsigned char zero[16];
	return memcmp(rr->bin, zero, rr->family == AF_INET ? 4 : 16) == 0;
}

static int cmp_rr(const void *a, const void *b)
{
	const struct dns_rr *x = a, *y = b;
	if (x->family != y->family)
		return x->family == AF_INET ? -1 : 1;
	return memcmp(x->bin, y->bin, 16);
}

bool ctl_dns_same(const struct dns_rr *a, size_t na, const struct dns_rr *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (cmp_rr(&a[i], &b[i]) != 0)
			return false;
	return true;
}

/* Lower-cases name in place and strips one trailing dot; checks the labels. */
static bool dns_name_ok(char *name, bool allow_wild)
{
	size_t len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!allow_wild && strncmp(name, "*.", 2) == 0)
		return false;
	if (strcmp(name, "*") == 0)
		return allow_wild;
	return record_valid_domain(name);
}

int ctl_dns_records(struct ctl *c, watcher_fn w, void *ctx, bool warn,
		    struct dns_rr **out, size_t *out_n, int *out_live)
{
	struct router_entry *e;
	int n, rc;
	*out = NULL;
	*out_n = 0;
	*out_live = 0;
	if ((rc = read_routers_w(c, w, ctx, &e, &n)) != CTL_EXIT_OK)
		return rc;
	size_t cap = 0, nrr = 0;
	for (int i = 0; i < n; i++)
		if (e[i].r != NULL)
			cap += e[i].r->n_listen;
	struct dns_rr *rrs = calloc(cap + 1, sizeof(*rrs));
	if (rrs == NULL) {
		free_routers(e, n);
		ctl_err("out of memory");
		return CTL_EXIT_FAIL;
	}
	int live = 0;
	for (int i = 0; i < n; i++) {
		if (e[i].r == NULL) {
			if (warn)
				ctl_err("warning: router %s skipped: %s", e[i].id, e[i].why);
			continue;
		}
		live++;
		for (size_t k = 0; k < e[i].r->n_listen; k++) {
			struct dns_rr rr;
			const char *l = e[i].r->listen[k];
			/* "ADDR:PORT,proxy" waits for a load balancer's PROXY
			 * header: a client sent there directly would fail. */
			if (strchr(l, ',') != NULL) {
				if (warn)
					ctl_err("warning: router %s listens on %s for a load balancer, "
						"not for clients; skipped", e[i].id, l);
				continue;
			}
			if (!parse_listen(l, &rr)) {
				if (warn)
					ctl_err("warning: router %s: listen address \"%s\" is not ip:port; "
						"skipped", e[i].id, l);
				continue;
			}
			if (unspecified(&rr)) {
				if (warn)
					ctl_err("warning: router %s listens on %s (any address), which "
						"cannot go into DNS; give it an advertised address", e[i].id, l);
				continue;
			}
			bool dup = false;
			for (size_t j = 0; j < nrr; j++)
				if (cmp_rr(&rrs[j], &rr) == 0)
					dup = true;
			if (!dup)
				rrs[nrr++] = rr;
		}
	}
	qsort(rrs, nrr, sizeof(*rrs), cmp_rr);
	free_routers(e, n);
	*out = rrs;
	*out_n = nrr;
	*out_live = live;
	return CTL_EXIT_OK;
}

/* A valid --server: an address or host name, nothing that could end a
 * line of the update script. */
static bool server_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != ':')
			return false;
	return true;
}

int ctl_cmd_dns(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "zone", required_argument, NULL, 'z' },
		{ "name", required_argument, NULL, 'n' },
		{ "ttl", required_argument, NULL, 't' },
		{ "watch", no_argument, NULL, 'w' },
		{ "server", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "tsig-key-file", required_argument, NULL, 'k' },
		{ "nsupdate", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	char zone[300] = "", name[300] = "";
	bool name_fqdn = false, watch = false;
	uint64_t ttl = 60, port = 53;
	struct dns_watch_opts wo = { .nsupdate = "nsupdate" };
	int ch;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (ch) {
		case 'z':
			if (strlen(optarg) >= sizeof(zone))
				return ctl_usage_err("dns: --zone too long");
			strcpy(zone, optarg);
			break;
		case 'n':
			if (strlen(optarg) >= sizeof(name))
				return ctl_usage_err("dns: --name too long");
			strcpy(name, optarg);
			name_fqdn = optarg[0] != '\0' && optarg[strlen(optarg) - 1] == '.';
			break;
		case 't':
			if (!ctl_parse_u64("--ttl", optarg, 0, 2147483647, &ttl))
				return CTL_EXIT_USAGE;
			break;
		case 'w': watch = true; break;
		case 's':
			if (!server_ok(optarg))
				return ctl_usage_err("dns: --server \"%s\" is not an address or host name", optarg);
			wo.server = optarg;
			break;
		case 'p':
			if (!ctl_parse_u64("--port", optarg, 1, 65535, &port))
				return CTL_EXIT_USAGE;
			break;
		case 'k': wo.key_file = optarg; break;
		case 'u': wo.nsupdate = optarg; break;
		case ':':
			return ctl_usage_err("dns: option %s needs a value", argv[optind - 1]);
		default:
			return ctl_usage_err("dns: unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage_err("dns: unexpected argument \"%s\"", argv[optind]);
	if (zone[0] == '\0' || name[0] == '\0')
		return ctl_usage_err("dns: --zone ZONE and --name NAME are required");
	if (!dns_name_ok(zone, false))
		return ctl_usage_err("dns: --zone \"%s\" is not a DNS name", zone);
	if (watch && wo.server == NULL)
		return ctl_usage_err("dns: --watch needs --server, the DNS server to update");
	if (!watch && (wo.server != NULL || wo.key_file != NULL))
		return ctl_usage_err("dns: --server and --tsig-key-file go with --watch");
	/* NAME: "@" for the apex, a name relative to the zone, or an absolute
	 * name ending in '.' that lies inside the zone. */
	char owner[600];
	if (strcmp(name, "@") == 0) {
		snprintf(owner, sizeof(owner), "%s.", zone);
	} else {
		if (!dns_name_ok(name, true))
			return ctl_usage_err("dns: --name \"%s\" is not a DNS name", name);
		if (name_fqdn) {
			size_t nl = strlen(name), zl = strlen(zone);
			if (!(strcmp(name, zone) == 0 ||
			      (nl > zl && name[nl - zl - 1] == '.' && strcmp(name + nl - zl, zone) == 0)))
				return ctl_usage_err("dns: --name %s. is not inside zone %s.", name, zone);
			snprintf(owner, sizeof(owner), "%s.", name);
		} else {
			snprintf(owner, sizeof(owner), "%s.%s.", name, zone);
		}
	}
	if (!ctl_connect(c))
		return CTL_EXIT_FAIL;
	if (watch) {
		wo.zone = zone;
		wo.owner = owner;
		wo.ttl = ttl;
		wo.port = (int)port;
		return ctl_dns_watch(c, &wo);
	}
	struct dns_rr *rrs;
	size_t nrr;
	int live, rc;
	if ((rc = ctl_dns_records(c, NULL, NULL, true, &rrs, &nrr, &live)) != CTL_EXIT_OK)
		return rc;
	char when[40];
	ctl_format_time(ctl_now_ms(), when, sizeof(when));
	if (c->json) {
		printf("{\"zone\":\"%s.\",\"name\":", zone);
		json_str(stdout, owner);
		printf(",\"ttl\":%" PRIu64 ",\"routers\":%d,\"records\":[", ttl, live);
		for (size_t j = 0; j < nrr; j++)
			printf("%s{\"type\":\"%s\",\"address\":\"%s\"}", j ? "," : "",
			       rrs[j].family == AF_INET ? "A" : "AAAA", rrs[j].addr);
		printf("]}\n");
	} else {
		printf("; zkrouter: %d live router%s in /routers at %s\n", live, live == 1 ? "" : "s", when);
		printf("$ORIGIN %s.\n", zone);
		for (size_t j = 0; j < nrr; j++)
			printf("%s\t%" PRIu64 "\tIN\t%s\t%s\n", owner, ttl,
			       rrs[j].family == AF_INET ? "A" : "AAAA", rrs[j].addr);
	}
	free(rrs);
	if (nrr == 0) {
		ctl_err("no live router advertises a usable address: no records");
		return CTL_EXIT_CHECK;
	}
	return CTL_EXIT_OK;
}
