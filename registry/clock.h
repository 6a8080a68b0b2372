/*
 * The one clock of the daemon and the tools: monotonic time for timeouts,
 * ejection, backoff and request durations (a vDSO call: cheap enough for
 * every request). Wall-clock time (log stamps, the access log) is not
 * this module's business.
 */
#ifndef ZKR_CLOCK_H
#define ZKR_CLOCK_H

#include <stdint.h>

uint64_t clock_now_us(void);
uint64_t clock_now_ms(void);

#endif
