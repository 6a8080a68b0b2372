/*
 * zkrouterctl commands for apps: init, app add/set/show/rm, apps and
 * instances. Every record written goes through record.c's encoder, so the
 * tool refuses exactly what a router would refuse to read, with its reason.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "registry/authfile.h"
#include "registry/ctl/ctl.h"
#include "registry/ctl_acl.h"

#define PATH_MAX_LEN 512

static bool app_path(char *out, size_t outlen, const char *domain, const char *suffix)
{
	int n = snprintf(out, outlen, "/apps/%s%s", domain, suffix);
	return n > 0 && (size_t)n < outlen;
}

/* ---- init --------------------------------------------------------------- */

int ctl_cmd_init(struct ctl *c, int argc, char **argv)
{
	static const char *const paths[] = { "/apps", "/routers" };
	if (argc > 1)
		return ctl_usage_err("init takes no arguments");
	/*
	 * With an operator identity, only the operator may add or remove apps
	 * (anyone may read, as routers must). /routers stays open: each
	 * router creates its own node there.
	 */
	char op_id[CTL_DIGEST_ID_MAX], why[160];
	struct ACL apps_entries[2];
	struct ACL_vector apps_acl = { 2, apps_entries };
	if (c->auth != NULL) {
		if (!ctl_digest_id(c->auth, op_id, sizeof(op_id), why, sizeof(why)))
			return ctl_usage_err("--auth: %s", why);
		apps_entries[0] = (struct ACL){ ZOO_PERM_ALL, { "digest", op_id } };
		apps_entries[1] = (struct ACL){ ZOO_PERM_READ, { "world", "anyone" } };
	}
	/* The session creates the chroot when it is missing. */
	if (!ctl_connect_to_write(c))
		return CTL_EXIT_FAIL;
	bool created[2];
	for (size_t i = 0; i < 2; i++) {
		const struct ACL_vector *acl = i == 0 && c->auth != NULL ? &apps_acl : &ZOO_OPEN_ACL_UNSAFE;
		int rc = ctl_zk_create(&c->conn, paths[i], NULL, 0, acl, 0);
		if (rc != ZOK && rc != ZNODEEXISTS)
			return ctl_zk_fail("cannot create", paths[i], rc);
		created[i] = rc == ZOK;
	}
	if (c->json) {
		printf("{\"apps\":\"%s\",\"routers\":\"%s\"}\n", created[0] ? "created" : "existed",
		       created[1] ? "created" : "existed");
	} else {
		for (size_t i = 0; i < 2; i++)
			printf("%s %s\n", paths[i], created[i] ? "created" : "already exists");
	}
	return CTL_EXIT_OK;
}

/* ---- app config options --------------------------------------------------- */

enum {
	OPT_BALANCE = 1000, OPT_HASH_KEY, OPT_HEALTH_PATH, OPT_HEALTH_INTERVAL,
	OPT_CONNECT_TIMEOUT, OPT_RESPONSE_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_RETRIES,
	OPT_STICKY, OPT_REDIRECT, OPT_NO_REDIRECT, OPT_MAX_CONN, OPT_MAX_BODY,
	OPT_MAX_CONCURRENT, OPT_MAX_QUEUED, OPT_BACKEND_PROTOCOL,
	OPT_OWNER, OPT_ROUTER_AUTH, OPT_RESET, OPT_FORCE, OPT_OWNER_FILE, OPT_ROUTER_AUTH_FILE,
};

static const struct option app_opts[] = {
	{ "balance", required_argument, NULL, OPT_BALANCE },
	{ "hash-key", required_argument, NULL, OPT_HASH_KEY },
	{ "health-path", required_argument, NULL, OPT_HEALTH_PATH },
	{ "health-interval", required_argument, NULL, OPT_HEALTH_INTERVAL },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "response-timeout", required_argument, NULL, OPT_RESPONSE_TIMEOUT },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "sticky-cookie", required_argument, NULL, OPT_STICKY },
	{ "redirect-https", no_argument, NULL, OPT_REDIRECT },
	{ "no-redirect-https", no_argument, NULL, OPT_NO_REDIRECT },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONN },
	{ "max-body-bytes", required_argument, NULL, OPT_MAX_BODY },
	{ "max-concurrent-requests", required_argument, NULL, OPT_MAX_CONCURRENT },
	{ "max-queued-requests", required_argument, NULL, OPT_MAX_QUEUED },
	{ "backend-protocol", required_argument, NULL, OPT_BACKEND_PROTOCOL },
	{ "owner", required_argument, NULL, OPT_OWNER },
	{ "router-auth", required_argument, NULL, OPT_ROUTER_AUTH },
	{ "owner-file", required_argument, NULL, OPT_OWNER_FILE },
	{ "router-auth-file", required_argument, NULL, OPT_ROUTER_AUTH_FILE },
	{ "reset", no_argument, NULL, OPT_RESET },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ NULL, 0, NULL, 0 },
};

