/*
 * Access log suite: the exact line format, logfmt and JSON, escaping of
 * hostile values (no forged lines, no forged keys, valid JSON whatever a
 * client sends), buffering with the loop's timer, reopen after the file
 * was moved away (log rotation), the counters and the per-app counters.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "node/accesslog.h"
#include "node/appstats.h"
#include "registry/table.h"
#include "tests/lib/unit.h"

static struct access_entry sample(void)
{
	struct access_entry e = {
		.start = { 1795734825, 123456 },   /* 2026-11-26T23:13:45.123Z */
		.client = "10.0.0.1:5123",
		.host = "app.example.com",
		.method = "GET",
		.target = "/path?q=1",
		.status = 200,
		.bytes_in = 512,
		.bytes_out = 1024,
		.instance = "10.0.0.7:8080",
		.attempts = 1,
		.request_id = "5f0c2a",
		.total_ms = 1.2344,
		.upstream_ms = 0.9871,
		.connect_ms = -1,
	};
	return e;
}

/* The fields added to the first format, all set. */
static struct access_entry sample_full(void)
{
	struct access_entry e = sample();
	e.app = "*.example.com";
	e.error = "backend_timeout";
	e.tls = true;
	e.proto = "HTTP/2.0";
	e.tls_version = "TLSv1.3";
	e.user_agent = "curl/7.88.1";
	e.xff = "192.0.2.1, 198.51.100.2";
	e.connect_ms = 0.2104;
	e.status = ACCESSLOG_CLIENT_GONE;
	e.upstream_status = 200;
	return e;
}

static void test_format(void)
{
	char line[1024];
	struct access_entry e = sample();
	size_t n = accesslog_format(&e, line, sizeof(line));
	CU_ASSERT_EQUAL(n, strlen(line));
	CU_ASSERT_STRING_EQUAL(line,
		"time=2026-11-26T23:13:45.123Z client=10.0.0.1:5123 host=app.example.com method=GET "
		"target=\"/path?q=1\" status=200 in=512 out=1024 instance=10.0.0.7:8080 attempts=1 "
		"rid=5f0c2a total_ms=1.234 upstream_ms=0.987 app=- err=- scheme=http proto=- tls=- ua=- xff=- "
		"connect_ms=- upstream_status=-\n");
	e = sample_full();
	accesslog_format(&e, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line,
		"time=2026-11-26T23:13:45.123Z client=10.0.0.1:5123 host=app.example.com method=GET "
		"target=\"/path?q=1\" status=499 in=512 out=1024 instance=10.0.0.7:8080 attempts=1 "
		"rid=5f0c2a total_ms=1.234 upstream_ms=0.987 app=*.example.com err=backend_timeout "
		"scheme=https proto=HTTP/2.0 tls=TLSv1.3 ua=curl/7.88.1 xff=\"192.0.2.1, 198.51.100.2\" "
		"connect_ms=0.210 upstream_status=200\n");
}

static void test_format_json(void)
{
	char line[2048];
	struct access_entry e = sample();
	size_t n = accesslog_format_json(&e, line, sizeof(line));
	CU_ASSERT_EQUAL(n, strlen(line));
	CU_ASSERT_STRING_EQUAL(line,
		"{\"time\":\"2026-11-26T23:13:45.123Z\",\"client\":\"10.0.0.1:5123\","
		"\"host\":\"app.example.com\",\"method\":\"GET\",\"target\":\"/path?q=1\","
		"\"status\":200,\"in\":512,\"out\":1024,\"instance\":\"10.0.0.7:8080\","
		"\"attempts\":1,\"rid\":\"5f0c2a\",\"total_ms\":1.234,\"upstream_ms\":0.987,"
		"\"app\":null,\"err\":null,\"scheme\":\"http\",\"proto\":null,\"tls\":null,\"ua\":null,"
		"\"xff\":null,\"connect_ms\":null,\"upstream_status\":null}\n");
	e = sample_full();
	accesslog_format_json(&e, line, sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, ",\"status\":499,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, ",\"err\":\"backend_timeout\",\"scheme\":\"https\","
				      "\"proto\":\"HTTP/2.0\",\"tls\":\"TLSv1.3\",\"ua\":\"curl/7.88.1\","
				      "\"xff\":\"192.0.2.1, 198.51.100.2\",\"connect_ms\":0.210,"
				      "\"upstream_status\":200}\n"));
}

/* Header values a client chooses, in both formats: one line each, every
 * control byte, quote and backslash escaped, nothing else forged. */
