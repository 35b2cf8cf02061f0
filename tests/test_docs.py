"""The docs say exactly what the code does: every variable it reads, every metric it
exports, and every link between the pages leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.config import ConsumerSettings, ProducerSettings, env_variables, file_variables
from common.tracing import _settings as tracing_settings
from tests.conftest import REPO, our_metric_names

SETTINGS = (REPO / "docs/settings.md").read_text()
METRICS = (REPO / "docs/metrics-and-logs.md").read_text()
PAGES = sorted([REPO / "README.md", REPO / "CHANGELOG.md", *(REPO / "docs").glob("*.md")])
#: A Markdown link to a page of ours: [text](path) or [text](path#anchor) or [text](#anchor).
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s]*)\)")


def _variables() -> set[str]:
    return set(env_variables(ProducerSettings)) | set(env_variables(ConsumerSettings))


def test_every_variable_is_documented() -> None:
    assert sorted(v for v in _variables() if f"`{v}`" not in SETTINGS) == []


def test_every_documented_variable_is_read() -> None:
    rows = re.findall(r"^\| `([A-Z_]+)`", SETTINGS, flags=re.MULTILINE)
    assert rows
    assert sorted(set(rows) - _variables()) == []


def test_every_secret_that_may_come_from_a_file_is_documented() -> None:
    names = {
        *file_variables(ProducerSettings),
        *file_variables(ConsumerSettings),
        *(f"{name}_FILE" for name in tracing_settings._HEADERS),
        "SINK_DATABASE_URL_FILE",
    }
    section = SETTINGS[SETTINGS.index("### Secrets from files") :]
    assert len(names) == 5
    assert sorted(n for n in names if f"`{n}`" not in section) == []


def test_every_metric_is_documented() -> None:
    names = our_metric_names()
    assert len(names) >= 13  # the discovery found them: 13 since invalid messages retired
    assert sorted(n for n in names if f"`{n}`" not in METRICS) == []


def test_every_documented_metric_is_exported() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (?:counter|gauge|histogram)", METRICS, flags=re.M)
    assert sorted(set(rows) - our_metric_names()) == []


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_leads_to_a_file_and_a_heading_that_exist(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (
            anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        ):
            broken.append(target)
    assert broken == []


def test_every_page_of_the_docs_is_linked_from_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    assert sorted(p for p in pages if f"(docs/{p})" not in readme) == []


def test_the_readme_is_a_front_door() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 220


@pytest.mark.parametrize(
    ("page", "examples"),
    [
        ("handlers.md", ["orders.py", "lookups.py", "bulk.py", "enrich.py"]),
        ("sources.md", ["signups.py"]),
    ],
)
def test_the_examples_in_the_docs_are_the_type_checked_files(
    page: str, examples: list[str]
) -> None:
    text = (REPO / "docs" / page).read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)
    assert blocks == [(REPO / "examples" / example).read_text() for example in examples]
