"""Every example the docs mark as runnable (a `<!-- runs -->` line before its fenced block) runs
as a user runs it: through spark-submit, on the demo's sample data, in order, exiting 0 and
printing its job's summary. The README's WebDataset example once exited 1 after publishing, for
every user, and no in-session test noticed.

The examples run in a scratch directory holding links to jobs/ and conf/ and a fresh sample, so
nothing is written into the repository. `make test-docs`; CI runs it after `make test`.
"""

import io
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tarfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from local_submit import submit_command, submit_env  # noqa: E402

from sparkprep.jobs import JOBS  # noqa: E402

MARK = "<!-- runs -->"


def marked_blocks():
    """(page, line, commands) of every marked block: README first, then the job pages in the
    registry's flow order (a page may use what an earlier one wrote: split.md's out/splits is
    preprocess.md's input), then the rest of docs/ in name order."""
    jobs = [REPO / "docs" / "jobs" / f"{name}.md" for name in JOBS]
    pages = [REPO / "README.md", *jobs, *sorted(p for p in (REPO / "docs").rglob("*.md") if p not in jobs)]
    found = []
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.strip() != MARK:
                continue
            assert lines[number + 1].startswith("```"), f"{page}:{number + 1}: {MARK} must come right before a fence"
            end = next(i for i in range(number + 2, len(lines)) if lines[i].startswith("```"))
            text = "\n".join(lines[number + 2:end]).replace("\\\n", " ")
            commands = [re.sub(r"\s+#.*$", "", c).strip() for c in text.splitlines()]
            found.append((page.relative_to(REPO), number + 1, [c for c in commands if c and not c.startswith("#")]))
    return found


BLOCKS = marked_blocks()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs-examples")
    for name in ("jobs", "conf"):
        os.symlink(REPO / name, root / name)
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_sample.py"), str(root / "data" / "mednist")],
                   check=True, capture_output=True)
    shards(root / "data" / "mednist", root / "data" / "shards")
    return root


def shards(tree: pathlib.Path, out: pathlib.Path, count: int = 2) -> None:
    """The sample's readable images as WebDataset shards: <class>_<stem>.<ext> and its .cls member."""
    out.mkdir(parents=True)
    files = sorted(p for p in tree.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.stat().st_size)
    assert files
    for index in range(count):
        with tarfile.open(out / f"shard-{index:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for path in files[index::count]:
                key = f"{path.parent.name}_{path.stem}".replace(".", "_")
                for name, data in ((f"{key}{path.suffix.lower()}", path.read_bytes()),
                                   (f"{key}.cls", path.parent.name.encode())):
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime = len(data), 0
                    tar.addfile(info, io.BytesIO(data))


def test_every_job_page_marks_an_example_to_run():
    marked = {pathlib.Path(page).stem for page, _, _ in BLOCKS if pathlib.Path(page).parent.name == "jobs"}
    # map and features need WFDB records and a churn table: tests/docs/test_worked_examples.py runs
    # their examples (examples/wfdb_features, examples/churn) end to end instead
    assert marked == set(JOBS) - {"map", "features"}
    assert sum(len(commands) for _, _, commands in BLOCKS) >= 15


@pytest.mark.parametrize("page,line,commands", BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_a_marked_example_runs_as_written(scratch, page, line, commands):
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "spark-submit" and words[1].startswith("jobs/"), f"{page}:{line}: {command}"
        job = pathlib.Path(words[1]).stem
        done = subprocess.run(submit_command(job, words[2:]), cwd=scratch, env=submit_env(),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{page}:{line}: {command}\n{done.stderr[-3000:]}"
        assert re.search(r"^== (\w+ )?summary|^== \w+ summary", done.stdout, re.M), \
            f"{page}:{line}: {command} printed no summary:\n{done.stdout[-2000:]}"