static void test_hostile_headers(void)
{
	static const struct {
		const char *ua;
		const char *logfmt;
		const char *json;
	} cases[] = {
		{ "a\"b", "ua=\"a\\\"b\"", "\"ua\":\"a\\\"b\"" },
		{ "x\n{\"status\":200}", "ua=\"x\\n{\\\"status\\\":200}\"",
		  "\"ua\":\"x\\n{\\\"status\\\":200}\"" },
		{ "\r\n\t\x01\x1b\x7f", "ua=\"\\r\\n\\t\\x01\\x1b\\x7f\"",
		  "\"ua\":\"\\r\\n\\t\\u0001\\u001b\\u007f\"" },
		{ "back\\slash", "ua=\"back\\\\slash\"", "\"ua\":\"back\\\\slash\"" },
		{ "\xc3\xa4\xff", "ua=\"\\xc3\\xa4\\xff\"", "\"ua\":\"\\u00c3\\u00a4\\u00ff\"" },
		{ "k=v ua=forged", "ua=\"k=v ua=forged\"", "\"ua\":\"k=v ua=forged\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[2048];
		struct access_entry e = sample();
		e.user_agent = cases[i].ua;
		e.xff = cases[i].ua;
		accesslog_format(&e, line, sizeof(line));
		if (strstr(line, cases[i].logfmt) == NULL)
			fprintf(stderr, "logfmt case %zu: %s", i, line);
		CU_ASSERT_PTR_NOT_NULL(strstr(line, cases[i].logfmt));
		CU_ASSERT_PTR_EQUAL(strchr(line, '\n'), line + strlen(line) - 1);
		accesslog_format_json(&e, line, sizeof(line));
		if (strstr(line, cases[i].json) == NULL)
			fprintf(stderr, "json case %zu: %s", i, line);
		CU_ASSERT_PTR_NOT_NULL(strstr(line, cases[i].json));
		CU_ASSERT_PTR_EQUAL(strchr(line, '\n'), line + strlen(line) - 1);
		CU_ASSERT_EQUAL(line[0], '{');
		CU_ASSERT_STRING_EQUAL(line + strlen(line) - 2, "}\n");
		/* Printable ASCII only, before the newline. */
		for (size_t k = 0; k + 1 < strlen(line); k++)
			CU_ASSERT(line[k] >= 0x20 && line[k] < 0x7f);
	}
}

static void test_error_names(void)
{
	for (unsigned i = 0; i + 1 < ACCESSLOG_ERRORS; i++) {
		CU_ASSERT_EQUAL(accesslog_error_index(accesslog_error_names[i]), i);
		if (i + 2 < ACCESSLOG_ERRORS)
			CU_ASSERT(strcmp(accesslog_error_names[i], accesslog_error_names[i + 1]) < 0);
	}
	CU_ASSERT_STRING_EQUAL(accesslog_error_names[accesslog_error_index("no_such_code")], "other");
	CU_ASSERT_STRING_EQUAL(accesslog_error_names[accesslog_error_index(NULL)], "other");
	enum accesslog_format f;
	CU_ASSERT_TRUE(accesslog_format_parse("json", &f));
	CU_ASSERT_EQUAL(f, ACCESSLOG_JSON);
	CU_ASSERT_TRUE(accesslog_format_parse("logfmt", &f));
	CU_ASSERT_EQUAL(f, ACCESSLOG_LOGFMT);
	CU_ASSERT_FALSE(accesslog_format_parse("JSON", &f));
	CU_ASSERT_FALSE(accesslog_format_parse("", &f));
}

static void test_absent_and_empty(void)
{
	char line[1024];
	struct access_entry e = sample();
	e.instance = NULL;
	e.request_id = NULL;
	e.target = "";
	e.status = 0;
	e.attempts = 0;
	accesslog_format(&e, line, sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " instance=- "));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " rid=- "));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " target=\"\" "));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " status=0 "));
}

/* Values an attacker controls, and how each must appear in the line. */
static void test_escaping(void)
{
	static const struct {
		const char *target;
		const char *logged;
	} cases[] = {
		{ "/a b", "target=\"/a b\"" },
		{ "/x\nstatus=500 forged=1", "target=\"/x\\nstatus=500 forged=1\"" },
		{ "/\r\n\t", "target=\"/\\r\\n\\t\"" },
		{ "/\"quoted\"", "target=\"/\\\"quoted\\\"\"" },
		{ "/back\\slash", "target=\"/back\\\\slash\"" },
		{ "/\x1b[31mred", "target=\"/\\x1b[31mred\"" },
		{ "/\xc3\xa4", "target=\"/\\xc3\\xa4\"" },
		{ "/a=b", "target=\"/a=b\"" },
		{ "/plain", "target=/plain" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[1024];
		struct access_entry e = sample();
		e.target = cases[i].target;
		e.host = "h\n";
		accesslog_format(&e, line, sizeof(line));
		if (strstr(line, cases[i].logged) == NULL)
			fprintf(stderr, "case %zu: %s", i, line);
		CU_ASSERT_PTR_NOT_NULL(strstr(line, cases[i].logged));
		CU_ASSERT_PTR_NOT_NULL(strstr(line, " host=\"h\\n\" "));
		/* One line, whatever the input. */
		CU_ASSERT_PTR_EQUAL(strchr(line, '\n'), line + strlen(line) - 1);
	}
}

static void test_long_value_cut(void)
{
	static char target[10000], line[70000];
	memset(target, '\n', sizeof(target) - 1);
	struct access_entry e = sample();
	e.target = target;
	size_t n = accesslog_format(&e, line, sizeof(line));
	CU_ASSERT(n < sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "\\n...\" status=200"));
	/* A small buffer is cut and terminated, and the needed size reported. */
	char small[32];
	CU_ASSERT_EQUAL(accesslog_format(&e, small, sizeof(small)), n);
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
}

