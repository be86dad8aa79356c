"""Dependencies flow downward (DESIGN.md §9): a lower package never imports a higher one.

The layers, top to bottom, and where the packages DESIGN does not name sit:

    cli                                                    parse, call, print
    plan, delivery, schedule, report, web, export, scaffold   the features
    render, audience, events, waves                        what the features are made of
    spec, store                                            definitions and the database
    clock, enums, errors, safecsv, lifeline, campaignctl   the base: no package of ours

- `events/` sits with render and audience: the send engine, `events ingest` and later the
  web side all record events, and `report` and relaunch read them, so it must be below
  every feature; it uses `audience.privacy` to suppress a hard-bounced address.
- `automation/` (lists, enrolment, step trees, their figures) sits with render and audience:
  the scheduler runs it, `plan` and `report` count it, and it compiles its conditions with
  the segment compiler; the send engine and the quiet hours reach it as callables.
- `waves/` (when each wave is due, and what the store knows of it) is read by `plan` and
  by `schedule`: below both, so neither imports the other's package.
- The base modules are the vocabulary every layer shares: exit codes and errors, the
  clock (pinned by CAMPAIGNCTL_NOW), the enums the store and the engine share.

Inside one layer, a package imports a sibling only along an edge listed in SIBLINGS with its
reason; the edges have no cycle. An import counts wherever it is written: at the top, in a
function, or under TYPE_CHECKING (a type is a dependency too).
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import campaignctl

PACKAGE = Path(campaignctl.__file__).parent

LAYERS: list[tuple[str, frozenset[str]]] = [
    ("cli", frozenset({"cli"})),
    (
        "features",
        frozenset({"plan", "delivery", "schedule", "report", "web", "export", "scaffold"}),
    ),
    ("core", frozenset({"render", "audience", "events", "waves", "automation"})),
    ("definitions", frozenset({"spec", "store"})),
    ("base", frozenset({"clock", "enums", "errors", "safecsv", "lifeline", "campaignctl"})),
]

# (importer, imported): why a package may import a sibling of its own layer
SIBLINGS: dict[tuple[str, str], str] = {
    ("delivery", "plan"): "the send engine sends what the lock froze (plan.lock)",
    ("schedule", "plan"): "relaunch and the scheduler's runner lock campaigns",
    ("schedule", "delivery"): "the scheduler sends its waves through the send engine",
    ("report", "plan"): "a report counts the records not contacted as the plan does",
    ("report", "delivery"): "`report --email` goes through the sender's transport",
    ("render", "audience"): "a preview reads its records from the audience's source file",
    ("events", "audience"): "a hard bounce suppresses the address (audience.privacy)",
    ("automation", "audience"): "enrolment and `if:` steps compile conditions as segments do",
    ("spec", "store"): "`validate` compiles `matches:` with the store's own RE2 compiler",
    ("export", "delivery"): "a webhook reads its token as the transports do (read_secret)",
    ("clock", "errors"): "a bad CAMPAIGNCTL_NOW is a usage error",
}

# Function-level imports of our own modules below cli/, each for start-up time (measured
# by benchmarks/imports.py) or by design. Any other one would hide a cycle or save nothing.
# (cli/ imports the library inside each command: see campaignctl/cli/__init__.py.)
LAZY_ALLOWED: dict[tuple[str, str], str] = {
    ("plan/plan.py", "campaignctl.render.context"): "only a plan with SMS renders",
    ("plan/plan.py", "campaignctl.render.renderer"): "only a plan with SMS renders",
    ("schedule/runner.py", "campaignctl.delivery.engine"): "a pass with nothing due",
    ("spec/templates.py", "campaignctl.spec.template_loader"): "Jinja, only to check",
    ("store/__init__.py", "campaignctl.store.store"): "`import campaignctl.store` stays light",
    ("delivery/builtin.py", "campaignctl.delivery.file"): "transports load when used",
    ("delivery/builtin.py", "campaignctl.delivery.smtp"): "transports load when used",
    ("delivery/builtin.py", "campaignctl.delivery.http_sms"): "transports load when used",
}


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    importer: str  # the top-level package (or base module) holding the file
    module: str  # the dotted module imported
    lazy: bool  # inside a function

    def where(self, root: Path) -> str:
        return f"{self.file.relative_to(root.parent)}:{self.line}"


def unit(module: str) -> str:
    """`campaignctl.plan.lock` -> plan; `campaignctl.clock` -> clock; `campaignctl` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def own_imports(root: Path) -> list[Import]:
    """Every import of a `campaignctl` module written in the package at `root`."""
    found: list[Import] = []
    for file in sorted(root.rglob("*.py")):
        if "migrations" in file.parts:
            continue
        parts = list(file.relative_to(root.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts = parts[:-1]
        module = ".".join(parts)
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        for node, lazy in _walk(tree, False):
            for name in _targets(node, module, is_init, root):
                if name.split(".")[0] == root.name:
                    found.append(Import(file, node.lineno, unit(module), name, lazy))
    return found


def _walk(node: ast.AST, lazy: bool):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, lazy
        inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, inner)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_init: bool, root: Path):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_init else 0)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    # `from campaignctl import plan` imports the package plan, not campaignctl/__init__
    names = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        path = root.parent.joinpath(*sub.split("."))
        names.append(sub if path.with_suffix(".py").exists() or path.is_dir() else target)
    return names


