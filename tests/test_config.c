/*
 * Configuration suite: defaults from the option table, the file syntax and
 * its file:line errors, bounds, precedence (command line over file),
 * repeatable --listen, the HTTPS options, and what SIGHUP reloads and what
 * it leaves alone.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/config.h"
#include "tests/lib/unit.h"

static char why[512];
static char path[64];
static FILE *devnull;

#define ARGV(...) ((char *[]){ "zkrouterd", __VA_ARGS__, NULL })

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

static enum config_result load(struct zkr_config *c, int argc, char **argv)
{
	why[0] = '\0';
	return config_load(c, argc, argv, devnull, why, sizeof(why));
}

static int suite_init(void)
{
	int fd;
	strcpy(path, "/tmp/zkr-test-config.XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return -1;
	close(fd);
	devnull = fopen("/dev/null", "w");
	return devnull == NULL ? -1 : 0;
}

static int suite_clean(void)
{
	unlink(path);
	fclose(devnull);
	return 0;
}

static void test_defaults(void)
{
	struct zkr_config c;
	char **argv = ARGV("--zk", "127.0.0.1:2181", "--node-id", "r1");
	CU_ASSERT_EQUAL_FATAL(load(&c, 5, argv), CONFIG_OK);
	CU_ASSERT_STRING_EQUAL(c.zk_connect, "127.0.0.1:2181");
	CU_ASSERT_STRING_EQUAL(c.node_id, "r1");
	CU_ASSERT_PTR_NULL(c.zk_auth);
	CU_ASSERT_EQUAL(c.zk_session_timeout_ms, 10000);
	CU_ASSERT_STRING_EQUAL(c.upgrade_protocols, "websocket");
	CU_ASSERT_FALSE(c.allow_underscore_headers);
	CU_ASSERT_EQUAL_FATAL(c.n_listen, 1);
	CU_ASSERT_STRING_EQUAL(c.listen[0], "0.0.0.0:8080");
	CU_ASSERT_PTR_NULL(c.listen[1]);
	CU_ASSERT_STRING_EQUAL(c.admin, "127.0.0.1:9901");
	CU_ASSERT_PTR_NULL(c.access_log);
	CU_ASSERT_STRING_EQUAL(c.log_level, "info");
	CU_ASSERT_FALSE(c.syslog);
	CU_ASSERT_EQUAL(c.max_head_bytes, 32768);
	CU_ASSERT_EQUAL(c.max_headers, 100);
	CU_ASSERT_EQUAL(c.max_target_bytes, 8192);
	CU_ASSERT_EQUAL(c.head_timeout_ms, 10000);
	CU_ASSERT_EQUAL(c.client_idle_timeout_ms, 60000);
	CU_ASSERT_EQUAL(c.connect_timeout_ms, 2000);
	CU_ASSERT_EQUAL(c.response_timeout_ms, 60000);
	CU_ASSERT_EQUAL(c.tunnel_idle_timeout_ms, 300000);
	CU_ASSERT_EQUAL(c.max_client_connections, 10000);
	CU_ASSERT_EQUAL(c.upstream_idle_timeout_ms, 4000);
	CU_ASSERT_EQUAL(c.upstream_pool_max_idle, 1000);
	CU_ASSERT_EQUAL(c.retries, 3);
	CU_ASSERT_EQUAL(c.retry_budget_ms, 10000);
	CU_ASSERT_EQUAL(c.eject_base_ms, 1000);
	CU_ASSERT_EQUAL(c.eject_max_ms, 30000);
	CU_ASSERT_EQUAL(c.drain_timeout_ms, 30000);
	CU_ASSERT_EQUAL(c.buffer_high_bytes, 65536);
	CU_ASSERT_EQUAL(c.health_timeout_ms, 2000);
	config_free(&c);
}

static void test_node_id_defaults_to_hostname(void)
{
	struct zkr_config c;
	char hn[256];
	CU_ASSERT_EQUAL_FATAL(gethostname(hn, sizeof(hn)), 0);
	char **argv = ARGV("--zk", "127.0.0.1:2181");
	CU_ASSERT_EQUAL_FATAL(load(&c, 3, argv), CONFIG_OK);
	CU_ASSERT_STRING_EQUAL(c.node_id, hn);
	config_free(&c);
}

static void test_zk_required(void)
{
	struct zkr_config c;
	char **argv = ARGV("--node-id", "r1");
	CU_ASSERT_EQUAL(load(&c, 3, argv), CONFIG_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "zk"));
}

/* Command-line mistakes, each with the words its message must carry. */
static void test_bad_command_lines(void)
{
	static const struct {
		char *args[4];
		const char *word;
	} cases[] = {
		{ { "--zk", "z:1", "--bogus" }, "unknown option --bogus" },
		{ { "--zk", "z:1", "--retries" }, "--retries needs a value" },
		{ { "--zk", "z:1", "--retries=eleven" }, "not a whole number" },
		{ { "--zk", "z:1", "--retries=11" }, "out of range 0-10" },
		{ { "--zk", "z:1", "--max-head-bytes=1" }, "out of range 1024-1048576" },
		{ { "--zk", "z:1", "--max-connections-per-ip=1000001" }, "out of range 0-1000000" },
		{ { "--zk", "z:1", "--per-ip-table-size=4" }, "out of range 8-16777216" },
		{ { "--zk", "z:1", "--listen=nowhere" }, "listen" },
		{ { "--zk", "z:1", "--listen=1.2.3.4:0" }, "listen" },
		{ { "--zk", "z:1", "--listen=1.2.3.4:80,proxyy" }, "listen: \"1.2.3.4:80,proxyy\" is not" },
		{ { "--zk", "z:1", "--listen=1.2.3.4:80," }, "listen" },
		{ { "--zk", "z:1", "--listen=nowhere,proxy" }, "listen" },
		{ { "--zk", "z:1", "--admin=[::1]:99999" }, "admin" },
		{ { "--zk", "z:1", "--log-level=loud" }, "error, warn, info, debug" },
		{ { "--zk", "z:1", "--node-id=a/b" }, "znode" },
		{ { "--zk", "z:1", "stray" }, "unexpected argument \"stray\"" },
		{ { "--zk", "z:1", "--syslog=yes" }, "takes no value" },
		{ { "--zk", "z:1", "--auth=nocolon" }, "USER:PASSWORD" },
		{ { "--zk", "z:1", "--config=/nonexistent/zkr.conf" }, "/nonexistent/zkr.conf: cannot open" },
		{ { "--zk", "z:1", "--eject-max-ms=20" }, "eject-max-ms" },
		{ { "--zk", "z:1", "--tls-listen=nowhere" }, "tls-listen: \"nowhere\" is not ADDR:PORT" },
		{ { "--zk", "z:1", "--tls-key=/k.pem" }, "tls-key is set without tls-cert" },
		{ { "--zk", "z:1", "--tls-min-version=1.1" }, "tls-min-version: \"1.1\" is not 1.2 or 1.3" },
		{ { "--zk", "z:1", "--tls-ciphers=NOPE-NOTHING" }, "tls-ciphers: no cipher OpenSSL knows" },
		{ { "--zk", "z:1", "--tls-ciphersuites=TLS_NOPE" }, "tls-ciphersuites: \"TLS_NOPE\"" },
		{ { "--zk", "z:1", "--upgrade-protocols=h2c" }, "h2c cannot be tunnelled" },
		{ { "--zk", "z:1", "--upgrade-protocols=websocket, H2C" }, "h2c cannot be tunnelled" },
		{ { "--zk", "z:1", "--upgrade-protocols=web;socket" }, "comma-separated list" },
		{ { "--zk", "z:1", "--upgrade-protocols=," }, "comma-separated list" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zkr_config c;
		char *argv[] = { "zkrouterd", cases[i].args[0], cases[i].args[1], cases[i].args[2], NULL };
		CU_ASSERT_EQUAL(load(&c, 4, argv), CONFIG_ERROR);
		if (strstr(why, cases[i].word) == NULL)
			fprintf(stderr, "case %zu: \"%s\" lacks \"%s\"\n", i, why, cases[i].word);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].word));
	}
}

