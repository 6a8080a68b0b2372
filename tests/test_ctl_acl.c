/*
 * Digest identities and app ACLs (registry/ctl_acl.c): the identities match
 * what `printf 'user:pass' | openssl dgst -binary -sha1 | base64` gives
 * (the values below were computed that way), bad credentials are refused
 * with a reason, and an app's ACLs give each party exactly its rights.
 */
#include "config.h"

#include <string.h>

#include "registry/ctl_acl.h"
#include "tests/lib/unit.h"

static char why[200];

static void test_digest_known_values(void)
{
	char id[CTL_DIGEST_ID_MAX];
	CU_ASSERT_TRUE_FATAL(ctl_digest_id("op:oppw", id, sizeof(id), why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(id, "op:wWBfAeZvP4EaBWzVvAIdmwIh1Tw=");
	CU_ASSERT_TRUE_FATAL(ctl_digest_id("app:secret", id, sizeof(id), why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(id, "app:F6Y+U5gIoCbNNoLQExmvxRFeatA=");
	/* The password may contain ':'; the user ends at the first one. */
	CU_ASSERT_TRUE_FATAL(ctl_digest_id("super:pass:with:colons", id, sizeof(id), why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(id, "super:+/yOLYP6XmL4yN+ZBgvB7myRr5c=");
}

static void test_digest_rejects(void)
{
	char id[CTL_DIGEST_ID_MAX];
	static const char *const bad[] = { "nocolon", ":pw", "user:", "us er:pw", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		CU_ASSERT_FALSE(ctl_digest_id(bad[i], id, sizeof(id), why, sizeof(why)));
		CU_ASSERT_NOT_EQUAL(why[0], '\0');
	}
	CU_ASSERT_FALSE(ctl_digest_id(NULL, id, sizeof(id), why, sizeof(why)));
	/* Too small an output buffer is refused, not overrun. */
	char tiny[8];
	CU_ASSERT_FALSE(ctl_digest_id("op:oppw", tiny, sizeof(tiny), why, sizeof(why)));
}

static void test_auth_user(void)
{
	char user[16];
	CU_ASSERT_TRUE(ctl_auth_user("ops:secret", user, sizeof(user)));
	CU_ASSERT_STRING_EQUAL(user, "ops");
	CU_ASSERT_FALSE(ctl_auth_user(":secret", user, sizeof(user)));
	CU_ASSERT_FALSE(ctl_auth_user("averyveryverylonguser:x", user, sizeof(user)));
}

/* The perms of the entry for scheme:id, or -1 if absent. */
static int perms_of(const struct ACL_vector *v, const char *scheme, const char *id)
{
	for (int i = 0; i < v->count; i++)
		if (strcmp(v->data[i].id.scheme, scheme) == 0 && strcmp(v->data[i].id.id, id) == 0)
			return v->data[i].perms;
	return -1;
}

static void test_app_acls_owner_and_router(void)
{
	struct ctl_app_acls a;
	CU_ASSERT_TRUE_FATAL(ctl_app_acls("app:secret", "rt:rtpw", "op:oppw", &a, why, sizeof(why)));
	const char *op = "op:wWBfAeZvP4EaBWzVvAIdmwIh1Tw=";
	const char *owner = "app:F6Y+U5gIoCbNNoLQExmvxRFeatA=";
	char rt[CTL_DIGEST_ID_MAX];
	CU_ASSERT_TRUE_FATAL(ctl_digest_id("rt:rtpw", rt, sizeof(rt), why, sizeof(why)));

	CU_ASSERT_EQUAL(a.instances.count, 3);
	CU_ASSERT_EQUAL(perms_of(&a.instances, "digest", op), ZOO_PERM_ALL);
	CU_ASSERT_EQUAL(perms_of(&a.instances, "digest", rt), ZOO_PERM_READ);
	CU_ASSERT_EQUAL(perms_of(&a.instances, "digest", owner),
			ZOO_PERM_CREATE | ZOO_PERM_DELETE);
	CU_ASSERT_EQUAL(perms_of(&a.instances, "world", "anyone"), -1);

	CU_ASSERT_EQUAL(a.app.count, 2);
	CU_ASSERT_EQUAL(perms_of(&a.app, "digest", op), ZOO_PERM_ALL);
	CU_ASSERT_EQUAL(perms_of(&a.app, "digest", rt), ZOO_PERM_READ);
	CU_ASSERT_EQUAL(perms_of(&a.app, "digest", owner), -1);
	ctl_app_acls_free(&a);
}

static void test_app_acls_owner_only(void)
{
	struct ctl_app_acls a;
	CU_ASSERT_TRUE_FATAL(ctl_app_acls("app:secret", NULL, "op:oppw", &a, why, sizeof(why)));
	/* Without a router identity, anyone may read (routers need no auth). */
	CU_ASSERT_EQUAL(perms_of(&a.instances, "world", "anyone"), ZOO_PERM_READ);
	CU_ASSERT_EQUAL(perms_of(&a.app, "world", "anyone"), ZOO_PERM_READ);
	ctl_app_acls_free(&a);
}

static void test_app_acls_refused(void)
{
	struct ctl_app_acls a;
	/* No operator identity: nobody would keep admin rights. */
	CU_ASSERT_FALSE(ctl_app_acls("app:secret", NULL, NULL, &a, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--auth"));
	CU_ASSERT_FALSE(ctl_app_acls("appsecret", NULL, "op:oppw", &a, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--owner"));
	CU_ASSERT_FALSE(ctl_app_acls("app:secret", "rt:", "op:oppw", &a, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--router-auth"));
	CU_ASSERT_FALSE(ctl_app_acls(NULL, NULL, "op:oppw", &a, why, sizeof(why)));
}

/* /certs and its records hold private keys: operator all, routers read,
 * nobody else, unless world-readable is asked for. */
static void test_cert_acl(void)
{
	struct ACL_vector v;
	const char *op = "op:wWBfAeZvP4EaBWzVvAIdmwIh1Tw=";
	char rt[CTL_DIGEST_ID_MAX];
	CU_ASSERT_TRUE_FATAL(ctl_digest_id("rt:rtpw", rt, sizeof(rt), why, sizeof(why)));

	CU_ASSERT_TRUE_FATAL(ctl_cert_acl("op:oppw", "rt:rtpw", false, &v, why, sizeof(why)));
	CU_ASSERT_EQUAL(v.count, 2);
	CU_ASSERT_EQUAL(perms_of(&v, "digest", op), ZOO_PERM_ALL);
	CU_ASSERT_EQUAL(perms_of(&v, "digest", rt), ZOO_PERM_READ);
	CU_ASSERT_EQUAL(perms_of(&v, "world", "anyone"), -1);
	ctl_acl_free(&v);

	/* Without either identity, a key would end up readable: refused. */
	CU_ASSERT_FALSE(ctl_cert_acl(NULL, "rt:rtpw", false, &v, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--world-readable"));
	CU_ASSERT_FALSE(ctl_cert_acl("op:oppw", NULL, false, &v, why, sizeof(why)));
	CU_ASSERT_FALSE(ctl_cert_acl("op:oppw", "rt:", false, &v, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--router-auth"));

	/* Asked for: world reads; the operator, when given, keeps admin. */
	CU_ASSERT_TRUE_FATAL(ctl_cert_acl("op:oppw", NULL, true, &v, why, sizeof(why)));
	CU_ASSERT_EQUAL(perms_of(&v, "digest", op), ZOO_PERM_ALL);
	CU_ASSERT_EQUAL(perms_of(&v, "world", "anyone"), ZOO_PERM_READ);
	ctl_acl_free(&v);
	CU_ASSERT_TRUE_FATAL(ctl_cert_acl(NULL, NULL, true, &v, why, sizeof(why)));
	CU_ASSERT_EQUAL(v.count, 1);
	CU_ASSERT_EQUAL(perms_of(&v, "world", "anyone"), ZOO_PERM_ALL);
	ctl_acl_free(&v);
}

static void test_perms_string(void)
{
	char s[6];
	ctl_perms_string(ZOO_PERM_ALL, s);
	CU_ASSERT_STRING_EQUAL(s, "cdrwa");
	ctl_perms_string(ZOO_PERM_CREATE | ZOO_PERM_READ, s);
	CU_ASSERT_STRING_EQUAL(s, "cr");
	ctl_perms_string(0, s);
	CU_ASSERT_STRING_EQUAL(s, "");
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("ctl_acl", NULL, NULL);
	UNIT_TEST(s, test_digest_known_values);
	UNIT_TEST(s, test_digest_rejects);
	UNIT_TEST(s, test_auth_user);
	UNIT_TEST(s, test_app_acls_owner_and_router);
	UNIT_TEST(s, test_app_acls_owner_only);
	UNIT_TEST(s, test_app_acls_refused);
	UNIT_TEST(s, test_cert_acl);
	UNIT_TEST(s, test_perms_string);
}
