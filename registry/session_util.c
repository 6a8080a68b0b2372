/*
 * Helpers around the ZooKeeper C client, used by registry/session.c and
 * offered through session.h: the client's own log routed through ours,
 * "mkdir -p" over asynchronous creates, and names for return codes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/log.h"
#include "registry/session_util.h"

const char *zkr_zerror_name(int rc)
{
	switch (rc) {
	case ZOK: return "ZOK";
	case ZSYSTEMERROR: return "ZSYSTEMERROR";
	case ZRUNTIMEINCONSISTENCY: return "ZRUNTIMEINCONSISTENCY";
	case ZDATAINCONSISTENCY: return "ZDATAINCONSISTENCY";
	case ZCONNECTIONLOSS: return "ZCONNECTIONLOSS";
	case ZMARSHALLINGERROR: return "ZMARSHALLINGERROR";
	case ZUNIMPLEMENTED: return "ZUNIMPLEMENTED";
	case ZOPERATIONTIMEOUT: return "ZOPERATIONTIMEOUT";
	case ZBADARGUMENTS: return "ZBADARGUMENTS";
	case ZINVALIDSTATE: return "ZINVALIDSTATE";
	case ZNONODE: return "ZNONODE";
	case ZNOAUTH: return "ZNOAUTH";
	case ZBADVERSION: return "ZBADVERSION";
	case ZNOCHILDRENFOREPHEMERALS: return "ZNOCHILDRENFOREPHEMERALS";
	case ZNODEEXISTS: return "ZNODEEXISTS";
	case ZNOTEMPTY: return "ZNOTEMPTY";
	case ZSESSIONEXPIRED: return "ZSESSIONEXPIRED";
	case ZINVALIDCALLBACK: return "ZINVALIDCALLBACK";
	case ZINVALIDACL: return "ZINVALIDACL";
	case ZAUTHFAILED: return "ZAUTHFAILED";
	case ZCLOSING: return "ZCLOSING";
	case ZNOTHING: return "ZNOTHING";
	case ZSESSIONMOVED: return "ZSESSIONMOVED";
	case ZNOTREADONLY: return "ZNOTREADONLY";
	case ZNEWCONFIGNOQUORUM: return "ZNEWCONFIGNOQUORUM";
	case ZRECONFIGINPROGRESS: return "ZRECONFIGINPROGRESS";
	default: return "ZUNKNOWN";
	}
}

/* ---- ZooKeeper's own log, through ours ---------------------------------- */

/*
 * While no server answers, the client retries every timeout/60 ms and logs
 * two lines per attempt. The first of each distinct line is worth a
 * warning; repeats within LOG_REPEAT_S are demoted to debug, so an outage
 * costs a few lines a minute instead of dozens a second. Messages are
 * hashed with digits dropped, since ports and counters vary.
 */
#define LOG_REPEAT_SLOTS 8
#define LOG_REPEAT_S 60

static bool zk_log_repeated(const char *text, size_t len)
{
	static struct { uint64_t hash; time_t at; } seen[LOG_REPEAT_SLOTS];
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		if (text[i] >= '0' && text[i] <= '9')
			continue;
		h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	size_t oldest = 0;
	for (size_t i = 0; i < LOG_REPEAT_SLOTS; i++) {
		if (seen[i].hash == h && now.tv_sec - seen[i].at < LOG_REPEAT_S)
			return true;
		if (seen[i].at < seen[oldest].at)
			oldest = i;
	}
	seen[oldest].hash = h;
	seen[oldest].at = now.tv_sec;
	return false;
}

/*
 * The client formats "time:pid:ZOO_LEVEL@func@line: message". We keep the
 * level (mapped to ours) and the message; the function name helps when
 * reading a trace, so it stays in debug mode only.
 */
void session_util_log(const char *message)
{
	enum zkr_log_level lvl = ZKR_LOG_INFO;
	const char *p = strstr(message, ":ZOO_");
	const char *text = message;
	if (p != NULL) {
		p += 5;
		if (strncmp(p, "ERROR@", 6) == 0)
			lvl = ZKR_LOG_WARN;  /* connection refused etc.: we retry, not fatal */
		else if (strncmp(p, "WARN@", 5) == 0)
			lvl = ZKR_LOG_WARN;
		else if (strncmp(p, "INFO@", 5) == 0)
			lvl = ZKR_LOG_INFO;
		else
			lvl = ZKR_LOG_DEBUG;
		const char *colon = strstr(p, ": ");
		if (colon != NULL && zkr_log_threshold < ZKR_LOG_DEBUG)
			text = colon + 2;
		else
			text = p;
	}
	size_t len = strlen(text);
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (lvl <= ZKR_LOG_WARN && zk_log_repeated(text, len))
		lvl = ZKR_LOG_DEBUG;
	zkr_log_at(lvl, "zookeeper: %.*s", (int)len, text);
}

