/*
 * zkrouterctl commands for TLS certificates in ZooKeeper: cert add, ls,
 * show, rm, and `certs --expiring DAYS`.
 *
 * A certificate is a TlsCertificate record at /certs/<name>.<sequence>
 * (PERSISTENT_SEQUENTIAL, immutable). `cert add` checks the chain and key
 * with the routers' own parser (registry/tlscert.h) and refuses what a
 * router would skip; it stores the chain and key re-written as plain PEM,
 * creates the new node, then removes the older nodes of the same name, so
 * that routers swap to the new certificate without serving neither.
 *
 * The records hold private keys: their ACL (and that of /certs) gives the
 * operator all rights and the routers' identity read, nobody else, unless
 * the operator asks for --world-readable (ctl_acl.h).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "registry/authfile.h"
#include "registry/ctl/ctl.h"
#include "registry/ctl_acl.h"
#include "registry/tlscert.h"

#define CERTS "/certs"
#define SEQ_DIGITS 10              /* ZooKeeper's sequence suffix */
#define NODE_PATH_MAX (sizeof(CERTS) + RECORD_CERT_NAME_MAX + SEQ_DIGITS + 4)
#define FILE_MAX (RECORD_CERT_CHAIN_MAX + RECORD_CERT_KEY_MAX)
#define WHY_MAX 256

/* ---- names ---------------------------------------------------------------- */

/* The NAME of node "NAME.0000000042"; a node without the suffix (written by
 * other tooling) is its own name. */
static void node_cert_name(const char *node, char *out, size_t outlen)
{
	const char *dot = strrchr(node, '.');
	size_t n = strlen(node);
	if (dot != NULL && strlen(dot + 1) == SEQ_DIGITS && strspn(dot + 1, "0123456789") == SEQ_DIGITS)
		n = (size_t)(dot - node);
	snprintf(out, outlen, "%.*s", (int)n, node);
}

/* The default NAME: the first DNS name, a wildcard's "*" spelled
 * "_wildcard" (a label no host name can have, so no clash). */
static bool default_name(const struct zkr_cert *z, char *out, size_t outlen)
{
	const char *first = z->names[0];
	int n = strncmp(first, "*.", 2) == 0 ? snprintf(out, outlen, "_wildcard%s", first + 1)
					      : snprintf(out, outlen, "%s", first);
	return n > 0 && (size_t)n < outlen && record_valid_cert_name(out);
}

static long days_left(time_t not_after, time_t now)
{
	double d = difftime(not_after, now) / 86400.0;
	return d < 0 ? -(long)(-d + 0.999999) : (long)d;   /* rounded towards "less" */
}

static void format_secs(time_t t, char *out, size_t outlen)
{
	ctl_format_time(t > 0 ? (uint64_t)t * 1000 : 0, out, outlen);
}

/* ---- reading /certs --------------------------------------------------------- */

struct cert_entry {
	char node[NODE_PATH_MAX];
	char name[RECORD_CERT_NAME_MAX + SEQ_DIGITS + 2];
	record_tls_certificate *rec;   /* NULL: undecodable or unreadable */
	struct zkr_cert z;
	bool parsed;
	char why[WHY_MAX];
};

struct cert_list {
	struct cert_entry *e;
	size_t n;
};

static void cert_list_free(struct cert_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		record_tls_certificate_free(l->e[i].rec);
		if (l->e[i].parsed)
			zkr_cert_free(&l->e[i].z);
	}
	free(l->e);
	l->e = NULL;
	l->n = 0;
}

static int certs_refused(int rc, const char *path)
{
	if (rc == ZNOAUTH)
		ctl_err("cannot read %s: not authenticated; certificates are readable by the operator "
			"and the routers only (give --auth)", path);
	else
		ctl_zk_fail("cannot read", path, rc);
	return CTL_EXIT_FAIL;
}

/* Lists /certs (only nodes of `only` when not NULL) and, with `read`,
 * reads and parses every record. A missing /certs is an empty list. The
 * list is to be freed (cert_list_free) after success only. */
