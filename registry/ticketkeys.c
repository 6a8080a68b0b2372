/*
 * The shared session-ticket keys (see ticketkeys.h).
 *
 * States, driven by session events, watches and replies:
 *
 *   (new session) -> ENSURE (/tls) -> READ --ok--> LIVE (watch armed)
 *   READ --ZNONODE--> CREATE (this router's keys) --ok/ZNODEEXISTS--> READ
 *   LIVE --watch fired--> READ
 *   LIVE --due--> ROTATE (setData, expected version = the one read)
 *   ROTATE --ok--> LIVE        ROTATE --ZBADVERSION--> READ (theirs)
 *
 * One request is in flight at a time; a watch that fires meanwhile sets
 * `read_again`. Correctness of "one rotation per period" comes from the
 * conditional setData alone; the jitter on the due timer only spares the
 * losers a wasted write.
 *
 * Replies and watches carry the object's numeric id and session epoch,
 * not a pointer (as in membership.c), so late ones after free or expiry
 * are dropped. Everything runs on the loop thread that drives ZooKeeper.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "registry/ctl_acl.h"
#include "registry/log.h"
#include "registry/prng.h"
#include "registry/record.h"
#include "registry/ticketkeys.h"

#define TLS_PATH "/tls"
#define TK_RETRY_MS 2000          /* after a lost connection */
#define TK_RETRY_SLOW_MS 30000    /* after a refusal: someone must act first */
#define TK_JITTER_MAX_MS 2000
#define TK_BY_MAX 128

enum tkstate {
	TK_IDLE,                   /* no session, or waiting to retry */
	TK_ENSURE,                 /* creating /tls */
	TK_READ,
	TK_CREATE,
	TK_LIVE,                   /* read, watched; due timer armed if readable */
	TK_ROTATE,
	TK_LOCAL,                  /* no identity: never shared */
};

struct keyset {
	struct zkr_ticket_key keys[ZKR_TICKET_KEYS_MAX];
	size_t n;
	uint64_t rotated_at_ms;
};

struct zkr_ticketkeys {
	struct zkr_ticketkeys *live_next;
	uint64_t id;
	uint64_t epoch;
	struct zkr_session *s;
	char *node_id;
	struct ACL_vector acl;     /* the routers' identity, all rights */
	struct ACL acl_entry;
	char acl_id[CTL_DIGEST_ID_MAX];
	unsigned rotate_s;
	uint64_t rng;              /* rotation jitter (registry/prng.h) */
	zkr_ticketkeys_cb on_keys;
	void *arg;

	enum tkstate state;
	bool read_again;           /* a watch fired while a request was in flight */
	bool shared;               /* cur came from ZooKeeper */
	bool readable;             /* the last read decoded: its version may be rotated */
	int32_t version;           /* of the last read that decoded */
	struct keyset cur;         /* in force */
	struct keyset pending;     /* being written by ROTATE */
	struct event *due_ev, *retry_ev;
	struct zkr_ticketkeys_stats stats;
};

static struct zkr_ticketkeys *live_tks;
static uint64_t next_tk_id = 1;

static void tk_read(struct zkr_ticketkeys *k);
static void tk_arm_due(struct zkr_ticketkeys *k);

static uint64_t wall_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static const char *tk_chroot(const struct zkr_ticketkeys *k)
{
	const char *c = zkr_session_chroot(k->s);
	return strcmp(c, "/") == 0 ? "" : c;
}

bool zkr_ticket_key_generate(struct zkr_ticket_key *key)
{
	return RAND_bytes(key->name, sizeof(key->name)) == 1 &&
	       RAND_bytes(key->aes_key, sizeof(key->aes_key)) == 1 &&
	       RAND_bytes(key->hmac_key, sizeof(key->hmac_key)) == 1;
}

/* ---- the record ------------------------------------------------------- */

static bool key_field(const ProtobufCBinaryData *f, protobuf_c_boolean has, size_t want, uint8_t *out)
{
	if (!has || f->len != want)
		return false;
	memcpy(out, f->data, want);
	return true;
}

