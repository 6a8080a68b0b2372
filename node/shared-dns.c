/*
 * Instance host names, looked up once per process on the control loop
 * (see shared.h): a name queued by shared_instance_get is looked up
 * without blocking, /etc/hosts first; a failure is retried with backoff
 * (1 s doubling to 60 s) while some worker or health check holds the
 * instance, with one warning; the answer is published under the
 * instance's addr_lock with a new generation number, which workers
 * compare at connect time. A lookup whose instance everybody dropped is
 * cancelled (stale_check).
 */
#include <config.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "node/shared-int.h"
#include "registry/log.h"

#define LOOKUP_RETRY_MIN_MS 1000u
#define LOOKUP_RETRY_MAX_MS 60000u

static void lookup_start(struct shared_instance *si);

static void lookup_done(struct shared_instance *si)
{
	struct proxy_shared *sh = si->sh;

	pthread_mutex_lock(&sh->lock);
	si->resolving = false;
	pthread_mutex_unlock(&sh->lock);
	shared_instance_unref(si);
}

static void looked_up(int err, struct evutil_addrinfo *res, void *arg)
{
	struct shared_instance *si = arg;
	struct proxy_shared *sh = si->sh;
	struct evutil_addrinfo *pick;
	unsigned ms;
	struct timeval tv;
	bool retry;
	char addr[64];

	/* A cancelled lookup's answer comes after a newer lookup may have
	 * started: that one's request stays. */
	if (err != EVUTIL_EAI_CANCEL)
		si->lookup = NULL;
	/* IPv4 first when the name has both, as most apps listen on it. */
	for (pick = res; pick != NULL && pick->ai_family != AF_INET; pick = pick->ai_next)
		;
	if (pick == NULL)
		pick = res;
	if (err == 0 && pick != NULL && pick->ai_addrlen <= sizeof(si->addr)) {
		pthread_mutex_lock(&si->addr_lock);
		memcpy(&si->addr, pick->ai_addr, pick->ai_addrlen);
		si->addrlen = pick->ai_addrlen;
		pthread_mutex_unlock(&si->addr_lock);
		atomic_fetch_add_explicit(&si->addr_gen, 1, memory_order_release);
		si->lookup_failures = 0;
		if (evutil_inet_ntop(pick->ai_addr->sa_family,
				     pick->ai_addr->sa_family == AF_INET6
					     ? (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr
					     : (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr,
				     addr, sizeof(addr)) == NULL)
			snprintf(addr, sizeof(addr), "?");
		log_info("app %s instance %s: %s is %s", si->domain, si->id, si->host, addr);
		evutil_freeaddrinfo(res);
		lookup_done(si);
		return;
	}
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (err == EVUTIL_EAI_CANCEL) {
		/* Nobody wanted it any more (resolve_cb cleared resolving),
		 * or the process is stopping. */
		shared_instance_unref(si);
		return;
	}
	/* Retried while someone besides this lookup holds the instance
	 * (references only grow under the lock). */
	pthread_mutex_lock(&sh->lock);
	retry = atomic_load(&si->refs) > 1;
	pthread_mutex_unlock(&sh->lock);
	if (!retry) {
		lookup_done(si);
		return;
	}
	ms = (unsigned)shared_backoff_ms(LOOKUP_RETRY_MIN_MS, LOOKUP_RETRY_MAX_MS, si->lookup_failures);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	/* One warning per instance; the retries after it are quiet. */
	zkr_log_at(si->lookup_failures ? ZKR_LOG_DEBUG : ZKR_LOG_WARN,
		   "app %s instance %s: cannot resolve %s: %s; retrying in %u ms", si->domain, si->id,
		   si->host, err ? evutil_gai_strerror(err) : "no usable address", ms);
	si->lookup_failures++;
	if (evtimer_add(si->lookup_retry, &tv) == 0)
		return;   /* the lookup's reference is the timer's now */
	log_error("app %s instance %s: cannot arm the lookup retry", si->domain, si->id);
	lookup_done(si);
}

static void lookup_again(evutil_socket_t fd, short what, void *arg)
{
	struct shared_instance *si = arg;
	struct proxy_shared *sh = si->sh;
	bool wanted;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&sh->lock);
	wanted = atomic_load(&si->refs) > 1;
	if (!wanted)
		si->resolving = false;
	pthread_mutex_unlock(&sh->lock);
	if (wanted)
		lookup_start(si);   /* the timer's reference goes to the lookup */
	else
		shared_instance_unref(si);
}

/* Holds a reference (the caller's) until looked_up. */
static void lookup_start(struct shared_instance *si)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	char port[8];

	if (si->lookup_retry == NULL &&
	    (si->lookup_retry = evtimer_new(si->sh->base, lookup_again, si)) == NULL) {
		log_error("app %s instance %s: out of memory for its lookup", si->domain, si->id);
		lookup_done(si);
		return;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)si->port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_NUMERICSERV;
	si->lookup = NULL;
	req = evdns_getaddrinfo(si->sh->dns, si->host, port, &hints, looked_up, si);
	/* An answer from /etc/hosts or an immediate error has already run
	 * the callback (which cleared si->lookup and may have freed si):
	 * only a pending request is worth keeping. */
	if (req != NULL)
		si->lookup = req;
}

