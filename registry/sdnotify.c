/*
 * sd_notify without a new dependency (see sdnotify.h). The protocol is
 * small and stable: one SOCK_DGRAM datagram per state change, sent to
 * the address in $NOTIFY_SOCKET; systemd reads the sender's pid from the
 * socket credentials, so nothing else needs saying. An abstract name
 * ("@name") has its '@' replaced by a NUL byte and no terminating NUL
 * counted in the address length; a path counts its NUL.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "registry/log.h"
#include "registry/sdnotify.h"

/* Longer than any state this project sends (a STATUS line and a key or
 * two); a longer one is cut rather than refused. */
#define SDNOTIFY_MAX 1024

/* One warning per process: a misconfigured socket would otherwise log at
 * every table change. Written by the control thread only. */
static bool warned;

static bool failed(const char *what, const char *path, int err)
{
	if (!warned)
		log_warn("sd_notify: %s %s: %s (systemd will not see this process's state)", what, path,
			 strerror(err));
	warned = true;
	return false;
}

bool zkr_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t len;
	bool ok;
	int fd;

	if (path == NULL || path[0] == '\0')
		return true;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(sa.sun_path))
		return failed("NOTIFY_SOCKET is neither a path nor an @abstract name:", path, EINVAL);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@') {
		sa.sun_path[0] = '\0';
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return failed("cannot make a socket for", path, errno);
	ok = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa,
		    salen) >= 0;
	int err = errno;
	close(fd);
	if (!ok)
		return failed("cannot send to", path, err);
	return true;
}

bool zkr_sd_notifyf(const char *fmt, ...)
{
	char buf[SDNOTIFY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return zkr_sd_notify(buf);
}
