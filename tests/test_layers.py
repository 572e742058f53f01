"""The module map of docs/architecture.md, checked from the code: who may import whom.

Every ``import`` and ``from ... import`` of every labkit module is read with ``ast`` (nothing is
imported or run), including imports inside functions. The rules are written out here, not
derived from the code they check; only the list of modules and their order come from
``labkit.PARTS``, which is the map itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import labkit

LABKIT = Path(labkit.__file__).resolve().parent

#: part -> the parts it may import, besides itself ("entry points" may import everything).
ALLOWED = {
    "foundation": set(),
    "clients": {"foundation"},
    "stack": {"foundation", "clients"},
    "source": {"foundation", "clients"},
    "transport": {"foundation", "clients"},
    "processing": {"foundation", "clients", "stack"},
    "yardstick": {"foundation", "clients"},
    "notebook aids": {"foundation", "yardstick"},
    "downstream": {"foundation", "clients", "source"},
    "entry points": set(labkit.PARTS),
}


def top_module(path: Path) -> str:
    """``labkit/stack/probes.py`` -> ``stack``: a package counts as one module of the map."""
    return path.relative_to(LABKIT).with_suffix("").parts[0]


def labkit_imports(source: str) -> set[str]:
    """The labkit modules a source file imports, as names of the map (``stack``, ``names``...)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "labkit":  # from labkit import topics, settings as s
                modules = [f"labkit.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {m.split(".")[1] for m in modules if m.startswith("labkit.")}
    return found


def import_graph() -> dict[str, set[str]]:
    """module of the map -> the other modules of the map it imports."""
    graph: dict[str, set[str]] = {}
    for path in LABKIT.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == LABKIT:
            continue  # the package's own docstring and map
        module = top_module(path)
        graph.setdefault(module, set()).update(labkit_imports(path.read_text()) - {module})
    return graph


PART_OF = {module: part for part, modules in labkit.PARTS.items() for module in modules}
GRAPH = import_graph()


def test_every_module_is_on_the_map():
    assert set(GRAPH) == set(labkit.MODULES), "add new modules to labkit.PARTS (and docs/architecture.md)"


def test_names_is_a_leaf():
    assert GRAPH["names"] == set(), "labkit.names must import nothing from labkit: every part imports it"


@pytest.mark.parametrize("module", sorted(labkit.MODULES))
def test_nothing_imports_back_up(module):
    order = labkit.MODULES.index
    later = sorted(m for m in GRAPH.get(module, ()) if order(m) > order(module))
    assert not later, f"labkit.{module} imports {later}, listed after it in labkit.PARTS"


@pytest.mark.parametrize("module", sorted(labkit.MODULES))
def test_each_part_imports_only_what_it_may(module):
    part = PART_OF[module]
    allowed = ALLOWED[part] | {part}
    forbidden = sorted(m for m in GRAPH.get(module, ()) if PART_OF[m] not in allowed)
    assert not forbidden, f"labkit.{module} ({part}) imports {forbidden}; {part} may import only {sorted(allowed)}"


def test_source_and_transport_do_not_import_each_other():
    source, transport = set(labkit.PARTS["source"]), set(labkit.PARTS["transport"])
    for module in source:
        assert not GRAPH[module] & transport, f"labkit.{module} imports the bridge"
    for module in transport:
        assert not GRAPH[module] & source, f"labkit.{module} imports {sorted(GRAPH[module] & source)}"


def test_the_stack_does_not_import_the_streaming_job():
    assert not GRAPH["stack"] & {"pipeline", "watch", "replay", "lake", "spark"}, GRAPH["stack"]


def test_the_checker_sees_every_kind_of_import():
    """The rules are only as good as the import reader: it must see every spelling."""
    source = (
        "import labkit.rooms\n"
        "from labkit import bridge, settings as s\n"
        "from labkit.stack.probes import port_open\n"
        "def later():\n"
        "    from labkit import pipeline\n"
        "from . import relative_is_not_used_in_labkit\n"
        "import json\n"
    )
    assert labkit_imports(source) == {"rooms", "bridge", "settings", "stack", "pipeline"}
