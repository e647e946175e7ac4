"""Bring the local stack up and down: kwokctl cluster (binary runtime), GPU Nodes, anvil.

Layout (fixed; tools and docs rely on it), all under the gitignored `.local/`:
  .local/bin/          links to the built tools (kubectl, kwokctl, helm, ...) and anvil
  .local/kubeconfig    kubeconfig of the demo/dev cluster
  .local/devnet.json   chain id, RPC URL, funded accounts, contract addresses
  .local/kwok/         kwokctl's workdir (clusters, logs, PKI)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / ".local"
BIN = LOCAL / "bin"
KUBECONFIG = LOCAL / "kubeconfig"
DEVNET_JSON = LOCAL / "devnet.json"
KWOK_WORKDIR = LOCAL / "kwok"
KUBE_VERSION = "v1.35.4"
TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "kwokctl",
    "helm",
)


def log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def build_tools() -> Path:
    """Build (or find cached) control-plane binaries and link them into .local/bin."""
    started = time.monotonic()
    result = subprocess.run(
        [str(REPO / "hack/build-k8s.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    cache = Path(result.stdout.strip().splitlines()[-1])
    BIN.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        _link(cache / tool, BIN / tool)
    anvil = REPO / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    if not anvil.exists():
        log("installing npm dev tools (anvil, solcjs) ...")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REPO, check=True)
    _link(anvil, BIN / "anvil")
    log(f"tools ready in {time.monotonic() - started:.1f} s ({cache})")
    return cache


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    link.unlink(missing_ok=True)
    link.symlink_to(target)


@dataclass
class KwokCluster:
    """One kwokctl cluster with the binary runtime, every component on 127.0.0.1."""

    name: str = "gpu-provider"
    kubeconfig: Path = KUBECONFIG
    workdir: Path = KWOK_WORKDIR
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def cluster_dir(self) -> Path:
        return self.workdir / "clusters" / self.name

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KWOK_WORKDIR": str(self.workdir), **self.extra_env}

    def _kwokctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "kwokctl"), "--name", self.name, *args],
            env=self._env(),
            check=check,
            capture_output=True,
            text=True,
        )

    def config_file(self) -> Path:
        """A KwokctlConfiguration pointing at the locally built binaries."""
        path = self.workdir / f"{self.name}.kwokctl.yaml"
        config = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": {
                "runtime": "binary",
                # kwokctl binds 0.0.0.0 by default; this machine allows loopback only.
                "bindAddress": "127.0.0.1",
                "kubeVersion": KUBE_VERSION,
                "kubeApiserverBinary": str((BIN / "kube-apiserver").resolve()),
                "kubeControllerManagerBinary": str((BIN / "kube-controller-manager").resolve()),
                "kubeSchedulerBinary": str((BIN / "kube-scheduler").resolve()),
                "kubectlBinary": str((BIN / "kubectl").resolve()),
                "etcdBinary": str((BIN / "etcd").resolve()),
                "kwokControllerBinary": str((BIN / "kwok").resolve()),
                "quietPull": True,
            },
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        return path

    def exists(self) -> bool:
        return self.cluster_dir.is_dir()

    def create(self, wait: str = "2m") -> None:
        if self.exists():
            self.delete()
        started = time.monotonic()
        result = self._kwokctl(
            "-c",
            str(self.config_file()),
            "create",
            "cluster",
            "--kubeconfig",
            str(self.kubeconfig),
            "--wait",
            wait,
            "--disable-qps-limits",
            check=False,
        )
        if result.returncode != 0:
            logs = self.component_logs()
            self.delete()
            raise RuntimeError(
                f"kwokctl create cluster failed ({result.returncode}):\n{result.stderr}\n{logs}"
            )
        log(f"cluster {self.name} up in {time.monotonic() - started:.1f} s")

    def delete(self) -> None:
        if not self.exists():
            return
        self._kwokctl("delete", "cluster", "--kubeconfig", str(self.kubeconfig), check=False)
        # kwokctl removes its own processes; remove what it may leave on a crash.
        shutil.rmtree(self.cluster_dir, ignore_errors=True)

    def component_logs(self, tail: int = 20) -> str:
        logs_dir = self.cluster_dir / "logs"
        parts = []
        for path in sorted(logs_dir.glob("*.log")) if logs_dir.is_dir() else []:
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def pids(self) -> list[int]:
        """Processes started for this cluster (their command line names its directory)."""
        return pids_mentioning(str(self.cluster_dir))


def pids_mentioning(marker: str) -> list[int]:
    """Live processes whose command line contains `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(proc.name))
    return found


def kubectl(*args: str, kubeconfig: Path = KUBECONFIG, input_text: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig), *args],
        input=input_text,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def apply_objects(objects: list[dict[str, Any]], kubeconfig: Path = KUBECONFIG) -> None:
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        kubeconfig=kubeconfig,
        input_text=yaml.safe_dump_all(objects),
    )
