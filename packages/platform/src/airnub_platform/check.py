"""``airnub check``: does every department follow the conventions?

Each rule reads the tree under ``packages/dept_*`` and reports a violation as
``path: message``. Flow modules are imported to check their names, tags and
settings models, so a module that fails to import is itself a violation.
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from airnub_core import config, contracts, conventions, environments, inventory
from airnub_core.conventions import STAGES, ConventionError, Identity
from airnub_core.inventory import ORPHAN

from airnub_platform import codeowners, prefect_yaml, quotas, work_pools
from airnub_platform.prefect_yaml import DEPLOYMENT_KEYS, TOP_LEVEL_KEYS, WORK_POOL_KEYS

SRC_EXTRAS = frozenset({"__init__.py", "configs", "sample_data", "py.typed", "__pycache__"})
# The platform layer: a worker installs the runtime alone, so department code may not use it.
PLATFORM_PACKAGES = frozenset({"airnub_platform"})
FOLDER_EXTRAS = frozenset({"__init__.py", "tasks", "__pycache__"})


@dataclass(frozen=True)
class Violation:
    path: Path
    message: str

    def show(self, root: Path) -> str:
        try:
            where = self.path.relative_to(root)
        except ValueError:
            where = self.path
        return f"{where}: {self.message}"


@dataclass
class Report:
    departments: int = 0
    categories: int = 0
    violations: list[Violation] = field(default_factory=list)


def check_repository(root: Path, only: list[str] | None = None) -> Report:
    report = Report()
    try:
        declared: list[str] | None = environments.declared_environments(root)
    except environments.EnvironmentsError as error:
        path = root / "pyproject.toml"
        report.violations.append(Violation(path, str(error).removeprefix(f"{path}: ")))
        declared = None  # overlays are checked for their form only
    for folder in inventory.folders(root).values():
        if only and folder.name not in only:
            continue
        report.departments += 1
        checker = _Department(folder, root if declared is not None else None, declared)
        report.violations.extend(checker.run())
        report.categories += checker.categories
    report.violations.extend(_codeowners(root))
    return report


def _codeowners(root: Path) -> list[Violation]:
    """CODEOWNERS must be as generated, in a repository on GitHub (one with ``.github/``).
    A department whose owners cannot be read is named by its own check, not twice."""
    if not (root / ".github").is_dir():
        return []
    try:
        problem = codeowners.difference(root)
    except codeowners.CodeownersError as error:
        if str(error).startswith("packages/"):
            return []
        return [Violation(root / "pyproject.toml", str(error).removeprefix("pyproject.toml: "))]
    return [Violation(root / codeowners.FILE, problem)] if problem else []


def _import(module_name: str) -> ModuleType:
    return inventory.load_module(module_name)  # sys.exit() there is an error, not a pass


_one_line = inventory.error_line


def _more(broken: inventory.BrokenEdge) -> str:
    """What check adds to a broken edge: where to look, or what the upstream offers."""
    if broken.why == "does not load":
        return " (see its own line)"
    if broken.why == "not declared":
        return f" (it declares: {', '.join(map(contracts.shown, broken.offered)) or 'nothing'})"
    return ""


class _Department:
    """The rules for one ``packages/dept_<id>`` folder."""

    def __init__(self, folder: Path, root: Path | None, declared: list[str] | None) -> None:
        self.folder = folder
        self.root = root  # the workspace root declaring the environments, if readable
        self.environments = declared or [config.DEFAULT_ENV]
        self.id = folder.name
        self.src = folder / "src" / self.id
        self.categories = 0
        self.out: list[Violation] = []
        self.tested: set[str] = set()  # every module the department's tests import

    def flag(self, path: Path, message: str) -> None:
        self.out.append(Violation(path, message))

    def run(self) -> list[Violation]:
        try:
            conventions.check_department(self.id)
        except ConventionError as error:
            self.flag(self.folder, str(error))
            return self.out
        if not self._metadata():
            return self.out
        if not (self.src / "__init__.py").is_file():
            self.flag(self.src, "missing: the package (src layout, with __init__.py)")
            return self.out
        expected = {f"{s}{conventions.flow_suffix(self.id)}.py" for s in STAGES} | set(STAGES)
        for entry in sorted(self.src.iterdir()):
            if entry.name not in expected | SRC_EXTRAS:
                self.flag(entry, "unexpected here; a department holds its stage flows, stage"
                          " folders, configs/ and sample_data/")  # fmt: skip
        self.tested = self._test_imports()
        self._runtime_only()
        for stage in STAGES:
            self._stage(stage)
        self._orphan_configs()
        self._alert_rules()
        self._contracts()
        self._deployments()
        self._work_pool()
        return self.out

    # -- package metadata ------------------------------------------------------------

    def _metadata(self) -> bool:
        path = self.folder / "pyproject.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            self.flag(path, f"invalid TOML: {error}")
            return False
        project = data.get("project", {})
        if project.get("name") != conventions.distribution_name(self.id):
            self.flag(path, f"project.name must be {conventions.distribution_name(self.id)!r}")
        points = project.get("entry-points", {}).get(conventions.ENTRY_POINT_GROUP, {})
        if list(points.values()) != [self.id]:
            self.flag(
                path,
                f'[project.entry-points."{conventions.ENTRY_POINT_GROUP}"] must hold one entry,'
                f' "<Display Name>" = "{self.id}"',
            )
            return False
        try:
            conventions.check_display_name(next(iter(points)))
        except ConventionError as error:
            self.flag(path, str(error))
        self._owners(path)
        try:  # its quotas, refused here as `airnub deploy` would refuse them
            quotas.parse(data, str(path))
        except quotas.QuotaError as error:
            self.flag(path, str(error).removeprefix(f"{path}: "))
        if not any(str(d).startswith("airnub-core") for d in project.get("dependencies", [])):
            self.flag(path, "project.dependencies must include airnub-core")
        if self.id not in conventions.departments():
            self.flag(path, "not installed; run `uv sync --all-packages`")
            return False
        return True

    def _owners(self, path: Path) -> None:
        """Its owners and alert channel, as CODEOWNERS and the owner tags read them."""
        root = self.root or self.folder.parent.parent
        try:
            codeowners.tree_ownership(root, self.id, self.folder)
        except codeowners.CodeownersError as error:
            self.flag(path, str(error).split(": ", 1)[-1])

    # -- stages and categories -------------------------------------------------------

    def _stage(self, stage: str) -> None:
        folder = self.src / stage
        flow_file = self.src / f"{stage}{conventions.flow_suffix(self.id)}.py"
        if not flow_file.is_file():
            self.flag(flow_file, f"missing: the {stage} stage orchestrator")
        else:
            self._flows_in(flow_file, Identity(self.id, stage))
        for required in (folder / "__init__.py", folder / "tasks" / "__init__.py"):
            if not required.is_file():
                self.flag(required, "missing")
        if not folder.is_dir():
            return
        self._modules(folder / "tasks", conventions.task_suffix(self.id))
        for entry in sorted(folder.iterdir()):
            if entry.name in FOLDER_EXTRAS:
                continue
            if not entry.is_dir():
                self.flag(entry, "unexpected file; stage folders hold category folders and tasks/")
                continue
            try:
                conventions.check_category(entry.name)
            except ConventionError as error:
                self.flag(entry, str(error))
                continue
            self._category(stage, entry)

    def _category(self, stage: str, folder: Path) -> None:
        self.categories += 1
        category = folder.name
        suffix = conventions.flow_suffix(self.id)
        if not (folder / "__init__.py").is_file():
            self.flag(folder / "__init__.py", "missing: a category folder is a package")
        flows = sorted(folder.glob(f"*{suffix}.py"))
        for entry in sorted(folder.iterdir()):
            allowed = FOLDER_EXTRAS | {"subflows"} | {f.name for f in flows}
            if entry.name not in allowed:
                self.flag(entry, "unexpected; helpers go in tasks/ or subflows/")
        if len(flows) != 1:
            self.flag(folder, f"expected one <action>{suffix}.py category flow, found {len(flows)}")
            return
        action = flows[0].stem.removesuffix(suffix)
        try:
            conventions.check_identifier(action, "the flow's action phrase")
        except ConventionError as error:
            self.flag(flows[0], str(error))
            return
        identity = Identity(self.id, stage, category, action)
        module = self._flows_in(flows[0], identity)
        if module is not None:
            self._settings(module, identity, flows[0])
        flow_module = self._module_name(flows[0])
        if flow_module not in self.tested:
            self.flag(folder, f"no test module imports {flow_module}")
        self._modules(folder / "tasks", conventions.task_suffix(self.id))
        subflows = folder / "subflows"
        if subflows.is_dir():
            subflow_suffix = conventions.subflow_suffix(self.id)
            for path in self._modules(subflows, subflow_suffix):
                name = path.stem.removesuffix(subflow_suffix)
                self._flows_in(path, Identity(self.id, stage, category, name))

    def _test_imports(self) -> set[str]:
        """The modules imported by the department's test files, each parsed once; a file
        that does not parse tests nothing, and is flagged."""
        found: set[str] = set()
        for _, imported in self._imports_under(self.folder / "tests", "so it tests nothing"):
            found |= imported
        return found

    def _runtime_only(self) -> None:
        """Department code runs where only the runtime is installed (``--no-dev``)."""
        for path, imported in self._imports_under(self.src, "so it cannot run"):
            if platform := sorted(m for m in imported if m.split(".")[0] in PLATFORM_PACKAGES):
                self.flag(path, f"imports {platform[0]}, a platform tool that a worker does not"
                          " install; department code imports only airnub_core")  # fmt: skip

    def _imports_under(self, folder: Path, why: str) -> Iterator[tuple[Path, set[str]]]:
        """(file, modules it imports) for every ``.py`` file under ``folder``. A symlink to
        a folder is flagged, not followed: code behind it escapes these rules (and may
        point outside the package, where a built wheel would not have it)."""
        found: list[Path] = []
        for place, folders, files in os.walk(folder):  # does not follow symlinks
            for name in sorted(folders):
                if (link := Path(place, name)).is_symlink():
                    self.flag(link, "a symlink to a folder; department code lives in its"
                              " package, where check reads it")  # fmt: skip
            found += [Path(place, name) for name in files if name.endswith(".py")]
        for path in sorted(found):
            if not path.is_file():  # a FIFO or device would block or never end
                continue
            try:
                tree = ast.parse(path.read_bytes(), filename=path.name)
            except OSError as error:
                self.flag(path, f"cannot be read: {_one_line(error)}")
            except (SyntaxError, ValueError) as error:
                self.flag(path, f"does not parse, {why}: {_one_line(error)}")
            except (RecursionError, MemoryError):  # how CPython's parser meets deep nesting
                self.flag(path, f"does not parse, {why}: nested too deeply")
            else:
                yield path, imported_modules(tree)

    def _modules(self, folder: Path, suffix: str) -> list[Path]:
        """Modules of a tasks/ or subflows/ folder, flagging misnamed ones."""
        if not folder.is_dir():
            return []
        if not (folder / "__init__.py").is_file():
            self.flag(folder / "__init__.py", "missing")
        found = []
        for path in sorted(folder.glob("*.py")):
            if path.name == "__init__.py":
                continue
            if not path.stem.endswith(suffix) or path.stem == suffix.lstrip("_"):
                self.flag(path, f"module names here end with {suffix}.py")
                continue
            found.append(path)
        return found

    def _module_name(self, path: Path) -> str:
        return ".".join((self.id, *path.relative_to(self.src).with_suffix("").parts))

    def _flows_in(self, path: Path, identity: Identity) -> ModuleType | None:
        """Import ``path``; it must define one flow, named and tagged by the conventions."""
        try:
            module = _import(self._module_name(path))
        except Exception as error:  # reported, not swallowed: a module that cannot import
            self.flag(path, f"does not import: {_one_line(error)}")
            return None
        try:
            flow = inventory.flow_in(module)
        except ConventionError as error:
            self.flag(path, str(error).removeprefix(f"{module.__name__}: "))
            return module
        if flow.name != identity.flow_name:
            self.flag(path, f"flow name {flow.name!r} is not the derived {identity.flow_name!r}")
        if getattr(flow, "airnub_identity", None) != identity:
            self.flag(path, "decorate it with @stage_flow, @category_flow or @subflow, so its"
                      " tags are derived")  # fmt: skip
        return module

    def _settings(self, module: ModuleType, identity: Identity, path: Path) -> None:
        try:
            model = config.settings_model(module)
        except config.ConfigError as error:
            self.flag(path, str(error).split(": ", 1)[-1])
            return
        yaml_path = config.config_path(identity)
        # the settings every declared environment would run with, the default first
        for env in dict.fromkeys([config.DEFAULT_ENV, *self.environments]):
            try:
                origin, data = config.load_yaml_config(yaml_path, env)
                config.validate(model, data, origin, self.id)
            except environments.EnvironmentsError:
                return  # an undeclared overlay: reported once, by _overlay
            except config.ConfigError as error:
                self.flag(yaml_path, str(error).removeprefix(f"{yaml_path}").lstrip(": "))
                return

    def _orphan_configs(self) -> None:
        """Overlays are checked on their own; every base file needs a node that owns it."""
        for path in sorted(self.src.joinpath(*config.CONFIG_DIR).glob("**/*.*.yaml")):
            self._overlay(path)
        tree = inventory.department(self.id)  # installed: _metadata said so
        for path, node in tree.config_files():
            if node is None:
                self.flag(self.src / path.relative_to(tree.src), ORPHAN)

    def _alert_rules(self) -> None:
        """``configs/automations.yaml``, as ``airnub automations sync`` validates it."""
        from airnub_platform.automation_sync import AUTOMATIONS_FILE, rules_in

        path = self.src.joinpath(*AUTOMATIONS_FILE)
        try:
            rules_in(path)
        except config.ConfigError as error:
            self.flag(path, str(error).removeprefix(str(path)).lstrip(": "))

    def _contracts(self) -> None:
        """Every declared input names a category of an earlier stage that declares that
        output, and every declaration is made where check, run and the graph read it (the
        top level of a module of the category). A flow or subflow that does not import is
        flagged by _flows_in, a folder without one flow module by _category; a task module
        that does not import, here."""
        tree = inventory.department(self.id)  # installed: _metadata said so
        reads: list[tuple[Path, contracts.Input]] = []
        for category in (c for c in tree.categories if c.problem is None):
            for node in (category, *category.tasks, *category.subflows):
                path = self.src / node.path.relative_to(tree.src)
                for line, where in contracts.late_declarations(path):
                    why = "declare it at the module's top level, where check and run read it"
                    self.flag(path, f"line {line}: a contract declared inside {where}; {why}")
                try:
                    node.load()
                except Exception as error:  # a task module's own error: flagged once, here
                    if node in category.tasks:
                        self.flag(path, f"does not import: {_one_line(error)}")
            try:
                inputs, _ = category.contracts
            except Exception:  # each failing module is flagged above or elsewhere
                continue
            reads += [(self.src / category.path.relative_to(tree.src), i) for i in inputs]
        for path, item in reads:
            if broken := tree.broken_edge(item):
                self.flag(path, f"{broken}{_more(broken)}")

    def _overlay(self, path: Path) -> None:
        base = path.with_name(f"{path.stem.split('.')[0]}.yaml")
        if not base.is_file():
            self.flag(path, f"an environment overlay without its base file {base.name}")
        env = path.stem.split(".", 1)[1]
        try:
            environments.check_environment(env, str(path), self.root)
        except environments.EnvironmentsError as error:
            self.flag(path, str(error).removeprefix(f"{path}: "))
        try:
            config.refuse_secrets(config.read_yaml(path), str(path))
        except config.ConfigError as error:
            self.flag(path, str(error).removeprefix(f"{path}:"))

    # -- work-pool.yaml ---------------------------------------------------------------

    def _work_pool(self) -> None:
        """The Kubernetes work pool's settings, when the department has the file (every
        default when it does not), as `airnub deploy --pool-type kubernetes` reads them."""
        path = self.folder / work_pools.FILE_NAME
        if not os.path.lexists(path):
            return
        try:
            work_pools.load(path)
        except work_pools.WorkPoolError as error:
            self.flag(path, str(error).removeprefix(f"{path}: "))

    # -- prefect.yaml ----------------------------------------------------------------

    def _deployments(self) -> None:
        """The file must be what `airnub deployments write` generates from it, and every
        entrypoint must import as a convention flow."""
        path = self.folder / prefect_yaml.FILE_NAME
        if not path.is_file():
            self.flag(path, f"missing: the department's deployments; run `airnub deployments"
                      f" write {self.id}`")  # fmt: skip
            return
        try:
            text = prefect_yaml.read(path)
            data = prefect_yaml.load(text)
        except prefect_yaml.PrefectYamlError as error:
            self.flag(path, error.message)
            return
        self._interop(path, data)
        for index, deployment in enumerate(data.get("deployments") or []):
            if isinstance(deployment, dict):  # else flagged by _interop
                entrypoint = str(deployment.get("entrypoint", ""))
                self._entrypoint(path, f"deployments[{index}]", entrypoint)
        self._generated(path, text)

    def _generated(self, path: Path, text: str) -> None:
        """One violation: the first place the file differs from the generated one, or why
        it cannot be generated (unless a rule above already named that field)."""
        try:
            problem = prefect_yaml.difference(self.id, text)
        except prefect_yaml.PrefectYamlError as error:
            named = [v for v in self.out if v.path == path and v.message.startswith(error.field)]
            problem = None if error.field and named else error.message
        if problem:
            self.flag(path, problem)

    def _interop(self, path: Path, data: dict[str, Any]) -> None:
        """Keys `airnub deploy` reads as `prefect deploy` does, and a portable pull section."""
        why = "; `airnub deploy` would not write what `prefect deploy` does"
        for key in sorted(set(data) - TOP_LEVEL_KEYS, key=str):
            self.flag(path, f"{key}: not supported{why}")
        for key in ("build", "push"):
            if data.get(key):
                self.flag(path, f"{key}: must be empty; nothing is built or pushed")
        if "pull" not in data:
            self.flag(
                path,
                "pull: missing; write `pull: []` (entrypoints are module paths), or"
                " `prefect deploy` pins this checkout's path as the working directory",
            )
        elif not isinstance(data["pull"], list):
            self.flag(path, "pull: must be a list of steps, e.g. pull: []")
        else:
            for place in _absolute_paths(data["pull"], "pull"):
                self.flag(path, f"{place}: an absolute path ties the deployments to one machine")
        for index, deployment in enumerate(data.get("deployments") or []):
            where = f"deployments[{index}]"
            if not isinstance(deployment, dict):
                self.flag(path, f"{where}: must be a mapping")
                continue
            for key in sorted(set(deployment) - DEPLOYMENT_KEYS, key=str):
                self.flag(path, f"{where}.{key}: not supported{why}")
            pool = deployment.get("work_pool")
            unknown = set(pool) - WORK_POOL_KEYS if isinstance(pool, dict) else set()
            for key in sorted(unknown, key=str):
                self.flag(path, f"{where}.work_pool.{key}: not supported{why}")
            for number, schedule in enumerate(deployment.get("schedules") or []):
                if isinstance(schedule, dict) and not schedule.get("slug"):
                    self.flag(path, f"{where}.schedules[{number}].slug: missing; without one"
                              " every deploy replaces the schedule")  # fmt: skip

    def _entrypoint(self, path: Path, where: str, entrypoint: str) -> Any:
        try:
            return entrypoint_flow(self.id, entrypoint)
        except ConventionError as error:
            self.flag(path, f"{where}.entrypoint {error}")
            return None


def _absolute_paths(value: Any, where: str) -> list[str]:
    """Places in a pull section holding an absolute path (this machine's checkout)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _absolute_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _absolute_paths(v, f"{where}[{i}]")]
    portable = not isinstance(value, str) or not (
        value.startswith(("/", "~", "\\\\")) or re.match(r"[A-Za-z]:[\\/]", value)
    )
    return [] if portable else [where]


def imported_modules(tree: ast.AST) -> set[str]:
    """The absolute module names a parsed file imports: ``import a.b``, ``from a import
    b`` (``a`` and, as ``b`` may be a module, ``a.b``) and ``importlib.import_module``
    called with a literal name. Comments and strings are not imports; a computed name is
    only known at run time, so it does not count either."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and (name := _import_module_literal(node)):
            found.add(name)
    return found


def _import_module_literal(call: ast.Call) -> str | None:
    """``x`` of ``importlib.import_module("x")``, ``import_module("x")`` or
    ``__import__("x")``, else None."""
    func = call.func
    by_attribute = (
        isinstance(func, ast.Attribute)
        and func.attr in {"import_module", "__import__"}
        and isinstance(func.value, ast.Name)
        and func.value.id in {"importlib", "builtins"}
    )
    by_name = isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}
    if not (by_attribute or by_name) or not call.args:
        return None
    first = call.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    return None if first.value.startswith(".") else first.value


def entrypoint_flow(department: str, entrypoint: str) -> Any:
    """The convention flow ``module:flow`` names; ConventionError says why it is not one."""
    module_name, _, attribute = entrypoint.partition(":")
    if not attribute or module_name.split(".")[0] != department:
        raise ConventionError(f"{entrypoint!r} must be '{department}.<module>:<flow>'")
    try:
        flow = getattr(_import(module_name), attribute)
    except Exception as error:  # reported, not swallowed
        raise ConventionError(f"{entrypoint!r} does not import: {_one_line(error)}") from None
    if not hasattr(flow, "airnub_identity"):
        raise ConventionError(f"{entrypoint!r} is not a convention flow")
    return flow
