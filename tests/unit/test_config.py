import grp
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotfolder.config import schema
from hotfolder.config import settings as config
from hotfolder.perms import SharedPermissions

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


ASCP = (
    GOOD.replace("target: nas", "target: aspera")
    + """\
  aspera:
    type: ascp
    host: 127.0.0.1
    user: u
    password_file: {tmp}/pass
    target_rate: {rate}
    min_rate: {min_rate}
"""
)


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
    (e,) = errors(GOOD.format(tmp=tmp).replace("stability_seconds: 5", "stability_seconds: [5]"))
    assert e.path == ("watches", 0, "stability_seconds")
    assert "expected a number/string, got an array" in e.message
    assert e.line == 7


# -- human units -------------------------------------------------------------------------------


def test_human_units_are_read_where_people_write_them(tmp: Path) -> None:
    text = GOOD.format(tmp=tmp).replace("stability_seconds: 5", "stability_seconds: 5s")
    text = text.replace(
        "    failed_dir:",
        "    incomplete_after: 24h\n    max_settle: 1h30m\n    max_manifest_bytes: 10MiB\n"
        "    failed_dir:",
    )
    text = text.replace("targets:\n", "min_free_bytes: 1GiB\ntargets:\n")
    text = text.replace("/ingest}", "/ingest, quota_bytes: 100GB}")
    cfg = config.parse(text, "hf.yaml")
    (w,) = cfg.watches
    assert (w.stability_seconds, w.incomplete_after, w.max_settle) == (5, 86400, 5400)
    assert w.max_manifest_bytes == 10 * 2**20
    assert cfg.min_free_bytes == 2**30
    assert cfg.targets["nas"].options["quota_bytes"] == 100 * 10**9


def test_rates_become_what_ascp_takes(tmp: Path) -> None:
    cfg = config.parse(ASCP.format(tmp=tmp, rate="100Mbps", min_rate="500kbps"), "hf.yaml")
    options = cfg.targets["aspera"].options
    assert (options["target_rate"], options["min_rate"]) == ("100M", "500K")
    plain = config.parse(ASCP.format(tmp=tmp, rate="510000", min_rate="0"), "hf.yaml")
    assert plain.targets["aspera"].options["target_rate"] == "510000"  # ascp's Kbps, as before


def test_a_wrong_unit_is_one_plain_error_at_its_line(tmp: Path) -> None:
    text = GOOD.format(tmp=tmp).replace("stability_seconds: 5", "stability_seconds: 5 sex")
    text = text.replace("/ingest}", "/ingest, quota_bytes: 100Gb}")
    first, second = errors(text)
    assert str(first) == (
        "hf.yaml:7: at 'watches[0].stability_seconds': '5 sex' is not a duration: write "
        "seconds as a number, or a number with s, m, h or d (5s, 90s, 30m, 24h, 1h30m)"
    )
    assert second.path == ("targets", "nas", "quota_bytes")
    assert "is in bits (a small b): sizes are in bytes, write 100GB" in second.message
    (rate,) = errors(ASCP.format(tmp=tmp, rate="100MB/s", min_rate="0"))
    assert rate.path == ("targets", "aspera", "target_rate")
    assert "bytes per second: ascp rates are bits per second, write 800Mbps" in rate.message


def test_a_zero_duration_is_still_refused(tmp: Path) -> None:
    (e,) = errors(GOOD.format(tmp=tmp).replace("stability_seconds: 5", "stability_seconds: 0s"))
    assert e.path == ("watches", 0, "stability_seconds")
    assert "0.0 is not allowed" in e.message


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
        schema.PERMISSIONS,
        schema.RETRY,
        schema.VERIFY,
        schema.BACKLOT_ACCOUNT,
        schema.NOTIFICATIONS,
        schema.NOTIFICATIONS["properties"]["email"],
        schema.NOTIFICATIONS["properties"]["webhook"],
        *schema.TARGET_TYPES.values(),
    ]
    keys = {key for section in sections for key in section["properties"]}
    # The key as a YAML key (commented-out alternatives count): `host:` must not be taken
    # for the one inside `api_host:` or `host:port`.
    missing = sorted(k for k in keys if not re.search(rf"(?<![\w-]){re.escape(k)}:(?=\s)", text))
    assert missing == [], f"config/hotfolder.example.yaml does not document {missing}"
    for section in sections:
        for key, spec in section["properties"].items():
            if isinstance(spec, dict) and "properties" not in spec:
                assert spec.get("description"), f"{key} has no description"


