/* For unit tests that need real files made by tools (tls/make-certs.sh,
 * openssl): run a shell command quietly, showing its output as TAP
 * diagnostics only when it fails, and remove a temp tree afterwards. */
#ifndef MP_TEST_SHELL_H
#define MP_TEST_SHELL_H

#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Runs the command through sh with its output in logdir/sh.log. Returns
 * system()'s status: 0 on success. */
static int test_shell_run(const char *logdir, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), unused));
static int test_shell_run(const char *logdir, const char *fmt, ...)
{
	char cmd[2 * PATH_MAX + 512], log[PATH_MAX + 16];
	va_list ap;
	int n, rc;

	snprintf(log, sizeof(log), "%s/sh.log", logdir);
	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + strlen(log) + 16 >= sizeof(cmd))
		return -1;
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " >%s 2>&1", log);
	rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr, "# command failed (%d): %s\n", rc, cmd);
		snprintf(cmd, sizeof(cmd), "sed 's/^/# /' %s >&2", log);
		if (system(cmd)) {
			/* the diagnostics are best effort */
		}
	}
	return rc;
}

static int test_shell_rm_entry(const char *path, const struct stat *st, int flag,
			       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes dir and everything in it; nothing if dir is still an unfilled
 * mkdtemp() template (set-up failed before creating it). */
static void test_shell_rm_tree(const char *dir) __attribute__((unused));
static void test_shell_rm_tree(const char *dir)
{
	size_t len = strlen(dir);

	if (len >= 6 && strcmp(dir + len - 6, "XXXXXX"))
		nftw(dir, test_shell_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
