import pytest

from scaling_jax.cli import COMMANDS, build_parser, main


def test_every_command_registers():
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)
    assert names == {name.replace("_", "-") for name in COMMANDS}
    for name in names:  # each subcommand parses its --help and names a function to run
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
        sub = parser._subparsers._group_actions[0].choices[name]
        assert callable(sub.get_default("func")) or sub._subparsers is not None, name


def test_overrides_after_options_are_kept(monkeypatch):
    import scaling_jax.cli.train as train_cli

    captured = {}

    def fake_run(args):
        captured["overrides"] = args.overrides
        return 0

    monkeypatch.setattr(train_cli, "run", fake_run)  # build_parser() reads it at call time
    assert main(["train", "c.yaml", "a=1", "--out", "x", "b.c=2"]) == 0
    assert captured["overrides"] == ["a=1", "b.c=2"]


def test_unknown_option_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--runs", "x.csv", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