static int cert_list_load(struct ctl *c, const char *only, bool read, struct cert_list *l)
{
	struct String_vector kids;
	memset(l, 0, sizeof(*l));
	int rc = ctl_zk_children(&c->conn, CERTS, &kids);
	if (rc == ZNONODE)
		return CTL_EXIT_OK;
	if (rc != ZOK)
		return certs_refused(rc, CERTS);
	int ret = CTL_EXIT_OK;
	if (kids.count > 0 && (l->e = calloc((size_t)kids.count, sizeof(*l->e))) == NULL) {
		ctl_err("out of memory");
		ret = CTL_EXIT_FAIL;
		goto done;
	}
	for (int i = 0; i < kids.count; i++) {
		struct cert_entry *e = &l->e[l->n];
		node_cert_name(kids.data[i], e->name, sizeof(e->name));
		if (only != NULL && strcmp(e->name, only) != 0)
			continue;
		snprintf(e->node, sizeof(e->node), "%s", kids.data[i]);
		if (!read) {
			l->n++;
			continue;
		}
		char path[NODE_PATH_MAX + 8], *data = NULL;
		int len = 0;
		snprintf(path, sizeof(path), CERTS "/%s", kids.data[i]);
		rc = ctl_zk_get(&c->conn, path, &data, &len, NULL);
		if (rc == ZNONODE)
			continue;      /* removed while we listed */
		l->n++;
		if (rc == ZNOAUTH) {
			free(data);
			ret = certs_refused(rc, path);
			goto done;
		}
		if (rc != ZOK) {
			snprintf(e->why, sizeof(e->why), "cannot read: %s", ctl_zk_strerror(rc));
			continue;
		}
		e->rec = record_tls_certificate_decode((const uint8_t *)(data ? data : ""), (size_t)len,
						       e->why, sizeof(e->why));
		free(data);
		if (e->rec != NULL)
			e->parsed = zkr_cert_parse(e->rec->chain_pem, strlen(e->rec->chain_pem),
						   e->rec->key_pem, strlen(e->rec->key_pem), &e->z, e->why,
						   sizeof(e->why));
	}
done:
	deallocate_String_vector(&kids);
	if (ret != CTL_EXIT_OK)
		cert_list_free(l);
	return ret;
}

/* ---- output ----------------------------------------------------------------- */

static void join_names(const struct zkr_cert *z, char *out, size_t outlen)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; i < z->n_names && off < outlen; i++) {
		int w = snprintf(out + off, outlen - off, "%s%s", i ? "," : "", z->names[i]);
		if (w > 0)
			off += (size_t)w;
	}
}

static const char *key_type_name(enum zkr_key_type t)
{
	return t == ZKR_KEY_RSA ? "rsa" : t == ZKR_KEY_ECDSA ? "ecdsa" : "other";
}

static void sha256_hex(const struct zkr_cert *z, char out[65])
{
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", z->sha256[i]);
}

/* One certificate as JSON members, without braces. Never the key. */
static void entry_json(const struct cert_entry *e, time_t now, bool details)
{
	printf("\"name\":");
	json_str(stdout, e->name);
	printf(",\"node\":");
	json_str(stdout, e->node);
	if (!e->parsed) {
		printf(",\"error\":");
		json_str(stdout, e->why);
		return;
	}
	char t[40], hex[65];
	json_str_array(stdout, "names", e->z.names, e->z.n_names);
	printf(",\"issuer\":");
	json_str(stdout, e->z.issuer);
	format_secs(e->z.not_after, t, sizeof(t));
	printf(",\"not_after\":\"%s\",\"days_left\":%ld", t, days_left(e->z.not_after, now));
	if (!details)
		return;
	printf(",\"subject\":");
	json_str(stdout, e->z.subject);
	format_secs(e->z.not_before, t, sizeof(t));
	sha256_hex(&e->z, hex);
	printf(",\"not_before\":\"%s\",\"key_type\":\"%s\",\"chain_length\":%d,\"sha256\":\"%s\"", t,
	       key_type_name(e->z.key_type), 1 + sk_X509_num(e->z.chain), hex);
	ctl_format_time(e->rec->added_at_ms, t, sizeof(t));
	printf(",\"added_at\":\"%s\",\"added_by\":", t);
	json_str(stdout, e->rec->added_by);
}

