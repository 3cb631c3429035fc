import pytest

from scaling_jax.testbed import fetch


def test_explicit_path_then_env(monkeypatch, tmp_path):
    monkeypatch.setenv(fetch.ENV_VAR, str(tmp_path / "env"))
    assert fetch.resolve_testbed(tmp_path / "given") == tmp_path / "given"
    assert fetch.resolve_testbed() == tmp_path / "env"


def test_offline_download_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv(fetch.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(fetch, "RELEASE_URL", "http://127.0.0.1:9/none.tar.gz")
    with pytest.raises(FileNotFoundError, match=r"could not be downloaded.*--testbed DIR"):
        fetch.resolve_testbed()
    assert not (tmp_path / "scaling_jax" / "testbed").exists()


def test_download_unpacks_exp_data(monkeypatch, tmp_path, testbed_dir):
    """A local tarball laid out like the GitHub archive unpacks into the cache."""
    import tarfile

    arc = tmp_path / "release.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        tar.add(testbed_dir / "eval_metadata.csv", arcname="scaling-main/exp_data/eval_metadata.csv")
        tar.add(testbed_dir / "README.md", arcname="scaling-main/README.md")
    dest = fetch.download_release(tmp_path / "cache", url=arc.as_uri())
    assert (dest / "eval_metadata.csv").read_bytes() == (testbed_dir / "eval_metadata.csv").read_bytes()
    assert not (dest / "README.md").exists()
