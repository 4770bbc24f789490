"""The run's GX Data Docs: ``work_dir/reports/<date>/datadocs/``, rebuilt on every publish.

Intake may run in other processes (one Airflow task per agency), so the site is built
at publish time from the validation results the gate stored with each file taken by
the run (:data:`vehiclehub.store.schema.quality_validations`), plus every feed's
suite. Those results come from the quality frame, which holds no personal data.

GX's pages load Bootstrap, bootstrap-table, jQuery and Font Awesome from public CDNs.
The hub works on networks without internet access, so those files are vendored in the
package (``datadocs_static/``, with their licences), copied beside the site and the
pages pointed at them (:data:`VENDORED`): the pages render styled, their status icons
show and the "failed only" filter works, all offline. What is not vendored is removed:
other remote scripts, stylesheets and images, links to web sites, and GX's newsletter
footer. The index is replaced by a static one listing the run's validations and the
suites.
"""

from __future__ import annotations

import html
import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from vehiclehub.children import become_child, child_arguments
from vehiclehub.errors import HubError
from vehiclehub.quality import runtime
from vehiclehub.quality.suites import suite_document, suites
from vehiclehub.store.schema import intake_files, quality_validations

log = logging.getLogger(__name__)

SITE = "vehiclehub"
#: The vendored assets, shipped in the package, and where the site gets its copy.
ASSETS = Path(__file__).with_name("datadocs_static")
VENDOR_DIR = Path("static") / "vendor"
#: Each CDN address GX's templates load, and the vendored file that replaces it.
VENDORED = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/bootstrap.min.js"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js-1.12.9/popper.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free-6.6.0/css/all.min.css"
    ),
}
# A script or stylesheet loaded from elsewhere: its tag, and the address.
_LOADED = re.compile(
    r"<script\b[^>]*\bsrc=\"(?P<script>[^\"]+)\"[^>]*>\s*</script>"
    r"|<link\b[^>]*\bhref=\"(?P<link>https?://[^\"]+)\"[^>]*/?>",
    re.IGNORECASE,
)
_INTEGRITY = re.compile(r"\s(?:integrity|crossorigin)=\"[^\"]*\"", re.IGNORECASE)
_GONE = re.compile(
    r"<link[^>]*\brel=\"shortcut icon\"[^>]*/?>"  # GX gets its depth wrong in deep pages
    r"|<img[^>]*\bsrc=\"https?://[^\"]*\"[^>]*/?>"
    r"|<footer>\s*<p>[^<]*newsletter.*?</footer>",  # GX's newsletter footer
    re.IGNORECASE | re.DOTALL,
)
# A link out of the site: kept as its text.
_OUTSIDE = re.compile(r"<a\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>(?P<text>.*?)</a>", re.DOTALL)
_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Data Docs {day}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="static/styles/data_docs_default_styles.css">
<style>body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem 2rem; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #d0d7de; padding: .25rem .5rem;
text-align: left; }} .failed {{ color: #cf222e; font-weight: 600; }}</style></head>
<body><h1>Data Docs — vehiclehub run of {day}</h1>
<p><a href="../index.html">Back to the run report</a></p>
<h2>Validation results</h2>
<table><thead><tr><th>file</th><th>suite</th><th>expectations</th><th>failed</th></tr></thead>
<tbody>{validations}</tbody></table>
<h2>Expectation suites</h2><ul>{suites}</ul></body></html>
"""


@dataclass
class DataDocs:
    index: Path
    pages: dict[int, Path] = field(default_factory=dict)  # file id -> its validation page


def offline_page(text: str, vendor: str) -> str:
    """A page with every CDN asset pointed at its vendored copy under ``vendor`` (a path
    relative to the page), and nothing else from outside: no other remote script,
    stylesheet or image, no link out, no newsletter footer."""

    def local(found: re.Match[str]) -> str:
        url = found.group("script") or found.group("link")
        if url in VENDORED:
            tag = _INTEGRITY.sub("", found.group(0))
            return tag.replace(url, f"{vendor}/{VENDORED[url]}")
        # GX's own inline scripts have no src; any other remote asset goes.
        return "" if url.startswith(("http://", "https://", "//")) else found.group(0)

    text = _LOADED.sub(local, text)
    text = _GONE.sub("", text)
    return _OUTSIDE.sub(lambda found: found.group("text"), text)


def _offline(directory: Path) -> None:
    """Copy the vendored assets beside the site and point every page at them."""
    vendor = directory / VENDOR_DIR
    shutil.copytree(ASSETS, vendor, dirs_exist_ok=True)
    for page in directory.rglob("*.html"):
        if vendor in page.parents:
            continue
        text = page.read_text(encoding="utf-8")
        relative = Path(os.path.relpath(vendor, page.parent)).as_posix()
        local = offline_page(text, relative)
        if local != text:
            page.write_text(local, encoding="utf-8")


def _path_of(url: str) -> Path:
    return Path(re.sub(r"^file://", "", url))


#: A validation of a file taken by the run, as the site shows it: the file's id, name and
#: time taken, its suite, its critical and warning failures, and GX's result (JSON).
Validation = tuple[int, str, datetime | None, str, int, int, str]


def run_validations(engine: Engine, day: date) -> list[Validation]:
    """The validations of the files taken by the run for ``day``, in the order taken."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                intake_files.c.id,
                intake_files.c.name,
                intake_files.c.taken_at,
                quality_validations.c.suite,
                quality_validations.c.critical_failed,
                quality_validations.c.warnings_failed,
                quality_validations.c.result_json,
            )
            .join(quality_validations, quality_validations.c.file_id == intake_files.c.id)
            .where(intake_files.c.run_date == day)
            .order_by(intake_files.c.id)
        ).all()
    return [
        (int(i), str(name), taken if isinstance(taken, datetime) else None, str(suite), *rest)
        for i, name, taken, suite, *rest in rows
    ]


