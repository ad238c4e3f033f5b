#!/bin/sh
# make-test-ca.sh DIR [SAN]... — a throw-away certificate authority and a
# server certificate signed by it, for running vb-cozesim behind TLS in tests:
#   DIR/ca.pem          the test CA's certificate (what a client trusts: session.ca_file)
#   DIR/server.pem      the server certificate (for --tls-cert)
#   DIR/server.key      its private key (for --tls-key)
# SAN defaults to "DNS:localhost IP:127.0.0.1". A DIR that already has a CA
# keeps it: with CERT_NAME=other in the environment a second call writes
# DIR/other.pem and DIR/other.key, signed by the same CA (e.g. a certificate
# for the wrong host name). Another DIR makes an unrelated CA (an "unknown CA"
# for a client that trusts the first).
# Needs the openssl CLI. Keys are 2048-bit RSA, valid for 2 days.
set -eu
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: make-test-ca.sh DIR [SAN]...   (SAN like DNS:localhost or IP:127.0.0.1)"
  echo "writes DIR/ca.pem (kept if DIR has a CA), DIR/\${CERT_NAME:-server}.pem and .key"
  [ $# -ge 1 ] && exit 0 || exit 2
fi
dir=$1
shift
[ $# -eq 0 ] && set -- DNS:localhost IP:127.0.0.1
san=$(printf '%s,' "$@")
san=${san%,}
mkdir -p "$dir"
cd "$dir"
umask 077
name=${CERT_NAME:-server}
if [ ! -f ca.pem ] || [ ! -f ca.key ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=voicebus test CA $$" \
    -keyout ca.key -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
openssl req -newkey rsa:2048 -nodes -subj "/CN=vb-cozesim" -keyout "$name.key" -out "$name.csr" 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
  "$san" > "$name.ext"
openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile "$name.ext" -out "$name.pem" 2>/dev/null
rm -f "$name.csr" "$name.ext" ca.srl
chmod 644 ca.pem "$name.pem"
