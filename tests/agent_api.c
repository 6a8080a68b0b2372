/*
 * agent_api: drives the embeddable agent API (registry/agent/agent.h) from
 * commands on stdin, so tests/agent_api.sh can check each call's effect
 * in ZooKeeper with zkrouterctl between steps.
 *
 *   agent_api --zk CONNECT --domain D --port P [--id ID] [--auth U:P]
 *
 * Commands, one per line: start, stop, free (close the session and free
 * the agent, then wait), bounce (start, and stop from inside the state
 * callback once registered), quit. Every state change prints
 * "state NAME ZRC" and every command "done CMD", both flushed.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "registry/agent/agent.h"
#include "registry/log.h"

static struct zkr_agent *agent;
static struct event_base *base;
static bool bounce;
static char line[256];
static size_t used;

static void on_state(struct zkr_agent *a, enum zkr_agent_state st, int zrc, const char *msg, void *arg)
{
	printf("state %s %d\n", zkr_agent_state_name(st), zrc);
	fflush(stdout);
	/* Calling stop from inside the callback is allowed by agent.h. */
	if (bounce && st == ZKR_AGENT_REGISTERED) {
		bounce = false;
		zkr_agent_stop(a);
	}
}

static void command(const char *cmd)
{
	if (strcmp(cmd, "quit") == 0) {
		event_base_loopexit(base, NULL);
		return;
	}
	if (agent == NULL && strcmp(cmd, "free") != 0) {
		printf("error no agent\n");
	} else if (strcmp(cmd, "start") == 0) {
		zkr_agent_start(agent);
	} else if (strcmp(cmd, "stop") == 0) {
		zkr_agent_stop(agent);
	} else if (strcmp(cmd, "bounce") == 0) {
		bounce = true;
		zkr_agent_start(agent);
	} else if (strcmp(cmd, "free") == 0) {
		zkr_agent_free(agent);
		agent = NULL;
	} else {
		printf("error unknown command %s\n", cmd);
	}
	printf("done %s\n", cmd);
	fflush(stdout);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	ssize_t n = read(fd, line + used, sizeof(line) - 1 - used);
	if (n <= 0) {
		event_base_loopexit(base, NULL);
		return;
	}
	used += (size_t)n;
	char *nl;
	while ((nl = memchr(line, '\n', used)) != NULL) {
		*nl = '\0';
		command(line);
		used -= (size_t)(nl + 1 - line);
		memmove(line, nl + 1, used);
	}
	if (used == sizeof(line) - 1)
		used = 0;  /* an overlong line: drop it */
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "zk", required_argument, NULL, 'z' }, { "domain", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' }, { "id", required_argument, NULL, 'i' },
		{ "auth", required_argument, NULL, 'a' }, { NULL, 0, NULL, 0 },
	};
	struct zkr_agent_opts o = { .host = "127.0.0.1", .session_timeout_ms = 4000 };
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'z': o.connect = optarg; break;
		case 'd': o.domain = optarg; break;
		case 'p': o.port = (uint16_t)atoi(optarg); break;
		case 'i': o.id = optarg; break;
		case 'a': o.auth = optarg; break;
		default: return 2;
		}
	}
	zkr_log_init("agent_api", ZKR_LOG_INFO, false);
	base = event_base_new();
	char why[256];
	agent = base ? zkr_agent_new(base, &o, on_state, NULL, why, sizeof(why)) : NULL;
	if (agent == NULL) {
		printf("error %s\n", base ? why : "no event base");
		return 1;
	}
	printf("ready %s\n", zkr_agent_path(agent));
	fflush(stdout);
	struct event *in = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, NULL);
	if (in == NULL || event_add(in, NULL) != 0)
		return 1;
	event_base_dispatch(base);
	event_free(in);
	zkr_agent_free(agent);
	event_base_free(base);
	return 0;
}
