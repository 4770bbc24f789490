"""The desk's unit tests hash passwords at a low scrypt cost: the cost is part of each
stored hash (checked as stored), and production's is :data:`vehiclehub.review.auth.SCRYPT`."""

from __future__ import annotations

import pytest

from vehiclehub.review import auth


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "SCRYPT", (2**10, 8, 1))
