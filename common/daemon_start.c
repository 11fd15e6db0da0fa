/* The start-up sequence both daemons share: stderr logging, config.ini, the
 * role's log level, runtime directory, detaching and the pid file. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

static void log_config_warning(void *ctx, const char *file, int line, const char *message)
{
	(void)ctx;
	log_warn("%s:%d: %s", file, line, message);
}

static int load_config(const struct daemon_options *opts, struct mp_config *config,
		       enum daemon_role role)
{
	char err[1024];

	if (config_init_defaults(config)) {
		log_error("out of memory reading the configuration");
		return -1;
	}
	/* Upstream runs on defaults without a config file; we do the same for
	 * the default path, but a file named on the command line must exist. */
	if (!opts->config_explicit && access(opts->config_path, F_OK) && errno == ENOENT) {
		log_warn("%s: not found, running on built-in defaults", opts->config_path);
		return 0;
	}
	if (config_load(config, opts->config_path, log_config_warning, NULL, err, sizeof(err))) {
		log_error("bad configuration: %s", err);
		return -1;
	}
	if (role == DAEMON_ROLE_DISPATCHER && config_check_dispatcher(config, err, sizeof(err))) {
		log_error("bad configuration: %s", err);
		return -1;
	}
	return 0;
}

int daemon_start(struct daemon_options *opts, struct mp_config *config,
		 const char *ident, enum daemon_role role)
{
	int err;

	log_init(ident, LOG_LEVEL_INFO, false);
	if (load_config(opts, config, role))
		return -1;
	log_set_level(role == DAEMON_ROLE_RELAY ? config->relay.log_level
						: config->dispatcher.log_level);
	err = daemon_make_runtime_dir(opts->runtime_dir);
	if (err) {
		log_errno(err, "cannot create runtime directory %s", opts->runtime_dir);
		return -1;
	}
	return 0;
}

int daemon_background(struct daemon_options *opts)
{
	int err;

	if (opts->no_fork)
		return 0;
	err = daemon_detach();
	if (err) {
		log_errno(err, "cannot detach into the background");
		return -1;
	}
	log_init(NULL, log_get_level(), true);
	return 0;
}

int daemon_claim_pidfile(struct daemon_options *opts)
{
	long other_pid = 0;
	int err;

	err = daemon_pidfile_create(opts->pid_path, &other_pid);
	if (err == -EEXIST) {
		log_error("another instance is running (pid %ld holds %s)", other_pid, opts->pid_path);
		return -1;
	}
	if (err) {
		log_errno(err, "cannot write pid file %s", opts->pid_path);
		return -1;
	}
	return 0;
}

int daemon_watch_signals(struct event_base *base, const int *signals, size_t count,
			 event_callback_fn on_signal, void *arg, struct event **events)
{
	for (size_t i = 0; i < count; i++) {
		events[i] = evsignal_new(base, signals[i], on_signal, arg);
		if (!events[i] || evsignal_add(events[i], NULL)) {
			log_error("cannot watch signal SIG%s", sigabbrev_np(signals[i]));
			return -1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

void daemon_unwatch_signals(struct event **events, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (events[i])
			event_free(events[i]);
		events[i] = NULL;
	}
}

void daemon_stop(struct daemon_options *opts)
{
	daemon_pidfile_remove(opts->pid_path);
}
