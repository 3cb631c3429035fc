"""``scaling-jax import-openlm CHECKPOINT --model NAME --out DIR``: an OpenLM .pt checkpoint as a run
folder of ours (eval, train --init-from and train.lm.load_run read it)."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("import-openlm", help="convert an OpenLM (PyTorch) checkpoint into a run folder")
    p.add_argument("checkpoint",
                   help="OpenLM .pt file (a training checkpoint holding state_dict, or a bare state dict)")
    p.add_argument("--model", required=True, help="model preset its shapes must match (e.g. d=96_l=8_h=4, open_lm_1b) "
                                                  "or a YAML path")
    p.add_argument("--out", required=True, help="new run folder: config.json and checkpoints/0")
    p.add_argument("--positional", choices=("rotary", "head_rotary"), default="rotary",
                   help="the checkpoint's positional_embedding_type (default rotary; head_rotary: OpenLM's old layout)")
    p.add_argument("--override", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model config field, e.g. -o qk_norm=false (repeatable)")
    p.add_argument("--tokenizer", help="tokenizer.json that eval uses for text tasks (the paper's: GPT-NeoX-20B's)")
    p.add_argument("--unsafe-pickle", action="store_true",
                   help="load a file holding non-tensor objects (runs its pickled code: trusted files only)")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from scaling_jax.openlm.transfer import import_openlm

    t0 = time.perf_counter()
    out = import_openlm(args.checkpoint, args.model, args.out, [*args.override, f"positional={args.positional}"],
                        tokenizer=args.tokenizer, unsafe_pickle=args.unsafe_pickle)
    print(f"imported {args.checkpoint} as model {args.model} in {time.perf_counter() - t0:.1f} s: {out} "
          f"(scaling-jax eval {out} --tasks ...)")
    return 0
