"""Render workbooks to PDF with LibreOffice headless and read the pages back with poppler, as a person
printing the file would see it (issue #19: no column cut, a sensible page count)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_office() -> str:
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if not exe or not shutil.which("pdftotext"):
        msg = "LibreOffice (soffice) and poppler (pdftotext) are needed to render the reports"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def to_pdf(files: list[Path], outdir: Path) -> list[Path]:
    """One LibreOffice run converting every file (its own profile folder: parallel runs do not meet)."""
    exe = require_office()
    outdir.mkdir(parents=True, exist_ok=True)
    profile = outdir / ".lo-profile"
    subprocess.run([exe, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(outdir), *map(str, files)], check=True, capture_output=True, timeout=300)
    return [outdir / (Path(f).stem + ".pdf") for f in files]


def to_csv(file: Path, outdir: Path) -> Path:
    """The first sheet as LibreOffice computes it (formulas evaluated), as CSV."""
    exe = require_office()
    profile = outdir / ".lo-profile"
    subprocess.run([exe, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(outdir), str(file)],
                   check=True, capture_output=True, timeout=300)
    return outdir / (file.stem + ".csv")


def pages(pdf: Path) -> list[str]:
    """The text of each page, laid out (``pdftotext -layout``)."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True).stdout
    return out.decode("utf-8").split("\f")[:-1]


def page_png(pdf: Path, page: int, target: Path) -> Path:
    """Page ``page`` (1-based) as a PNG at 80 dpi."""
    stem = target.with_suffix("")
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile", str(pdf), str(stem)],
                   check=True, capture_output=True)
    return stem.with_suffix(".png")
