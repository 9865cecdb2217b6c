"""A small Ooyala Backlot V2 API client (ingest-facts §4): signing as the official SDKs do it,
reads from the read host, writes to the API host, pagination, clear errors, source download.

Signing: sha256(secret + METHOD + path + sorted "k=v" params + body), base64 of the raw digest,
first 43 characters, trailing '=' removed (the SDK algorithm; the doc's worked example is
base64 of the hex digest and is wrong). Retries (connection errors, 429, 5xx, with backoff)
come from urllib3's Retry on the requests Session.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

API_HOST = "https://api.ooyala.com"
READ_HOST = "https://cdn-api.ooyala.com"
EXPIRATION_WINDOW = 15
ROUND_UP = 300
TIMEOUT = (10, 60)  # connect, read
CHUNK = 64 * 1024  # small enough that a dropped connection keeps most of what came


class BacklotError(Exception):
    """An API call failed; the message says what to do about it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def signature(
    secret: str, method: str, path: str, params: Mapping[str, str], body: str = ""
) -> str:
    text = (
        secret
        + method.upper()
        + path
        + "".join(f"{k}={v}" for k, v in sorted(params.items()))
        + body
    )
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return digest[:43].rstrip("=")


def expires(now: float) -> int:
    """As the SDK: 15 s from now, rounded up to the next 5 minutes (so URLs can be cached)."""
    t = int(now) + EXPIRATION_WINDOW
    return t + ROUND_UP - (t % ROUND_UP)


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    api_secret: str

    def __repr__(self) -> str:  # never print the secret, even by accident
        return f"Credentials(api_key={self.api_key[:8]}..., api_secret=*****)"


class Client:
    def __init__(
        self,
        credentials: Credentials,
        api_host: str = API_HOST,
        read_host: str = READ_HOST,
        clock: Callable[[], float] = time.time,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.credentials = credentials
        self.api_host = api_host.rstrip("/")
        self.read_host = read_host.rstrip("/")
        self.clock = clock
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # -- signed requests -------------------------------------------------------------------

    def signed_url(
        self, method: str, path: str, params: Mapping[str, str] | None = None, body: str = ""
    ) -> str:
        query = {
            **(params or {}),
            "api_key": self.credentials.api_key,
            "expires": str(expires(self.clock())),
        }
        query["signature"] = signature(self.credentials.api_secret, method, path, query, body)
        host = self.read_host if method.upper() == "GET" else self.api_host
        return f"{host}{path}?{urlencode(query)}"

    def request(
        self, method: str, path: str, params: Mapping[str, str] | None = None, body: Any = None
    ) -> Any:
        raw = json.dumps(body) if body is not None else ""
        url = self.signed_url(method, path, params, raw)
        try:
            response = self.session.request(
                method,
                url,
                data=raw or None,
                timeout=TIMEOUT,
                headers={"Content-Type": "application/json"},
            )
        except requests.RequestException as err:
            raise BacklotError(f"cannot reach Backlot ({_host(url)}): {err}") from err
        _raise_for_status(response, path)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as err:
            raise BacklotError(
                f"Backlot answered {path} with something that is not JSON: {response.text[:200]!r}",
                response.status_code,
            ) from err

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params)

    # -- endpoints ---------------------------------------------------------------------------

    def asset(self, embed_code: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v2/assets/{embed_code}")
        return result

    def streams(self, embed_code: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get(f"/v2/assets/{embed_code}/streams")
        return result

    def find(self, where: str, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every asset matching a query-API `where`, following page_token pages."""
        params = {"where": where, "limit": str(limit)}
        while True:
            page = self.get("/v2/assets", params)
            yield from page.get("items", [])
            token = _page_token(page.get("next_page"))
            if not token:
                return
            params = {**params, "page_token": token}

    def download_source(
        self, embed_code: str, folder: Path, progress: Callable[[int, int], None] | None = None
    ) -> Path:
        """The asset's source file, under its original name, resumed by Range if a partial
        download is there, checked against the size the API reports."""
        source = next(
            (s for s in self.streams(embed_code) if str(s.get("is_source")).lower() == "true"), None
        )
        if source is None or not source.get("url"):
            raise BacklotError(f"asset {embed_code} has no source stream (is_source true)")
        name = safe_name(str(self.asset(embed_code).get("original_file_name") or embed_code))
        size = int(source.get("file_size") or 0)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        partial = target.with_name(target.name + ".partial")
        for _ in range(5):
            if self._fetch(str(source["url"]), partial, size, progress):
                break
        got = partial.stat().st_size
        if size and got != size:
            raise BacklotError(
                f"downloaded {got} bytes of {name}, Backlot says {size}; the "
                f"partial file {partial} is kept, run the command again"
            )
        os.replace(partial, target)
        return target

    def _fetch(
        self, url: str, partial: Path, size: int, progress: Callable[[int, int], None] | None
    ) -> bool:
        """One GET of the rest of the file; False if the connection dropped mid-way."""
        have = partial.stat().st_size if partial.exists() else 0
        if size and have >= size:
            return True
        headers = {"Range": f"bytes={have}-"} if have else {}
        # The URL is pre-signed by Backlot: it is used as given, never re-signed.
        try:
            with self.session.get(url, headers=headers, stream=True, timeout=TIMEOUT) as r:
                if r.status_code not in (200, 206):
                    _raise_for_status(r, "the source download")
                if r.status_code == 200:
                    have = 0  # the server ignored Range: start over
                with open(partial, "ab" if have else "wb") as out:
                    for chunk in r.iter_content(CHUNK):
                        out.write(chunk)
                        have += len(chunk)
                        if progress:
                            progress(have, size)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            return False
        return not size or have >= size


def safe_name(name: str) -> str:
    """A file name from the server, made safe to write: no folders, no '..', no controls."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(c for c in base if c.isprintable()).strip().lstrip(".")
    return base or "source"


def _page_token(next_page: Any) -> str | None:
    if not next_page:
        return None
    tokens = parse_qs(urlsplit(str(next_page)).query).get("page_token")
    return tokens[0] if tokens else None


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _raise_for_status(response: requests.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = response.text[:200]
    if status == 401:
        raise BacklotError(
            f"Backlot refused the signature for {what} (401): check api_key and api_secret "
            "(Backlot > ACCOUNT > Developers), and that this machine's clock is right "
            f"(signed URLs expire). Server said: {detail}",
            status,
        )
    if status == 403:
        raise BacklotError(f"Backlot forbids {what} for this API key (403): {detail}", status)
    if status == 404:
        raise BacklotError(f"Backlot has no {what} (404): check the embed code", status)
    raise BacklotError(f"Backlot answered {what} with HTTP {status}: {detail}", status)


def terminal_progress(done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    fraction = done / total if total else 0.0
    sys.stderr.write(
        f"\r[{'#' * round(width * fraction):<{width}}] {fraction * 100:5.1f}% {done / 1e6:8.1f} MB"
    )
    if total and done >= total:
        sys.stderr.write("\n")
