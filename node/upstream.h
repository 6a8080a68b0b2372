/*
 * Connections to backends: connecting (with a timeout), per-instance pools
 * of idle keep-alive connections (capped, closed after an idle timeout that
 * is kept shorter than typical apps' so we rarely reuse one the app is
 * closing), retries, and relaying the response back to the client.
 *
 * Retry rules: a pooled connection that fails before any response byte is
 * retried once on a fresh connection to the same instance (nothing reached
 * the app). A connect that is refused, reset or times out is retried on a
 * different instance, bounded by the retry count and the retry time budget,
 * and ejects the instance passively. Nothing is retried once the body has
 * started to flow or a response byte has arrived.
 */
#ifndef ZKR_UPSTREAM_H
#define ZKR_UPSTREAM_H

struct backend;

/* Closes every idle pooled connection of `b` (removed, draining, freed). */
void upstream_pool_close(struct backend *b);

#endif
