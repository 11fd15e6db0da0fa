/* Level names and filtering of common/log, and the stderr line format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static void test_level_names(void **state)
{
	static const struct { const char *name; int want; } cases[] = {
		{ "CRITICAL", LOG_LEVEL_CRITICAL }, { "error", LOG_LEVEL_ERROR },
		{ "Warning", LOG_LEVEL_WARNING }, { "WARN", LOG_LEVEL_WARNING },
		{ "INFO", LOG_LEVEL_INFO }, { "debug", LOG_LEVEL_DEBUG },
		{ "VERBOSE", -1 }, { "", -1 }, { "INFO ", -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(log_level_from_name(cases[i].name), cases[i].want);
	assert_string_equal(log_level_name(LOG_LEVEL_WARNING), "WARNING");
	assert_string_equal(log_level_name((enum log_level)42), "UNKNOWN");
}

/* Runs fn with stderr redirected into a temp file and returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/mp-log-XXXXXX";
	static char out[4096];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return out;
}

static void log_some_lines(void)
{
	log_init("media-relay", LOG_LEVEL_WARNING, false);
	log_debug("hidden debug");
	log_info("hidden info");
	log_warn("relay %s: slow", "127.0.0.2");
	log_errno(-2, "open %s", "/nonexistent");
}

static void test_stderr_lines_filtered_and_formatted(void **state)
{
	char *out;

	(void)state;
	out = capture_stderr(log_some_lines);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "media-relay[WARNING]: relay 127.0.0.2: slow\n"));
	assert_non_null(strstr(out, "media-relay[ERROR]: open /nonexistent: No such file or directory\n"));
	/* Every line starts with a date: "YYYY-MM-DD hh:mm:ss.mmm ". */
	assert_true(out[4] == '-' && out[7] == '-' && out[10] == ' ' && out[19] == '.');
}

static void test_log_errno_returns_its_argument(void **state)
{
	(void)state;
	log_init("t", LOG_LEVEL_CRITICAL, false); /* keep the test output clean */
	assert_int_equal(log_errno(-13, "x"), -13);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_stderr_lines_filtered_and_formatted),
		cmocka_unit_test(test_log_errno_returns_its_argument),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
