/*
 * CUnit checks of the registry core that need no server: connect-string
 * and chroot handling, option validation in session/membership/router,
 * and the state of a watcher whose session never connected. Behaviour
 * against a live ZooKeeper is covered by tests/registry_*.sh.
 */
#include "config.h"

#include <string.h>

#include <event2/event.h>

#include "registry/log.h"
#include "registry/membership.h"
#include "registry/router.h"
#include "registry/session.h"
#include "registry/watcher.h"
#include "tests/lib/unit.h"

static struct event_base *base;

static int suite_init(void)
{
	zkr_log_init("test_session", ZKR_LOG_ERROR, false);
	base = event_base_new();
	return base == NULL;
}

static int suite_clean(void)
{
	event_base_free(base);
	return 0;
}

/* A port nothing listens on: the client tries asynchronously, so no test
 * here waits for a connection. */
static struct zkr_session *session(const char *connect, const char *auth, char *why, size_t len)
{
	struct zkr_session_opts o = { .connect = connect, .auth = auth, .timeout_ms = 2000 };
	return zkr_session_new(base, &o, why, len);
}

static void test_chroot_default(void)
{
	char why[128] = "";
	struct zkr_session *s = session("127.0.0.1:1", NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(zkr_session_chroot(s), "/zkrouter");
	CU_ASSERT_FALSE(zkr_session_connected(s));
	/* Connecting: requests may be queued on the handle already. */
	CU_ASSERT_PTR_NOT_NULL(zkr_session_zh(s));
	zkr_session_free(s);
}

static void test_chroot_explicit(void)
{
	char why[128] = "";
	struct zkr_session *s = session("127.0.0.1:1,127.0.0.1:2/tenant/zkr", NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(zkr_session_chroot(s), "/tenant/zkr");
	zkr_session_free(s);

	s = session("127.0.0.1:1/", NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(zkr_session_chroot(s), "/");
	CU_ASSERT_PTR_NOT_NULL(zkr_session_zh(s));
	zkr_session_free(s);
}

static void test_bad_connect(void)
{
	static const char *const bad[] = {
		"", "/zkrouter", "127.0.0.1:1/a//b", "127.0.0.1:1/a/", "127.0.0.1:1/a/../b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char why[128] = "";
		struct zkr_session *s = session(bad[i], NULL, why, sizeof(why));
		CU_ASSERT_PTR_NULL(s);
		CU_ASSERT(why[0] != '\0');
		zkr_session_free(s);
	}
	char why[128] = "";
	CU_ASSERT_PTR_NULL(session("127.0.0.1:1", "no-colon", why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "user:password"));
}

static void test_zerror_names(void)
{
	CU_ASSERT_STRING_EQUAL(zkr_zerror_name(ZOK), "ZOK");
	CU_ASSERT_STRING_EQUAL(zkr_zerror_name(ZNONODE), "ZNONODE");
	CU_ASSERT_STRING_EQUAL(zkr_zerror_name(ZSESSIONEXPIRED), "ZSESSIONEXPIRED");
	CU_ASSERT_STRING_EQUAL(zkr_zerror_name(-12345), "ZUNKNOWN");
}

static void ensure_never(int rc, void *arg)
{
	(void)rc;
	*(int *)arg += 1;
}

static void test_ensure_path_args(void)
{
	char why[128];
	int called = 0;
	struct zkr_session *s = session("127.0.0.1:1/", NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_FALSE(zkr_session_ensure_path(s, "relative", NULL, ensure_never, &called));
	CU_ASSERT_FALSE(zkr_session_ensure_path(s, "/trailing/", NULL, ensure_never, &called));
	CU_ASSERT_FALSE(zkr_session_ensure_path(s, "/", NULL, ensure_never, &called));
	/* A valid path is queued; closing the handle completes it (ZCLOSING). */
	CU_ASSERT_TRUE(zkr_session_ensure_path(s, "/a/b", NULL, ensure_never, &called));
	zkr_session_free(s);
	CU_ASSERT_EQUAL(called, 1);
}

static void test_membership_node_id(void)
{
	char why[128];
	struct zkr_session *s = session("127.0.0.1:1", NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	static const char *const bad[] = { "", "a/b", ".", "..", "zookeeper" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct zkr_membership_opts o = { .node_id = bad[i] };
		struct zkr_membership *m = zkr_membership_new(base, s, &o, why, sizeof(why));
		CU_ASSERT_PTR_NULL(m);
		zkr_membership_free(m);
	}
	struct zkr_membership_opts ok = { .node_id = "r1", .version = "1.0" };
	struct zkr_membership *m = zkr_membership_new(base, s, &ok, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL(m);
	CU_ASSERT_FALSE(zkr_membership_registered(m));
	zkr_membership_free(m);
	zkr_session_free(s);
}

static void no_table(struct route_table *t, void *arg)
{
	(void)t;
	*(int *)arg += 1;
}

static void test_watcher_unconnected(void)
{
	char why[128];
	struct zkr_session *s = session("127.0.0.1:1", NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int published = 0;
	struct zkr_watcher *w = zkr_watcher_new(base, s, NULL, no_table, &published, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	/* Run the loop briefly: the client cannot connect, nothing is published. */
	struct timeval tv = { 0, 300000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	CU_ASSERT_PTR_NULL(zkr_watcher_table(w));
	CU_ASSERT_FALSE(zkr_watcher_synced(w));
	CU_ASSERT_EQUAL(published, 0);
	struct zkr_watcher_stats st;
	zkr_watcher_get_stats(w, &st);
	CU_ASSERT_EQUAL(st.published, 0);
	/* The router's order: close (queued completions run and find the
	 * watcher alive), free the watcher, free the session. */
	zkr_session_close(s);
	zkr_watcher_free(w);
	zkr_session_free(s);
}

static void test_router_bad_opts(void)
{
	char why[128] = "";
	struct zkr_router_opts o = { .connect = "127.0.0.1:1", .node_id = "bad/id", .session_timeout_ms = 2000 };
	CU_ASSERT_PTR_NULL(zkr_router_new(base, &o, NULL, NULL, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "node id"));
	o.node_id = "r1";
	o.connect = "127.0.0.1:1/x//y";
	CU_ASSERT_PTR_NULL(zkr_router_new(base, &o, NULL, NULL, why, sizeof(why)));
	o.connect = "127.0.0.1:1";
	struct zkr_router *r = zkr_router_new(base, &o, NULL, NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_FALSE(zkr_router_has_table(r));
	CU_ASSERT_FALSE(zkr_router_connected(r));
	zkr_router_leave(r);
	zkr_router_free(r);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("registry core without a server", suite_init, suite_clean);
	UNIT_TEST(s, test_chroot_default);
	UNIT_TEST(s, test_chroot_explicit);
	UNIT_TEST(s, test_bad_connect);
	UNIT_TEST(s, test_zerror_names);
	UNIT_TEST(s, test_ensure_path_args);
	UNIT_TEST(s, test_membership_node_id);
	UNIT_TEST(s, test_watcher_unconnected);
	UNIT_TEST(s, test_router_bad_opts);
}
