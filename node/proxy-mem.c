/*
 * Memory of idle connections, and memory given back after bursts.
 *
 * A PaaS router holds many idle keep-alive (and WebSocket) clients, so
 * what one idle connection costs is what the router costs. Three things
 * keep it small:
 *
 *  - Parking: a client idle for MEM_PARK_AFTER_MS loses its bufferevent
 *    and buffers (client_mem_park, proxy.c); it keeps its socket, its
 *    read event (inside struct conn_io) with the idle timeout, and its
 *    struct client. Bytes arriving give it a bufferevent again
 *    (conn_read_cb calls client_mem_unpark) before they are read. A busy
 *    connection is never parked: requests on it cost what they did.
 *    The janitor finds those to park in p->idle_clients, where clients
 *    enter when they become idle, so in the order of idle_since_ms.
 *    An HTTP/2 connection, plain or TLS, enters it when its last stream
 *    ends; it gives back the pages of nghttp2's buffers and is parked
 *    too (h2_mem_park, h2-mem.c): its session, and the SSL of a TLS
 *    one, stay; h2.c unparks it before anything it sends (a GOAWAY at
 *    its idle timeout or in a drain), proxy-tls.c before a read.
 *  - Client blocks: struct client lives in blocks of CLIENT_SLAB_N mapped
 *    apart from the heap (mmap), away from what its requests allocate
 *    (bufferevents, buffers, request objects, backend connections).
 *    Freed, those then leave whole pages free instead of holes between
 *    idle clients' structs, and the trim can give them back.
 *  - Descriptor records: libevent allocates a small record per
 *    descriptor number the first time one is watched, and keeps it for
 *    the life of the loop. Made one at a time in the middle of a burst,
 *    each pins a page among the memory the burst then frees, and no trim
 *    can give those pages back (measured: 8,000 clients in a burst kept
 *    2.7 KB each after the trim, 0.5 KB with the records made ahead).
 *    So they are made ahead: at start for 2 x max-client-connections
 *    descriptors (measured: made as the descriptors grew, in runs, they
 *    still fell into holes and kept 1.1 KB per idle client after one
 *    request each, 0.6 KB made at start), beyond that in runs that double
 *    (proxy_mem_fd_seen).
 *  - Giving back: the janitor frees the request objects the free list
 *    kept but did not need for a whole tick (after a burst it holds
 *    REQUEST_POOL_MAX), and calls malloc_trim(0) once many objects were
 *    freed since the last call (a burst ended, clients were parked or
 *    closed): glibc returns free pages in the middle of the heap only
 *    then.
 */
#include <config.h>

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "node/h2.h"
#include "node/mem-cache.h"
#include "node/stream.h"

/* Under AddressSanitizer a free slot is poisoned, so that a client used
 * after it was freed is reported as it would be with malloc. */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_ASAN 1
#endif
#endif
#ifdef MEM_ASAN
#include <sanitizer/asan_interface.h>
#define MEM_POISON(a, n) ASAN_POISON_MEMORY_REGION((a), (n))
#define MEM_UNPOISON(a, n) ASAN_UNPOISON_MEMORY_REGION((a), (n))
#else
#define MEM_POISON(a, n) ((void)(a), (void)(n))
#define MEM_UNPOISON(a, n) ((void)(a), (void)(n))
#endif

#define MEM_JANITOR_MS 1000
/* Idle this long before its buffers go: longer than the gap between a
 * busy client's requests, so steady traffic never pays for parking. */
#define MEM_PARK_AFTER_MS 1000
/* Objects freed (clients parked or closed, request objects) since the
 * last malloc_trim before the next one: only after bursts, since a trim
 * walks the whole heap. */
#define MEM_TRIM_AFTER 256
#define CLIENT_SLAB_N 64
/* Descriptor records are made this far ahead of the highest descriptor
 * seen, at least MEM_FD_RUN at a time, and up to twice the highest. */
#define MEM_FD_AHEAD 256
#define MEM_FD_RUN 1024

