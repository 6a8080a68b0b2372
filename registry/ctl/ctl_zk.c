/*
 * Blocking ZooKeeper requests for zkrouterctl, built on the loop-driven
 * session: issue the asynchronous request, kick the session so it is
 * written, then run the loop until the completion marks the request done
 * or the deadline passes.
 *
 * A request that timed out may still complete later (or be failed with
 * ZCLOSING when the session closes), so each one lives on the heap and its
 * completion frees it once the waiter has given up on it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/clock.h"
#include "registry/ctl/ctl_zk.h"

struct ctl_op {
	bool done;
	bool abandoned;
	int rc;
	char *data;
	int len;
	struct Stat stat;
	struct String_vector kids;
	struct ACL_vector acl;
	zoo_op_t ops[2];
	zoo_op_result_t results[2];
	char created[2][16];
};

static struct ctl_op *op_new(void)
{
	return calloc(1, sizeof(struct ctl_op));
}

static void op_free(struct ctl_op *op)
{
	free(op->data);
	deallocate_String_vector(&op->kids);
	deallocate_ACL_vector(&op->acl);
	free(op);
}

/* Called by every completion after it filled in the results. */
static void op_finish(struct ctl_op *op, int rc)
{
	op->rc = rc;
	op->done = true;
	if (op->abandoned)
		op_free(op);
}

static int64_t now_ms(void)
{
	return (int64_t)clock_now_ms();
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	/* Only there to make event_base_loop return. */
}

/* Runs the loop until *flag is true or ms pass; returns *flag. */
static bool run_until(struct ctl_zk *c, const bool *flag, int ms)
{
	int64_t deadline = now_ms() + ms;
	while (!*flag) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return false;
		struct timeval tv = { left / 1000, (left % 1000) * 1000 };
		evtimer_add(c->wake, &tv);
		event_base_loop(c->base, EVLOOP_ONCE);
	}
	return true;
}

/* Waits for op; on timeout hands it over to its completion. */
static int op_wait(struct ctl_zk *c, struct ctl_op *op, int issue_rc)
{
	if (issue_rc != ZOK) {
		/* Not queued: no completion will ever run. */
		op_free(op);
		return issue_rc;
	}
	zkr_session_kick(c->session);
	if (!run_until(c, &op->done, c->timeout_ms)) {
		op->abandoned = true;
		return ZOPERATIONTIMEOUT;
	}
	return op->rc;
}

static void session_cb(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct ctl_zk *c = arg;
	switch (ev) {
	case ZKR_SESSION_NEW:
	case ZKR_SESSION_RECONNECTED:
		c->connected = true;
		break;
	case ZKR_SESSION_DISCONNECTED:
		c->connected = false;
		break;
	case ZKR_SESSION_EXPIRED:
		c->connected = false;
		c->expired = true;
		break;
	}
}

bool ctl_zk_open(struct ctl_zk *c, const char *connect, const char *auth, int timeout_ms,
		 bool read_only, char *why, size_t whylen)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms;
	c->base = event_base_new();
	if (c->base == NULL) {
		snprintf(why, whylen, "cannot create an event loop");
		return false;
	}
	c->wake = evtimer_new(c->base, wake_cb, c);
	if (c->wake == NULL) {
		snprintf(why, whylen, "out of memory");
		goto failed;
	}
	struct zkr_session_opts opts = {
		.connect = connect,
		.auth = auth,
		/* Short: a tool's session should not outlive it by much if it dies. */
		.timeout_ms = 10000,
		.read_only = read_only,
	};
	char swhy[256] = "";
	c->session = zkr_session_new(c->base, &opts, swhy, sizeof(swhy));
	if (c->session == NULL) {
		snprintf(why, whylen, "%s", swhy[0] ? swhy : "cannot start a ZooKeeper session");
		goto failed;
	}
	if (!zkr_session_subscribe(c->session, session_cb, c)) {
		snprintf(why, whylen, "out of memory");
		goto failed;
	}
	if (zkr_session_connected(c->session))
		c->connected = true;
	if (!run_until(c, &c->connected, timeout_ms)) {
		snprintf(why, whylen, "cannot reach ZooKeeper at %s within %d ms", connect, timeout_ms);
		goto failed;
	}
	return true;
failed:
	ctl_zk_close(c);
	return false;
}

void ctl_zk_close(struct ctl_zk *c)
{
	if (c->session != NULL) {
		zkr_session_unsubscribe(c->session, session_cb, c);
		zkr_session_free(c->session);
	}
	if (c->wake != NULL)
		event_free(c->wake);
	if (c->base != NULL)
		event_base_free(c->base);
	memset(c, 0, sizeof(*c));
}

bool ctl_zk_run_until(struct ctl_zk *c, const bool *flag, int ms)
{
	return run_until(c, flag, ms);
}

static zhandle_t *zh_of(struct ctl_zk *c)
{
	return zkr_session_zh(c->session);
}

/* ---- completions ------------------------------------------------------ */

