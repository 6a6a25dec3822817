"""Serve plotly.js from the installed `plotly` package as the static file `vendor/plotly.min.js`.

Pages must not load anything from the internet, and the 4 MB bundle has no place in git: this finder
exposes the copy the Python package ships, so the JS always matches the Python side's figures.
"""
from collections.abc import Iterator
from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"
_PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"
_BUNDLE = _PACKAGE_DATA / "plotly.min.js"


class PlotlyFinder(BaseFinder):
    def __init__(self) -> None:
        self.storage = FileSystemStorage(location=_PACKAGE_DATA)
        self.storage.prefix = "vendor"  # collectstatic puts the file at vendor/plotly.min.js

    def check(self, **kwargs) -> list[Error]:
        if _BUNDLE.is_file():
            return []
        return [Error(f"plotly.js not found at {_BUNDLE}", hint="reinstall the `plotly` package",
                      obj=self, id="core.E001")]

    def find(self, path: str, find_all: bool = False) -> str | list[str] | None:
        match = str(_BUNDLE) if path == PLOTLY_JS and _BUNDLE.is_file() else None
        if find_all:
            return [match] if match else []
        return match

    def list(self, ignore_patterns: list[str] | None) -> Iterator[tuple[str, FileSystemStorage]]:
        yield _BUNDLE.name, self.storage
