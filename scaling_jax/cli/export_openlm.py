"""``scaling-jax export-openlm RUN_OR_CHECKPOINT --out FILE.pt``: a run of ours as an OpenLM checkpoint
and the OpenLM model config (FILE.json) that builds it."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export-openlm", help="write a checkpoint as an OpenLM (PyTorch) .pt file")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT",
                   help="a run folder (its latest checkpoint), its checkpoints/ folder or one step's folder")
    p.add_argument("--out", required=True, help="the .pt file to write; its OpenLM model config goes beside it (.json)")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling_jax.openlm.transfer import export_openlm

    pt, cfg = export_openlm(args.checkpoint, args.out)
    print(f"wrote {pt} and its OpenLM model config {cfg} (open_lm: --model {cfg} --resume {pt})")
    return 0
