from pathlib import Path

import pytest

from hotfolder import config, schema

GOOD = """\
state_dir: {tmp}/state
logging: {{target: json, level: info}}
watches:
  - name: ooyala
    path: {tmp}/drop
    target: nas
    stability_seconds: 5
    after_success: archive
    archive_dir: {tmp}/archive
    failed_dir: {tmp}/failed
targets:
  nas: {{type: local, path: {tmp}/ingest}}
"""


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "drop").mkdir()
    (tmp_path / "ingest").mkdir()
    return tmp_path


def errors(text: str) -> list[config.ConfigError]:
    with pytest.raises(config.InvalidConfig) as err:
        config.parse(text, "hf.yaml")
    return err.value.errors


def test_good_config_resolves_defaults(tmp: Path) -> None:
    cfg = config.parse(GOOD.format(tmp=tmp), "hf.yaml")
    (w,) = cfg.watches
    assert w.path == tmp / "drop"
    assert w.incomplete_after == 86400
    assert w.rescan_seconds == 300
    assert cfg.targets["nas"].options["path"] == tmp / "ingest"
    assert cfg.workers == 2


def test_defaults_put_archive_and_failed_under_state_dir(tmp: Path) -> None:
    text = (
        GOOD.format(tmp=tmp)
        .replace(f"    archive_dir: {tmp}/archive\n", "")
        .replace(f"    failed_dir: {tmp}/failed\n", "")
    )
    (w,) = config.parse(text, "hf.yaml").watches
    assert w.archive_dir == tmp / "state" / "archive" / "ooyala"
    assert w.failed_dir == tmp / "state" / "failed" / "ooyala"


def test_unknown_key_has_line_path_and_suggestion(tmp: Path) -> None:
    (e,) = errors(GOOD.format(tmp=tmp).replace("stability_seconds", "stabilty_seconds"))
    assert e.line == 7
    assert e.path == ("watches", 0, "stabilty_seconds")
    assert "unknown key" in e.message
    assert "stability_seconds" in e.hint
    assert str(e).startswith("hf.yaml:7: at 'watches[0].stabilty_seconds': unknown key")


def test_wrong_type(tmp: Path) -> None:
    (e,) = errors(GOOD.format(tmp=tmp).replace("stability_seconds: 5", "stability_seconds: soon"))
    assert e.path == ("watches", 0, "stability_seconds")
    assert "expected a number, got a string" in e.message
    assert e.line == 7


def test_missing_folder(tmp: Path) -> None:
    (e,) = errors(GOOD.format(tmp=tmp).replace(f"path: {tmp}/drop", f"path: {tmp}/nope"))
    assert e.path == ("watches", 0, "path")
    assert "does not exist" in e.message
    assert e.line == 5


def test_unknown_target(tmp: Path) -> None:
    (e,) = errors(GOOD.format(tmp=tmp).replace("target: nas", "target: nsa"))
    assert "no target named 'nsa'" in e.message
    assert "did you mean 'nas'" in e.hint


def test_bad_enum_and_missing_required(tmp: Path) -> None:
    text = GOOD.format(tmp=tmp).replace("after_success: archive", "after_success: shred")
    text = text.replace("    target: nas\n", "")
    found = {(config.format_path(e.path), e.message.split(" ")[0]) for e in errors(text)}
    assert ("watches[0].after_success", "'shred'") in found
    assert any("missing required key 'target'" in e.message for e in errors(text))


def test_every_error_is_reported_at_once(tmp: Path) -> None:
    text = (
        GOOD.format(tmp=tmp)
        .replace("level: info", "level: loud")
        .replace("stability_seconds: 5", "stability_seconds: -1")
        .replace("type: local", "type: ftp")
    )
    assert len(errors(text)) == 3


def test_not_yaml() -> None:
    (e,) = errors("watches: [\n  - name: x\n  bad")
    assert "not valid YAML" in e.message
    assert e.line is not None


def test_key_given_twice(tmp: Path) -> None:
    text = GOOD.format(tmp=tmp).replace(
        "stability_seconds: 5", "stability_seconds: 5\n    stability_seconds: 9"
    )
    (e,) = errors(text)
    assert e.message == "key given twice"
    assert e.line == 8


def test_target_inside_watch_folder_is_refused(tmp: Path) -> None:
    (tmp / "drop" / "out").mkdir()
    (e,) = errors(GOOD.format(tmp=tmp).replace(f"path: {tmp}/ingest", f"path: {tmp}/drop/out"))
    assert "overlaps watch folder" in e.message


def test_duplicate_watch_names_and_state_dir_inside_watch(tmp: Path) -> None:
    text = GOOD.format(tmp=tmp).replace(f"state_dir: {tmp}/state", f"state_dir: {tmp}/drop/st")
    dup = text.split("watches:\n")[1].split("targets:")[0]
    text = text.replace("targets:", dup + "targets:", 1)
    messages = [e.message for e in errors(text)]
    assert any("used twice" in m for m in messages)
    assert any("watched twice" in m for m in messages)
    assert any("is inside watch folder" in m for m in messages)


def test_example_and_demo_configs_are_valid(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp)
    for folder in ("demo/drop", "demo/ingest"):
        (tmp / folder).mkdir(parents=True)
    config.load(repo / "config" / "demo.yaml")
    text = (repo / "config" / "hotfolder.example.yaml").read_text()
    for p in ("/srv/dropbox/ooyala", "/srv/dropbox/brightcove", "/mnt/ingest"):
        text = text.replace(p, str(tmp / p.strip("/")))
        (tmp / p.strip("/")).mkdir(parents=True, exist_ok=True)
    config.parse(text, "example.yaml")


def test_the_example_documents_every_key_of_the_schema() -> None:
    repo = Path(__file__).resolve().parents[2]
    text = (repo / "config" / "hotfolder.example.yaml").read_text()
    sections = [
        schema.CONFIG,
        schema.LOGGING,
        schema.WATCH,
        schema.RETRY,
        schema.VERIFY,
        schema.BACKLOT_ACCOUNT,
        schema.NOTIFICATIONS,
        schema.NOTIFICATIONS["properties"]["email"],
        schema.NOTIFICATIONS["properties"]["webhook"],
        *schema.TARGET_TYPES.values(),
    ]
    keys = {key for section in sections for key in section["properties"]}
    missing = sorted(k for k in keys if f"{k}:" not in text)
    assert missing == [], f"config/hotfolder.example.yaml does not document {missing}"
    for section in sections:
        for key, spec in section["properties"].items():
            if isinstance(spec, dict) and "properties" not in spec:
                assert spec.get("description"), f"{key} has no description"