/* Keeps an entry in a listing (certs --expiring); NULL keeps all. */
typedef bool (*cert_filter)(const struct cert_entry *e, time_t now, long arg);

static void print_table(const struct cert_list *l, time_t now, cert_filter keep, long arg)
{
	bool header = false;
	for (size_t i = 0; i < l->n; i++) {
		const struct cert_entry *e = &l->e[i];
		if (keep != NULL && !keep(e, now, arg))
			continue;
		if (!header) {
			printf("%-32s %-24s %5s  %-40s %s\n", "NAME", "NOT-AFTER", "DAYS", "NAMES", "ISSUER");
			header = true;
		}
		if (!e->parsed) {
			printf("%-32s INVALID (%s): %s\n", e->name, e->node, e->why);
			continue;
		}
		char names[1024], t[40];
		join_names(&e->z, names, sizeof(names));
		format_secs(e->z.not_after, t, sizeof(t));
		printf("%-32s %-24s %5ld  %-40s %s\n", e->name, t, days_left(e->z.not_after, now), names,
		       e->z.issuer);
	}
}

/* ---- cert add --------------------------------------------------------------- */

static bool read_file(const char *file, char **out, size_t *len)
{
	FILE *f = fopen(file, "rb");
	if (f == NULL) {
		ctl_err("cannot read %s: %s", file, strerror(errno));
		return false;
	}
	char *buf = malloc(FILE_MAX + 1);
	size_t n = buf ? fread(buf, 1, FILE_MAX + 1, f) : 0;
	bool ok = buf != NULL && !ferror(f);
	fclose(f);
	if (!ok) {
		ctl_err("cannot read %s: %s", file, buf ? "read error" : "out of memory");
	} else if (n > FILE_MAX) {
		ctl_err("%s: larger than %d bytes; not a certificate file", file, FILE_MAX);
		ok = false;
	}
	if (!ok) {
		free(buf);
		return false;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return true;
}

/* The parsed chain and key as plain PEM (the key unencrypted PKCS#8). */
static char *pem_of(const struct zkr_cert *z, bool key)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *mem;
	bool ok = b != NULL;
	if (ok && key) {
		ok = PEM_write_bio_PrivateKey(b, z->key, NULL, NULL, 0, NULL, NULL) == 1;
	} else if (ok) {
		ok = PEM_write_bio_X509(b, z->leaf) == 1;
		for (int i = 0; ok && i < sk_X509_num(z->chain); i++)
			ok = PEM_write_bio_X509(b, sk_X509_value(z->chain, i)) == 1;
	}
	long n = ok ? BIO_get_mem_data(b, &mem) : 0;
	if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
		memcpy(out, mem, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(b);
	return out;
}

struct add_args {
	const char *file, *key_file, *name, *router_auth;
	bool world_readable;
};

/* Warns when /certs, made earlier, is open wider than this record will be. */
static void check_folder_acl(struct ctl *c, bool world_readable)
{
	struct ACL_vector acl;
	struct Stat st;
	if (world_readable || ctl_zk_get_acl(&c->conn, CERTS, &acl, &st) != ZOK)
		return;
	for (int i = 0; i < acl.count; i++)
		if (strcmp(acl.data[i].id.scheme, "world") == 0 && (acl.data[i].perms & ZOO_PERM_READ))
			ctl_err("warning: " CERTS " is listable by anyone (ACL world:anyone); the records' "
				"own ACL still protects their keys");
	deallocate_ACL_vector(&acl);
}

/* Removes the nodes of `name` older than `created` (a node path); fills
 * `removed` with how many went. */
static int remove_older(struct ctl *c, const char *name, const char *created, int *removed)
{
	struct cert_list l;
	int rc = cert_list_load(c, name, false, &l);
	*removed = 0;
	for (size_t i = 0; rc == CTL_EXIT_OK && i < l.n; i++) {
		char path[NODE_PATH_MAX + 8];
		snprintf(path, sizeof(path), CERTS "/%s", l.e[i].node);
		/* Same width of sequence: the string order is the creation order. */
		if (strcmp(path, created) >= 0)
			continue;
		int zrc = ctl_zk_delete(&c->conn, path, -1);
		if (zrc != ZOK && zrc != ZNONODE)
			rc = ctl_zk_fail("cannot remove the replaced", path, zrc);
		else
			(*removed)++;
	}
	cert_list_free(&l);
	return rc;
}

static int cert_add(struct ctl *c, const struct add_args *a)
{
	char *chain = NULL, *key = NULL, *chain_pem = NULL, *key_pem = NULL, *created = NULL;
	size_t chain_len = 0, key_len = 0, blen = 0;
	uint8_t *buf = NULL;
	struct zkr_cert z;
	bool parsed = false;
	struct ACL_vector acl = { 0, NULL };
	char why[WHY_MAX], name[RECORD_CERT_NAME_MAX + 1];
	int rc = CTL_EXIT_USAGE;

	if (a->name != NULL && !record_valid_cert_name(a->name)) {
		rc = ctl_usage_err("--name \"%s\": use 1-%d characters of a-z, 0-9, '-', '_', '.', not "
				   "starting with '-' or '.'", a->name, RECORD_CERT_NAME_MAX);
		goto done;
	}
	if (!ctl_cert_acl(c->auth, a->router_auth, a->world_readable, &acl, why, sizeof(why))) {
		rc = ctl_usage_err("cert add: %s", why);
		goto done;
	}
	if (!read_file(a->file, &chain, &chain_len) ||
	    (a->key_file != NULL && !read_file(a->key_file, &key, &key_len)))
		goto done;
	/* The routers' own checks: what they would skip is refused here. */
	if (!(parsed = zkr_cert_parse(chain, chain_len, key, key_len, &z, why, sizeof(why)))) {
		ctl_err("refused: %s%s%s: %s", a->file, a->key_file ? " with key " : "",
			a->key_file ? a->key_file : "", why);
		goto done;
	}
	time_t now = time(NULL);
	if (!zkr_cert_usable(&z, now, why, sizeof(why))) {
		ctl_err("refused: %s: %s", a->file, why);
		goto done;
	}
	if (a->name != NULL) {
		snprintf(name, sizeof(name), "%s", a->name);
	} else if (!default_name(&z, name, sizeof(name))) {
		rc = ctl_usage_err("cert add: cannot make a name from \"%s\"; give --name", z.names[0]);
		goto done;
	}
	rc = CTL_EXIT_FAIL;
	if ((chain_pem = pem_of(&z, false)) == NULL || (key_pem = pem_of(&z, true)) == NULL) {
		ctl_err("cannot write the certificate as PEM (out of memory?)");
		goto done;
	}
	char by[300] = "zkrouterctl", user[256];
	if (c->auth != NULL && ctl_auth_user(c->auth, user, sizeof(user)))
		snprintf(by, sizeof(by), "zkrouterctl as %s", user);
	record_tls_certificate rec = ZKROUTER__TLS_CERTIFICATE__INIT;
	rec.chain_pem = chain_pem;
	rec.key_pem = key_pem;
	rec.name = name;
	rec.has_added_at_ms = 1;
	rec.added_at_ms = ctl_now_ms();
	rec.added_by = by;
	if ((buf = record_tls_certificate_encode(&rec, &blen, why, sizeof(why))) == NULL) {
		ctl_err("refused: %s: %s", a->file, why);
		rc = CTL_EXIT_USAGE;
		goto done;
	}
	if (!ctl_connect_to_write(c))
		goto done;
	int zrc = ctl_zk_create(&c->conn, CERTS, NULL, 0, &acl, 0);
	if (zrc == ZNODEEXISTS)
		check_folder_acl(c, a->world_readable);
	else if (zrc != ZOK) {
		ctl_zk_fail("cannot create", CERTS, zrc);
		goto done;
	}
	char prefix[NODE_PATH_MAX];
	snprintf(prefix, sizeof(prefix), CERTS "/%s.", name);
	zrc = ctl_zk_create_path(&c->conn, prefix, buf, (int)blen, &acl, ZOO_SEQUENCE, &created);
	if (zrc != ZOK || created == NULL) {
		ctl_zk_fail("cannot create", prefix, zrc != ZOK ? zrc : ZSYSTEMERROR);
		goto done;
	}
	int removed = 0;
	rc = remove_older(c, name, created, &removed);
	char t[40], names[2048];
	format_secs(z.not_after, t, sizeof(t));
	if (c->json) {
		printf("{\"name\":");
		json_str(stdout, name);
		printf(",\"path\":");
		json_str(stdout, created);
		json_str_array(stdout, "names", z.names, z.n_names);
		printf(",\"not_after\":\"%s\",\"days_left\":%ld,\"replaced\":%d}\n", t,
		       days_left(z.not_after, now), removed);
	} else {
		join_names(&z, names, sizeof(names));
		printf("certificate %s stored at %s%s\n  serves    %s\n  not after %s (%ld days)\n", name,
		       created, removed ? " (replacing the previous one)" : "", names, t,
		       days_left(z.not_after, now));
	}
done:
	if (parsed)
		zkr_cert_free(&z);
	ctl_acl_free(&acl);
	free(chain);
	free(key);
	free(chain_pem);
	free(key_pem);
	free(buf);
	free(created);
	return rc;
}

/* ---- ls, show, rm, certs --expiring ------------------------------------------ */

static int cert_ls(struct ctl *c, const char *expiring_name, cert_filter keep, long days)
{
	struct cert_list l;
	if (!ctl_connect(c))
		return CTL_EXIT_FAIL;
	int rc = cert_list_load(c, NULL, true, &l);
	if (rc != CTL_EXIT_OK)
		return rc;
	time_t now = time(NULL);
	size_t shown = 0;
	if (c->json) {
		printf("{\"certs\":[");
		for (size_t i = 0; i < l.n; i++) {
			if (keep != NULL && !keep(&l.e[i], now, days))
				continue;
			printf("%s{", shown++ ? "," : "");
			entry_json(&l.e[i], now, false);
			printf("}");
		}
		printf("]}\n");
	} else {
		print_table(&l, now, keep, days);
		for (size_t i = 0; i < l.n; i++)
			shown += keep == NULL || keep(&l.e[i], now, days);
		if (shown == 0 && keep == NULL)
			printf("no certificates (add one with `zkrouterctl cert add FILE`)\n");
		else if (shown == 0)
			printf("no certificate %s\n", expiring_name);
	}
	cert_list_free(&l);
	return keep != NULL && shown > 0 ? CTL_EXIT_CHECK : CTL_EXIT_OK;
}

static bool is_expiring(const struct cert_entry *e, time_t now, long days)
{
	return e->parsed && difftime(e->z.not_after, now) < (double)days * 86400.0;
}

/* The nodes of certificate `name`; none is an error, said here. */
static int cert_list_load_named(struct ctl *c, const char *name, bool read, struct cert_list *l)
{
	int rc = cert_list_load(c, name, read, l);

	if (rc == CTL_EXIT_OK && l->n == 0) {
		cert_list_free(l);
		ctl_err("no certificate named %s (see `zkrouterctl cert ls`)", name);
		return CTL_EXIT_FAIL;
	}
	return rc;
}

static int cert_show(struct ctl *c, const char *name)
{
	struct cert_list l;
	if (!ctl_connect(c))
		return CTL_EXIT_FAIL;
	int rc = cert_list_load_named(c, name, true, &l);
	if (rc != CTL_EXIT_OK)
		return rc;
	time_t now = time(NULL);
	if (c->json)
		printf("{\"name\":\"%s\",\"nodes\":[", name);
	for (size_t i = 0; i < l.n; i++) {
		const struct cert_entry *e = &l.e[i];
		char path[NODE_PATH_MAX + 8];
		snprintf(path, sizeof(path), CERTS "/%s", e->node);
		struct ACL_vector acl = { 0, NULL };
		struct Stat st;
		int arc = ctl_zk_get_acl(&c->conn, path, &acl, &st);
		if (c->json) {
			printf("%s{", i ? "," : "");
			entry_json(e, now, true);
			printf(",\"acl\":[");
			for (int k = 0; arc == ZOK && k < acl.count; k++) {
				char perms[6], id[600];
				ctl_perms_string(acl.data[k].perms, perms);
				snprintf(id, sizeof(id), "%s:%s", acl.data[k].id.scheme, acl.data[k].id.id);
				printf("%s{\"id\":", k ? "," : "");
				json_str(stdout, id);
				printf(",\"perms\":\"%s\"}", perms);
			}
			printf("]}");
		} else if (!e->parsed) {
			printf("certificate %s (%s): INVALID: %s\n", e->name, path, e->why);
		} else {
			char names[2048], nb[40], na[40], added[40], hex[65];
			join_names(&e->z, names, sizeof(names));
			format_secs(e->z.not_before, nb, sizeof(nb));
			format_secs(e->z.not_after, na, sizeof(na));
			ctl_format_time(e->rec->added_at_ms, added, sizeof(added));
			sha256_hex(&e->z, hex);
			printf("certificate %s (%s)\n  names      %s\n  subject    %s\n  issuer     %s\n"
			       "  valid      %s to %s (%ld days left)\n  key        %s, chain of %d\n"
			       "  sha256     %s\n  added      %s by %s\n",
			       e->name, path, names, e->z.subject, e->z.issuer, nb, na,
			       days_left(e->z.not_after, now), key_type_name(e->z.key_type),
			       1 + sk_X509_num(e->z.chain), hex, added,
			       e->rec->added_by ? e->rec->added_by : "-");
			for (int k = 0; arc == ZOK && k < acl.count; k++) {
				char perms[6];
				ctl_perms_string(acl.data[k].perms, perms);
				printf("  %-10s %s:%s %s\n", k == 0 ? "acl" : "", acl.data[k].id.scheme,
				       acl.data[k].id.id, perms);
			}
		}
		if (arc == ZOK)
			deallocate_ACL_vector(&acl);
	}
	if (c->json)
		printf("]}\n");
	cert_list_free(&l);
	return CTL_EXIT_OK;
}

static int cert_rm(struct ctl *c, const char *name)
{
	struct cert_list l;
	if (!ctl_connect_to_write(c))
		return CTL_EXIT_FAIL;
	int rc = cert_list_load_named(c, name, false, &l);
	if (rc != CTL_EXIT_OK)
		return rc;
	int removed = 0;
	for (size_t i = 0; rc == CTL_EXIT_OK && i < l.n; i++) {
		char path[NODE_PATH_MAX + 8];
		snprintf(path, sizeof(path), CERTS "/%s", l.e[i].node);
		int zrc = ctl_zk_delete(&c->conn, path, -1);
		if (zrc == ZOK)
			removed++;
		else if (zrc != ZNONODE)
			rc = ctl_zk_fail("cannot remove", path, zrc);
	}
	cert_list_free(&l);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (c->json) {
		printf("{\"name\":");
		json_str(stdout, name);
		printf(",\"removed\":%d}\n", removed);
	} else {
		printf("certificate %s removed (%d node%s); routers fall back to their other certificates\n",
		       name, removed, removed == 1 ? "" : "s");
	}
	return CTL_EXIT_OK;
}

/* ---- command lines ------------------------------------------------------------ */

enum { OPT_KEY = 1000, OPT_NAME, OPT_ROUTER_AUTH, OPT_WORLD, OPT_EXPIRING, OPT_ROUTER_AUTH_FILE };

static const struct option cert_opts[] = {
	{ "key", required_argument, NULL, OPT_KEY },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "router-auth", required_argument, NULL, OPT_ROUTER_AUTH },
	{ "router-auth-file", required_argument, NULL, OPT_ROUTER_AUTH_FILE },
	{ "world-readable", no_argument, NULL, OPT_WORLD },
	{ "expiring", required_argument, NULL, OPT_EXPIRING },
	{ NULL, 0, NULL, 0 },
};