static size_t count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int ch;
	if (f == NULL)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static void test_file_buffering_and_reopen(void)
{
	char dir[] = "/tmp/zkr-test-alog.XXXXXX", path[128], moved[128], why[256];
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(moved, sizeof(moved), "%s/access.log.1", dir);

	CU_ASSERT_PTR_NULL(accesslog_open("/nonexistent-dir/x.log", why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "/nonexistent-dir/x.log"));

	struct accesslog *l = accesslog_open(path, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	struct access_entry e = sample();

	/* Not attached: every line is written at once. */
	accesslog_write(l, &e);
	CU_ASSERT_EQUAL(count_lines(path), 1);

	/* Attached: lines wait for the timer (or a flush). */
	struct event_base *base = event_base_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(base);
	CU_ASSERT_TRUE(accesslog_attach(l, base));
	accesslog_write(l, &e);
	CU_ASSERT_EQUAL(count_lines(path), 1);
	struct timeval tv = { 0, 400000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	CU_ASSERT_EQUAL(count_lines(path), 2);

	/* Rotation: move the file away, reopen, new lines go to a new file. */
	accesslog_write(l, &e);
	CU_ASSERT_EQUAL(rename(path, moved), 0);
	CU_ASSERT_TRUE(accesslog_reopen(l));     /* flushes the pending line first */
	CU_ASSERT_EQUAL(count_lines(moved), 3);
	accesslog_write(l, &e);
	accesslog_flush(l);
	CU_ASSERT_EQUAL(count_lines(path), 1);

	/* Reopen failing keeps the old file. */
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(unlink(moved), 0);
	CU_ASSERT_EQUAL(rmdir(dir), 0);
	CU_ASSERT_FALSE(accesslog_reopen(l));
	accesslog_write(l, &e);
	accesslog_close(l);
	event_base_free(base);
}

/* With no path nothing is written, but every entry is counted. */
static void test_counters(void)
{
	char why[128];
	struct accesslog_counters n;
	struct accesslog *l = accesslog_open(NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	struct access_entry e = sample();
	e.total_ms = 3.0;                  /* 0.003 s */
	accesslog_write(l, &e);
	e.status = 503;
	e.attempts = 3;
	e.total_ms = 2000.0;
	accesslog_write(l, &e);
	e.status = 0;
	e.attempts = 1;
	e.total_ms = 60000.0;
	e.error = "backend_timeout";
	accesslog_write(l, &e);
	CU_ASSERT_TRUE(accesslog_reopen(l));
	accesslog_flush(l);
	accesslog_counters(l, &n);
	CU_ASSERT_EQUAL(n.requests, 3);
	CU_ASSERT_EQUAL(n.by_class[2], 1);
	CU_ASSERT_EQUAL(n.by_class[5], 1);
	CU_ASSERT_EQUAL(n.by_class[0], 1);
	CU_ASSERT_EQUAL(n.bytes_in, 3 * 512);
	CU_ASSERT_EQUAL(n.bytes_out, 3 * 1024);
	CU_ASSERT_EQUAL(n.retried, 1);
	CU_ASSERT_EQUAL(n.write_errors, 0);
	CU_ASSERT_EQUAL(n.errors[accesslog_error_index("backend_timeout")], 1);
	CU_ASSERT_EQUAL(n.client_gone, 0);
	/* Cumulative buckets: 3 ms is in every bucket from 5 ms up; 2 s from
	 * 2.5 s up; 60 s in none (only +Inf, which is `requests`). */
	for (size_t i = 0; i < ACCESSLOG_BUCKETS; i++) {
		double le = accesslog_bucket_le[i];
		uint64_t want = (le >= 0.003) + (le >= 2.0);
		CU_ASSERT_EQUAL(n.duration_bucket[i], want);
	}
	CU_ASSERT_DOUBLE_EQUAL(n.duration_sum_s, 62.003, 1e-9);
	accesslog_close(l);
	accesslog_counters(NULL, &n);
	CU_ASSERT_EQUAL(n.requests, 0);
}

static struct route_table *table_of(const char *const *domains, size_t n)
{
	struct route_app *apps[8];
	for (size_t i = 0; i < n; i++) {
		apps[i] = route_app_new(domains[i], NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(apps[i]);
		route_app_seal(apps[i]);
	}
	return route_table_from_apps(apps, n);   /* takes the references */
}

/* Per-app counters of one worker: named apps apart, the rest summed, the
 * busiest unnamed as candidates, apps gone from the table dropped (an
 * unnamed one's requests staying in the sum). */
static void test_appstats(void)
{
	static const char *const all[] = { "a.test", "b.test", "c.test" };
	static const char *const ab[] = { "a.test", "b.test" };
	static const char *const named[] = { "b.test" };
	char why[64];
	struct accesslog *l = accesslog_open(NULL, why, sizeof(why));
	struct route_table *t3 = table_of(all, 3), *t2 = table_of(ab, 2);
	struct appstats_snap snap;
	struct access_entry e = sample();
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t2);

	e.upstream_used = true;
	e.upstream_ms = 30;                 /* 0.03 s */
	for (int i = 0; i < 5; i++) {
		e.app = "a.test";
		accesslog_write(l, &e);
	}
	e.status = 502;
	e.error = "backend_failed";
	e.upstream_used = false;
	for (int i = 0; i < 3; i++) {
		e.app = "b.test";
		accesslog_write(l, &e);
	}
	e.app = "c.test";
	accesslog_write(l, &e);
	e.app = NULL;                       /* unknown_route: no app */
	accesslog_write(l, &e);
	struct appstats *s = accesslog_appstats(l);
	CU_ASSERT_EQUAL(appstats_size(s), 3);

	CU_ASSERT_TRUE_FATAL(appstats_snapshot(s, t3, named, 1, 1, &snap));
	CU_ASSERT_EQUAL(snap.named[0].requests, 3);
	CU_ASSERT_EQUAL(snap.named[0].by_class[5], 3);
	CU_ASSERT_EQUAL(snap.named[0].errors[accesslog_error_index("backend_failed")], 3);
	CU_ASSERT_EQUAL(snap.named[0].upstream_count, 0);
	CU_ASSERT_EQUAL(snap.other.requests, 6);
	CU_ASSERT_EQUAL(snap.other.upstream_count, 5);
	CU_ASSERT_EQUAL(snap.other.upstream_bucket[0], 0);                       /* 1 ms */
	CU_ASSERT_EQUAL(snap.other.upstream_bucket[ACCESSLOG_BUCKETS - 1], 5);   /* 10 s */
	CU_ASSERT_EQUAL(snap.n_top, 1);
	CU_ASSERT_STRING_EQUAL(snap.top[0].domain, "a.test");
	CU_ASSERT_EQUAL(snap.top[0].n.requests, 5);
	appstats_snap_free(&snap);

	/* c.test leaves the table: dropped, its request still in `other`. */
	CU_ASSERT_TRUE_FATAL(appstats_snapshot(s, t2, named, 1, 5, &snap));
	CU_ASSERT_EQUAL(appstats_size(s), 2);
	CU_ASSERT_EQUAL(snap.other.requests, 6);
	CU_ASSERT_EQUAL(snap.n_top, 1);
	appstats_snap_free(&snap);
	e.app = "a.test";
	accesslog_write(l, &e);
	CU_ASSERT_TRUE_FATAL(appstats_snapshot(s, t2, NULL, 0, 5, &snap));
	CU_ASSERT_EQUAL(snap.other.requests, 10);
	CU_ASSERT_EQUAL(snap.n_top, 2);
	CU_ASSERT_STRING_EQUAL(snap.top[0].domain, "b.test");   /* the heap's root: the least */
	appstats_snap_free(&snap);

	route_table_unref(t3);
	route_table_unref(t2);
	accesslog_close(l);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("accesslog", NULL, NULL);
	UNIT_TEST(s, test_format);
	UNIT_TEST(s, test_format_json);
	UNIT_TEST(s, test_hostile_headers);
	UNIT_TEST(s, test_error_names);
	UNIT_TEST(s, test_appstats);
	UNIT_TEST(s, test_absent_and_empty);
	UNIT_TEST(s, test_escaping);
	UNIT_TEST(s, test_long_value_cut);
	UNIT_TEST(s, test_file_buffering_and_reopen);
	UNIT_TEST(s, test_counters);
}
