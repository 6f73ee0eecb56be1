#!/usr/bin/env bash
# The paper-scale check on one lent GPU (H100/H200): run there through the device tool with `carry: [".whl"]`
# after benchmarks/device_wheels.sh here. Installs the carried wheels beside the machine's torch, checks the
# imports, then benchmarks/paper_scale_check.py --measure (every SeTokIM stage at paper sizes for a few steps, one
# prediction per output kind, and scaling_plan.py --measure). Extra arguments go to paper_scale_check.py.
# Leaves in $OUT: paper_scale_check.md, measured.md, logs.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_check_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false
python3 - <<'PY' || exit 1
import importlib
for name in ("torch", "transformers", "peft", "deepspeed", "open_clip", "pycocotools", "zstandard",
             "setok.train.mllm", "setok.train.tokenizer", "evaluation.predict.mllm"):
    m = importlib.import_module(name)
    print(f"{name} {getattr(m, '__version__', '')}")
import torch
print(torch.cuda.get_device_name(), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
PY
python3 benchmarks/paper_scale_check.py --out /tmp/psc --measure "$@"
rc=$?
cp /tmp/psc/paper_scale_check.md /tmp/psc/measured.md "$OUT"/ 2>/dev/null
tar czf "$OUT/logs.tar.gz" -C /tmp/psc logs config.yaml 2>/dev/null
exit $rc
