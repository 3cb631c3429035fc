"""``scaling-jax eval RUN_DIR_OR_CHECKPOINT --tasks TASKS --out DIR [--limit K]``."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="score a checkpoint on in-context tasks; write DIR/eval.json")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT",
                   help="a run folder (its latest checkpoint), its checkpoints/ folder or one step's folder")
    p.add_argument("--tasks", required=True,
                   help="a heavy.yaml-style task list, 'synthetic', or comma-separated labels of the default "
                        "list ($SCALING_JAX_ICL_TASKS, else ../shared/icl_tasks/heavy.yaml)")
    p.add_argument("--out", required=True, help="folder or gs:// prefix for eval.json and examples.jsonl")
    p.add_argument("--limit", type=int, help="score the first K examples of each task (few-shot draws unchanged)")
    p.add_argument("--tokenizer", help="tokenizer.json for text tasks (default: the run corpus's)")
    p.add_argument("--batch-tokens", type=int, default=8192, help="tokens per scoring batch (default 8192)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling_jax import paths
    from scaling_jax.atomic import check_out_dir
    from scaling_jax.errors import UserError

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit: must be an integer >= 1, got {args.limit}")
    if args.batch_tokens < 1:
        raise UserError(f"--batch-tokens: must be an integer >= 1, got {args.batch_tokens}")
    out = args.out if paths.is_gcs(args.out) else check_out_dir(args.out)
    from scaling_jax.eval.suite import resolve_tasks, run_suite
    from scaling_jax.train.lm import load_run, run_tokenizer

    run_ = load_run(args.checkpoint)
    corpus = run_.config.data.corpus
    specs = resolve_tasks(args.tasks, corpus.synthetic if corpus.kind == "synthetic" else None)
    tokenizer = run_tokenizer(run_.config, run_.lm.vocab_size, args.tokenizer)
    result = run_suite(run_.lm, tokenizer, specs, limit=args.limit, tokens_per_batch=args.batch_tokens,
                       progress=not args.no_progress)
    result.summary["checkpoint"] = {"path": str(args.checkpoint), "step": run_.step}
    result.write(out)
    s = result.summary
    for label, t in s["tasks"].items():
        print(f"{label:36s} {t['accuracy']:.4f}  (n={t['n_examples']}, chance {t['chance']:.3f})")
    for name in ("err_46", "err_17", "err_synthetic"):
        if s[name] is not None:
            print(f"{name}: {s[name]:.4f} over {s[name + '_n_tasks']} task(s)")
    if s["missing"]:
        print(f"missing task files: {', '.join(s['missing'])}")
    sp = s["speed"]
    print(f"{sp['examples']} examples in {sp['seconds']:.1f} s ({sp['compiles']} compile(s)); {out}/eval.json")
    return 0
