"""The service loads only a model signed by the trusted key, over exactly the bytes it loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from svc import SIGNING_KEY, TRUSTED_PUBLIC_KEY, start_server

from sentiment_service.model import ModelLoadError
from sentiment_service.signature import verify_signature
from sentiment_training import signing
from sentiment_training.signing import public_key_pem, sign, sign_with_key_file


def copy_model(model_dir: Path, to: Path) -> Path:
    to.mkdir()
    for name in ("model.json", "model_card.json", "signature.json"):
        shutil.copy(model_dir / name, to / name)
    return to


def test_the_trained_model_verifies_with_the_trusted_key(model_dir) -> None:
    assert len(verify_signature(model_dir, TRUSTED_PUBLIC_KEY)) == 16


def test_an_unsigned_model_is_refused(model_dir, tmp_path) -> None:
    copy = copy_model(model_dir, tmp_path / "m")
    (copy / "signature.json").unlink()
    with pytest.raises(ModelLoadError, match="not signed"):
        verify_signature(copy, TRUSTED_PUBLIC_KEY)


def test_an_unsigned_model_is_signed_by_the_signing_command(model_dir, tmp_path) -> None:
    # The image trains unsigned in a stage of its own, then signs with this command and the build's key.
    copy = copy_model(model_dir, tmp_path / "m")
    (copy / "signature.json").unlink()
    key, public = tmp_path / "keys" / "build.key", tmp_path / "trust" / "build.pub"
    assert signing.main([str(copy), "--signing-key", str(key), "--public-key-out", str(public)]) == 0
    assert verify_signature(copy, public) == json.loads((copy / "signature.json").read_text())["key_id"]
    with pytest.raises(ModelLoadError, match="does not verify"):
        verify_signature(copy, TRUSTED_PUBLIC_KEY)


def test_a_model_signed_by_another_key_is_refused(model_dir, tmp_path) -> None:
    copy = copy_model(model_dir, tmp_path / "m")
    sign(copy, Ed25519PrivateKey.generate())
    with pytest.raises(ModelLoadError, match="does not verify"):
        verify_signature(copy, TRUSTED_PUBLIC_KEY)


def test_a_rewritten_card_under_a_valid_signature_is_refused(model_dir, tmp_path) -> None:
    copy = copy_model(model_dir, tmp_path / "m")
    card = json.loads((copy / "model_card.json").read_text())
    card["metrics_heldout"]["accuracy"] = 0.99
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=r"model_card\.json is not the file that was signed"):
        verify_signature(copy, TRUSTED_PUBLIC_KEY)


def test_no_trusted_key_means_no_model(model_dir) -> None:
    with pytest.raises(ModelLoadError, match="no trusted public key"):
        verify_signature(model_dir, None)


def test_signing_creates_a_private_key_only_its_owner_reads(tmp_path, model_dir) -> None:
    copy = copy_model(model_dir, tmp_path / "m")
    key = tmp_path / "keys" / "k.key"
    document = sign_with_key_file(copy, key)
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.with_suffix(".pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert verify_signature(copy, key.with_suffix(".pub")) == document["key_id"]
    # The same key again: the existing one is used, never replaced.
    assert sign_with_key_file(copy, key)["key_id"] == document["key_id"]
    assert public_key_pem(Ed25519PrivateKey.generate()) != key.with_suffix(".pub").read_bytes()


def test_the_service_refuses_a_model_signed_by_another_key(model_dir, tmp_path) -> None:
    copy = copy_model(model_dir, tmp_path / "m")
    sign(copy, Ed25519PrivateKey.generate())
    server = start_server(copy, tmp_path / "log", wait_ready=False)
    try:
        with server.client() as http:
            ready = http.get("/ready")
        assert ready.status_code == 503
        assert "does not verify with the trusted public key" in ready.json()["reason"]
    finally:
        server.stop()
    assert SIGNING_KEY.exists()
