"""Data categories: the Fides dotted taxonomy (`user.contact.email`…), shipped with Pledge.

A tenant may extend a known category with more segments (`user.financial.invoice`), as the
Fides project recommends; anything else is rejected so data maps stay exchangeable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_SEGMENTS = re.compile(r"^user(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    sensitive: bool


@cache
def taxonomy() -> dict[str, Category]:
    raw = json.loads(
        resources.files("pledge.subjects").joinpath("data/categories.json").read_text()
    )
    return {c["key"]: Category(c["key"], c["label"], c["sensitive"]) for c in raw["categories"]}


@cache
def check_category(key: str) -> str | None:
    """None when `key` is acceptable, else the reason it is not."""
    if not _SEGMENTS.match(key):
        return "must be a dotted Fides category such as user.contact.email"
    known = taxonomy()
    if key in known:
        return None
    parts = key.split(".")
    for n in range(len(parts) - 1, 1, -1):
        if ".".join(parts[:n]) in known:
            return None
    return "is not in the Fides taxonomy and does not extend a category that is"


def describe(key: str) -> Category:
    known = taxonomy()
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        found = known.get(".".join(parts[:n]))
        if found is not None:
            return Category(key, found.label if n == len(parts) else key, found.sensitive)
    return Category(key, key, False)
