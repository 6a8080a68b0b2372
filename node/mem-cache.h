/*
 * A worker thread's cache of small heap blocks in front of malloc, for
 * libevent's allocations (event_set_mem_functions) and nghttp2's
 * (h2-mem.c). See mem-cache.c.
 */
#ifndef ZKR_MEM_CACHE_H
#define ZKR_MEM_CACHE_H

#include <stdbool.h>
#include <stddef.h>

/* malloc, realloc, calloc and free, with the calling thread's cache when
 * it has one. Any block may go to either side: these are malloc's blocks,
 * and a block from memc_malloc may end in free() and the reverse. */
void *memc_malloc(size_t size);
void *memc_realloc(void *ptr, size_t size);
void *memc_calloc(size_t n, size_t size);
void memc_free(void *ptr);

/* False in builds without the cache (AddressSanitizer's). */
bool memc_available(void);
/* The calling thread (a worker) gets a cache, or gives its blocks back
 * and goes without one (before it ends). */
void memc_thread_start(void);
void memc_thread_end(void);
/* The memory janitor's tick, on that thread: the blocks the last tick did
 * not need go back to malloc. Returns how many. */
size_t memc_tick(void);

#endif
