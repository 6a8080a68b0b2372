/*
 * Upstream layer suite: backend connections, their idle pool and retries
 * (node/upstream.h), driven without ZooKeeper through a real proxy on the
 * test's event loop (tests/lib/proxyrig.h). Keep-alive connections to an
 * instance are reused from its pool; a refused instance is retried on
 * another and ejected; a request body streams to the backend before the
 * client sent all of it; an instance leaving the table has its idle
 * connections closed (the backend layer's hook into the pool).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/proxy.h"
#include "tests/lib/proxyrig.h"
#include "tests/lib/unit.h"

static struct rig rig;

static int suite_init(void)
{
	return rig_init(&rig) ? 0 : -1;
}

static int suite_clean(void)
{
	rig_free(&rig);
	return 0;
}

/* The table: app "u.test" with the given instances. */
static void one_app(const struct rig_inst *insts, size_t n)
{
	static const char *const domains[] = { "u.test" };
	size_t n_inst[] = { n };

	CU_ASSERT_TRUE_FATAL(rig_table(&rig, domains, n_inst, insts, 1));
}

static int get(int fd, char *resp, size_t cap)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: u.test\r\n\r\n";

	if (!rig_send(&rig, fd, req, sizeof(req) - 1))
		return -1;
	return rig_response(&rig, fd, resp, cap, 3000);
}

static void test_pool_reuse(void)
{
	struct rig_backend b;
	struct backend_info info;
	char resp[4096];

	CU_ASSERT_TRUE_FATAL(rig_backend_start(&rig, &b, "P"));
	struct rig_inst inst = { "p1", b.port };
	one_app(&inst, 1);
	/* Three clients one after the other: one backend connection. */
	for (int i = 0; i < 3; i++) {
		int fd = rig_connect(&rig);
		CU_ASSERT_TRUE_FATAL(fd >= 0);
		CU_ASSERT_EQUAL(get(fd, resp, sizeof(resp)), 200);
		CU_ASSERT_STRING_EQUAL(rig_header(resp, "X-Conn"), "1");
		close(fd);
	}
	CU_ASSERT_EQUAL(b.accepted, 1);
	CU_ASSERT_EQUAL(b.requests, 3);
	CU_ASSERT_TRUE_FATAL(proxy_backend_info(rig.p, "u.test", "p1", &info));
	CU_ASSERT_EQUAL(info.idle_pooled, 1);
	CU_ASSERT_EQUAL(info.outstanding, 0);
	rig_backend_stop(&b);
}

static bool pool_closed(void *arg)
{
	const struct rig_backend *b = arg;

	return b->closed == b->accepted;
}

static void test_retire_closes_pool(void)
{
	struct rig_backend b, c;
	char resp[4096];
	int fd;

	CU_ASSERT_TRUE_FATAL(rig_backend_start(&rig, &b, "R"));
	CU_ASSERT_TRUE_FATAL(rig_backend_start(&rig, &c, "S"));
	struct rig_inst inst = { "r1", b.port }, other = { "s1", c.port };
	one_app(&inst, 1);
	fd = rig_connect(&rig);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(get(fd, resp, sizeof(resp)), 200);
	CU_ASSERT_EQUAL(b.accepted, 1);
	CU_ASSERT_EQUAL(b.closed, 0);
	/* r1 leaves the table: its pooled connection is closed. */
	one_app(&other, 1);
	CU_ASSERT_TRUE(rig_until(&rig, pool_closed, &b, 3000));
	CU_ASSERT_EQUAL(b.closed, 1);
	CU_ASSERT_EQUAL(get(fd, resp, sizeof(resp)), 200);
	CU_ASSERT_STRING_EQUAL(rig_header(resp, "X-Backend"), "S");
	close(fd);
	rig_backend_stop(&b);
	rig_backend_stop(&c);
}

static void test_retry_refused(void)
{
	struct rig_backend b;
	struct backend_info info;
	char resp[4096];

	CU_ASSERT_TRUE_FATAL(rig_backend_start(&rig, &b, "L"));
	struct rig_inst insts[] = { { "dead", rig_refused_port() }, { "live", b.port } };
	one_app(insts, 2);
	/* Every request is answered by the live instance, whichever the
	 * balancer picked first. The balancer picks at random: requests go
	 * on until one has tried the refused instance (at most 64; the
	 * chance that none does is 2^-64). */
	int n = 0;
	do {
		int fd = rig_connect(&rig);
		CU_ASSERT_TRUE_FATAL(fd >= 0);
		CU_ASSERT_EQUAL(get(fd, resp, sizeof(resp)), 200);
		CU_ASSERT_STRING_EQUAL(rig_header(resp, "X-Backend"), "L");
		close(fd);
		n++;
	} while (n < 64 && !(proxy_backend_info(rig.p, "u.test", "dead", &info) &&
			     info.consecutive_failures >= 1));
	CU_ASSERT_EQUAL(b.requests, (unsigned)n);
	/* The refused instance was tried, failed and is ejected. */
	CU_ASSERT_TRUE_FATAL(proxy_backend_info(rig.p, "u.test", "dead", &info));
	CU_ASSERT_TRUE(info.consecutive_failures >= 1);
	CU_ASSERT_TRUE(info.ejected);
	rig_backend_stop(&b);
}

struct body_wait {
	const struct rig_backend *b;
	uint64_t want;
};

static bool body_reached(void *arg)
{
	const struct body_wait *w = arg;

	return w->b->body_bytes >= w->want;
}

static void test_body_streaming(void)
{
	enum { BODY = 1 << 20, FIRST = 64 << 10 };
	struct rig_backend b;
	char head[256], resp[4096];
	char *body = malloc(BODY);
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	memset(body, 'z', BODY);
	CU_ASSERT_TRUE_FATAL(rig_backend_start(&rig, &b, "B"));
	struct rig_inst inst = { "b1", b.port };
	one_app(&inst, 1);
	fd = rig_connect(&rig);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	snprintf(head, sizeof(head),
		 "POST /up HTTP/1.1\r\nHost: u.test\r\nContent-Length: %d\r\n\r\n", BODY);
	CU_ASSERT_TRUE_FATAL(rig_send(&rig, fd, head, strlen(head)));
	CU_ASSERT_TRUE_FATAL(rig_send(&rig, fd, body, FIRST));
	/* The first part reaches the backend while the rest is not sent. */
	struct body_wait w = { &b, FIRST };
	CU_ASSERT_TRUE(rig_until(&rig, body_reached, &w, 3000));
	CU_ASSERT_EQUAL(b.body_bytes, FIRST);
	CU_ASSERT_EQUAL(b.requests, 0);
	CU_ASSERT_TRUE_FATAL(rig_send(&rig, fd, body + FIRST, BODY - FIRST));
	CU_ASSERT_EQUAL(rig_response(&rig, fd, resp, sizeof(resp), 3000), 200);
	CU_ASSERT_EQUAL(b.body_bytes, BODY);
	CU_ASSERT_EQUAL(b.requests, 1);
	close(fd);
	free(body);
	rig_backend_stop(&b);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("upstream", suite_init, suite_clean);
	UNIT_TEST(s, test_pool_reuse);
	UNIT_TEST(s, test_retire_closes_pool);
	UNIT_TEST(s, test_retry_refused);
	UNIT_TEST(s, test_body_streaming);
}
