"""Find a Java runtime that can run Spark and the Kafka broker (Java 17 or newer).

Spark, the Kafka broker and the Maven resolver are all JVM programs. Finding Java once, with
a clear message when it is missing, saves a learner from a 40-line Py4J traceback later.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from labkit.errors import LabkitError

MINIMUM_JAVA = 17

INSTALL_HINT = (
    "install Java 17 or newer (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; "
    "macOS: brew install openjdk@17), or set JAVA_HOME to a JDK 17+ folder"
)


def java_executable() -> Path:
    """The ``java`` to use: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else the PATH's."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if not candidate.exists():
            raise LabkitError(
                f"JAVA_HOME={java_home} has no bin/java, so Java cannot be started.",
                f"fix or unset JAVA_HOME, or {INSTALL_HINT}",
            )
        return candidate
    found = shutil.which("java")
    if not found:
        raise LabkitError(f"Java {MINIMUM_JAVA}+ not found on the PATH.", INSTALL_HINT)
    return Path(found)


def java_version(java: Path) -> int:
    """The major version of ``java`` (8, 11, 17, 21, ...), read from ``java -version``."""
    result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60)
    # e.g. 'openjdk version "17.0.15" 2025-04-15' or 'java version "1.8.0_402"'
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if result.returncode != 0 or not match:
        raise LabkitError(f"{java} -version failed: {result.stderr.strip()[:300]}", INSTALL_HINT)
    major = int(match.group(1))
    if major == 1 and match.group(2):  # the old "1.8" numbering
        major = int(match.group(2))
    return major


def require_java() -> Path:
    """Return a Java 17+ executable or raise a LabkitError that says how to get one."""
    java = java_executable()
    major = java_version(java)
    if major < MINIMUM_JAVA:
        raise LabkitError(f"{java} is Java {major}; the lab needs Java {MINIMUM_JAVA}+.", INSTALL_HINT)
    return java
