/*
 * zkrouterctl's read-only listings: apps, instances DOMAIN and routers.
 * A record that fails to decode is shown with its reason rather than
 * hidden, since the operator is usually looking for exactly that.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "registry/ctl/ctl.h"

#define PATH_LEN 600

static int no_args(int argc, char **argv)
{
	if (argc > 1)
		return ctl_usage_err("%s: unexpected argument \"%s\"", argv[0], argv[1]);
	return CTL_EXIT_OK;
}

/* Lists path's children; ZNONODE on /apps or /routers means "run init". */
static int list_root(struct ctl *c, const char *path, struct String_vector *kids)
{
	int rc = ctl_zk_children(&c->conn, path, kids);
	if (rc == ZNONODE) {
		ctl_err("%s does not exist: run `zkrouterctl init` first", path);
		return CTL_EXIT_FAIL;
	}
	if (rc != ZOK)
		return ctl_zk_fail("cannot list", path, rc);
	return CTL_EXIT_OK;
}

/* ---- apps ---------------------------------------------------------------- */

int ctl_cmd_apps(struct ctl *c, int argc, char **argv)
{
	int rc = no_args(argc, argv);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (!ctl_connect(c))
		return CTL_EXIT_FAIL;
	struct String_vector apps;
	if ((rc = list_root(c, "/apps", &apps)) != CTL_EXIT_OK)
		return rc;
	if (c->json)
		printf("{\"apps\":[");
	else if (apps.count > 0)
		printf("%-40s %9s  %s\n", "DOMAIN", "INSTANCES", "CONFIG");
	else
		printf("no apps (add one with `zkrouterctl app add DOMAIN`)\n");
	for (int i = 0; i < apps.count; i++) {
		char path[PATH_LEN], ipath[PATH_LEN], why[RECORD_WHY_MAX] = "";
		const char *d = apps.data[i];
		snprintf(path, sizeof(path), "/apps/%s", d);
		snprintf(ipath, sizeof(ipath), "/apps/%s/instances", d);
		char *data = NULL;
		int len = 0;
		struct Stat st;
		record_app_config *cfg = NULL;
		int zrc = ctl_zk_get(&c->conn, path, &data, &len, &st);
		if (zrc == ZNONODE)
			continue;  /* removed while we listed */
		if (zrc != ZOK) {
			snprintf(why, sizeof(why), "cannot read: %s", ctl_zk_strerror(zrc));
		} else {
			cfg = record_app_config_decode((const uint8_t *)(data ? data : ""), (size_t)len,
						       why, sizeof(why));
		}
		free(data);
		int n = -1;
		zrc = ctl_zk_exists(&c->conn, ipath, &st);
		if (zrc == ZOK)
			n = st.numChildren;
		if (c->json) {
			printf("%s{\"domain\":", i ? "," : "");
			json_str(stdout, d);
			if (n >= 0)
				printf(",\"instances\":%d", n);
			else
				printf(",\"instances\":null");
			if (!record_valid_domain(d))
				printf(",\"warning\":\"not a valid domain; routers ignore it\"");
			if (cfg != NULL) {
				printf(",\"config\":");
				ctl_print_app_config_json(stdout, cfg);
			} else {
				printf(",\"error\":");
				json_str(stdout, why);
			}
			printf("}");
		} else {
			char sum[512], count[16];
			if (cfg != NULL)
				ctl_app_config_summary(cfg, sum, sizeof(sum));
			else
				snprintf(sum, sizeof(sum), "INVALID: %s", why);
			if (n >= 0)
				snprintf(count, sizeof(count), "%d", n);
			else
				snprintf(count, sizeof(count), "-");
			printf("%-40s %9s  %s%s\n", d, count, sum,
			       record_valid_domain(d) ? "" : "  (invalid domain, ignored by routers)");
		}
		record_app_config_free(cfg);
	}
	if (c->json)
		printf("]}\n");
	deallocate_String_vector(&apps);
	return CTL_EXIT_OK;
}

/* ---- instances DOMAIN ---------------------------------------------------- */

int ctl_cmd_instances(struct ctl *c, int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage_err("instances: DOMAIN missing");
	if (argc > 2)
		return ctl_usage_err("instances: unexpected argument \"%s\"", argv[2]);
	const char *domain = argv[1];
	if (!ctl_check_domain(domain))
		return CTL_EXIT_USAGE;
	char ipath[PATH_LEN];
	snprintf(ipath, sizeof(ipath), "/apps/%s/instances", domain);
	if (!ctl_connect(c))
		return CTL_EXIT_FAIL;
	struct String_vector kids;
	int zrc = ctl_zk_children(&c->conn, ipath, &kids);
	if (zrc == ZNONODE) {
		ctl_err("unknown domain %s (no %s; see `zkrouterctl apps`)", domain, ipath);
		return CTL_EXIT_FAIL;
	}
	if (zrc != ZOK)
		return ctl_zk_fail("cannot list", ipath, zrc);
	if (c->json) {
		printf("{\"domain\":");
		json_str(stdout, domain);
		printf(",\"instances\":[");
	} else if (kids.count == 0) {
		printf("no instances registered for %s\n", domain);
	} else {
		printf("%-28s %-28s %6s %-10s %-8s %s\n", "ID", "ADDRESS", "WEIGHT", "ZONE", "STATE",
		       "REGISTERED");
	}
	int shown = 0;
	for (int i = 0; i < kids.count; i++) {
		char path[PATH_LEN * 2], why[RECORD_WHY_MAX] = "";
		snprintf(path, sizeof(path), "%s/%s", ipath, kids.data[i]);
		char *data = NULL;
		int len = 0;
		struct Stat st;
		zrc = ctl_zk_get(&c->conn, path, &data, &len, &st);
		if (zrc == ZNONODE)
			continue;  /* gone between list and get: a removal */
		record_instance *r = NULL;
		if (zrc != ZOK)
			snprintf(why, sizeof(why), "cannot read: %s", ctl_zk_strerror(zrc));
		else
			r = record_instance_decode((const uint8_t *)(data ? data : ""), (size_t)len,
						   why, sizeof(why));
		free(data);
		if (c->json) {
			printf("%s", shown ? "," : "");
			if (r != NULL) {
				printf("{");
				ctl_print_instance_fields(stdout, kids.data[i], r);
				/* The session that holds the node tells which agent owns it. */
				printf(",\"session\":\"0x%" PRIx64 "\",\"created_ms\":%" PRId64 "}",
				       (uint64_t)st.ephemeralOwner, (int64_t)st.ctime);
			} else {
				printf("{\"id\":");
				json_str(stdout, kids.data[i]);
				printf(",\"error\":");
				json_str(stdout, why);
				printf("}");
			}
		} else if (r != NULL) {
			char addr[300], when[40];
			snprintf(addr, sizeof(addr), strchr(r->host, ':') ? "[%s]:%u" : "%s:%u", r->host, r->port);
			ctl_format_time(r->registered_at_ms, when, sizeof(when));
			printf("%-28s %-28s %6u %-10s %-8s %s\n", kids.data[i], addr, r->weight,
			       r->zone && *r->zone ? r->zone : "-",
			       r->state == ZKROUTER__INSTANCE__STATE__DRAINING ? "draining" : "up", when);
		} else {
			printf("%-28s INVALID: %s\n", kids.data[i], why);
		}
		shown++;
		record_instance_free(r);
	}
	if (c->json)
		printf("]}\n");
	deallocate_String_vector(&kids);
	return CTL_EXIT_OK;
}