/* The HTTPS options: none by default; a listener needs a certificate;
 * the lists repeat and the file and command line combine as for listen;
 * the policy defaults to ECDHE with AEAD suites from TLS 1.2 up. */
static void test_tls_options(void)
{
	struct zkr_config c;
	char **plain = ARGV("--zk", "z:1", "--node-id", "r1");
	CU_ASSERT_EQUAL_FATAL(load(&c, 5, plain), CONFIG_OK);
	CU_ASSERT_EQUAL(c.n_tls_listen, 0);
	CU_ASSERT_PTR_NULL(c.tls_listen);
	CU_ASSERT_PTR_NULL(c.tls_cert);
	CU_ASSERT_PTR_NULL(c.tls_key);
	CU_ASSERT_PTR_NULL(c.tls_cert_dir);
	CU_ASSERT_FALSE(c.tls_strict_sni);
	CU_ASSERT_STRING_EQUAL(c.tls_min_version, "1.2");
	CU_ASSERT_PTR_NULL(strstr(c.tls_ciphers, "CBC"));
	CU_ASSERT_PTR_NOT_NULL(strstr(c.tls_ciphers, "ECDHE-RSA-AES128-GCM-SHA256"));
	CU_ASSERT_PTR_NOT_NULL(strstr(c.tls_ciphersuites, "TLS_AES_128_GCM_SHA256"));
	config_free(&c);

	char **one = ARGV("--zk", "z:1", "--node-id", "r1", "--tls-listen", "127.0.0.1:8443",
			  "--tls-listen", "[::1]:8443", "--tls-cert", "/c.pem", "--tls-key", "/k.pem");
	CU_ASSERT_EQUAL_FATAL(load(&c, 13, one), CONFIG_OK);
	CU_ASSERT_EQUAL_FATAL(c.n_tls_listen, 2);
	CU_ASSERT_STRING_EQUAL(c.tls_listen[0], "127.0.0.1:8443");
	CU_ASSERT_STRING_EQUAL(c.tls_listen[1], "[::1]:8443");
	CU_ASSERT_PTR_NULL(c.tls_listen[2]);
	CU_ASSERT_EQUAL_FATAL(c.n_tls_cert, 1);
	CU_ASSERT_STRING_EQUAL(c.tls_cert[0], "/c.pem");
	CU_ASSERT_STRING_EQUAL(c.tls_key[0], "/k.pem");
	CU_ASSERT_EQUAL(c.n_listen, 1);        /* the plain listener stays */
	config_free(&c);

	/* Several pairs; a certificate past the last key holds its own; a directory alone will do. */
	char **pairs = ARGV("--zk", "z:1", "--tls-listen", "127.0.0.1:8443", "--tls-cert", "/rsa.pem",
			    "--tls-key", "/rsa-key.pem", "--tls-cert", "/ec.pem", "--tls-cert", "/both.pem",
			    "--tls-key", "/ec-key.pem", "--tls-strict-sni", "--tls-min-version", "1.3");
	CU_ASSERT_EQUAL_FATAL(load(&c, 18, pairs), CONFIG_OK);
	CU_ASSERT_EQUAL_FATAL(c.n_tls_cert, 3);
	CU_ASSERT_EQUAL_FATAL(c.n_tls_key, 2);
	CU_ASSERT_STRING_EQUAL(c.tls_cert[1], "/ec.pem");
	CU_ASSERT_STRING_EQUAL(c.tls_key[1], "/ec-key.pem");
	CU_ASSERT_TRUE(c.tls_strict_sni);
	CU_ASSERT_STRING_EQUAL(c.tls_min_version, "1.3");
	config_free(&c);
	char **dir = ARGV("--zk", "z:1", "--tls-listen", "127.0.0.1:8443", "--tls-cert-dir", "/certs");
	CU_ASSERT_EQUAL_FATAL(load(&c, 7, dir), CONFIG_OK);
	CU_ASSERT_STRING_EQUAL(c.tls_cert_dir, "/certs");
	CU_ASSERT_EQUAL(c.n_tls_cert, 0);
	config_free(&c);
	CU_ASSERT_TRUE(config_option_reloadable("tls-cert"));
	CU_ASSERT_TRUE(config_option_reloadable("tls-ciphers"));
	CU_ASSERT_FALSE(config_option_reloadable("tls-listen"));

	/* In the file; the command line's tls-cert wins, its tls-listen replaces. */
	write_file("zk = z:1\ntls_listen = 127.0.0.1:1443\ntls-listen = 127.0.0.1:2443\n"
		   "tls-cert = /file-c.pem\ntls-key = /file-k.pem\n");
	char **f1 = ARGV("--config", path, "--node-id", "r1");
	CU_ASSERT_EQUAL_FATAL(load(&c, 5, f1), CONFIG_OK);
	CU_ASSERT_EQUAL(c.n_tls_listen, 2);
	CU_ASSERT_STRING_EQUAL(c.tls_cert[0], "/file-c.pem");
	config_free(&c);
	char **f2 = ARGV("--config", path, "--node-id", "r1", "--tls-cert", "/cli.pem",
			 "--tls-listen", "127.0.0.1:3443");
	CU_ASSERT_EQUAL_FATAL(load(&c, 9, f2), CONFIG_OK);
	CU_ASSERT_EQUAL_FATAL(c.n_tls_listen, 1);
	CU_ASSERT_STRING_EQUAL(c.tls_listen[0], "127.0.0.1:3443");
	CU_ASSERT_EQUAL_FATAL(c.n_tls_cert, 1);
	CU_ASSERT_STRING_EQUAL(c.tls_cert[0], "/cli.pem");
	CU_ASSERT_STRING_EQUAL(c.tls_key[0], "/file-k.pem");
	config_free(&c);

	/* More keys than certificates: refused. */
	char **f3 = ARGV("--config", path, "--node-id", "r1", "--tls-key", "/a.pem", "--tls-key", "/b.pem");
	CU_ASSERT_EQUAL(load(&c, 9, f3), CONFIG_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "2 keys for 1 certificates"));

	/* A file error names the file and line. */
	write_file("zk = z:1\ntls-listen = 127.0.0.1:99999\n");
	char **f4 = ARGV("--config", path, "--node-id", "r1");
	CU_ASSERT_EQUAL(load(&c, 5, f4), CONFIG_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "tls-listen"));
}

