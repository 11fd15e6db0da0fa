/* Our nftables table for the conntrack backend (see nft_table.h). Each call
 * uses a fresh libnftables context: the table is touched only at start and
 * at a clean exit, and a context holds caches we do not want to keep. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <nftables/libnftables.h>

#include "log.h"
#include "nft_table.h"

#define NFT_CMD_MAX 2048

bool nft_table_name_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > NFT_TABLE_NAME_MAX ||
	    !(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
			return false;
	return true;
}

/* nft's error output is "Error: <what>\n<the command>\n<carets>": keep the
 * first line, which is the part worth a log line. */
static void first_line(const char *text, char *out, size_t outlen)
{
	size_t n;

	if (!out || !outlen)
		return;
	if (!text || !*text)
		text = "nft reported an error without a message";
	if (!strncmp(text, "Error: ", 7))
		text += 7;
	n = strcspn(text, "\n");
	snprintf(out, outlen, "%.*s", (int)n, text);
}

/* Runs one batch (one transaction). 0, or -EPERM / -EIO with the message. */
static int nft_run(const char *cmd, char *why, size_t whylen)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	const char *err;
	int rc = 0;

	if (!ctx) {
		snprintf(why, whylen, "libnftables: cannot create a context");
		return -ENOMEM;
	}
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, cmd)) {
		err = nft_ctx_get_error_buffer(ctx);
		first_line(err, why, whylen);
		rc = err && strstr(err, "Operation not permitted") ? -EPERM : -EIO;
	}
	nft_ctx_free(ctx);
	return rc;
}

int nft_table_ensure(const struct nft_table_spec *spec, bool *existed, char *why,
		     size_t whylen)
{
	char cmd[NFT_CMD_MAX], ignored[256], relay[INET6_ADDRSTRLEN];
	const char *name = spec->name;
	int n;

	if (!nft_table_name_valid(name)) {
		snprintf(why, whylen, "invalid nftables table name");
		return -EINVAL;
	}
	if (net_addr_format(spec->relay_ip, relay, sizeof(relay))) {
		snprintf(why, whylen, "relay address not set");
		return -EINVAL;
	}
	snprintf(cmd, sizeof(cmd), "list table inet %s", name);
	*existed = nft_run(cmd, ignored, sizeof(ignored)) == 0;
	/* NAT chains on all four hooks: prerouting/postrouting for peers
	 * behind other interfaces, output/input for peers on this host. The
	 * chains hold no rules: the NAT bindings come with our entries. The
	 * `ct mark` rule makes conntrack track in this namespace and counts
	 * what we forward. What the relay's own sockets send (media forwarded
	 * in user space before a leg is handed over) is not tracked: an entry
	 * for it would hold the reply tuple of the NAT entry we create next,
	 * and the kernel would then move our NAT to another source port.
	 * Rules are flushed and re-added in the same transaction, so an
	 * adopted table never ends up with two. */
	n = snprintf(cmd, sizeof(cmd),
		     "add table inet %1$s\n"
		     "add chain inet %1$s prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
		     "add chain inet %1$s output { type nat hook output priority -100; policy accept; }\n"
		     "add chain inet %1$s input { type nat hook input priority 100; policy accept; }\n"
		     "add chain inet %1$s postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
		     "add chain inet %1$s forward { type filter hook forward priority filter; policy accept; }\n"
		     "add chain inet %1$s relay_output { type filter hook output priority raw; policy accept; }\n"
		     "flush chain inet %1$s forward\n"
		     "flush chain inet %1$s relay_output\n"
		     "add rule inet %1$s forward ct mark 0x%2$08x counter comment \"media forwarded by the relay\"\n"
		     "add rule inet %1$s relay_output %3$s saddr %4$s udp sport %5$u-%6$u notrack "
		     "comment \"media the relay forwards itself\"\n",
		     name, (unsigned int)spec->ct_mark,
		     spec->relay_ip->family == AF_INET6 ? "ip6" : "ip", relay,
		     spec->port_min, spec->port_max);
	if (n < 0 || (size_t)n >= sizeof(cmd)) {
		snprintf(why, whylen, "nftables command too long");
		return -ENAMETOOLONG;
	}
	return nft_run(cmd, why, whylen);
}

int nft_table_delete(const char *name)
{
	char cmd[NFT_CMD_MAX], why[256];
	int err;

	if (!nft_table_name_valid(name))
		return -EINVAL;
	snprintf(cmd, sizeof(cmd), "delete table inet %s", name);
	err = nft_run(cmd, why, sizeof(why));
	if (err && strstr(why, "No such file or directory"))
		return 0; /* already gone */
	if (err)
		log_error("%s: delete table inet %s: %s", __func__, name, why);
	return err;
}