struct client_slab {
	TAILQ_ENTRY(client_slab) link;
	uint64_t free_mask;        /* bit i: slots[i] is free */
	size_t size;               /* mapped */
	struct client slots[CLIENT_SLAB_N];
};

#define SLAB_ALL_FREE (~(uint64_t)0)

static struct client_slab *client_slab_new(void)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = sizeof(struct client_slab);
	struct client_slab *s;

	if (page > 0)
		size = (size + (size_t)page - 1) / (size_t)page * (size_t)page;
	s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return NULL;
	s->size = size;
	s->free_mask = SLAB_ALL_FREE;
	return s;
}

struct client *client_mem_alloc(struct proxy *p)
{
	struct client_slab *s = TAILQ_FIRST(&p->client_slabs);
	struct client *c;
	int i;

	/* Blocks with a free slot are kept first. */
	if (s == NULL || s->free_mask == 0) {
		s = client_slab_new();
		if (s == NULL)
			return NULL;
		MEM_POISON(s->slots, sizeof(s->slots));
		TAILQ_INSERT_HEAD(&p->client_slabs, s, link);
	}
	i = __builtin_ctzll(s->free_mask);
	s->free_mask &= ~((uint64_t)1 << i);
	if (s->free_mask == 0) {
		/* Full: behind the ones with room. */
		TAILQ_REMOVE(&p->client_slabs, s, link);
		TAILQ_INSERT_TAIL(&p->client_slabs, s, link);
	}
	c = &s->slots[i];
	MEM_UNPOISON(c, sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->slab = s;
	return c;
}

void client_mem_free(struct client *c)
{
	struct client_slab *s = c->slab;
	struct proxy *p = c->p;
	bool was_full = s->free_mask == 0;

	s->free_mask |= (uint64_t)1 << (c - s->slots);
	MEM_POISON(c, sizeof(*c));
	if (s->free_mask == SLAB_ALL_FREE) {
		MEM_UNPOISON(s->slots, sizeof(s->slots));
		TAILQ_REMOVE(&p->client_slabs, s, link);
		munmap(s, s->size);
	} else if (was_full) {
		TAILQ_REMOVE(&p->client_slabs, s, link);
		TAILQ_INSERT_HEAD(&p->client_slabs, s, link);
	}
}

void client_mem_idle(struct client *c)
{
	/* An HTTP/1.1 client over TLS keeps its bufferevent (its SSL frees
	 * its own buffers: SSL_MODE_RELEASE_BUFFERS); an HTTP/2 one, plain
	 * or TLS, is parked (h2_mem_park). */
	if (c->idle_listed || (c->tls && c->h2 == NULL))
		return;
	TAILQ_INSERT_TAIL(&c->p->idle_clients, c, idle_link);
	c->idle_listed = true;
}

void client_mem_busy(struct client *c)
{
	if (!c->idle_listed)
		return;
	TAILQ_REMOVE(&c->p->idle_clients, c, idle_link);
	c->idle_listed = false;
}

/* libevent's messages go to our log, but not those of a descriptor
 * number being reserved, which is not open (EBADF, expected). */
static _Thread_local bool mem_fd_reserving;

static void mem_event_log_cb(int severity, const char *msg)
{
	if (mem_fd_reserving)
		return;
	if (severity >= EVENT_LOG_ERR)
		log_error("libevent: %s", msg);
	else if (severity == EVENT_LOG_WARN)
		log_warn("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

static void mem_event_log_init(void)
{
	event_set_log_callback(mem_event_log_cb);
}

static void mem_fd_noop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Makes libevent's records for descriptor numbers up to `end`, or the
 * descriptor limit. */
static void mem_fd_reserve(struct proxy *p, int end)
{
	struct event ev;
	struct rlimit rl;
	int n;

	if (end <= p->mem_fd_reserved)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)end > rl.rlim_cur)
		end = (int)rl.rlim_cur;
	/* Adding an event for the number makes its record; the number is
	 * mostly not open, so the add fails there (EBADF) after making it.
	 * One that is open (another loop's) is watched for no time. */
	mem_fd_reserving = true;
	for (n = p->mem_fd_reserved; n < end; n++) {
		if (event_assign(&ev, p->base, n, EV_READ, mem_fd_noop_cb, NULL) != 0)
			break;
		if (event_add(&ev, NULL) == 0)
			event_del(&ev);
	}
	mem_fd_reserving = false;
	if (n > p->mem_fd_reserved)
		p->mem_fd_reserved = n;
}

void proxy_mem_fd_seen(struct proxy *p, evutil_socket_t fd)
{
	if (fd < 0 || fd + MEM_FD_AHEAD < p->mem_fd_reserved)
		return;
	mem_fd_reserve(p, fd + (fd > MEM_FD_RUN ? fd : MEM_FD_RUN));
}

static void mem_janitor_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	uint64_t now = clock_now_ms();
	struct client *c;
	size_t excess;

