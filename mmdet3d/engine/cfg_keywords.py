"""Which keyword arguments a config dict may hold, read from the code that consumes it.

Used by :func:`mmdet3d.engine.runner_setup.check_cfg_options` to refuse ``--cfg-options`` typos
before a run starts. A class that takes ``**kwargs`` is followed to where the keywords go (by
reading its source with :mod:`ast`): ``super().__init__(..., **kwargs)`` continues in the next
class of the MRO, ``self.x = kwargs`` to the calls that spread ``**self.x``, ``f(**kwargs)`` to
``f``. Wherever the keywords end in something that cannot be known before the build (a dict, a
local variable, a registry build), the answer is None: anything may be accepted.
"""
from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, Callable

_MAX_DEPTH = 12
#: dict methods that read one key named by a string literal
_KEY_READERS = ('pop', 'get', 'setdefault')


class _Unknown(Exception):
    """The keywords go somewhere this analysis cannot follow."""


def class_keywords(cls: type, runner_cls: type | None = None) -> set[str] | None:
    """Keywords that ``cls(**cfg)`` accepts, or None when they cannot be determined.

    Args:
        cls: the class a config ``type`` builds.
        runner_cls: the Runner class of the run: mmengine passes it as ``runner`` to every hook
            method, so a hook's ``runner.method(**self.x)`` is resolved on it.
    """
    try:
        return _class_keywords(cls, 0, frozenset(), _Context(cls, None, runner_cls), 0)
    except _Unknown:
        return None


def callable_keywords(fn: Callable, runner_cls: type | None = None) -> set[str] | None:
    """Keywords that ``fn(**cfg)`` accepts (a function or a class), or None when unknown."""
    if inspect.isclass(fn):
        return class_keywords(fn, runner_cls)
    try:
        return _callable_keywords(fn, 0, frozenset(), _Context(None, None, runner_cls), 0)
    except _Unknown:
        return None


def dict_keys_read(fn: Callable, arg_index: int = 0) -> set[str]:
    """String keys that ``fn`` reads from (``pop``/``get``/``setdefault``/``[...]``) its
    ``arg_index``-th parameter or a copy of it: what a build function takes out of a config
    dict before passing the rest on (e.g. mmengine's ``build_scheduler_from_cfg`` pops
    ``convert_to_iter_based``)."""
    try:
        node, _ = _function_ast(fn)
        name = list(inspect.signature(fn).parameters)[arg_index]
    except (_Unknown, IndexError, TypeError, ValueError):
        return set()
    return _DictFlow(node, name).literals


def spread_keywords(fn: Callable, arg_index: int = 0,
                    runner_cls: type | None = None) -> set[str] | None:
    """Keys that ``fn`` accepts in its ``arg_index``-th parameter, a dict of which it reads some
    keys and spreads the rest (``**``) into one call (e.g. ``Runner.build_dataloader``, which
    pops ``sampler``, ``collate_fn``, ... and spreads the rest into ``DataLoader``). None when
    the spread call cannot be resolved."""
    try:
        node, _ = _function_ast(fn)
        name = list(inspect.signature(fn).parameters)[arg_index]
        flow = _DictFlow(node, name)
        context = _Context(None, None, runner_cls)
        sinks = [_resolve_call(call, fn, context, 0, varargs=None)
                 for call in flow.spread_calls]
    except (_Unknown, IndexError, TypeError, ValueError):
        return None
    return flow.literals | _intersection(sinks)


class _Context:
    """Where a function sits: the class being built, the MRO class defining the function and
    the Runner class (for a hook's ``runner`` argument)."""

    def __init__(self, cls: type | None, owner: type | None, runner_cls: type | None) -> None:
        self.cls, self.owner, self.runner_cls = cls, owner, runner_cls

    def at(self, owner: type | None) -> _Context:
        return _Context(self.cls, owner, self.runner_cls)


def _intersection(sets: Sequence[set[str]]) -> set[str]:
    if not sets:
        return set()
    result = set(sets[0])
    for names in sets[1:]:
        result &= names
    return result


