/*
 * zkput: a test tool that writes znodes through zkr_session, so the
 * process-level tests can set up ZooKeeper trees (and break them on
 * purpose) without depending on zkrouterctl or the Java CLI.
 *
 *   zkput --zk CONNECT [--auth U:P] [--timeout MS] [--hold] OP...
 *
 *   mk PATH DATA     create persistent (parents created empty)
 *   eph PATH DATA    create ephemeral (parents created empty); implies --hold
 *   set PATH DATA    set data
 *   rm PATH          delete recursively (missing is fine)
 *   acl PATH SPECS   set the ACL; SPECS is a comma-separated list of
 *                    digest:USER:PASS:PERMS or world:anyone:PERMS (PERMS
 *                    from "cdrwa")
 *   get PATH         print "owner=0x.. len=N version=V" and, for a RouterNode,
 *                    "node=ID generation=G digest=D", for the ticket keys
 *                    "keys=N names=HEX,HEX rotated_at_ms=MS rotated_by=ID";
 *                    fails on ZNONODE
 *
 * DATA is one of:
 *   -                         empty
 *   @FILE                     the file's bytes
 *   text:STRING               the bytes of STRING (garbage records)
 *   instance:k=v,k=v          an Instance: host, port, weight, zone,
 *                             state (up|draining), id, registered_at_ms
 *   app:k=v,k=v               an AppConfig: balance, hash_key, retries,
 *                             max_concurrent_requests, max_queued_requests,
 *                             connect_timeout_ms, response_timeout_ms,
 *                             sticky_cookie, redirect_https (0|1),
 *                             backend_protocol (a number: 1 is h2c, 7 none)
 *   tlscert:CHAIN,KEY         a TlsCertificate holding the two files as
 *                             they are (a key that does not match, say)
 *
 * Records are encoded without validation (record_*_encode would refuse an
 * invalid one, and the tests need invalid ones too). Prints "ready" on
 * stdout once every operation succeeded; with --hold it then keeps the
 * session (and its ephemerals) until SIGTERM/SIGINT. Exit 0 on success,
 * 1 on a failed operation, 2 on bad arguments, 3 if ZooKeeper stays away.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "registry/ctl_acl.h"
#include "registry/log.h"
#include "registry/record.h"
#include "registry/session.h"
#include "registry/ticketkeys.h"

struct op {
	const char *verb;
	const char *path;
	uint8_t *data;
	int len;                   /* -1: no data */
};

struct tool {
	struct event_base *base;
	struct zkr_session *s;
	struct op *ops;
	size_t n_ops, next;
	bool hold;
	int status;                /* exit status once done */
	bool done;
	bool made_parents;         /* the current create already made its parents */
	/* rm: a stack of paths still to delete */
	char **stack;
	size_t n_stack, cap_stack;
	struct event *sig_term, *sig_int, *deadline;
};

static void tool_next(struct tool *t);

static void tool_finish(struct tool *t, int status)
{
	if (t->done)
		return;
	t->done = true;
	t->status = status;
	if (status == 0) {
		printf("ready\n");
		fflush(stdout);
		if (t->hold)
			return;
	}
	event_base_loopbreak(t->base);
}

/* ---- data specs ------------------------------------------------------- */

static bool kv_next(char **p, char **k, char **v)
{
	if (**p == '\0')
		return false;
	char *item = strsep(p, ",");
	*k = item;
	char *eq = strchr(item, '=');
	*v = eq ? (*eq = '\0', eq + 1) : (char *)"";
	if (*p == NULL)
		*p = (char *)"";
	return true;
}

static bool parse_instance(char *spec, uint8_t **out, int *len)
{
	Zkrouter__Instance r = ZKROUTER__INSTANCE__INIT;
	char *k, *v;
	while (kv_next(&spec, &k, &v)) {
		if (strcmp(k, "host") == 0) {
			r.host = v;
		} else if (strcmp(k, "port") == 0) {
			r.has_port = true;
			r.port = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(k, "weight") == 0) {
			r.has_weight = true;
			r.weight = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(k, "zone") == 0) {
			r.zone = v;
		} else if (strcmp(k, "state") == 0) {
			r.has_state = true;
			r.state = strcmp(v, "draining") == 0 ? ZKROUTER__INSTANCE__STATE__DRAINING
							     : ZKROUTER__INSTANCE__STATE__UP;
		} else if (strcmp(k, "id") == 0) {
			r.id = v;
		} else if (strcmp(k, "registered_at_ms") == 0) {
			r.has_registered_at_ms = true;
			r.registered_at_ms = strtoull(v, NULL, 10);
		} else {
			fprintf(stderr, "zkput: unknown instance field '%s'\n", k);
			return false;
		}
	}
	size_t n = zkrouter__instance__get_packed_size(&r);
	*out = malloc(n ? n : 1);
	if (*out == NULL)
		return false;
	*len = (int)zkrouter__instance__pack(&r, *out);
	return true;
}

