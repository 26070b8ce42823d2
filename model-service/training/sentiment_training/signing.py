"""Sign a trained model: an ed25519 signature over the sha256 of the artifact and of its card.

The private key is generated locally on first use and never leaves the machine (``.keys/`` is
git-ignored; the image build reads it as a BuildKit secret, never a layer). The public key is the
service's trust anchor: it ships apart from the model directory (in the image, or mounted), and the
service refuses a model whose signature is missing, made with another key, or over other bytes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sentiment_service.signature import SIGNATURE_FILE, SIGNED_FILES, key_id, signed_payload


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The private key at ``path`` (PKCS#8 PEM), created (mode 0600) when absent."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SystemExit(f"{path} is not an ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return key


def public_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(model_dir: Path, key: Ed25519PrivateKey) -> dict:
    digests = {name: hashlib.sha256((model_dir / name).read_bytes()).hexdigest() for name in SIGNED_FILES}
    document = {
        "algorithm": "ed25519",
        "key_id": key_id(public_key_pem(key)),
        "sha256": digests,
        "signature": base64.b64encode(key.sign(signed_payload(digests))).decode(),
    }
    (model_dir / SIGNATURE_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return document


def sign_with_key_file(model_dir: Path, key_path: Path, public_key_out: Path | None = None) -> dict:
    """Sign with the key at ``key_path`` (created when absent); write its public key to ``public_key_out``
    (default: beside the private key, ``.pub``)."""
    key = load_or_create_key(key_path)
    out = public_key_out or key_path.with_suffix(".pub")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(public_key_pem(key))
    return sign(model_dir, key)


def main(argv: list[str] | None = None) -> int:
    """Sign a trained model directory (python -m sentiment_training.signing DIR --signing-key KEY)."""
    parser = argparse.ArgumentParser(description="Sign a trained model directory (its artifact and its card).")
    parser.add_argument("model_dir", type=Path, help="the trained model's directory")
    parser.add_argument(
        "--signing-key", type=Path, default=Path(".keys/model-signing.key"), help="ed25519 key (created when absent)"
    )
    parser.add_argument("--public-key-out", type=Path, help="where the public key goes (default: beside the key)")
    args = parser.parse_args(argv)
    signed = sign_with_key_file(args.model_dir, args.signing_key, args.public_key_out)
    print(f"{args.model_dir}: signed by key {signed['key_id']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