static void test_last_wins_on_command_line(void)
{
	struct zkr_config c;
	char **argv = ARGV("--zk", "z:1", "--retries", "1", "--node-id", "a", "--retries=2", "--zk=z:2");
	CU_ASSERT_EQUAL_FATAL(load(&c, 9, argv), CONFIG_OK);
	CU_ASSERT_STRING_EQUAL(c.zk_connect, "z:2");
	CU_ASSERT_EQUAL(c.retries, 2);
	config_free(&c);
}

static void test_help_and_version(void)
{
	struct zkr_config c;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	CU_ASSERT_FATAL(out != NULL);
	char **argv = ARGV("--help");
	CU_ASSERT_EQUAL(config_load(&c, 2, argv, out, why, sizeof(why)), CONFIG_EXIT);
	char **argv2 = ARGV("--version");
	CU_ASSERT_EQUAL(config_load(&c, 2, argv2, out, why, sizeof(why)), CONFIG_EXIT);
	fclose(out);
	/* Every option of the table is in the help, with its default. */
	static const char *const words[] = {
		"--zk CONNECT", "--listen ADDR:PORT", "--admin ADDR:PORT", "--node-id ID",
		"--config FILE", "--access-log PATH", "--auth USER:PASS", "--syslog",
		"--retries N", "(default 3)", "[0-10]", "--drain-timeout-ms MS", "[R]",
		"--help", "--version", PACKAGE_VERSION,
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		CU_ASSERT_PTR_NOT_NULL(strstr(text, words[i]));
	free(text);
}

static void test_file_and_precedence(void)
{
	struct zkr_config c;
	write_file("# a router\n"
		   "\n"
		   "zk = 10.0.0.1:2181,10.0.0.2:2181/zkrouter   # the ensemble\n"
		   "node_id = from-file\n"
		   "  retries=5\n"
		   "listen = 127.0.0.1:8001\n"
		   "listen = [::1]:8002\n"
		   "auth = \"user:pa#ss \"\n"
		   "access-log = /var/log/a#b\n"
		   "syslog = on\n"
		   "max-head-bytes = 64k\n");
	char **argv = ARGV("--config", path, "--node-id", "from-cli");
	CU_ASSERT_EQUAL_FATAL(load(&c, 5, argv), CONFIG_OK);
	CU_ASSERT_STRING_EQUAL(c.zk_connect, "10.0.0.1:2181,10.0.0.2:2181/zkrouter");
	CU_ASSERT_STRING_EQUAL(c.node_id, "from-cli");
	CU_ASSERT_EQUAL(c.retries, 5);
	CU_ASSERT_EQUAL_FATAL(c.n_listen, 2);
	CU_ASSERT_STRING_EQUAL(c.listen[0], "127.0.0.1:8001");
	CU_ASSERT_STRING_EQUAL(c.listen[1], "[::1]:8002");
	CU_ASSERT_STRING_EQUAL(c.zk_auth, "user:pa#ss ");
	CU_ASSERT_STRING_EQUAL(c.access_log, "/var/log/a#b");
	CU_ASSERT_TRUE(c.syslog);
	CU_ASSERT_EQUAL(c.max_head_bytes, 65536);
	config_free(&c);

	/* A --listen on the command line replaces the file's list... */
	char **argv2 = ARGV("--config", path, "--listen", "127.0.0.1:9000");
	CU_ASSERT_EQUAL_FATAL(load(&c, 5, argv2), CONFIG_OK);
	CU_ASSERT_EQUAL_FATAL(c.n_listen, 1);
	CU_ASSERT_STRING_EQUAL(c.listen[0], "127.0.0.1:9000");
	config_free(&c);

	/* ...and repeats add up. */
	char **argv3 = ARGV("-c", path, "--listen", "127.0.0.1:9000", "--listen=127.0.0.2:9001",
			    "--retries", "0", "--access-log", "off");
	CU_ASSERT_EQUAL_FATAL(load(&c, 10, argv3), CONFIG_OK);
	CU_ASSERT_EQUAL_FATAL(c.n_listen, 2);
	CU_ASSERT_STRING_EQUAL(c.listen[1], "127.0.0.2:9001");
	CU_ASSERT_EQUAL(c.retries, 0);
	CU_ASSERT_PTR_NULL(c.access_log);
	config_free(&c);
}

/* File mistakes: the message names the file, the line number and the text. */
static void test_file_errors(void)
{
	static const struct {
		const char *text;
		const char *where;
		const char *word;
	} cases[] = {
		{ "zk = z:1\n\n# c\nretries = 42\n", ":4:", "retries: 42 out of range 0-10: retries = 42" },
		{ "zk = z:1\nretires = 2\n", ":2:", "unknown option \"retires\": retires = 2" },
		{ "zk = z:1\nretries\n", ":2:", "expected \"name = value\": retries" },
		{ "zk = z:1\n= 3\n", ":2:", "missing option name" },
		{ "zk = z:1\nauth = \"u:p\n", ":2:", "unterminated quoted value" },
		{ "zk = z:1\nauth = \"u:p\" x\n", ":2:", "text after the quoted value" },
		{ "zk = z:1\nretries = 1\nretries = 2\n", ":3:", "retries set twice" },
		{ "zk = z:1\nconfig = /etc/other\n", ":2:", "unknown option \"config\"" },
		{ "zk = z:1\nsyslog = maybe\n", ":2:", "not yes/no" },
		{ "zk = z:1\nconnect-timeout-ms = -5\n", ":2:", "not a whole number" },
		{ "zk = z:1\nmax-head-bytes = 99999999999999999999k\n", ":2:", "not a whole number" },
		{ "zk = \n", ":1:", "zk: empty value" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zkr_config c;
		char want[128];
		write_file(cases[i].text);
		char **argv = ARGV("--config", path);
		CU_ASSERT_EQUAL(load(&c, 3, argv), CONFIG_ERROR);
		snprintf(want, sizeof(want), "%s%s", path, cases[i].where);
		if (strstr(why, want) == NULL || strstr(why, cases[i].word) == NULL)
			fprintf(stderr, "case %zu: \"%s\"\n", i, why);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, want));
		CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].word));
	}

	/* A NUL byte in a line is refused, not silently cut. */
	FILE *f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fwrite("zk = z:1\nnode-id = a\0b\n", 1, 24, f);
	fclose(f);
	struct zkr_config c;
	char **argv = ARGV("--config", path);
	CU_ASSERT_EQUAL(load(&c, 3, argv), CONFIG_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, ":2: NUL byte"));
}

