"""The multi-node launcher: planned commands from fake environments, host lists, ranks, and the real bash quoting."""
import json
import os
import shlex
import subprocess
import sys

import pytest

from setok import launch
from setok.launch import expand_hostlist, plan, ranks

TRAIN = ["python", "-m", "setok.train.tokenizer", "--config", "configs/a b.yaml", "--out", "results/$HOME/x"]
TWO_NODES = {"SLURM_JOB_ID": "4242", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "gpu[07-08]"}


def _torchrun_args(planned: list[str]) -> list[str]:
    """The torchrun argv inside the srun ``bash -c`` script, split as bash would (``$SLURM_NODEID`` left as is)."""
    assert planned[:4] == ["srun", planned[1], "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert planned[4:6] == ["bash", "-c"] and len(planned) == 7
    words = shlex.split(planned[6])
    assert words[:2] == ["exec", "torchrun"]
    return words[2:]


# --- two nodes x four GPUs -------------------------------------------------------------------------------------------


def test_two_nodes_four_gpus_plan():
    planned = plan(TRAIN, gpus=4, nodes=2, env=TWO_NODES, visible_gpus=4)
    assert planned[:6] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "bash", "-c"]
    assert _torchrun_args(planned) == [
        "--nnodes=2", "--nproc-per-node=4", "--node-rank=$SLURM_NODEID", "--master-addr=gpu07",
        "--master-port=29742", "-m", "setok.train.tokenizer", "--config", "configs/a b.yaml", "--out",
        "results/$HOME/x",
    ]


def test_two_nodes_four_gpus_ranks_cover_the_world_once():
    assert ranks(2, 4, 0) == [0, 1, 2, 3]
    assert ranks(2, 4, 1) == [4, 5, 6, 7]
    union = ranks(2, 4, 0) + ranks(2, 4, 1)
    assert sorted(union) == list(range(8)) and len(set(union)) == 8  # world size 2 * 4, no rank twice


def test_ranks_rejects_a_node_outside_the_job():
    with pytest.raises(ValueError, match="node_rank 2"):
        ranks(2, 4, 2)


def test_srun_script_expands_node_id_and_keeps_module_args(tmp_path):
    fake = tmp_path / "torchrun"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    fake.chmod(0o755)
    planned = plan(TRAIN, gpus=4, nodes=2, env=TWO_NODES, visible_gpus=4)
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "SLURM_NODEID": "1", "HOME": "/should/not/expand"}
    out = subprocess.run(planned[4:], env=env, capture_output=True, text=True, check=True, timeout=30)
    assert json.loads(out.stdout) == [
        "--nnodes=2", "--nproc-per-node=4", "--node-rank=1", "--master-addr=gpu07", "--master-port=29742",
        "-m", "setok.train.tokenizer", "--config", "configs/a b.yaml", "--out", "results/$HOME/x",
    ]


# --- host lists ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostlist, hosts", [
    ("gpu07", ["gpu07"]),
    ("gpu[07-08]", ["gpu07", "gpu08"]),
    ("gpu[01-03,10],cpu5", ["gpu01", "gpu02", "gpu03", "gpu10", "cpu5"]),
    ("gpu[8-10]", ["gpu8", "gpu9", "gpu10"]),
    ("gpu[098-101]", ["gpu098", "gpu099", "gpu100", "gpu101"]),
    ("a[1-2]-ib", ["a1-ib", "a2-ib"]),
    ("r[1-2]n[01-02]", ["r1n01", "r1n02", "r2n01", "r2n02"]),
    ("node-a,node-b", ["node-a", "node-b"]),
])
def test_expand_hostlist(hostlist, hosts):
    assert expand_hostlist(hostlist) == hosts


@pytest.mark.parametrize("bad", ["gpu[07-", "gpu07]", "gpu[08-07]", "gpu[a-b]", "gpu[]", "gpu[1,,2]", "", "a,,b",
                                 "gpu[[1]]"])
