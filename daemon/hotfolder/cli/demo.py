"""`hotfolder demo`: make the demo folders and drop one sample submission into them."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any

import yaml

from hotfolder.config import settings as configuration

MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:dcterms="http://purl.org/dc/terms/" xmlns:ooyala="http://www.ooyala.com/mrss/">
 <channel>
  <item>
   <media:content url="{video}"/>
   <media:title>hotfolder demo</media:title>
   <media:description>A sample submission made by `hotfolder demo`.</media:description>
   <media:thumbnail url="{thumb}"/>
   <media:subTitle href="{caption}" lang="en" frameRate="30"/>
   <ooyala:labels>/Demo</ooyala:labels>
   <guid isPermaLink="false">{guid}</guid>
  </item>
 </channel>
</rss>
"""

CAPTION = """<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xml:lang="en"><body><div>
 <p begin="00:00:00.000" end="00:00:02.000">Hello from hotfolder.</p>
</div></body></tt>
"""


#: The sample config ships inside the package, so `hotfolder demo` works from any folder.
SAMPLE = "demo.yaml"


def sample_config() -> tuple[str, str]:
    """The packaged demo config: its text, and a name to quote in messages."""
    resource = importlib.resources.files("hotfolder.cli").joinpath(SAMPLE)
    return resource.read_text(encoding="utf-8"), str(resource)


def prepare(config_path: Path | None = None) -> configuration.Config | None:
    """Create the folders the demo config names (relative to the current folder), drop a
    sample, return the loaded config. No path: the sample config in the package."""
    if config_path is None:
        text, name = sample_config()
    else:
        text, name = config_path.read_text(encoding="utf-8"), str(config_path)
    raw: dict[str, Any] = yaml.safe_load(text)
    for folder in _folders(raw):
        Path(folder).mkdir(parents=True, exist_ok=True)
    try:
        cfg = configuration.parse(text, name)
    except configuration.InvalidConfig as err:
        print(err)
        return None
    drop_sample(cfg.watches[0].path, f"demo-{os.getpid()}")
    return cfg


def _folders(raw: dict[str, Any]) -> list[str]:
    folders = [raw["state_dir"]]
    for w in raw.get("watches", []):
        folders += [w[k] for k in ("path", "archive_dir", "failed_dir") if k in w]
    folders += [t["path"] for t in raw.get("targets", {}).values() if "path" in t]
    return folders


def drop_sample(folder: Path, stem: str) -> list[Path]:
    """Media first, manifest last, as an editor should; returns the files written."""
    video, thumb, caption = f"{stem}.mp4", f"{stem}.jpg", f"{stem}.dfxp"
    files = {
        video: os.urandom(256 * 1024),
        thumb: b"\xff\xd8\xff\xe0" + os.urandom(4096),
        caption: CAPTION.encode(),
        f"{stem}.xml": MANIFEST.format(
            video=video, thumb=thumb, caption=caption, guid=stem
        ).encode(),
    }
    written = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        written.append(path)
    return written
