/* Command-line handling, runtime directory and pid file of common/daemon. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon.h"

struct args_case {
	const char *name;
	const char *argv[8];
	int want_rc;
	const char *want_config;
	const char *want_pid;
	int want_explicit;
	int want_no_fork;
};

static const struct args_case args_cases[] = {
	{ "no arguments: packaged defaults", { "media-relay" }, 0,
	  "/etc/mediaproxy/config.ini", "/run/mediaproxy/relay.pid", 0, 0 },
	{ "--config-file names the file", { "media-relay", "--config-file", "/tmp/x.ini" }, 0,
	  "/tmp/x.ini", "/run/mediaproxy/relay.pid", 1, 0 },
	{ "--config-dir reads DIR/config.ini", { "media-relay", "--config-dir", "/opt/mp" }, 0,
	  "/opt/mp/config.ini", "/run/mediaproxy/relay.pid", 1, 0 },
	{ "--runtime-dir moves the pid file", { "media-relay", "--runtime-dir", "/tmp/rt", "--no-fork" },
	  0, "/etc/mediaproxy/config.ini", "/tmp/rt/relay.pid", 0, 1 },
	{ "--pid wins over the runtime dir", { "media-relay", "--runtime-dir", "/tmp/rt", "--pid", "/tmp/p.pid" },
	  0, "/etc/mediaproxy/config.ini", "/tmp/p.pid", 0, 0 },
	{ "--config-file and --config-dir together", { "media-relay", "--config-file", "a", "--config-dir", "b" },
	  -1, NULL, NULL, 0, 0 },
	{ "unknown option", { "media-relay", "--frobnicate" }, -1, NULL, NULL, 0, 0 },
	{ "missing option argument", { "media-relay", "--pid" }, -1, NULL, NULL, 0, 0 },
	{ "stray argument", { "media-relay", "extra" }, -1, NULL, NULL, 0, 0 },
};

static void test_parse_args(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(args_cases) / sizeof(args_cases[0]); i++) {
		const struct args_case *c = &args_cases[i];
		struct daemon_options opts;
		char *argv[8] = { 0 };
		int argc = 0, rc;

		while (argc < 8 && c->argv[argc]) {
			argv[argc] = (char *)c->argv[argc];
			argc++;
		}
		print_message("case: %s\n", c->name);
		rc = daemon_parse_args(&opts, argc, argv, "media-relay", "relay", "test");
		assert_int_equal(rc, c->want_rc);
		if (rc)
			continue;
		assert_string_equal(opts.config_path, c->want_config);
		assert_string_equal(opts.pid_path, c->want_pid);
		assert_int_equal(opts.config_explicit, c->want_explicit);
		assert_int_equal(opts.no_fork, c->want_no_fork);
	}
}

static void test_help_and_version_answer(void **state)
{
	char *help[] = { "media-dispatcher", "--help", NULL };
	char *version[] = { "media-dispatcher", "--version", NULL };
	struct daemon_options opts;

	(void)state;
	assert_int_equal(daemon_parse_args(&opts, 2, help, "media-dispatcher", "dispatcher", "t"), 1);
	assert_int_equal(daemon_parse_args(&opts, 2, version, "media-dispatcher", "dispatcher", "t"), 1);
}

static void test_runtime_dir_created_with_parents(void **state)
{
	char base[] = "/tmp/mp-daemon-XXXXXX", path[PATH_MAX];
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(daemon_make_runtime_dir(path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(daemon_make_runtime_dir(path), 0); /* exists: fine */
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a/b", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a", base);
	rmdir(path);
	rmdir(base);
}

static void test_pidfile_locked_against_second_instance(void **state)
{
	char base[] = "/tmp/mp-daemon-XXXXXX", path[PATH_MAX], buf[32] = { 0 };
	long other = 0;
	FILE *f;
	pid_t child;
	int status;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/relay.pid", base);

	/* A stale file from a crash does not block a start. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("999999\n", f);
	fclose(f);
	assert_int_equal(daemon_pidfile_create(path, &other), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(strtol(buf, NULL, 10), (long)getpid());

	/* Another process sees the lock and learns our pid. */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		long seen = 0;
		int rc = daemon_pidfile_create(path, &seen);

		_exit(rc == -EEXIST && seen == (long)getppid() ? 0 : 1);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	daemon_pidfile_remove(path);
	assert_int_equal(access(path, F_OK), -1);
	rmdir(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_args),
		cmocka_unit_test(test_help_and_version_answer),
		cmocka_unit_test(test_runtime_dir_created_with_parents),
		cmocka_unit_test(test_pidfile_locked_against_second_instance),
	};

	return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