bool zkr_ticketkeys_decode(const uint8_t *buf, size_t len, struct zkr_ticket_key *keys, size_t *n,
			   uint64_t *rotated_at_ms, char *by, size_t bylen, char *why, size_t whylen)
{
	Zkrouter__TicketKeys *r = zkrouter__ticket_keys__unpack(NULL, len, buf);
	bool ok = false;

	if (r == NULL) {
		snprintf(why, whylen, "not a TicketKeys record (%zu bytes)", len);
		return false;
	}
	if (r->n_keys < 1 || r->n_keys > ZKR_TICKET_KEYS_MAX) {
		snprintf(why, whylen, "%zu keys, want 1 to %d", r->n_keys, ZKR_TICKET_KEYS_MAX);
		goto done;
	}
	for (size_t i = 0; i < r->n_keys; i++) {
		const Zkrouter__TicketKeys__Key *kr = r->keys[i];
		if (!key_field(&kr->name, kr->has_name, ZKR_TICKET_NAME_LEN, keys[i].name) ||
		    !key_field(&kr->aes_key, kr->has_aes_key, ZKR_TICKET_AES_LEN, keys[i].aes_key) ||
		    !key_field(&kr->hmac_key, kr->has_hmac_key, ZKR_TICKET_HMAC_LEN, keys[i].hmac_key)) {
			snprintf(why, whylen, "key %zu: want a %d-byte name, %d-byte AES and %d-byte HMAC key",
				 i, ZKR_TICKET_NAME_LEN, ZKR_TICKET_AES_LEN, ZKR_TICKET_HMAC_LEN);
			goto done;
		}
		/* Tickets find their key by name: two alike would be ambiguous. */
		for (size_t j = 0; j < i; j++)
			if (memcmp(keys[i].name, keys[j].name, ZKR_TICKET_NAME_LEN) == 0) {
				snprintf(why, whylen, "keys %zu and %zu have the same name", j, i);
				goto done;
			}
	}
	*n = r->n_keys;
	*rotated_at_ms = r->has_rotated_at_ms ? r->rotated_at_ms : 0;
	if (by != NULL && bylen > 0)
		snprintf(by, bylen, "%s", r->rotated_by ? r->rotated_by : "");
	ok = true;
done:
	zkrouter__ticket_keys__free_unpacked(r, NULL);
	return ok;
}

/* The set as a record, malloc'd; NULL on allocation failure. */
static uint8_t *tk_encode(const struct zkr_ticketkeys *k, const struct keyset *ks, size_t *len)
{
	Zkrouter__TicketKeys r = ZKROUTER__TICKET_KEYS__INIT;
	Zkrouter__TicketKeys__Key kr[ZKR_TICKET_KEYS_MAX], *kp[ZKR_TICKET_KEYS_MAX];
	uint8_t *buf;

	for (size_t i = 0; i < ks->n; i++) {
		zkrouter__ticket_keys__key__init(&kr[i]);
		kr[i].has_name = kr[i].has_aes_key = kr[i].has_hmac_key = 1;
		kr[i].name = (ProtobufCBinaryData){ ZKR_TICKET_NAME_LEN, (uint8_t *)ks->keys[i].name };
		kr[i].aes_key = (ProtobufCBinaryData){ ZKR_TICKET_AES_LEN, (uint8_t *)ks->keys[i].aes_key };
		kr[i].hmac_key = (ProtobufCBinaryData){ ZKR_TICKET_HMAC_LEN, (uint8_t *)ks->keys[i].hmac_key };
		kp[i] = &kr[i];
	}
	r.n_keys = ks->n;
	r.keys = kp;
	r.has_rotated_at_ms = 1;
	r.rotated_at_ms = ks->rotated_at_ms;
	r.rotated_by = k->node_id;
	*len = zkrouter__ticket_keys__get_packed_size(&r);
	if ((buf = malloc(*len ? *len : 1)) == NULL)
		return NULL;
	zkrouter__ticket_keys__pack(&r, buf);
	return buf;
}

