"""Does the Docker workshop exist for both amd64 (most laptops) and arm64 (Apple Silicon)?

Two checks, from the pinned versions, with no Docker engine:

* **Images** (offline): every image docker-compose.yml pulls and every ``FROM`` of the lab's
  Dockerfile must appear, with exactly its tag, in ``tools/data/image-platforms.csv``, listing
  both ``linux/amd64`` and ``linux/arm64``. That table is *recorded*, with the date and where
  each row comes from: registries are not reachable from CI, so the table, not the registry, is
  what is checked. A new pin needs a new row, checked by hand (``docker buildx imagetools
  inspect <image>`` lists an image's platforms).
* **Wheels** (PyPI, for real): the packages the lab image installs, i.e. pyproject's
  dependencies and everything they require, at the versions resolved in this environment
  (``importlib.metadata``, markers evaluated for Linux and CPython 3.11, the image's Python).
  For each, PyPI's JSON API lists the files of that version. A package with compiled wheels
  must have one for ``x86_64`` and one for ``aarch64`` Linux that CPython 3.11 can install; a
  package with only pure-Python files installs anywhere; an sdist-only package would be compiled
  in the image, which has no compiler, so it must be on ``PURE_PYTHON_SDISTS``.

    python tools/multiarch_check.py [--images-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
TABLE = Path(__file__).with_name("data") / "image-platforms.csv"
ARCHES = ("amd64", "arm64")
WHEEL_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
PYTHON = (3, 11)  # the lab image's Python (docker/lab/Dockerfile: python:3.11-slim-...)
GLIBC = (2, 36)  # Debian bookworm's, the image's base: a manylinux_2_X wheel needs X <= 36
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
# Published as an sdist only, and pure Python (nothing to compile): installs on any machine.
PURE_PYTHON_SDISTS = {"pyspark"}


# ---------------------------------------------------------------- images


def pinned_images() -> dict[str, str]:
    """image -> where it is used: the compose file's pulled images and the Dockerfile's FROM."""
    sys.path.insert(0, str(ROOT / "tools"))
    import compose_lint  # the compose file read the way the lint reads it

    compose = compose_lint.load_compose()
    built = compose_lint.images_built(compose)
    images = {}
    for name, service in compose_lint.services(compose).items():
        if service.get("image") and service["image"] not in built:
            images.setdefault(compose_lint.normalised_image(service["image"]), f"docker-compose.yml: {name}")
    for dockerfile in sorted((ROOT / "docker").rglob("Dockerfile")):
        for image in re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M):
            images.setdefault(compose_lint.normalised_image(image), str(dockerfile.relative_to(ROOT)))
    return images


def read_table(path: Path = TABLE) -> dict[str, dict]:
    with path.open() as f:
        rows = [r for r in csv.DictReader(line for line in f if not line.startswith("#"))]
    return {r["image"]: r for r in rows}


def check_images(images: dict[str, str], table: dict[str, dict]) -> list[str]:
    problems = []
    for image, where in sorted(images.items()):
        row = table.get(image)
        if row is None:
            problems.append(f"{where}: {image} is not in {TABLE.name}: inspect its platforms and add a row")
            continue
        platforms = set(row["platforms"].split())
        missing = [a for a in ARCHES if f"linux/{a}" not in platforms]
        if missing:
            problems.append(f"{where}: {image} is recorded without {', '.join('linux/' + a for a in missing)}")
    return problems


# ---------------------------------------------------------------- wheels

ENVIRONMENT = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "python_version": "%d.%d" % PYTHON,
    "python_full_version": "%d.%d.0" % PYTHON,
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def lab_image_packages() -> dict[str, str]:
    """name -> version of everything ``pip install`` of pyproject's dependencies brings in.

    Follows each installed distribution's ``Requires-Dist`` from pyproject's list, with the
    markers evaluated as in the image (both architectures get the same list here: none of the
    lab's requirements depends on the machine).
    """
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    todo = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    found: dict[str, str] = {}
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"error: {requirement.name} is not installed here\n"
                "next: pip install -e . (the check reads what pip resolved)"
            ) from None
        found[name] = dist.version
        for text in dist.requires or []:
            sub = Requirement(text)
            extras = requirement.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({**ENVIRONMENT, "extra": e}) for e in extras):
                todo.append(sub)
    return found


def linux_platform_ok(platform: str, machine: str) -> bool:
    """``manylinux_2_28_aarch64`` on aarch64 with glibc 2.36: yes; musllinux or a newer glibc: no."""
    if not platform.endswith("_" + machine):
        return False
    base = platform[: -len(machine) - 1]
    if base in LEGACY_MANYLINUX:
        return LEGACY_MANYLINUX[base] <= GLIBC
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)", base)
    return bool(match) and (int(match.group(1)), int(match.group(2))) <= GLIBC


def installable(filename: str, arch: str) -> bool:
    """Whether CPython 3.11 on Linux ``arch`` (glibc 2.36) can install this wheel."""
    _, _, _, tags = parse_wheel_filename(filename)
    machine = WHEEL_ARCH[arch]
    for tag in tags:
        python_ok = tag.interpreter in ("py3", f"cp{PYTHON[0]}{PYTHON[1]}") or (
            tag.abi == "abi3" and tag.interpreter.startswith("cp3") and int(tag.interpreter[3:]) <= PYTHON[1]
        )
        platform_ok = tag.platform == "any" or linux_platform_ok(tag.platform, machine)
        if python_ok and platform_ok and tag.abi in ("none", "abi3", f"cp{PYTHON[0]}{PYTHON[1]}"):
            return True
    return False


def check_files(name: str, version: str, files: list[str]) -> list[str]:
    """Problems of one package version, from the names of its files on PyPI."""
    wheels = [f for f in files if f.endswith(".whl")]
    if not files:
        return [f"{name}=={version}: no files on PyPI"]
    if not wheels:
        if name in PURE_PYTHON_SDISTS:
            return []
        return [f"{name}=={version}: only an sdist, which the image (no compiler) would have to build"]
    return [
        f"{name}=={version}: no wheel for linux/{arch} and CPython {PYTHON[0]}.{PYTHON[1]}"
        for arch in ARCHES
        if not any(installable(w, arch) for w in wheels)
    ]


def pypi_files(name: str, version: str) -> list[str]:
    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as response:
        releases = json.load(response)["releases"]
    return [f["filename"] for f in releases.get(version, [])]


def check_wheels(packages: dict[str, str]) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        files = dict(zip(packages, pool.map(lambda item: pypi_files(*item), packages.items())))
    return [p for name, version in sorted(packages.items()) for p in check_files(name, version, files[name])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-only", action="store_true", help="skip the wheels (no network)")
    args = parser.parse_args(argv)
    images = pinned_images()
    problems = check_images(images, read_table())
    print(f"images: {len(images)} pinned, checked against {TABLE.relative_to(ROOT)} (recorded, not queried)")
    if not args.images_only:
        packages = lab_image_packages()
        problems += check_wheels(packages)
        print(
            f"wheels: {len(packages)} packages the lab image installs, checked on PyPI for "
            f"linux/{' and linux/'.join(ARCHES)}, CPython {PYTHON[0]}.{PYTHON[1]}"
        )
    for problem in problems:
        print(f"error: {problem}")
    if problems:
        print("next: pin a version that has both, or record the image's platforms (docs/workshop-docker.md)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