/* One parsed `app` command line; strings point into argv. */
struct app_args {
	const char *verb;
	const char *domain;
	record_app_config cfg;     /* fields given on the command line */
	record_app_config given;   /* has_* / non-NULL marks what was given */
	const char *owner, *router_auth;
	const char *owner_file, *router_auth_file;
	bool reset, force, any_config;
};

static int parse_u32_opt(const char *name, const char *s, uint64_t lo, uint64_t hi,
			 protobuf_c_boolean *has, uint32_t *field)
{
	uint64_t v;
	if (!ctl_parse_u64(name, s, lo, hi, &v))
		return -1;
	*has = 1;
	*field = (uint32_t)v;
	return 0;
}

static int parse_app_args(int argc, char **argv, struct app_args *a)
{
	record_app_config init = ZKROUTER__APP_CONFIG__INIT;
	a->cfg = init;
	a->given = init;
	int ch;
	uint64_t v;
	optind = 0;
	opterr = 0;
	/* getopt sees argv from the verb on, so its argv[optind] is our
	 * argv[optind + 1]; messages below use ours. */
	while ((ch = getopt_long(argc - 1, argv + 1, ":", app_opts, NULL)) != -1) {
		int bad = 0;
		if (ch != '?' && ch != ':' && ch != OPT_OWNER && ch != OPT_ROUTER_AUTH &&
		    ch != OPT_RESET && ch != OPT_FORCE)
			a->any_config = true;
		switch (ch) {
		case OPT_BALANCE:
			if (!record_balance_parse(optarg, &a->cfg.balance)) {
				ctl_err("--balance: unknown policy \"%s\" (least-outstanding, round-robin, "
					"hash-header, hash-cookie)", optarg);
				return CTL_EXIT_USAGE;
			}
			a->cfg.has_balance = a->given.has_balance = 1;
			break;
		case OPT_HASH_KEY: a->cfg.hash_key = a->given.hash_key = optarg; break;
		case OPT_HEALTH_PATH: a->cfg.health_path = a->given.health_path = optarg; break;
		case OPT_STICKY: a->cfg.sticky_cookie = a->given.sticky_cookie = optarg; break;
		case OPT_HEALTH_INTERVAL:
			bad = parse_u32_opt("--health-interval", optarg, 100, 3600000,
					    &a->cfg.has_health_interval_ms, &a->cfg.health_interval_ms);
			a->given.has_health_interval_ms = 1;
			break;
		case OPT_CONNECT_TIMEOUT:
			bad = parse_u32_opt("--connect-timeout", optarg, 1, 600000,
					    &a->cfg.has_connect_timeout_ms, &a->cfg.connect_timeout_ms);
			a->given.has_connect_timeout_ms = 1;
			break;
		case OPT_RESPONSE_TIMEOUT:
			bad = parse_u32_opt("--response-timeout", optarg, 1, 3600000,
					    &a->cfg.has_response_timeout_ms, &a->cfg.response_timeout_ms);
			a->given.has_response_timeout_ms = 1;
			break;
		case OPT_IDLE_TIMEOUT:
			bad = parse_u32_opt("--idle-timeout", optarg, 1, 3600000,
					    &a->cfg.has_idle_timeout_ms, &a->cfg.idle_timeout_ms);
			a->given.has_idle_timeout_ms = 1;
			break;
		case OPT_RETRIES:
			bad = parse_u32_opt("--retries", optarg, 0, RECORD_RETRIES_MAX,
					    &a->cfg.has_retries, &a->cfg.retries);
			a->given.has_retries = 1;
			break;
		case OPT_MAX_CONN:
			bad = parse_u32_opt("--max-connections", optarg, 0, UINT32_MAX,
					    &a->cfg.has_max_connections, &a->cfg.max_connections);
			a->given.has_max_connections = 1;
			break;
		case OPT_MAX_CONCURRENT:
			bad = parse_u32_opt("--max-concurrent-requests", optarg, 0,
					    RECORD_APP_CONCURRENCY_MAX, &a->cfg.has_max_concurrent_requests,
					    &a->cfg.max_concurrent_requests);
			a->given.has_max_concurrent_requests = 1;
			break;
		case OPT_MAX_QUEUED:
			bad = parse_u32_opt("--max-queued-requests", optarg, 0, RECORD_APP_CONCURRENCY_MAX,
					    &a->cfg.has_max_queued_requests, &a->cfg.max_queued_requests);
			a->given.has_max_queued_requests = 1;
			break;
		case OPT_BACKEND_PROTOCOL:
			if (!record_backend_protocol_parse(optarg, &a->cfg.backend_protocol)) {
				ctl_err("--backend-protocol: unknown protocol \"%s\" (h2c or http1)", optarg);
				return CTL_EXIT_USAGE;
			}
			a->cfg.has_backend_protocol = a->given.has_backend_protocol = 1;
			break;
		case OPT_MAX_BODY:
			if (!ctl_parse_u64("--max-body-bytes", optarg, 0, UINT64_MAX, &v))
				return CTL_EXIT_USAGE;
			a->cfg.has_max_body_bytes = a->given.has_max_body_bytes = 1;
			a->cfg.max_body_bytes = v;
			break;
		case OPT_REDIRECT:
		case OPT_NO_REDIRECT:
			a->cfg.has_redirect_https = a->given.has_redirect_https = 1;
			a->cfg.redirect_https = ch == OPT_REDIRECT;
			break;
		case OPT_OWNER: a->owner = optarg; break;
		case OPT_ROUTER_AUTH: a->router_auth = optarg; break;
		case OPT_OWNER_FILE: a->owner_file = optarg; break;
		case OPT_ROUTER_AUTH_FILE: a->router_auth_file = optarg; break;
		case OPT_RESET: a->reset = true; break;
		case OPT_FORCE: a->force = true; break;
		case ':':
			return ctl_usage_err("option %s needs a value", argv[optind]);
		default:
			return ctl_usage_err("app %s: unknown option %s", argv[1], argv[optind]);
		}
		if (bad)
			return CTL_EXIT_USAGE;
	}
	/* Positional arguments, after getopt moved them to the end. */
	int pos = optind + 1;
	if (pos >= argc)
		return ctl_usage_err("app %s: DOMAIN missing", argv[1]);
	a->domain = argv[pos];
	if (pos + 1 < argc)
		return ctl_usage_err("app %s: unexpected argument \"%s\"", argv[1], argv[pos + 1]);
	if (!ctl_check_domain(a->domain))
		return CTL_EXIT_USAGE;
	return CTL_EXIT_OK;
}

