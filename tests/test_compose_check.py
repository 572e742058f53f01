"""tools/compose-check: Compose's own loader (compose-go) accepts the real file, rejects a bad one.

It is built once with the Go toolchain (CI installs Go; the module comes from the Go proxy).
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "compose-check"


@pytest.fixture(scope="module")
def compose_check(tmp_path_factory):
    if shutil.which("go") is None:
        pytest.skip("Go is not installed (CI installs it: .ci/run)")
    binary = tmp_path_factory.mktemp("go") / "compose-check"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=TOOL, check=True, timeout=600)
    return binary


def run(binary, compose_file: Path, env_file: Path = ROOT / ".env.example"):
    return subprocess.run(
        [str(binary), "-file", str(compose_file), "-env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_workshop_file_loads_in_every_profile(compose_check):
    result = run(compose_check, ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stderr
    for profiles in ("[]", "[live]", "[stream]", "[*]"):
        assert f"profiles {profiles}" in result.stdout
    assert "without an env file compose refuses" in result.stdout


def test_a_file_compose_would_reject_fails(compose_check):
    result = run(compose_check, ROOT / "tests" / "data" / "compose-rejected.yml")
    assert result.returncode == 1
    assert "restart_policy" in result.stderr or "redpanda" in result.stderr, result.stderr


def test_a_file_with_a_default_password_fails(compose_check, tmp_path):
    """Loading must fail without .env: a file that silently defaults the credentials does not."""
    text = (ROOT / "docker-compose.yml").read_text().replace(":?copy .env.example to .env}", ":-learning}")
    (tmp_path / "docker-compose.yml").write_text(text)
    for folder in ("docker", "labkit", "notebooks", "exercises", "solutions"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    result = run(compose_check, tmp_path / "docker-compose.yml")
    assert result.returncode == 1 and "loads without an env file" in result.stderr, result.stderr
