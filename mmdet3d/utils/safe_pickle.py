"""Unpickling files from elsewhere into plain data: no code run, no crash, bounded memory.

A pickle is a program: its GLOBAL opcodes name any callable, REDUCE calls it and BUILD sets
state on any object on the stack (``__setstate__`` or attributes, even of a class). The
unpicklers here resolve a global only through a table of *builders*: small functions that
validate their arguments and build plain data. numpy objects are never built by numpy's own
pickle functions (``np.dtype.__setstate__`` and ``scalar`` trust their input and can read or
write memory a file chooses): the builders return placeholders that record the arguments,
and :func:`finish` turns them into arrays, dtypes and scalars after checking every field
(numeric, bool and fixed-width string dtypes only; the bytes must match the shape exactly).

:class:`CheckedBuildUnpickler` is the pure-Python unpickler with this ``find_class`` and a
BUILD opcode that accepts placeholders and the ``_metadata`` of an ``OrderedDict`` only (torch
objects on a checkpoint's stack have ``__setstate__`` methods of their own), and a BYTEARRAY8
opcode that reads before it allocates. The C unpickler is not used: it allocates the length a
BINBYTES/BYTEARRAY opcode declares before reading it, so a small file could make it reserve
gigabytes; the pure-Python one reads what the file holds (twice as slow: 10 s for a
28,000-sample, 71 MB info pkl).

Every allocation is bounded by the file: arrays are built from bytes the file holds, strings
and numbers are the file's own, and :func:`finish` refuses nesting deeper than
:data:`MAX_DEPTH`.
"""
from __future__ import annotations

import encodings.ascii  # noqa: F401  the codecs unpickling may use, imported here so that
import encodings.latin_1  # noqa: F401  loading a file never imports a module
import encodings.raw_unicode_escape  # noqa: F401
import encodings.utf_8  # noqa: F401
import math
import pickle
import re
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: deepest container nesting :func:`finish` accepts (info pkls and checkpoints need < 10)
MAX_DEPTH = 64
#: most dimensions of an array
MAX_NDIM = 32

#: numpy moved ``numpy.core`` to ``numpy._core`` in 2.0; both spellings appear in files
_MODULE_ALIASES = {'numpy._core.multiarray': 'numpy.core.multiarray',
                   'numpy._core.numeric': 'numpy.core.numeric',
                   '__builtin__': 'builtins', 'copy_reg': 'copyreg'}