/* Copies the fields the command line gave onto cfg. */
static void apply_given(record_app_config *cfg, const struct app_args *a)
{
	const record_app_config *g = &a->given, *n = &a->cfg;
	if (g->has_balance) { cfg->has_balance = 1; cfg->balance = n->balance; }
	if (g->hash_key) cfg->hash_key = n->hash_key;
	if (g->health_path) cfg->health_path = n->health_path;
	if (g->sticky_cookie) cfg->sticky_cookie = n->sticky_cookie;
#define COPY(f) if (g->has_##f) { cfg->has_##f = 1; cfg->f = n->f; }
	COPY(health_interval_ms) COPY(connect_timeout_ms) COPY(response_timeout_ms)
	COPY(idle_timeout_ms) COPY(retries) COPY(max_connections) COPY(max_body_bytes)
	COPY(redirect_https) COPY(max_concurrent_requests) COPY(max_queued_requests)
	COPY(backend_protocol)
#undef COPY
}

static uint8_t *encode_config(const record_app_config *cfg, size_t *len)
{
	char why[RECORD_WHY_MAX];
	uint8_t *buf = record_app_config_encode(cfg, len, why, sizeof(why));
	if (buf == NULL)
		ctl_err("invalid app config: %s", why);
	return buf;
}

static int app_add(struct ctl *c, struct app_args *a)
{
	char path[PATH_MAX_LEN], ipath[PATH_MAX_LEN];
	if (a->reset || a->force)
		return ctl_usage_err("app add: --reset and --force belong to app set / app rm");
	if (!app_path(path, sizeof(path), a->domain, "") ||
	    !app_path(ipath, sizeof(ipath), a->domain, "/instances"))
		return ctl_usage_err("domain too long");
	struct ctl_app_acls acls;
	bool with_acl = a->owner != NULL || a->router_auth != NULL;
	char why[256];
	if (with_acl && !ctl_app_acls(a->owner, a->router_auth, c->auth, &acls, why, sizeof(why)))
		return ctl_usage_err("%s", why);
	size_t len = 0;
	uint8_t *buf = encode_config(&a->cfg, &len);
	int rc = CTL_EXIT_USAGE;
	if (buf == NULL)
		goto done;
	rc = CTL_EXIT_FAIL;
	if (!ctl_connect_to_write(c))
		goto done;
	int failed = -1;
	int zrc = ctl_zk_create2(&c->conn, path, len ? (const char *)buf : "", (int)len,
				 with_acl ? &acls.app : &ZOO_OPEN_ACL_UNSAFE,
				 ipath, with_acl ? &acls.instances : &ZOO_OPEN_ACL_UNSAFE, &failed);
	if (zrc == ZNODEEXISTS) {
		ctl_err("app %s already exists (change it with `app set`)", a->domain);
		goto done;
	}
	if (zrc == ZNONODE) {
		ctl_err("/apps does not exist: run `zkrouterctl init` first");
		goto done;
	}
	if (zrc != ZOK) {
		ctl_zk_fail("cannot create", failed == 1 ? ipath : path, zrc);
		goto done;
	}
	if (c->json) {
		printf("{\"domain\":");
		json_str(stdout, a->domain);
		printf(",\"created\":true,\"owner_acl\":%s,\"config\":", a->owner ? "true" : "false");
		ctl_print_app_config_json(stdout, &a->cfg);
		printf("}\n");
	} else {
		char sum[512];
		ctl_app_config_summary(&a->cfg, sum, sizeof(sum));
		printf("app %s created (%s)%s\n", a->domain, sum,
		       a->owner ? "; only the owner's agents may register" : "");
	}
	rc = CTL_EXIT_OK;
done:
	free(buf);
	if (with_acl)
		ctl_app_acls_free(&acls);
	return rc;
}