/* The client's level is global; follow ours, one step quieter, because its
 * INFO reports every connect attempt and its DEBUG every packet. */
void session_util_log_level(void)
{
	ZooLogLevel l = ZOO_LOG_LEVEL_WARN;
	if (zkr_log_threshold >= ZKR_LOG_DEBUG)
		l = ZOO_LOG_LEVEL_INFO;
	else if (zkr_log_threshold <= ZKR_LOG_ERROR)
		l = ZOO_LOG_LEVEL_ERROR;
	zoo_set_debug_level(l);
}

/* ---- session_util_ensure_path: mkdir -p over async creates ------------------------- */

struct ensure_ctx {
	zhandle_t *zh;
	char *path;
	size_t end;                /* length of the prefix being created */
	struct ACL_vector acl;     /* deep copy: later steps run after the caller returned */
	zkr_session_done_cb done;
	void *arg;
};

static void ensure_ctx_free(struct ensure_ctx *c)
{
	for (int32_t i = 0; i < c->acl.count; i++) {
		free(c->acl.data[i].id.scheme);
		free(c->acl.data[i].id.id);
	}
	free(c->acl.data);
	free(c->path);
	free(c);
}

static bool ensure_copy_acl(struct ensure_ctx *c, const struct ACL_vector *acl)
{
	if (acl->count <= 0)
		return false;
	c->acl.data = calloc((size_t)acl->count, sizeof(c->acl.data[0]));
	if (c->acl.data == NULL)
		return false;
	c->acl.count = acl->count;
	for (int32_t i = 0; i < acl->count; i++) {
		c->acl.data[i].perms = acl->data[i].perms;
		c->acl.data[i].id.scheme = strdup(acl->data[i].id.scheme);
		c->acl.data[i].id.id = strdup(acl->data[i].id.id);
		if (c->acl.data[i].id.scheme == NULL || c->acl.data[i].id.id == NULL)
			return false;
	}
	return true;
}

/* Issues the create of the next component of c->path. */
static int ensure_issue(struct ensure_ctx *c);

static void ensure_finish(struct ensure_ctx *c, int rc)
{
	zkr_session_done_cb done = c->done;
	void *arg = c->arg;
	ensure_ctx_free(c);
	done(rc, arg);
}

static void ensure_created(int rc, const char *value, const void *data)
{
	struct ensure_ctx *c = (struct ensure_ctx *)data;
	(void)value;
	if (rc != ZOK && rc != ZNODEEXISTS) {
		ensure_finish(c, rc);
		return;
	}
	if (c->path[c->end] == '\0') {
		ensure_finish(c, ZOK);
		return;
	}
	rc = ensure_issue(c);
	if (rc != ZOK)
		ensure_finish(c, rc);
}

static int ensure_issue(struct ensure_ctx *c)
{
	const char *next = strchr(c->path + c->end + 1, '/');
	c->end = next ? (size_t)(next - c->path) : strlen(c->path);
	char save = c->path[c->end];
	c->path[c->end] = '\0';
	int rc = zoo_acreate(c->zh, c->path, NULL, -1, &c->acl, 0, ensure_created, c);
	c->path[c->end] = save;
	return rc;
}

bool session_util_valid_path(const char *path)
{
	if (path == NULL || path[0] != '/' || path[1] == '\0')
		return false;
	size_t len = strlen(path);
	if (path[len - 1] == '/' || strstr(path, "//") != NULL)
		return false;
	return true;
}

/*
 * Shared by the public helper and the chroot bootstrap. One create per
 * component, parent first; ZNODEEXISTS moves on. `done` is not called
 * when this returns false.
 */
bool session_util_ensure_path(zhandle_t *zh, const char *path, const struct ACL_vector *acl,
			zkr_session_done_cb done, void *arg)
{
	if (zh == NULL || !session_util_valid_path(path))
		return false;
	struct ensure_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return false;
	c->zh = zh;
	c->done = done;
	c->arg = arg;
	c->path = strdup(path);
	if (c->path == NULL || !ensure_copy_acl(c, acl ? acl : &ZOO_OPEN_ACL_UNSAFE)) {
		ensure_ctx_free(c);
		return false;
	}
	int rc = ensure_issue(c);
	if (rc != ZOK) {
		log_warn("zk: create %s: %s", path, zerror(rc));
		ensure_ctx_free(c);
		return false;
	}
	return true;
}