static void free_encoded(uint8_t *buf, size_t len)
{
	if (buf != NULL)
		OPENSSL_cleanse(buf, len);
	free(buf);
}

/* ---- keys in force ---------------------------------------------------- */

/* Puts `ks` in force; the consumer hears of it only when the keys differ
 * (our own rotation comes back through the watch unchanged). */
static void tk_apply(struct zkr_ticketkeys *k, const struct keyset *ks)
{
	bool same = ks->n == k->cur.n && memcmp(ks->keys, k->cur.keys, ks->n * sizeof(ks->keys[0])) == 0;

	k->cur = *ks;
	memcpy(k->stats.name, ks->keys[0].name, ZKR_TICKET_NAME_LEN);
	k->stats.rotated_at_ms = ks->rotated_at_ms;
	if (!same && k->on_keys != NULL)
		k->on_keys(k->cur.keys, k->cur.n, k->arg);
}

/* [new, keys[0], keys[1]] dated now. */
static bool tk_next_set(const struct zkr_ticketkeys *k, struct keyset *out)
{
	if (!zkr_ticket_key_generate(&out->keys[0]))
		return false;
	out->n = 1;
	for (size_t i = 0; i < k->cur.n && out->n < ZKR_TICKET_KEYS_MAX; i++)
		out->keys[out->n++] = k->cur.keys[i];
	out->rotated_at_ms = wall_ms();
	return true;
}

/* ---- requests --------------------------------------------------------- */

struct tkreq {
	uint64_t id, epoch;
};

static struct tkreq *tkreq_new(struct zkr_ticketkeys *k)
{
	struct tkreq *r = malloc(sizeof(*r));
	if (r != NULL) {
		r->id = k->id;
		r->epoch = k->epoch;
	}
	return r;
}

static struct zkr_ticketkeys *tk_lookup(uint64_t id)
{
	struct zkr_ticketkeys *k = live_tks;
	while (k != NULL && k->id != id)
		k = k->live_next;
	return k;
}

/* The object a reply belongs to, or NULL if it is gone or the reply is
 * from an earlier session. Frees the request either way. */
static struct zkr_ticketkeys *tkreq_take(const void *data)
{
	struct tkreq *r = (struct tkreq *)data;
	struct zkr_ticketkeys *k = tk_lookup(r->id);
	if (k != NULL && k->epoch != r->epoch)
		k = NULL;
	free(r);
	return k;
}

static bool rc_transient(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZCLOSING;
}

static void tk_retry_later(struct zkr_ticketkeys *k, const char *what, int rc)
{
	int ms = rc_transient(rc) ? TK_RETRY_MS : TK_RETRY_SLOW_MS;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (rc_transient(rc))
		log_debug("tls tickets: %s %s%s: %s", what, tk_chroot(k), ZKR_TICKET_KEYS_PATH, zerror(rc));
	else if (rc == ZNOAUTH)
		log_error("tls tickets: %s %s%s: not authenticated (is --auth the routers' identity, the "
			  "one that created it?); keeping the keys in force", what, tk_chroot(k),
			  ZKR_TICKET_KEYS_PATH);
	else
		log_warn("tls tickets: %s %s%s: %s; keeping the keys in force, retrying", what,
			 tk_chroot(k), ZKR_TICKET_KEYS_PATH, zerror(rc));
	k->state = TK_IDLE;
	evtimer_add(k->retry_ev, &tv);
}

static void tk_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zkr_ticketkeys *k = tk_lookup((uint64_t)(uintptr_t)ctx);
	(void)zh;
	(void)state;
	(void)path;
	if (k == NULL || type == ZOO_SESSION_EVENT)
		return;
	if (k->state == TK_LIVE)
		tk_read(k);
	else
		k->read_again = true;
	zkr_session_kick(k->s);
}

static void tk_got(int rc, const char *value, int len, const struct Stat *stat, const void *data);

/* Anyone but the routers' identity who may read the keys may decrypt
 * every ticket: say so (the node may have been made by hand). */
