"""Checks that keep the project's set-up files in agreement with each other."""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_lists_the_packages_pip_installs():
    project = _pyproject()["project"]
    wanted = _names(project["dependencies"]) | {
        name for extra in project["optional-dependencies"].values() for name in _names(extra)
    }
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    dependencies = text.split("dependencies:", 1)[1]
    entries = [
        line.split("#")[0].strip()[2:].strip()
        for line in dependencies.splitlines()
        if line.strip().startswith("- ")
    ]
    listed = _names([e for e in entries if e != "pip:"])
    assert wanted <= listed, f"missing from environment.yml: {sorted(wanted - listed)}"
    assert listed - wanted == {"python", "pip"}


def test_every_dependency_is_pinned_in_the_lock():
    project = _pyproject()["project"]
    wanted = _names(project["dependencies"]) | {
        name for extra in project["optional-dependencies"].values() for name in _names(extra)
    }
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", lock, re.M)}
    assert wanted <= pinned, f"not pinned in requirements.lock: {sorted(wanted - pinned)}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "make run" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_imports_go_one_way():
    allowed = {
        "geo": set(),
        "layers": {"geo"},
        "analyses": {"geo", "layers"},
        "synthetic": {"geo", "layers"},
        "webmap": {"geo", "layers", "analyses", "synthetic"},
    }
    pattern = re.compile(r"^\s*(?:from|import)\s+(geo|layers|analyses|synthetic|webmap)\b", re.M)
    offenders = []
    for package, others in allowed.items():
        for path in (ROOT / package).rglob("*.py"):
            for imported in pattern.findall(path.read_text(encoding="utf-8")):
                if imported != package and imported not in others:
                    offenders.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert offenders == []


