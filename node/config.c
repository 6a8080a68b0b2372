/*
 * zkrouterd's options, declared once in `config_options[]`
 * (config-options.c). Each entry names the option (the same word on the
 * command line, "--name", and in the file, "name = value"), its type and
 * place in struct zkr_config, its default (as text, parsed by the same code
 * as user input, so a default can never escape its own bounds), its
 * bounds, whether SIGHUP applies it, and its --help line. The command-line parser, the file parser, the
 * defaults, the reload and the usage text are all loops over that table.
 *
 * File syntax: one "name = value" per line; '#' starts a comment at the
 * start of a line or after whitespace; a value may be double-quoted to keep
 * '#' or surrounding spaces; '_' and '-' are the same in names; a
 * repeatable option (listen, tls-listen) may appear on several lines.
 */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/util.h>

#include "node/accesslog.h"
#include "node/config-int.h"
#include "node/config.h"
#include "node/http.h"
#include "node/tls.h"
#include "node/workers.h"
#include "registry/authfile.h"
#include "registry/log.h"
#include "registry/record.h"

#define CONFIG_LINE_MAX 4096


/* Option names compare with '_' and '-' as the same character. */
static bool name_eq(const char *a, const char *b, size_t blen)
{
	size_t i;
	for (i = 0; i < blen; i++) {
		char ca = a[i] == '_' ? '-' : a[i];
		char cb = b[i] == '_' ? '-' : b[i];
		if (ca == '\0' || ca != cb)
			return false;
	}
	return a[i] == '\0';
}

static const struct option_def *find_option(const char *name, size_t len)
{
	for (size_t i = 0; i < config_n_options; i++)
		if (name_eq(config_options[i].name, name, len))
			return &config_options[i];
	return NULL;
}

static void *field(struct zkr_config *c, size_t off)
{
	return (char *)c + off;
}

static void free_list(struct zkr_config *c, const struct option_def *o)
{
	char ***list = field(c, o->off);
	size_t *n = field(c, o->count_off);
	if (*list != NULL)
		for (size_t i = 0; i < *n; i++)
			free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
}

static bool parse_u64(const char *s, uint64_t *out, bool size_suffix)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return false;
	if (size_suffix && (*end == 'k' || *end == 'K' || *end == 'm' || *end == 'M')) {
		unsigned long long mul = (*end == 'k' || *end == 'K') ? 1024ULL : 1024ULL * 1024ULL;
		if (v > UINT64_MAX / mul)
			return false;
		v *= mul;
		end++;
	}
	if (*end != '\0')
		return false;
	*out = v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/*
 * Sets one option from its text. `first` is true for the first occurrence
 * of a repeatable option in this source (file or command line), which
 * replaces what an earlier source set rather than adding to it.
 */