static void data_done(int rc, const char *value, int len, const struct Stat *st, const void *arg)
{
	struct ctl_op *op = (struct ctl_op *)arg;
	if (rc == ZOK) {
		if (st != NULL)
			op->stat = *st;
		if (value != NULL && len > 0) {
			op->data = malloc((size_t)len + 1);
			if (op->data == NULL) {
				op_finish(op, ZSYSTEMERROR);
				return;
			}
			memcpy(op->data, value, (size_t)len);
			op->data[len] = '\0';
			op->len = len;
		}
	}
	op_finish(op, rc);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strings_done(int rc, const struct String_vector *sv, const void *arg)
{
	struct ctl_op *op = (struct ctl_op *)arg;
	if (rc == ZOK && sv != NULL && sv->count > 0) {
		if (allocate_String_vector(&op->kids, sv->count) != 0 || op->kids.data == NULL) {
			op->kids.count = 0;
			op_finish(op, ZSYSTEMERROR);
			return;
		}
		for (int i = 0; i < sv->count; i++) {
			op->kids.data[i] = strdup(sv->data[i]);
			if (op->kids.data[i] == NULL) {
				op->kids.count = i;
				op_finish(op, ZSYSTEMERROR);
				return;
			}
		}
		qsort(op->kids.data, (size_t)op->kids.count, sizeof(char *), cmp_str);
	}
	op_finish(op, rc);
}

static void stat_done(int rc, const struct Stat *st, const void *arg)
{
	struct ctl_op *op = (struct ctl_op *)arg;
	if (rc == ZOK && st != NULL)
		op->stat = *st;
	op_finish(op, rc);
}

static void void_done(int rc, const void *arg)
{
	op_finish((struct ctl_op *)arg, rc);
}

/* Keeps the created path: a sequential node's name is only known here. */
static void string_done(int rc, const char *value, const void *arg)
{
	struct ctl_op *op = (struct ctl_op *)arg;
	if (rc == ZOK && value != NULL) {
		op->data = strdup(value);
		if (op->data == NULL) {
			op_finish(op, ZSYSTEMERROR);
			return;
		}
		op->len = (int)strlen(value);
	}
	op_finish(op, rc);
}

static void acl_done(int rc, struct ACL_vector *acl, struct Stat *st, const void *arg)
{
	struct ctl_op *op = (struct ctl_op *)arg;
	if (rc == ZOK && acl != NULL) {
		/* Take the vector over; the library frees only its own copy. */
		if (allocate_ACL_vector(&op->acl, acl->count) != 0) {
			op_finish(op, ZSYSTEMERROR);
			return;
		}
		for (int i = 0; i < acl->count; i++) {
			op->acl.data[i].perms = acl->data[i].perms;
			op->acl.data[i].id.scheme = strdup(acl->data[i].id.scheme);
			op->acl.data[i].id.id = strdup(acl->data[i].id.id);
			if (op->acl.data[i].id.scheme == NULL || op->acl.data[i].id.id == NULL) {
				op_finish(op, ZSYSTEMERROR);
				return;
			}
		}
		if (st != NULL)
			op->stat = *st;
	}
	op_finish(op, rc);
}

/* ---- requests --------------------------------------------------------- */

/* Moves the results out of a finished op and frees it. */
static int take(struct ctl_op *op, int rc, char **data, int *len, struct Stat *st,
		struct String_vector *kids, struct ACL_vector *acl)
{
	if (rc == ZOPERATIONTIMEOUT && op->abandoned)
		return rc;
	if (data != NULL) {
		*data = op->data;
		op->data = NULL;
	}
	if (len != NULL)
		*len = op->len;
	if (st != NULL)
		*st = op->stat;
	if (kids != NULL) {
		*kids = op->kids;
		memset(&op->kids, 0, sizeof(op->kids));
	}
	if (acl != NULL) {
		*acl = op->acl;
		memset(&op->acl, 0, sizeof(op->acl));
	}
	op_free(op);
	return rc;
}

#define NEW_OP(op) \
	struct ctl_op *op = op_new(); \
	if (op == NULL) \
		return ZSYSTEMERROR

int ctl_zk_wget(struct ctl_zk *c, const char *path, watcher_fn w, void *ctx,
		char **data, int *len, struct Stat *st)
{
	if (data != NULL)
		*data = NULL;
	if (len != NULL)
		*len = 0;
	NEW_OP(op);
	int rc = w != NULL ? zoo_awget(zh_of(c), path, w, ctx, data_done, op)
			   : zoo_aget(zh_of(c), path, 0, data_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	return take(op, rc, data, len, st, NULL, NULL);
}

int ctl_zk_get(struct ctl_zk *c, const char *path, char **data, int *len, struct Stat *st)
{
	return ctl_zk_wget(c, path, NULL, NULL, data, len, st);
}

int ctl_zk_wchildren(struct ctl_zk *c, const char *path, watcher_fn w, void *ctx,
		     struct String_vector *out)
{
	memset(out, 0, sizeof(*out));
	NEW_OP(op);
	int rc = w != NULL ? zoo_awget_children(zh_of(c), path, w, ctx, strings_done, op)
			   : zoo_aget_children(zh_of(c), path, 0, strings_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	return take(op, rc, NULL, NULL, NULL, out, NULL);
}

int ctl_zk_children(struct ctl_zk *c, const char *path, struct String_vector *out)
{
	return ctl_zk_wchildren(c, path, NULL, NULL, out);
}

int ctl_zk_exists(struct ctl_zk *c, const char *path, struct Stat *st)
{
	NEW_OP(op);
	int rc = zoo_aexists(zh_of(c), path, 0, stat_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	return take(op, rc, NULL, NULL, st, NULL, NULL);
}

int ctl_zk_create_path(struct ctl_zk *c, const char *path, const void *data, int len,
		       const struct ACL_vector *acl, int flags, char **created)
{
	if (created != NULL)
		*created = NULL;
	NEW_OP(op);
	int rc = zoo_acreate(zh_of(c), path, data, data != NULL ? len : -1, acl, flags,
			     string_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	return take(op, rc, created, NULL, NULL, NULL, NULL);
}

int ctl_zk_create(struct ctl_zk *c, const char *path, const void *data, int len,
		  const struct ACL_vector *acl, int flags)
{
	return ctl_zk_create_path(c, path, data, len, acl, flags, NULL);
}

int ctl_zk_set(struct ctl_zk *c, const char *path, const void *data, int len, int version)
{
	NEW_OP(op);
	int rc = zoo_aset(zh_of(c), path, data, data != NULL ? len : -1, version, stat_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	return take(op, rc, NULL, NULL, NULL, NULL, NULL);
}

int ctl_zk_delete(struct ctl_zk *c, const char *path, int version)
{
	NEW_OP(op);
	int rc = zoo_adelete(zh_of(c), path, version, void_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	return take(op, rc, NULL, NULL, NULL, NULL, NULL);
}

int ctl_zk_get_acl(struct ctl_zk *c, const char *path, struct ACL_vector *acl, struct Stat *st)
{
	memset(acl, 0, sizeof(*acl));
	NEW_OP(op);
	int rc = zoo_aget_acl(zh_of(c), path, acl_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	return take(op, rc, NULL, NULL, st, NULL, acl);
}

int ctl_zk_set_acl(struct ctl_zk *c, const char *path, int version, const struct ACL_vector *acl)
{
	NEW_OP(op);
	/* The library takes a non-const pointer but only serializes it. */
	int rc = zoo_aset_acl(zh_of(c), path, version, (struct ACL_vector *)acl, void_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	return take(op, rc, NULL, NULL, NULL, NULL, NULL);
}

int ctl_zk_create2(struct ctl_zk *c,
		   const char *path1, const void *data1, int len1, const struct ACL_vector *acl1,
		   const char *path2, const struct ACL_vector *acl2, int *failed_op)
{
	*failed_op = -1;
	NEW_OP(op);
	zoo_create_op_init(&op->ops[0], path1, data1, data1 != NULL ? len1 : -1, acl1, 0,
			   op->created[0], sizeof(op->created[0]));
	zoo_create_op_init(&op->ops[1], path2, NULL, -1, acl2, 0,
			   op->created[1], sizeof(op->created[1]));
	int rc = zoo_amulti(zh_of(c), 2, op->ops, op->results, void_done, op);
	if (rc != ZOK)
		return op_wait(c, op, rc);  /* not queued: op_wait frees it */
	rc = op_wait(c, op, rc);
	if (rc != ZOK && rc != ZOPERATIONTIMEOUT) {
		for (int i = 0; i < 2; i++) {
			if (op->results[i].err != ZOK && op->results[i].err != ZRUNTIMEINCONSISTENCY) {
				*failed_op = i;
				rc = op->results[i].err;
				break;
			}
		}
	}
	return take(op, rc, NULL, NULL, NULL, NULL, NULL);
}

const char *ctl_zk_strerror(int rc)
{
	switch (rc) {
	case ZOK: return "ok";
	case ZNONODE: return "no such node";
	case ZNODEEXISTS: return "already exists";
	case ZNOAUTH: return "permission denied by the node's ACL (check --auth)";
	case ZNOTEMPTY: return "the node has children";
	case ZBADVERSION: return "changed by someone else meanwhile; try again";
	case ZOPERATIONTIMEOUT: return "no answer from ZooKeeper in time";
	case ZCONNECTIONLOSS: return "connection to ZooKeeper lost";
	case ZSESSIONEXPIRED: return "ZooKeeper session expired";
	case ZINVALIDACL: return "invalid ACL";
	case ZAUTHFAILED: return "authentication failed";
	case ZCLOSING: return "session closing";
	case ZNOCHILDRENFOREPHEMERALS: return "ephemeral nodes cannot have children";
	default: return zerror(rc);
	}
}
