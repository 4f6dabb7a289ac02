"""Sealing and opening a subject's records and interaction payloads.

Every ciphertext is bound (AES-GCM associated data) to the tenant, the subject and its slot,
so a ciphertext copied into another row or tenant fails to open instead of leaking.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pledge.core.errors import InvalidInput
from pledge.crypto.aead import blind_index, seal, unseal
from pledge.crypto.keystore import KeyStore
from pledge.subjects.identity import IdentityKind


def record_aad(tenant_id: uuid.UUID, subject_id: uuid.UUID, key_class: str) -> bytes:
    return b"pledge:record:v1|" + tenant_id.bytes + subject_id.bytes + key_class.encode()


def interaction_aad(
    tenant_id: uuid.UUID, subject_id: uuid.UUID, interaction_id: uuid.UUID
) -> bytes:
    return interaction_aad_prefix(tenant_id, subject_id) + interaction_id.bytes


def interaction_aad_prefix(tenant_id: uuid.UUID, subject_id: uuid.UUID) -> bytes:
    """What the AAD of every interaction of one subject starts with (its id follows)."""
    return b"pledge:interaction:v1|" + tenant_id.bytes + subject_id.bytes


@dataclass(frozen=True)
class StoredField:
    name: str
    value: str
    category: str
    source: str
    retention_class: str
    updated_at: datetime

    def as_doc(self) -> dict[str, str]:
        return {
            "v": self.value,
            "c": self.category,
            "s": self.source,
            "t": self.updated_at.isoformat(),
        }

    @staticmethod
    def from_doc(name: str, key_class: str, doc: dict[str, str]) -> StoredField:
        return StoredField(
            name=name,
            value=doc["v"],
            category=doc["c"],
            source=doc["s"],
            retention_class=key_class,
            updated_at=datetime.fromisoformat(doc["t"]),
        )


def seal_record(
    key: bytes,
    tenant_id: uuid.UUID,
    subject_id: uuid.UUID,
    key_class: str,
    fields: dict[str, StoredField],
) -> bytes:
    # orjson: the same compact UTF-8 JSON as `json.dumps(..., ensure_ascii=False)` for these
    # strings, at a tenth of the time (an import seals one record per subject).
    plaintext = orjson.dumps({"f": {name: f.as_doc() for name, f in fields.items()}})
    return seal(AESGCM(key), plaintext, record_aad(tenant_id, subject_id, key_class))


def open_record(
    key: bytes, tenant_id: uuid.UUID, subject_id: uuid.UUID, key_class: str, sealed: bytes
) -> dict[str, StoredField]:
    doc = orjson.loads(unseal(AESGCM(key), sealed, record_aad(tenant_id, subject_id, key_class)))
    return {name: StoredField.from_doc(name, key_class, f) for name, f in doc["f"].items()}


def seal_payload(
    key: bytes,
    tenant_id: uuid.UUID,
    subject_id: uuid.UUID,
    interaction_id: uuid.UUID,
    payload: dict[str, Any],
) -> bytes:
    try:
        # The exact text every export copies as it is: it must be valid JSON.
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        # JSON may escape a lone UTF-16 surrogate (`"\ud800"`); UTF-8 cannot hold one.
        plaintext = text.encode()
    except UnicodeEncodeError:
        raise InvalidInput(
            "a payload may not hold a lone UTF-16 surrogate (\\ud800-\\udfff)"
        ) from None
    except ValueError:
        raise InvalidInput("a payload may hold only finite numbers (no NaN or Infinity)") from None
    return seal(AESGCM(key), plaintext, interaction_aad(tenant_id, subject_id, interaction_id))


def open_payload_text(
    aead: AESGCM, aad_prefix: bytes, interaction_id: uuid.UUID, sealed: bytes
) -> str:
    """The payload as the compact JSON text it was sealed as, not parsed (`aad_prefix` from
    `interaction_aad_prefix`): for writers that copy it into a document as it is."""
    return unseal(aead, sealed, aad_prefix + interaction_id.bytes).decode()


class IdentityIndexer:
    """Blind indexes for one tenant: keyed hash of kind and normal form, never the value."""

    def __init__(self, keystore: KeyStore, tenant_id: uuid.UUID) -> None:
        self._key = keystore.derived_key(tenant_id, "blind-index")

    def index(self, kind: IdentityKind, normalised: str) -> bytes:
        return blind_index(self._key, f"{kind.value}:{normalised}")


def note_aad(tenant_id: uuid.UUID, subject_id: uuid.UUID, context: str) -> bytes:
    return b"pledge:note:v1|" + tenant_id.bytes + subject_id.bytes + context.encode()