def _class_keywords(cls: type, n_positional: int, given: frozenset, context: _Context,
                    depth: int, start: int = 0) -> set[str]:
    """``cls.__init__`` as found in ``cls.__mro__[start:]`` with ``n_positional`` positional
    arguments (besides ``self``) and the keywords ``given`` already passed."""
    for owner in cls.__mro__[start:]:
        if '__init__' in vars(owner):
            break
    if owner is object:
        # object.__init__ refuses every argument unless __new__ is overridden
        if cls.__new__ is object.__new__ and n_positional == 0:
            return set()
        raise _Unknown
    init = vars(owner)['__init__']
    if not inspect.isfunction(inspect.unwrap(init)):
        signature_only = _signature_keywords(init, n_positional + 1, given)
        if signature_only is None:
            raise _Unknown
        return signature_only
    return _callable_keywords(init, n_positional + 1, given,
                              _Context(cls, owner, context.runner_cls), depth)


def _signature_keywords(fn: Callable, n_positional: int, given: frozenset) -> set[str] | None:
    """Keyword names from a signature alone; None if it takes ``**kwargs``."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    names, _, var_keyword, _ = _split_parameters(parameters, n_positional)
    return None if var_keyword else names - given


def _split_parameters(parameters: list, n_positional: int):
    """(keyword names, var-positional name, var-keyword name, arguments in ``*args``)."""
    names, var_positional, var_keyword = set(), None, None
    left = n_positional
    for p in parameters:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and left > 0:
            left -= 1
        elif p.kind is p.VAR_POSITIONAL:
            var_positional = p.name
        elif p.kind is p.VAR_KEYWORD:
            var_keyword = p.name
        elif p.kind is not p.POSITIONAL_ONLY:
            names.add(p.name)
    if left and var_positional is None:
        raise _Unknown  # more positional arguments than parameters: not a call we understand
    return names, var_positional, var_keyword, left


def _callable_keywords(fn: Callable, n_positional: int, given: frozenset, context: _Context,
                       depth: int) -> set[str]:
    if depth > _MAX_DEPTH:
        raise _Unknown
    if inspect.isclass(fn):
        return _class_keywords(fn, n_positional, given, context, depth + 1)
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise _Unknown from None
    names, var_positional, var_keyword, n_varargs = _split_parameters(parameters, n_positional)
    if var_keyword is None:
        return names - given
    node, _ = _function_ast(fn)
    flow = _DictFlow(node, var_keyword, strict=True)
    sinks = [_resolve_call(call, fn, context, depth, (var_positional, n_varargs))
             for call in flow.spread_calls]
    for attribute in flow.attributes:
        sinks.extend(_attribute_sinks(attribute, context, depth))
    return (names | flow.literals | _intersection(sinks)) - given


def _function_ast(fn: Callable) -> tuple[ast.FunctionDef, Callable]:
    fn = inspect.unwrap(fn)
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        raise _Unknown from None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise _Unknown
    _set_parents(node)
    return node, fn


def _set_parents(tree: ast.AST) -> None:
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent  # type: ignore[attr-defined]


def _is_name(node: ast.AST, names: set[str] | str) -> bool:
    return isinstance(node, ast.Name) and (node.id == names if isinstance(names, str) else
                                           node.id in names)


class _DictFlow:
    """Where a dict-valued name of a function goes.

    ``literals``: keys read by string literal; ``spread_calls``: calls that get it as
    ``**name``; ``attributes``: ``self.<attribute>`` it is stored in. With ``strict`` any other
    use (passed positionally, iterated, ...) raises :class:`_Unknown`; without it, such uses are
    ignored (for functions known to spread the rest of the dict into one call).
    """

    def __init__(self, function: ast.AST, name: str, strict: bool = False) -> None:
        self.literals: set[str] = set()
        self.spread_calls: list[ast.Call] = []
        self.attributes: list[str] = []
        names = {name}
        changed = True
        while changed:  # names bound to the dict or a copy of it
            changed = False
            for node in ast.walk(function):
                if (isinstance(node, ast.Assign) and len(node.targets) == 1
                        and isinstance(node.targets[0], ast.Name)
                        and node.targets[0].id not in names
                        and self._copy_of(node.value, names)):
                    names.add(node.targets[0].id)
                    changed = True
        for node in ast.walk(function):
            if _is_name(node, names) and isinstance(node.ctx, ast.Load):
                if not self._classify(node, names) and strict:
                    raise _Unknown

    @staticmethod
    def _copy_of(value: ast.AST, names: set[str]) -> bool:
        if _is_name(value, names):
            return True
        if not isinstance(value, ast.Call) or value.keywords:
            return False
        func = value.func
        if (isinstance(func, ast.Attribute) and func.attr == 'copy' and not value.args
                and _is_name(func.value, names)):
            return True
        return (len(value.args) == 1 and _is_name(value.args[0], names)
                and _dotted(func) in ('copy', 'deepcopy', 'copy.copy', 'copy.deepcopy', 'dict'))

    def _classify(self, node: ast.Name, names: set[str]) -> bool:
        """Record one use of the dict; False for a use that this analysis cannot follow."""
        parent = node.parent  # type: ignore[attr-defined]
        if isinstance(parent, ast.keyword) and parent.arg is None:
            self.spread_calls.append(parent.parent)  # type: ignore[attr-defined]
            return True
        if isinstance(parent, ast.Attribute):
            call = parent.parent  # type: ignore[attr-defined]
            if parent.attr in _KEY_READERS and isinstance(call, ast.Call) and call.args and \
                    isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value,
                                                                          str):
                self.literals.add(call.args[0].value)
                return True
            return parent.attr == 'copy' and self._is_alias_value(call)
        if isinstance(parent, ast.Subscript) and isinstance(parent.slice, ast.Constant) and \
                isinstance(parent.slice.value, str):
            self.literals.add(parent.slice.value)
            return True
        if isinstance(parent, ast.Compare) and node is not parent.left:
            return all(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops)
        if isinstance(parent, ast.Assign):
            target = parent.targets[0] if len(parent.targets) == 1 else None
            if isinstance(target, ast.Name) and target.id in names:
                return True
            if isinstance(target, ast.Attribute) and _is_name(target.value, 'self'):
                self.attributes.append(target.attr)
                return True
            return False
        if isinstance(parent, ast.Call) and node in parent.args:
            return self._is_alias_value(parent) or _dotted(parent.func) == 'isinstance'
        return False

    @staticmethod
    def _is_alias_value(call: ast.AST) -> bool:
        """``call`` is a copy that is bound to a name (followed as an alias)."""
        parent = getattr(call, 'parent', None)
        return isinstance(parent, ast.Assign) and parent.value is call and len(
            parent.targets) == 1 and isinstance(parent.targets[0], ast.Name)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f'{base}.{node.attr}'
    return None


def _is_super(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _is_name(node.func, 'super')


def _positional_count(call: ast.Call, varargs: tuple[str | None, int] | None) -> int:
    count = 0
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            # config builds pass keywords only; a forwarded ``*args`` holds what the caller
            # put there, anything else is unknown
            if varargs is not None and varargs[0] is not None and _is_name(arg.value,
                                                                            varargs[0]):
                count += varargs[1]
                continue
            raise _Unknown
        count += 1
    return count


def _explicit_keywords(call: ast.Call) -> frozenset:
    return frozenset(k.arg for k in call.keywords if k.arg is not None)


def _enclosing_function(node: ast.AST) -> ast.AST | None:
    while node is not None and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        node = getattr(node, 'parent', None)
    return node


def _resolve_call(call: ast.Call, fn: Callable, context: _Context, depth: int,
                  varargs: tuple[str | None, int] | None) -> set[str]:
    """Keywords accepted by the call ``call`` (in ``fn``) that spreads the dict."""
    function = _enclosing_function(call)
    n_positional = _positional_count(call, varargs)
    given = _explicit_keywords(call)
    func = call.func
    if isinstance(func, ast.Attribute) and _is_super(func.value):
        # super().name(...) / super(Cls, self).name(...): the next class of the MRO
        cls, owner = context.cls, context.owner
        if cls is None or owner is None or owner not in cls.__mro__:
            raise _Unknown
        start = cls.__mro__.index(owner) + 1
        if func.attr == '__init__':
            return _class_keywords(cls, n_positional, given, context, depth + 1, start)
        return _method_keywords(cls, func.attr, n_positional, given, context, depth, start)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if func.value.id == 'self' and context.cls is not None:
            return _method_keywords(context.cls, func.attr, n_positional, given, context,
                                    depth, 0)
        if func.value.id == 'runner' and _hook_runner_argument(function, context):
            return _method_keywords(context.runner_cls, func.attr, n_positional, given,
                                    _Context(context.runner_cls, None, context.runner_cls),
                                    depth, 0)
    if isinstance(func, ast.Name):
        target = inspect.unwrap(fn).__globals__.get(func.id, getattr(builtins, func.id, None))
        if callable(target):
            return _callable_keywords(target, n_positional, given,
                                      _Context(None, None, context.runner_cls), depth + 1)
    raise _Unknown


def _hook_runner_argument(function: ast.AST, context: _Context) -> bool:
    """``runner`` is a parameter of a hook method: mmengine calls every hook method with the
    Runner as ``runner`` (the Hook API), so its methods are those of the run's Runner class."""
    from mmengine.hooks import Hook
    if context.runner_cls is None or context.cls is None or not issubclass(context.cls, Hook):
        return False
    return any(a.arg == 'runner' for a in function.args.args + function.args.kwonlyargs)


