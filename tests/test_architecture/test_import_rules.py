"""The import rules of ``docs/architecture.md`` ("Import rules"), checked on every module of
``mmdet3d/`` by reading its imports with ``ast``: module-level and function-level, ``import x``
and ``from x import y``, relative imports resolved against the module's package.

The allowed dependencies are read from the two tables of the doc (between the
``<!-- import-rules -->`` and ``<!-- import-exceptions -->`` markers), so the doc is the one place
the rules are written. Imports by name in strings (registry ``locations``, ``import_submodules``,
``custom_imports``) are not seen by ``ast``; the subprocess test below catches what they load for
the packages whose ``__init__`` imports all their modules.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / 'docs' / 'architecture.md'
PACKAGE = 'mmdet3d'
ROOT = '(root)'  # the unit of mmdet3d/__init__.py


def table_rows(text: str, marker: str) -> list[list[str]]:
    """The cells of the Markdown table between ``<!-- marker -->`` and ``<!-- /marker -->``,
    header and separator rows left out."""
    match = re.search(rf'<!-- {marker} -->(.*?)<!-- /{marker} -->', text, re.S)
    if match is None:
        raise ValueError(f'{DOC.name} has no table between <!-- {marker} --> and '
                         f'<!-- /{marker} -->')
    rows = [[cell.strip() for cell in line.strip().strip('|').split('|')]
            for line in match.group(1).splitlines() if line.strip().startswith('|')]
    return rows[2:]


def names(cell: str) -> set[str]:
    """The backticked names of a table cell (``-`` or words without backticks: none)."""
    return set(re.findall(r'`([^`]+)`', cell))


def read_rules(text: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``({unit: units it may import}, {module file: further units it may import})``.

    A unit is a first-level package or module of ``mmdet3d`` (``datasets``, ``registry``, ...);
    ``(root)`` is ``mmdet3d/__init__.py``. Module files are relative to ``mmdet3d/``.
    """
    rules = {}
    for row in table_rows(text, 'import-rules'):
        (unit,) = names(row[0]) or {row[0]}
        rules[unit] = names(row[1])
    exceptions = {}
    for row in table_rows(text, 'import-exceptions'):
        (module,) = names(row[0])
        exceptions[module] = names(row[1])
    unknown = set().union(*rules.values(), *exceptions.values()) - set(rules)
    if unknown:
        raise ValueError(f'the import rules name units without a row: {sorted(unknown)}')
    return rules, exceptions


def unit_of(module: str) -> str | None:
    """The unit a dotted module belongs to; ``(root)`` for ``mmdet3d``; None outside it."""
    parts = module.split('.')
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else ROOT


