/* Logging backend: one process-wide sink, chosen at start (stderr or syslog). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

static const char *const level_names[] = {
	[LOG_LEVEL_CRITICAL] = "CRITICAL",
	[LOG_LEVEL_ERROR] = "ERROR",
	[LOG_LEVEL_WARNING] = "WARNING",
	[LOG_LEVEL_INFO] = "INFO",
	[LOG_LEVEL_DEBUG] = "DEBUG",
};

static const int syslog_priorities[] = {
	[LOG_LEVEL_CRITICAL] = LOG_CRIT,
	[LOG_LEVEL_ERROR] = LOG_ERR,
	[LOG_LEVEL_WARNING] = LOG_WARNING,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

static struct {
	char ident[64];
	enum log_level level;
	bool use_syslog;
} sink = { "mediaproxy", LOG_LEVEL_INFO, false };

void log_init(const char *ident, enum log_level level, bool use_syslog)
{
	if (sink.use_syslog)
		closelog();
	if (ident)
		snprintf(sink.ident, sizeof(sink.ident), "%s", ident);
	sink.level = level;
	sink.use_syslog = use_syslog;
	if (use_syslog)
		openlog(sink.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level)
{
	sink.level = level;
}

enum log_level log_get_level(void)
{
	return sink.level;
}

int log_level_from_name(const char *name)
{
	if (!strcasecmp(name, "WARN"))
		return LOG_LEVEL_WARNING;
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (!strcasecmp(name, level_names[i]))
			return (int)i;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "UNKNOWN";
	return level_names[level];
}

static void log_write(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec now;
	struct tm tm;

	vsnprintf(line, sizeof(line), fmt, ap);
	if (sink.use_syslog) {
		syslog(syslog_priorities[level], "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	fprintf(stderr, "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s[%s]: %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000, sink.ident,
		level_names[level], line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > sink.level)
		return;
	va_start(ap, fmt);
	log_write(level, fmt, ap);
	va_end(ap);
}

int log_errno(int err, const char *fmt, ...)
{
	char message[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_msg(LOG_LEVEL_ERROR, "%s: %s", message, strerror(err < 0 ? -err : err));
	return err;
}