static void tk_acl_got(int rc, struct ACL_vector *acl, struct Stat *stat, const void *data)
{
	struct zkr_ticketkeys *k = tkreq_take(data);
	(void)stat;
	if (k == NULL || rc != ZOK)
		return;
	for (int32_t i = 0; i < acl->count; i++) {
		const struct ACL *a = &acl->data[i];
		if ((a->perms & (ZOO_PERM_READ | ZOO_PERM_WRITE | ZOO_PERM_ADMIN)) == 0 ||
		    (strcmp(a->id.scheme, "digest") == 0 && strcmp(a->id.id, k->acl_id) == 0))
			continue;
		log_warn("tls tickets: %s%s is open to %s:%s (perms 0x%x): whoever can read it can "
			 "decrypt every ticket; give the routers' identity alone access", tk_chroot(k),
			 ZKR_TICKET_KEYS_PATH, a->id.scheme, a->id.id, a->perms);
	}
}

static void tk_check_acl(struct zkr_ticketkeys *k)
{
	struct tkreq *r = tkreq_new(k);
	if (r == NULL || zoo_aget_acl(zkr_session_zh(k->s), ZKR_TICKET_KEYS_PATH, tk_acl_got, r) != ZOK)
		free(r);
}

static void tk_created(int rc, const char *value, const void *data)
{
	struct zkr_ticketkeys *k = tkreq_take(data);
	(void)value;
	if (k == NULL || k->state != TK_CREATE)
		return;
	if (rc == ZOK)
		log_info("tls tickets: created %s%s with this router's keys", tk_chroot(k),
			 ZKR_TICKET_KEYS_PATH);
	if (rc == ZOK || rc == ZNODEEXISTS)
		tk_read(k);
	else
		tk_retry_later(k, "create", rc);
	zkr_session_kick(k->s);
}

static void tk_create(struct zkr_ticketkeys *k)
{
	struct keyset ks = k->cur;
	size_t len = 0;
	uint8_t *buf;
	struct tkreq *r;
	int rc = ZSYSTEMERROR;

	/* Our keys, dated now: the tickets this router issued before stay good. */
	ks.rotated_at_ms = wall_ms();
	buf = tk_encode(k, &ks, &len);
	r = tkreq_new(k);
	if (buf != NULL && r != NULL)
		rc = zoo_acreate(zkr_session_zh(k->s), ZKR_TICKET_KEYS_PATH, (const char *)buf, (int)len,
				 &k->acl, 0, tk_created, r);
	free_encoded(buf, len);
	if (rc != ZOK) {
		free(r);
		tk_retry_later(k, "create", rc);
		return;
	}
	k->state = TK_CREATE;
}

static void tk_read(struct zkr_ticketkeys *k)
{
	struct tkreq *r = tkreq_new(k);
	int rc = r ? zoo_awget(zkr_session_zh(k->s), ZKR_TICKET_KEYS_PATH, tk_watch,
			       (void *)(uintptr_t)k->id, tk_got, r)
		   : ZSYSTEMERROR;
	if (rc != ZOK) {
		free(r);
		tk_retry_later(k, "read", rc);
		return;
	}
	k->read_again = false;
	k->state = TK_READ;
}

/* A record read: put in force if it decodes, else ignored (keys kept). */
static void tk_take(struct zkr_ticketkeys *k, const char *value, int len, const struct Stat *stat)
{
	struct keyset ks;
	char why[RECORD_WHY_MAX], by[TK_BY_MAX];
	bool first = !k->shared;

	k->state = TK_LIVE;
	if (!zkr_ticketkeys_decode((const uint8_t *)value, len > 0 ? (size_t)len : 0, ks.keys, &ks.n,
				   &ks.rotated_at_ms, by, sizeof(by), why, sizeof(why))) {
		/* Never overwritten: a record we cannot read may be a newer
		 * router's. Deleting it lets the routers start afresh. */
		k->stats.rejected++;
		k->readable = false;
		evtimer_del(k->due_ev);
		log_warn("tls tickets: %s%s version %d ignored: %s; keeping the keys in force",
			 tk_chroot(k), ZKR_TICKET_KEYS_PATH, stat->version, why);
		return;
	}
	k->readable = true;
	k->version = stat->version;
	k->stats.version = stat->version;
	if (first || memcmp(ks.keys[0].name, k->cur.keys[0].name, ZKR_TICKET_NAME_LEN) != 0) {
		k->stats.updates++;
		log_info("tls tickets: keys version %d from %s%s, rotated by %s%s", stat->version,
			 tk_chroot(k), ZKR_TICKET_KEYS_PATH, by[0] ? by : "?",
			 first ? " (shared with every router from now on)" : "");
	}
	k->shared = true;
	k->stats.shared = true;
	tk_apply(k, &ks);
	OPENSSL_cleanse(&ks, sizeof(ks));
	tk_arm_due(k);
}