static void test_reload(void)
{
	struct zkr_config c;
	CU_ASSERT_TRUE(config_option_reloadable("retries"));
	CU_ASSERT_TRUE(config_option_reloadable("upgrade-protocols"));
	CU_ASSERT_TRUE(config_option_reloadable("allow-underscore-headers"));
	CU_ASSERT_TRUE(config_option_reloadable("log_level"));
	CU_ASSERT_FALSE(config_option_reloadable("listen"));
	CU_ASSERT_TRUE(config_option_reloadable("max-connections-per-ip"));
	CU_ASSERT_TRUE(config_option_reloadable("max_requests_per_ip_per_s"));
	CU_ASSERT_TRUE(config_option_reloadable("requests-per-ip-burst"));
	CU_ASSERT_TRUE(config_option_reloadable("app-queue-timeout-ms"));
	CU_ASSERT_FALSE(config_option_reloadable("per-ip-table-size"));   /* fixed memory */
	CU_ASSERT_FALSE(config_option_reloadable("zk"));
	CU_ASSERT_FALSE(config_option_reloadable("no-such-option"));

	write_file("zk = z:1\nretries = 5\nconnect-timeout-ms = 300\nlisten = 127.0.0.1:8001\n");
	char **argv = ARGV("--config", path, "--node-id", "r1", "--connect-timeout-ms", "700");
	CU_ASSERT_EQUAL_FATAL(load(&c, 7, argv), CONFIG_OK);
	CU_ASSERT_EQUAL(c.retries, 5);
	CU_ASSERT_EQUAL(c.connect_timeout_ms, 700);

	/* Reloadable changes apply; the listener does not move; the command
	 * line still wins over the file. */
	write_file("zk = z:1\nretries = 1\nconnect-timeout-ms = 400\nlog-level = debug\n"
		   "listen = 127.0.0.1:8009\n");
	CU_ASSERT_TRUE(config_reload(&c, why, sizeof(why)));
	CU_ASSERT_EQUAL(c.retries, 1);
	CU_ASSERT_STRING_EQUAL(c.log_level, "debug");
	CU_ASSERT_EQUAL(c.connect_timeout_ms, 700);
	CU_ASSERT_STRING_EQUAL(c.listen[0], "127.0.0.1:8001");
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "applied: log-level, retries; "));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not reloadable (restart to apply): listen"));

	/* A file that no longer parses changes nothing. */
	write_file("zk = z:1\nretries = 1000\n");
	CU_ASSERT_FALSE(config_reload(&c, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, ":2:"));
	CU_ASSERT_EQUAL(c.retries, 1);
	CU_ASSERT_STRING_EQUAL(c.log_level, "debug");

	/* An unchanged file reloads quietly. */
	write_file("zk = z:1\nretries = 1\nconnect-timeout-ms = 400\nlog-level = debug\n"
		   "listen = 127.0.0.1:8001\n");
	CU_ASSERT_TRUE(config_reload(&c, why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(why, "");
	config_free(&c);
}

static char *dump(const struct zkr_config *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return NULL;
	config_dump(f, c);
	fclose(f);
	return text;
}

/* --check-config's output is itself a config file meaning the same. */
static void test_dump_round_trip(void)
{
	struct zkr_config c, d;
	char **argv = ARGV("--zk", "10.0.0.1:2181/zr", "--node-id", "r#1", "--listen", "127.0.0.1:81",
			   "--listen", "[::1]:82", "--admin", "off", "--access-log", "/tmp/a b.log",
			   "--syslog", "--retries", "7", "--max-head-bytes", "64k", "--auth", "u:p");
	CU_ASSERT_EQUAL_FATAL(load(&c, 20, argv), CONFIG_OK);
	char *one = dump(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(one);
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "node-id = \"r#1\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "listen = \"[::1]:82\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "admin = off\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "syslog = yes\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "max-head-bytes = 65536\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "# auth = (set, not shown)\n"));
	CU_ASSERT_PTR_NULL(strstr(one, "u:p"));
	write_file(one);
	char **argv2 = ARGV("--config", path);
	CU_ASSERT_EQUAL_FATAL(load(&d, 3, argv2), CONFIG_OK);
	/* Credentials are left out, so they are not carried over. */
	CU_ASSERT_PTR_NULL(d.zk_auth);
	free(c.zk_auth);
	c.zk_auth = NULL;
	free(one);
	one = dump(&c);
	char *two = dump(&d);
	CU_ASSERT_PTR_NOT_NULL_FATAL(one);
	CU_ASSERT_PTR_NOT_NULL_FATAL(two);
	CU_ASSERT_STRING_EQUAL(one, two);
	free(one);
	free(two);
	config_free(&c);
	config_free(&d);
}