static bool set_option(struct zkr_config *c, const struct option_def *o, const char *val,
		       bool first, char *why, size_t whylen)
{
	uint64_t n;
	char *dup;

	if (!printable(val)) {
		zkr_set_why(why, whylen, "%s: control characters in value", o->name);
		return false;
	}
	switch (o->type) {
	case OPT_STR:
	case OPT_STR_OFF:
	case OPT_LEVEL: {
		char **p = field(c, o->off);
		if (o->type == OPT_STR && *val == '\0') {
			zkr_set_why(why, whylen, "%s: empty value", o->name);
			return false;
		}
		if (o->type == OPT_LEVEL) {
			enum zkr_log_level lvl;
			if (!zkr_log_parse_level(val, &lvl)) {
				zkr_set_why(why, whylen, "%s: \"%s\" is not one of error, warn, info, debug",
					o->name, val);
				return false;
			}
		}
		if (o->type == OPT_STR_OFF && (*val == '\0' || strcmp(val, "off") == 0)) {
			free(*p);
			*p = NULL;
			return true;
		}
		if ((dup = strdup(val)) == NULL)
			goto nomem;
		free(*p);
		*p = dup;
		return true;
	}
	case OPT_LIST: {
		char ***list = field(c, o->off);
		size_t *cnt = field(c, o->count_off);
		if (*val == '\0') {
			zkr_set_why(why, whylen, "%s: empty value", o->name);
			return false;
		}
		if (first)
			free_list(c, o);
		/* One spare slot keeps the list NULL-terminated as well. */
		char **grown = realloc(*list, (*cnt + 2) * sizeof(char *));
		if (grown == NULL)
			goto nomem;
		*list = grown;
		if ((grown[*cnt] = strdup(val)) == NULL)
			goto nomem;
		(*cnt)++;
		grown[*cnt] = NULL;
		return true;
	}
	case OPT_BOOL: {
		bool b;
		if (!parse_bool(val, &b)) {
			zkr_set_why(why, whylen, "%s: \"%s\" is not yes/no, true/false, on/off or 1/0",
				o->name, val);
			return false;
		}
		*(bool *)field(c, o->off) = b;
		return true;
	}
	case OPT_UINT:
	case OPT_INT:
	case OPT_SIZE:
		if (!parse_u64(val, &n, o->type == OPT_SIZE)) {
			zkr_set_why(why, whylen, "%s: \"%s\" is not a whole number%s", o->name, val,
				o->type == OPT_SIZE ? " (k and m suffixes allowed)" : "");
			return false;
		}
		if (n < o->min || n > o->max) {
			zkr_set_why(why, whylen, "%s: %" PRIu64 " out of range %" PRIu64 "-%" PRIu64,
				o->name, n, o->min, o->max);
			return false;
		}
		if (o->type == OPT_UINT)
			*(unsigned *)field(c, o->off) = (unsigned)n;
		else if (o->type == OPT_INT)
			*(int *)field(c, o->off) = (int)n;
		else
			*(size_t *)field(c, o->off) = (size_t)n;
		return true;
	}
	zkr_set_why(why, whylen, "%s: unknown option type", o->name);
	return false;
nomem:
	zkr_set_why(why, whylen, "%s: out of memory", o->name);
	return false;
}

bool config_init(struct zkr_config *c)
{
	char why[128];
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < config_n_options; i++) {
		const struct option_def *o = &config_options[i];
		if (o->def != NULL && !set_option(c, o, o->def, true, why, sizeof(why))) {
			log_error("config: default of %s: %s", o->name, why);
			config_free(c);
			return false;
		}
	}
	return true;
}

void config_free(struct zkr_config *c)
{
	for (size_t i = 0; i < config_n_options; i++) {
		const struct option_def *o = &config_options[i];
		if (o->type == OPT_LIST) {
			free_list(c, o);
		} else if (o->type == OPT_STR || o->type == OPT_STR_OFF || o->type == OPT_LEVEL) {
			char **p = field(c, o->off);
			if (o->off == F(zk_auth) && *p != NULL)
				explicit_bzero(*p, strlen(*p));
			free(*p);
			*p = NULL;
		}
	}
}

bool config_option_reloadable(const char *name)
{
	const struct option_def *o = find_option(name, strlen(name));
	return o != NULL && o->reloadable;
}

bool config_split_addr(const char *s, char *addr, size_t addrsz, unsigned short *port)
{
	const char *colon, *host = s;
	size_t hlen;
	uint64_t p;

	if (s == NULL)
		return false;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return false;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return false;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= addrsz || !parse_u64(colon + 1, &p, false) || p < 1 || p > 65535)
		return false;
	memcpy(addr, host, hlen);
	addr[hlen] = '\0';
	if (*s == '[') {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			return false;
	} else if (!record_valid_host(addr)) {
		return false;
	}
	*port = (unsigned short)p;
	return true;
}

bool config_split_listen(const char *spec, char *addr_port, size_t addrsz, unsigned *flags)
{
	const char *comma = strchr(spec, ',');
	size_t alen = comma ? (size_t)(comma - spec) : strlen(spec);

	*flags = 0;
	if (alen >= addrsz)
		return false;
	memcpy(addr_port, spec, alen);
	addr_port[alen] = '\0';
	while (comma != NULL) {
		const char *flag = comma + 1;
		size_t flen;

		comma = strchr(flag, ',');
		flen = comma ? (size_t)(comma - flag) : strlen(flag);
		if (flen == 5 && memcmp(flag, "proxy", 5) == 0)
			*flags |= CONFIG_LISTEN_PROXY;
		else
			return false;
	}
	return true;
}