def build_run_docs(engine: Engine, reports_dir: Path, day: date) -> DataDocs | None:
    """Build the Data Docs of the files taken by the run for ``day``; None if there are none."""
    return render_run_docs(run_validations(engine, day), reports_dir, day)


def render_run_docs(rows: Sequence[Validation], reports_dir: Path, day: date) -> DataDocs | None:
    """Build the Data Docs of the run's validations ``rows``; None if there are none."""
    target = reports_dir / day.isoformat() / "datadocs"
    shutil.rmtree(target, ignore_errors=True)
    if not rows:
        return None
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    gx = runtime.gx()
    context = runtime.new_context()
    context.add_data_docs_site(
        site_name=SITE,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(target),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    for agency, feed in sorted(suites()):
        document = suite_document(agency, feed)
        context.suites.add(
            gx.ExpectationSuite(
                name=document["name"],
                expectations=[
                    runtime.expectation(e) for e in suites()[(agency, feed)].expectations
                ],
                meta=document.get("meta") or {},
            )
        )
    schema = ExpectationSuiteValidationResultSchema()
    keys: dict[int, Any] = {}
    for file_id, name, taken_at, suite_name, *_, result_json in rows:
        result = schema.loads(result_json)
        run_id = RunIdentifier(run_name=day.isoformat(), run_time=taken_at)
        result.meta["run_id"] = run_id
        runtime.name_data_asset(result.meta)
        result.meta["validation_time"] = run_id.run_time
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run_id,
            batch_identifier=name,
        )
        context.validation_results_store.set(key, result)
        keys[file_id] = key
    context.build_data_docs(site_names=[SITE])
    _offline(target)
    docs = DataDocs(index=target / "index.html")
    for file_id, key in keys.items():
        urls = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE)
        if urls and urls[0].get("site_url"):
            docs.pages[file_id] = _path_of(str(urls[0]["site_url"]))
    _write_index(docs, target, day, rows)
    log.info("Data Docs for %s: %d validations in %s", day, len(keys), target)
    return docs


