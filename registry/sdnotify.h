/*
 * systemd's readiness protocol (sd_notify(3)) without libsystemd: one
 * datagram of "KEY=VALUE" lines to the unix socket named by
 * $NOTIFY_SOCKET, a path or, with a leading '@', an abstract name.
 * Without $NOTIFY_SOCKET (not started by systemd as Type=notify) every
 * call does nothing, so the daemon calls it unconditionally.
 */
#ifndef ZKR_SDNOTIFY_H
#define ZKR_SDNOTIFY_H

#include <stdbool.h>

/*
 * Sends `state` (e.g. "READY=1\nSTATUS=serving") as one datagram. True
 * when it was sent, or when there is no $NOTIFY_SOCKET; false (logged
 * once per reason at warn) when the socket is named but cannot be
 * reached. Never blocks: the datagram is sent with MSG_DONTWAIT.
 */
bool zkr_sd_notify(const char *state);

/* The same with printf formatting. */
bool zkr_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