/* A listener option's value: "ADDR:PORT" or "[V6]:PORT", then its flags. */
static bool listen_ok(const char *spec)
{
	char addr_port[300], addr[256];
	unsigned short port;
	unsigned flags;

	return config_split_listen(spec, addr_port, sizeof(addr_port), &flags) &&
	       config_split_addr(addr_port, addr, sizeof(addr), &port);
}

/* The credentials: auth, or auth-file, or else $ZKROUTER_AUTH_FILE, all
 * end in zk_auth, so the rest of the daemon reads one field. Read at
 * every load, so --check-config and a reload check the file too. */
static bool config_auth(struct zkr_config *c, char *why, size_t whylen)
{
	const char *env = getenv(ZKR_AUTH_FILE_ENV);
	char sub[512];

	if (c->zk_auth != NULL && c->zk_auth_file != NULL) {
		zkr_set_why(why, whylen, "auth and auth-file are both set: keep one (auth-file keeps the "
			    "password off command lines)");
		return false;
	}
	if (c->zk_auth == NULL && c->zk_auth_file == NULL && env != NULL && env[0] != '\0' &&
	    (c->zk_auth_file = strdup(env)) == NULL) {
		zkr_set_why(why, whylen, "auth-file: out of memory");
		return false;
	}
	if (c->zk_auth_file != NULL && !zkr_auth_file_read(c->zk_auth_file, &c->zk_auth, sub, sizeof(sub))) {
		zkr_set_why(why, whylen, "auth-file: %s", sub);
		return false;
	}
	if (c->zk_auth != NULL && strchr(c->zk_auth, ':') == NULL) {
		zkr_set_why(why, whylen, "auth: expected USER:PASSWORD");
		return false;
	}
	return true;
}

