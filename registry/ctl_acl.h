/*
 * Digest identities and the ACLs zkrouterctl puts on an app's nodes.
 *
 * ZooKeeper's digest scheme names an identity "user:base64(sha1(user:password))".
 * An app created with an owner gets, on /apps/<domain>/instances:
 *   owner    create + delete  (its agents register and replace stale nodes)
 *   routers  read             (the --router-auth identity, or anyone)
 *   operator all              (the --auth identity of zkrouterctl)
 * and on /apps/<domain> itself the operator has all and the readers read.
 * The instance nodes themselves are readable by anyone (see agent.c): an
 * owned app hides its list of instances, not the records.
 */
#ifndef ZKR_CTL_ACL_H
#define ZKR_CTL_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include <zookeeper/zookeeper.h>

/* Longest "user:base64(sha1)" we produce: user up to 255 bytes. */
#define CTL_DIGEST_ID_MAX (255 + 1 + 28 + 1)

/*
 * Checks "user:password" (user non-empty, 1-255 bytes, no ':' in it, a
 * password present) and writes the digest identity into out.
 */
bool ctl_digest_id(const char *user_pass, char *out, size_t outlen, char *why, size_t whylen);

/* The user part of "user:password" into out. */
bool ctl_auth_user(const char *user_pass, char *out, size_t outlen);

/*
 * The two ACLs for an app. owner/router/operator are "user:password" or
 * NULL; owner requires operator (someone must keep admin rights).
 * Free each vector with ctl_acl_free.
 */
struct ctl_app_acls {
	struct ACL_vector app;
	struct ACL_vector instances;
};
bool ctl_app_acls(const char *owner, const char *router, const char *operator_auth,
		  struct ctl_app_acls *out, char *why, size_t whylen);
void ctl_app_acls_free(struct ctl_app_acls *a);

/*
 * The ACL of /certs and of every certificate record, which hold private
 * keys: the operator all, the routers' identity read, nobody else (no
 * world, no agents). `router` is required unless `world_readable`, which
 * the operator must ask for: then anyone reaching ZooKeeper may read the
 * keys (and, without an operator, write them). Free with ctl_acl_free.
 */
bool ctl_cert_acl(const char *operator_auth, const char *router, bool world_readable,
		  struct ACL_vector *out, char *why, size_t whylen);
void ctl_acl_free(struct ACL_vector *v);

/* "cdrwa"-style letters for a permission mask. */
void ctl_perms_string(int perms, char out[6]);

#endif
