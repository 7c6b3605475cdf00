"""Getting a job to the agent and its JSON result back: over the system ``ssh`` (remote mode), or as a local
subprocess (host calibration, tests).

SSH goes through the user's own ``ssh`` so keys, ``~/.ssh/config`` aliases, jump hosts and agents work as they do
for every other lab tool; ``BatchMode=yes`` forbids password prompts. One connection per job: the agent file, the
job and its model files travel as a tar stream on ssh's stdin, the device unpacks them into a fresh folder, runs
``python3 -m harbench_agent run job.json`` there, prints the result and removes the folder.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
import tarfile
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

AGENT_FILE = Path(__file__).with_name("harbench_agent.py")


class AgentError(RuntimeError):
    """The agent failed or its answer could not be read; the message carries the device's reason."""


@dataclass
class JobFiles:
    """A job document and the files it refers to (name -> bytes)."""

    job: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    def tar_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            members = {"harbench_agent.py": AGENT_FILE.read_bytes(), "job.json": json.dumps(self.job).encode(),
                       **self.files}
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def parse_result(stdout: str, stderr: str, returncode: int, where: str) -> dict[str, Any]:
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        tail = (stderr or stdout).strip()[-2000:]
        raise AgentError(f"no result from the agent on {where} (exit {returncode}): {tail}")
    if not result.get("ok"):
        raise AgentError(f"agent on {where} failed: {result.get('error', 'unknown error')}")
    return result


class LocalTransport:
    """Runs the agent as a subprocess of this host, with the same files and protocol as on a device."""

    def __init__(self, python: str | None = None, timeout_s: float = 3600.0) -> None:
        self.python = python or sys.executable
        self.timeout_s = timeout_s

    @property
    def where(self) -> str:
        return "localhost (subprocess)"

    def run(self, job: JobFiles) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="harbench-job-") as folder:
            with tarfile.open(fileobj=io.BytesIO(job.tar_bytes())) as tar:
                tar.extractall(folder, filter="data")
            done = subprocess.run(
                [self.python, "-m", "harbench_agent", "run", "job.json"], cwd=folder, capture_output=True, text=True,
                timeout=self.timeout_s,
            )
        return parse_result(done.stdout, done.stderr, done.returncode, self.where)


class SshTransport:
    """Runs the agent on ``host`` through the system ``ssh`` (keys and aliases from the user's SSH config)."""

    def __init__(
        self,
        host: str,
        python: str = "python3",
        remote_dir: str = "~/.cache/harbench-agent",
        ssh_config: str | None = None,
        ssh_options: list[str] | None = None,
        timeout_s: float = 3600.0,
        ssh: str = "ssh",
    ) -> None:
        if not host:
            raise ValueError("remote mode needs `host:` (an ssh destination such as pi@rpi5.lab or an ssh-config alias)")
        self.host = host
        self.python = python
        self.remote_dir = remote_dir
        self.ssh_config = ssh_config
        self.ssh_options = list(ssh_options or [])
        self.timeout_s = timeout_s
        self.ssh = ssh

    @property
    def where(self) -> str:
        return self.host

    def _remote_folder(self) -> str:
        base = self.remote_dir
        if base.startswith("~/"):
            base = "$HOME/" + shlex.quote(base[2:])
        else:
            base = shlex.quote(base)
        return f"{base}/job-{uuid.uuid4().hex[:12]}"

    def command(self) -> list[str]:
        folder = self._remote_folder()
        script = (
            f'D={folder} && mkdir -p "$D" && tar -x -C "$D" && cd "$D" && '
            f'{{ {shlex.quote(self.python)} -m harbench_agent run job.json; rc=$?; cd /; rm -rf "$D"; exit $rc; }}'
        )
        argv = [self.ssh, "-o", "BatchMode=yes"]
        if self.ssh_config:
            argv += ["-F", self.ssh_config]
        return [*argv, *self.ssh_options, self.host, script]

    def run(self, job: JobFiles) -> dict[str, Any]:
        try:
            done = subprocess.run(self.command(), input=job.tar_bytes(), capture_output=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise AgentError(f"job on {self.host} did not finish within {self.timeout_s:.0f} s") from exc
        return parse_result(done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"),
                            done.returncode, self.host)


def make_transport(params: Mapping[str, Any]) -> LocalTransport | SshTransport:
    """``host: local`` runs the agent on this machine (useful to check a set-up); anything else is an ssh host."""
    if params.get("host") == "local":
        return LocalTransport(params.get("python") if params.get("python") not in (None, "", "python3") else None)
    return SshTransport(
        host=params.get("host", ""), python=params.get("python", "python3"),
        remote_dir=params.get("remote_dir", "~/.cache/harbench-agent"), ssh_config=params.get("ssh_config") or None,
        ssh_options=list(params.get("ssh_options") or []), timeout_s=float(params.get("job_timeout_s", 3600.0)),
    )