/* An instance whose users all left while its name was being looked up:
 * the lookup or its retry timer stops, as the instance will never take a
 * request (a table that brings it back makes a new one). */
static void stale_check(struct shared_instance *si)
{
	struct proxy_shared *sh = si->sh;
	bool cancel = false, untime = false;

	pthread_mutex_lock(&sh->lock);
	si->stale_queued = false;
	/* Two references: the list's, and the lookup's or the timer's. */
	if (atomic_load(&si->refs) == 2 && si->resolving) {
		cancel = si->lookup != NULL;
		untime = !cancel && si->lookup_retry != NULL &&
			 evtimer_pending(si->lookup_retry, NULL);
		if (cancel || untime)
			si->resolving = false;
	}
	pthread_mutex_unlock(&sh->lock);
	if (cancel) {
		struct evdns_getaddrinfo_request *req = si->lookup;

		si->lookup = NULL;
		evdns_getaddrinfo_cancel(req);   /* looked_up drops its reference */
	} else if (untime) {
		evtimer_del(si->lookup_retry);
		shared_instance_unref(si);       /* the timer's */
	}
	shared_instance_unref(si);               /* the list's */
}

void shared_resolve_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_shared *sh = arg;
	struct shared_instance *list, *stale, *si;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&sh->lock);
	list = sh->pending;
	sh->pending = NULL;
	stale = sh->stale;
	sh->stale = NULL;
	pthread_mutex_unlock(&sh->lock);
	while ((si = stale) != NULL) {
		stale = si->stale_next;
		si->stale_next = NULL;
		stale_check(si);
	}
	while ((si = list) != NULL) {
		list = si->pending_next;
		si->pending_next = NULL;
		lookup_start(si);
	}
}

/* The resolver of instance host names: the system's nameservers, or the
 * one configured; /etc/hosts first either way. */
struct evdns_base *shared_dns_new(struct event_base *base, const char *nameserver)
{
	struct evdns_base *dns;

	/* Without a nameserver in /etc/resolv.conf libevent asks
	 * 127.0.0.1, as the C library does. */
	if (nameserver == NULL)
		return evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	dns = evdns_base_new(base, 0);
	if (dns == NULL)
		return NULL;
	if (evdns_base_nameserver_ip_add(dns, nameserver) != 0) {
		log_error("resolver %s: cannot use it as a nameserver", nameserver);
		evdns_base_free(dns, 0);
		return NULL;
	}
	evdns_base_load_hosts(dns, NULL);
	return dns;
}
