#!/usr/bin/env bash
# Wheels for benchmarks/device_check.sh, downloaded here into .whl/ (git-ignored) for a lent GPU machine, which
# reaches no package index. Its image already holds torch, triton, numpy, timm, accelerate, tokenizers,
# huggingface-hub, safetensors, scikit-image, scikit-learn, matplotlib and pandas (see the device tool's KINDS.md);
# these are what the harness needs beyond them, at this project's pins. Python 3.12, x86-64 manylinux.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl
plat=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps "${plat[@]}" -d .whl \
  transformers==5.23.0 peft==0.21.2 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 \
  hjson==3.1.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  dill==0.4.1 pycocotools==2.0.11 zstandard==0.25.0
# DeepSpeed publishes only a source archive: its pure-Python wheel, ops left to JIT-compile on the GPU machine.
DS_BUILD_OPS=0 DS_SKIP_CUDA_CHECK=1 .venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w .whl \
  deepspeed==0.19.8
ls .whl
du -sh .whl
