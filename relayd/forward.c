/* Choosing the forwarding backend (`[Relay] forwarding`): a named one must
 * work; `auto` takes the first that opens, in the order xdp, conntrack,
 * userspace, and says why it passed over the others. */
#include <errno.h>
#include <stdio.h>

#include "forward.h"
#include "log.h"

static const struct forward_backend *const auto_order[] = {
	&forward_xdp_backend,
	&forward_conntrack_backend,
	&forward_user_backend,
};

static const struct forward_backend *backend_for(enum config_forwarding choice)
{
	switch (choice) {
	case CONFIG_FWD_XDP: return &forward_xdp_backend;
	case CONFIG_FWD_CONNTRACK: return &forward_conntrack_backend;
	case CONFIG_FWD_USERSPACE: return &forward_user_backend;
	default: return NULL;
	}
}

int forward_open(enum config_forwarding choice, const struct forward_options *opts,
		 const struct forward_backend **backend, struct forward **fw)
{
	const struct forward_backend *named = backend_for(choice);
	char why[512];
	int err;

	if (named) {
		why[0] = '\0';
		err = named->open(fw, opts, why, sizeof(why));
		if (err) {
			log_error("forwarding = %s cannot be used: %s", named->name,
				  why[0] ? why : "unknown reason");
			return -1;
		}
		*backend = named;
		log_info("forwarding through %s (configured)", named->name);
		return 0;
	}
	for (size_t i = 0; i < sizeof(auto_order) / sizeof(auto_order[0]); i++) {
		why[0] = '\0';
		err = auto_order[i]->open(fw, opts, why, sizeof(why));
		if (!err) {
			*backend = auto_order[i];
			log_info("forwarding through %s (forwarding = auto)", auto_order[i]->name);
			return 0;
		}
		log_info("forwarding = auto: %s not usable: %s", auto_order[i]->name,
			 why[0] ? why : "unknown reason");
	}
	log_error("no forwarding backend could be opened");
	return -1;
}