def _method_keywords(cls: type, name: str, n_positional: int, given: frozenset,
                     context: _Context, depth: int, start: int) -> set[str]:
    for owner in cls.__mro__[start:]:
        if name in vars(owner):
            break
    else:
        raise _Unknown
    raw = vars(owner)[name]
    if isinstance(raw, staticmethod):
        fn, n_positional = raw.__func__, n_positional
    elif isinstance(raw, classmethod):
        fn, n_positional = raw.__func__, n_positional + 1
    elif inspect.isfunction(raw):
        fn, n_positional = raw, n_positional + 1
    else:
        raise _Unknown
    return _callable_keywords(fn, n_positional, given, context.at(owner), depth + 1)


def _attribute_sinks(attribute: str, context: _Context, depth: int) -> list[set[str]]:
    """Keywords accepted where ``self.<attribute>`` (holding the keywords) is spread; every use
    of the attribute in the class and its bases must be such a spread."""
    cls = context.cls
    if cls is None:
        raise _Unknown
    sinks = []
    for klass in cls.__mro__:
        if klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            raise _Unknown from None
        _set_parents(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and node.attr == attribute
                    and _is_name(node.value, 'self') and isinstance(node.ctx, ast.Load)):
                continue
            parent = node.parent  # type: ignore[attr-defined]
            if not (isinstance(parent, ast.keyword) and parent.arg is None):
                raise _Unknown
            function = _enclosing_function(node)
            method = vars(klass).get(getattr(function, 'name', None))
            if isinstance(method, (staticmethod, classmethod)):
                method = method.__func__
            if method is None or not inspect.isfunction(inspect.unwrap(method)):
                raise _Unknown
            sinks.append(_resolve_call(parent.parent, method,  # type: ignore[attr-defined]
                                       context.at(klass), depth + 1, varargs=None))
    return sinks