# -- folders that would feed the daemon its own output ------------------------------------------


def two_watches(tmp: Path, first: dict[str, Any], second: dict[str, Any]) -> str:
    (tmp / "drop2").mkdir(exist_ok=True)
    base = {"target": "nas", "after_success": "archive"}
    data = {
        "state_dir": f"{tmp}/state",
        "watches": [
            {
                "name": "one",
                "path": f"{tmp}/drop",
                "archive_dir": f"{tmp}/archive",
                "failed_dir": f"{tmp}/failed",
                **base,
                **first,
            },
            {
                "name": "two",
                "path": f"{tmp}/drop2",
                "archive_dir": f"{tmp}/archive2",
                "failed_dir": f"{tmp}/failed2",
                **base,
                **second,
            },
        ],
        "targets": {"nas": {"type": "local", "path": f"{tmp}/ingest"}},
    }
    return yaml.safe_dump(data, sort_keys=False)


def test_two_separate_watches_are_fine(tmp: Path) -> None:
    cfg = config.parse(two_watches(tmp, {}, {}), "hf.yaml")
    assert [w.name for w in cfg.watches] == ["one", "two"]


def test_an_archive_reached_through_a_symlink_into_the_drop_folder_is_refused(tmp: Path) -> None:
    (tmp / "drop" / "sent").mkdir()
    (tmp / "arch").symlink_to(tmp / "drop" / "sent")
    text = GOOD.format(tmp=tmp).replace(f"archive_dir: {tmp}/archive", f"archive_dir: {tmp}/arch")
    (e,) = errors(text)
    assert e.path == ("watches", 0, "archive_dir")
    assert e.line == 9
    assert str(e).startswith(
        f"hf.yaml:9: at 'watches[0].archive_dir': archive_dir {tmp}/arch "
        f"(really {tmp}/drop/sent) is inside watch folder {tmp}/drop"
    )
    assert e.message.endswith("through a symlink")
    assert "would send what is moved there again" in e.hint


def test_own_failed_folder_inside_the_drop_folder_by_a_symlink_inside_it_is_refused(
    tmp: Path,
) -> None:
    (tmp / "drop" / "real-failed").mkdir()
    (tmp / "drop" / "failed").symlink_to(tmp / "drop" / "real-failed")
    text = GOOD.format(tmp=tmp).replace(
        f"failed_dir: {tmp}/failed", f"failed_dir: {tmp}/drop/failed"
    )
    (e,) = errors(text)
    assert e.path == ("watches", 0, "failed_dir")
    assert "through a symlink" in e.message


def test_own_archive_and_failed_folders_inside_the_drop_folder_stay_allowed(tmp: Path) -> None:
    (tmp / "drop" / "real").mkdir()
    (tmp / "droplink").symlink_to(tmp / "drop")
    text = (
        GOOD.format(tmp=tmp)
        .replace(f"path: {tmp}/drop", f"path: {tmp}/droplink")
        .replace(f"archive_dir: {tmp}/archive", f"archive_dir: {tmp}/droplink/.archive")
        .replace(f"failed_dir: {tmp}/failed", f"failed_dir: {tmp}/droplink/real/failed")
    )
    (w,) = config.parse(text, "hf.yaml").watches
    assert w.own_folders == (tmp / "droplink" / ".archive", tmp / "droplink" / "real" / "failed")


def test_a_drop_folder_inside_its_own_archive_is_refused(tmp: Path) -> None:
    text = GOOD.format(tmp=tmp).replace(f"archive_dir: {tmp}/archive", f"archive_dir: {tmp}")
    (e,) = errors(text)
    assert e.path == ("watches", 0, "archive_dir")
    assert f"watch folder {tmp}/drop (watches[0]) is inside archive_dir {tmp}" in e.message


