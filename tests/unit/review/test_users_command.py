"""``vhub users add``: the password from standard input, the role and agency scope."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vehiclehub.cli import main
from vehiclehub.config import load_settings
from vehiclehub.review.auth import check_password, user_named
from vehiclehub.store import connect
from vehiclehub.store.review import review_users


def test_users_add_reads_the_password_from_stdin(
    hub_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["users", "add", "wang", "--role", "operator", "--agency", "police"]
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-enough\n"))
    assert main([*args, "--agency", "tax", "--config", str(hub_config)]) == 0
    assert capsys.readouterr().out.strip() == "user wang: operator, police, tax"
    engine = connect(load_settings(hub_config).database_url)
    with engine.connect() as conn:
        assert user_named(conn, "wang") is not None
        stored = conn.execute(review_users.select()).one()
        assert stored.password_hash.startswith("scrypt$") and "s3cret" not in stored.password_hash
        assert check_password("s3cret-enough", stored.password_hash)
        assert not check_password("s3cret-enougH", stored.password_hash)
    engine.dispose()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main([*args, "--config", str(hub_config)]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