/* Checks that involve several options, or values beyond their own range. */
static bool config_check(struct zkr_config *c, char *why, size_t whylen)
{
	char addr[256];
	unsigned short port;
	enum accesslog_format alf;

	if (c->zk_connect == NULL) {
		zkr_set_why(why, whylen, "zk: no ZooKeeper connect string (--zk HOST:PORT or \"zk = ...\")");
		return false;
	}
	if (c->node_id == NULL) {
		char hn[256];
		if (gethostname(hn, sizeof(hn)) != 0) {
			zkr_set_why(why, whylen, "node-id: not set and the host name is unknown");
			return false;
		}
		hn[sizeof(hn) - 1] = '\0';
		if ((c->node_id = strdup(hn)) == NULL) {
			zkr_set_why(why, whylen, "node-id: out of memory");
			return false;
		}
	}
	if (!record_valid_znode_name(c->node_id)) {
		zkr_set_why(why, whylen, "node-id: \"%s\" is not a valid znode name (1-%d printable bytes, no '/')",
			c->node_id, RECORD_ID_MAX);
		return false;
	}
	if (!config_auth(c, why, whylen))
		return false;
	if (c->n_listen == 0) {
		zkr_set_why(why, whylen, "listen: at least one address is needed");
		return false;
	}
	for (size_t i = 0; i < c->n_listen; i++) {
		if (!listen_ok(c->listen[i])) {
			zkr_set_why(why, whylen, "listen: \"%s\" is not ADDR:PORT or [V6]:PORT, with ,proxy or nothing after it",
				c->listen[i]);
			return false;
		}
	}
	for (size_t i = 0; i < c->n_tls_listen; i++) {
		if (!listen_ok(c->tls_listen[i])) {
			zkr_set_why(why, whylen, "tls-listen: \"%s\" is not ADDR:PORT or [V6]:PORT, with ,proxy or nothing after it",
				c->tls_listen[i]);
			return false;
		}
	}
	/* The files themselves are read at start (a bad one is exit 1 there);
	 * what is checked here is that the set of options makes sense. A TLS
	 * listener without any file serves /certs records only (main.c warns). */
	if (c->n_tls_key > c->n_tls_cert) {
		zkr_set_why(why, whylen, "tls-key is set without tls-cert (%zu keys for %zu certificates)",
			c->n_tls_key, c->n_tls_cert);
		return false;
	}
	if (!accesslog_format_parse(c->access_log_format, &alf)) {
		zkr_set_why(why, whylen, "access-log-format: \"%s\" is neither logfmt nor json",
			c->access_log_format);
		return false;
	}
	if (!tls_policy_check(c->tls_min_version, c->tls_ciphers, c->tls_ciphersuites, why, whylen))
		return false;
	if (workers_parse(c->workers) == 0) {
		zkr_set_why(why, whylen, "workers: \"%s\" is neither auto nor a number from 1 to %u",
			    c->workers, WORKERS_MAX);
		return false;
	}
	if (c->resolver != NULL) {
		struct sockaddr_storage ss;
		int sslen = sizeof(ss);

		if (evutil_parse_sockaddr_port(c->resolver, (struct sockaddr *)&ss, &sslen) != 0) {
			zkr_set_why(why, whylen, "resolver: \"%s\" is not IP, IP:PORT or [V6]:PORT",
				c->resolver);
			return false;
		}
	}
	if (c->admin != NULL && !config_split_addr(c->admin, addr, sizeof(addr), &port)) {
		zkr_set_why(why, whylen, "admin: \"%s\" is not ADDR:PORT, [V6]:PORT or off", c->admin);
		return false;
	}
	if (c->max_target_bytes > c->max_head_bytes) {
		zkr_set_why(why, whylen, "max-target-bytes (%zu) is larger than max-head-bytes (%zu)",
			c->max_target_bytes, c->max_head_bytes);
		return false;
	}
	if (!http_upgrade_list_valid(c->upgrade_protocols)) {
		zkr_set_why(why, whylen, "upgrade-protocols: \"%s\" is not a comma-separated list of protocol names",
			c->upgrade_protocols);
		return false;
	}
	if (http_upgrade_token_allowed("h2c", 3, c->upgrade_protocols)) {
		/* Its requests would pass inside a tunnel, unrouted and unlogged. */
		zkr_set_why(why, whylen, "upgrade-protocols: h2c cannot be tunnelled (HTTP/2 requests inside "
			"would bypass routing and the access log)");
		return false;
	}
	if (c->eject_max_ms < c->eject_base_ms) {
		zkr_set_why(why, whylen, "eject-max-ms (%u) is smaller than eject-base-ms (%u)",
			c->eject_max_ms, c->eject_base_ms);
		return false;
	}
	return true;
}

/* Removes leading and trailing blanks in place; returns the new start. */
static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/* Splits one line into name and value. Returns 0 for a blank or comment
 * line, 1 for an option, -1 (with why) for a malformed line. */
static int split_line(char *line, char **name, char **value, char *why, size_t whylen)
{
	char *s = trim(line), *eq, *v;
	if (*s == '\0' || *s == '#')
		return 0;
	if ((eq = strchr(s, '=')) == NULL) {
		zkr_set_why(why, whylen, "expected \"name = value\"");
		return -1;
	}
	*eq = '\0';
	*name = trim(s);
	v = trim(eq + 1);
	if (*v == '"') {
		char *close = strchr(v + 1, '"');
		if (close == NULL) {
			zkr_set_why(why, whylen, "unterminated quoted value");
			return -1;
		}
		*close = '\0';
		char *rest = trim(close + 1);
		if (*rest != '\0' && *rest != '#') {
			zkr_set_why(why, whylen, "text after the quoted value");
			return -1;
		}
		v++;
	} else {
		/* A comment starts at '#' after a blank; "a#b" stays a value. */
		for (char *h = v; (h = strchr(h, '#')) != NULL; h++) {
			if (h > v && (h[-1] == ' ' || h[-1] == '\t')) {
				*h = '\0';
				v = trim(v);
				break;
			}
		}
	}
	if (**name == '\0') {
		zkr_set_why(why, whylen, "missing option name before '='");
		return -1;
	}
	*value = v;
	return 1;
}