struct cert_args {
	struct add_args add;
	const char *expiring;
	const char *router_auth_file;
	char **pos;                /* positional arguments after the verb */
	int n_pos;
	bool any_add_opt;
};

/* Parses argv from argv[skip] on; positionals land in a->pos. */
static int parse_cert_args(int argc, char **argv, int skip, struct cert_args *a)
{
	int ch;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc - skip + 1, argv + skip - 1, ":", cert_opts, NULL)) != -1) {
		switch (ch) {
		case OPT_KEY: a->add.key_file = optarg; a->any_add_opt = true; break;
		case OPT_NAME: a->add.name = optarg; a->any_add_opt = true; break;
		case OPT_ROUTER_AUTH: a->add.router_auth = optarg; a->any_add_opt = true; break;
		case OPT_ROUTER_AUTH_FILE: a->router_auth_file = optarg; a->any_add_opt = true; break;
		case OPT_WORLD: a->add.world_readable = true; a->any_add_opt = true; break;
		case OPT_EXPIRING: a->expiring = optarg; break;
		case ':':
			return ctl_usage_err("option %s needs a value", argv[skip - 1 + optind - 1]);
		default:
			return ctl_usage_err("%s: unknown option %s", argv[0], argv[skip - 1 + optind - 1]);
		}
	}
	a->pos = argv + skip - 1 + optind;
	a->n_pos = argc - (skip - 1 + optind);
	return CTL_EXIT_OK;
}

