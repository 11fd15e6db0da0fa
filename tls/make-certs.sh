#!/bin/bash
# Makes a throw-away CA and the certificates media-dispatcher, media-relay
# and a management client need, for tests, `make run` and demos (see
# tls/README.md for production). Uses only the openssl command line tool.
#
#   make-certs.sh DIR [--days N] [--force]
#       ca.pem ca.key crl.pem dispatcher.crt/.key relay.crt/.key
#       client.crt/.key in DIR; existing files are kept unless --force.
#   make-certs.sh DIR --cert NAME [--cn CN | --subj /O=../CN=..] [--days N] [--force]
#       one more certificate NAME.crt/.key from DIR's CA (e.g. relay2).
#   make-certs.sh DIR --revoke NAME
#       revokes NAME.crt and rewrites crl.pem.
#
# The CA's database (openssl ca) lives in DIR/ca-db. Keys are mode 0600.
set -euo pipefail

prog=${0##*/}
ORG="MediaProxy Test"
days=365
force=0
dir=""
cert_name=""
cert_subj=""
revoke_name=""

die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

usage() {
	sed -n '6,13s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

check_name() {
	[[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad certificate name '$1'"
	case $1 in ca|crl) die "'$1' is reserved" ;; esac
}

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--days) [ $# -ge 2 ] || usage; days=$2; shift ;;
		--force) force=1 ;;
		--cert) [ $# -ge 2 ] || usage; cert_name=$2; shift ;;
		--cn) [ $# -ge 2 ] || usage; cert_subj="/O=$ORG/CN=$2"; shift ;;
		--subj) [ $# -ge 2 ] || usage; cert_subj=$2; shift ;;
		--revoke) [ $# -ge 2 ] || usage; revoke_name=$2; shift ;;
		-h|--help) usage ;;
		-*) die "unknown option $1" ;;
		*) [ -z "$dir" ] || usage; dir=$1 ;;
		esac
		shift
	done
	[ -n "$dir" ] || usage
	[[ $days =~ ^[1-9][0-9]{0,4}$ ]] || die "--days wants a positive number of days"
	[ -z "$cert_name" ] || check_name "$cert_name"
	[ -z "$revoke_name" ] || check_name "$revoke_name"
	if [ -n "$cert_subj" ] && [ -z "$cert_name" ]; then
		die "--cn/--subj go with --cert NAME"
	fi
}

# openssl prints progress on stderr even when all is well: keep it in a
# log and show it only when a step fails.
run_openssl() {
	if ! openssl "$@" >ca-db/last.log 2>&1; then
		cat ca-db/last.log >&2
		die "openssl $1 failed"
	fi
}

