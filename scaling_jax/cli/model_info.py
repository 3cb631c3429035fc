"""``scaling-jax model-info CONFIG``: sizes, FLOPs and memory of a model, no weights allocated."""

from __future__ import annotations

import json


def add_parser(subparsers):
    p = subparsers.add_parser(
        "model-info", help="parameter counts, FLOPs per token and memory of a model config"
    )
    p.add_argument("config", help="a preset name (e.g. d=96_l=8_h=4, tiny_d64) or a YAML path")
    p.add_argument("--override", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. -o seq_len=512 (repeatable)")
    p.add_argument("--batch", type=int, default=1, metavar="SEQUENCES",
                   help="sequences per optimizer step (the global batch), for the step's FLOPs (default 1)")
    p.add_argument("--devices", type=int, default=1, help="devices the step is split over (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def info(cfg, batch: int = 1, devices: int = 1) -> dict:
    """Counts of ``cfg``; the step's FLOPs for ``batch`` sequences over ``devices`` (model/flops.py:
    6·N, and exact with causal attention counted half, the count MFU uses)."""
    from scaling_jax.model import counts, flops

    return {
        "name": cfg.name,
        "params": counts.paper_params(cfg),
        "params_no_embed": counts.params_no_embed(cfg),
        "trainable": counts.trainable_params(cfg),
        "flops_per_token": flops.flops_per_token(cfg),
        "flops_per_token_exact": flops.flops_per_token(cfg, exact=True),
        "batch": batch,
        "devices": devices,
        "step_flops_per_device": flops.step_flops_per_device(cfg, batch, devices, exact=False),
        "step_flops_per_device_exact": flops.step_flops_per_device(cfg, batch, devices),
        **counts.memory_bytes(cfg),
    }


def run(args) -> int:
    from scaling_jax.errors import UserError
    from scaling_jax.model.config import load_model_config

    for flag, value in (("--batch", args.batch), ("--devices", args.devices)):
        if value < 1:
            raise UserError(f"{flag}: must be a positive integer, got {value}")
    result = info(load_model_config(args.config, args.override), args.batch, args.devices)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(map(len, result))
        for key, value in result.items():
            print(f"{key:<{width}}  {value:,}" if isinstance(value, int)
                  else f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return 0