static void tk_got(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
	struct zkr_ticketkeys *k = tkreq_take(data);

	if (k == NULL || k->state != TK_READ)
		return;
	if (rc == ZNONODE) {
		tk_create(k);
	} else if (rc != ZOK) {
		tk_retry_later(k, "read", rc);
	} else {
		tk_check_acl(k);
		tk_take(k, value, len, stat);
	}
	if (k->state == TK_LIVE && k->read_again)
		tk_read(k);
	zkr_session_kick(k->s);
}

static void tk_rotated(int rc, const struct Stat *stat, const void *data)
{
	struct zkr_ticketkeys *k = tkreq_take(data);

	if (k == NULL || k->state != TK_ROTATE)
		return;
	if (rc == ZOK) {
		uint64_t before = k->cur.rotated_at_ms;
		k->version = stat->version;
		k->stats.version = stat->version;
		k->stats.rotations++;
		k->state = TK_LIVE;
		tk_apply(k, &k->pending);
		log_info("tls tickets: rotated the keys: version=%d rotated_at_ms=%llu previous_ms=%llu "
			 "period_s=%u", stat->version, (unsigned long long)k->cur.rotated_at_ms,
			 (unsigned long long)before, k->rotate_s);
		tk_arm_due(k);
		if (k->read_again)
			tk_read(k);
	} else if (rc == ZBADVERSION || rc == ZNONODE) {
		/* Another router rotated (or someone deleted the node) since
		 * our read: theirs is the set for this period. */
		if (rc == ZBADVERSION)
			k->stats.conflicts++;
		log_info("tls tickets: %s since version %d; reading it", rc == ZBADVERSION ?
			 "another router rotated the keys first" : "the keys were deleted", k->version);
		tk_read(k);
	} else {
		tk_retry_later(k, "rotate", rc);
	}
	OPENSSL_cleanse(&k->pending, sizeof(k->pending));
	zkr_session_kick(k->s);
}

static void tk_rotate(struct zkr_ticketkeys *k)
{
	size_t len = 0;
	uint8_t *buf = NULL;
	struct tkreq *r = NULL;
	int rc = ZSYSTEMERROR;

	if (tk_next_set(k, &k->pending) && (buf = tk_encode(k, &k->pending, &len)) != NULL &&
	    (r = tkreq_new(k)) != NULL)
		rc = zoo_aset(zkr_session_zh(k->s), ZKR_TICKET_KEYS_PATH, (const char *)buf, (int)len,
			      k->version, tk_rotated, r);
	free_encoded(buf, len);
	if (rc != ZOK) {
		free(r);
		OPENSSL_cleanse(&k->pending, sizeof(k->pending));
		tk_retry_later(k, "rotate", rc);
		return;
	}
	k->state = TK_ROTATE;
}

/* ---- the due timer ---------------------------------------------------- */

static void tk_arm_due(struct zkr_ticketkeys *k)
{
	uint64_t period_ms = (uint64_t)k->rotate_s * 1000, now = wall_ms();
	uint64_t due = k->cur.rotated_at_ms + period_ms, wait = due > now ? due - now : 0;
	uint64_t jitter_max = period_ms / 20 < TK_JITTER_MAX_MS ? period_ms / 20 : TK_JITTER_MAX_MS;
	struct timeval tv;

	/* Routers that read the same version would all try at the same
	 * millisecond; a little jitter lets one win before the others ask. */
	if (jitter_max > 0)
		wait += prng_next(&k->rng) % (jitter_max + 1);
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(k->due_ev, &tv);
}

