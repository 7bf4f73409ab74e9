#!/usr/bin/env bash
# A private CA for a footfall deployment, and the certificates it signs (openssl, EC P-256).
#
#   scripts/make-certs.sh ca                          the CA: ca.crt (give it to every client and
#                                                     server), ca.key (keep it offline)
#   scripts/make-certs.sh server NAME HOST...         a server certificate for these DNS names / IPs:
#                                                     mosquitto (the names stores dial), influxdb
#   scripts/make-certs.sh client NAME CN              a device's or service's client certificate; the
#                                                     broker takes the CN as the MQTT user name:
#                                                     an edge device's CN is its STORE id (the ACL's
#                                                     pattern footfall/v1/%u/# binds it to its store),
#                                                     services use ingest, bridge, admin
#   scripts/make-certs.sh compose STORE [HOST...]     what docker-compose.yml mounts (deploy/tls/):
#                                                     the CA, mosquitto (mosquitto, localhost, HOST...),
#                                                     influxdb, ingest, and edge (CN STORE)
#
# Files go to $CERTS_DIR (default deploy/tls): NAME.crt and NAME.key (mode 0600). An existing CA is reused; an existing NAME is replaced (that is how to renew).
# Validity: $CA_DAYS (default 3650) for the CA, $DAYS (default 397) for the others.
#
# Rotation
#   A device or service certificate: run `client NAME CN` (or `server NAME HOST...`) again before
#   it expires, install the new NAME.crt / NAME.key where the old ones were, and restart that one
#   service (the broker and InfluxDB re-read their files when restarted). Nothing else changes: the
#   CN, and with it the ACL, stays the same.
#   The CA: make a new CA in another folder (CERTS_DIR=deploy/tls-2 scripts/make-certs.sh ca), and
#   give every client and server both CAs (cat deploy/tls/ca.crt deploy/tls-2/ca.crt > ca.crt;
#   --mqtt-ca, --influx-ca and the broker's cafile all take such a bundle). Then re-issue every
#   certificate from the new CA, device by device; when none signed by the old CA is left, drop it
#   from the bundle.
#   Revocation (a lost device before its certificate expires) is not handled by this script: renew
#   the certificates of the store's other devices from a new CA as above, or add a CRL to the broker
#   (mosquitto's crlfile) with your own CA tooling.
set -euo pipefail

dir=${CERTS_DIR:-deploy/tls}
days=${DAYS:-397}
ca_days=${CA_DAYS:-3650}

usage() { sed -n '2,18p' "$0" >&2; exit 2; }

new_key() {  # new_key PATH: an EC P-256 private key readable by its owner only
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1")
}

make_ca() {
  mkdir -p "$dir"
  if [ -f "$dir/ca.crt" ] && [ -f "$dir/ca.key" ]; then
    echo "using the CA in $dir/ca.crt"
    return
  fi
  new_key "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$ca_days" -subj "/O=footfall/CN=footfall private CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.crt"
  echo "wrote $dir/ca.crt and $dir/ca.key (keep ca.key offline)"
}

sign() {  # sign NAME SUBJECT EXTENSIONS: a key, a request and the certificate, signed by the CA
  local name=$1 subject=$2 extensions=$3
  [ -f "$dir/ca.key" ] || { echo "no CA in $dir: run '$0 ca' first" >&2; exit 1; }
  new_key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr"
  printf '%b' "$extensions" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$days" -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
  echo "wrote $dir/$name.crt and $dir/$name.key ($subject, $days days)"
}

common_ext='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n'

server() {  # server NAME HOST...
  local name=$1; shift
  [ $# -gt 0 ] || usage
  local san="" host
  for host in "$@"; do
    if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then san+="IP:$host,"; else san+="DNS:$host,"; fi
  done
  sign "$name" "/O=footfall/CN=$1" "${common_ext}extendedKeyUsage=serverAuth\nsubjectAltName=${san%,}\n"
}

client() {  # client NAME CN
  [ $# -eq 2 ] || usage
  sign "$1" "/O=footfall/CN=$2" "${common_ext}extendedKeyUsage=clientAuth\n"
}

[ $# -gt 0 ] || usage
command=$1; shift
case $command in
  ca) make_ca ;;
  server) make_ca; server "$@" ;;
  client) make_ca; client "$@" ;;
  compose)
    [ $# -ge 1 ] || usage
    store=$1; shift
    make_ca
    server mosquitto mosquitto localhost "$@"
    server influxdb influxdb localhost
    client ingest ingest
    client edge "$store"
    # Compose hands these files to the containers as secrets, with the owner and mode they have here.
    echo "docker compose: the footfall images run as uid 10001; let them read their keys, e.g."
    echo "  chown 10001 $dir/ingest.key $dir/edge.key"
    ;;
  *) usage ;;
esac
