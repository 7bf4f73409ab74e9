#!/bin/sh
# Writes the broker's password file from the environment (hashed by mosquitto_passwd), then starts
# mosquitto. Each edge store's user name is its store id (see acl: pattern footfall/v1/%u/#).
set -eu
# The paths are overridable so the tests can run this very script against a real mosquitto.
passwd=${MOSQUITTO_PASSWD_FILE:-/mosquitto/data/passwd}
conf=${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}
: > "$passwd"
chmod 0700 "$passwd"
add() { mosquitto_passwd -b "$passwd" "$1" "$2"; }
add ingest "${MQTT_INGEST_PASSWORD:?set MQTT_INGEST_PASSWORD in .env}"
add admin "${MQTT_ADMIN_PASSWORD:?set MQTT_ADMIN_PASSWORD in .env}"
add bridge "${MQTT_BRIDGE_PASSWORD:?set MQTT_BRIDGE_PASSWORD in .env}"
add "${FOOTFALL_STORE:?set FOOTFALL_STORE in .env}" "${MQTT_EDGE_PASSWORD:?set MQTT_EDGE_PASSWORD in .env}"
chown mosquitto:mosquitto "$passwd" 2>/dev/null || true
exec mosquitto -c "$conf"
