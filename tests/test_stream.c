/*
 * Stream layer suite: client connections and requests (node/stream.h)
 * driven without ZooKeeper. A real proxy on the test's event loop, a
 * table built in memory, real backend and client sockets (tests/lib/
 * proxyrig.h): requests are routed by Host, an unknown host gets the
 * router's own 404, a malformed head its 400, and one client connection
 * carries requests for different apps one after the other.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/proxyrig.h"
#include "tests/lib/unit.h"

static struct rig rig;
static struct rig_backend ba, bb;

static int suite_init(void)
{
	static const char *const domains[] = { "a.test", "b.test" };
	static const size_t n_inst[] = { 1, 1 };
	struct rig_inst insts[2] = { { "a1", 0 }, { "b1", 0 } };

	if (!rig_init(&rig) || !rig_backend_start(&rig, &ba, "A") ||
	    !rig_backend_start(&rig, &bb, "B"))
		return -1;
	insts[0].port = ba.port;
	insts[1].port = bb.port;
	return rig_table(&rig, domains, n_inst, insts, 2) ? 0 : -1;
}

static int suite_clean(void)
{
	rig_backend_stop(&ba);
	rig_backend_stop(&bb);
	rig_free(&rig);
	return 0;
}

/* One request on fd; its status, the response in resp. */
static int ask(int fd, const char *host, char *resp, size_t cap)
{
	char req[256];

	snprintf(req, sizeof(req), "GET /x HTTP/1.1\r\nHost: %s\r\n\r\n", host);
	if (!rig_send(&rig, fd, req, strlen(req)))
		return -1;
	return rig_response(&rig, fd, resp, cap, 3000);
}

static void test_route_by_host(void)
{
	char resp[4096];
	int fd = rig_connect(&rig);

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ask(fd, "a.test", resp, sizeof(resp)), 200);
	CU_ASSERT_STRING_EQUAL(rig_header(resp, "X-Backend"), "A");
	CU_ASSERT_STRING_EQUAL(rig_header(resp, "X-Host"), "a.test");
	/* Same client connection, another app: routed by this request's Host. */
	CU_ASSERT_EQUAL(ask(fd, "B.Test:80", resp, sizeof(resp)), 200);
	CU_ASSERT_STRING_EQUAL(rig_header(resp, "X-Backend"), "B");
	CU_ASSERT_EQUAL(ask(fd, "a.test.", resp, sizeof(resp)), 200);
	CU_ASSERT_STRING_EQUAL(rig_header(resp, "X-Backend"), "A");
	close(fd);
}

static void test_unknown_host(void)
{
	char resp[4096];
	unsigned before = ba.requests + bb.requests;
	int fd = rig_connect(&rig);

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ask(fd, "c.test", resp, sizeof(resp)), 404);
	CU_ASSERT_STRING_EQUAL(rig_header(resp, "X-Zkrouter-Error"), "unknown_route");
	/* The connection stays usable after the router's own answer. */
	CU_ASSERT_EQUAL(ask(fd, "a.test", resp, sizeof(resp)), 200);
	CU_ASSERT_EQUAL(ba.requests + bb.requests, before + 1);
	close(fd);
}

static void test_bad_head(void)
{
	static const char req[] = "GET /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: x\r\n\r\n";
	char resp[4096];
	unsigned before = ba.requests;
	int fd = rig_connect(&rig);

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_TRUE_FATAL(rig_send(&rig, fd, req, sizeof(req) - 1));
	CU_ASSERT_EQUAL(rig_response(&rig, fd, resp, sizeof(resp), 3000), 400);
	CU_ASSERT_EQUAL(ba.requests, before);
	close(fd);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("stream", suite_init, suite_clean);
	UNIT_TEST(s, test_route_by_host);
	UNIT_TEST(s, test_unknown_host);
	UNIT_TEST(s, test_bad_head);
}
