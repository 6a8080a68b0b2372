/*
 * nghttp2's memory for client sessions (struct h2_mem in h2-int.h).
 *
 * What an idle HTTP/2 connection costs is mostly its nghttp2 session:
 * about 26 KB made at its start, of which a 16 KB frame buffer and a
 * 4 KB stream map (zeroed), though a connection that carried a few small
 * requests writes only the first page of the one and a bucket or two of
 * the other. From malloc those blocks sit on pages the heap already
 * touched, all resident. Here each block of H2_MEM_MAP_MIN bytes or more
 * is a mapping of its own, page-aligned, zero and untouched, so only the
 * pages nghttp2 writes count; and once the connection has been idle a
 * while (the memory janitor, proxy-mem.c), h2_mem_release gives back the
 * frame buffer's pages (between two sends nothing in it is live: each
 * frame is written afresh) and every page of the other mappings that is
 * all zeros again (the stream map once its streams are gone). Pages given
 * back read as zeros when next touched, so nothing changes for nghttp2.
 *
 * Smaller blocks (most of nghttp2's: header table entries, streams,
 * queued frames) are malloc's, with no header of ours: a block is ours
 * to unmap when the session's short list of mappings has it. One small
 * block is mapped all the same: the HPACK encoder's entry ring (1 KB),
 * which our table size of 0 leaves untouched (H2_MEM_HD_RING).
 */
#include <config.h>

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "node/h2-int.h"
#include "node/mem-cache.h"

/* Blocks this big or bigger are mapped: the frame buffer (a 16 KB frame
 * and its header), the stream map (4 KB), a large header's buffer. */
#define H2_MEM_MAP_MIN 4096
/* nghttp2's frame buffer: NGHTTP2_FRAMEBUF_CHUNKLEN, a 16 KB frame, its
 * 9-byte header and a padding length byte. */
#define H2_MEM_FRAMEBUF (16384 + 9 + 1)
/* Each HPACK table (the encoder's, then the decoder's, made with the
 * session) starts with a ring of entry pointers sized for the default
 * 4 KB table, 32 bytes an entry: 1 KB. The encoder's table is 0 bytes
 * (session_make), so its ring never holds an entry: mapped, its page is
 * never touched. The decoder's is written as soon as the client indexes
 * a field, so it stays on the heap (a page of its own would cost 4 KB). */
#define H2_MEM_HD_RING (4096 / 32 * sizeof(void *))

static size_t page_size(void)
{
	static size_t page;

	if (page == 0) {
		long v = sysconf(_SC_PAGESIZE);

		page = v > 0 ? (size_t)v : 4096;
	}
	return page;
}

/* The index of `ptr` among the session's mappings, or -1. */
static int map_find(const struct h2_mem *m, const void *ptr)
{
	for (unsigned i = 0; i < m->n; i++)
		if (m->maps[i].p == ptr)
			return (int)i;
	return -1;
}

static void *mem_alloc(struct h2_mem *m, size_t size, bool zero)
{
	bool ring = m->making && m->hd_ring == NULL && size == H2_MEM_HD_RING;
	size_t len;
	void *p;

	if ((size < H2_MEM_MAP_MIN && !ring) || m->n == H2_MEM_MAPS || size > SIZE_MAX - page_size())
		return zero ? memc_calloc(1, size) : memc_malloc(size);
	len = (size + page_size() - 1) / page_size() * page_size();
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* Out of mappings (vm.max_map_count): the heap's block does as well,
	 * only without pages to give back when the connection idles. */
	if (p == MAP_FAILED)
		return zero ? memc_calloc(1, size) : memc_malloc(size);
	m->maps[m->n].p = p;   /* zero already: a calloc needs no memset */
	m->maps[m->n].len = len;
	m->n++;
	/* The frame buffer is made with the session; later blocks of that
	 * size are extra chunks for a large frame, freed after it. */
	if (m->making && size == H2_MEM_FRAMEBUF && m->framebuf == NULL)
		m->framebuf = p;
	if (ring)
		m->hd_ring = p;
	return p;
}

static void *mem_malloc(size_t size, void *arg)
{
	return mem_alloc(arg, size, false);
}

static void mem_free(void *ptr, void *arg)
{
	struct h2_mem *m = arg;
	int i;

	if (ptr == NULL)
		return;
	i = map_find(m, ptr);
	if (i < 0) {
		memc_free(ptr);
		return;
	}
	munmap(ptr, m->maps[i].len);
	if (m->framebuf == ptr)
		m->framebuf = NULL;
	if (m->hd_ring == ptr)
		m->hd_ring = NULL;
	m->maps[i] = m->maps[--m->n];
}

static void *mem_calloc(size_t n, size_t size, void *arg)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return mem_alloc(arg, n * size, true);
}

static void *mem_realloc(void *ptr, size_t size, void *arg)
{
	struct h2_mem *m = arg;
	size_t old;
	void *p;
	int i;

	if (ptr == NULL)
		return mem_malloc(size, arg);
	i = map_find(m, ptr);
	if (i < 0 && size < H2_MEM_MAP_MIN)
		return memc_realloc(ptr, size);
	/* Into or out of a mapping: copied. */
	old = i >= 0 ? m->maps[i].len : malloc_usable_size(ptr);
	p = mem_malloc(size, arg);
	if (p == NULL)
		return NULL;
	memcpy(p, ptr, old < size ? old : size);
	mem_free(ptr, arg);
	return p;
}

void h2_mem_init(struct h2_mem *m)
{
	memset(m, 0, sizeof(*m));
	m->mem.mem_user_data = m;
	m->mem.malloc = mem_malloc;
	m->mem.free = mem_free;
	m->mem.calloc = mem_calloc;
	m->mem.realloc = mem_realloc;
}

static bool page_zero(const unsigned char *p, size_t len)
{
	static const unsigned char zeros[256];

	for (size_t off = 0; off < len; off += sizeof(zeros))
		if (memcmp(p + off, zeros, sizeof(zeros)) != 0)
			return false;
	return true;
}

void h2_mem_release(struct h2_mem *m)
{
	size_t page = page_size();

	for (unsigned i = 0; i < m->n; i++) {
		unsigned char *p = m->maps[i].p;

		if (p == m->framebuf) {
			(void)madvise(p, m->maps[i].len, MADV_DONTNEED);
			continue;
		}
		/* Reading a page never touched maps the zero page: no cost. */
		for (size_t off = 0; off < m->maps[i].len; off += page)
			if (page_zero(p + off, page))
				(void)madvise(p + off, page, MADV_DONTNEED);
	}
}
