/*
 * Signals and the threads the daemon starts. The daemon's signals (HUP,
 * TERM, INT ...) are for the event loop of the main thread, so a thread is
 * started with them blocked (it inherits the mask of the thread that
 * creates it). The signals a fault raises in the faulting thread itself
 * (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT) stay open: blocked, a fault kills
 * the process without running any handler, so a sanitizer's report of a
 * crash in a worker would be lost, and with it the stack.
 */
#ifndef ZKR_THREADSIG_H
#define ZKR_THREADSIG_H

#include <signal.h>

/* Blocks, in the calling thread, every signal but the fault signals;
 * the previous mask goes to `old`, to restore once the thread is made. */
void threadsig_block_for_start(sigset_t *old);

#endif