def test_only_webmap_imports_flask_or_folium():
    pattern = re.compile(r"^\s*(?:from|import)\s+(flask|folium)\b", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("geo", "layers", "analyses")
        for path in (ROOT / package).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --- the module graph -------------------------------------------------------------------------------------

PACKAGES = ("geo", "layers", "analyses", "synthetic", "webmap")

def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _first_party_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    return {_module_name(p, root): p for package in packages for p in sorted((root / package).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Yield every node that runs, at module level or in a function: ``if TYPE_CHECKING:`` bodies are skipped."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


@dataclass
class _Imports:
    edges: dict[str, set[str]]  # module -> first-party modules it imports (at run time, anywhere in it)
    private: set[str]  # "importer -> module._name"


def _packages_run_by(target: str, importer: str, modules: dict[str, Path]) -> set[str]:
    """Return the packages Python runs before ``target`` that are not already running for ``importer``.

    Importing ``pkg.sub`` runs ``pkg/__init__.py`` first: the importer depends on it too, unless the
    importer is inside ``pkg`` (then ``pkg`` is already being imported when the importer runs).
    """
    parts = target.split(".")
    ancestors = {".".join(parts[:n]) for n in range(1, len(parts))}
    own = {".".join(importer.split(".")[:n]) for n in range(1, len(importer.split(".")) + 1)}
    return {a for a in ancestors - own if a in modules}


def _is_private(name: str) -> bool:
    """``_x`` is private; ``__x__`` is not, nor is ``_`` alone (gettext's conventional name, meant to be imported)."""
    return name.startswith("_") and not name.startswith("__") and name != "_"


def _scan_imports(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> _Imports:
    modules = _first_party_modules(root, packages)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    private: set[str] = set()
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        aliases: dict[str, str] = {}  # local name -> first-party module it stands for
        nodes = list(_runtime_nodes(tree))
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = alias.name
                    while target and target not in modules:
                        target = target.rpartition(".")[0]
                    if target:
                        edges[name].add(target)
                        if alias.asname:
                            aliases[alias.asname] = target
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base.split(".")[0] not in packages:
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:
                        edges[name].add(submodule)
                        aliases[alias.asname or alias.name] = submodule
                    else:
                        edges[name].add(base)
                        if _is_private(alias.name) and base != name:
                            private.add(f"{name} -> {base}.{alias.name}")
        for node in nodes:
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _is_private(node.attr)
                and aliases[node.value.id] != name
            ):
                private.add(f"{name} -> {aliases[node.value.id]}.{node.attr}")
        for target in list(edges[name]):
            edges[name] |= _packages_run_by(target, name, modules)
        edges[name].discard(name)
    return _Imports(edges, private)


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Return the strongly connected components of the graph (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _one_circle(edges: dict[str, set[str]], component: set[str]) -> list[str]:
    """Return one import circle through the component's first module, as a path that ends where it starts."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges[node] & component):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no circle in {component}")


def _circles(edges: dict[str, set[str]]) -> list[tuple[frozenset[str], list[str]]]:
    return [
        (frozenset(c), _one_circle(edges, c))
        for c in _strongly_connected(edges)
        if len(c) > 1
    ]


def test_the_import_graph_sees_circles_and_private_names():
    edges = {
        "p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a", "p.d"}, "p.d": set(), "p.e": {"p.e2"}, "p.e2": {"p.e"},
    }  # fmt: skip
    found = {members: circle for members, circle in _circles(edges)}
    assert found == {
        frozenset({"p.a", "p.b", "p.c"}): ["p.a", "p.b", "p.c", "p.a"],
        frozenset({"p.e", "p.e2"}): ["p.e", "p.e2", "p.e"],
    }
    imports = _scan_imports()
    # edges of the real code: an import inside a function, a from-import of a module, a TYPE_CHECKING import
    assert "webmap.views.admin" in imports.edges["webmap"]  # create_app imports the blueprints inside the function
    assert "layers.schema" in imports.edges["layers.privacy"]  # from layers import schema
    assert "layers.store" not in imports.edges["layers.demo"]  # only under TYPE_CHECKING


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_the_import_graph_sees_circles_inside_a_package(tmp_path):
    _write(tmp_path, {
        # a submodule imports a name of its package, whose __init__ imports the submodule
        "pkg/__init__.py": "from pkg.sub import helper\nVALUE = 1\n",
        "pkg/sub.py": "from pkg import VALUE\n\ndef helper():\n    return VALUE\n",
        # a module of another package imports pkg2.leaf: pkg2/__init__ runs first, and it imports the module
        "pkg2/__init__.py": "def make():\n    from other.user import use\n    return use\n",
        "pkg2/leaf.py": "LEAF = 1\n",
        "other/__init__.py": "",
        "other/user.py": "from pkg2.leaf import LEAF\n\ndef use():\n    return LEAF\n",
        # no circle: a submodule imports a sibling (its own package is already running)
        "pkg3/__init__.py": "from pkg3.a import A\n",
        "pkg3/a.py": "from pkg3.b import B\nA = B\n",
        "pkg3/b.py": "B = 1\n",
    })  # fmt: skip
    edges = _scan_imports(tmp_path, ("pkg", "pkg2", "other", "pkg3")).edges
    assert edges["other.user"] == {"pkg2", "pkg2.leaf"}
    assert edges["pkg3.a"] == {"pkg3.b"}
    found = {members: circle for members, circle in _circles(edges)}
    assert found == {
        frozenset({"pkg", "pkg.sub"}): ["pkg", "pkg.sub", "pkg"],
        frozenset({"pkg2", "other.user"}): ["other.user", "pkg2", "other.user"],
    }


def test_no_import_circles():
    circles = [" -> ".join(circle) for _members, circle in _circles(_scan_imports().edges)]
    assert circles == [], "import circles: break them (move the shared code to a module both can import)"


def test_no_module_imports_another_modules_private_names():
    private = sorted(_scan_imports().private)
    assert private == [], "private names imported: make them public or move the code that needs them"


def test_only_the_cli_imports_synthetic():
    edges = _scan_imports().edges
    importers = {
        module
        for module, targets in edges.items()
        if not module.startswith("synthetic") and any(t.split(".")[0] == "synthetic" for t in targets)
    }
    assert importers == {"webmap.cli.app"}
    assert not any(m.split(".")[0] in ("geo", "layers") for m in importers)