static void tk_rotate_local(struct zkr_ticketkeys *k)
{
	struct keyset ks;

	if (!tk_next_set(k, &ks)) {
		log_error("tls tickets: no random bytes for a new key; keeping the keys in force");
		return;
	}
	tk_apply(k, &ks);
	OPENSSL_cleanse(&ks, sizeof(ks));
	k->stats.local_rotations++;
	log_info("tls tickets: rotated this router's local keys (period %u s)", k->rotate_s);
}

static void tk_due_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_ticketkeys *k = arg;
	(void)fd;
	(void)what;

	if (k->cur.rotated_at_ms + (uint64_t)k->rotate_s * 1000 > wall_ms()) {
		tk_arm_due(k);         /* the period grew (SIGHUP), or the clock moved */
		return;
	}
	if (!k->shared) {
		/* No identity, or ZooKeeper never read: local keys rotate too. */
		tk_rotate_local(k);
		tk_arm_due(k);
	} else if (k->state == TK_LIVE && k->readable && zkr_session_connected(k->s)) {
		tk_rotate(k);
		zkr_session_kick(k->s);
	} else if (!zkr_session_connected(k->s)) {
		/* Rotating alone would split the fleet: keep the keys; the read
		 * after reconnecting re-arms the timer. */
		log_info("tls tickets: rotation due but ZooKeeper is unreachable; keeping the keys in force");
	}
	/* Otherwise a read or write is in flight, and re-arms the timer. */
}

/* ---- session ---------------------------------------------------------- */

static void tk_ensured(int rc, void *arg)
{
	struct zkr_ticketkeys *k = tkreq_take(arg);
	if (k == NULL || k->state != TK_ENSURE)
		return;
	if (rc == ZOK)
		tk_read(k);
	else
		tk_retry_later(k, "create the parent of", rc);
	zkr_session_kick(k->s);
}

static void tk_start(struct zkr_ticketkeys *k)
{
	struct tkreq *r;

	if (k->state == TK_LOCAL || zkr_session_zh(k->s) == NULL)
		return;
	evtimer_del(k->retry_ev);
	k->state = TK_ENSURE;
	r = tkreq_new(k);
	if (r == NULL || !zkr_session_ensure_path(k->s, TLS_PATH, &k->acl, tk_ensured, r)) {
		free(r);
		tk_retry_later(k, "create the parent of", ZSYSTEMERROR);
	}
	zkr_session_kick(k->s);
}

static void tk_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_ticketkeys *k = arg;
	(void)fd;
	(void)what;
	if (k->state == TK_IDLE && zkr_session_connected(k->s))
		tk_start(k);
}

static void tk_on_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct zkr_ticketkeys *k = arg;
	(void)s;
	if (k->state == TK_LOCAL)
		return;
	switch (ev) {
	case ZKR_SESSION_NEW:
		k->epoch++;
		k->state = TK_IDLE;
		tk_start(k);
		break;
	case ZKR_SESSION_RECONNECTED:
		/* A rotation may have fallen due while we were away (its timer
		 * then did nothing): read again, which re-arms it. */
		if (k->state == TK_IDLE)
			tk_start(k);
		else if (k->state == TK_LIVE)
			tk_read(k);
		break;
	case ZKR_SESSION_EXPIRED:
		k->epoch++;            /* replies of the dead handle are void */
		k->state = TK_IDLE;
		break;
	case ZKR_SESSION_DISCONNECTED:
		break;
	}
}

/* ---- life ------------------------------------------------------------- */

void zkr_ticketkeys_set_period(struct zkr_ticketkeys *k, unsigned rotate_s)
{
	if (rotate_s < ZKR_TICKET_ROTATE_MIN_S || rotate_s > ZKR_TICKET_ROTATE_MAX_S ||
	    rotate_s == k->rotate_s)
		return;
	k->rotate_s = rotate_s;
	if (!k->shared || (k->state == TK_LIVE && k->readable))
		tk_arm_due(k);
}