def test_malformed_hostlist_is_an_error(bad):
    with pytest.raises(ValueError):
        expand_hostlist(bad)


def test_malformed_nodelist_in_slurm_names_the_variable():
    env = {**TWO_NODES, "SLURM_JOB_NODELIST": "gpu[07-"}
    with pytest.raises(ValueError, match=r"SLURM_JOB_NODELIST.*gpu\[07-"):
        plan(TRAIN, gpus=4, nodes=2, env=env, visible_gpus=4)


# --- the other cases -------------------------------------------------------------------------------------------------


def test_single_node_inside_slurm_is_torchrun_standalone_without_a_nested_srun():
    # Snakemake's jobstep already runs a one-node rule inside `srun -n1 --gpus=8`: a second srun would wait forever.
    env = {"SLURM_JOB_ID": "17", "SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_NODELIST": "dgx3", "SLURM_STEP_ID": "0"}
    planned = plan(TRAIN, gpus=8, nodes=1, env=env, visible_gpus=8)
    assert planned[:3] == ["torchrun", "--standalone", "--nproc-per-node=8"] and "srun" not in planned
    assert plan(TRAIN, gpus=0, nodes=1, env=env, visible_gpus=4)[2] == "--nproc-per-node=4"  # 0: what the step shows
    with pytest.raises(launch.TooFewGPUs, match="--gpus 8 per node asked but 1 GPU"):
        plan(TRAIN, gpus=8, nodes=1, env=env, visible_gpus=1)


def test_multi_node_defaults_to_the_slurm_gpu_count():
    env = {"SLURM_JOB_ID": "3000", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "cpu[5-6]", "SLURM_GPUS_ON_NODE": "8"}
    assert _torchrun_args(plan(TRAIN, gpus=0, nodes=2, env=env, visible_gpus=8))[1] == "--nproc-per-node=8"
    with pytest.raises(launch.TooFewGPUs, match="--gpus 8 per node asked but 4 GPU"):  # the batch host is checked
        plan(TRAIN, gpus=0, nodes=2, env=env, visible_gpus=4)
    del env["SLURM_GPUS_ON_NODE"]
    assert _torchrun_args(plan(TRAIN, gpus=0, nodes=2, env=env, visible_gpus=1))[1] == "--nproc-per-node=1"
    assert _torchrun_args(plan(TRAIN, gpus=0, nodes=2, env=env, visible_gpus=1, port=40000))[4] == \
        "--master-port=40000"  # 3000 % 1000 == 0


def test_outside_slurm_starts_one_process_per_gpu_asked():
    planned = plan(TRAIN, gpus=4, nodes=1, env={}, visible_gpus=8)
    assert planned == ["torchrun", "--standalone", "--nproc-per-node=4", "-m", "setok.train.tokenizer",
                       "--config", "configs/a b.yaml", "--out", "results/$HOME/x"]
    assert plan(TRAIN, gpus=0, nodes=1, env={}, visible_gpus=8)[2] == "--nproc-per-node=8"  # 0: every visible GPU


# --- GPUs asked are GPUs used ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("allow_cpu", [False, True])
@pytest.mark.parametrize("gpus, visible", [(8, 4), (4, 1), (2, 1)])
def test_fewer_gpus_than_asked_is_an_error_even_with_allow_cpu(gpus, visible, allow_cpu):
    with pytest.raises(launch.TooFewGPUs, match=rf"--gpus {gpus} per node asked but {visible} GPU\(s\) visible"):
        plan(TRAIN, gpus=gpus, nodes=1, env={}, visible_gpus=visible, allow_cpu=allow_cpu)


@pytest.mark.parametrize("gpus", [0, 1, 8])
def test_no_gpu_is_an_error_that_names_the_way_to_allow_cpu(gpus):
    with pytest.raises(launch.TooFewGPUs, match=r"0 GPU\(s\) visible.*--allow-cpu.*compute\.allow_cpu"):
        plan(TRAIN, gpus=gpus, nodes=1, env={}, visible_gpus=0)


