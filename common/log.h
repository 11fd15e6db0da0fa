/* Logging for both daemons: syslog (daemon facility) when running in the
 * background, timestamped lines on stderr under --no-fork. Levels and their
 * names follow MediaProxy's config.ini (log_level = CRITICAL..DEBUG). */
#ifndef MP_LOG_H
#define MP_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_CRITICAL = 0,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Starts logging as `ident` (e.g. "media-relay"; NULL keeps the current one).
 * use_syslog selects syslog (LOG_DAEMON) instead of stderr. Safe to call
 * again to switch targets. */
void log_init(const char *ident, enum log_level level, bool use_syslog);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Maps a level name (case-insensitive: CRITICAL, ERROR, WARNING/WARN, INFO,
 * DEBUG) to its level; returns -1 for an unknown name. */
int log_level_from_name(const char *name);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Logs "<message>: strerror(-err)" at ERROR and returns err (a -errno), so a
 * caller can `return log_errno(-errno, "...")` without losing errno. */
int log_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_critical(...) log_msg(LOG_LEVEL_CRITICAL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
