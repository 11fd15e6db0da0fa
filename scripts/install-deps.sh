#!/usr/bin/env bash
# Installs (as root) or checks (as a normal user) every Debian package that the
# build, the daemons and the test suites need. Idempotent and fast when all is
# present: dpkg-query first, apt-get only for what is missing.
set -euo pipefail

PACKAGES=(
	# build
	make gcc clang llvm pkg-config bpftool libbpf-dev libxdp-dev
	libssl-dev libjson-c-dev libmariadb-dev libradcli-dev libradcli4
	libnetfilter-conntrack-dev libnftables-dev libmnl-dev libevent-dev libinih-dev
	libcmocka-dev libclang-rt-14-dev zlib1g-dev openssl
	# runtime tools used by the relay and the operator
	xdp-tools nftables conntrack iproute2 ethtool iputils-ping
	# test equipment
	mariadb-server mariadb-client freeradius freeradius-utils
	kamailio sip-tester tshark tcpdump linux-perf
	bison flex libxml2-dev python3 procps
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "missing packages: ${missing[*]} -- run 'sudo make deps'" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
