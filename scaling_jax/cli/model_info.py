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
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def info(cfg) -> dict:
    from scaling_jax.model import counts

    return {
        "name": cfg.name,
        "params": counts.paper_params(cfg),
        "params_no_embed": counts.params_no_embed(cfg),
        "trainable": counts.trainable_params(cfg),
        "flops_per_token": counts.flops_per_token(cfg),
        "flops_per_token_exact": counts.flops_per_token(cfg, exact=True),
        **counts.memory_bytes(cfg),
    }


def run(args) -> int:
    from scaling_jax.model.config import load_model_config

    result = info(load_model_config(args.config, args.override))
    if args.json:
        print(json.dumps(result))
    else:
        width = max(map(len, result))
        for key, value in result.items():
            print(f"{key:<{width}}  {value:,}" if isinstance(value, int) else f"{key:<{width}}  {value}")
    return 0
