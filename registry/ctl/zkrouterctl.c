/*
 * zkrouterctl: the operator's tool for the zkrouter tree in ZooKeeper.
 *
 * Global options come first, then a command with its own options. Each
 * command lives in a ctl_*.c file and talks to ZooKeeper through the
 * blocking wrappers of ctl_zk.c, with every wait bounded by --timeout, so
 * an unreachable ensemble gives a clear error instead of a hang.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "registry/authfile.h"
#include "registry/ctl/ctl.h"
#include "registry/log.h"

static const char usage_text[] =
"usage: zkrouterctl --zk CONNECT [--auth-file FILE] [--json] [--timeout MS] COMMAND [ARGS]\n"
"\n"
"Manages the zkrouter tree in ZooKeeper: apps, their instances, routers and\n"
"TLS certificates.\n"
"\n"
"global options:\n"
"  --zk CONNECT       ZooKeeper \"host:port[,host:port...][/chroot]\" (default chroot\n"
"                     /zkrouter; also from $ZKROUTER_ZK)\n"
"  --auth USER:PASS   operator digest identity (also from $ZKROUTER_AUTH); other\n"
"                     users of the host can read a command line: prefer --auth-file\n"
"  --auth-file FILE   read USER:PASS from FILE, which only its owner may read\n"
"                     (chmod 600; also from $ZKROUTER_AUTH_FILE)\n"
"  --json             machine-readable output (one JSON document; `watch`: one per line)\n"
"  --timeout MS       bound on connecting and on each request (default 5000)\n"
"  -v, --verbose      log ZooKeeper client messages to stderr\n"
"  -h, --help         this text;  --version  the version\n"
"\n"
"commands:\n"
"  init                       create the chroot, /apps and /routers (idempotent);\n"
"                             with --auth, only that identity may add apps\n"
"  app add DOMAIN [CONFIG] [--owner USER:PASS] [--router-auth USER:PASS]\n"
"                             (--owner-file FILE, --router-auth-file FILE: the same\n"
"                             from files, off the command line)\n"
"                             create /apps/DOMAIN (AppConfig) and its instances\n"
"                             folder; with --owner only that identity's agents may\n"
"                             register (needs --auth: the operator keeps all rights)\n"
"  app set DOMAIN [CONFIG] [--reset]\n"
"                             change the given config fields (--reset: start from\n"
"                             defaults instead of the current config)\n"
"  app show DOMAIN            config and ACLs of one app\n"
"  app rm DOMAIN [--force]    remove an app; refuses while instances are\n"
"                             registered unless --force\n"
"  apps                       list apps with their instance count and config\n"
"  instances DOMAIN           list the live instances of an app\n"
"  routers [--wait MS]       list live routers with table generation and digest;\n"
"                             exit 0 only if all agree on the digest; --wait: read\n"
"                             again until they do or MS passed (records lag ~200 ms)\n"
"  watch                      print changes to apps, instances and routers as they\n"
"                             happen, until interrupted\n"
"  dns --zone ZONE --name NAME [--ttl S]\n"
"                             print A/AAAA records (zone-file syntax) for the live\n"
"                             routers' listen addresses\n"
"  dns --zone ZONE --name NAME --watch --server ADDR [--port N]\n"
"      [--tsig-key-file FILE] [--nsupdate PROG] [--ttl S]\n"
"                             keep those records current in the DNS server ADDR\n"
"                             with RFC 2136 updates (sent by nsupdate, TSIG-signed\n"
"                             with FILE) as routers join and leave, until interrupted\n"
"  cert add FILE [--key FILE] [--name NAME] [--router-auth USER:PASS] [--world-readable]\n"
"                             (--router-auth-file FILE: from a file)\n"
"                             store a certificate chain (leaf first) and its key\n"
"                             (in FILE, or --key) at /certs/NAME.<sequence>; every\n"
"                             router serves it at once. Refuses a chain that does\n"
"                             not parse, a key that does not match, a certificate\n"
"                             expired or not yet valid, or one without DNS names.\n"
"                             NAME defaults to the first DNS name (\"*.\" -> \"_wildcard.\").\n"
"                             An older certificate of the same NAME is removed once\n"
"                             the new one is stored. Needs --auth and --router-auth:\n"
"                             the operator all, the routers read, nobody else;\n"
"                             --world-readable lets anyone read the private key\n"
"  cert ls                    name, DNS names, not-after, days left and issuer\n"
"  cert show NAME             details and ACL (never the private key)\n"
"  cert rm NAME               remove the certificate (every node of NAME)\n"
"  certs [--expiring DAYS]    list certificates; with --expiring only those expiring\n"
"                             within DAYS, and exit 1 if there are any\n"
"\n"
"CONFIG (app add / app set):\n"
"  --balance least-outstanding|round-robin|hash-header|hash-cookie\n"
"  --hash-key NAME            header or cookie to hash (hash-* policies)\n"
"  --health-path PATH --health-interval MS   active health checks\n"
"  --connect-timeout MS  --response-timeout MS  --idle-timeout MS\n"
"  --retries N (0-10)  --sticky-cookie NAME  --redirect-https | --no-redirect-https\n"
"  --max-connections N  --max-body-bytes N\n"
"  --max-concurrent-requests N  --max-queued-requests N   per-app cap and its queue\n"
"  --backend-protocol h2c|http1   what the instances speak (default http1)\n"
"\n"
"Domains are lower case, without port or trailing dot; \"*.example.com\" is a\n"
"wildcard app matching one more leading label.\n"
"\n"
"exit status: 0 success; 1 the check failed (routers disagree or none live,\n"
"certificates expiring);\n"
"2 bad command line; 3 ZooKeeper unreachable, request refused (ACL), unknown\n"
"domain or other failure.\n";

static bool connect_session(struct ctl *c, bool read_only)
{
	char why[256];
	if (c->opened)
		return true;
	if (!ctl_zk_open(&c->conn, c->zk, c->auth, c->timeout_ms, read_only, why, sizeof(why))) {
		ctl_err("%s", why);
		return false;
	}
	c->opened = true;
	return true;
}

bool ctl_connect(struct ctl *c)
{
	return connect_session(c, true);
}

bool ctl_connect_to_write(struct ctl *c)
{
	return connect_session(c, false);
}

struct command {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
};

static const struct command commands[] = {
	{ "init", ctl_cmd_init },
	{ "app", ctl_cmd_app },
	{ "apps", ctl_cmd_apps },
	{ "instances", ctl_cmd_instances },
	{ "routers", ctl_cmd_routers },
	{ "watch", ctl_cmd_watch },
	{ "dns", ctl_cmd_dns },
	{ "cert", ctl_cmd_cert },
	{ "certs", ctl_cmd_certs },
};

/*
 * The operator identity: --auth or --auth-file on the command line (not
 * both), else $ZKROUTER_AUTH or $ZKROUTER_AUTH_FILE (not both). A file
 * read goes to *buf, which the caller wipes.
 */