void zkr_ticketkeys_stats(const struct zkr_ticketkeys *k, struct zkr_ticketkeys_stats *out)
{
	*out = k->stats;
}

struct zkr_ticketkeys *zkr_ticketkeys_new(struct event_base *base, struct zkr_session *s,
					  const struct zkr_ticketkeys_opts *opts, char *why, size_t whylen)
{
	struct zkr_ticketkeys *k;

	if (opts->rotate_s < ZKR_TICKET_ROTATE_MIN_S || opts->rotate_s > ZKR_TICKET_ROTATE_MAX_S) {
		snprintf(why, whylen, "ticket key rotation period %u s out of range %d-%d", opts->rotate_s,
			 ZKR_TICKET_ROTATE_MIN_S, ZKR_TICKET_ROTATE_MAX_S);
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto oom;
	k->id = next_tk_id++;
	prng_seed(&k->rng, k->id);
	k->s = s;
	k->rotate_s = opts->rotate_s;
	k->on_keys = opts->on_keys;
	k->arg = opts->arg;
	if ((k->node_id = strdup(opts->node_id ? opts->node_id : "")) == NULL)
		goto oom;
	if (opts->auth != NULL) {
		if (!ctl_digest_id(opts->auth, k->acl_id, sizeof(k->acl_id), why, whylen)) {
			zkr_ticketkeys_free(k);
			return NULL;
		}
		k->acl_entry.perms = ZOO_PERM_ALL;
		k->acl_entry.id.scheme = (char *)"digest";
		k->acl_entry.id.id = k->acl_id;
		k->acl.count = 1;
		k->acl.data = &k->acl_entry;
	} else {
		k->state = TK_LOCAL;
	}
	k->due_ev = evtimer_new(base, tk_due_cb, k);
	k->retry_ev = evtimer_new(base, tk_retry_cb, k);
	if (k->due_ev == NULL || k->retry_ev == NULL)
		goto oom;
	k->cur.n = 1;
	k->cur.rotated_at_ms = wall_ms();
	if (!zkr_ticket_key_generate(&k->cur.keys[0])) {
		snprintf(why, whylen, "no random bytes for the session-ticket keys");
		zkr_ticketkeys_free(k);
		return NULL;
	}
	memcpy(k->stats.name, k->cur.keys[0].name, ZKR_TICKET_NAME_LEN);
	k->stats.rotated_at_ms = k->cur.rotated_at_ms;
	if (k->on_keys != NULL)
		k->on_keys(k->cur.keys, k->cur.n, k->arg);
	tk_arm_due(k);
	if (k->state == TK_LOCAL)
		log_info("tls tickets: no --auth, so the session-ticket keys are not shared (a node "
			 "without an ACL would hand them to anyone): each router rotates its own every "
			 "%u s, and a ticket resumes only on the router that issued it", k->rotate_s);
	k->live_next = live_tks;
	live_tks = k;
	if (k->state != TK_LOCAL) {
		if (!zkr_session_subscribe(s, tk_on_session, k))
			goto oom;
		if (zkr_session_connected(s))
			tk_on_session(s, ZKR_SESSION_NEW, k);
	}
	return k;
oom:
	snprintf(why, whylen, "out of memory creating the ticket keys");
	zkr_ticketkeys_free(k);
	return NULL;
}

void zkr_ticketkeys_free(struct zkr_ticketkeys *k)
{
	if (k == NULL)
		return;
	for (struct zkr_ticketkeys **pp = &live_tks; *pp; pp = &(*pp)->live_next) {
		if (*pp == k) {
			*pp = k->live_next;
			break;
		}
	}
	if (k->state != TK_LOCAL)
		zkr_session_unsubscribe(k->s, tk_on_session, k);
	if (k->due_ev)
		event_free(k->due_ev);
	if (k->retry_ev)
		event_free(k->retry_ev);
	free(k->node_id);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}