static bool parse_app(char *spec, uint8_t **out, int *len)
{
	Zkrouter__AppConfig r = ZKROUTER__APP_CONFIG__INIT;
	char *k, *v;
	while (kv_next(&spec, &k, &v)) {
		if (strcmp(k, "balance") == 0) {
			r.has_balance = true;
			if (!record_balance_parse(v, &r.balance)) {
				fprintf(stderr, "zkput: unknown balance '%s'\n", v);
				return false;
			}
		} else if (strcmp(k, "hash_key") == 0) {
			r.hash_key = v;
		} else if (strcmp(k, "retries") == 0) {
			r.has_retries = true;
			r.retries = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(k, "connect_timeout_ms") == 0) {
			r.has_connect_timeout_ms = true;
			r.connect_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(k, "response_timeout_ms") == 0) {
			r.has_response_timeout_ms = true;
			r.response_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(k, "sticky_cookie") == 0) {
			r.sticky_cookie = v;
		} else if (strcmp(k, "max_concurrent_requests") == 0) {
			r.has_max_concurrent_requests = true;
			r.max_concurrent_requests = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(k, "max_queued_requests") == 0) {
			r.has_max_queued_requests = true;
			r.max_queued_requests = (uint32_t)strtoul(v, NULL, 10);
		} else if (strcmp(k, "backend_protocol") == 0) {
			r.has_backend_protocol = true;
			r.backend_protocol = (Zkrouter__AppConfig__BackendProtocol)strtol(v, NULL, 10);
		} else if (strcmp(k, "redirect_https") == 0) {
			r.has_redirect_https = true;
			r.redirect_https = strcmp(v, "1") == 0;
		} else {
			fprintf(stderr, "zkput: unknown app field '%s'\n", k);
			return false;
		}
	}
	size_t n = zkrouter__app_config__get_packed_size(&r);
	*out = malloc(n ? n : 1);
	if (*out == NULL)
		return false;
	*len = (int)zkrouter__app_config__pack(&r, *out);
	return true;
}

