"""The architecture the design promises, checked on the source: one op table (no module outside
``ops/`` looks at an op's name), a layered package with no import cycles and no late imports."""

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "chainrule"
OPTIONAL = {"onnx", "graphviz", "tensorboard", "tqdm", "sklearn", "torch", "cupy",
            "mpi4py", "chainrule.utils.tensorboard"}  # optional extras: imported when used


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text(), str(path))


MODULES = {name: (path, tree) for name, path, tree in _modules()}


def _resolve(module, node):
    """The chainrule modules an import statement in ``module`` loads (the most specific ones)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("chainrule")]
    package = module if MODULES[module][0].name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")
    if node.level:
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("chainrule"):
        return []
    found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
    return found if len(found) == len(node.names) else found + [target]


def _imports(module, top_level_only):
    tree = MODULES[module][1]
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def test_no_import_cycles():
    graph = {m: {t for n in _imports(m, True) for t in _resolve(m, n) if t in MODULES and t != m} for m in MODULES}
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def connect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            connect(v)
    assert cycles == []


def test_no_late_imports():
    """Imports sit at the top of their module (optional dependencies excepted: loaded when used)."""
    late = []
    for path, tree in MODULES.values():
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if not all(n in OPTIONAL or n.split(".")[0] in OPTIONAL for n in names) or getattr(node, "level", 0):
                    late.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
        body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        seen_code = False
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if seen_code and not path.name == "__init__.py":
                    late.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            elif not isinstance(node, (ast.If, ast.Try)):
                seen_code = True
    assert late == []


NAME_USE = re.compile(r"op\.name\s*(==|!=|\bin\b|\bnot in\b)|\bOPS\s*\[|\bOPS\.get\(|(op_name|opname)\s*(==|!=|\bin\b)"
                      r"|\bop\s+is\s+(not\s+)?\w+(_op\b|\.op\b)")  # or on one op's identity (``x.op is expand_op``)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("chainrule.ops")))
def test_only_ops_knows_op_names(module):
    """Modes read an op's declarations; none branches on its name or identity, or looks it up by name."""
    path = MODULES[module][0]
    lines = enumerate(path.read_text().splitlines(), 1)
    hits = [f"{path.relative_to(PACKAGE)}:{k}: {text.strip()}" for k, text in lines if NAME_USE.search(text)]
    assert hits == []


def test_every_op_record_lives_under_ops():
    from chainrule.ops.op import OPS

    outside = {name: op.forward.__module__ for name, op in OPS.items()
               if not getattr(op.forward, "__module__", "chainrule.ops").startswith(("chainrule.ops", "numpy"))}
    assert outside == {}