/* The example shipped in deploy/ parses, and says what the defaults are. */
static void test_deploy_example(void)
{
	const char *src = getenv("top_srcdir");
	char example[512];
	struct zkr_config c, d;
	if (src == NULL)
		src = ".";
	snprintf(example, sizeof(example), "%s/deploy/zkrouterd.conf.example", src);
	if (access(example, R_OK) != 0) {
		fprintf(stderr, "no %s: not checked\n", example);
		return;
	}
	char **argv = ARGV("--config", example);
	CU_ASSERT_EQUAL_FATAL(load(&c, 3, argv), CONFIG_OK);
	if (why[0] != '\0')
		fprintf(stderr, "%s\n", why);
	char **argv2 = ARGV("--zk", c.zk_connect, "--node-id", c.node_id);
	CU_ASSERT_EQUAL_FATAL(load(&d, 5, argv2), CONFIG_OK);
	CU_ASSERT_EQUAL(c.max_head_bytes, d.max_head_bytes);
	CU_ASSERT_EQUAL(c.retries, d.retries);
	CU_ASSERT_EQUAL(c.drain_timeout_ms, d.drain_timeout_ms);
	CU_ASSERT_EQUAL(c.upstream_idle_timeout_ms, d.upstream_idle_timeout_ms);
	CU_ASSERT_EQUAL(c.health_fall, d.health_fall);
	CU_ASSERT_STRING_EQUAL(c.listen[0], d.listen[0]);
	CU_ASSERT_STRING_EQUAL(c.admin, d.admin);
	config_free(&c);
	config_free(&d);
}