static int ctl_auth(struct ctl *c, const char *file, char **buf)
{
	const char *env_auth = getenv("ZKROUTER_AUTH"), *env_file = getenv(ZKR_AUTH_FILE_ENV);
	char why[512];

	if (c->auth != NULL && file != NULL)
		return ctl_usage_err("--auth and --auth-file both given: keep one");
	if (c->auth == NULL && file == NULL) {
		if (env_auth != NULL && *env_auth != '\0' && env_file != NULL && *env_file != '\0')
			return ctl_usage_err("ZKROUTER_AUTH and ZKROUTER_AUTH_FILE are both set: unset one");
		if (env_auth != NULL && *env_auth != '\0')
			c->auth = env_auth;
		else if (env_file != NULL && *env_file != '\0')
			file = env_file;
	}
	if (file != NULL) {
		if (!zkr_auth_file_read(file, buf, why, sizeof(why)))
			return ctl_usage_err("--auth-file: %s", why);
		c->auth = *buf;
	}
	if (c->auth != NULL && (strchr(c->auth, ':') == NULL || c->auth[0] == ':'))
		return ctl_usage_err("--auth must be USER:PASSWORD");
	return CTL_EXIT_OK;
}

int ctl_identity(const char *name, const char *file, char **buf, const char **value)
{
	char why[512];

	*buf = NULL;
	if (file == NULL)
		return CTL_EXIT_OK;
	if (*value != NULL)
		return ctl_usage_err("--%s and --%s-file both given: keep one", name, name);
	if (!zkr_auth_file_read(file, buf, why, sizeof(why)))
		return ctl_usage_err("--%s-file: %s", name, why);
	if (*buf == NULL)
		return ctl_usage_err("--%s-file: %s is empty; expected USER:PASSWORD", name, file);
	*value = *buf;
	return CTL_EXIT_OK;
}

