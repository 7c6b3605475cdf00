"""Fabricated devices for tests: a sysfs tree with INA3221 rails, thermal zones and clocks, fake ``vcgencmd`` and
``nvpmodel`` programs, and a throw-away OpenSSH server on 127.0.0.1, so the agent's whole path (transport, lease,
sensors, sampling, integration, replay) runs for real without a board.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Pi 5 PMIC rails in the format of `vcgencmd pmic_read_adc` (current channel, then voltage channel per rail)
PMIC_RAILS = {"VDD_CORE": (0.80, 2.50), "DDR_VDD2": (1.10, 0.30), "3V3_SYS": (3.30, 0.10)}
# AGX Xavier INA3221 rails: (label, mV, mA); two chips at 0x40 and 0x41 as on the module
XAVIER_RAILS = {"1-0040": [("GPU", 19000, 200), ("CPU", 19000, 150), ("SOC", 19000, 120)],
                "1-0041": [("CV", 19000, 10), ("VDDRQ", 19000, 40), ("SYS5V", 5000, 600)]}


def pmic_watts() -> float:
    return sum(v * a for v, a in PMIC_RAILS.values())


def xavier_watts() -> float:
    return sum(mv * ma / 1e6 for rails in XAVIER_RAILS.values() for _, mv, ma in rails)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _program(path: Path, body: str) -> Path:
    _write(path, "#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_sysfs(root: Path, temps_c: tuple[float, ...] = (45.0, 47.5), cpus: int = 4, pinned: bool = True) -> Path:
    """Thermal zones, cpufreq per CPU and one devfreq node (a Jetson GPU) under ``root``."""
    for i, temp in enumerate(temps_c):
        _write(root / f"class/thermal/thermal_zone{i}/type", f"zone{i}-thermal\n")
        _write(root / f"class/thermal/thermal_zone{i}/temp", f"{int(temp * 1000)}\n")
    for cpu in range(cpus):
        base = root / f"devices/system/cpu/cpu{cpu}/cpufreq"
        _write(base / "scaling_governor", "performance\n")
        _write(base / "scaling_cur_freq", "1500000\n")
        _write(base / "scaling_min_freq", "1500000\n" if pinned else "600000\n")
        _write(base / "scaling_max_freq", "1500000\n")
    gpu = root / "class/devfreq/17000000.gv11b"
    for name, value in (("governor", "nvhost_podgov"), ("cur_freq", "1377000000"), ("min_freq", "1377000000"),
                        ("max_freq", "1377000000")):
        _write(gpu / name, value + "\n")
    return root


def fake_ina3221(root: Path, layout: str = "hwmon") -> Path:
    """INA3221 driver folders as JetPack 5 (``hwmon``) or JetPack 4 (``iio``) expose them."""
    for chip, rails in XAVIER_RAILS.items():
        for n, (label, mv, ma) in enumerate(rails, start=1):
            if layout == "hwmon":
                hw = root / chip / "hwmon" / f"hwmon{chip[-1]}"
                _write(hw / f"in{n}_label", f"VDD_{label}\n" if label in ("GPU", "CPU", "SOC") else f"{label}\n")
                _write(hw / f"in{n}_input", f"{mv}\n")
                _write(hw / f"curr{n}_input", f"{ma}\n")
            else:
                iio = root / chip / "iio:device0"
                _write(iio / f"rail_name_{n - 1}", f"{label}\n")
                _write(iio / f"in_power{n - 1}_input", f"{mv * ma / 1000:.0f}\n")
        if layout == "hwmon":
            _write(root / chip / "hwmon" / f"hwmon{chip[-1]}" / "in7_label", "sum of shunt voltages\n")
            _write(root / chip / "hwmon" / f"hwmon{chip[-1]}" / "in7_input", "1\n")
            _write(root / chip / "hwmon" / f"hwmon{chip[-1]}" / "curr7_input", "1\n")
    return root


def fake_programs(bin_dir: Path, power_mode: str = "MAXN") -> Path:
    """``vcgencmd`` (PMIC ADC, throttling) and ``nvpmodel -q`` that print what the real tools print."""
    lines = []
    for i, (rail, (volt, amp)) in enumerate(PMIC_RAILS.items()):
        lines.append(f"     {rail}_A current({i})={amp:.8f}A")
        lines.append(f"     {rail}_V volt({i + 12})={volt:.8f}V")
    lines.append("     EXT5V_V volt(24)=5.10000000V")
    pmic = "\n".join(lines)
    _program(bin_dir / "vcgencmd", f"""case "$1" in
  pmic_read_adc) cat <<'EOF'
{pmic}
EOF
  ;;
  get_throttled) echo "throttled=0x50000" ;;
  *) echo "error=1 unknown command"; exit 1 ;;
