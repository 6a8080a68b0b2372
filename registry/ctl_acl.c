/*
 * Digest identities (SHA-1 and base64 from OpenSSL) and the per-app ACL
 * vectors zkrouterctl writes. Kept apart from the command code so the unit
 * suite can check them against known values without a ZooKeeper server.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "registry/ctl_acl.h"

static bool fail(char *why, size_t whylen, const char *msg)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "%s", msg);
	return false;
}

bool ctl_auth_user(const char *user_pass, char *out, size_t outlen)
{
	const char *colon = user_pass != NULL ? strchr(user_pass, ':') : NULL;
	if (colon == NULL || colon == user_pass || (size_t)(colon - user_pass) >= outlen)
		return false;
	memcpy(out, user_pass, (size_t)(colon - user_pass));
	out[colon - user_pass] = '\0';
	return true;
}

bool ctl_digest_id(const char *user_pass, char *out, size_t outlen, char *why, size_t whylen)
{
	const char *colon = user_pass != NULL ? strchr(user_pass, ':') : NULL;
	if (colon == NULL)
		return fail(why, whylen, "credentials must be USER:PASSWORD");
	size_t ulen = (size_t)(colon - user_pass);
	if (ulen == 0 || ulen > 255)
		return fail(why, whylen, "user name must be 1-255 bytes");
	if (colon[1] == '\0')
		return fail(why, whylen, "password is empty");
	for (size_t i = 0; i < ulen; i++)
		if ((unsigned char)user_pass[i] <= 0x20 || user_pass[i] == 0x7f)
			return fail(why, whylen, "user name has a space or control character");

	unsigned char md[SHA_DIGEST_LENGTH];
	if (SHA1((const unsigned char *)user_pass, strlen(user_pass), md) == NULL)
		return fail(why, whylen, "SHA-1 failed");
	unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
	int n = EVP_EncodeBlock(b64, md, SHA_DIGEST_LENGTH);
	if (n <= 0)
		return fail(why, whylen, "base64 encoding failed");
	if (ulen + 1 + (size_t)n + 1 > outlen)
		return fail(why, whylen, "identity too long");
	memcpy(out, user_pass, ulen);
	out[ulen] = ':';
	memcpy(out + ulen + 1, b64, (size_t)n + 1);
	return true;
}

/* Appends one entry; the vector was allocated large enough. */
static bool acl_add(struct ACL_vector *v, const char *scheme, const char *id, int perms)
{
	struct ACL *a = &v->data[v->count];
	a->perms = perms;
	a->id.scheme = strdup(scheme);
	a->id.id = strdup(id);
	v->count++;
	return a->id.scheme != NULL && a->id.id != NULL;
}

static bool acl_alloc(struct ACL_vector *v, int n)
{
	v->count = 0;
	v->data = calloc((size_t)n, sizeof(struct ACL));
	return v->data != NULL;
}

void ctl_acl_free(struct ACL_vector *v)
{
	for (int i = 0; i < v->count; i++) {
		free(v->data[i].id.scheme);
		free(v->data[i].id.id);
	}
	free(v->data);
	v->data = NULL;
	v->count = 0;
}

void ctl_app_acls_free(struct ctl_app_acls *a)
{
	ctl_acl_free(&a->app);
	ctl_acl_free(&a->instances);
}

