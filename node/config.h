/*
 * zkrouterd's configuration: one struct filled from a declarative table of
 * options (config.c). The same table drives the command line, the config
 * file, the defaults, the bounds checks and --help, so an option can never
 * exist in one place and not the other.
 *
 * Precedence: built-in default < config file < command line. SIGHUP
 * re-reads the file and applies only the options marked reloadable; the
 * command line still wins over the file after a reload.
 *
 * Note on includes: this file is named like autoconf's config.h. Files in
 * node/ include autoconf's header as <config.h> and this one as
 * "node/config.h". This header pulls in <config.h> itself, so a node/ file
 * that writes "config.h" still gets autoconf's definitions.
 */
#ifndef ZKR_NODE_CONFIG_H
#define ZKR_NODE_CONFIG_H

#include <config.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct zkr_config {
	char *config_file;                /* --config; NULL: none */
	bool check_config;                /* --check-config: print the result, exit */

	/* ZooKeeper and identity */
	char *zk_connect;                 /* "h:p,h:p[/chroot]" */
	char *zk_auth;                    /* digest "user:password", NULL: none; read from
	                                     zk_auth_file when that is set */
	char *zk_auth_file;               /* --auth-file, or $ZKROUTER_AUTH_FILE; NULL: none */
	char *node_id;                    /* default: the host name */
	int zk_session_timeout_ms;        /* default 10000 */
	char *resolver;                   /* DNS server "IP[:PORT]" for instance host names; NULL: resolv.conf */
	char *state_dir;                  /* where the last table is kept; NULL: off */
	unsigned zk_startup_wait_ms;      /* at start, route from state_dir after this; default 2000 */

	/* listeners */
	char **listen;                    /* "ADDR:PORT[,proxy]", may repeat; NULL-terminated too */
	size_t n_listen;
	char *admin;                      /* "ADDR:PORT", default 127.0.0.1:9901; "off" disables */
	char *workers;                    /* worker threads: "auto" (default: the CPUs we may run on) or 1-256 */
	char **tls_listen;                /* HTTPS listeners, "ADDR:PORT[,proxy]", may repeat; none by default */
	size_t n_tls_listen;
	char **tls_cert;                  /* PEM certificate (chain) files, may repeat; the first is the default */
	size_t n_tls_cert;
	char **tls_key;                   /* tls_key[i] is tls_cert[i]'s key; certs past the last key hold their own */
	size_t n_tls_key;
	char *tls_cert_dir;               /* every *.pem there: chain plus key; NULL: none */
	bool tls_strict_sni;              /* unknown SNI name: unrecognized_name alert */
	char *tls_min_version;            /* "1.2" (default) or "1.3" */
	char *tls_ciphers;                /* OpenSSL cipher list for TLS <= 1.2 */
	char *tls_ciphersuites;           /* TLS 1.3 suites */
	unsigned tls_ticket_rotate_s;     /* session-ticket key rotation period; default 43200 */

	/* logging */
	char *access_log;                 /* path, "-" for stdout, NULL off */
	char *access_log_format;          /* "logfmt" (default) or "json" */
	unsigned metrics_app_series;      /* apps with per-app series in /metrics; default 50, 0: none */
	char *log_level;                  /* error, warn, info, debug */
	bool syslog;

	/* request limits */
	size_t max_head_bytes;            /* 431 past it; default 32768 */
	unsigned max_headers;             /* 431 past it; default 100 */
	size_t max_target_bytes;          /* 414 past it; default 8192 */
	char *upgrade_protocols;          /* Upgrade tokens tunnelled; default "websocket", NULL: none */
	bool allow_underscore_headers;    /* forward request header names with '_'; default no */

	/* HTTP/2 to clients (h2.c) */
	bool h2c;                         /* HTTP/2 with prior knowledge on plain listeners */
	unsigned h2_max_concurrent_streams;   /* per connection; default 100 */
	unsigned h2_max_resets_per_s;     /* streams a client may reset (Rapid Reset bound) */
	unsigned h2_max_control_per_s;    /* PING/SETTINGS/PRIORITY/empty DATA frames */

	/* timeouts */
	unsigned head_timeout_ms;         /* 408; default 10000 */
	unsigned tls_handshake_timeout_ms; /* a TLS handshake not done by then is cut; default 10000 */
	unsigned client_idle_timeout_ms;  /* keep-alive idle; default 60000 */
	unsigned connect_timeout_ms;      /* default 2000 */
	unsigned response_timeout_ms;     /* first response byte, 504; default 60000 */
	unsigned tunnel_idle_timeout_ms;  /* default 300000 */

	/* connections and upstreams */
	unsigned max_client_connections;  /* default 10000 */
	unsigned upstream_idle_timeout_ms;/* pooled conn idle; default 4000 */
	unsigned upstream_pool_max_idle;  /* per instance, a cap; default 1000 */
	unsigned h2c_backend_max_streams; /* per connection to an h2c instance; default 100 */
	unsigned h2c_backend_max_connections; /* per h2c instance per worker; default 4 */
	unsigned retries;                 /* other instances tried; default 3 */
	unsigned retry_budget_ms;         /* total time for retries; default 10000 */
	unsigned eject_base_ms;           /* passive ejection backoff; default 1000 */
	unsigned eject_max_ms;            /* default 30000 */
	unsigned drain_timeout_ms;        /* SIGTERM drain; default 30000 */
	unsigned drain_delay_ms;          /* SIGTERM: healthz 503 this long before
	                                     the listeners close; default 0 */
	size_t buffer_high_bytes;         /* bufferevent high watermark; default 65536 */

	/* per client address (node/limits.c) and per app */
	unsigned max_connections_per_ip;  /* 429 past it; 0: off (default) */
	unsigned max_requests_per_ip_per_s; /* token bucket rate, 429 past it; 0: off */
	unsigned requests_per_ip_burst;   /* bucket size; 0: the rate */
	unsigned per_ip_table_size;       /* addresses tracked at once; default 65536 */
	unsigned app_queue_timeout_ms;    /* wait for an app's concurrency slot; default 10000 */

	/* active health checks (apps with a health_path) */
	unsigned health_timeout_ms;       /* per check; default 2000 */
	unsigned health_interval_ms;      /* when the app names none; default 5000 */
	unsigned health_fall;             /* failures in a row to mark down; default 2 */
	unsigned health_rise;             /* successes in a row to mark up; default 2 */

	/* kept by config_load so config_reload can let the command line win again */
	int cli_argc;
	char **cli_argv;
};

