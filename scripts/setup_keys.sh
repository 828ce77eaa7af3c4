#!/usr/bin/env bash
# Generates the authorization server's RSA signing key pair with openssl into
# keys/ (or $1): private_key.pem (PKCS#8, mode 0600) and public_key.pem.
# Idempotent: an existing private key is kept.
set -euo pipefail
dir="${1:-keys}"
mkdir -p "$dir"
chmod 700 "$dir"
priv="$dir/private_key.pem"
pub="$dir/public_key.pem"
if [ -s "$priv" ]; then
  echo "keys: $priv exists, kept"
else
  umask 077
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$priv" 2>/dev/null
  chmod 600 "$priv"
  echo "keys: generated $priv"
fi
openssl pkey -in "$priv" -pubout -out "$pub" 2>/dev/null
chmod 644 "$pub"
