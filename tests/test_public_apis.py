"""edgecompress uses only the public API of other packages: no `_private` module, attribute or
argument of a third-party package anywhere in the package or the board-side code.

A private name may move or vanish in any minor release of its package (Optuna's
`_hypervolume` did), and the pins are ranges now. The check walks every module's syntax tree:
imports of third-party modules whose path has a `_name`; and any `x._name` (attribute,
getattr/hasattr/setattr string, or keyword argument) that edgecompress does not define itself.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "edgecompress", ROOT / "firmware"]
#: documented names of the standard library that start with an underscore
STDLIB_PUBLIC = {"_replace", "_asdict", "_fields", "_make", "_field_defaults", "_exit", "_getframe"}
#: the one exception, on the board: LiteRT and tflite-runtime have no public way to list the
#: nodes a delegate took over (the runner's partition figures); the runner guards the call, and a
#: release without it records `partition_error` instead of failing the measurement
ALLOWED = {("firmware/runner/edgecompress_runner.py", "_get_ops_details")}


def _files() -> list[Path]:
    return sorted(p for folder in SOURCES for p in folder.rglob("*.py") if "_bundled" not in p.parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_private_names(trees: dict[Path, ast.AST]) -> set[str]:
    """Every `_name` edgecompress defines: functions, classes, assigned names and attributes, parameters."""
    own: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.arg):
                own.add(node.arg)
            elif isinstance(node, ast.alias) and node.asname:
                own.add(node.asname)
    return {name for name in own if _private(name)}


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return top not in ("edgecompress", "") and top not in sys.stdlib_module_names


#: packages whose implementation lives in a `src` package that their documentation calls private
SRC_IS_PRIVATE = {"keras", "tf_keras"}


def _internal(module: str) -> bool:
    parts = module.split(".")
    return any(map(_private, parts)) or (parts[0] in SRC_IS_PRIVATE and parts[1:2] == ["src"])


def _private_imports(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if _third_party(a.name) and _internal(a.name)]
    if isinstance(node, ast.ImportFrom) and not node.level and node.module and _third_party(node.module):
        names = [f"{node.module}.{a.name}" for a in node.names]
        return [n for n in names if _internal(n)]
    return []


def _private_uses(node: ast.AST) -> list[str]:
    """`x._name` for any x but self/cls, a getattr-style string, or a `_name=` keyword."""
    if isinstance(node, ast.Attribute) and _private(node.attr):
        if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            return [node.attr]
    if isinstance(node, ast.Call):
        found = [k.arg for k in node.keywords if k.arg and _private(k.arg)]
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) >= 2:
            text = node.args[1]
            if isinstance(text, ast.Constant) and isinstance(text.value, str) and _private(text.value):
                found.append(text.value)
        return found
    return []


def test_no_private_name_of_another_package_is_used() -> None:
    trees = {path: ast.parse(path.read_text(), filename=str(path)) for path in _files()}
    own = _own_private_names(trees) | STDLIB_PUBLIC
    found = []
    for path, tree in trees.items():
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            found += [f"{where}:{node.lineno}: imports {name}" for name in _private_imports(node)]
            found += [
                f"{where}:{node.lineno}: uses {name}"
                for name in _private_uses(node)
                if name not in own and (str(where), name) not in ALLOWED
            ]
    assert found == []


def test_the_check_sees_what_the_tune_code_once_did(tmp_path: Path) -> None:
    """Optuna's private modules and a trial's private id, as edgecompress/tune/ used them before."""
    sample = ast.parse(
        "from optuna._hypervolume import compute_hypervolume\n"
        "from optuna.study import _multi_objective\n"
        "import optuna._imports\n"
        "trial = optuna.trial.Trial(study, frozen._trial_id)\n"
        "getattr(model, '_is_graph_network', False)\n"
        "Operator(opcode=1, _fb=fb)\n"
    )
    imports = [name for node in ast.walk(sample) for name in _private_imports(node)]
    uses = [name for node in ast.walk(sample) for name in _private_uses(node)]
    assert imports == ["optuna._hypervolume.compute_hypervolume", "optuna.study._multi_objective", "optuna._imports"]
    assert sorted(uses) == ["_fb", "_is_graph_network", "_trial_id"]


def test_the_check_sees_an_import_of_tf_keras_internals() -> None:
    """tf-keras's classes under `tf_keras.src` are its implementation, not its API (model_safety once
    imported Functional and TFOpLambda from there)."""
    sample = ast.parse(
        "import tf_keras.src.activations as a\nfrom tf_keras.src.engine.functional import Functional\n"
        "from tf_keras import layers\n"
    )
    found = [name for node in ast.walk(sample) for name in _private_imports(node)]
    assert found == ["tf_keras.src.activations", "tf_keras.src.engine.functional.Functional"]
