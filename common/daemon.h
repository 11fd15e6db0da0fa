/* Process plumbing shared by media-relay and media-dispatcher: the command
 * line both accept, detaching into the background, the pid file and the
 * runtime directory (PROTOCOL.md D7). */
#ifndef MP_DAEMON_H
#define MP_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#define DAEMON_DEFAULT_RUNTIME_DIR "/run/mediaproxy"
#define DAEMON_DEFAULT_CONFIG "/etc/mediaproxy/config.ini"

struct daemon_options {
	const char *config_file;   /* --config-file FILE */
	const char *config_dir;    /* --config-dir DIR (DIR/config.ini) */
	const char *runtime_dir;   /* --runtime-dir DIR */
	const char *pid_file;      /* --pid FILE (default <runtime_dir>/<name>.pid) */
	bool no_fork;              /* --no-fork: foreground, log to stderr */
	bool config_explicit;      /* the file was named on the command line */
	char config_path[PATH_MAX];
	char pid_path[PATH_MAX];
};

/* Parses the command line of daemon `prog` (pid file base name `pid_name`).
 * Returns 0 to go on, 1 when --help or --version was answered (exit 0), or
 * -1 after printing a usage error to stderr (exit 1). */
int daemon_parse_args(struct daemon_options *opts, int argc, char **argv,
		      const char *prog, const char *pid_name, const char *summary);

/* Creates the runtime directory (and parents) if missing. 0 or -errno. */
int daemon_make_runtime_dir(const char *path);

/* Forks into the background: the parent stays until the child calls
 * daemon_ready() (then exits 0) or dies (then exits 1), so a start-up error
 * in the child still fails the command that started it. Returns 0 in the
 * child, -errno on failure in the original process. */
int daemon_detach(void);

/* Tells the waiting parent that start-up succeeded and closes the standard
 * streams. No-op when the process did not detach. */
void daemon_ready(void);

/* Creates, locks and fills the pid file. Fails with -EEXIST (and the other
 * instance's pid in *other_pid) while another process holds it. */
int daemon_pidfile_create(const char *path, long *other_pid);
void daemon_pidfile_remove(const char *path);

/* --- start-up sequence shared by both mains (daemon_start.c) --- */
struct mp_config;

enum daemon_role { DAEMON_ROLE_RELAY, DAEMON_ROLE_DISPATCHER };

/* Logging to stderr, then config.ini (warnings logged with file:line; the
 * default path may be absent, an explicit one may not), the role's log_level
 * and the runtime directory. 0, or -1 after logging why. */
int daemon_start(struct daemon_options *opts, struct mp_config *config,
		 const char *ident, enum daemon_role role);

/* Detaches unless --no-fork; logging then moves to syslog. 0, or -1 after
 * logging why. Create the event loop after this, not before (fork). */
int daemon_background(struct daemon_options *opts);

/* Takes the pid file, failing while another instance holds it. Call it once
 * the signal handlers are in place (the pid file tells scripts the daemon is
 * ready for signals) and before touching shared sockets or state, so that a
 * second instance cannot disturb the first. 0, or -1 after logging why. */
int daemon_claim_pidfile(struct daemon_options *opts);

/* Calls on_signal(signo, EV_SIGNAL, arg) from the loop for each of the
 * count signals, filling events[0..count); SIGPIPE is ignored (peers that
 * vanish show up as write errors). 0, or -1 after logging which failed. */
int daemon_watch_signals(struct event_base *base, const int *signals, size_t count,
			 event_callback_fn on_signal, void *arg, struct event **events);
void daemon_unwatch_signals(struct event **events, size_t count);

/* Removes the pid file if this process holds it. */
void daemon_stop(struct daemon_options *opts);

#endif
