"""The README and docs/ tell the truth about the code: links resolve, flag tables are what the
code declares, every registered job has its script, its page and its place in the submitters."""

import pathlib
import re

import pytest
from conftest import REPO, load_script

from sparkprep.jobs import JOBS

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text))


def anchors(path: pathlib.Path):
    found, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def links(path: pathlib.Path):
    fence = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):  # not inside inline code
                if not re.match(r"[a-z]+:", target):
                    yield number, target


def test_the_readme_is_a_front_page():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 400


def test_every_relative_link_resolves():
    broken, checked = [], 0
    for page in PAGES:
        for number, target in links(page):
            file, _, anchor = target.partition("#")
            resolved = (page.parent / file).resolve() if file else page
            checked += 1
            if not resolved.exists():
                broken.append(f"{page.relative_to(REPO)}:{number}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.relative_to(REPO)}:{number}: {target} (no such heading)")
    assert checked > 30, "the link reader found almost no links"
    assert not broken, "\n".join(broken)


def test_the_flag_tables_are_what_the_code_declares():
    flag_tables = load_script("flag_tables")
    for name in JOBS:
        page = (flag_tables.DOCS / f"{name}.md").read_text(encoding="utf-8")
        assert flag_tables.with_table(page, flag_tables.table_of(name)) == page, \
            f"docs/jobs/{name}.md: run scripts/flag_tables.py"


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_job_has_its_script_its_page_and_every_flag_in_its_help(name, capsys):
    script = (REPO / "jobs" / f"{name}.py").read_text(encoding="utf-8")
    assert f'job_main("{name}", argv, spark=spark)' in script
    assert (REPO / "docs" / "jobs" / f"{name}.md").exists()
    assert f"docs/jobs/{name}.md" in (REPO / "README.md").read_text(encoding="utf-8")
    parser = JOBS[name].command.argument_parser()
    options = {o for action in parser._actions for o in action.option_strings}
    assert {item.option for item in JOBS[name].command.flags()} <= options


def test_the_scripts_are_exactly_the_registry():
    assert {p.stem for p in (REPO / "jobs").glob("*.py")} == set(JOBS)


def test_the_slug_of_a_heading_is_githubs():
    assert slug("Split assignment `sha256-v1`") == "split-assignment-sha256-v1"
    assert slug("Faults: what a crash leaves") == "faults-what-a-crash-leaves"