/* The file's options into c; seen[i]: option i was set there. */
static bool parse_file(struct zkr_config *c, const char *path, bool *seen, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *copy = NULL;
	size_t cap = 0;
	ssize_t got;
	unsigned lineno = 0;
	char what[256];
	bool ok = false;

	if (f == NULL) {
		zkr_set_why(why, whylen, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	while ((got = getline(&line, &cap, f)) != -1) {
		char *name, *value;
		lineno++;
		free(copy);
		if ((copy = strdup(line)) == NULL) {
			zkr_set_why(why, whylen, "%s:%u: out of memory", path, lineno);
			goto failed;
		}
		copy[strcspn(copy, "\r\n")] = '\0';
		if ((size_t)got != strlen(line)) {
			zkr_set_why(why, whylen, "%s:%u: NUL byte in line", path, lineno);
			goto failed;
		}
		if (got > CONFIG_LINE_MAX) {
			zkr_set_why(why, whylen, "%s:%u: line longer than %d bytes", path, lineno, CONFIG_LINE_MAX);
			goto failed;
		}
		int r = split_line(line, &name, &value, what, sizeof(what));
		if (r == 0)
			continue;
		if (r < 0) {
			zkr_set_why(why, whylen, "%s:%u: %s: %s", path, lineno, what, copy);
			goto failed;
		}
		const struct option_def *o = find_option(name, strlen(name));
		if (o == NULL || o->cli_only) {
			zkr_set_why(why, whylen, "%s:%u: unknown option \"%s\": %s", path, lineno, name, copy);
			goto failed;
		}
		size_t idx = (size_t)(o - config_options);
		if (seen[idx] && o->type != OPT_LIST) {
			zkr_set_why(why, whylen, "%s:%u: %s set twice: %s", path, lineno, o->name, copy);
			goto failed;
		}
		if (!set_option(c, o, value, !seen[idx], what, sizeof(what))) {
			zkr_set_why(why, whylen, "%s:%u: %s: %s", path, lineno, what, copy);
			goto failed;
		}
		seen[idx] = true;
	}
	if (ferror(f)) {
		zkr_set_why(why, whylen, "%s: read error: %s", path, strerror(errno));
		goto failed;
	}
	ok = true;
failed:
	free(copy);
	free(line);
	fclose(f);
	return ok;
}

bool config_parse_file(struct zkr_config *c, const char *path, char *why, size_t whylen)
{
	bool seen[CONFIG_OPTIONS_MAX] = { false };
	return parse_file(c, path, seen, why, whylen);
}

/* getopt_long's table, built from config_options[] (plus help and version). */
static struct option *long_options(void)
{
	struct option *lo = calloc(config_n_options + 3, sizeof(*lo));
	if (lo == NULL)
		return NULL;
	for (size_t i = 0; i < config_n_options; i++) {
		lo[i].name = config_options[i].name;
		lo[i].has_arg = config_options[i].type == OPT_BOOL ? no_argument : required_argument;
		lo[i].val = 1000 + (int)i;
	}
	lo[config_n_options].name = "help";
	lo[config_n_options].val = 'h';
	lo[config_n_options + 1].name = "version";
	lo[config_n_options + 1].val = 'V';
	return lo;
}

/*
 * One pass over argv. With only_config, reads nothing but --config (so the
 * file can be loaded before the rest of the command line overrides it).
 */
/* in_file: the options the file set (NULL: none), so that a list the
 * command line replaces is said, not silently dropped. */
static enum config_result parse_argv(struct zkr_config *c, int argc, char **argv, bool only_config,
				     const bool *in_file, FILE *out, char *why, size_t whylen)
{
	struct option *lo = long_options();
	bool seen[CONFIG_OPTIONS_MAX] = { false };
	enum config_result res = CONFIG_ERROR;
	char what[256];
	int ch, idx;

	if (lo == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		return CONFIG_ERROR;
	}
	optind = 0;        /* GNU: restart and re-initialise, for the second pass */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:c:hV", lo, &idx)) != -1) {
		const char *bad = argv[optind - 1];
		if (ch == 'h' || ch == 'V') {
			if (!only_config) {
				if (ch == 'h')
					config_usage(out, argv[0]);
				else
					fprintf(out, "zkrouterd (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
				res = CONFIG_EXIT;
				goto done;
			}
			continue;
		}
		if (ch == 'c')
			ch = 1000;        /* -c is --config, the first entry */
		if (ch == ':') {
			zkr_set_why(why, whylen, "option --%s needs a value (see --help)",
				optopt >= 1000 ? config_options[optopt - 1000].name : "config");
			goto done;
		}
		if (ch == '?') {
			if (optopt > 0 && optopt < 1000)
				zkr_set_why(why, whylen, "unknown option -%c (see --help)", optopt);
			else if (optopt >= 1000)
				zkr_set_why(why, whylen, "option --%s takes no value (see --help)",
					config_options[optopt - 1000].name);
			else
				zkr_set_why(why, whylen, "unknown option %s (see --help)", bad);
			goto done;
		}
		const struct option_def *o = &config_options[ch - 1000];
		if (only_config != (o->off == F(config_file)))
			continue;
		/* On the command line the last of a repeated option wins (as with
		 * most tools, so wrappers can append overrides); a repeatable
		 * option adds up instead. */
		size_t i = (size_t)(o - config_options);
		if (o->type == OPT_LIST && !seen[i] && in_file != NULL && in_file[i])
			log_warn("config: --%s on the command line replaces the %zu value%s of %s in %s "
				 "(give every one on the command line to keep them)", o->name,
				 *(size_t *)field(c, o->count_off),
				 *(size_t *)field(c, o->count_off) == 1 ? "" : "s", o->name,
				 c->config_file);
		if (!set_option(c, o, o->type == OPT_BOOL ? "yes" : optarg, !seen[i], what, sizeof(what))) {
			zkr_set_why(why, whylen, "--%s", what);
			goto done;
		}
		seen[i] = true;
	}
	if (optind < argc) {
		zkr_set_why(why, whylen, "unexpected argument \"%s\" (see --help)", argv[optind]);
		goto done;
	}
	res = CONFIG_OK;
done:
	free(lo);
	return res;
}

/* Defaults, then the file, then the command line: the full precedence. */
static enum config_result load_into(struct zkr_config *c, int argc, char **argv, FILE *out,
				    char *why, size_t whylen)
{
	enum config_result r;
	bool in_file[CONFIG_OPTIONS_MAX] = { false };
	if (!config_init(c)) {
		zkr_set_why(why, whylen, "out of memory");
		return CONFIG_ERROR;
	}
	if ((r = parse_argv(c, argc, argv, true, NULL, out, why, whylen)) != CONFIG_OK)
		return r;
	if (c->config_file != NULL && !parse_file(c, c->config_file, in_file, why, whylen))
		return CONFIG_ERROR;
	if ((r = parse_argv(c, argc, argv, false, in_file, out, why, whylen)) != CONFIG_OK)
		return r;
	if (!config_check(c, why, whylen))
		return CONFIG_ERROR;
	c->cli_argc = argc;
	c->cli_argv = argv;
	return CONFIG_OK;
}

enum config_result config_load(struct zkr_config *c, int argc, char **argv, FILE *out,
			       char *why, size_t whylen)
{
	enum config_result r = load_into(c, argc, argv, out, why, whylen);
	if (r != CONFIG_OK)
		config_free(c);
	return r;
}

static bool option_equal(const struct zkr_config *a, const struct zkr_config *b,
			 const struct option_def *o)
{
	const char *pa = (const char *)a + o->off, *pb = (const char *)b + o->off;
	switch (o->type) {
	case OPT_STR:
	case OPT_STR_OFF:
	case OPT_LEVEL: {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
		return (sa == NULL && sb == NULL) || (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
	}
	case OPT_LIST: {
		size_t na = *(const size_t *)((const char *)a + o->count_off);
		size_t nb = *(const size_t *)((const char *)b + o->count_off);
		char *const *la = *(char **const *)pa, *const *lb = *(char **const *)pb;
		if (na != nb)
			return false;
		for (size_t i = 0; i < na; i++)
			if (strcmp(la[i], lb[i]) != 0)
				return false;
		return true;
	}
	case OPT_BOOL:
		return *(const bool *)pa == *(const bool *)pb;
	case OPT_UINT:
		return *(const unsigned *)pa == *(const unsigned *)pb;
	case OPT_INT:
		return *(const int *)pa == *(const int *)pb;
	case OPT_SIZE:
		return *(const size_t *)pa == *(const size_t *)pb;
	}
	return false;
}

/* Moves option o's value from src to dst (dst's old value is freed). */
static void option_move(struct zkr_config *dst, struct zkr_config *src, const struct option_def *o)
{
	switch (o->type) {
	case OPT_STR:
	case OPT_STR_OFF:
	case OPT_LEVEL: {
		char **d = field(dst, o->off), **s = field(src, o->off);
		free(*d);
		*d = *s;
		*s = NULL;
		return;
	}
	case OPT_LIST: {
		char ***d = field(dst, o->off), ***s = field(src, o->off);
		size_t *dn = field(dst, o->count_off), *sn = field(src, o->count_off);
		free_list(dst, o);
		*d = *s;
		*dn = *sn;
		*s = NULL;
		*sn = 0;
		return;
	}
	case OPT_BOOL:
		*(bool *)field(dst, o->off) = *(bool *)field(src, o->off);
		return;
	case OPT_UINT:
		*(unsigned *)field(dst, o->off) = *(unsigned *)field(src, o->off);
		return;
	case OPT_INT:
		*(int *)field(dst, o->off) = *(int *)field(src, o->off);
		return;
	case OPT_SIZE:
		*(size_t *)field(dst, o->off) = *(size_t *)field(src, o->off);
		return;
	}
}

/* Appends ", name" (or "name" first) to a bounded list of names. */
static void name_list_add(char *list, size_t size, size_t *used, const char *name)
{
	if (*used >= size)
		return;
	int n = snprintf(list + *used, size - *used, "%s%s", *used ? ", " : "", name);
	if (n > 0)
		*used += (size_t)n;
}

bool config_reload(struct zkr_config *c, char *why, size_t whylen)
{
	struct zkr_config fresh;
	FILE *devnull;
	char applied[512] = "", ignored[512] = "";
	size_t n_applied = 0, n_ignored = 0;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (c->config_file == NULL)
		return true;
	if ((devnull = fopen("/dev/null", "w")) == NULL) {
		zkr_set_why(why, whylen, "cannot open /dev/null: %s", strerror(errno));
		return false;
	}
	enum config_result r = load_into(&fresh, c->cli_argc, c->cli_argv, devnull, why, whylen);
	fclose(devnull);
	if (r != CONFIG_OK) {
		config_free(&fresh);
		return false;
	}
	for (size_t i = 0; i < config_n_options; i++) {
		const struct option_def *o = &config_options[i];
		if (option_equal(c, &fresh, o))
			continue;
		if (o->reloadable) {
			option_move(c, &fresh, o);
			name_list_add(applied, sizeof(applied), &n_applied, o->name);
		} else {
			name_list_add(ignored, sizeof(ignored), &n_ignored, o->name);
		}
	}
	config_free(&fresh);
	if (n_applied > 0 || n_ignored > 0)
		zkr_set_why(why, whylen, "applied: %s%s%s", n_applied ? applied : "nothing",
			n_ignored ? "; changed but not reloadable (restart to apply): " : "", ignored);
	return true;
}
