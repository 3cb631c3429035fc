"""``scaling-jax data prepare|tokenizer|stdlib``: tokenizers and token corpora for training."""

from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("data", help="prepare token corpora (TensorStore zarr3)")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    pr = sub.add_parser("prepare", help="tokenize files, folders or JSONL into OUT/{train,val}")
    pr.add_argument("inputs", nargs="+", help="text files, folders, or .jsonl files")
    pr.add_argument("--out", required=True, help="corpus root: a local folder or gs://bucket/prefix")
    pr.add_argument("--tokenizer", required=True, help="tokenizer.json (e.g. GPT-NeoX's)")
    pr.add_argument("--text-field", default="text", help="JSONL field holding the document")
    pr.add_argument("--glob", default="*", help="file pattern inside folders")
    pr.add_argument("--val-every", type=int, default=100, help="every n-th document goes to val")
    pr.add_argument("--chunk", type=int, default=1 << 16, help="zarr chunk length in tokens")
    pr.set_defaults(func=run_prepare)
    tk = sub.add_parser("tokenizer", help="train a byte-level BPE on local text; write tokenizer.json")
    tk.add_argument("inputs", nargs="+", help="text files, folders, or .jsonl files")
    tk.add_argument("--out", required=True, help="tokenizer.json to write")
    tk.add_argument("--vocab-size", type=int, required=True)
    tk.add_argument("--text-field", default="text")
    tk.add_argument("--glob", default="*")
    tk.set_defaults(func=run_tokenizer)
    st = sub.add_parser("stdlib", help="train a BPE on Python's standard library and prepare it")
    st.add_argument("--out", required=True)
    st.add_argument("--vocab-size", type=int, default=8192)
    st.add_argument("--val-every", type=int, default=20)
    st.set_defaults(func=run_stdlib)


def run_prepare(args) -> int:
    from scaling_jax.data.prepare import iter_documents, prepare
    from scaling_jax.data.tokenizer import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    docs = iter_documents(args.inputs, text_field=args.text_field, pattern=args.glob)
    meta = prepare(docs, tok, args.out, val_every=args.val_every, chunk=args.chunk,
                   source=" ".join(map(str, args.inputs)))
    print(json.dumps(meta["splits"]))
    return 0


def run_tokenizer(args) -> int:
    from scaling_jax.data.prepare import iter_documents
    from scaling_jax.data.tokenizer import padded_vocab_size, train_bpe

    tok = train_bpe(iter_documents(args.inputs, text_field=args.text_field, pattern=args.glob),
                    args.vocab_size, args.out)
    print(f"{args.out}: {tok.vocab_size} ids (model vocab_size {padded_vocab_size(tok.vocab_size)} "
          "when padded to a multiple of 128)")
    return 0


def run_stdlib(args) -> int:
    from scaling_jax.data import stdlib

    meta = stdlib.build(args.out, vocab_size=args.vocab_size, val_every=args.val_every)
    print(json.dumps(meta["splits"]))
    return 0
