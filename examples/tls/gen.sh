#!/bin/sh
# DEMO ONLY — throwaway certificates for the examples in doc/tls.md and the demo. The private
# keys are public (they are in this repository): never use them for anything real.
# Regenerate with: examples/tls/gen.sh   (writes into examples/tls/)
set -eu
cd "$(dirname "$0")"
ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@"; }
rsa() { openssl req -newkey rsa:2048 -nodes "$@"; }
ec -x509 -days 3650 -subj "/CN=Weft demo CA (DEMO ONLY)" -keyout ca.key -out ca.crt 2>/dev/null
leaf() { # name cn san serial [key type: ec (default) or rsa]
	${5:-ec} -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "$4" -days 3650 \
		-extfile "$1.ext" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}
leaf server localhost "DNS:localhost,DNS:*.example.com,IP:127.0.0.1" 1
leaf client client "URI:spiffe://cluster.local/ns/default/sa/client" 2
leaf server_rsa localhost "DNS:localhost,DNS:*.example.com,IP:127.0.0.1" 3 rsa
leaf api api.internal "DNS:api.internal" 4
rm -f ca.key
