"""The floor plan (docs/architecture.md), enforced: imports only go down the layers, pyspark only in
Spark glue, no library module over 450 lines. Every import is read, lazy ones (inside functions) too."""

import ast
import pathlib

import pytest

LIB = pathlib.Path(__file__).resolve().parents[2] / "lib" / "sparkprep"
MAX_LINES = 450

# Top to bottom. A module may import modules of a lower layer, or of its own package (sideways);
# nothing of a higher layer, and nothing of another package on its own layer.
LAYERS = [
    ["cli"],                                   # the entry of jobs/*.py: parse, session, run, summary
    ["submit"],                                # EMR steps, SageMaker jobs, packaging: read the registry
    ["jobs"],                                  # the registry: job name -> config, run function, summary
    ["pipeline"],                              # every stage in one application
    ["map"],                                   # the user's function; its --to writes an export
    ["features", "export", "report", "online"],  # later stages; online runs preprocess's recipe
    ["preprocess"],
    ["split"],
    ["audit"],                                 # near-duplicate search, clusters, leakage policy
    ["ingest"],
    ["spark"],                                 # what every stage's glue shares: session, safe writes, reports
    ["images"],                                # pure image code: probe, end checks, hashes, ops, thumbnails
    ["table_counts"],                          # the run report's counts of a small table, on the driver
    ["flags", "runlog", "page", "schema"],     # the floor: flags and --config, the run log, report.html, schemas
    ["uris", "values", "capacity"],
    ["errors", "statuses"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Where pyspark may be imported: a stage's glue (<stage>/spark.py or <stage>/spark/), and spark/.
GLUE = ("spark",)


def modules():
    for path in sorted(LIB.rglob("*.py")):
        rel = path.relative_to(LIB)
        yield path, rel, (rel.parts[0][:-3] if len(rel.parts) == 1 else rel.parts[0])


def imports_of(path):
    """Every sparkprep and pyspark module a file imports, at any depth (lazy imports too)."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, node.lineno)]
            if node.module == "sparkprep":  # from sparkprep import <module> (not __version__)
                found += [(f"sparkprep.{alias.name}", node.lineno) for alias in node.names
                          if not alias.name.startswith("__")]
    return found


def test_every_library_package_has_a_layer():
    assert {package for _, _, package in modules()} - {"__init__"} <= set(RANK)


def test_imports_only_go_down_the_layers():
    up = []
    for path, rel, package in modules():
        if package == "__init__":
            continue
        for module, line in imports_of(path):
            parts = module.split(".")
            if parts[0] != "sparkprep" or len(parts) < 2 or parts[1] == package:
                continue
            target = parts[1]
            if target not in RANK or RANK[target] <= RANK[package]:
                up.append(f"{rel}:{line} imports {module} ({package} -> {target})")
    assert not up, "imports that do not go down:\n" + "\n".join(up)


def test_pyspark_only_in_spark_glue():
    found = []
    for path, rel, package in modules():
        glue = package in GLUE or rel.stem == "spark" or "spark" in rel.parts[1:-1]
        if not glue and any(
                m.split(".")[0] == "pyspark" for m, _ in imports_of(path)):
            found.append(str(rel))
    assert not found, f"pyspark outside Spark glue: {found}"


@pytest.mark.parametrize("path", [p for p, _, _ in modules()], ids=lambda p: str(p.relative_to(LIB)))
def test_no_module_is_over_450_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(LIB)}: {lines} lines"


def test_the_layers_the_test_reads_are_the_ones_the_architecture_page_shows():
    page = (LIB.parents[1] / "docs" / "architecture.md").read_text()
    for names in LAYERS:
        assert " ".join(f"`{n}`" for n in names) in page, names