static void test_split_addr(void)
{
	static const struct {
		const char *in;
		const char *addr;      /* NULL: refused */
		unsigned short port;
	} cases[] = {
		{ "127.0.0.1:8080", "127.0.0.1", 8080 },
		{ "0.0.0.0:1", "0.0.0.0", 1 },
		{ "[::1]:443", "::1", 443 },
		{ "[::]:65535", "::", 65535 },
		{ "localhost:80", "localhost", 80 },
		{ "127.0.0.1:0", NULL, 0 },
		{ "127.0.0.1:65536", NULL, 0 },
		{ "127.0.0.1:", NULL, 0 },
		{ "127.0.0.1", NULL, 0 },
		{ "::1:80", NULL, 0 },
		{ "[::1]80", NULL, 0 },
		{ "[nothex]:80", NULL, 0 },
		{ ":80", NULL, 0 },
		{ "300.1.1.1:80", NULL, 0 },
		{ "a b:80", NULL, 0 },
		{ "1.2.3.4:8x", NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char addr[64];
		unsigned short port = 0;
		bool ok = config_split_addr(cases[i].in, addr, sizeof(addr), &port);
		CU_ASSERT_EQUAL(ok, cases[i].addr != NULL);
		if (ok && cases[i].addr != NULL) {
			CU_ASSERT_STRING_EQUAL(addr, cases[i].addr);
			CU_ASSERT_EQUAL(port, cases[i].port);
		}
	}
}

/* "ADDR:PORT[,proxy]": the address apart, the flags known ones only. */
static void test_split_listen(void)
{
	static const struct {
		const char *in;
		const char *addr_port;  /* NULL: refused */
		unsigned flags;
	} cases[] = {
		{ "127.0.0.1:8080", "127.0.0.1:8080", 0 },
		{ "0.0.0.0:80,proxy", "0.0.0.0:80", CONFIG_LISTEN_PROXY },
		{ "[::]:443,proxy", "[::]:443", CONFIG_LISTEN_PROXY },
		{ "0.0.0.0:80,proxy,proxy", "0.0.0.0:80", CONFIG_LISTEN_PROXY },
		{ "0.0.0.0:80,", NULL, 0 },
		{ "0.0.0.0:80,PROXY", NULL, 0 },
		{ "0.0.0.0:80,proxy,", NULL, 0 },
		{ "0.0.0.0:80, proxy", NULL, 0 },
		{ "0.0.0.0:80,ssl", NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char addr[64];
		unsigned flags = 99;
		bool ok = config_split_listen(cases[i].in, addr, sizeof(addr), &flags);
		CU_ASSERT_EQUAL(ok, cases[i].addr_port != NULL);
		if (ok && cases[i].addr_port != NULL) {
			CU_ASSERT_STRING_EQUAL(addr, cases[i].addr_port);
			CU_ASSERT_EQUAL(flags, cases[i].flags);
		}
	}
	{
		char small[8];
		unsigned flags;
		CU_ASSERT_FALSE(config_split_listen("127.0.0.1:8080,proxy", small, sizeof(small), &flags));
	}
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("config", suite_init, suite_clean);
	UNIT_TEST(s, test_defaults);
	UNIT_TEST(s, test_node_id_defaults_to_hostname);
	UNIT_TEST(s, test_zk_required);
	UNIT_TEST(s, test_bad_command_lines);
	UNIT_TEST(s, test_last_wins_on_command_line);
	UNIT_TEST(s, test_tls_options);
	UNIT_TEST(s, test_help_and_version);
	UNIT_TEST(s, test_file_and_precedence);
	UNIT_TEST(s, test_file_errors);
	UNIT_TEST(s, test_reload);
	UNIT_TEST(s, test_dump_round_trip);
	UNIT_TEST(s, test_deploy_example);
	UNIT_TEST(s, test_split_addr);
	UNIT_TEST(s, test_split_listen);
}
