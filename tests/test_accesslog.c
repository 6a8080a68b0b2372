/*
 * Access log suite: the exact line format, escaping of hostile values (no
 * forged lines, no forged keys), buffering with the loop's timer, and
 * reopen after the file was moved away (log rotation).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "node/accesslog.h"
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
	};
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
		"rid=5f0c2a total_ms=1.234 upstream_ms=0.987\n");
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

void unit_register(void)
{
	CU_pSuite s = unit_suite("accesslog", NULL, NULL);
	UNIT_TEST(s, test_format);
	UNIT_TEST(s, test_absent_and_empty);
	UNIT_TEST(s, test_escaping);
	UNIT_TEST(s, test_long_value_cut);
	UNIT_TEST(s, test_file_buffering_and_reopen);
	UNIT_TEST(s, test_counters);
}