def test_two_watches_on_one_folder_through_a_symlink_are_refused(tmp: Path) -> None:
    (tmp / "alias").symlink_to(tmp / "drop")
    (e,) = errors(two_watches(tmp, {}, {"path": f"{tmp}/alias"}))
    assert e.path == ("watches", 1, "path")
    assert e.message == f"watch folder {tmp}/alias (really {tmp}/drop) is watched twice"
    assert "watches[0]" in e.hint


def test_nested_watches_are_refused_both_ways(tmp: Path) -> None:
    (tmp / "drop" / "inner").mkdir()
    (e,) = errors(two_watches(tmp, {}, {"path": f"{tmp}/drop/inner"}))
    assert e.message == (
        f"watch folder {tmp}/drop/inner (watches[1]) is inside watch folder {tmp}/drop (watches[0])"
    )
    (tmp / "drop2" / "inner").mkdir()
    (e,) = errors(two_watches(tmp, {"path": f"{tmp}/drop2/inner"}, {}))
    assert e.message == (
        f"watch folder {tmp}/drop2/inner (watches[0]) is inside watch folder {tmp}/drop2 "
        "(watches[1])"
    )


def test_an_archive_inside_another_watch_is_refused(tmp: Path) -> None:
    (e,) = errors(two_watches(tmp, {"archive_dir": f"{tmp}/drop2/archive"}, {}))
    assert e.path == ("watches", 0, "archive_dir")
    assert e.message == f"archive_dir {tmp}/drop2/archive is inside watch folder {tmp}/drop2 " + (
        "(watches[1])"
    )
    (e,) = errors(two_watches(tmp, {}, {"failed_dir": f"{tmp}/drop/failed"}))
    assert e.path == ("watches", 1, "failed_dir")


def test_an_archive_is_not_checked_when_nothing_is_archived(tmp: Path) -> None:
    text = two_watches(tmp, {"archive_dir": f"{tmp}/drop2/x", "after_success": "delete"}, {})
    config.parse(text, "hf.yaml")


def test_a_state_dir_reached_through_a_symlink_into_a_drop_folder_is_refused(tmp: Path) -> None:
    (tmp / "drop" / "st").mkdir()
    (tmp / "st").symlink_to(tmp / "drop" / "st")
    (e,) = errors(GOOD.format(tmp=tmp).replace(f"state_dir: {tmp}/state", f"state_dir: {tmp}/st"))
    assert e.path == ("state_dir",)
    assert "is inside watch folder" in e.message
    (tmp / "state" / "drop").mkdir(parents=True)
    text = GOOD.format(tmp=tmp).replace(f"path: {tmp}/drop", f"path: {tmp}/state/drop")
    (e,) = errors(text)
    assert e.message == f"watch folder {tmp}/state/drop is inside state_dir {tmp}/state"


# -- permissions for the editors ---------------------------------------------------------------


def test_permissions_are_read_as_octal(tmp: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    text = GOOD.format(tmp=tmp).replace(
        "    stability_seconds: 5\n",
        f'    stability_seconds: 5\n    permissions: {{group: {group}, folder_mode: "2775"}}\n',
    )
    (w,) = config.parse(text, "hf.yaml").watches
    assert w.permissions == SharedPermissions(0o2775, 0o660, group)


def test_permissions_name_a_real_group_and_folders_outside_the_state_dir(tmp: Path) -> None:
    text = (
        GOOD.format(tmp=tmp)
        .replace(
            "    stability_seconds: 5\n",
            "    stability_seconds: 5\n    permissions: {group: no-such-group-here}\n",
        )
        .replace(f"failed_dir: {tmp}/failed", f"failed_dir: {tmp}/state/failed")
    )
    found = {config.format_path(e.path): e.message for e in errors(text)}
    assert found == {
        "watches[0].permissions.group": "no group named 'no-such-group-here' on this machine",
        "watches[0].failed_dir": f"failed_dir {tmp}/state/failed is inside the private "
        f"state_dir {tmp}/state, so `permissions` cannot let the editors reach it",
    }


def test_a_mode_must_be_quoted_octal(tmp: Path) -> None:
    text = GOOD.format(tmp=tmp).replace(
        "    stability_seconds: 5\n",
        "    stability_seconds: 5\n    permissions: {file_mode: 660}\n",
    )
    (e,) = errors(text)
    assert e.path == ("watches", 0, "permissions", "file_mode")
    assert "Octal mode" in e.hint
