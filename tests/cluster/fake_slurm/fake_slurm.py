"""A stand-in Slurm for tests: sbatch, squeue, sacct, srun, scontrol, sinfo, scancel, sacctmgr and sshare on one
machine, so the Slurm executor plugin's submission path runs end to end without a cluster.

Each tool in this folder is a two-line shell script that calls ``fake_slurm.py <tool> ARGS``. State and logs live in
``$FAKE_SLURM_LOG`` (required):

- ``calls.jsonl``: every invocation of every tool (tool, argv, cwd);
- ``sbatch.jsonl``: each submission (job id, full argv, working directory);
- ``srun.jsonl``: each srun call (argv, the command it ran, task count);
- ``jobs/<id>/``: ``job.json`` (the parsed request), ``script.sh`` (the batch script), ``state`` (PENDING, RUNNING,
  COMPLETED, FAILED, CANCELLED) and ``exit_code``.

``sbatch`` runs the job script locally with ``/bin/sh`` in a detached process (``FAKE_SLURM_SYNC=1``: before it
returns), with the ``SLURM_*`` variables a batch step sees; ``squeue`` and ``sacct`` report the recorded states in
the formats the plugin parses. ``srun`` drops its options and runs the command once per task, locally, with
``SLURM_PROCID`` / ``SLURM_NODEID`` / ``SLURM_LOCALID`` set. ``FAKE_SLURM_ACCOUNTS`` (comma-separated, default
``fakeacct``) are the accounts sacctmgr knows; ``FAKE_SLURM_PARTITIONS`` (default ``cpu*,gpu``, ``*`` = default) the
partitions sinfo lists; every node has ``FAKE_SLURM_GPUS_PER_NODE`` GPUs (default 8): sbatch and srun refuse more,
and srun shrinks a step with fewer tasks than nodes, as Slurm does. Only the standard library is used, so any
``python3`` can run it (``FAKE_SLURM_PYTHON`` picks one).
"""
from __future__ import annotations

import argparse
import fcntl
import getpass
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NODE_PREFIX = "fake-node"
FINISHED = ("COMPLETED", "FAILED", "CANCELLED")


class FakeSlurmError(RuntimeError):
    """A call the stand-in cannot honour; the message names the tool and the problem."""


# ------------------------------------------------------------------------------------------------ state on disk


def log_dir() -> Path:
    """The state folder ($FAKE_SLURM_LOG), created on first use."""
    value = os.environ.get("FAKE_SLURM_LOG")
    if not value:
        raise FakeSlurmError("FAKE_SLURM_LOG: not set (the stand-in Slurm keeps its jobs and logs there)")
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def append_jsonl(name: str, row: dict[str, Any]) -> None:
    """Append one JSON line to ``$FAKE_SLURM_LOG/<name>`` under an exclusive lock."""
    with open(log_dir() / name, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(row, sort_keys=True) + "\n")


