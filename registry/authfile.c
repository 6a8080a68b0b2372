/*
 * Credentials from a file (see authfile.h). The permission check follows
 * ssh's for private keys: a secret others can read is already leaked, so
 * the program refuses it rather than use it quietly. The check is made
 * on the descriptor that is read (fstat), not on the name, so a file
 * swapped between the check and the read cannot pass.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/authfile.h"
#include "registry/log.h"

void zkr_auth_free(char *auth)
{
	if (auth == NULL)
		return;
	explicit_bzero(auth, strlen(auth));
	free(auth);
}

bool zkr_auth_file_read(const char *path, char **out, char *why, size_t whylen)
{
	char buf[ZKR_AUTH_FILE_MAX + 2];
	size_t len = 0;
	struct stat st;
	bool ok = false;
	int fd;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		zkr_set_why(why, whylen, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0) {
		zkr_set_why(why, whylen, "%s: cannot stat: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		zkr_set_why(why, whylen, "%s: not a regular file", path);
		goto done;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		zkr_set_why(why, whylen, "%s: mode %04o lets its group or others read or change the "
			    "credentials; refused (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
		goto done;
	}
	/* One byte more than allowed tells "too long" from "exactly full". */
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			zkr_set_why(why, whylen, "%s: read error: %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > ZKR_AUTH_FILE_MAX) {
		zkr_set_why(why, whylen, "%s: longer than %d bytes; expected one line USER:PASSWORD", path,
			    ZKR_AUTH_FILE_MAX);
		goto done;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		zkr_set_why(why, whylen, "%s: NUL byte in the file; expected one line USER:PASSWORD", path);
		goto done;
	}
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len == 0) {
		ok = true;          /* no credentials */
		goto done;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			zkr_set_why(why, whylen, "%s: %s; expected one line USER:PASSWORD", path,
				    buf[i] == '\n' ? "more than one line" : "a control character in the file");
			goto done;
		}
	}
	if (buf[0] == ':' || strchr(buf, ':') == NULL) {
		zkr_set_why(why, whylen, "%s: expected USER:PASSWORD (no user name or no ':')", path);
		goto done;
	}
	if ((*out = strdup(buf)) == NULL) {
		zkr_set_why(why, whylen, "%s: out of memory", path);
		goto done;
	}
	ok = true;
done:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return ok;
}