@pytest.mark.parametrize("gpus", [0, 1, 8])
def test_no_gpu_with_allow_cpu_runs_the_command_unchanged(gpus):
    assert plan(TRAIN, gpus=gpus, nodes=1, env={"PATH": "/bin"}, visible_gpus=0, allow_cpu=True) == TRAIN


def test_no_gpu_on_a_multi_node_batch_host_needs_allow_cpu():
    with pytest.raises(launch.TooFewGPUs, match="--gpus 4 per node asked but 0 GPU"):
        plan(TRAIN, gpus=4, nodes=2, env=TWO_NODES, visible_gpus=0)
    assert plan(TRAIN, gpus=4, nodes=2, env=TWO_NODES, visible_gpus=0, allow_cpu=True) == \
        plan(TRAIN, gpus=4, nodes=2, env=TWO_NODES, visible_gpus=4)


@pytest.mark.parametrize("gpus, visible", [(1, 1), (1, 8)])
def test_one_gpu_runs_the_command_unchanged(gpus, visible):
    assert plan(TRAIN, gpus=gpus, nodes=1, env={"PATH": "/bin"}, visible_gpus=visible) == TRAIN


def test_allocation_smaller_than_requested_is_an_error():
    env = {**TWO_NODES, "SLURM_NNODES": "1"}
    with pytest.raises(ValueError, match=r"has 1 node\(s\) but --nodes asks for 2"):
        plan(TRAIN, gpus=4, nodes=2, env=env, visible_gpus=4)


@pytest.mark.parametrize("command", [["bash", "train.sh"], ["python", "train.py"], ["python", "-m"]])
def test_command_that_is_not_python_m_is_an_error(command):
    with pytest.raises(ValueError, match=r"python -m <module>.*" + command[0]):
        plan(command, gpus=4, nodes=2, env=TWO_NODES, visible_gpus=0)


def test_interpreter_path_is_accepted():
    planned = plan(["/opt/venv/bin/python3.11", "-m", "m", "x"], gpus=2, nodes=1, env={}, visible_gpus=2)
    assert planned == ["torchrun", "--standalone", "--nproc-per-node=2", "-m", "m", "x"]


@pytest.mark.parametrize("gpus, nodes, match", [(1, 0, "--nodes must be >= 1"), (-1, 1, "--gpus must be >= 0")])
def test_bad_counts_are_errors(gpus, nodes, match):
    with pytest.raises(ValueError, match=match):
        plan(TRAIN, gpus=gpus, nodes=nodes, env={}, visible_gpus=0)


# --- command line ----------------------------------------------------------------------------------------------------


@pytest.fixture
def slurm_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("SLURM_"):
            monkeypatch.delenv(key)
    for key, value in TWO_NODES.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launch, "visible_gpu_count", lambda: 4)


def test_main_dry_run_prints_the_plan(slurm_env, capsys):
    assert launch.main(["--gpus", "4", "--nodes", "2", "--dry-run", "--", *TRAIN]) == 0
    out = capsys.readouterr().out
    assert shlex.split(out) == plan(TRAIN, gpus=4, nodes=2, env=TWO_NODES, visible_gpus=4)
    assert out.count("\n") == 1