int ctl_cmd_cert(struct ctl *c, int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage_err("cert: give add, ls, show or rm");
	const char *verb = argv[1];
	struct cert_args a = { .pos = NULL };
	int rc = parse_cert_args(argc, argv, 2, &a);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (strcmp(verb, "add") == 0) {
		if (a.expiring != NULL)
			return ctl_usage_err("cert add: --expiring belongs to `certs`");
		if (a.n_pos != 1)
			return ctl_usage_err("cert add: give one FILE (the chain, leaf first; the key too "
					     "unless --key)");
		a.add.file = a.pos[0];
		char *router_buf = NULL;
		rc = ctl_identity("router-auth", a.router_auth_file, &router_buf, &a.add.router_auth);
		if (rc == CTL_EXIT_OK)
			rc = cert_add(c, &a.add);
		zkr_auth_free(router_buf);
		return rc;
	}
	if (a.any_add_opt || a.expiring != NULL)
		return ctl_usage_err("cert %s: options are for cert add and certs", verb);
	if (strcmp(verb, "ls") == 0) {
		if (a.n_pos != 0)
			return ctl_usage_err("cert ls: unexpected argument \"%s\"", a.pos[0]);
		return cert_ls(c, NULL, NULL, 0);
	}
	if (strcmp(verb, "show") == 0 || strcmp(verb, "rm") == 0) {
		if (a.n_pos != 1)
			return ctl_usage_err("cert %s: give one NAME", verb);
		if (!record_valid_cert_name(a.pos[0]))
			return ctl_usage_err("cert %s: \"%s\" is not a certificate name", verb, a.pos[0]);
		return verb[0] == 's' ? cert_show(c, a.pos[0]) : cert_rm(c, a.pos[0]);
	}
	return ctl_usage_err("cert: unknown subcommand \"%s\" (add, ls, show, rm)", verb);
}

int ctl_cmd_certs(struct ctl *c, int argc, char **argv)
{
	struct cert_args a = { .pos = NULL };
	int rc = parse_cert_args(argc, argv, 1, &a);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (a.any_add_opt)
		return ctl_usage_err("certs: only --expiring DAYS");
	if (a.n_pos != 0)
		return ctl_usage_err("certs: unexpected argument \"%s\"", a.pos[0]);
	if (a.expiring == NULL)
		return cert_ls(c, NULL, NULL, 0);
	uint64_t days;
	if (!ctl_parse_u64("--expiring", a.expiring, 0, 36500, &days))
		return CTL_EXIT_USAGE;
	char what[64];
	snprintf(what, sizeof(what), "expires within %" PRIu64 " days", days);
	return cert_ls(c, what, is_expiring, (long)days);
}