def _write_index(docs: DataDocs, target: Path, day: date, rows: Sequence[Any]) -> None:
    """A static index of the run's validation pages and the suites (GX's needs scripts)."""
    lines = []
    for file_id, name, _taken, suite_name, critical, warnings, result_json in rows:
        page = docs.pages.get(int(file_id))
        link = (
            f'<a href="{html.escape(page.relative_to(target).as_posix())}">{html.escape(name)}</a>'
            if page
            else html.escape(name)
        )
        total = len(json.loads(result_json).get("results", []))
        failed = f"{critical} critical, {warnings} warnings"
        css = ' class="failed"' if critical else ""
        lines.append(
            f"<tr><td>{link}</td><td>{html.escape(suite_name)}</td><td>{total}</td>"
            f"<td{css}>{failed}</td></tr>"
        )
    suite_pages = "".join(
        f'<li><a href="expectations/{p.name}">{html.escape(p.stem)}</a></li>'
        for p in sorted((target / "expectations").glob("*.html"))
    )
    docs.index.write_text(
        _INDEX.format(day=day.isoformat(), validations="".join(lines), suites=suite_pages),
        encoding="utf-8",
    )


class DocsFailed(HubError):
    """The Data Docs process failed; the message is the error it ended with."""


@dataclass
class DocsBuild:
    """The run's Data Docs being built by a process of their own while the publish writes
    the drops: GX renders its pages in Python, a core's work for seconds (longest on a
    first night), which then runs beside the drops instead of after them.

    The process is ``python -m vehiclehub.quality.datadocs``: it imports nothing of its
    caller (under Airflow, Airflow's entry point). The validations are read by the caller
    and handed over in a private folder, with the site's description back the same way;
    the process never touches the store, and ends when its caller dies.
    """

    process: subprocess.Popen[bytes]
    folder: Path  # the request, the result, and what the process wrote to stderr

    @classmethod
    def start(cls, engine: Engine, reports_dir: Path, day: date) -> DocsBuild:
        """Read the run's validations and start building their site."""
        folder = Path(tempfile.mkdtemp(prefix="vhub-datadocs-"))
        try:
            request = (run_validations(engine, day), reports_dir, day)
            (folder / "request").write_bytes(pickle.dumps(request))
            with (folder / "stderr").open("wb") as errors:
                process = subprocess.Popen(
                    [sys.executable, "-m", __name__, str(folder), str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    close_fds=True,
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(process, folder)

    def result(self) -> DataDocs | None:
        """Wait for the site: its index and pages, None if the run validated no file;
        DocsFailed with the process's last error if it failed."""
        try:
            code = self.process.wait()
            if code != 0:
                said = (self.folder / "stderr").read_text("utf-8", errors="replace").split("\n")
                last = next((line for line in reversed(said) if line.strip()), "")
                raise DocsFailed(last or f"the Data Docs process ended with exit code {code}")
            docs: DataDocs | None = pickle.loads((self.folder / "result").read_bytes())
            return docs
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def cancel(self) -> None:
        """Stop the process if it still runs, and remove its folder."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """The Data Docs process: build the site asked for in folder ``argv[0]`` for the
    process ``argv[1]``, and leave its description there."""
    given = child_arguments(argv, "vehiclehub.quality.datadocs", "FOLDER")
    if given is None:
        return 2
    folder, parent_pid = Path(given[0]), given[1]
    become_child(parent_pid)
    rows, reports_dir, day = pickle.loads((folder / "request").read_bytes())
    docs = render_run_docs(rows, reports_dir, day)
    (folder / "result").write_bytes(pickle.dumps(docs))
    return 0


if __name__ == "__main__":
    # Run through the module's own name, so that what it pickles is of that module's
    # classes, not of ``__main__``'s.
    from vehiclehub.quality.datadocs import main as _main

    sys.exit(_main())