def test_main_prints_and_execs_the_plan(slurm_env, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(launch.os, "execvp", lambda file, args: calls.append((file, args)))
    launch.main(["--gpus", "4", "--nodes", "2", "--", *TRAIN])
    expected = plan(TRAIN, gpus=4, nodes=2, env=TWO_NODES, visible_gpus=4)
    assert calls == [("srun", expected)]
    assert capsys.readouterr().err == f"launch: {shlex.join(expected)}\n"


def test_main_reports_a_bad_plan_in_one_line(slurm_env, capsys):
    assert launch.main(["--gpus", "4", "--nodes", "3", "--", *TRAIN]) == 2
    err = capsys.readouterr().err
    assert err == "error: the Slurm allocation has 2 node(s) but --nodes asks for 3\n"


def test_main_without_a_command_is_a_usage_error(slurm_env):
    with pytest.raises(SystemExit) as e:
        launch.main(["--gpus", "4"])
    assert e.value.code == 2


def test_allocation_from_scontrol_when_the_jobstep_removed_the_slurm_variables():
    text = ("JobId=4242 JobName=snakejob.train_stage1 UserId=me(1) NumNodes=2-2 NumCPUs=144 NumTasks=2 "
            "NodeList=gpu[07-08] BatchHost=gpu07 TRES=cpu=144,mem=1000G,node=2,billing=144,gres/gpu=16\n")
    env = {"SLURM_JOB_ID": "4242", **launch.allocation_from_scontrol(text)}
    assert env["SLURM_NNODES"] == "2" and env["SLURM_JOB_NODELIST"] == "gpu[07-08]"
    assert _torchrun_args(plan(TRAIN, gpus=8, nodes=2, env=env, visible_gpus=8))[:4] == [
        "--nnodes=2", "--nproc-per-node=8", "--node-rank=$SLURM_NODEID", "--master-addr=gpu07"]
    with pytest.raises(ValueError, match="lacks NodeList"):
        launch.allocation_from_scontrol("JobId=1 NumNodes=1")


# --- GPUs asked are GPUs used: the real command line -----------------------------------------------------------------


def _launch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m setok.launch ARGS`` in a fresh process from the repository root."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run([sys.executable, "-m", "setok.launch", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def no_gpu_env() -> dict[str, str]:
    """This environment with every CUDA device hidden (the test means the same on a GPU machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def test_cli_eight_gpus_asked_none_visible_fails_in_one_line(no_gpu_env):
    done = _launch("--gpus", "8", "--nodes", "1", "--", "python", "-c", "print(1)", env=no_gpu_env)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr  # the whole stderr: one line
    assert "--gpus 8" in done.stderr and "0 GPU(s) visible" in done.stderr and "--allow-cpu" in done.stderr


def test_cli_allow_cpu_runs_the_command_on_the_cpu_saying_so_in_one_line(no_gpu_env):
    done = _launch("--gpus", "8", "--nodes", "1", "--allow-cpu", "--", "python", "-c", "print(1)", env=no_gpu_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1\n"
    assert done.stderr.count("\n") == 1 and "on the CPU" in done.stderr and "--gpus 8" in done.stderr


@pytest.mark.parametrize("allow_cpu", [[], ["--allow-cpu"]])
def test_main_four_visible_of_eight_asked_fails_in_one_line(monkeypatch, capsys, allow_cpu):
    for key in list(os.environ):
        if key.startswith("SLURM_"):
            monkeypatch.delenv(key)
    monkeypatch.setattr(launch, "visible_gpu_count", lambda: 4)
    monkeypatch.setattr(launch.os, "execvp", lambda *a: pytest.fail("must not start anything"))
    assert launch.main(["--gpus", "8", *allow_cpu, "--", *TRAIN]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--gpus 8 per node asked but 4 GPU(s) visible" in err


# --- counting GPUs without torch -------------------------------------------------------------------------------------


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that lists 8 GPUs (the count must not need torch)."""
    exe = tmp_path / "nvidia-smi"
    lines = "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d})\\n" for i in range(8))
    exe.write_text(f"#!/bin/sh\nprintf '{lines}'\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("visible, count", [(None, 8), ("0,1,2,3", 4), ("GPU-00000001,GPU-00000002", 2), ("", 0),
                                            ("-1", 0), ("0,-1,2", 1), ("0,1,2,3,4,5,6,7,8,9", 8)])
def test_visible_gpu_count_reads_nvidia_smi_and_cuda_visible_devices(fake_nvidia_smi, visible, count):
    from setok.devices import visible_gpu_count

    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert visible_gpu_count(env) == count