esac
""")
    mode_id = {"MAXN": 0, "MODE_10W": 1, "MODE_15W": 2, "MODE_30W_ALL": 3}.get(power_mode, 0)
    _program(bin_dir / "nvpmodel", f'echo "NV Power Mode: {power_mode}"\necho "{mode_id}"\n')
    _program(bin_dir / "watts-meter", 'echo "4.25 W"\n')
    return bin_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SshServer:
    """A running throw-away sshd; ``host`` is an alias defined in ``client_config``."""

    process: subprocess.Popen
    client_config: Path
    host: str = "harbench-test"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def sshd_unavailable() -> str | None:
    """Why an sshd cannot be started here, or ``None``."""
    if not Path("/usr/sbin/sshd").exists() and shutil.which("sshd") is None:
        return "OpenSSH server not installed (Debian: apt-get install -y openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "OpenSSH client (ssh, ssh-keygen) not installed"
    return None


def start_sshd(folder: Path, path_prefix: Path | None = None) -> SshServer:
    """Start sshd on 127.0.0.1 with a fresh host key and a fresh client key authorised for the current user.

    ``path_prefix`` is prepended to PATH in sessions (sshd's ``SetEnv``), so fake device programs are found as the
    real ones would be.
    """
    sshd = Path("/usr/sbin/sshd") if Path("/usr/sbin/sshd").exists() else Path(shutil.which("sshd") or "sshd")
    folder.mkdir(parents=True, exist_ok=True)
    host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = folder / "authorized_keys"
    authorized.write_text((folder / "client_ed25519.pub").read_text())
    authorized.chmod(0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation directory
    port = free_port()
    path = f"{path_prefix}:{os.environ.get('PATH', '/usr/bin:/bin')}" if path_prefix else os.environ.get("PATH", "")
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"AuthorizedKeysFile {authorized}",
        f"PidFile {folder / 'sshd.pid'}", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no",
        f"SetEnv PATH={path}", "LogLevel ERROR", "",
    ]))
    process = subprocess.Popen([str(sshd), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(folder / "sshd.log", "w"))
    client = folder / "ssh_config"
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    client.write_text("\n".join([
        "Host harbench-test", "  HostName 127.0.0.1", f"  Port {port}", f"  User {user}",
        f"  IdentityFile {client_key}", "  IdentitiesOnly yes", "  StrictHostKeyChecking no",
        "  UserKnownHostsFile /dev/null", "  LogLevel ERROR", "",
    ]))
    server = SshServer(process, client)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {(folder / 'sshd.log').read_text()[-1000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError("sshd did not start listening within 10 s")


def python_for_agent() -> str:
    """The interpreter the agent runs with in tests: this one (it has torch)."""
    return sys.executable


def tiny_adapt(model, channels: int = 6, window: int = 32, steps_epochs: int = 2, seed: int = 0):
    """An adapt callable like a method's: fine-tunes the head of a copy of ``model`` on random labelled windows
    with harbench's ``fit`` and reports its facts, so a target's ``run_adapt`` can be exercised without a dataset."""
    import torch

    from harbench import AdaptFacts, AdaptResult, Windows, count_params, fit, frozen_copy, make_optimizer

    def adapt():
        generator = torch.Generator().manual_seed(seed)
        n = 12
        windows = Windows(
            x=torch.randn(n, channels, window, generator=generator),
            y=torch.randint(0, model.head.out_features, (n,), generator=generator),
            recording=torch.zeros(n, dtype=torch.long), start=torch.arange(n) * window,
            user=torch.zeros(n, dtype=torch.long), context=torch.zeros(n, dtype=torch.long),
        )
        clone = frozen_copy(model)
        for name, param in clone.named_parameters():
            param.requires_grad_(name.startswith("fc."))
        report = fit(clone, windows, epochs=steps_epochs, optimizer=make_optimizer(clone.parameters(), "adam", 1e-2),
                     batch_size=6, generator=generator)
        trainable = [n for n, p in clone.named_parameters() if p.requires_grad]
        return AdaptResult(clone, AdaptFacts(
            params_trained=count_params(clone, trainable_only=True), optimizer_steps=report.optimizer_steps,
            forward_samples=report.forward_samples, backward_samples=report.backward_samples, batch_size=6,
            epochs=report.epochs_run, trainable=trainable))

    return adapt