def next_id(counter: str, start: int) -> int:
    """Increment and return the integer kept in ``$FAKE_SLURM_LOG/<counter>`` (first value: ``start``)."""
    with open(log_dir() / counter, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read().strip()
        value = int(text) + 1 if text else start
        f.seek(0)
        f.truncate()
        f.write(str(value))
    return value


def job_dir(jobid: str) -> Path:
    return log_dir() / "jobs" / jobid


def load_job(jobid: str) -> dict[str, Any]:
    return json.loads((job_dir(jobid) / "job.json").read_text(encoding="utf-8"))


def job_state(jobid: str) -> str:
    path = job_dir(jobid) / "state"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else "PENDING"


def set_state(jobid: str, state: str) -> None:
    write_atomic(job_dir(jobid) / "state", state + "\n")


def all_jobs() -> list[dict[str, Any]]:
    """Every submitted job, oldest first, with its current state and exit code."""
    root = log_dir() / "jobs"
    jobs = []
    for path in sorted(root.glob("*/job.json"), key=lambda p: int(p.parent.name)) if root.is_dir() else []:
        job = json.loads(path.read_text(encoding="utf-8"))
        job["state"] = job_state(job["id"])
        code = path.parent / "exit_code"
        job["exit_code"] = int(code.read_text()) if code.is_file() else None
        jobs.append(job)
    return jobs


def nodelist(nodes: int) -> str:
    """Slurm's compressed host list of ``nodes`` fake nodes: fake-node0 or fake-node[0-7]."""
    return f"{NODE_PREFIX}0" if nodes == 1 else f"{NODE_PREFIX}[0-{nodes - 1}]"


def expand_hostlist(text: str) -> list[str]:
    """fake-node[0-2,5],other -> fake-node0, fake-node1, fake-node2, fake-node5, other."""
    hosts = []
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,]+)", text):
        if plain:
            hosts.append(plain)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            width = len(lo)
            hosts += [f"{prefix}{i:0{width}d}" for i in range(int(lo), int(hi or lo) + 1)]
    return hosts


def check_gpus(tool: str, gpus: int | None, nodes: int) -> None:
    """Refuse more GPUs than ``nodes`` nodes hold ($FAKE_SLURM_GPUS_PER_NODE, default 8), as Slurm does."""
    per_node = int(os.environ.get("FAKE_SLURM_GPUS_PER_NODE", "8"))
    if gpus and gpus > per_node * nodes:
        raise FakeSlurmError(f"{tool}: error: {gpus} GPUs on {nodes} node(s) of {per_node}: "
                             "Requested node configuration is not available")


def count_of(value: str | None) -> int | None:
    """The count in a --gpus / --gres value: '8' -> 8, 'h100:64' -> 64, 'gpu:a100:2' -> 2."""
    if not value:
        return None
    last = value.split(":")[-1]
    return int(last) if last.isdigit() else 1


# ------------------------------------------------------------------------------------------------------- sbatch


def sbatch_parser() -> argparse.ArgumentParser:
    """The sbatch options the executor plugin (2.8.0) emits, and a few more a slurm_extra may add."""
    p = argparse.ArgumentParser(prog="sbatch", add_help=False, allow_abbrev=False)
    flags = ["--parsable", "--requeue", "--no-requeue", "--exclusive", "--test-only"]
    for flag in flags:
        p.add_argument(flag, action="store_true")
    valued = {
        ("-J", "--job-name"): "job_name", ("-o", "--output"): "output", ("-e", "--error"): "error",
        ("--export",): "export", ("--comment",): "comment", ("-A", "--account"): "account",
        ("-p", "--partition"): "partition", ("-M", "--clusters"): "clusters", ("-t", "--time"): "time",
        ("-C", "--constraint"): "constraint", ("-q", "--qos"): "qos", ("--mem",): "mem",
        ("--mem-per-cpu",): "mem_per_cpu", ("--mem-per-gpu",): "mem_per_gpu", ("-N", "--nodes"): "nodes",
        ("--reservation",): "reservation", ("-x", "--exclude"): "exclude", ("--ntasks-per-gpu",): "ntasks_per_gpu",
        ("-n", "--ntasks"): "ntasks", ("--ntasks-per-node",): "ntasks_per_node", ("-c", "--cpus-per-task"):
        "cpus_per_task", ("--cpus-per-gpu",): "cpus_per_gpu", ("-D", "--chdir"): "chdir", ("--gres",): "gres",
        ("-G", "--gpus"): "gpus", ("--gpus-per-node",): "gpus_per_node", ("-a", "--array"): "array",
        ("--wrap",): "wrap", ("--signal",): "signal", ("--open-mode",): "open_mode", ("--mail-type",): "mail_type",
        ("--mail-user",): "mail_user", ("--dependency", "-d"): "dependency", ("--nice",): "nice",
    }
    for names, dest in valued.items():
        p.add_argument(*names, dest=dest)
    p.add_argument("script", nargs="?")
    p.add_argument("script_args", nargs=argparse.REMAINDER)
    return p