static bool read_file(const char *name, uint8_t **out, int *len)
{
	FILE *f = fopen(name, "rb");
	if (f == NULL) {
		fprintf(stderr, "zkput: %s: %s\n", name, strerror(errno));
		return false;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	while (buf != NULL) {
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			uint8_t *grown = realloc(buf, cap * 2);
			if (grown == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = grown;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf == NULL || n > 1024 * 1024)
		return false;
	*out = buf;
	*len = (int)n;
	return true;
}

/* Reads a file as a NUL-terminated string (PEM text). */
static char *read_text(const char *name)
{
	uint8_t *b = NULL;
	int n = 0;
	if (!read_file(name, &b, &n))
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (s != NULL) {
		memcpy(s, b, (size_t)n);
		s[n] = '\0';
	}
	free(b);
	return s;
}

static bool parse_tlscert(char *spec, uint8_t **out, int *len)
{
	char *comma = strchr(spec, ',');
	if (comma == NULL) {
		fprintf(stderr, "zkput: tlscert:CHAIN,KEY\n");
		return false;
	}
	*comma = '\0';
	Zkrouter__TlsCertificate r = ZKROUTER__TLS_CERTIFICATE__INIT;
	r.chain_pem = read_text(spec);
	r.key_pem = read_text(comma + 1);
	r.name = "zkput";
	bool ok = r.chain_pem != NULL && r.key_pem != NULL;
	if (ok) {
		size_t n = zkrouter__tls_certificate__get_packed_size(&r);
		*out = malloc(n ? n : 1);
		ok = *out != NULL;
		if (ok)
			*len = (int)zkrouter__tls_certificate__pack(&r, *out);
	}
	free(r.chain_pem);
	free(r.key_pem);
	return ok;
}

static bool parse_data(const char *spec, uint8_t **out, int *len)
{
	*out = NULL;
	*len = -1;
	if (strcmp(spec, "-") == 0)
		return true;
	if (spec[0] == '@')
		return read_file(spec + 1, out, len);
	char *copy = strdup(spec);
	if (copy == NULL)
		return false;
	bool ok = false;
	if (strncmp(copy, "text:", 5) == 0) {
		*len = (int)strlen(copy + 5);
		*out = (uint8_t *)strdup(copy + 5);
		ok = *out != NULL;
	} else if (strncmp(copy, "instance:", 9) == 0) {
		ok = parse_instance(copy + 9, out, len);
	} else if (strncmp(copy, "app:", 4) == 0) {
		ok = parse_app(copy + 4, out, len);
	} else if (strncmp(copy, "tlscert:", 8) == 0) {
		ok = parse_tlscert(copy + 8, out, len);
	} else {
		fprintf(stderr, "zkput: bad data spec '%s'\n", spec);
	}
	free(copy);
	return ok;
}

/* ---- operations ------------------------------------------------------- */

static const char *parent_of(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s", path);
	char *slash = strrchr(buf, '/');
	if (slash == NULL || slash == buf)
		return NULL;
	*slash = '\0';
	return buf;
}

static void op_done(int rc, const char *what, struct tool *t)
{
	struct op *o = &t->ops[t->next];
	if (rc != ZOK) {
		fprintf(stderr, "zkput: %s %s: %s (%s)\n", o->verb, o->path, zerror(rc), what);
		tool_finish(t, 1);
		return;
	}
	t->next++;
	tool_next(t);
}

static void parents_cb(int rc, void *arg);

/* The create is tried first and the parents only made on ZNONODE: an
 * identity that may create in an app's instances folder need not have
 * create rights higher up, where the folders already exist. */
static void created_cb(int rc, const char *value, const void *data)
{
	struct tool *t = (struct tool *)data;
	(void)value;
	if (rc == ZNONODE && !t->made_parents) {
		char buf[1024];
		const char *parent = parent_of(t->ops[t->next].path, buf, sizeof(buf));
		t->made_parents = true;
		if (parent != NULL && zkr_session_ensure_path(t->s, parent, NULL, parents_cb, t))
			return;
	}
	op_done(rc, "create", t);
}

static void stat_cb(int rc, const struct Stat *stat, const void *data)
{
	(void)stat;
	op_done(rc, "set", (struct tool *)data);
}

static void parents_cb(int rc, void *arg)
{
	struct tool *t = arg;
	if (rc != ZOK) {
		op_done(rc, "parents", t);
		return;
	}
	struct op *o = &t->ops[t->next];
	int flags = strcmp(o->verb, "eph") == 0 ? ZOO_EPHEMERAL : 0;
	rc = zoo_acreate(zkr_session_zh(t->s), o->path, (const char *)o->data, o->len,
			 &ZOO_OPEN_ACL_UNSAFE, flags, created_cb, t);
	if (rc != ZOK)
		op_done(rc, "create", t);
}

static void rm_step(struct tool *t);

static int parse_perms(const char *p)
{
	int perms = 0;
	for (; *p; p++) {
		switch (*p) {
		case 'c': perms |= ZOO_PERM_CREATE; break;
		case 'd': perms |= ZOO_PERM_DELETE; break;
		case 'r': perms |= ZOO_PERM_READ; break;
		case 'w': perms |= ZOO_PERM_WRITE; break;
		case 'a': perms |= ZOO_PERM_ADMIN; break;
		default: return -1;
		}
	}
	return perms;
}

/* "digest:u:p:perms,world:anyone:perms" into an ACL vector (ids in one
 * static buffer each; the tool sets one ACL per op). */
static bool parse_acl(const char *spec, struct ACL_vector *out)
{
	static struct ACL acls[8];
	static char ids[8][CTL_DIGEST_ID_MAX];
	char *copy = strdup(spec), *save = NULL;
	int n = 0;
	for (char *item = strtok_r(copy, ",", &save); item && n < 8; item = strtok_r(NULL, ",", &save)) {
		char *last = strrchr(item, ':');
		if (last == NULL)
			goto bad;
		*last = '\0';
		int perms = parse_perms(last + 1);
		if (perms < 0)
			goto bad;
		if (strncmp(item, "digest:", 7) == 0) {
			char why[128];
			if (!ctl_digest_id(item + 7, ids[n], sizeof(ids[n]), why, sizeof(why)))
				goto bad;
			acls[n].id.scheme = (char *)"digest";
		} else if (strcmp(item, "world:anyone") == 0) {
			snprintf(ids[n], sizeof(ids[n]), "anyone");
			acls[n].id.scheme = (char *)"world";
		} else {
			goto bad;
		}
		acls[n].id.id = ids[n];
		acls[n].perms = perms;
		n++;
	}
	free(copy);
	out->count = n;
	out->data = acls;
	return n > 0;
bad:
	free(copy);
	fprintf(stderr, "zkput: bad ACL spec '%s'\n", spec);
	return false;
}

static void acl_set_cb(int rc, const void *data)
{
	op_done(rc, "setacl", (struct tool *)data);
}

static void got_cb(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
	struct tool *t = (struct tool *)data;
	if (rc == ZOK) {
		printf("owner=0x%llx len=%d version=%d", (unsigned long long)stat->ephemeralOwner, len,
		       stat->version);
		record_router_node *rn = len > 0 ? record_router_node_decode((const uint8_t *)value,
									     (size_t)len, NULL, 0)
						 : NULL;
		if (rn != NULL)
			printf(" node=%s generation=%llu digest=%s", rn->node_id,
			       (unsigned long long)rn->table_generation,
			       rn->table_digest ? rn->table_digest : "-");
		record_router_node_free(rn);
		struct zkr_ticket_key keys[ZKR_TICKET_KEYS_MAX];
		size_t n;
		uint64_t at;
		char by[128], why[160];
		size_t plen = strlen(t->ops[t->next].path), slen = strlen("/ticket-keys");
		if (plen >= slen && strcmp(t->ops[t->next].path + plen - slen, "/ticket-keys") == 0) {
			if (zkr_ticketkeys_decode((const uint8_t *)value, len > 0 ? (size_t)len : 0, keys, &n,
						  &at, by, sizeof(by), why, sizeof(why))) {
				printf(" keys=%zu names=", n);
				for (size_t i = 0; i < n; i++) {
					for (size_t j = 0; j < ZKR_TICKET_NAME_LEN; j++)
						printf("%02x", keys[i].name[j]);
					printf("%s", i + 1 < n ? "," : "");
				}
				printf(" rotated_at_ms=%llu rotated_by=%s", (unsigned long long)at, by);
			} else {
				printf(" invalid=\"%s\"", why);
			}
		}
		printf("\n");
		fflush(stdout);
	}
	op_done(rc, "get", t);
}

static void rm_deleted(int rc, const void *data)
{
	struct tool *t = (struct tool *)data;
	if (rc == ZOK || rc == ZNONODE) {
		free(t->stack[--t->n_stack]);
	} else if (rc != ZNOTEMPTY) {
		/* ZNOTEMPTY: a child appeared; list again. */
		op_done(rc, "delete", t);
		return;
	}
	rm_step(t);
}

static bool rm_push(struct tool *t, char *path)
{
	if (t->n_stack == t->cap_stack) {
		size_t cap = t->cap_stack ? t->cap_stack * 2 : 16;
		char **grown = realloc(t->stack, cap * sizeof(*grown));
		if (grown == NULL)
			return false;
		t->stack = grown;
		t->cap_stack = cap;
	}
	t->stack[t->n_stack++] = path;
	return true;
}

static void rm_listed(int rc, const struct String_vector *children, const void *data)
{
	struct tool *t = (struct tool *)data;
	const char *top = t->stack[t->n_stack - 1];
	if (rc == ZNONODE) {
		free(t->stack[--t->n_stack]);
		rm_step(t);
		return;
	}
	if (rc != ZOK) {
		op_done(rc, "list", t);
		return;
	}
	if (children->count == 0) {
		rc = zoo_adelete(zkr_session_zh(t->s), top, -1, rm_deleted, t);
		if (rc != ZOK)
			op_done(rc, "delete", t);
		return;
	}
	for (int32_t i = 0; i < children->count; i++) {
		char *child = NULL;
		if (asprintf(&child, "%s/%s", strcmp(top, "/") == 0 ? "" : top, children->data[i]) < 0 ||
		    !rm_push(t, child)) {
			op_done(ZSYSTEMERROR, "out of memory", t);
			return;
		}
	}
	rm_step(t);
}

static void rm_step(struct tool *t)
{
	if (t->n_stack == 0) {
		op_done(ZOK, "rm", t);
		return;
	}
	int rc = zoo_aget_children(zkr_session_zh(t->s), t->stack[t->n_stack - 1], 0, rm_listed, t);
	if (rc != ZOK)
		op_done(rc, "list", t);
}

static void tool_next(struct tool *t)
{
	if (t->next == t->n_ops) {
		tool_finish(t, 0);
		return;
	}
	struct op *o = &t->ops[t->next];
	zhandle_t *zh = zkr_session_zh(t->s);
	int rc = ZOK;
	if (strcmp(o->verb, "mk") == 0 || strcmp(o->verb, "eph") == 0) {
		t->made_parents = false;
		parents_cb(ZOK, t);
	} else if (strcmp(o->verb, "set") == 0) {
		rc = zoo_aset(zh, o->path, (const char *)o->data, o->len, -1, stat_cb, t);
	} else if (strcmp(o->verb, "get") == 0) {
		rc = zoo_aget(zh, o->path, 0, got_cb, t);
	} else if (strcmp(o->verb, "acl") == 0) {
		struct ACL_vector acl;
		rc = parse_acl((const char *)o->data, &acl) ? zoo_aset_acl(zh, o->path, -1, &acl, acl_set_cb, t)
							  : ZBADARGUMENTS;
	} else {
		char *p = strdup(o->path);
		if (p == NULL || !rm_push(t, p)) {
			free(p);
			rc = ZSYSTEMERROR;
		} else {
			rm_step(t);
		}
	}
	if (rc != ZOK)
		op_done(rc, "issue", t);
	zkr_session_kick(t->s);
}

static void on_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct tool *t = arg;
	(void)s;
	if (ev == ZKR_SESSION_NEW && !t->done && t->next == 0)
		tool_next(t);
	else if (ev == ZKR_SESSION_EXPIRED && t->hold)
		log_warn("zkput: session expired; ephemerals are gone");
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct tool *t = arg;
	(void)fd;
	(void)what;
	event_base_loopbreak(t->base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct tool *t = arg;
	(void)fd;
	(void)what;
	if (!t->done) {
		fprintf(stderr, "zkput: ZooKeeper did not answer in time\n");
		t->status = 3;
		t->done = true;
		event_base_loopbreak(t->base);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: zkput --zk CONNECT [--auth U:P] [--timeout MS] [--hold] "
			"{mk|eph|set PATH DATA | rm|get PATH}...\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct zkr_session_opts so = { .timeout_ms = 10000 };
	struct tool t = { .status = 1 };
	int i = 1;
	zkr_log_init("zkput", ZKR_LOG_WARN, false);
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--zk") == 0 && i + 1 < argc)
			so.connect = argv[++i];
		else if (strcmp(argv[i], "--auth") == 0 && i + 1 < argc)
			so.auth = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			so.timeout_ms = atoi(argv[++i]);
		else if (strcmp(argv[i], "--hold") == 0)
			t.hold = true;
		else
			return usage();
	}
	if (so.connect == NULL || i >= argc)
		return usage();
	t.ops = calloc((size_t)argc, sizeof(*t.ops));
	if (t.ops == NULL)
		return 1;
	while (i < argc) {
		struct op *o = &t.ops[t.n_ops++];
		o->verb = argv[i++];
		bool takes_data = strcmp(o->verb, "mk") == 0 || strcmp(o->verb, "eph") == 0 ||
				  strcmp(o->verb, "set") == 0;
		bool takes_spec = strcmp(o->verb, "acl") == 0;
		if (!takes_data && !takes_spec && strcmp(o->verb, "rm") != 0 && strcmp(o->verb, "get") != 0)
			return usage();
		if (i >= argc || argv[i][0] != '/')
			return usage();
		o->path = argv[i++];
		o->len = -1;
		if (takes_data) {
			if (i >= argc || !parse_data(argv[i++], &o->data, &o->len))
				return 2;
		} else if (takes_spec) {
			if (i >= argc || (o->data = (uint8_t *)strdup(argv[i++])) == NULL)
				return 2;
		}
		if (strcmp(o->verb, "eph") == 0)
			t.hold = true;
	}

	char why[256];
	t.base = event_base_new();
	if (t.base == NULL)
		return 1;
	t.s = zkr_session_new(t.base, &so, why, sizeof(why));
	if (t.s == NULL) {
		fprintf(stderr, "zkput: %s\n", why);
		return 2;
	}
	if (!zkr_session_subscribe(t.s, on_session, &t))
		return 1;
	t.sig_term = evsignal_new(t.base, SIGTERM, on_signal, &t);
	t.sig_int = evsignal_new(t.base, SIGINT, on_signal, &t);
	t.deadline = evtimer_new(t.base, on_deadline, &t);
	struct timeval dl = { 30, 0 };
	if (t.sig_term == NULL || t.sig_int == NULL || t.deadline == NULL ||
	    event_add(t.sig_term, NULL) != 0 || event_add(t.sig_int, NULL) != 0 ||
	    event_add(t.deadline, &dl) != 0)
		return 1;
	event_base_dispatch(t.base);

	zkr_session_free(t.s);
	event_free(t.sig_term);
	event_free(t.sig_int);
	event_free(t.deadline);
	event_base_free(t.base);
	for (size_t k = 0; k < t.n_ops; k++)
		free(t.ops[k].data);
	free(t.ops);
	for (size_t k = 0; k < t.n_stack; k++)
		free(t.stack[k]);
	free(t.stack);
	return t.done ? t.status : 1;
}