_PLAIN_DTYPE = re.compile(r'([biufc])(\d{1,2})|([US])(\d{1,9})')
_PLAIN_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None))


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle holds something other than the plain data it may hold."""


class Placeholder:
    """Records what a builder was given; :meth:`value` makes the real object once."""
    __slots__ = ('_value', )

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f'the file sets state on a {self.kind}, which takes none')

    @property
    def kind(self) -> str:
        return type(self).__name__.strip('_').replace('State', '')

    def value(self) -> Any:
        try:
            return self._value
        except AttributeError:
            self._value = self.make()
            return self._value

    def make(self) -> Any:
        raise NotImplementedError


class Builder:
    """What a global resolves to: a named, validated callable on which BUILD is refused."""
    __slots__ = ('name', 'build')

    def __init__(self, name: str, build: Callable) -> None:
        self.name, self.build = name, build

    def __call__(self, *args: Any) -> Any:
        return self.build(*args)

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f'the file sets state on the global {self.name}')


def brief(value: Any) -> str:
    """A short description of a value from a file for messages: the repr of a small number or
    string, else the type (the repr of other objects can be huge, slow or import modules)."""
    if isinstance(value, (int, float, bool, type(None))) or (
            isinstance(value, (str, bytes)) and len(value) <= 40):
        return repr(value)[:60]
    if type(value) is tuple and len(value) <= 8:
        return '(' + ', '.join(brief(v) for v in value) + (',)' if len(value) == 1 else ')')
    return f'a {type(value).__name__}' + (f' of length {len(value)}' if isinstance(
        value, (str, bytes, tuple, list, dict)) else '')


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise UnsafePickleError(problem)


def _is_int(value: Any) -> bool:
    return type(value) is int


class DtypeState(Placeholder):
    """``numpy.dtype(spec, align, copy)`` + its BUILD state, checked before numpy sees it."""
    __slots__ = ('spec', 'state')

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        _require(isinstance(spec, str) and _PLAIN_DTYPE.fullmatch(spec) is not None,
                 f'numpy dtype {brief(spec)} is not a numeric, bool or fixed-width string dtype')
        _require(type(align) is bool and type(copy) is bool, 'numpy dtype flags must be bools')
        self.spec, self.state = spec, None

    def __setstate__(self, state: Any) -> None:
        _require(type(state) is tuple and len(state) in (8, 9) and state[0] in (3, 4),
                 f'numpy dtype {self.spec}: unexpected state layout')
        _require(state[1] in ('<', '>', '|', '='), f'numpy dtype {self.spec}: bad byte order')
        _require(all(s is None for s in state[2:5]),
                 f'numpy dtype {self.spec}: sub-arrays and fields are not allowed')
        _require(all(_is_int(s) for s in state[5:8]), f'numpy dtype {self.spec}: bad sizes')
        self.state = state

    def make(self) -> np.dtype:
        dtype = np.dtype(self.spec)
        _require(dtype.itemsize > 0, f'numpy dtype {self.spec} has no size')
        if self.state is not None:
            byteorder, elsize = self.state[1], self.state[5]
            _require(elsize in (-1, dtype.itemsize),
                     f'numpy dtype {self.spec}: element size {elsize} != {dtype.itemsize}')
            if byteorder in '<>':
                dtype = dtype.newbyteorder(byteorder)
        return dtype


def _dtype_of(value: Any) -> np.dtype:
    _require(isinstance(value, DtypeState), 'a numpy array or scalar without a numpy dtype')
    return value.value()


class NdarrayState(Placeholder):
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` + BUILD
    ``(version, shape, dtype, is_fortran, rawdata)``."""
    __slots__ = ('state', )

    def __init__(self, state: tuple | None = None) -> None:
        self.state = state

    def __setstate__(self, state: Any) -> None:
        _require(type(state) is tuple and len(state) == 5 and state[0] == 1,
                 'numpy array: unexpected state layout')
        self.state = state

    def make(self) -> np.ndarray:
        _require(self.state is not None, 'numpy array without state')
        _, shape, dtype, is_fortran, data = self.state
        _require(type(shape) is tuple and len(shape) <= MAX_NDIM
                 and all(_is_int(n) and n >= 0 for n in shape),
                 f'numpy array: bad shape {brief(shape)}')
        _require(type(is_fortran) is bool, 'numpy array: bad order flag')
        _require(isinstance(data, (bytes, bytearray)),
                 'numpy array: the data must be bytes (object arrays are not allowed)')
        dtype = _dtype_of(dtype)
        count = math.prod(shape)
        _require(count * dtype.itemsize == len(data),
                 f'numpy array: shape {shape} of {dtype} needs {count * dtype.itemsize} bytes, '
                 f'the file holds {len(data)}')
        flat = np.frombuffer(data, dtype=dtype, count=count).copy()
        return flat.reshape(shape, order='F' if is_fortran else 'C')


class ScalarState(Placeholder):
    """``numpy.core.multiarray.scalar(dtype, data)``."""
    __slots__ = ('dtype', 'data')

    def __init__(self, dtype: Any, data: Any = None) -> None:
        self.dtype, self.data = dtype, data

    def make(self) -> np.generic:
        dtype = _dtype_of(self.dtype)
        _require(isinstance(self.data, bytes) and len(self.data) == dtype.itemsize,
                 f'numpy scalar of {dtype}: needs {dtype.itemsize} bytes of data')
        return np.frombuffer(self.data, dtype=dtype, count=1)[0]


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> NdarrayState:
    _require(isinstance(cls, Builder) and cls.name == 'numpy.ndarray',
             'numpy _reconstruct of anything but numpy.ndarray')
    return NdarrayState()


def _frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> NdarrayState:
    _require(order in ('C', 'F'), 'numpy _frombuffer: bad order')
    return NdarrayState((1, shape, dtype, order == 'F', bytes(data) if isinstance(
        data, (bytes, bytearray)) else data))


def _encode(text: Any, encoding: Any = 'utf-8') -> bytes:
    """``_codecs.encode``: how protocol-2 pickles (torch's default) hold bytes."""
    _require(isinstance(text, str) and encoding in ('latin1', 'latin-1'),
             '_codecs.encode is allowed for latin1 text only')
    return text.encode('latin1')


def _bytes(*args: Any) -> bytes:
    """``bytes()``: how protocol 2 holds ``b''`` (never ``bytes(n)``, which allocates n)."""
    _require(not args, 'bytes() is allowed without arguments only')
    return b''


def _bytearray(*args: Any) -> bytearray:
    """``bytearray(text, 'latin-1')`` of protocol 2 (never ``bytearray(n)``)."""
    return bytearray(_encode(*args)) if args else bytearray()


def _set(items: Any = ()) -> set:
    _require(type(items) is list, 'set() of anything but a list')
    return set(items)


def _ndarray_marker(*args: Any) -> Any:
    raise UnsafePickleError('numpy.ndarray may only be named as the argument of _reconstruct')