bool ctl_app_acls(const char *owner, const char *router, const char *operator_auth,
		  struct ctl_app_acls *out, char *why, size_t whylen)
{
	char owner_id[CTL_DIGEST_ID_MAX], router_id[CTL_DIGEST_ID_MAX], op_id[CTL_DIGEST_ID_MAX];
	char sub[160];
	memset(out, 0, sizeof(*out));
	if (owner == NULL && router == NULL)
		return fail(why, whylen, "no owner or router identity given");
	if (operator_auth == NULL)
		return fail(why, whylen, "--owner and --router-auth need --auth (the operator identity that keeps "
			    "admin rights on the app)");
	if (!ctl_digest_id(operator_auth, op_id, sizeof(op_id), sub, sizeof(sub))) {
		snprintf(why, whylen, "--auth: %s", sub);
		return false;
	}
	if (owner != NULL && !ctl_digest_id(owner, owner_id, sizeof(owner_id), sub, sizeof(sub))) {
		snprintf(why, whylen, "--owner: %s", sub);
		return false;
	}
	if (router != NULL && !ctl_digest_id(router, router_id, sizeof(router_id), sub, sizeof(sub))) {
		snprintf(why, whylen, "--router-auth: %s", sub);
		return false;
	}
	if (!acl_alloc(&out->app, 2) || !acl_alloc(&out->instances, 3))
		goto oom;
	bool ok = acl_add(&out->app, "digest", op_id, ZOO_PERM_ALL);
	ok = ok && (router != NULL ? acl_add(&out->app, "digest", router_id, ZOO_PERM_READ)
				   : acl_add(&out->app, "world", "anyone", ZOO_PERM_READ));
	ok = ok && acl_add(&out->instances, "digest", op_id, ZOO_PERM_ALL);
	ok = ok && (router != NULL ? acl_add(&out->instances, "digest", router_id, ZOO_PERM_READ)
				   : acl_add(&out->instances, "world", "anyone", ZOO_PERM_READ));
	/* Without an owner anyone may register, as without ACLs at all. */
	ok = ok && (owner != NULL
		    ? acl_add(&out->instances, "digest", owner_id,
			      ZOO_PERM_CREATE | ZOO_PERM_DELETE)
		    : acl_add(&out->instances, "world", "anyone", ZOO_PERM_CREATE | ZOO_PERM_DELETE));
	if (!ok)
		goto oom;
	return true;
oom:
	ctl_app_acls_free(out);
	return fail(why, whylen, "out of memory");
}

bool ctl_cert_acl(const char *operator_auth, const char *router, bool world_readable,
		  struct ACL_vector *out, char *why, size_t whylen)
{
	char router_id[CTL_DIGEST_ID_MAX], op_id[CTL_DIGEST_ID_MAX], sub[160];
	memset(out, 0, sizeof(*out));
	if (!world_readable && (operator_auth == NULL || router == NULL))
		return fail(why, whylen, "a certificate record holds a private key: give --auth (the "
			    "operator) and --router-auth (the identity routers read with), or "
			    "--world-readable to let anyone who reaches ZooKeeper read it");
	if (operator_auth != NULL && !ctl_digest_id(operator_auth, op_id, sizeof(op_id), sub, sizeof(sub))) {
		snprintf(why, whylen, "--auth: %s", sub);
		return false;
	}
	if (router != NULL && !ctl_digest_id(router, router_id, sizeof(router_id), sub, sizeof(sub))) {
		snprintf(why, whylen, "--router-auth: %s", sub);
		return false;
	}
	if (!acl_alloc(out, 3))
		goto oom;
	bool ok = true;
	if (operator_auth != NULL)
		ok = acl_add(out, "digest", op_id, ZOO_PERM_ALL);
	else
		ok = acl_add(out, "world", "anyone", ZOO_PERM_ALL);   /* world_readable, no operator */
	if (ok && router != NULL)
		ok = acl_add(out, "digest", router_id, ZOO_PERM_READ);
	if (ok && world_readable && operator_auth != NULL)
		ok = acl_add(out, "world", "anyone", ZOO_PERM_READ);
	if (!ok)
		goto oom;
	return true;
oom:
	ctl_acl_free(out);
	return fail(why, whylen, "out of memory");
}

void ctl_perms_string(int perms, char out[6])
{
	int n = 0;
	if (perms & ZOO_PERM_CREATE) out[n++] = 'c';
	if (perms & ZOO_PERM_DELETE) out[n++] = 'd';
	if (perms & ZOO_PERM_READ) out[n++] = 'r';
	if (perms & ZOO_PERM_WRITE) out[n++] = 'w';
	if (perms & ZOO_PERM_ADMIN) out[n++] = 'a';
	out[n] = '\0';
}