def layer_of(name: str) -> int:
    for rank, (_, members) in enumerate(LAYERS):
        if name in members:
            return rank
    raise LookupError(name)


def layering_violations(root: Path) -> list[str]:
    """Each import that goes up a layer, or sideways along no listed edge, as file:line."""
    problems = []
    for item in own_imports(root):
        source, target = item.importer, unit(item.module)
        if source == target:
            continue
        try:
            upward = layer_of(target) < layer_of(source)
            sideways = layer_of(target) == layer_of(source)
        except LookupError as missing:
            problems.append(f"{item.where(root)}: {missing} is in no layer of tests/test_layers")
            continue
        if upward:
            problems.append(
                f"{item.where(root)}: {source} ({LAYERS[layer_of(source)][0]}) imports "
                f"{item.module} ({LAYERS[layer_of(target)][0]}), a higher layer"
            )
        elif sideways and (source, target) not in SIBLINGS:
            problems.append(
                f"{item.where(root)}: {source} imports its sibling {item.module}, along no "
                "edge of SIBLINGS"
            )
    return problems


def lazy_imports(root: Path) -> list[str]:
    """Each function-level import of our own modules below cli/ not in LAZY_ALLOWED."""
    return [
        f"{item.where(root)}: {item.module}"
        for item in own_imports(root)
        if item.lazy
        and item.importer != "cli"
        and (str(item.file.relative_to(root).as_posix()), item.module) not in LAZY_ALLOWED
    ]


def test_every_package_has_a_layer() -> None:
    units = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    units |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    placed = set().union(*(members for _, members in LAYERS))
    assert units - placed == set(), "place each new package in LAYERS, with its reason"


def test_no_package_imports_a_higher_layer_or_an_unlisted_sibling() -> None:
    assert layering_violations(PACKAGE) == []


def test_the_sibling_edges_have_no_cycle() -> None:
    edges: dict[str, set[str]] = {}
    for source, target in SIBLINGS:
        assert layer_of(source) == layer_of(target), (source, target)
        edges.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in edges.get(start, ())
        )

    assert [s for s in edges if reaches(s, s)] == []


def test_no_lazy_import_of_our_modules_below_cli_but_the_measured_ones() -> None:
    assert lazy_imports(PACKAGE) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "campaignctl"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_a_lower_package_importing_a_higher_one_fails(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "spec/__init__.py": "",
            "spec/models.py": """\
                from campaignctl.errors import SpecError
                from campaignctl.spec import loader


                def check():
                    from campaignctl.plan.plan import compute_plan
                """,
            "spec/loader.py": "",
            "store/__init__.py": "from campaignctl import plan\n",
            "plan/__init__.py": "",
            "plan/plan.py": "from ..spec.models import check\nfrom campaignctl.cli import app\n",
            "cli/__init__.py": "",
            "cli/app.py": "from campaignctl.plan.plan import compute_plan\n",
        },
    )
    assert layering_violations(root) == [
        "campaignctl/plan/plan.py:2: plan (features) imports campaignctl.cli.app (cli), "
        "a higher layer",
        "campaignctl/spec/models.py:6: spec (definitions) imports campaignctl.plan.plan "
        "(features), a higher layer",
        "campaignctl/store/__init__.py:1: store (definitions) imports campaignctl.plan "
        "(features), a higher layer",
    ]
    assert lazy_imports(root) == ["campaignctl/spec/models.py:6: campaignctl.plan.plan"]


def test_a_sibling_import_along_no_listed_edge_fails(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "plan/__init__.py": "",
            "plan/plan.py": "import campaignctl.schedule.scheduler\n",
            "schedule/__init__.py": "",
            "schedule/scheduler.py": "from campaignctl.plan import plan\n",
            "newthing/__init__.py": "from campaignctl.plan import plan\n",
        },
    )
    assert layering_violations(root) == [
        "campaignctl/newthing/__init__.py:1: newthing is in no layer of tests/test_layers",
        "campaignctl/plan/plan.py:1: plan imports its sibling campaignctl.schedule.scheduler, "
        "along no edge of SIBLINGS",
    ]
