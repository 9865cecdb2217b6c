"""Manifests written from the documented examples (ingest-facts §3.2, §3.3, §5)."""

from __future__ import annotations

import csv
import io

OOYALA_NS = (
    'version="2.0" xmlns:media="http://search.yahoo.com/mrss/" '
    'xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:fh="http://purl.org/syndication/history/1.0" '
    'xmlns:ooyala="http://www.ooyala.com/mrss/"'
)


def ooyala_item(
    video: str = "my_video.mov",
    thumb: str | None = "my_thumbnail.jpg",
    caption: str | None = "caption-1.dfxp",
    lang: str = "en",
    guid: str = "my_test_guid",
) -> str:
    parts = [
        f'<media:content url="{video}"/>',
        "<media:title>Title</media:title>",
        "<media:description>Desc</media:description>",
    ]
    if thumb:
        parts.append(f'<media:thumbnail url="{thumb}"/>')
    if caption:
        parts.append(f'<media:subTitle href="{caption}" lang="{lang}" frameRate="30"/>')
    parts += [
        "<ooyala:labels>/Home/Telegraph TV,/Sources/Storyful</ooyala:labels>",
        '<ooyala:metadata name="season_number">1</ooyala:metadata>',
        "<dcterms:valid>start=2011-06-28T15:15:00-07:00; "
        "end=2022-12-01T16:00:00-07:00;scheme=W3C-DTF</dcterms:valid>",
        f'<guid isPermaLink="false">{guid}</guid>',
    ]
    return "<item>\n   " + "\n   ".join(parts) + "\n  </item>"


def ooyala(*items: str) -> str:
    body = "\n  ".join(items or (ooyala_item(),))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rss {OOYALA_NS}>\n <channel>\n  {body}\n'
        " </channel>\n</rss>\n"
    )


REMOTE_ASSET = f"""<?xml version="1.0"?>
<rss {OOYALA_NS}>
 <channel>
  <item>
   <ooyala:remoteasset url="http://example.com/stream.m3u8" durationInMs="60000"/>
   <media:title>Remote</media:title>
   <media:thumbnail url="http://example.com/thumb.jpg"/>
   <guid>remote-1</guid>
  </item>
 </channel>
</rss>
"""

CSV_WITH_CAPTIONS = (
    "title,video,thumbnail,description,subTitle,subTitle:lang,subTitle:frameRate,season\n"
    'Episode 1,ep1.mp4,ep1.jpg,"A story, with a comma\nand a newline",ep1.srt,en,25,1\n'
    "Episode 2,ep2.mp4,,Plain,,,,1\n"
)

BRIGHTCOVE = """<?xml version="1.0" encoding="UTF-8"?>
<rss xmlns:media="https://search.yahoo.com/mrss/" xmlns:dcterms="https://purl.org/dc/terms/"
  xmlns:fh="https://purl.org/syndication/history/1.0"
  xmlns:brightcove="https://www.brightcove.com/mrss/" version="2.0">
  <channel>
    <item>
      <brightcove>
        <profile>multi-platform-standard-static</profile>
        <name>Brightcove sample</name>
        <master url="bc_master.mp4"/>
        <description long="Long text" short="Short"/>
        <images>
          <image url="bc_poster.jpg" language="en" variant="poster"/>
          <image url="bc_thumb.png" language="en" variant="thumbnail"/>
        </images>
        <text_tracks>
          <text_track url="bc_captions.vtt" srclang="en" kind="captions" label="English"/>
        </text_tracks>
      </brightcove>
    </item>
  </channel>
</rss>
"""


def brightcove(master: str, image: str, track: str, srclang: str = "en") -> str:
    """The Brightcove sample with its three references replaced (already XML-escaped)."""
    return (
        BRIGHTCOVE.replace('"bc_master.mp4"', f'"{master}"')
        .replace('"bc_poster.jpg"', f'"{image}"')
        .replace('"bc_captions.vtt"', f'"{track}"')
        .replace('srclang="en"', f'srclang="{srclang}"')
    )


def csv_manifest(header: list[str], *rows: list[str]) -> str:
    """An Ooyala CSV manifest, every cell quoted so any text (commas, quotes, newlines) fits."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