/* Runs the command named at argv[optind]. */
static int run(struct ctl *c, bool verbose, int argc, char **argv)
{
	/* The ZooKeeper client's own chatter is for debugging only. */
	zkr_log_init("zkrouterctl", verbose ? ZKR_LOG_DEBUG : ZKR_LOG_ERROR, false);
	if (!verbose)
		zoo_set_debug_level(0);

	const char *name = argv[optind];
	/* --json is also accepted after the command, where scripts tend to put it. */
	int kept = optind + 1;
	for (int i = optind + 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[kept++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			c->json = true;
		else
			argv[kept++] = argv[i];
	}
	argc = kept;
	argv[argc] = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		int rc = commands[i].fn(c, argc - optind, argv + optind);
		if (c->opened)
			ctl_zk_close(&c->conn);
		if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
			rc = CTL_EXIT_FAIL;
		return rc;
	}
	return ctl_usage_err("unknown command \"%s\"", name);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "zk", required_argument, NULL, 'z' },
		{ "auth", required_argument, NULL, 'a' },
		{ "auth-file", required_argument, NULL, 'A' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = {
		.zk = getenv("ZKROUTER_ZK"),
		.timeout_ms = 5000,
	};
	const char *auth_file = NULL;
	bool verbose = false;
	int ch;
	uint64_t v;

	/* Writes to a closed pipe (`zkrouterctl watch | head`) end quietly. */
	signal(SIGPIPE, SIG_DFL);
	opterr = 0;
	/* '+': stop at the command word; its options are its own. */
	while ((ch = getopt_long(argc, argv, "+:hvV", opts, NULL)) != -1) {
		switch (ch) {
		case 'z': c.zk = optarg; break;
		case 'a': c.auth = optarg; break;
		case 'A': auth_file = optarg; break;
		case 'j': c.json = true; break;
		case 't':
			if (!ctl_parse_u64("--timeout", optarg, 100, 600000, &v))
				return CTL_EXIT_USAGE;
			c.timeout_ms = (int)v;
			break;
		case 'v': verbose = true; break;
		case 'h': fputs(usage_text, stdout); return CTL_EXIT_OK;
		case 'V': printf("zkrouterctl %s\n", PACKAGE_VERSION); return CTL_EXIT_OK;
		case ':':
			return ctl_usage_err("option %s needs a value", argv[optind - 1]);
		default:
			return ctl_usage_err("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return ctl_usage_err("no command given");
	if (c.zk == NULL || *c.zk == '\0')
		return ctl_usage_err("--zk CONNECT is required (or set ZKROUTER_ZK)");
	char *auth_buf = NULL;
	int rc = ctl_auth(&c, auth_file, &auth_buf);
	if (rc == CTL_EXIT_OK)
		rc = run(&c, verbose, argc, argv);
	zkr_auth_free(auth_buf);
	return rc;
}