	(void)fd;
	(void)what;
	/* What the last ticks freed: a bufferevent's memory goes only in a
	 * later turn of the loop (libevent finalizes it), so the trim comes
	 * a tick after the parking. */
	if (p->mem_released >= MEM_TRIM_AFTER) {
		log_debug("memory: %zu objects freed since the last trim: trimming the heap",
			  p->mem_released);
		p->mem_released = 0;
		malloc_trim(0);
	}
	while ((c = TAILQ_FIRST(&p->idle_clients)) != NULL &&
	       c->idle_since_ms + MEM_PARK_AFTER_MS <= now) {
		client_mem_busy(c);
		if (c->h2 != NULL) {
			if (h2_mem_park(c))
				p->mem_released++;
			continue;
		}
		/* One with bytes under way is not listed again until it is
		 * idle again: at most one try per idle period. */
		if (client_mem_park(c))
			p->mem_released++;
	}
	/* Idle backend connections no request used since the last tick. */
	upstream_pool_tick(p);
	/* Request objects none used since the last tick. */
	excess = p->free_reqs_low;
	if (excess > 0) {
		request_pool_trim(p, excess);
		p->mem_released += excess;
	}
	p->free_reqs_low = p->n_free_reqs;
	/* And HTTP/2 streams, and the worker's cache of small blocks. What
	 * these give back under load is their steady excess, not worth a
	 * trim: a heap trimmed while busy grows back at once, a page fault
	 * per page. */
	excess = p->free_h2s_low;
	h2_stream_pool_trim(p, excess);
	p->free_h2s_low = p->n_free_h2s;
	excess += memc_tick();
	if (p->n_active == 0)
		p->mem_released += excess;
}

bool proxy_mem_init(struct proxy *p)
{
	static pthread_once_t log_once = PTHREAD_ONCE_INIT;
	struct timeval tv = {MEM_JANITOR_MS / 1000, (MEM_JANITOR_MS % 1000) * 1000};

	pthread_once(&log_once, mem_event_log_init);
	/* Records for every client the cap allows and a backend connection
	 * each, made now while the heap is new (about 40 bytes each). */
	mem_fd_reserve(p, 2 * (int)(p->cfg.max_client_connections < 1000000
					? p->cfg.max_client_connections : 1000000) + 64);

	TAILQ_INIT(&p->idle_clients);
	TAILQ_INIT(&p->client_slabs);
	p->mem_janitor = event_new(p->base, -1, EV_PERSIST, mem_janitor_cb, p);
	if (p->mem_janitor == NULL || event_add(p->mem_janitor, &tv) != 0)
		return false;
	return true;
}

void proxy_mem_free(struct proxy *p)
{
	struct client_slab *s;

	if (p->mem_janitor) {
		event_free(p->mem_janitor);
		p->mem_janitor = NULL;
	}
	/* Every client was destroyed by now, which freed its block; what is
	 * left would be a leak, freed here all the same. */
	while ((s = TAILQ_FIRST(&p->client_slabs)) != NULL) {
		TAILQ_REMOVE(&p->client_slabs, s, link);
		MEM_UNPOISON(s->slots, sizeof(s->slots));
		munmap(s, s->size);
	}
}