#: the globals plain data needs: numpy arrays, dtypes and scalars; OrderedDicts; bytes, sets
#: in protocol 2
PLAIN_DATA_BUILDERS: dict[tuple[str, str], Callable] = {
    ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy.core.multiarray', 'scalar'): ScalarState,
    ('numpy.core.numeric', '_frombuffer'): _frombuffer,
    ('numpy', 'ndarray'): _ndarray_marker,
    ('numpy', 'dtype'): DtypeState,
    ('_codecs', 'encode'): _encode,
    ('collections', 'OrderedDict'): dict,  # read as a plain dict
    ('builtins', 'bytes'): _bytes,
    ('builtins', 'bytearray'): _bytearray,
    ('builtins', 'set'): _set,
    ('builtins', 'frozenset'): lambda items=(): frozenset(_set(items)),
}


class RestrictedGlobals:
    """``find_class`` through :attr:`builders`; everything else is refused by name."""
    builders: Mapping[tuple[str, str], Callable] = PLAIN_DATA_BUILDERS

    def find_class(self, module: str, name: str) -> Any:
        module = _MODULE_ALIASES.get(module, module)
        build = self.builders.get((module, name))
        if build is None:
            raise UnsafePickleError(f'it refers to the global {module}.{name}, which a data '
                                    f'file has no use for (only plain data may be loaded)')
        return build if isinstance(build, type) else Builder(f'{module}.{name}', build)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError('it holds a persistent reference, which a data file has not')


def _bounded_bytearray8(self: pickle._Unpickler) -> None:
    """BYTEARRAY8 reading what the file holds (the stock opcode allocates the declared length
    first)."""
    size, = struct.unpack('<Q', self.read(8))
    data = self.read(size)
    _require(len(data) == size, f'a bytearray of {size} bytes, the file holds {len(data)}')
    self.append(bytearray(data))


def _checked_build(self: pickle._Unpickler) -> None:
    state = self.stack.pop()
    inst = self.stack[-1]
    if isinstance(inst, Placeholder):
        inst.__setstate__(state)
    elif type(inst) is OrderedDict and type(state) is dict and set(state) <= {'_metadata'}:
        inst.__dict__.update(state)  # a module's state_dict carries its version numbers so
    else:
        raise UnsafePickleError(f'the file sets state on a {type(inst).__name__}; only numpy '
                                f'data and a state dict\'s _metadata may carry state')


class CheckedBuildUnpickler(RestrictedGlobals, pickle._Unpickler):
    """The pure-Python unpickler with :func:`_checked_build` as its BUILD opcode, restricted to
    :data:`PLAIN_DATA_BUILDERS` (info pkls; subclasses widen :attr:`builders`)."""
    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _checked_build
    dispatch[pickle.BYTEARRAY8[0]] = _bounded_bytearray8


def _is_plain_key(key: Any) -> bool:
    return isinstance(key, _PLAIN_ATOMS) or (
        type(key) is tuple and all(isinstance(k, _PLAIN_ATOMS) for k in key))


def finish(obj: Any, leaf_types: tuple[type, ...] = ()) -> Any:
    """Replace placeholders by the real objects throughout ``obj`` (containers are updated in
    place, tuples rebuilt) and check that only plain data (and ``leaf_types``) remains.

    Raises:
        UnsafePickleError: a placeholder's fields are invalid, an unexpected type remains, a
            dict key is not plain, or the nesting is deeper than :data:`MAX_DEPTH`.
    """
    done: dict[int, Any] = {}

    def visit(node: Any, depth: int) -> Any:
        if isinstance(node, _PLAIN_ATOMS) or isinstance(node, leaf_types):
            return node
        if isinstance(node, Placeholder):
            return node.value()
        if id(node) in done:
            return done[id(node)]
        _require(depth < MAX_DEPTH, f'the data is nested deeper than {MAX_DEPTH} levels')
        if isinstance(node, dict):  # dict and OrderedDict
            done[id(node)] = node
            for key, item in node.items():
                _require(_is_plain_key(key), f'a dict key of type {type(key).__name__}')
                node[key] = visit(item, depth + 1)
            if type(node) is OrderedDict and vars(node):
                node._metadata = visit(node._metadata, depth + 1)
            return node
        if type(node) is list:
            done[id(node)] = node
            node[:] = [visit(item, depth + 1) for item in node]
            return node
        if type(node) in (tuple, set, frozenset):
            done[id(node)] = type(node)(visit(item, depth + 1) for item in node)
            return done[id(node)]
        raise UnsafePickleError(f'it holds a {type(node).__name__}, which is not plain data')

    return visit(obj, 0)