def module_name(path: Path, root: Path = REPO) -> tuple[str, bool]:
    """(dotted module name, is a package ``__init__``) of a ``.py`` file under ``root``."""
    parts = list(path.relative_to(root).with_suffix('').parts)
    is_package = parts[-1] == '__init__'
    return '.'.join(parts[:-1] if is_package else parts), is_package


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, at any depth.

    ``from x import y`` counts as ``x.y`` when ``x`` is the package root or a relative import
    (``from . import y``: ``y`` is a module or a name of the package itself), else as ``x``.
    """
    package = module if is_package else module.rpartition('.')[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')
                if node.level - 1 >= len(anchor):
                    raise ValueError(f'{module}:{node.lineno}: relative import beyond the '
                                     'top-level package')
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = '.'.join(anchor + ([base] if base else []))
            if base == PACKAGE or not node.module:
                found += [(node.lineno, f'{base}.{alias.name}') for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def violations(source: str, module: str, is_package: bool, path: str,
               rules: dict[str, set[str]], exceptions: dict[str, set[str]]) -> list[str]:
    """One line per import of ``source`` that the rules do not allow."""
    unit = unit_of(module)
    if unit not in rules:
        return [f'{path}: the unit {unit!r} has no row in the import rules']
    relative = path.split('/', 1)[1] if '/' in path else path
    allowed = rules[unit] | exceptions.get(relative, set()) | {unit, ROOT}
    return [f'{path}:{line}: {unit} imports {target} ({unit_of(target)} is not allowed)'
            for line, target in imported_modules(source, module, is_package)
            if unit_of(target) is not None and unit_of(target) not in allowed]


def closure(rules: dict[str, set[str]], unit: str) -> set[str]:
    """``unit`` and every unit it may import, directly or through others."""
    seen, todo = set(), [unit]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += rules[current]
    return seen


@pytest.fixture(scope='module')
def rules() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return read_rules(DOC.read_text())


def package_files() -> list[Path]:
    return sorted((REPO / PACKAGE).rglob('*.py'))


def test_every_unit_of_the_package_has_a_row(rules):
    units = {unit_of(module_name(path)[0]) for path in package_files()}
    assert units <= set(rules[0]), sorted(units - set(rules[0]))
    assert set(rules[1]) <= {str(p.relative_to(REPO / PACKAGE)) for p in package_files()}


def test_the_package_follows_the_import_rules(rules):
    found = []
    for path in package_files():
        module, is_package = module_name(path)
        found += violations(path.read_text(), module, is_package, str(path.relative_to(REPO)),
                            *rules)
    assert not found, '\n'.join(found)


# the checker itself, on synthetic sources
SYNTHETIC_RULES = ({'structures': set(), 'formats': {'structures'},
                    'datasets': {'structures', 'formats'}, 'evaluation': {'formats'},
                    'models': set(), 'utils': set()},
                   {'utils/setup_env.py': {'datasets'}})


def check(source: str, module: str, is_package: bool = False,
          path: str | None = None) -> list[str]:
    path = path or ('mmdet3d/' + module.split('.', 1)[1].replace('.', '/') + '.py')
    return violations(source, module, is_package, path, *SYNTHETIC_RULES)


def test_the_checker_allows_what_the_rules_allow():
    source = '''
import numpy as np
import mmdet3d
from mmdet3d.structures.occ3d import FREE_LABEL
from mmdet3d import formats
from . import occ_gt
from ..base import Base
from ...formats.info_pkl import load_infos
'''
    assert check(source, 'mmdet3d.datasets.transforms.occ_gt') == []


@pytest.mark.parametrize('source, target', [
    ('from mmdet3d.evaluation.functional.occ_miou import occ_miou', 'mmdet3d.evaluation.functional'
     '.occ_miou'),
    ('import mmdet3d.models.rendering', 'mmdet3d.models.rendering'),
    ('from mmdet3d import evaluation', 'mmdet3d.evaluation'),
    ('def f():\n    from ...evaluation import metrics\n', 'mmdet3d.evaluation'),
    ('class A:\n    def f(self):\n        import mmdet3d.models as m\n', 'mmdet3d.models'),
    ('from ... import models', 'mmdet3d.models'),
])
def test_the_checker_finds_a_planted_violation(source, target):
    found = check(source, 'mmdet3d.datasets.transforms.occ_gt')
    assert len(found) == 1 and f'datasets imports {target} ' in found[0], found


def test_relative_imports_resolve_against_the_package():
    # in a package __init__, '.' is the package itself
    assert imported_modules('from . import nuscenes_occ_dataset', 'mmdet3d.datasets', True) == [
        (1, 'mmdet3d.datasets.nuscenes_occ_dataset')]
    assert imported_modules('from .. import models', 'mmdet3d.datasets', True) == [
        (1, 'mmdet3d.models')]
    assert imported_modules('from ..functional.occ_io import x',
                            'mmdet3d.evaluation.metrics.occ_metric', False) == [
        (1, 'mmdet3d.evaluation.functional.occ_io')]
    assert check('from .. import models', 'mmdet3d.datasets', True,
                 'mmdet3d/datasets/__init__.py') != []
    with pytest.raises(ValueError, match='beyond'):
        imported_modules('from .... import x', 'mmdet3d.datasets.transforms', True)


def test_exceptions_are_per_module_and_units_need_a_row():
    inside = 'def register():\n    import mmdet3d.datasets\n'
    assert check(inside, 'mmdet3d.utils.setup_env') == []
    assert check(inside, 'mmdet3d.utils.file_io') != []
    assert 'no row' in check('x = 1', 'mmdet3d.analysis.flow_mechanism')[0]
    with pytest.raises(ValueError, match='without a row'):
        read_rules('<!-- import-rules -->\n| unit | may import |\n|---|---|\n'
                   '| `formats` | `structures` |\n<!-- /import-rules -->\n'
                   '<!-- import-exceptions -->\n| m | also |\n|---|---|\n'
                   '<!-- /import-exceptions -->\n')


# what importing a package loads, string imports included (import_submodules)
@pytest.mark.parametrize('unit', ['formats', 'datasets', 'evaluation', 'engine', 'models',
                                  'visualization'])
def test_importing_a_package_loads_only_what_it_may_import(rules, unit):
    code = (f'import sys, {PACKAGE}.{unit}\n'
            f"print(' '.join(sorted({{m.split('.')[1] for m in sys.modules "
            f"if m.startswith('{PACKAGE}.')}})))")
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    assert set(out) - {'version'} <= closure(rules[0], unit), out
