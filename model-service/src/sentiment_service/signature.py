"""Verify a model's signature before anything of it is loaded (training signs: sentiment_training.signing).

The trusted public key comes from the service's configuration (``SENTIMENT_MODEL_PUBLIC_KEY_FILE``),
never from the model directory: whoever can rewrite the model cannot also choose the key it is checked
with. A missing signature, another key or other bytes: the model is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .model import ARTIFACT_FILE, CARD_FILE, ModelLoadError

SIGNATURE_FILE = "signature.json"
SIGNED_FILES = (ARTIFACT_FILE, CARD_FILE)


def signed_payload(digests: dict[str, str]) -> bytes:
    """The exact bytes signed and verified: the files' sha256 digests as canonical JSON."""
    return json.dumps(digests, sort_keys=True, separators=(",", ":")).encode()


def key_id(public_pem: bytes) -> str:
    """Short fingerprint of a public key (PEM): the sha256's first 16 hex digits."""
    return hashlib.sha256(public_pem).hexdigest()[:16]


def verify_signature(model_dir: Path, public_key_file: Path | None) -> str:
    """The key id that signed the model in ``model_dir``; ModelLoadError unless it verifies."""
    if public_key_file is None:
        raise ModelLoadError("no trusted public key to verify the model with (SENTIMENT_MODEL_PUBLIC_KEY_FILE)")
    try:
        public_pem = public_key_file.read_bytes()
        key = serialization.load_pem_public_key(public_pem)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the trusted public key {public_key_file.name}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ModelLoadError(f"the trusted public key {public_key_file.name} is not an ed25519 key")
    try:
        document = json.loads((model_dir / SIGNATURE_FILE).read_text(encoding="utf-8"))
        digests, signature = document["sha256"], base64.b64decode(document["signature"], validate=True)
    except OSError as exc:
        raise ModelLoadError(f"the model is not signed ({SIGNATURE_FILE}: {exc.strerror})") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{SIGNATURE_FILE} is malformed: {exc}") from exc
    try:
        key.verify(signature, signed_payload(digests))
    except InvalidSignature as exc:
        raise ModelLoadError("the model's signature does not verify with the trusted public key") from exc
    for name in SIGNED_FILES:
        try:
            actual = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
        except OSError as exc:
            raise ModelLoadError(f"cannot read {name}: {exc.strerror}") from exc
        if digests.get(name) != actual:
            raise ModelLoadError(f"{name} is not the file that was signed")
    return key_id(public_pem)