write_config() {
	cat >ca-db/openssl.cnf <<EOF
# Written by $prog: a minimal 'openssl ca' set-up for test certificates.
[ ca ]
default_ca = test_ca

[ test_ca ]
database = ca-db/index.txt
new_certs_dir = ca-db/certs
serial = ca-db/serial
crlnumber = ca-db/crlnumber
certificate = ca.pem
private_key = ca.key
default_md = sha256
default_days = $days
default_crl_days = $days
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = yes

[ policy_any ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
emailAddress = optional

[ req ]
distinguished_name = req_dn
[ req_dn ]

[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

# Every daemon certificate is used both ways: the dispatcher's serves
# relays and management clients, the relay's is a client certificate.
[ leaf_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer

[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF
}

new_key() {
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$1" 2>ca-db/last.log) || { cat ca-db/last.log >&2; die "key $1 failed"; }
	chmod 600 "$1"
}

make_ca() {
	rm -rf ca-db
	mkdir -p ca-db/certs
	: >ca-db/index.txt
	echo 1000 >ca-db/serial
	echo 1000 >ca-db/crlnumber
	write_config
	new_key ca.key
	run_openssl req -x509 -new -key ca.key -subj "/O=$ORG/CN=$ORG CA" -days "$days" \
		-config ca-db/openssl.cnf -extensions ca_ext -out ca.pem
	chmod 644 ca.pem
	say "created CA $dir/ca.pem"
}

make_crl() {
	run_openssl ca -batch -config ca-db/openssl.cnf -gencrl -crldays "$days" \
		-crlexts crl_ext -out crl.pem
	chmod 644 crl.pem
}

# make_cert NAME SUBJECT: NAME.key + NAME.crt signed by the CA.
make_cert() {
	local name=$1 subj=$2

	if [ $force = 0 ] && [ -s "$name.crt" ] && [ -s "$name.key" ]; then
		return 0
	fi
	new_key "$name.key"
	run_openssl req -new -key "$name.key" -subj "$subj" -config ca-db/openssl.cnf \
		-out "ca-db/$name.csr"
	run_openssl ca -batch -config ca-db/openssl.cnf -extensions leaf_ext -days "$days" \
		-preserveDN -notext -in "ca-db/$name.csr" -out "$name.crt"
	chmod 644 "$name.crt"
	rm -f "ca-db/$name.csr"
	say "created $dir/$name.crt ($subj)"
}

revoke_cert() {
	local name=$1 serial

	[ -s "$name.crt" ] || die "no $dir/$name.crt to revoke"
	serial=$(openssl x509 -in "$name.crt" -noout -serial) || die "cannot read $name.crt"
	serial=${serial#serial=}
	if awk -F'\t' -v s="$serial" '$1 == "R" && $4 == s { found = 1 } END { exit !found }' \
		ca-db/index.txt; then
		say "$name.crt (serial $serial) is already revoked"
	else
		run_openssl ca -batch -config ca-db/openssl.cnf -revoke "$name.crt" \
			-crl_reason keyCompromise
		say "revoked $dir/$name.crt (serial $serial)"
	fi
	make_crl
}

main() {
	parse_args "$@"
	command -v openssl >/dev/null || die "openssl command not found"
	if [ -n "$revoke_name$cert_name" ]; then
		[ -d "$dir" ] || die "no CA in $dir: run $prog $dir first"
	else
		mkdir -p "$dir"
	fi
	cd "$dir"
	dir=$(pwd)
	# Another run on the same DIR (parallel make targets) waits for this one.
	if command -v flock >/dev/null; then
		exec 9>.make-certs.lock
		flock 9
	fi

	local new_ca=0
	if [ $force = 1 ] && [ -z "$cert_name" ] && [ -z "$revoke_name" ]; then
		rm -f ca.pem ca.key crl.pem {dispatcher,relay,client}.{crt,key}
	fi
	if [ -e ca.pem ] || [ -e ca.key ]; then
		# Never overwrite a CA we did not make (a real one, whose key
		# lives elsewhere): only --force replaces it.
		if [ ! -s ca.pem ] || [ ! -s ca.key ] || [ ! -f ca-db/openssl.cnf ]; then
			die "$dir holds a CA not made by $prog (or half of one); use --force to replace it"
		fi
	else
		[ -z "$revoke_name$cert_name" ] || die "no CA in $dir: run $prog $dir first"
		make_ca
		new_ca=1
	fi

	if [ -n "$revoke_name" ]; then
		revoke_cert "$revoke_name"
		return
	fi
	if [ -n "$cert_name" ]; then
		make_cert "$cert_name" "${cert_subj:-/O=$ORG/CN=$cert_name}"
		return
	fi
	# A new CA invalidates whatever certificates were here before.
	[ $new_ca = 0 ] || force=1
	make_cert dispatcher "/O=$ORG/CN=dispatcher"
	make_cert relay "/O=$ORG/CN=relay"
	make_cert client "/O=$ORG/CN=management client"
	if [ $force = 1 ] || [ ! -s crl.pem ]; then
		make_crl
		say "created empty CRL $dir/crl.pem (valid $days days)"
	fi
}

main "$@"
