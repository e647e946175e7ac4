"""The Dockerfile builds what exists: its COPY sources are in the repository, it starts from
python:3.11-slim, runs as 65532, and keeps compilers out of the final stage; the wheel it
installs builds (`pip wheel . --no-deps`) and carries the package data the processes load."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.packaging.helpers import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def stages() -> list[str]:
    return re.split(r"(?m)^FROM ", DOCKERFILE)[1:]


def test_two_stages_from_python_slim_and_the_final_one_is_lean() -> None:
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    builder, final = stages()
    assert builder.startswith("${PYTHON_IMAGE} AS builder")
    assert "build-essential" in builder
    for tool in ("build-essential", "gcc", "apt-get install", "pip install", "pip wheel"):
        assert tool not in final, tool
    assert "USER 65532:65532" in final
    assert 'ENTRYPOINT ["gpu-provider"]' in final


def test_copied_paths_exist_and_the_context_lets_them_in() -> None:
    copies = re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", DOCKERFILE)
    sources = [s for line in copies for s in line.split()]
    assert sources
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    for source in sources:
        assert (REPO / source).exists(), source
        assert f"!{source}" in ignore or f"!{source.rstrip('/')}/" in ignore, source


def test_the_wheel_builds_with_its_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("gpu_provider_operator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gpu_provider/cli.py" in names
    assert any(n.startswith("gpu_provider/chain/artifacts/") and n.endswith(".json") for n in names)
    assert any(n.startswith("gpu_provider/market/data/") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "gpu-provider = gpu_provider.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