/* Reads /apps/<domain>'s config; prints the error and returns an exit code. */
static int read_config(struct ctl *c, const char *domain, record_app_config **cfg, struct Stat *st)
{
	char path[PATH_MAX_LEN], why[RECORD_WHY_MAX];
	char *data = NULL;
	int len = 0;
	*cfg = NULL;
	if (!app_path(path, sizeof(path), domain, ""))
		return ctl_usage_err("domain too long");
	int rc = ctl_zk_get(&c->conn, path, &data, &len, st);
	if (rc == ZNONODE) {
		ctl_err("unknown domain %s (no %s; see `zkrouterctl apps`)", domain, path);
		return CTL_EXIT_FAIL;
	}
	if (rc != ZOK)
		return ctl_zk_fail("cannot read", path, rc);
	*cfg = record_app_config_decode((const uint8_t *)(data ? data : ""), (size_t)len, why, sizeof(why));
	free(data);
	if (*cfg == NULL) {
		ctl_err("%s holds an invalid AppConfig: %s", path, why);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

static int app_set(struct ctl *c, struct app_args *a)
{
	if (a->owner || a->router_auth || a->force)
		return ctl_usage_err("app set: --owner, --router-auth and --force are not for set "
				     "(ACLs are set by app add)");
	if (!a->any_config && !a->reset)
		return ctl_usage_err("app set: nothing to change");
	if (!ctl_connect_to_write(c))
		return CTL_EXIT_FAIL;
	record_app_config *old = NULL;
	struct Stat st;
	int rc = read_config(c, a->domain, &old, &st);
	if (rc != CTL_EXIT_OK)
		return rc;
	record_app_config cfg = ZKROUTER__APP_CONFIG__INIT;
	if (!a->reset)
		cfg = *old;
	apply_given(&cfg, a);
	size_t len = 0;
	uint8_t *buf = encode_config(&cfg, &len);
	if (buf == NULL) {
		record_app_config_free(old);
		return CTL_EXIT_USAGE;
	}
	char path[PATH_MAX_LEN];
	app_path(path, sizeof(path), a->domain, "");
	/* The version check turns a concurrent edit into an error, not a lost update. */
	int zrc = ctl_zk_set(&c->conn, path, len ? (const char *)buf : "", (int)len, st.version);
	rc = CTL_EXIT_OK;
	if (zrc != ZOK) {
		rc = ctl_zk_fail("cannot update", path, zrc);
	} else if (c->json) {
		printf("{\"domain\":");
		json_str(stdout, a->domain);
		printf(",\"config\":");
		ctl_print_app_config_json(stdout, &cfg);
		printf("}\n");
	} else {
		char sum[512];
		ctl_app_config_summary(&cfg, sum, sizeof(sum));
		printf("app %s updated (%s)\n", a->domain, sum);
	}
	free(buf);
	record_app_config_free(old);
	return rc;
}

static void print_acl(const char *label, const struct ACL_vector *acl)
{
	for (int i = 0; i < acl->count; i++) {
		char perms[6];
		ctl_perms_string(acl->data[i].perms, perms);
		if (label != NULL)
			printf("  %-10s %s:%s %s\n", i == 0 ? label : "", acl->data[i].id.scheme,
			       acl->data[i].id.id, perms);
		else {
			char ids[600];
			snprintf(ids, sizeof(ids), "%s:%s", acl->data[i].id.scheme, acl->data[i].id.id);
			printf("%s{\"id\":", i ? "," : "");
			json_str(stdout, ids);
			printf(",\"perms\":\"%s\"}", perms);
		}
	}
}

static int app_show(struct ctl *c, struct app_args *a)
{
	if (a->any_config || a->owner || a->router_auth || a->reset || a->force)
		return ctl_usage_err("app show takes only DOMAIN");
	if (!ctl_connect(c))
		return CTL_EXIT_FAIL;
	record_app_config *cfg = NULL;
	struct Stat st, ist;
	int rc = read_config(c, a->domain, &cfg, &st);
	if (rc != CTL_EXIT_OK)
		return rc;
	char path[PATH_MAX_LEN], ipath[PATH_MAX_LEN];
	app_path(path, sizeof(path), a->domain, "");
	app_path(ipath, sizeof(ipath), a->domain, "/instances");
	struct ACL_vector acl_app, acl_inst;
	int r1 = ctl_zk_get_acl(&c->conn, path, &acl_app, &st);
	int r2 = ctl_zk_get_acl(&c->conn, ipath, &acl_inst, &ist);
	if (r1 != ZOK || r2 != ZOK) {
		rc = ctl_zk_fail("cannot read the ACL of", r1 != ZOK ? path : ipath, r1 != ZOK ? r1 : r2);
	} else if (c->json) {
		printf("{\"domain\":");
		json_str(stdout, a->domain);
		printf(",\"instances\":%d,\"config\":", ist.numChildren);
		ctl_print_app_config_json(stdout, cfg);
		printf(",\"acl\":[");
		print_acl(NULL, &acl_app);
		printf("],\"instances_acl\":[");
		print_acl(NULL, &acl_inst);
		printf("]}\n");
	} else {
		char sum[512];
		ctl_app_config_summary(cfg, sum, sizeof(sum));
		printf("app %s: %d instance%s\n  config     %s\n", a->domain, ist.numChildren,
		       ist.numChildren == 1 ? "" : "s", sum);
		print_acl("acl", &acl_app);
		print_acl("instances", &acl_inst);
	}
	if (r1 == ZOK)
		deallocate_ACL_vector(&acl_app);
	if (r2 == ZOK)
		deallocate_ACL_vector(&acl_inst);
	record_app_config_free(cfg);
	return rc;
}

static int app_rm(struct ctl *c, struct app_args *a)
{
	if (a->any_config || a->owner || a->router_auth || a->reset)
		return ctl_usage_err("app rm takes DOMAIN and --force only");
	char path[PATH_MAX_LEN], ipath[PATH_MAX_LEN], cpath[PATH_MAX_LEN * 2];
	if (!app_path(path, sizeof(path), a->domain, "") ||
	    !app_path(ipath, sizeof(ipath), a->domain, "/instances"))
		return ctl_usage_err("domain too long");
	if (!ctl_connect_to_write(c))
		return CTL_EXIT_FAIL;
	struct String_vector kids;
	int zrc = ctl_zk_children(&c->conn, ipath, &kids);
	if (zrc == ZNONODE) {
		struct Stat st;
		if (ctl_zk_exists(&c->conn, path, &st) == ZNONODE) {
			ctl_err("unknown domain %s (no %s; see `zkrouterctl apps`)", a->domain, path);
			return CTL_EXIT_FAIL;
		}
	} else if (zrc != ZOK) {
		return ctl_zk_fail("cannot list", ipath, zrc);
	}
	int removed = 0;
	if (zrc == ZOK && kids.count > 0 && !a->force) {
		ctl_err("app %s has %d registered instance%s; stop their agents first, or use --force",
			a->domain, kids.count, kids.count == 1 ? "" : "s");
		deallocate_String_vector(&kids);
		return CTL_EXIT_FAIL;
	}
	for (int i = 0; zrc == ZOK && i < kids.count; i++) {
		snprintf(cpath, sizeof(cpath), "%s/%s", ipath, kids.data[i]);
		int r = ctl_zk_delete(&c->conn, cpath, -1);
		if (r != ZOK && r != ZNONODE) {
			deallocate_String_vector(&kids);
			return ctl_zk_fail("cannot remove", cpath, r);
		}
		removed++;
	}
	if (zrc == ZOK)
		deallocate_String_vector(&kids);
	int r = zrc == ZOK ? ctl_zk_delete(&c->conn, ipath, -1) : ZOK;
	if (r == ZNOTEMPTY) {
		ctl_err("an instance registered for %s meanwhile; try again", a->domain);
		return CTL_EXIT_FAIL;
	}
	if (r != ZOK && r != ZNONODE)
		return ctl_zk_fail("cannot remove", ipath, r);
	r = ctl_zk_delete(&c->conn, path, -1);
	if (r == ZNOTEMPTY) {
		ctl_err("%s has children other than instances; remove them first", path);
		return CTL_EXIT_FAIL;
	}
	if (r != ZOK && r != ZNONODE)
		return ctl_zk_fail("cannot remove", path, r);
	if (c->json) {
		printf("{\"domain\":");
		json_str(stdout, a->domain);
		printf(",\"removed\":true,\"instances_removed\":%d}\n", removed);
	} else {
		printf("app %s removed", a->domain);
		if (removed > 0)
			printf(" (and %d instance node%s; their agents will see them vanish)", removed,
			       removed == 1 ? "" : "s");
		printf("\n");
	}
	return CTL_EXIT_OK;
}

int ctl_cmd_app(struct ctl *c, int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage_err("app: give add, set, show or rm");
	struct app_args a = { .verb = argv[1] };
	int (*fn)(struct ctl *, struct app_args *);
	if (strcmp(a.verb, "add") == 0)
		fn = app_add;
	else if (strcmp(a.verb, "set") == 0)
		fn = app_set;
	else if (strcmp(a.verb, "show") == 0)
		fn = app_show;
	else if (strcmp(a.verb, "rm") == 0)
		fn = app_rm;
	else
		return ctl_usage_err("app: unknown subcommand \"%s\" (add, set, show, rm)", a.verb);
	int rc = parse_app_args(argc, argv, &a);
	if (rc != CTL_EXIT_OK)
		return rc;
	char *owner_buf = NULL, *router_buf = NULL;
	rc = ctl_identity("owner", a.owner_file, &owner_buf, &a.owner);
	if (rc == CTL_EXIT_OK)
		rc = ctl_identity("router-auth", a.router_auth_file, &router_buf, &a.router_auth);
	if (rc == CTL_EXIT_OK)
		rc = fn(c, &a);
	zkr_auth_free(owner_buf);
	zkr_auth_free(router_buf);
	return rc;
}