# --- values copied between config entries --------------------------------------------------

def _walk(node: Any, path: tuple = ()):
    """(path, value, parent is a dict) of every entry below ``node``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield (*path, str(key)), value, True
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield (*path, str(index)), value, False
            yield from _walk(value, (*path, str(index)))


def _normal(value: Any) -> Any:
    """``value`` with dicts as plain dicts and tuples as lists (a config may turn one into the
    other) and every scalar tagged with its type (8 and 8.0 are different values)."""
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return (type(value).__name__, value)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(_normal(a) == _normal(b))
    except Exception:  # noqa: BLE001 - values that do not compare are not copies
        return False


def copies_of(root: Mapping, value: Any, exclude_top: str,
              include_top: Callable[[str], bool]) -> list[str]:
    """Dotted keys below ``root`` (outside ``exclude_top``, under top-level keys for which
    ``include_top`` holds) whose value equals ``value``: candidates for a copy made when the
    config file was executed. Booleans and None never count (they match by accident);
    scalars count only as dict values, containers also as list elements."""
    if value is None or isinstance(value, bool):
        return []
    container = isinstance(value, (Mapping, list, tuple))
    if container and not value:
        return []
    places = []
    for path, other, in_dict in _walk(root):
        if path[0] == exclude_top or not include_top(path[0]) or len(path) < 2:
            continue
        if (container or in_dict) and _same(value, other):
            places.append('.'.join(path))
    # keep the outermost place of nested matches (a copied dict also holds copied values)
    return [p for p in places if not any(p.startswith(q + '.') for q in places if q != p)]
