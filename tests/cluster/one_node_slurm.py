"""A real one-node Slurm cluster in a temporary folder, for `make cluster-test` (tests/cluster/test_real_slurm.py).

Debian's ``slurm-wlm`` (22.05) and ``munge``, started by hand as root: ``munged`` on its own socket, ``slurmctld`` and
``slurmd`` on free loopback ports, state, spool, logs and pid files under one folder. ``slurm.conf`` and ``gres.conf``
go where Slurm looks by default (``/etc/slurm``), as on a real cluster: the jobs' own ``srun`` cannot be pointed
elsewhere, because the slurm-jobstep plugin removes ``SLURM_CONF`` (with every other ``SLURM_*`` variable) from the
environment of the command it runs. Both files carry a marker line; a machine with a Slurm configuration of its own
is refused, and ours is removed when the cluster stops. The node advertises ``gpus`` GPUs through GRES with
placeholder device files (no CUDA is behind them: the CI config trains on the CPU), and the two partitions
docs/cluster.md expects: ``cpu`` (default) and ``gpu``. ``MinJobAge`` is an hour so that ``squeue --states=all`` (the
plugin's status command without ``slurmdbd``) and ``scontrol show job`` still see finished jobs.

Usage::

    with OneNodeSlurm(tmp) as slurm:
        subprocess.run(["sbatch", ...], env=slurm.env(os.environ))

Leaving the ``with`` block (also on an exception) cancels every job and stops every daemon it started.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

DAEMONS = ("munged", "slurmctld", "slurmd")
MARKER = "# written by tests/cluster/one_node_slurm.py for make cluster-test; removed when its cluster stops\n"


def missing_tools() -> list[str]:
    """The Slurm and munge programs this machine lacks (``make cluster-test`` installs them)."""
    return [t for t in (*DAEMONS, "sbatch", "squeue", "scontrol", "scancel", "sinfo") if shutil.which(t) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_memory_mb() -> int:
    """The machine's memory in MB as slurmd counts it (``/proc/meminfo`` MemTotal)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("/proc/meminfo has no MemTotal line")


class OneNodeSlurm:
    """A one-node Slurm cluster rooted at ``root``.

    Args:
        root: an empty folder for its configuration, state and logs.
        gpus: GPUs the node advertises (GRES ``gpu``; placeholder files).
        min_job_age: seconds a finished job stays visible to ``squeue`` / ``scontrol``.
    """

    def __init__(self, root: Path, *, gpus: int = 8, min_job_age: int = 3600, conf_dir: Path = Path("/etc/slurm")
                 ) -> None:
        self.root = Path(root)
        self.conf_dir = Path(conf_dir)
        self.gpus = gpus
        self.min_job_age = min_job_age
        self.cpus = os.cpu_count() or 1
        self.memory_mb = node_memory_mb() * 9 // 10  # slurmd drains a node whose RealMemory exceeds what it finds
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.conf_dir / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.started: list[str] = []

    # ---------------------------------------------------------------------------------------------- configuration

    def write_config(self) -> None:
        r = self.root
        for f in (self.conf, self.conf_dir / "gres.conf"):
            if f.exists() and not f.read_text().startswith(MARKER):
                raise RuntimeError(f"{f} exists: this machine has a Slurm of its own; run make cluster-test on a "
                                   f"machine without one (a CI runner)")
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("state", "spool", "log", "run", "munge", "gpus"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        for i in range(self.gpus):
            (r / "gpus" / f"gpu{i}").touch()
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        (self.conf_dir / "gres.conf").write_text(f"{MARKER}Name=gpu File={r}/gpus/gpu[0-{self.gpus - 1}]\n")
        lines = {
            "ClusterName": "setokci",
            "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "AuthInfo": f"socket={self.munge_socket}",
            "CredType": "cred/munge",
            "SlurmctldPort": str(free_port()),
            "SlurmdPort": str(free_port()),
            "StateSaveLocation": f"{r}/state",
            "SlurmdSpoolDir": f"{r}/spool",
            "SlurmctldPidFile": f"{r}/run/slurmctld.pid",
            "SlurmdPidFile": f"{r}/run/slurmd.pid",
            "SlurmctldLogFile": f"{r}/log/slurmctld.log",
            "SlurmdLogFile": f"{r}/log/slurmd.log",
            # No cgroups (a container may not delegate them): processes tracked by parent pid, no task binding.
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "MpiDefault": "none",
            "SchedulerType": "sched/builtin",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core_Memory",
            "GresTypes": "gpu",
            "MinJobAge": str(self.min_job_age),
            "ReturnToService": "2",
            "SlurmctldTimeout": "30",
            "SlurmdTimeout": "30",
        }
        text = MARKER + "".join(f"{k}={v}\n" for k, v in lines.items())
        text += (f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} "
                 f"Gres=gpu:{self.gpus} State=UNKNOWN\n"
                 f"PartitionName=cpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP\n"
                 f"PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP\n")
        self.conf.write_text(text)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with ``SLURM_CONF`` pointing at this cluster."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        return env

    # ---------------------------------------------------------------------------------------------- daemons

    def start(self, timeout: float = 60.0) -> OneNodeSlurm:
        """Write the configuration, start munged, slurmctld and slurmd, and wait until the node is idle."""
        if os.geteuid() != 0:
            raise RuntimeError("a one-node Slurm needs root (slurmd starts jobs as their user)")
        if missing := missing_tools():
            raise RuntimeError(f"not installed: {', '.join(missing)} (make cluster-test installs slurm-wlm and munge)")
        self.write_config()
        m = self.root / "munge"
        self._run("munged", ["munged", f"--key-file={m}/munge.key", f"--socket={self.munge_socket}",
                             f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log", f"--seed-file={m}/seed",
                             "--force"])
        self._run("slurmctld", ["slurmctld", "-f", str(self.conf), "-i"])
        self._run("slurmd", ["slurmd", "-f", str(self.conf)])
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.node_state()
            if state == "idle":
                return self
            time.sleep(0.5)
        raise RuntimeError(f"the Slurm node is {state or 'unknown'} after {timeout:.0f} s, not idle; "
                           f"see {self.root}/log/slurmctld.log and slurmd.log")

    def _run(self, name: str, argv: list[str]) -> None:
        r = subprocess.run(argv, env=self.env(), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{name} did not start (exit {r.returncode}): {(r.stderr or r.stdout).strip()}; "
                               f"logs under {self.root}")
        self.started.append(name)

    def node_state(self) -> str:
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env(), capture_output=True, text=True)
        return r.stdout.split("\n")[0].strip() if r.returncode == 0 else ""

    def stop(self) -> None:
        """Cancel every job, then stop the daemons this object started (slurmd, slurmctld, munged), newest first."""
        if "slurmctld" in self.started:
            subprocess.run(["scancel", "--full", "--user=root"], env=self.env(), capture_output=True)
        pid_files = {"slurmd": self.root / "run" / "slurmd.pid", "slurmctld": self.root / "run" / "slurmctld.pid",
                     "munged": self.root / "munge" / "munged.pid"}
        for name in reversed(self.started):
            try:
                pid = int(pid_files[name].read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            _terminate(pid)
        self.started.clear()
        for f in (self.conf, self.conf_dir / "gres.conf"):
            if f.exists() and f.read_text().startswith(MARKER):
                f.unlink()

    def __enter__(self) -> OneNodeSlurm:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