def batch_script(args: argparse.Namespace) -> str:
    """The batch script: ``--wrap`` as sbatch wraps it, else the script file (``/dev/stdin``: standard input)."""
    if args.wrap is not None:
        if args.script:
            raise FakeSlurmError("sbatch: script arguments not permitted with --wrap option")
        return f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{args.wrap}\n"
    if not args.script:
        raise FakeSlurmError("sbatch: no batch script and no --wrap given")
    if args.script in ("-", "/dev/stdin"):
        return sys.stdin.read()
    return Path(args.script).read_text(encoding="utf-8")


def new_job(argv: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Record a submission: its id, request and script under jobs/<id>/, and a line in sbatch.jsonl."""
    if args.array:
        raise FakeSlurmError("sbatch: --array is not supported by the stand-in")
    script = batch_script(args)
    jobid = str(next_id("jobid_counter", 1000))
    workdir = str(Path(args.chdir or os.getcwd()).resolve())
    nodes = int(args.nodes or 1)
    ntasks = int(args.ntasks) if args.ntasks else nodes * int(args.ntasks_per_node or 1)
    gpus = count_of(args.gpus) or (count_of(args.gres) or 0) * nodes or None  # --gres counts per node
    check_gpus("sbatch", gpus, nodes)
    job = {
        "id": jobid, "name": args.job_name or "sbatch", "argv": argv, "workdir": workdir,
        "output": (args.output or "slurm-%j.out").replace("%j", jobid), "account": args.account or "",
        "partition": args.partition or default_partition(), "nodes": nodes, "ntasks": ntasks,
        "cpus_per_task": int(args.cpus_per_task or 1), "gpus": gpus,
        "time": args.time, "mem": args.mem, "requeue": args.requeue, "comment": args.comment,
        "user": getpass.getuser(), "submit_time": time.time(),
    }
    write_atomic(job_dir(jobid) / "script.sh", script)
    write_atomic(job_dir(jobid) / "job.json", json.dumps(job, indent=2, sort_keys=True) + "\n")
    set_state(jobid, "PENDING")
    append_jsonl("sbatch.jsonl", {"jobid": jobid, "argv": argv, "cwd": os.getcwd()})
    return job


def batch_env(job: dict[str, Any]) -> dict[str, str]:
    """The environment of the batch step: the submitter's (--export=ALL) plus what Slurm sets on the first node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
    env.update({
        "SLURM_JOB_ID": job["id"], "SLURM_JOBID": job["id"], "SLURM_JOB_NAME": job["name"],
        "SLURM_SUBMIT_DIR": os.getcwd(), "SLURM_SUBMIT_HOST": "fake-login", "SLURM_CLUSTER_NAME": "fake",
        "SLURM_JOB_NUM_NODES": str(job["nodes"]), "SLURM_NNODES": str(job["nodes"]),
        "SLURM_JOB_NODELIST": nodelist(job["nodes"]), "SLURM_NODELIST": nodelist(job["nodes"]),
        "SLURM_NTASKS": str(job["ntasks"]), "SLURM_NPROCS": str(job["ntasks"]),
        "SLURM_CPUS_PER_TASK": str(job["cpus_per_task"]), "SLURM_NODEID": "0", "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0", "SLURMD_NODENAME": f"{NODE_PREFIX}0", "SLURM_RESTART_COUNT": "0",
        "SLURM_JOB_ACCOUNT": job["account"], "SLURM_JOB_PARTITION": job["partition"],
    })
    if job["gpus"]:
        env["SLURM_GPUS"] = str(job["gpus"])
    return env


def run_job(jobid: str) -> int:
    """Run one job's script to the end, output to its --output file; record its exit code and final state."""
    job = load_job(jobid)
    if job_state(jobid) == "CANCELLED":
        return 0
    if os.getpid() == os.getpgrp():  # detached: the job owns this process group (scancel ends it)
        write_atomic(job_dir(jobid) / "pgid", str(os.getpgrp()))
    set_state(jobid, "RUNNING")
    output = Path(job["workdir"], job["output"])
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as out:
        code = subprocess.call(["/bin/sh", str(job_dir(jobid) / "script.sh")], cwd=job["workdir"],
                               env=batch_env(job), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    write_atomic(job_dir(jobid) / "exit_code", f"{code}\n")
    if job_state(jobid) != "CANCELLED":
        set_state(jobid, "COMPLETED" if code == 0 else "FAILED")
    return code


def start_job(jobid: str) -> None:
    """Run the job now (FAKE_SLURM_SYNC=1) or in a detached process that outlives sbatch, like a real queue."""
    if os.environ.get("FAKE_SLURM_SYNC") == "1":
        run_job(jobid)
        return
    subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_run", jobid], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     close_fds=True, cwd=os.getcwd())


def sbatch(argv: list[str]) -> int:
    args = sbatch_parser().parse_args(argv)
    job = new_job(argv, args)
    start_job(job["id"])
    print(job["id"] if args.parsable else f"Submitted batch job {job['id']}")
    return 0


# ---------------------------------------------------------------------------------------------- squeue / sacct


def squeue(argv: list[str]) -> int:
    """squeue --format=%i|%T --states=all --noheader --name RUNID (what the plugin's status query sends)."""
    p = argparse.ArgumentParser(prog="squeue", add_help=False)
    p.add_argument("-o", "--format", default="%i %T")
    p.add_argument("-t", "--states", default="")
    p.add_argument("-h", "--noheader", action="store_true")
    p.add_argument("-n", "--name", default=None)
    p.add_argument("-j", "--jobs", default=None)
    p.add_argument("-u", "--user", default=None)
    p.add_argument("--me", action="store_true")
    args = p.parse_args(argv)
    fields = {"%i": "id", "%A": "id", "%T": "state", "%j": "name", "%P": "partition", "%D": "nodes", "%u": "user"}
    show_all = args.states.lower() == "all"
    rows = [j for j in select(all_jobs(), args.name, args.jobs) if show_all or j["state"] not in FINISHED]
    if not args.noheader:
        print(re.sub(r"%\w", lambda m: fields.get(m.group(0), "?").upper(), args.format))
    for job in rows:
        print(re.sub(r"%\w", lambda m: str(job.get(fields.get(m.group(0), ""), "")), args.format))
    return 0


def select(jobs: list[dict[str, Any]], name: str | None, ids: str | None) -> list[dict[str, Any]]:
    """Jobs filtered by --name and by -j (a step id such as 1000.0 selects nothing: the stand-in keeps no steps)."""
    if name:
        jobs = [j for j in jobs if j["name"] in name.split(",")]
    if ids:
        jobs = [j for j in jobs if j["id"] in ids.split(",")]
    return jobs


SACCT_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "jobidraw": lambda j: j["id"], "jobid": lambda j: j["id"], "state": lambda j: j["state"],
    "jobname": lambda j: j["name"], "account": lambda j: j["account"], "partition": lambda j: j["partition"],
    "nodelist": lambda j: nodelist(j["nodes"]), "nnodes": lambda j: str(j["nodes"]), "reason": lambda j: "None",
    "exitcode": lambda j: f"{j['exit_code'] if j['exit_code'] is not None else 0}:0", "user": lambda j: j["user"],
}


def sacct(argv: list[str]) -> int:
    """sacct -X --parsable2 --noheader --format=JobIdRaw,State --name RUNID, and the account / reason look-ups."""
    p = argparse.ArgumentParser(prog="sacct", add_help=False)
    for flag, dest in (("-X", "allocations"), ("-P", "parsable2"), ("-n", "noheader"), ("-p", "parsable")):
        p.add_argument(flag, dest=dest, action="store_true")
    p.add_argument("--allocations", action="store_true")
    p.add_argument("--parsable2", action="store_true")
    p.add_argument("--noheader", action="store_true")
    p.add_argument("-o", "--format", default="JobID,JobName,Partition,Account,State,ExitCode")
    for names in (("-j", "--jobs"), ("--name",), ("-u", "--user"), ("-S", "--starttime"), ("-E", "--endtime"),
                  ("-M", "--clusters")):
        p.add_argument(*names)
    args, _ = p.parse_known_args(argv)  # get_account passes "| tail -1" as arguments: ignore them like sacct does
    names = [re.sub(r"%-?\d+$", "", f).lower() for f in args.format.split(",")]
    unknown = [n for n in names if n not in SACCT_FIELDS]
    if unknown:
        raise FakeSlurmError(f"sacct: unsupported --format field(s) {','.join(unknown)}")
    jobs = select(all_jobs(), args.name, args.jobs)
    sep = "|" if args.parsable2 or args.parsable else " "
    if not args.noheader:
        print(sep.join(f.split("%")[0] for f in args.format.split(",")))
    for job in jobs:
        print(sep.join(SACCT_FIELDS[n](job) for n in names) + ("|" if args.parsable else ""))
    return 0


# ------------------------------------------------------------------------------- accounts, partitions, config


def known_accounts() -> list[str]:
    return [a for a in os.environ.get("FAKE_SLURM_ACCOUNTS", "fakeacct").split(",") if a]


def partitions() -> list[str]:
    return [p for p in os.environ.get("FAKE_SLURM_PARTITIONS", "cpu*,gpu").split(",") if p]


def default_partition() -> str:
    return next((p.rstrip("*") for p in partitions() if p.endswith("*")), "")


def sacctmgr(argv: list[str]) -> int:
    """sacctmgr -n -s list user NAME format=account%256: one account a line."""
    if "list" not in argv and "show" not in argv:
        raise FakeSlurmError(f"sacctmgr: only 'list user' is supported, got {' '.join(argv)}")
    print("\n".join(known_accounts()))
    return 0


def sshare(argv: list[str]) -> int:
    """sshare -U --format Account%256 --noheader: one account a line."""
    print("\n".join(known_accounts()))
    return 0


def sinfo(argv: list[str]) -> int:
    """sinfo -o %P: a header, then the partitions (the default one marked with *)."""
    print("PARTITION")
    print("\n".join(partitions()))
    return 0


def time_limit(value: str | None) -> str:
    """sbatch -t minutes as scontrol prints it (D-HH:MM:SS); other forms unchanged."""
    if not value:
        return "UNLIMITED"
    if not value.isdigit():
        return value
    days, minutes = divmod(int(value), 24 * 60)
    return f"{days}-{minutes // 60:02d}:{minutes % 60:02d}:00" if days else f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def show_job(jobid: str, oneliner: bool) -> str:
    """``scontrol show job``'s record of a job: the fields a launcher reads, in Slurm's order (ReqNodeList and
    ExcNodeList before NodeList, NumNodes as a range), one line with -o, else indented lines."""
    if not (job_dir(jobid) / "job.json").is_file():
        raise FakeSlurmError("slurm_load_jobs error: Invalid job id specified")
    job = {**load_job(jobid), "state": job_state(jobid)}
    n = job["nodes"]
    fields = [
        f"JobId={jobid} JobName={job['name']}", f"UserId={job['user']}(0) GroupId={job['user']}(0)",
        f"Account={job['account'] or '(null)'} QOS=normal", f"JobState={job['state']} Reason=None",
        f"Requeue={int(job['requeue'])} Restarts=0 BatchFlag=1", f"TimeLimit={time_limit(job['time'])}",
        f"Partition={job['partition']} AllocNode:Sid=fake-login:1", "ReqNodeList=(null) ExcNodeList=(null)",
        f"NodeList={nodelist(n)} BatchHost={NODE_PREFIX}0",
        f"NumNodes={n}-{n} NumCPUs={n * job['cpus_per_task']} NumTasks={job['ntasks']} "
        f"CPUs/Task={job['cpus_per_task']}",
        f"TRES=cpu={n * job['cpus_per_task']},node={n}" + (f",gres/gpu={job['gpus']}" if job["gpus"] else ""),
        f"WorkDir={job['workdir']}", f"StdOut={Path(job['workdir'], job['output'])}",
    ]
    return " ".join(fields) if oneliner else "".join(("" if i == 0 else "   ") + f + "\n" for i, f in
                                                       enumerate(fields))


def scontrol(argv: list[str]) -> int:
    """scontrol [-o] show config | show hostnames [LIST] | show job [-o] ID."""
    oneliner = any(a in ("-o", "--oneliner") for a in argv)
    words = [a for a in argv if a not in ("-o", "--oneliner")]
    if words[:2] == ["show", "config"]:
        print("Configuration data as of 2026-01-01T00:00:00\nClusterName             = fake\n"
              "MaxArraySize            = 1001\nMinJobAge               = 300 sec")
        return 0
    if words[:2] == ["show", "hostnames"]:
        listed = words[2] if len(words) > 2 else os.environ.get("SLURM_JOB_NODELIST", "")
        print("\n".join(expand_hostlist(listed)))
        return 0
    if words[:2] == ["show", "job"] and len(words) == 3:
        print(show_job(words[2], oneliner))
        return 0
    raise FakeSlurmError(f"scontrol: unsupported command {' '.join(argv)}")


def scancel(argv: list[str]) -> int:
    """scancel ID... [--clusters=all]: mark each job CANCELLED and end its process group."""
    for jobid in (a for a in argv if not a.startswith("-")):
        jobid = jobid.split("_")[0]
        if not (job_dir(jobid) / "job.json").is_file():
            raise FakeSlurmError(f"scancel: invalid job id {jobid}")
        if job_state(jobid) not in FINISHED:
            set_state(jobid, "CANCELLED")
            pgid = job_dir(jobid) / "pgid"
            if pgid.is_file():
                try:
                    os.killpg(int(pgid.read_text()), signal.SIGTERM)
                except ProcessLookupError:
                    pass
    return 0


# --------------------------------------------------------------------------------------------------------- srun

SRUN_FLAGS = {"--exclusive", "--overlap", "-l", "--label", "-u", "--unbuffered", "-Q", "--quiet", "-v",
              "--verbose", "-K", "--kill-on-bad-exit", "--pty", "-X", "--disable-status", "--overcommit", "-O",
              "-k", "--no-kill", "--multi-prog"}
SRUN_SHORT_WITH_VALUE = set("nNcGJptmDeoiAwxCq")


def split_srun(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """srun's options (name -> value, flags -> '') and the command after them."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        elif arg in SRUN_FLAGS or (arg.startswith("--") and arg[2:] in ("exclusive", "overlap")):
            name, value = arg, ""
        elif arg.startswith("--"):
            name, value = arg, argv[i + 1]
            i += 1
        elif arg[1] in SRUN_SHORT_WITH_VALUE and len(arg) > 2:
            name, value = arg[:2], arg[2:]
        elif arg[1] in SRUN_SHORT_WITH_VALUE:
            name, value = arg, argv[i + 1]
            i += 1
        else:
            name, value = arg, ""
        opts[name] = value
        i += 1
    if i >= len(argv):
        raise FakeSlurmError(f"srun: no command in {' '.join(argv)}")
    return opts, argv[i:]


def task_layout(opts: dict[str, str]) -> tuple[int, int]:
    """(nodes, tasks) of a step: -N/--nodes and -n/--ntasks or --ntasks-per-node; default one task on one node.
    Fewer tasks than nodes shrink the step to one node per task, with srun's warning."""
    nodes = int(opts.get("-N") or opts.get("--nodes") or 1)
    ntasks = opts.get("-n") or opts.get("--ntasks")
    per_node = opts.get("--ntasks-per-node")
    tasks = int(ntasks) if ntasks else nodes * int(per_node or 1)
    if tasks < nodes:
        print(f"srun: warning: can't run {tasks} processes on {nodes} nodes, setting nnodes to {tasks}",
              file=sys.stderr)
        nodes = tasks
    check_gpus("srun", count_of(opts.get("--gpus") or opts.get("-G")), nodes)
    return nodes, tasks


def allocation_env(jobid: str, nodes: int) -> dict[str, str]:
    """What srun adds from the job record (slurmctld's view), whatever the caller's environment kept."""
    if not (job_dir(jobid) / "job.json").is_file():
        return {}
    job = load_job(jobid)
    if nodes > job["nodes"]:
        raise FakeSlurmError(f"srun: error: Only allocated {job['nodes']} nodes asked for {nodes}")
    return {"SLURM_JOB_NODELIST": nodelist(job["nodes"]), "SLURM_NODELIST": nodelist(job["nodes"]),
            "SLURM_JOB_NUM_NODES": str(job["nodes"]), "SLURM_JOB_NAME": job["name"],
            "SLURM_JOB_ACCOUNT": job["account"], "SLURM_JOB_PARTITION": job["partition"]}


def srun(argv: list[str]) -> int:
    """Run the command once per task, locally, each with the SLURM_* variables of its task; exit with the worst."""
    opts, command = split_srun(argv)
    nodes, tasks = task_layout(opts)
    per_node = -(-tasks // nodes)
    jobid = os.environ.get("SLURM_JOB_ID", "0")
    base = {**os.environ, **allocation_env(jobid, nodes)}
    step = next_id(f"step_counter_{jobid}", 0)
    append_jsonl("srun.jsonl", {"argv": argv, "command": command, "nodes": nodes, "tasks": tasks,
                                "jobid": jobid, "step": step, "cwd": os.getcwd()})
    procs = []
    for rank in range(tasks):
        env = {**base, "SLURM_STEP_ID": str(step), "SLURM_PROCID": str(rank), "SLURM_NODEID":
               str(rank // per_node), "SLURM_LOCALID": str(rank % per_node), "SLURM_NTASKS": str(tasks),
               "SLURM_NNODES": str(nodes), "SLURM_STEP_NUM_NODES": str(nodes), "SLURM_STEP_NUM_TASKS": str(tasks),
               "SLURM_STEP_NODELIST": nodelist(nodes), "SLURMD_NODENAME": f"{NODE_PREFIX}{rank // per_node}"}
        stdin = None if tasks == 1 else subprocess.DEVNULL
        procs.append(subprocess.Popen(command, env=env, stdin=stdin))
    codes = [p.wait() for p in procs]
    worst = max(codes, key=abs)
    return 128 - worst if worst < 0 else worst


# --------------------------------------------------------------------------------------------------------- main

TOOLS: dict[str, Callable[[list[str]], int]] = {
    "sbatch": sbatch, "squeue": squeue, "sacct": sacct, "sacctmgr": sacctmgr, "sshare": sshare, "sinfo": sinfo,
    "scontrol": scontrol, "scancel": scancel, "srun": srun,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description="A stand-in Slurm for tests (see the module docstring).")
    p.add_argument("tool", choices=[*TOOLS, "_run"])
    p.add_argument("args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv[:1])
    rest = argv[1:]
    try:
        if args.tool == "_run":
            return run_job(rest[0])
        append_jsonl("calls.jsonl", {"tool": args.tool, "argv": rest, "cwd": os.getcwd()})
        return TOOLS[args.tool](rest)
    except FakeSlurmError as e:
        print(f"{e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
