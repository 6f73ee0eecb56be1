"""What a planned stage needs on the machine: memory per GPU under a ZeRO stage, whether recomputation is needed,
and time per sample and step, communication and GPU-hours."""
from __future__ import annotations

from .formulas import GB, comm_bytes, usable_gpus, zero_bytes
from .plan import Hardware, Stage


def memory(st: Stage, hw: Hardware, *, zero: int, recompute: bool) -> dict[str, float]:
    """Bytes per GPU of ``st`` under ZeRO ``zero`` on the ranks it can use."""
    n = usable_gpus(batch=st.batch, micro=st.micro, gpus=hw.gpus)
    z = zero_bytes(trainable=st.trainable, frozen=st.frozen, stage=zero, gpus=n)
    act = st.act_recompute if recompute and st.act_recompute is not None else st.act
    return {**z, "act": act, "total": z["total"] + st.outside + act, "gpus": n}


def needs_recompute(st: Stage, hw: Hardware) -> bool:
    """Full recomputation is planned when the configured ZeRO stage does not fit without it."""
    fits = memory(st, hw, zero=st.zero, recompute=False)["total"] <= hw.headroom * hw.memory_gb * GB
    return st.act_recompute is not None and not fits


def timing(st: Stage, hw: Hardware) -> dict[str, float]:
    """Seconds per sample at ``hw.mfu``, then steps, communication and GPU-hours."""
    frozen_peak = hw.fp32_tflops if st.frozen_precision == "fp32" else hw.bf16_tflops
    frozen_sec = st.frozen_flops / (hw.mfu * frozen_peak * 1e12)
    sec = st.bf16_flops / (hw.mfu * hw.bf16_tflops * 1e12) + frozen_sec
    n = usable_gpus(batch=st.batch, micro=st.micro, gpus=hw.gpus)
    acc = st.batch // (st.micro * n)
    bw = (hw.nvlink_gbs if n <= 8 else hw.ib_gbs) * GB
    comm = comm_bytes(zero=st.zero, trainable=st.trainable, frozen=st.frozen, gpus=n, accumulation=acc) / bw
    gpu_hours = st.steps * st.batch * sec / 3600
    rc = st.recompute_flops if needs_recompute(st, hw) else 0.0
    return {"gpus": n, "sec": sec, "step": st.batch * sec / n, "comm": comm, "gpu_hours": gpu_hours,
            "hours": gpu_hours / n, "hours8": gpu_hours / 8, "hfu": hw.mfu * (st.bf16_flops + rc) / st.bf16_flops,
            "frozen_share": frozen_sec / sec}