/* The default state-dir: one that cannot be created or written is only
 * warned about, where one set explicitly stops the start. */
#define CONFIG_STATE_DIR_DEFAULT "/var/lib/zkrouter"

enum config_result {
	CONFIG_OK,                        /* run */
	CONFIG_EXIT,                      /* --help or --version printed: exit 0 */
	CONFIG_ERROR,                     /* `why` says what; exit 2 */
};

/* Fills every field with its default (allocates strings). */
bool config_init(struct zkr_config *c);
void config_free(struct zkr_config *c);

/*
 * The whole load: defaults, then the file named by --config (if any), then
 * the command line. Writes --help/--version to `out`. On error, `why` names
 * the option, or the file, line and text.
 */
enum config_result config_load(struct zkr_config *c, int argc, char **argv, FILE *out,
			       char *why, size_t whylen);

/* Applies one file on top of `c` (every option). */
bool config_parse_file(struct zkr_config *c, const char *path, char *why, size_t whylen);

/*
 * SIGHUP: re-reads c->config_file into a fresh copy, re-applies the
 * command line (kept from config_load), and copies only the reloadable
 * options into `c`. A file that no longer parses changes nothing (false,
 * with the file:line error in `why`). On success `why` is "" when nothing
 * changed, else "applied: a, b" and, for changed options that cannot be
 * reloaded, "; changed but not reloadable (restart to apply): c".
 */
bool config_reload(struct zkr_config *c, char *why, size_t whylen);

/* Whether the option named `name` is applied on SIGHUP. */
bool config_option_reloadable(const char *name);

/* Splits "ADDR:PORT" or "[V6]:PORT" (port 1-65535) into a NUL-terminated
 * address and a port. False on anything else. */
bool config_split_addr(const char *s, char *addr, size_t addrsz, unsigned short *port);

/* A listener's flags, after its address: "ADDR:PORT,proxy". */
#define CONFIG_LISTEN_PROXY 0x1u   /* connections begin with a PROXY protocol header */

/* Splits a listener "ADDR:PORT[,FLAG]..." into "ADDR:PORT" (copied into
 * addr_port) and its CONFIG_LISTEN_* flags. False for an unknown or empty
 * flag, or an address that does not fit; the address itself is checked by
 * config_split_addr. */
bool config_split_listen(const char *spec, char *addr_port, size_t addrsz, unsigned *flags);

/* Writes the effective configuration as a config file (one "name = value"
 * per line, every option, credentials left out), for --check-config. */
void config_dump(FILE *out, const struct zkr_config *c);

/* The --help text, generated from the option table. */
void config_usage(FILE *out, const char *prog);

#endif
