#!/usr/bin/env python3
"""Generate the authorization server's RSA signing key pair into keys/.

The same job as setup_keys.sh, for machines without openssl: writes
private_key.pem (PKCS#8, mode 0600) and public_key.pem. An existing private key
is kept. Needs python3-cryptography.
"""
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def main() -> int:
    directory = sys.argv[1] if len(sys.argv) > 1 else "keys"
    os.makedirs(directory, mode=0o700, exist_ok=True)
    priv_path = os.path.join(directory, "private_key.pem")
    pub_path = os.path.join(directory, "public_key.pem")
    if os.path.exists(priv_path) and os.path.getsize(priv_path) > 0:
        with open(priv_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        print(f"keys: {priv_path} exists, kept")
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.chmod(priv_path, 0o600)
        print(f"keys: generated {priv_path}")
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with open(pub_path, "wb") as f:
        f.write(pub)
    os.chmod(pub_path, 0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main())
