"""Start a trainer on one or many GPUs/nodes: ``python -m setok.launch --gpus G --nodes N -- python -m MODULE ARGS``.

The trainers read the standard ``torch.distributed`` variables (see ``setok.train.distributed``) and resume from
their last checkpoint, so this module only has to decide *how* to start them, and a requeued Slurm job simply runs
the same command again:

1. more than one node inside a Slurm allocation (``SLURM_JOB_ID`` set): one ``srun`` task per node, each running
   ``torchrun`` with ``--node-rank=$SLURM_NODEID`` and the first host of the allocation as rendezvous master (the
   profile gives such rules an ``mpi`` resource, so Snakemake's jobstep runs the command in the batch script itself
   and this ``srun`` creates the job's only step);
2. one node (in Slurm or not) with more than one usable GPU: ``torchrun --standalone`` on this machine;
3. otherwise (one GPU): the command unchanged.

GPUs asked are GPUs used (docs/cluster.md): a node that sees fewer GPUs than ``--gpus`` asks for stops the job with
one line (asked, visible, how to allow the CPU), never starting fewer processes. Only with ``--allow-cpu`` (the rules
pass it where the config's ``compute.allow_cpu`` is true: CI, the learning tier) does a node without any GPU run the
command unchanged as one CPU process, saying so in one line; a node with some GPUs but fewer than asked fails even
then (a rule asking for 8 that got 4 is a misconfigured allocation, not a CPU test).

:func:`plan` is pure (environment in, argv out) so every case is tested without Slurm; :func:`main` prints the plan
and ``exec``s it, so Slurm's signals reach the launcher directly and the exit code is the trainer's.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Mapping

DEFAULT_PORT = 29500
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


# ---------------------------------------------------------------------------------------------------------------------
# Slurm host lists
# ---------------------------------------------------------------------------------------------------------------------
# Slurm writes node lists compressed (``gpu[01-03,10],cpu5``). ``scontrol show hostnames`` would expand them, but
# parsing here keeps the launcher testable from a plain dict and working where no Slurm binary is on PATH.


def _split_top_level(hostlist: str) -> list[str]:
    """Split ``hostlist`` at the commas that are not inside brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(hostlist):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"host list {hostlist!r}: nested '[' at position {i}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"host list {hostlist!r}: unmatched ']' at position {i}")
        elif ch == "," and depth == 0:
            items.append(hostlist[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"host list {hostlist!r}: unclosed '['")
    items.append(hostlist[start:])
    return items


def _expand_ranges(body: str, hostlist: str) -> list[str]:
    """Expand the inside of one bracket (``01-03,10``), keeping each range's zero padding."""
    out = []
    for part in body.split(","):
        m = _RANGE.fullmatch(part)
        if not m:
            raise ValueError(f"host list {hostlist!r}: bad range {part!r} in '[{body}]'")
        lo_text, hi_text = m.group(1), m.group(2) or m.group(1)
        lo, hi = int(lo_text), int(hi_text)
        if hi < lo:
            raise ValueError(f"host list {hostlist!r}: range {part!r} runs backwards")
        width = len(lo_text)  # Slurm pads every number of a range to the width of its first bound
        out.extend(f"{i:0{width}d}" for i in range(lo, hi + 1))
    return out


def _expand_item(item: str, hostlist: str) -> list[str]:
    """Expand one host pattern: text, then any number of ``[ranges]`` each followed by text (``a[1-2]-ib``)."""
    if not item:
        raise ValueError(f"host list {hostlist!r}: empty host name")
    open_at = item.find("[")
    if open_at < 0:
        return [item]
    close_at = item.index("]", open_at)  # brackets were checked by _split_top_level
    prefix, body, rest = item[:open_at], item[open_at + 1:close_at], item[close_at + 1:]
    tails = _expand_item(rest, hostlist) if rest else [""]
    return [prefix + number + tail for number in _expand_ranges(body, hostlist) for tail in tails]


def expand_hostlist(hostlist: str) -> list[str]:
    """Expand a Slurm host list (``gpu[01-03,10],cpu5``) into host names, in order, zero padding kept."""
    hostlist = hostlist.strip()
    if not hostlist:
        raise ValueError("host list is empty")
    return [host for item in _split_top_level(hostlist) for host in _expand_item(item, hostlist)]


# ---------------------------------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------------------------------


def ranks(nnodes: int, nproc_per_node: int, node_rank: int) -> list[int]:
    """Global ranks of the processes ``torchrun`` starts on node ``node_rank``.

    With a static rendezvous (``--node-rank`` and ``--master-addr`` given, as :func:`plan` does under Slurm) torchrun
    numbers workers node by node: local rank ``l`` on node ``n`` is global rank ``n * nproc_per_node + l``, and the
    world size is ``nnodes * nproc_per_node``.
    """
    if nnodes < 1 or nproc_per_node < 1:
        raise ValueError(f"ranks: nnodes ({nnodes}) and nproc_per_node ({nproc_per_node}) must be >= 1")
    if not 0 <= node_rank < nnodes:
        raise ValueError(f"ranks: node_rank {node_rank} is outside 0..{nnodes - 1}")
    return [node_rank * nproc_per_node + local for local in range(nproc_per_node)]


def _python_module(command: list[str]) -> tuple[str, list[str]]:
    """Split ``python -m module args...`` into ``(module, args)``; anything else is a ValueError."""
    if len(command) >= 3 and _PYTHON.fullmatch(os.path.basename(command[0])) and command[1] == "-m":
        return command[2], list(command[3:])
    raise ValueError(f"command must be 'python -m <module> [args...]' to run under torchrun, "
                     f"got {shlex.join(command)!r}")


def _env_int(env: Mapping[str, str], *names: str) -> int | None:
    """The first of ``names`` set in ``env``, as an int (None when none is set)."""
    for name in names:
        if env.get(name, "").strip():
            try:
                return int(env[name])
            except ValueError:
                raise ValueError(f"${name}={env[name]!r} is not an integer") from None
    return None


def _slurm_plan(module: str, args: list[str], *, gpus: int, nodes: int, env: Mapping[str, str],
                port: int) -> list[str]:
    """One srun task per node, each a torchrun with this node's rank (``$SLURM_NODEID``, expanded by the task)."""
    nnodes = _env_int(env, "SLURM_NNODES", "SLURM_JOB_NUM_NODES")
    if nnodes is None:
        raise ValueError("inside Slurm but neither $SLURM_NNODES nor $SLURM_JOB_NUM_NODES is set")
    if nnodes < nodes:
        raise ValueError(f"the Slurm allocation has {nnodes} node(s) but --nodes asks for {nodes}")
    nproc = gpus or _env_int(env, "SLURM_GPUS_ON_NODE") or 1
    key = "SLURM_JOB_NODELIST" if env.get("SLURM_JOB_NODELIST") else "SLURM_NODELIST"
    if not env.get(key):
        raise ValueError("inside Slurm but $SLURM_JOB_NODELIST is not set")
    try:
        master = expand_hostlist(env[key])[0]
    except ValueError as e:
        raise ValueError(f"${key}: {e}") from None
    # two jobs sharing a node must not both listen on the base port
    master_port = port + (_env_int(env, "SLURM_JOB_ID") or 0) % 1000
    quoted = shlex.join([f"--nnodes={nnodes}", f"--nproc-per-node={nproc}"])
    tail = shlex.join([f"--master-addr={master}", f"--master-port={master_port}", "-m", module, *args])
    script = f"exec torchrun {quoted} --node-rank=$SLURM_NODEID {tail}"
    return ["srun", f"--nodes={nnodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "bash", "-c", script]


_SCONTROL_FIELD = re.compile(r"(?:^|\s)(NodeList|NumNodes)=(\S+)")


def allocation_from_scontrol(text: str) -> dict[str, str]:
    """``SLURM_JOB_NODELIST`` and ``SLURM_NNODES`` from ``scontrol show job -o <id>`` output.

    Snakemake's slurm-jobstep executor removes every ``SLURM_*`` variable but the job id before it runs a rule's
    command, so a multi-node launch asks the controller for its allocation instead (``NumNodes=2-2`` is a range).
    """
    fields = dict(_SCONTROL_FIELD.findall(text))
    if "NodeList" not in fields or "NumNodes" not in fields:
        raise ValueError(f"scontrol output lacks NodeList= or NumNodes=: {text.strip()[:200]!r}")
    return {"SLURM_JOB_NODELIST": fields["NodeList"], "SLURM_NNODES": fields["NumNodes"].split("-")[0]}


def slurm_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env``, with the allocation filled in from ``scontrol`` when only ``SLURM_JOB_ID`` survived."""
    out = dict(env)
    if "SLURM_JOB_ID" in out and not (out.get("SLURM_JOB_NODELIST") or out.get("SLURM_NODELIST")):
        import subprocess

        done = subprocess.run(["scontrol", "show", "job", "-o", out["SLURM_JOB_ID"]], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise ValueError(f"scontrol show job {out['SLURM_JOB_ID']} failed: {done.stderr.strip()}")
        out.update(allocation_from_scontrol(done.stdout))
    return out


class TooFewGPUs(ValueError):
    """This node sees fewer GPUs than the job asks for (one line: asked, visible, how to allow the CPU)."""


def cpu_note(gpus: int, command: list[str]) -> str:
    """The one line a CPU run prints: that it runs on the CPU, why, and the command."""
    return (f"launch: on the CPU (--gpus {gpus} asked, 0 GPU(s) visible, --allow-cpu given): "
            f"{shlex.join(command)}")


def check_gpus(gpus: int, visible_gpus: int, *, allow_cpu: bool) -> bool:
    """Whether this node runs on the CPU: True when it sees no GPU and ``allow_cpu``; False when it sees the GPUs
    asked for (``gpus`` 0: any number, at least one); else :class:`TooFewGPUs`."""
    if visible_gpus > 0 and visible_gpus >= gpus:
        return False
    if visible_gpus == 0 and allow_cpu:
        return True
    asked = f"--gpus {gpus}" if gpus else "--gpus 0 (every visible GPU)"
    how = ("a node with some GPUs but fewer than asked is refused even with --allow-cpu; ask for what the node has"
           if visible_gpus else
           "to run on the CPU on purpose pass --allow-cpu (the workflow does where compute.allow_cpu: true)")
    raise TooFewGPUs(f"{asked} per node asked but {visible_gpus} GPU(s) visible on this node; {how}")


def plan(command: list[str], *, gpus: int, nodes: int, env: Mapping[str, str], visible_gpus: int,
         allow_cpu: bool = False, port: int = DEFAULT_PORT) -> list[str]:
    """The argv that runs ``command`` on ``nodes`` node(s) with ``gpus`` GPUs each (see the module docstring).

    ``gpus`` is the rule's GPU resource per node (0: take ``$SLURM_GPUS_ON_NODE`` inside Slurm, else every visible
    GPU); ``visible_gpus`` is what this node (inside Slurm: the job step, ``CUDA_VISIBLE_DEVICES``) shows: fewer
    than ``gpus`` is :class:`TooFewGPUs`, none is a CPU run of the command unchanged when ``allow_cpu``. ``port`` is
    the rendezvous base port, to which a Slurm job adds ``SLURM_JOB_ID % 1000``. Outside Slurm ``nodes`` is only
    validated: the run stays on this machine. A multi-node job checks the node the launcher runs on (the batch
    host); torchrun on the other nodes starts ``gpus`` processes there.
    """
    if nodes < 1:
        raise ValueError(f"--nodes must be >= 1, got {nodes}")
    if gpus < 0:
        raise ValueError(f"--gpus must be >= 0, got {gpus}")
    if not command:
        raise ValueError("no command given after '--'")
    if "SLURM_JOB_ID" in env and nodes > 1:
        module, args = _python_module(command)
        planned = _slurm_plan(module, args, gpus=gpus, nodes=nodes, env=env, port=port)
        # Allowed CPU run: the same torchrun per node, its processes on the CPU (gloo).
        check_gpus(gpus or _env_int(env, "SLURM_GPUS_ON_NODE") or 0, visible_gpus, allow_cpu=allow_cpu)
        return planned
    # One node, in Slurm or not. Snakemake's slurm-jobstep executor already runs a one-node rule inside an
    # `srun -n1 --gpus=G` step; a second srun there would wait for resources its own step holds.
    if check_gpus(gpus, visible_gpus, allow_cpu=allow_cpu):
        return list(command)  # allowed CPU run: one process, the command as the rule wrote it
    local = gpus or visible_gpus  # gpus 0: every GPU the machine (or the job step) shows
    if local > 1:
        module, args = _python_module(command)
        return ["torchrun", "--standalone", f"--nproc-per-node={local}", "-m", module, *args]
    return list(command)


# ---------------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------------


def visible_gpu_count() -> int:
    """CUDA GPUs this process can use (``setok.devices.visible_gpu_count``: nvidia-smi and CUDA_VISIBLE_DEVICES,
    torch only without nvidia-smi)."""
    from setok.devices import visible_gpu_count as count

    return count()


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` at the first ``--`` into (launcher options, command)."""
    if "--" not in argv:
        return argv, []
    at = argv.index("--")
    return argv[:at], argv[at + 1:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m setok.launch", description=__doc__,
                                 usage="%(prog)s [--gpus G] [--nodes N] [--allow-cpu] [--dry-run] "
                                       "-- python -m MODULE [ARGS...]",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpus", type=int, default=0,
                    help="GPUs per node (0: from Slurm, else every visible one); fewer visible is an error")
    ap.add_argument("--allow-cpu", action="store_true",
                    help="with no GPU visible, run the command on the CPU (one process) instead of failing")
    ap.add_argument("--nodes", type=int, default=1, help="nodes the job needs (checked against the allocation)")
    ap.add_argument("--dry-run", action="store_true", help="print the planned command and exit")
    options, command = _split_command(sys.argv[1:] if argv is None else list(argv))
    args = ap.parse_args(options)
    if not command:
        ap.error("give the command to run after '--', e.g. -- python -m setok.train.tokenizer --config C")
    try:
        env = slurm_env(os.environ) if args.nodes > 1 else dict(os.environ)
        visible = visible_gpu_count()
        argv_out = plan(command, gpus=args.gpus, nodes=args.nodes, env=env, visible_gpus=visible,
                        allow_cpu=args.allow_cpu)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(shlex.join(argv_out))
        return 0
    # plan() accepted no GPU only with --allow-cpu
    line = cpu_note(args.gpus, argv_out) if visible == 0 else f"launch: {shlex.join(argv_out)}"
    print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execvp(argv_out[0], argv_out)
    return 1  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    raise SystemExit(main())
