"""Each service gets only the secrets it needs; `mooseng switchover` finds the token in .env."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mooseng import ctl

REPO = Path(__file__).resolve().parents[2]
SECRETS = ("MOOSENG_RAFT_PASSWORD", "MOOSENG_API_TOKEN", "MOOSENG_GRAFANA_PASSWORD")
MASTER_SECRETS = ("MOOSENG_RAFT_PASSWORD", "MOOSENG_API_TOKEN")
# The secrets each service may see (in its environment or by interpolation); none otherwise.
ALLOWED = {"grafana": {"MOOSENG_GRAFANA_PASSWORD"}}


def env_files(service: dict) -> list[str]:
    files = service.get("env_file") or []
    return [files] if isinstance(files, str) else list(files)


def test_each_service_gets_only_the_secrets_it_needs() -> None:
    """Masters get .env.masters (their two secrets), chunkservers and clients .env.public,
    and nobody the whole .env; grafana alone interpolates its password."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, service in services.items():
        environment = service.get("environment") or {}
        named = {key for key in SECRETS
                 if key in environment or f"${{{key}" in yaml.safe_dump(environment)}
        assert named <= ALLOWED.get(name, set()), name  # nothing inlined or interpolated
        assert ".env" not in env_files(service), name
        if name.startswith("master-"):
            assert env_files(service) == [".env.masters"], name
        elif name.startswith(("chunkserver-", "client-")):
            assert env_files(service) == [".env.public"], name
        else:
            assert env_files(service) == [], name


def test_make_env_writes_a_public_and_a_masters_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    # Values no generated secret (hex) can contain, so that "not copied" cannot fail by chance.
    env.write_text("MOOSENG_TTL=1.2\nexport OTHER_TOKEN=not-hex-zz\nMOOSENG_S3_SECRET_KEY=k\n"
                   "MY_PASSWORD_FILE=x\n")
    subprocess.run(["bash", str(REPO / "scripts" / "make-env.sh"), str(env)], check=True,
                   capture_output=True)
    private = env.read_text()
    values = dict(line.split("=", 1) for line in private.splitlines() if line.startswith("MOOSENG_"))
    for key in SECRETS:
        assert values[key], key
    public = (tmp_path / ".env.public").read_text()
    masters = (tmp_path / ".env.masters").read_text()
    for text in (public, masters):
        assert "MOOSENG_TTL=1.2" in text and "COMPOSE_PROJECT_NAME=mooseng" in text
    for key in SECRETS:
        assert values[key] not in public, key
        assert (f"{key}={values[key]}\n" in masters) == (key in MASTER_SECRETS), key
    for word in ("PASSWORD", "TOKEN", "SECRET"):
        assert word not in public.replace("without its secrets", "")
    assert [line.split("=")[0] for line in masters.splitlines()
            if any(word in line for word in ("PASSWORD", "TOKEN", "SECRET"))
            and not line.startswith("#")] == list(MASTER_SECRETS)
    assert "not-hex-zz" not in masters and "=k" not in masters and "=x" not in masters
    assert (tmp_path / ".env.masters").stat().st_mode & 0o077 == 0  # secrets: owner only
    subprocess.run(["bash", str(REPO / "scripts" / "make-env.sh"), str(env)], check=True,
                   capture_output=True)
    assert env.read_text() == private  # existing values never change
    assert (tmp_path / ".env.masters").read_text() == masters


def test_generated_env_files_are_ignored_by_git() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    for name in (".env", ".env.public", ".env.masters"):
        assert f"/{name}" in ignored, name


@pytest.mark.parametrize(("line", "value"), [
    ("MOOSENG_API_TOKEN=abc", "abc"), ("MOOSENG_API_TOKEN='abc'", "abc"),
    ('export MOOSENG_API_TOKEN="abc"', "abc")])
def test_switchover_token_comes_from_dotenv(tmp_path: Path, line: str, value: str) -> None:
    (tmp_path / ".env").write_text(f"# made by make env\nOTHER=1\n{line}\n")
    assert ctl.api_token({}, [tmp_path / "missing", tmp_path / ".env"]) == value
    assert ctl.api_token({"MOOSENG_API_TOKEN": "env"}, [tmp_path / ".env"]) == "env"
    assert ctl.api_token({}, [tmp_path / "missing"]) == ""


def test_switchover_sends_the_dotenv_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("MOOSENG_API_TOKEN=from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MOOSENG_API_TOKEN", raising=False)
    sent = {}

    def fake_fetch(url, timeout=2.0, data=None, headers=None):
        sent.update(headers or {})
        return 202, {"node": "master-1", "from": "master-1", "to": "master-2"}

    monkeypatch.setattr(ctl, "fetch", fake_fetch)
    assert ctl.switchover_main(["--to", "master-2", "--url", "http://x"]) == 0
    assert sent["Authorization"] == "Bearer from-dotenv"


def test_clients_get_only_what_fuse_needs() -> None:
    """/dev/fuse and SYS_ADMIN; no privileged mode, no apparmor:unconfined (AppArmor is not
    active on the measurement host; where it is, docker-compose.apparmor.yml names the
    narrow profile)."""
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    clients = {n: s for n, s in services.items() if n.startswith("client-")}
    assert len(clients) == 3
    for name, service in clients.items():
        assert service["devices"] == ["/dev/fuse:/dev/fuse"], name
        assert service["cap_add"] == ["SYS_ADMIN"], name
        assert not service.get("privileged") and not service.get("security_opt"), name
    for name, service in services.items():
        if not name.startswith("client-"):
            assert not service.get("cap_add") and not service.get("devices"), name
    override = yaml.safe_load((REPO / "docker-compose.apparmor.yml").read_text())["services"]
    assert {n: s["security_opt"] for n, s in override.items()} == {
        n: ["apparmor:mooseng-fuse-client"] for n in clients}
    profile = (REPO / "images" / "mooseng" / "apparmor" / "mooseng-fuse-client").read_text()
    assert "profile mooseng-fuse-client" in profile and "mount fstype=fuse.mfs -> /mnt/**," in profile
