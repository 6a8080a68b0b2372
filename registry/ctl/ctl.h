/*
 * What zkrouterctl's command files share: the parsed global options, the
 * ZooKeeper connection, exit codes, and the output helpers (human tables
 * and JSON) so that every command prints in the same way.
 */
#ifndef ZKR_CTL_H
#define ZKR_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "registry/ctl/ctl_zk.h"
#include "registry/record.h"

/* Exit codes, documented in --help. */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_CHECK = 1,        /* ran, but the answer is "no" (routers disagree, no routers,
				    * certificates expiring) */
	CTL_EXIT_USAGE = 2,        /* bad command line */
	CTL_EXIT_FAIL = 3,         /* ZooKeeper unreachable, refused, unknown domain, ... */
};

struct ctl {
	const char *zk;            /* connect string as given */
	const char *auth;          /* operator "user:password" or NULL */
	bool json;
	int timeout_ms;
	struct ctl_zk conn;
	bool opened;
};

/* Connects on first use; prints the error and returns false on failure.
 * ctl_connect is for commands that only read: it never creates a missing
 * chroot. Commands that write use ctl_connect_to_write. */
bool ctl_connect(struct ctl *c);
bool ctl_connect_to_write(struct ctl *c);

/* Prints "zkrouterctl: <msg>" to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ctl_err plus "try --help"; returns CTL_EXIT_USAGE. */
int ctl_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports a failed ZooKeeper request on path; returns CTL_EXIT_FAIL. */
int ctl_zk_fail(const char *what, const char *path, int rc);

/* Checks a domain argument; prints why not and returns false. */
bool ctl_check_domain(const char *domain);

/* Strict number parsing for options: whole string, within [lo, hi]. */
bool ctl_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/*
 * An identity a command writes into ACLs (--owner, --router-auth), given
 * as --NAME USER:PASS or, off the command line, --NAME-file FILE (not
 * both; the file as for --auth-file, and not empty). A file is read into
 * *buf, which the caller frees with zkr_auth_free; *value then points at
 * it. CTL_EXIT_OK, or CTL_EXIT_USAGE with the message printed.
 */
int ctl_identity(const char *name, const char *file, char **buf, const char **value);

/* JSON output. */
void json_str(FILE *f, const char *s);
void json_strn(FILE *f, const char *s, size_t n);
/* ,"key":["v0","v1",...] */
void json_str_array(FILE *f, const char *key, char *const *v, size_t n);
/* A router's client addresses for a text column: plain ones, then the
 * HTTPS ones marked "tls:"; "-" when none. */
void ctl_router_addresses(char *out, size_t outlen, char *const *listen, size_t n_listen,
			  char *const *tls_listen, size_t n_tls_listen);

/* "2026-11-26T23:04:05.123Z" for a Unix time in ms (0 -> "-"). */
void ctl_format_time(uint64_t ms, char *out, size_t outlen);
uint64_t ctl_now_ms(void);

/* Human and JSON renderings of records. */
void ctl_print_app_config_json(FILE *f, const record_app_config *cfg);
/* The members of an instance object, without the braces. */
void ctl_print_instance_fields(FILE *f, const char *id, const record_instance *r);
/* One-line summaries for tables and `watch`. */
void ctl_app_config_summary(const record_app_config *cfg, char *out, size_t outlen);

/* Commands. argv[0] is the command word. */
int ctl_cmd_init(struct ctl *c, int argc, char **argv);
int ctl_cmd_app(struct ctl *c, int argc, char **argv);
int ctl_cmd_apps(struct ctl *c, int argc, char **argv);
int ctl_cmd_instances(struct ctl *c, int argc, char **argv);
int ctl_cmd_routers(struct ctl *c, int argc, char **argv);
int ctl_cmd_dns(struct ctl *c, int argc, char **argv);
int ctl_cmd_watch(struct ctl *c, int argc, char **argv);
int ctl_cmd_cert(struct ctl *c, int argc, char **argv);
int ctl_cmd_certs(struct ctl *c, int argc, char **argv);

#endif
