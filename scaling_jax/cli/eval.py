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
    h = p.add_argument_group("lm-evaluation-harness (pip install 'scaling_jax[harness]')")
    h.add_argument("--harness", choices=("lm-eval",),
                   help="score lm-eval's tasks (--tasks: comma-separated lm-eval task names) instead of ours; "
                        "writes lm_eval_results.json, eval.json and, for a run folder, record.json")
    h.add_argument("--include-path", action="append", default=[], metavar="DIR",
                   help="a folder of lm-eval task YAMLs (repeatable)")
    h.add_argument("--num-fewshot", type=int, help="few-shot examples per prompt (default: each task's own)")
    h.add_argument("--harness-metric", choices=("acc_norm", "acc"), default="acc_norm",
                   help="the lm-eval metric a task's accuracy is (default acc_norm; acc where a task has no acc_norm)")
    p.set_defaults(func=run)


def _print_averages(s: dict) -> None:
    for name in ("err_46", "err_17", "err_synthetic"):
        if s[name] is not None:
            print(f"{name}: {s[name]:.4f} over {s[name + '_n_tasks']} task(s)")


def run(args) -> int:
    from scaling_jax import paths
    from scaling_jax.atomic import check_out_dir
    from scaling_jax.errors import UserError

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit: must be an integer >= 1, got {args.limit}")
    if args.batch_tokens < 1:
        raise UserError(f"--batch-tokens: must be an integer >= 1, got {args.batch_tokens}")
    out = args.out if paths.is_gcs(args.out) else check_out_dir(args.out)
    if args.harness:
        return _harness(args, out)
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
    _print_averages(s)
    if s["missing"]:
        print(f"missing task files: {', '.join(s['missing'])}")
    sp = s["speed"]
    print(f"{sp['examples']} examples in {sp['seconds']:.1f} s ({sp['compiles']} compile(s)); {out}/eval.json")
    return 0


def _harness(args, out) -> int:
    """``--harness lm-eval``: lm-eval's tasks on the checkpoint through our scorer."""
    from scaling_jax import paths
    from scaling_jax.errors import UserError

    if args.num_fewshot is not None and args.num_fewshot < 0:
        raise UserError(f"--num-fewshot: must be an integer >= 0, got {args.num_fewshot}")
    try:
        from scaling_jax.eval.harness import HarnessLM, harness_tokenizer
        from scaling_jax.eval.harness_suite import check_tasks, run_harness, task_manager
    except ImportError as e:
        raise UserError(f"--harness lm-eval: lm-eval is not installed ({e}); "
                        "pip install 'scaling_jax[harness]'") from None
    from scaling_jax.testbed.schema import RunRecord
    from scaling_jax.train.lm import load_run

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for d in args.include_path:
        if not paths.is_dir(d):
            raise UserError(f"--include-path {d}: no such folder")
    run_ = load_run(args.checkpoint)
    tokenizer = harness_tokenizer(run_.config, run_.lm.vocab_size, args.tokenizer, f"run {args.checkpoint}")
    check_tasks(tasks, task_manager(tuple(args.include_path)))
    model = HarnessLM.from_lm(run_.lm, tokenizer, batch_tokens=args.batch_tokens,
                              info={"run": str(args.checkpoint), "step": run_.step})
    rec_file = paths.join(run_.run_dir, "record.json") if run_.run_dir is not None else None
    record = RunRecord.from_json(paths.read_text(rec_file)) if rec_file and paths.exists(rec_file) else None
    result = run_harness(model, tasks, include_path=tuple(args.include_path), num_fewshot=args.num_fewshot,
                         limit=args.limit, metric=args.harness_metric, record=record)
    result.summary["checkpoint"] = {"path": str(args.checkpoint), "step": run_.step}
    written = result.write(out)
    s = result.summary
    for label, t in s["tasks"].items():
        print(f"{label:36s} {t['accuracy']:.4f}  ({t['metric']}, n={t['n_examples']})")
    _print_averages(s)
    print(f"lm-eval {s['harness_version']} in {s['speed']['seconds']:.1f} s ({s['speed']['compiles']} compile(s)); "
          f"wrote {', '.join(written)}")
    return 0
