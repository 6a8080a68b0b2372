/*
 * ZooKeeper digest credentials read from a file (--auth-file, or
 * $ZKROUTER_AUTH_FILE), so that a password never appears on a command
 * line, where every user of the host can read it in /proc. Shared by
 * zkrouterd, zkrouter-agent and zkrouterctl.
 */
#ifndef ZKR_AUTHFILE_H
#define ZKR_AUTHFILE_H

#include <stdbool.h>
#include <stddef.h>

/* The environment variable every program reads when given neither
 * --auth nor --auth-file. */
#define ZKR_AUTH_FILE_ENV "ZKROUTER_AUTH_FILE"

/* Longest file accepted: a user name, a colon and a password. */
#define ZKR_AUTH_FILE_MAX 1024

/*
 * Reads "USER:PASSWORD" (one line; a final newline is dropped) from
 * `path`. The file must be a regular file that neither its group nor
 * others may read or write (chmod 600 or 400): anything else is refused,
 * with the file, its mode and the fix in `why`, and so is a file that is
 * too long, holds a NUL byte or more than one line, or is not USER:PASSWORD.
 * An empty file means "no credentials" (true with *out NULL), so that a
 * systemd unit can give an empty default credential. On success *out is
 * malloc'd; free it with zkr_auth_free. The secret never goes into `why`.
 */
bool zkr_auth_file_read(const char *path, char **out, char *why, size_t whylen);

/* Wipes and frees what zkr_auth_file_read returned (NULL is fine). */
void zkr_auth_free(char *auth);

#endif
