"""Memory and speed of SeTok + SeTokIM at paper scale, planned on paper and measured (``benchmarks/scaling_plan.py``).

``formulas`` (closed forms), ``counting`` (parameters, FLOPs, saved bytes of built modules), ``builds`` (the
paper-scale modules on the meta device), ``plan`` (the stages of a config), ``budget`` (memory and time of a stage on
the machine), ``render`` (markdown tables), ``measure`` (GPU timings), ``document`` (the generated doc sections).
"""
