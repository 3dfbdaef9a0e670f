"""The editor page and its assets, served at / on the admin port."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import tornado.web

from ..apiguard import security_headers

STATIC = Path(str(resources.files("mockbox.editor").joinpath("static")))
# The page loads only its own script and styles; CodeMirror injects <style> elements.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; font-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class PageHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        security_headers(self)
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish((STATIC / "index.html").read_bytes())


class AssetHandler(tornado.web.StaticFileHandler):
    def set_extra_headers(self, path: str) -> None:
        security_headers(self)
        self.set_header("Cache-Control", "no-cache")
