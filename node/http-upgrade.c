/*
 * Upgrade tokens (see http.h): which protocols a request may switch to
 * through us. Only those of the --upgrade-protocols list are forwarded and
 * tunnelled; a request left with none is an ordinary request.
 */
#include <config.h>

#include <string.h>
#include <strings.h>

#include "node/http.h"

/* RFC 9110 tchar, for the option's list. */
static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

void http_upgrade_tokens(const struct http_hdr *hd, void (*fn)(const char *t, size_t n, void *arg),
			 void *arg)
{
	const char *p = hd->value, *end = hd->value + hd->vlen, *t;
	size_t n;

	while (http_next_token(&p, end, &t, &n))
		fn(t, n, arg);
}

bool http_upgrade_token_allowed(const char *token, size_t len, const char *allowed)
{
	const char *slash = memchr(token, '/', len);
	size_t nlen = slash ? (size_t)(slash - token) : len;
	const char *p = allowed;

	if (p == NULL || nlen == 0)
		return false;
	while (*p) {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, ", \t");
		if (n == nlen && strncasecmp(p, token, n) == 0)
			return true;
		p += n;
	}
	return false;
}

bool http_upgrade_list_valid(const char *list)
{
	const char *p = list;
	bool any = false;

	if (list == NULL)
		return true;
	while (*p) {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		for (n = 0; p[n] && p[n] != ',' && p[n] != ' ' && p[n] != '\t'; n++)
			if (!is_tchar((unsigned char)p[n]))
				return false;
		any = any || n > 0;
		p += n;
	}
	return any;
}

struct upgrade_check {
	const char *allowed;
	bool any;
};

static void upgrade_check_token(const char *t, size_t n, void *arg)
{
	struct upgrade_check *uc = arg;

	if (http_upgrade_token_allowed(t, n, uc->allowed))
		uc->any = true;
}

void http_upgrade_restrict(struct http_head *h, const char *allowed)
{
	struct upgrade_check uc = {allowed, false};
	unsigned i;

	if (!h->upgrade)
		return;
	for (i = 0; i < h->n_hdrs; i++)
		if (h->hdrs[i].kind == HDR_UPGRADE)
			http_upgrade_tokens(&h->hdrs[i], upgrade_check_token, &uc);
	h->upgrade = uc.any;
}
