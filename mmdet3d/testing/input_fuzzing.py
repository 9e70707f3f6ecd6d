"""Fuzzing of the loaders of files that come from elsewhere (issue 29 item 6).

Proves that a damaged or crafted info pkl, checkpoint or Occ3D label file can not crash the
process, hang it, cause side effects or allocate beyond a cap when it is loaded: every mutated
file is loaded in a child process and gets one outcome (:data:`OUTCOMES`):

- ``ok``: the loader returned (and the returned object could be walked, see :func:`_touch`).
- ``named_error``: an ``Exception`` whose message names the file (its path or basename).
- ``unnamed_error``: an ``Exception`` that does not name the file (a defect: the user can not
  tell which of many files is bad).
- ``crash``: the child died by a signal or exited mid-file (also ``SystemExit`` and the like).
- ``hang``: the child took longer than the per-file time limit and was killed.
- ``over_cap``: the loader tried to allocate beyond the memory cap (``MemoryError``, also as
  the cause of a wrapped exception).
- ``side_effect``: loading changed the process or the file system: files created or removed
  in the working folder, a canary folder or beside the file, the environment, threads,
  sockets, ``torch.distributed``, class attributes of classes a pickle could ``BUILD`` onto,
  new entries of ``sys.modules`` (a pickle importing modules).

Design: the parent (:func:`run_cases`) generates the mutated files lazily and deterministically
(case ``i`` of kind ``k`` depends only on the seed, ``k`` and ``i``) and hands their paths to
long-lived worker processes (``python -m mmdet3d.testing.input_fuzzing --worker``) over stdin.
A worker imports the loaders (given as ``'module:function'`` names, imported lazily so that the
harness follows the loaders as they change), warms them up on the seed files and a few broken
files, then loops: it sets ``RLIMIT_AS`` to its current address space plus the budget, reports
``start``, loads, reports ``loaded``, walks the result, compares a snapshot of its state with
the one before and reports ``done`` with the outcome on a private pipe. The parent kills a worker
whose file takes longer than the limit (``hang``) and respawns workers that died (``crash``) or
whose state may be polluted (``side_effect``, ``over_cap``). Every defect's file is kept under
``<out>/defects/<kind>/<outcome>/`` with a JSON record of its mutation and outcome.

The CLI is ``tools/misc/fuzz_inputs.py``.
"""
from __future__ import annotations

import dataclasses
import errno
import gc
import importlib
import io
import json
import os
import os.path as osp
import pickle
import pickletools
import random
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

OUTCOMES = ('ok', 'named_error', 'unnamed_error', 'crash', 'hang', 'over_cap', 'side_effect')
DEFECTS = ('unnamed_error', 'crash', 'hang', 'over_cap', 'side_effect')
_SEVERITY = {name: rank for rank, name in enumerate(OUTCOMES)}

CANARY_ENV = 'FUZZ_INPUTS_CANARY'
CANARY_VALUE = 'intact'
WORKER_STARTUP_S = 300.0
WORKER_MAX_FILES = 2000  # a worker is replaced after this many files (bounds any drift)
MODULE = 'mmdet3d.testing.input_fuzzing'

# --------------------------------------------------------------------------------------------
# A tiny pickle assembler for the crafted payloads (protocol-2 opcodes, no memo)
# --------------------------------------------------------------------------------------------


class G(NamedTuple):
    """``GLOBAL module name``."""
    module: str
    name: str


class Call(NamedTuple):
    """``func(*args)`` by ``REDUCE``."""
    func: Any
    args: tuple


class Build(NamedTuple):
    """``obj`` followed by ``state`` and ``BUILD``."""
    obj: Any
    state: Any


class SetItem(NamedTuple):
    """``obj[key] = value`` by ``SETITEM`` (the object stays on the stack)."""
    obj: Any
    key: Any
    value: Any


class PersId(NamedTuple):
    """``BINPERSID`` of ``pid`` (torch storages)."""
    pid: Any


class Raw(NamedTuple):
    """Opcodes as they are."""
    data: bytes


def encode_int(value: int) -> bytes:
    """The shortest opcode pushing the integer ``value``."""
    if 0 <= value < 256:
        return pickle.BININT1 + bytes([value])
    if 0 <= value < 65536:
        return pickle.BININT2 + struct.pack('<H', value)
    if -2 ** 31 <= value < 2 ** 31:
        return pickle.BININT + struct.pack('<i', value)
    encoded = pickle.encode_long(value)
    return pickle.LONG1 + bytes([len(encoded)]) + encoded


def _encode_str(value: str) -> bytes:
    data = value.encode('utf-8', 'surrogatepass')
    return pickle.BINUNICODE + struct.pack('<I', len(data)) + data


def _encode_bytes(value: bytes) -> bytes:
    return pickle.BINBYTES + struct.pack('<I', len(value)) + value


def assemble(value: Any) -> bytes:
    """Opcodes that push ``value`` (one object) onto the unpickler's stack."""
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, G):
        return pickle.GLOBAL + f'{value.module}\n{value.name}\n'.encode()
    if isinstance(value, Call):
        return assemble(value.func) + assemble(tuple(value.args)) + pickle.REDUCE
    if isinstance(value, Build):
        return assemble(value.obj) + assemble(value.state) + pickle.BUILD
    if isinstance(value, SetItem):
        return assemble(value.obj) + assemble(value.key) + assemble(value.value) + pickle.SETITEM
    if isinstance(value, PersId):
        return assemble(value.pid) + pickle.BINPERSID
    if value is None:
        return pickle.NONE
    if value is True:
        return pickle.NEWTRUE
    if value is False:
        return pickle.NEWFALSE
    if isinstance(value, int):
        return encode_int(value)
    if isinstance(value, float):
        return pickle.BINFLOAT + struct.pack('>d', value)
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, bytes):  # as protocol 2 does (torch's unpickler lacks BINBYTES)
        return assemble(Call(G('_codecs', 'encode'), (value.decode('latin1'), 'latin1')))
    if isinstance(value, tuple):
        if not value:
            return pickle.EMPTY_TUPLE
        return pickle.MARK + b''.join(assemble(v) for v in value) + pickle.TUPLE
    if isinstance(value, list):
        if not value:
            return pickle.EMPTY_LIST
        return (pickle.EMPTY_LIST + pickle.MARK + b''.join(assemble(v) for v in value)
                + pickle.APPENDS)
    if isinstance(value, dict):
        if not value:
            return pickle.EMPTY_DICT
        return (pickle.EMPTY_DICT + pickle.MARK
                + b''.join(assemble(k) + assemble(v) for k, v in value.items()) + pickle.SETITEMS)
    raise TypeError(f'cannot assemble {type(value).__name__}')


def assemble_pickle(value: Any) -> bytes:
    """A whole protocol-2 pickle of ``value``."""
    return pickle.PROTO + b'\x02' + assemble(value) + pickle.STOP


HISTORY_BUFFER = G('mmengine.logging.history_buffer', 'HistoryBuffer')
_ND_RECONSTRUCT = G('numpy.core.multiarray', '_reconstruct')


def _dtype(spec: Any) -> Call:
    return Call(G('numpy', 'dtype'), (spec, False, True))


def _storage(numel: int, key: str = '0', cls: str = 'FloatStorage') -> PersId:
    return PersId(('storage', G('torch', cls), key, 'cpu', numel))


def _rebuild_tensor(storage: Any, offset: int, size: tuple, stride: tuple) -> Call:
    return Call(G('torch._utils', '_rebuild_tensor_v2'),
                (storage, offset, size, stride, False, Call(G('collections', 'OrderedDict'), ())))


def _os_via_getattr(command: str) -> Call:
    """``os.system(command)`` reached from torch's allowed ``_rebuild_tensor_v2`` through
    ``getattr`` (``f.__globals__.get('sys').modules.get('os').system``)."""
    ga = G('builtins', 'getattr')
    globs = Call(ga, (G('torch._utils', '_rebuild_tensor_v2'), '__globals__'))
    sys_mod = Call(Call(ga, (globs, 'get')), ('sys',))
    modules = Call(ga, (sys_mod, 'modules'))
    os_mod = Call(Call(ga, (modules, 'get')), ('os',))
    return Call(Call(ga, (os_mod, 'system')), (command,))


def _deep_list(depth: int) -> Raw:
    return Raw(pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1))


#: Crafted objects that replace one value of a pickle. Commands only ``touch`` a file in the
#: worker's scratch folder, so that running one is harmless and shows as a side effect.
PAYLOADS: dict[str, Any] = {
    'os_system': Call(G('os', 'system'), ('touch fuzz-os-system',)),
    'posix_system': Call(G('posix', 'system'), ('touch fuzz-posix-system',)),
    'environ_setitem': SetItem(G('os', 'environ'), CANARY_ENV, 'changed'),
    'getattr_escape': _os_via_getattr('touch fuzz-getattr-escape'),
    'getattr_hb_mean': Call(G('builtins', 'getattr'), (HISTORY_BUFFER, 'mean')),
    'getattr_hb_dict': Call(G('builtins', 'getattr'), (HISTORY_BUFFER, '__dict__')),
    'bytearray_bomb': Call(G('builtins', 'bytearray'), (1 << 36,)),
    'dtype_V8': _dtype('V8'),
    'dtype_O8': _dtype('O8'),
    'dtype_struct_O': Call(G('numpy', 'dtype'), ([('a', 'O'), ('b', '<f8')],)),
    'dtype_U_huge': _dtype('U1000000000'),
    'dtype_build_fields_O': Build(_dtype('V8'), (3, '|', None, ('a',), {'a': (_dtype('O8'), 0)},
                                                 8, 1, 16)),
    'scalar_O': Call(G('numpy.core.multiarray', 'scalar'), (_dtype('O8'), b'AAAAAAAA')),
    'scalar_struct_O': Call(G('numpy.core.multiarray', 'scalar'),
                            (Call(G('numpy', 'dtype'), ([('a', 'O')],)), b'\x41' * 8)),
    'scalar_V_huge': Call(G('numpy.core.multiarray', 'scalar'), (_dtype('V100000000'), b'A')),
    'ndarray_O_from_bytes': Build(Call(_ND_RECONSTRUCT, (G('numpy', 'ndarray'), (0,), b'b')),
                                  (1, (2,), _dtype('O8'), False, b'A' * 16)),
    # a dtype whose fields hold objects but whose flags (BUILD state) say it holds none
    'ndarray_fields_O_bytes': Build(Call(_ND_RECONSTRUCT, (G('numpy', 'ndarray'), (0,), b'b')),
                                    (1, (2,), Build(_dtype('V8'), (3, '|', None, ('a',),
                                                                   {'a': (_dtype('O8'), 0)},
                                                                   8, 1, 0)),
                                     False, b'A' * 16)),
    'ndarray_huge_shape': Call(_ND_RECONSTRUCT, (G('numpy', 'ndarray'), (1 << 34,), b'b')),
    'ndarray_shape_mismatch': Build(Call(_ND_RECONSTRUCT, (G('numpy', 'ndarray'), (0,), b'b')),
                                    (1, (1 << 20, 1 << 20), _dtype('f8'), False, b'\0' * 8)),
    'hb_class_build': Build(HISTORY_BUFFER, (None, {'max_length': 0, 'fuzz_attr': 1})),
    'hb_class_build_dict': Build(HISTORY_BUFFER, {'fuzz_attr': 1}),
    # HistoryBuffer.__setstate__ called on the class sets class attributes
    'hb_setstate_on_class': Call(Call(G('builtins', 'getattr'), (HISTORY_BUFFER, '__setstate__')),
                                 (HISTORY_BUFFER, {'statistics_methods': {}})),
    'hb_setattr': Call(G('builtins', 'setattr'), (HISTORY_BUFFER, 'fuzz_attr', 1)),
    'hb_register_statistics': Call(Call(G('builtins', 'getattr'),
                                        (HISTORY_BUFFER, 'register_statistics')),
                                   (G('os', 'getcwd'),)),
    'messagehub_class_build': Build(G('mmengine.logging', 'MessageHub'), (None, {'fuzz_attr': 1})),
    'hb_instance_os': Build(Call(HISTORY_BUFFER, ()),
                            {'_statistics_methods': {'mean': G('os', 'system')}}),
    'ordereddict_class_build': Build(G('collections', 'OrderedDict'), (None, {'fuzz_attr': 1})),
    'ordereddict_build': Build(Call(G('collections', 'OrderedDict'), ()),
                               {'_metadata': {'': {'version': 1}}, 'fuzz_attr': 1}),
    'ndarray_class_build': Build(G('numpy', 'ndarray'), (None, {'fuzz_attr': 1})),
    'dtype_class_build': Build(G('numpy', 'dtype'), (None, {'fuzz_attr': 1})),
    'tensor_class_build': Build(G('torch', 'Tensor'), (None, {'fuzz_attr': 1})),
    'parameter_class_build': Build(G('torch.nn', 'Parameter'), (None, {'fuzz_attr': 1})),
    'device_mesh': Call(G('torch.distributed.device_mesh', 'DeviceMesh'), ('cpu', [0])),
    'rebuild_tensor_huge': _rebuild_tensor(_storage(1 << 40), 0, (1 << 31, 1 << 31), (1 << 31, 1)),
    'rebuild_tensor_stride': _rebuild_tensor(_storage(4), 0, (1 << 20,), (1 << 40,)),
    'rebuild_tensor_offset': _rebuild_tensor(_storage(4), 1 << 40, (4,), (1,)),
    'rebuild_tensor_negative': _rebuild_tensor(_storage(4), -8, (4,), (-1,)),
    'rebuild_tensor_zero_stride': _rebuild_tensor(_storage(1), 0, (1 << 31, 1 << 31), (0, 0)),
    'storage_untyped_huge': _storage(1 << 62, cls='UntypedStorage'),
    'storage_missing_key': _storage(4, key='../../etc/passwd'),
    'deep_list': _deep_list(100000),
    'int_huge_digits': Raw(pickle.INT + b'9' * 100000 + b'\n'),
    'long4_huge': Raw(pickle.LONG4 + struct.pack('<i', 2 ** 31 - 1)),
    'binbytes8_huge': Raw(pickle.BINBYTES8 + struct.pack('<Q', 1 << 40)),
    'binunicode8_huge': Raw(pickle.BINUNICODE8 + struct.pack('<Q', 1 << 62)),
}

#: Globals that a mutation swaps in for one of the file's: dangerous and allowed ones.
GLOBALS: tuple[tuple[str, str], ...] = (
    ('os', 'system'), ('posix', 'system'), ('builtins', 'getattr'), ('builtins', 'setattr'),
    ('builtins', 'bytearray'), ('builtins', 'list'), ('__builtin__', 'getattr'),
    ('numpy', 'dtype'), ('numpy', 'ndarray'), ('numpy.core.multiarray', 'scalar'),
    ('numpy.core.multiarray', '_reconstruct'), ('numpy', 'frombuffer'),
    ('mmengine.logging.history_buffer', 'HistoryBuffer'), ('mmengine.logging', 'MessageHub'),
    ('torch.distributed.device_mesh', 'DeviceMesh'), ('collections', 'OrderedDict'),
    ('collections', 'defaultdict'), ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'), ('torch', 'FloatStorage'), ('torch', 'ByteStorage'),
    ('torch', 'Tensor'), ('torch.nn', 'Parameter'), ('torch', 'device'), ('_codecs', 'encode'),
    ('copyreg', '_reconstructor'), ('torch.serialization', 'load'), ('nonexistent.module', 'x'),
)

#: Integers that replace one of the file's (sizes, shapes, strides, storage numel, memo keys).
INTERESTING_INTS = (0, 1, 2, 3, -1, -2, 7, 255, 256, 65535, 65536, 2 ** 31 - 1, -2 ** 31, 2 ** 31,
                    2 ** 32 + 1, 2 ** 40, 2 ** 62, 2 ** 63 - 1, -2 ** 63, 2 ** 64, 10 ** 30)
#: Strings that replace one of the file's (dtype specs, storage keys, paths, module names).
INTERESTING_STRS = ('', 'O', 'O8', 'V8', '|O', '<U1000000000', 'S0', 'f8', '<f16', '>u2', 'M8[s]',
                    '../../etc/passwd', '/dev/zero', 'data.pkl', '__class__', '__dict__',
                    'os', 'system', 'cuda', 'meta', 'storage', '\udcff', 'x' * 10000)

# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------

Mutator = Callable[[bytes, random.Random], tuple[bytes, str]]


def _interesting_int(rng: random.Random, old: int | None = None) -> int:
    if old is not None and rng.random() < 0.3:
        return rng.choice((old + 1, old - 1, old * 2, old * 1000, -old, old << 32))
    return rng.choice(INTERESTING_INTS)


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A byte-level mutation: flipped bytes or bits, truncation, inserted or deleted runs, an
    enlarged 2/4/8-byte little-endian length field."""
    buf = bytearray(data)
    choice = rng.choice(('flip_byte', 'flip_bits', 'truncate', 'insert_run', 'delete_run',
                         'enlarge_length', 'empty'))
    if not buf or choice == 'empty':
        return b'', 'bytes:empty'
    if choice == 'flip_byte':
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(buf))
            buf[pos] = rng.randrange(256)
        return bytes(buf), 'bytes:flip_byte'
    if choice == 'flip_bits':
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
        return bytes(buf), 'bytes:flip_bits'
    if choice == 'truncate':
        return bytes(buf[:rng.randrange(len(buf))]), 'bytes:truncate'
    if choice == 'insert_run':
        pos = rng.randrange(len(buf) + 1)
        length = rng.choice((1, 2, 4, 8, 64, 1000))
        run = (bytes([rng.randrange(256)]) * length if rng.random() < 0.5
               else bytes(rng.randrange(256) for _ in range(length)))
        return bytes(buf[:pos] + run + buf[pos:]), 'bytes:insert_run'
    if choice == 'delete_run':
        pos = rng.randrange(len(buf))
        length = rng.choice((1, 2, 4, 8, 64, 1000))
        return bytes(buf[:pos] + buf[pos + length:]), 'bytes:delete_run'
    width = rng.choice((2, 4, 8))
    if len(buf) < width:
        return bytes(buf[:-1]), 'bytes:truncate'
    pos = rng.randrange(len(buf) - width + 1)
    fmt = {2: '<H', 4: '<I', 8: '<Q'}[width]
    old = struct.unpack_from(fmt, buf, pos)[0]
    new = rng.choice((old * 2 + 1, old + 4096, 2 ** (8 * width) - 1, 2 ** (8 * width - 1)))
    struct.pack_into(fmt, buf, pos, min(new, 2 ** (8 * width) - 1))
    return bytes(buf), 'bytes:enlarge_length'


class _Op(NamedTuple):
    name: str
    arg: Any
    raw: bytes


def pickle_ops(data: bytes) -> list[_Op]:
    """The opcodes of a pickle (``FRAME`` opcodes dropped: frames are optional, and mutated
    frames would only hide the mutations behind framing errors)."""
    items = list(pickletools.genops(data))
    ops = []
    for k, (opcode, arg, pos) in enumerate(items):
        end = items[k + 1][2] if k + 1 < len(items) else pos + 1
        if opcode.name != 'FRAME':
            ops.append(_Op(opcode.name, arg, data[pos:end]))
    return ops


_INT_OPS = ('BININT', 'BININT1', 'BININT2', 'LONG1', 'INT', 'LONG', 'LONG4')
_STR_OPS = ('BINUNICODE', 'SHORT_BINUNICODE', 'BINUNICODE8', 'UNICODE', 'BINSTRING',
            'SHORT_BINSTRING')
_BYTES_OPS = ('BINBYTES', 'SHORT_BINBYTES', 'BINBYTES8', 'BYTEARRAY8')
_ATOM_OPS = _INT_OPS + _STR_OPS + _BYTES_OPS + ('NONE', 'NEWTRUE', 'NEWFALSE', 'BINFLOAT',
                                                'EMPTY_TUPLE', 'EMPTY_LIST', 'EMPTY_DICT',
                                                'BINGET', 'LONG_BINGET', 'GLOBAL')
_MEMO_OPS = ('BINGET', 'LONG_BINGET', 'BINPUT', 'LONG_BINPUT')
_INSERTABLE = (pickle.MARK, pickle.POP, pickle.POP_MARK, pickle.DUP, pickle.TUPLE, pickle.TUPLE1,
               pickle.TUPLE2, pickle.TUPLE3, pickle.REDUCE, pickle.BUILD, pickle.SETITEM,
               pickle.SETITEMS, pickle.APPEND, pickle.APPENDS, pickle.EMPTY_DICT,
               pickle.EMPTY_LIST, pickle.EMPTY_TUPLE, pickle.NONE, pickle.NEWOBJ, pickle.STOP,
               pickle.DICT, pickle.LIST, pickle.BINPERSID, pickle.MEMOIZE, pickle.NEWOBJ_EX,
               pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET, pickle.STACK_GLOBAL,
               pickle.BINGET + b'\x00', pickle.BINGET + b'\xff', pickle.BINPUT + b'\x00')
_BUILD_STATES = ({'fuzz_attr': 1}, (None, {'fuzz_attr': 1}), (None, {'__class__': None}),
                 {'_metadata': None}, (1, (2, 2), _dtype('O8'), False, b'A' * 32),
                 (3, '|', None, None, None, 1 << 40, 1, 0), {'_max_length': -1},
                 {'_log_history': None, '_count_history': 7})


def _length_prefix(op: _Op) -> tuple[int, str] | None:
    """(offset, struct format) of the length field of a string or bytes opcode."""
    return {'BINUNICODE': (1, '<I'), 'SHORT_BINUNICODE': (1, '<B'), 'BINUNICODE8': (1, '<Q'),
            'BINBYTES': (1, '<I'), 'SHORT_BINBYTES': (1, '<B'), 'BINBYTES8': (1, '<Q'),
            'BYTEARRAY8': (1, '<Q'), 'BINSTRING': (1, '<i'), 'SHORT_BINSTRING': (1, '<B'),
            'LONG4': (1, '<i'), 'LONG1': (1, '<B')}.get(op.name)


def inject_payload(data: bytes, rng: random.Random, name: str) -> tuple[bytes, str]:
    """``data`` (a pickle) with one value replaced by the crafted payload ``PAYLOADS[name]``."""
    ops = pickle_ops(data)
    atoms = [k for k, op in enumerate(ops) if op.name in _ATOM_OPS]
    k = rng.choice(atoms)
    raws = [op.raw for op in ops]
    raws[k] = assemble(PAYLOADS[name])
    return b''.join(raws), f'pickle:payload:{name}'


def mutate_pickle(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A pickle-aware mutation: delete, duplicate, swap or insert opcodes; change an integer,
    a string, a global or a length field; replace a value by a crafted payload; insert a
    ``BUILD``. Falls back to :func:`mutate_bytes` on data that is no pickle."""
    try:
        ops = pickle_ops(data)
    except Exception:
        return mutate_bytes(data, rng)
    raws = [op.raw for op in ops]
    body = [k for k, op in enumerate(ops) if op.name not in ('PROTO', 'STOP')] or [0]

    def pick(names: Sequence[str]) -> int | None:
        found = [k for k, op in enumerate(ops) if op.name in names]
        return rng.choice(found) if found else None

    kind = rng.choices(('delete', 'duplicate', 'swap', 'insert', 'int', 'string', 'global',
                        'payload', 'build', 'length', 'memo'),
                       weights=(1, 1, 1, 1, 3, 2, 2, 4, 2, 1, 1))[0]
    detail = ''
    if kind == 'delete':
        k = rng.choice(body)
        detail = ops[k].name
        del raws[k]
    elif kind == 'duplicate':
        k = rng.choice(body)
        detail = ops[k].name
        raws.insert(k, raws[k])
    elif kind == 'swap':
        a, b = rng.choice(body), rng.choice(body)
        detail = f'{ops[a].name}<->{ops[b].name}'
        raws[a], raws[b] = raws[b], raws[a]
    elif kind == 'insert':
        new = rng.choice(_INSERTABLE)
        detail = pickletools.code2op[new[:1].decode('latin1')].name
        raws.insert(rng.choice(body), new)
    elif kind == 'int':
        k = pick(_INT_OPS)
        if k is None:
            return mutate_bytes(data, rng)
        old = ops[k].arg if isinstance(ops[k].arg, int) else None
        new = _interesting_int(rng, old)
        detail = f'{old}->{new}'
        raws[k] = encode_int(new)
    elif kind == 'string':
        k = pick(_STR_OPS + _BYTES_OPS)
        if k is None:
            return mutate_bytes(data, rng)
        new = rng.choice(INTERESTING_STRS)
        detail = f'{str(ops[k].arg)[:20]!r}->{new[:20]!r}'
        raws[k] = (_encode_str(new) if ops[k].name in _STR_OPS
                   else _encode_bytes(new.encode('utf-8', 'surrogatepass')))
    elif kind == 'global':
        k = pick(('GLOBAL', 'STACK_GLOBAL', 'INST'))
        if k is None:
            return mutate_bytes(data, rng)
        module, name = rng.choice(GLOBALS)
        detail = f'{ops[k].arg}->{module} {name}'
        new = assemble(G(module, name))
        # STACK_GLOBAL takes module and name from the stack: drop them, push the new global
        raws[k] = pickle.POP + pickle.POP + new if ops[k].name == 'STACK_GLOBAL' else new
    elif kind == 'payload':
        k = pick(_ATOM_OPS)
        if k is None:
            return mutate_bytes(data, rng)
        detail = rng.choice(sorted(PAYLOADS))
        raws[k] = assemble(PAYLOADS[detail])
    elif kind == 'build':
        k = pick(('REDUCE', 'NEWOBJ', 'GLOBAL', 'STACK_GLOBAL', 'EMPTY_DICT', 'BUILD',
                  'BINPERSID'))
        if k is None:
            return mutate_bytes(data, rng)
        state = rng.choice(_BUILD_STATES)
        detail = f'after {ops[k].name}'
        raws.insert(k + 1, assemble(state) + pickle.BUILD)
    elif kind == 'length':
        k = pick(('BINUNICODE', 'SHORT_BINUNICODE', 'BINBYTES', 'SHORT_BINBYTES', 'BINUNICODE8',
                  'BINBYTES8', 'BINSTRING', 'SHORT_BINSTRING', 'LONG1', 'LONG4'))
        if k is None:
            return mutate_bytes(data, rng)
        offset, fmt = _length_prefix(ops[k])
        raw = bytearray(raws[k])
        old = struct.unpack_from(fmt, raw, offset)[0]
        top = 2 ** (8 * struct.calcsize(fmt) - (1 if fmt[-1].islower() else 0)) - 1
        new = min(top, rng.choice((old + 1, old * 2 + 16, top)))
        struct.pack_into(fmt, raw, offset, new)
        raws[k] = bytes(raw)
        detail = f'{ops[k].name} {old}->{new}'
    else:  # memo
        k = pick(_MEMO_OPS)
        if k is None:
            return mutate_bytes(data, rng)
        new = rng.choice((0, 1, 255, 2 ** 31, 2 ** 32 - 1))
        op = ops[k].name
        short = op in ('BINGET', 'BINPUT') and new < 256
        code = {'GET': (pickle.BINGET, pickle.LONG_BINGET),
                'PUT': (pickle.BINPUT, pickle.LONG_BINPUT)}[op[-3:]]
        raws[k] = code[0] + bytes([new]) if short else code[1] + struct.pack('<I', new)
        detail = f'{op} {ops[k].arg}->{new}'
    return b''.join(raws), f'pickle:{kind}:{detail}'


# --- zip files -------------------------------------------------------------------------------


class ZipEntry(NamedTuple):
    """One member as :func:`write_zip` writes it; ``raw`` overrides the compressed bytes and
    ``size``/``crc`` the recorded uncompressed size and CRC (None: from ``data``)."""
    name: str
    data: bytes
    method: int = zipfile.ZIP_STORED
    raw: bytes | None = None
    size: int | None = None
    crc: int | None = None


def read_zip(data: bytes) -> list[ZipEntry]:
    """The members of a (valid) zip file."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [ZipEntry(info.filename, archive.read(info), info.compress_type)
                for info in archive.infolist()]


def write_zip(entries: Iterable[ZipEntry], align: int = 64) -> bytes:
    """A plain (non-zip64) zip of ``entries``; duplicate names are written as they are. Stored
    members' data start at a multiple of ``align`` (as ``torch.save`` writes them)."""
    out = bytearray()
    central = bytearray()
    count = 0
    for entry in entries:
        name = entry.name.encode('utf-8')
        if entry.raw is not None:
            raw = entry.raw
        elif entry.method == zipfile.ZIP_DEFLATED:
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            raw = comp.compress(entry.data) + comp.flush()
        else:
            raw = entry.data
        size = len(entry.data) if entry.size is None else entry.size
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        offset = len(out)
        extra = b''
        if entry.method == zipfile.ZIP_STORED and align:
            pad = -(offset + 30 + len(name) + 4) % align
            extra = struct.pack('<HH', 0xFE00, pad) + b'\0' * pad
        out += struct.pack('<IHHHHHIIIHH', 0x04034B50, 20, 0x800, entry.method, 0, 0x21,
                           crc & 0xFFFFFFFF, len(raw) & 0xFFFFFFFF, size & 0xFFFFFFFF,
                           len(name), len(extra)) + name + extra + raw
        central += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014B50, 20, 20, 0x800, entry.method, 0,
                               0x21, crc & 0xFFFFFFFF, len(raw) & 0xFFFFFFFF, size & 0xFFFFFFFF,
                               len(name), 0, 0, 0, 0, 0, offset) + name
        count += 1
    end = struct.pack('<IHHHHIIH', 0x06054B50, 0, 0, count, count, len(central), len(out), 0)
    return bytes(out + central + end)


_BOMB_CACHE: dict[tuple[bytes, int], tuple[bytes, int]] = {}


def deflate_bomb(prefix: bytes, zeros: int) -> tuple[bytes, int]:
    """(raw DEFLATE stream, CRC-32) of ``prefix`` followed by ``zeros`` zero bytes, built from
    one compressed block per MiB (fast: the zeros are never materialised)."""
    key = (prefix, zeros)
    if key not in _BOMB_CACHE:
        chunk = 1 << 20
        blocks, rest = divmod(zeros, chunk)
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
        block = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
        tail = comp.compress(bytes(rest)) + comp.flush()
        crc = zlib.crc32(prefix)
        zero_chunk = bytes(chunk)
        for _ in range(blocks):
            crc = zlib.crc32(zero_chunk, crc)
        crc = zlib.crc32(bytes(rest), crc)
        _BOMB_CACHE[key] = (head + block * blocks + tail, crc)
    return _BOMB_CACHE[key]


def _npy_header(shape: tuple, descr: str, fortran: bool = False) -> bytes:
    """A version-1.0 ``.npy`` header (any shape and descr, also invalid ones)."""
    text = "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (
        descr if descr.startswith('[') else repr(descr), fortran, repr(tuple(shape)))
    text += ' ' * (-(10 + len(text) + 1) % 64) + '\n'
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(text)) + text.encode('latin1')


def _split_npy(data: bytes) -> tuple[bytes, bytes] | None:
    """(header, payload) of a version 1/2 ``.npy``."""
    if not data.startswith(b'\x93NUMPY') or len(data) < 12:
        return None
    if data[6] == 1:
        end = 10 + struct.unpack_from('<H', data, 8)[0]
    else:
        end = 12 + struct.unpack_from('<I', data, 8)[0]
    return data[:end], data[end:]


_NPY_SHAPES = ((8, 8, 4), (8, 8), (8, 8, 4, 1), (0, 8, 4), (4, 8, 8), (200, 200, 16),
               (1 << 15, 1 << 15, 1), (1 << 31, 1 << 31, 4), (1 << 62, 2, 2), (-1, 8, 4), ())
_NPY_DESCRS = ('|u1', '|i1', '|b1', '<f8', '<i8', '>u2', '|O', '|V8', '<U4', '|S1', '<M8[s]',
               "[('a', '|O')]", "[('a', '|u1'), ('b', '<f8')]", '|u1x', '')


def mutate_npz(data: bytes, rng: random.Random, bomb_bytes: int = 1 << 30,
               kind: str | None = None) -> tuple[bytes, str]:
    """A structural ``.npz`` mutation: duplicate, enlarge, drop or rename a member, change an
    ``.npy`` header's shape or dtype, mutate a member's bytes (with a correct CRC), a DEFLATE
    bomb, a wrong recorded size or CRC."""
    try:
        entries = read_zip(data)
    except Exception:
        return mutate_bytes(data, rng)
    if not entries:
        return mutate_bytes(data, rng)
    k = rng.randrange(len(entries))
    entry = entries[k]
    kind = kind or rng.choice(_NPZ_KINDS)
    if kind == 'duplicate':
        other = entry._replace(data=_npy_header((8, 8, 4), '<f8') + bytes(8 * 8 * 8 * 4))
        entries.insert(rng.randrange(len(entries) + 1), rng.choice((entry, other)))
    elif kind == 'enlarge':
        entries[k] = entry._replace(data=entry.data + bytes(rng.choice((1, 100, 100000))))
    elif kind == 'drop':
        del entries[k]
    elif kind == 'rename':
        new = rng.choice(('../' + entry.name, '/' + entry.name, entry.name[:-4], 'x.npy',
                          entry.name.upper(), entry.name + '/'))
        entries[k] = entry._replace(name=new)
    elif kind in ('header_shape', 'header_dtype'):
        parts = _split_npy(entry.data)
        if parts is None:
            return mutate_bytes(data, rng)
        try:
            header = eval_npy_header(parts[0])
        except Exception:
            return mutate_bytes(data, rng)
        shape, descr = header['shape'], header['descr']
        if kind == 'header_shape':
            shape = rng.choice(_NPY_SHAPES)
        else:
            descr = rng.choice(_NPY_DESCRS)
        entries[k] = entry._replace(data=_npy_header(shape, str(descr), header['fortran_order'])
                                    + parts[1])
        kind += f':{shape}:{descr}'
    elif kind == 'member_bytes':
        new, how = mutate_bytes(entry.data, rng)
        entries[k] = entry._replace(data=new)
        kind += f':{how}'
    elif kind in ('bomb', 'bomb_small_header'):
        shape = (bomb_bytes, 1, 1) if kind == 'bomb' else (8, 8, 4)
        header = _npy_header(shape, '|u1')
        raw, crc = deflate_bomb(header, bomb_bytes)
        entries[k] = entry._replace(data=b'', method=zipfile.ZIP_DEFLATED, raw=raw,
                                    size=len(header) + bomb_bytes, crc=crc)
    elif kind == 'wrong_size':
        entries[k] = entry._replace(size=rng.choice((0, 1, len(entry.data) * 1000, 2 ** 32 - 1)))
    elif kind == 'wrong_crc':
        entries[k] = entry._replace(crc=zlib.crc32(entry.data) ^ 1)
    else:
        entries[k] = entry._replace(
            method=zipfile.ZIP_STORED if entry.method == zipfile.ZIP_DEFLATED
            else zipfile.ZIP_DEFLATED)
    return write_zip(entries), f'npz:{kind}:{entry.name}'


def eval_npy_header(header: bytes) -> dict:
    """The dict of an ``.npy`` header (parsed by numpy's safe reader)."""
    import numpy as np
    buf = io.BytesIO(header)
    version = np.lib.format.read_magic(buf)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read(buf)
    return {'shape': shape, 'fortran_order': fortran, 'descr': np.lib.format.dtype_to_descr(dtype)}


def mutate_torch_zip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A mutation of a ``torch.save`` zip: of its ``data.pkl`` (pickle-aware or bytes; the zip
    is rewritten), or of the zip: duplicate entries, a DEFLATE-compressed, enlarged, shrunk or
    missing storage record, ``../`` in a record name, a wrong CRC."""
    try:
        entries = read_zip(data)
    except Exception:
        return mutate_bytes(data, rng)
    pkl = [k for k, e in enumerate(entries) if e.name.endswith('/data.pkl')]
    storages = [k for k, e in enumerate(entries) if '/data/' in e.name] or list(range(len(entries)))
    kind = rng.choices(('pickle', 'pickle_bytes', 'duplicate', 'deflate', 'enlarge', 'shrink',
                        'drop', 'dotdot', 'wrong_crc', 'wrong_size'),
                       weights=(12, 2, 1, 1, 1, 1, 1, 1, 1, 1))[0]
    if kind in ('pickle', 'pickle_bytes') and pkl:
        k = pkl[0]
        new, how = (mutate_pickle if kind == 'pickle' else mutate_bytes)(entries[k].data, rng)
        entries[k] = entries[k]._replace(data=new)
        return write_zip(entries), f'ckpt:{how}'
    k = rng.choice(storages)
    entry = entries[k]
    if kind == 'duplicate':
        twin = entry._replace(data=entry.data[::-1] + bytes(rng.choice((0, 64))))
        entries.insert(k + rng.choice((0, 1)), rng.choice((entry, twin)))
    elif kind == 'deflate':
        entries[k] = entry._replace(method=zipfile.ZIP_DEFLATED)
    elif kind == 'enlarge':
        entries[k] = entry._replace(data=entry.data + bytes(rng.choice((4, 4096, 1 << 20))))
    elif kind == 'shrink':
        entries[k] = entry._replace(data=entry.data[:rng.randrange(len(entry.data) + 1)])
    elif kind == 'drop':
        del entries[k]
    elif kind == 'dotdot':
        prefix, _, rest = entry.name.partition('/')
        entries[k] = entry._replace(name=rng.choice((f'../{entry.name}', f'{prefix}/../{rest}',
                                                     f'/{entry.name}')))
    elif kind == 'wrong_crc':
        entries[k] = entry._replace(crc=zlib.crc32(entry.data) ^ 0x80)
    else:
        entries[k] = entry._replace(size=rng.choice((0, len(entry.data) + 1, 2 ** 32 - 1)))
    return write_zip(entries), f'ckpt:zip:{kind}:{entry.name}'


# --------------------------------------------------------------------------------------------
# Seeds and kinds
# --------------------------------------------------------------------------------------------


def info_seeds() -> list[bytes]:
    """A few BEVDet-style info pkls, written by the project's writer."""
    import numpy as np

    from mmdet3d.formats.info_pkl import dump_infos
    rng = np.random.default_rng(0)
    infos = []
    for idx in range(3):
        n = idx + 2
        cams = {}
        for cam in ('CAM_FRONT', 'CAM_BACK'):
            cams[cam] = dict(
                data_path=f'./data/nuscenes/samples/{cam}/n008-{idx:04d}.jpg', type=cam,
                sample_data_token=f'{idx:02d}{cam.lower()}tok', timestamp=1533151603512404 + idx,
                sensor2ego_translation=[1.7, 0.01, 1.5],
            sensor2ego_rotation=[0.5, -0.5, 0.5, -0.5],
                ego2global_translation=[600.1 + idx, 1647.4, 0.0],
                ego2global_rotation=[0.57, -0.0, 0.01, -0.82],
                cam_intrinsic=rng.random((3, 3)).astype(np.float64) * 1000)
        infos.append(dict(
            token=f'{idx:032x}', scene_token=f'scene{idx}', scene_name=f'scene-{idx:04d}',
            timestamp=1533151603547590 + idx * 500000, frame_idx=idx, prev=f'{idx - 1:032x}',
            next=f'{idx + 1:032x}', lidar_path=f'./data/nuscenes/samples/LIDAR_TOP/{idx}.pcd.bin',
            sweeps=[], cams=cams, ego2global_translation=[600.1, 1647.4, 0.0],
            ego2global_rotation=[0.57, -0.0, 0.01, -0.82],
            gt_boxes=rng.random((n, 9)).astype(np.float32),
            gt_names=np.array(['car', 'pedestrian', 'barrier', 'truck'][:n]),
            gt_velocity=rng.random((n, 2)), num_lidar_pts=rng.integers(0, 100, n),
            valid_flag=rng.random(n) > 0.3,
            ann_infos=[rng.random((n, 9)).astype(np.float32).tolist(), list(range(n))],
            occ_path=f'./data/nuscenes/gts/scene-{idx:04d}/{idx:032x}'))
    seeds = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, 3):
            path = osp.join(tmp, f'infos{count}.pkl')
            dump_infos(path, infos[:count], 'v1.0-trainval')
            with open(path, 'rb') as f:
                seeds.append(f.read())
    return seeds


def _checkpoint_objects() -> list[Any]:
    from collections import OrderedDict

    import numpy as np
    import torch
    from mmengine import __version__ as mmengine_version
    from mmengine.logging import HistoryBuffer
    from mmengine.optim import LinearLR

    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.rand(param.shape, generator=gen) - 0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = LinearLR(optimizer, start_factor=0.1, by_epoch=False, begin=0, end=10)
    model(torch.rand(2, 2, 3, 3, generator=gen)).sum().backward()
    optimizer.step()
    scheduler.step()
    scalars = OrderedDict()
    for name in ('train/loss', 'train/lr', 'val/mIoU'):
        buffer = HistoryBuffer()
        for step in range(3):
            buffer.update(0.5 / (step + 1), count=2)
        scalars[name] = buffer
    meta = dict(
        epoch=1, iter=10, seed=0, mmengine_version=mmengine_version,
        message_hub=dict(
            log_scalars=scalars,
            runtime_info=dict(epoch=1, iter=10, max_iters=100, dataset_meta=dict(classes=('car',))),
            resumed_keys=dict(epoch=False, iter=False)),
        random_states=dict(python=random.Random(0).getstate(),
                           numpy=np.random.RandomState(0).get_state(),
                           torch=torch.Generator().manual_seed(0).get_state()))
    full = dict(meta=meta, state_dict=model.state_dict(), optimizer=optimizer.state_dict(),
                param_schedulers=[scheduler.state_dict()])
    return [full, model.state_dict()]


def checkpoint_seeds() -> list[bytes]:
    """``torch.save`` zips of an mmengine-style training checkpoint and of bare weights."""
    import torch
    seeds = []
    for obj in _checkpoint_objects():
        buf = io.BytesIO()
        torch.save(obj, buf)
        seeds.append(buf.getvalue())
    return seeds


def label_seeds() -> list[bytes]:
    """Occ3D ``labels.npz`` files, compressed and not."""
    import numpy as np
    rng = np.random.default_rng(0)
    arrays = dict(semantics=rng.integers(0, 18, (8, 8, 4)).astype(np.uint8),
                  mask_lidar=(rng.random((8, 8, 4)) > 0.5).astype(np.uint8),
                  mask_camera=(rng.random((8, 8, 4)) > 0.5).astype(np.uint8))
    seeds = []
    for save in (np.savez_compressed, np.savez):
        buf = io.BytesIO()
        save(buf, **arrays)
        seeds.append(buf.getvalue())
    return seeds


def load_checkpoint_cpu(path: str) -> Any:
    """``load_checkpoint_file(path, map_location='cpu')``."""
    from mmdet3d.utils.checkpoint_io import load_checkpoint_file
    return load_checkpoint_file(path, map_location='cpu')


def check_occ_headers(path: str) -> None:
    """``check_occ_gt_headers([(path, None)])``."""
    from mmdet3d.formats.occ3d_labels import check_occ_gt_headers
    check_occ_gt_headers([(path, None)])


_PAYLOAD_NAMES = tuple(PAYLOADS)
_NPZ_KINDS = ('duplicate', 'enlarge', 'drop', 'rename', 'header_shape', 'header_dtype',
              'member_bytes', 'bomb', 'bomb_small_header', 'wrong_size', 'wrong_crc', 'compress')


def _directed_info(data: bytes, index: int, rng: random.Random,
                   bomb_bytes: int) -> tuple[bytes, str] | None:
    if index >= len(_PAYLOAD_NAMES):
        return None
    return inject_payload(data, rng, _PAYLOAD_NAMES[index])


def _directed_ckpt(data: bytes, index: int, rng: random.Random,
                   bomb_bytes: int) -> tuple[bytes, str] | None:
    if index >= len(_PAYLOAD_NAMES):
        return None
    entries = read_zip(data)
    k = next(k for k, e in enumerate(entries) if e.name.endswith('/data.pkl'))
    new, how = inject_payload(entries[k].data, rng, _PAYLOAD_NAMES[index])
    entries[k] = entries[k]._replace(data=new)
    return write_zip(entries), f'ckpt:{how}'


def _directed_labels(data: bytes, index: int, rng: random.Random,
                     bomb_bytes: int) -> tuple[bytes, str] | None:
    if index >= 2 * len(_NPZ_KINDS):
        return None
    return mutate_npz(data, rng, bomb_bytes, _NPZ_KINDS[index % len(_NPZ_KINDS)])


def _mutate_info(data: bytes, rng: random.Random, bomb_bytes: int) -> tuple[bytes, str]:
    return (mutate_pickle if rng.random() < 0.75 else mutate_bytes)(data, rng)


def _mutate_ckpt(data: bytes, rng: random.Random, bomb_bytes: int) -> tuple[bytes, str]:
    return (mutate_torch_zip if rng.random() < 0.85 else mutate_bytes)(data, rng)


def _mutate_labels(data: bytes, rng: random.Random, bomb_bytes: int) -> tuple[bytes, str]:
    if rng.random() < 0.75:
        return mutate_npz(data, rng, bomb_bytes)
    return mutate_bytes(data, rng)


@dataclasses.dataclass(frozen=True)
class KindSpec:
    """What is fuzzed: the file suffix, the loaders (``'module:function'``, called with the
    path), the seed files, the mutator and the directed mutations of the first cases (every
    crafted payload, every structural mutation once; None past their end)."""
    suffix: str
    loaders: tuple[str, ...]
    seeds: Callable[[], list[bytes]]
    mutate: Callable[[bytes, random.Random, int], tuple[bytes, str]]
    directed: Callable[[bytes, int, random.Random, int], tuple[bytes, str] | None]


KINDS: dict[str, KindSpec] = {
    'info': KindSpec('.pkl', ('mmdet3d.formats.info_pkl:load_infos',), info_seeds,
                     _mutate_info, _directed_info),
    'ckpt': KindSpec('.pth', (f'{MODULE}:load_checkpoint_cpu',), checkpoint_seeds, _mutate_ckpt,
                     _directed_ckpt),
    'labels': KindSpec('.npz', ('mmdet3d.formats.occ3d_labels:load_occ_gt',
                                f'{MODULE}:check_occ_headers'), label_seeds, _mutate_labels,
                       _directed_labels),
}


@dataclasses.dataclass
class Case:
    """One file to load: ``data`` is written to ``name`` and loaded by each of ``loaders``."""
    kind: str
    index: int
    name: str
    data: bytes
    loaders: tuple[str, ...]
    mutation: str = ''


def generate_cases(kind: str, runs: int, seed: int, seeds: list[bytes] | None = None,
                   bomb_bytes: int = 1 << 30, start: int = 0) -> Iterator[Case]:
    """Cases ``start .. start + runs - 1`` of ``kind``; case ``i`` depends only on ``seed``,
    ``kind`` and ``i``: the first ones are the kind's directed mutations (every payload or
    structural mutation once), the others 1 to 3 stacked random mutations of a seed file."""
    spec = KINDS[kind]
    seeds = spec.seeds() if seeds is None else seeds
    for index in range(start, start + runs):
        rng = random.Random(f'fuzz-inputs:{seed}:{kind}:{index}')
        which = rng.randrange(len(seeds))
        data = seeds[which]
        directed = spec.directed(data, index, rng, bomb_bytes)
        if directed is not None:
            yield Case(kind, index, f'{kind}-{seed}-{index:06d}{spec.suffix}', directed[0],
                       spec.loaders, f'seed{which}|directed|{directed[1]}')
            continue
        steps = []
        for _ in range(rng.choices((1, 2, 3), weights=(7, 2, 1))[0]):
            data, how = spec.mutate(data, rng, bomb_bytes)
            steps.append(how)
            if ':bomb' in how:
                break  # another mutation would unpack the bomb here
        yield Case(kind, index, f'{kind}-{seed}-{index:06d}{spec.suffix}', data, spec.loaders,
                   f'seed{which}|' + '|'.join(steps))


# --------------------------------------------------------------------------------------------
# Fake loaders: the harness's self-tests (each must give the outcome in its name)
# --------------------------------------------------------------------------------------------


def _fake_ok(path: str) -> bytes:
    with open(path, 'rb') as f:
        return f.read()


def _fake_crash(path: str) -> None:
    import ctypes
    ctypes.string_at(0)


def _fake_hang(path: str) -> None:
    time.sleep(3600)


def _fake_over_cap(path: str) -> bytearray:
    return bytearray(2 << 30)


def _fake_class_attribute(path: str) -> None:
    from mmengine.logging import HistoryBuffer
    HistoryBuffer.fuzz_attr = 1


def _fake_cwd_file(path: str) -> None:
    with open('fuzz-side-effect.txt', 'w') as f:
        f.write('x')


def _fake_environ(path: str) -> None:
    os.environ[CANARY_ENV] = 'changed'


def _fake_thread(path: str) -> None:
    import threading
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


def _fake_unnamed_error(path: str) -> None:
    raise ValueError('x')


def _fake_named_error(path: str) -> None:
    raise ValueError(f'cannot read {path}')


def _fake_wrapped_memory_error(path: str) -> None:
    try:
        bytearray(2 << 30)
    except MemoryError as error:
        raise ValueError(f'cannot read {path}') from error


def _fake_exit(path: str) -> None:
    sys.exit(3)


def _unsafe_pickle_load(path: str) -> Any:
    """A plain ``pickle.load``: runs what the file asks for (the harness must see it)."""
    with open(path, 'rb') as f:
        return pickle.load(f)


def _unsafe_torch_load(path: str) -> Any:
    """``torch.load(weights_only=False)``: runs what the file asks for."""
    import torch
    return torch.load(path, map_location='cpu', weights_only=False)


# --------------------------------------------------------------------------------------------
# Worker
# --------------------------------------------------------------------------------------------

#: Classes whose class-level state (``vars(cls)``) a pickle could change with ``BUILD``.
WATCHED_CLASSES = ('mmengine.logging.history_buffer:HistoryBuffer', 'mmengine.logging:MessageHub',
                   'collections:OrderedDict', 'numpy:ndarray', 'numpy:dtype', 'numpy:generic',
                   'torch:Tensor', 'torch.nn:Parameter', 'torch.nn:Module', 'torch:UntypedStorage',
                   'torch:TypedStorage')


def _resolve(name: str) -> Any:
    module, _, attr = name.partition(':')
    obj = importlib.import_module(module)
    for part in attr.split('.'):
        obj = getattr(obj, part)
    return obj


def _vm_size() -> int:
    """This process's virtual memory size (bytes)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmSize:'):
                return int(line.split()[1]) * 1024
    return 0


def _listing(folder: str, limit: int = 2000) -> tuple[str, ...]:
    names = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            names.append(osp.relpath(osp.join(root, name), folder))
            if len(names) >= limit:
                return tuple(sorted(names))
    return tuple(sorted(names))


def _fds() -> dict[int, str]:
    out = {}
    for fd in os.listdir('/proc/self/fd'):
        try:
            out[int(fd)] = os.readlink(f'/proc/self/fd/{fd}')
        except OSError:
            pass
    return out


def _listening_inodes() -> set[str]:
    inodes = set()
    for table in ('tcp', 'tcp6', 'udp', 'udp6', 'unix'):
        try:
            with open(f'/proc/self/net/{table}') as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if table == 'unix':
                        if len(fields) > 6 and fields[5] == '01':  # SS_UNCONNECTED listener
                            inodes.add(fields[6])
                    elif len(fields) > 9 and fields[3] in ('0A', '07'):  # LISTEN / udp bound
                        inodes.add(fields[9])
        except OSError:
            pass
    return inodes


def _class_fingerprint(cls: Any) -> dict[str, Any]:
    """id of every class attribute, and the ids of the items of dict, list and set ones
    (e.g. ``HistoryBuffer._statistics_methods``, a class-level registry)."""
    out: dict[str, Any] = {}
    for key, value in vars(cls).items():
        if isinstance(value, dict):
            out[str(key)] = (id(value), tuple((repr(k)[:100], id(v)) for k, v in value.items()))
        elif isinstance(value, (list, set)):
            out[str(key)] = (id(value), tuple(sorted(id(v) for v in value)))
        else:
            out[str(key)] = id(value)
    return out


class _Snapshot(NamedTuple):
    folders: dict[str, tuple[str, ...]]
    cwd: str
    environ: dict[str, str]
    threads: int
    tasks: int
    sockets: frozenset[str]
    dist: bool
    classes: dict[str, dict[str, Any]]
    modules: frozenset[str]
    sys_path: tuple[str, ...]


def _dist_initialized() -> bool:
    torch = sys.modules.get('torch')
    if torch is None:
        return False
    try:
        return bool(torch.distributed.is_available() and torch.distributed.is_initialized())
    except Exception:
        return False


def _snapshot(folders: Sequence[str], classes: dict[str, Any]) -> _Snapshot:
    import threading
    fds = _fds()
    sockets = frozenset(t[8:-1] for t in fds.values() if t.startswith('socket:['))
    return _Snapshot(
        folders={folder: _listing(folder) for folder in folders}, cwd=os.getcwd(),
        environ=dict(os.environ), threads=threading.active_count(),
        tasks=len(os.listdir('/proc/self/task')), sockets=sockets, dist=_dist_initialized(),
        classes={name: _class_fingerprint(cls) for name, cls in classes.items()},
        modules=frozenset(sys.modules), sys_path=tuple(sys.path))


def _compare(before: _Snapshot, after: _Snapshot) -> list[str]:
    changes = []
    for folder, names in before.folders.items():
        new = after.folders.get(folder, ())
        added, removed = sorted(set(new) - set(names)), sorted(set(names) - set(new))
        if added or removed:
            changes.append(f'files in {folder}: added {added[:5]}, removed {removed[:5]}')
    if after.cwd != before.cwd:
        changes.append(f'working folder changed to {after.cwd}')
    if after.environ != before.environ:
        keys = sorted(k for k in set(before.environ) | set(after.environ)
                      if before.environ.get(k) != after.environ.get(k))
        changes.append(f'os.environ changed: {keys[:5]}')
    if after.threads != before.threads or after.tasks != before.tasks:
        changes.append(f'threads {before.threads}/{before.tasks} -> {after.threads}/{after.tasks}')
    new_sockets = after.sockets - before.sockets
    if new_sockets:
        listening = new_sockets & _listening_inodes()
        changes.append(f'new sockets {sorted(new_sockets)[:5]}'
                       + (f', listening {sorted(listening)[:5]}' if listening else ''))
    if after.dist != before.dist:
        changes.append('torch.distributed initialised')
    for name, fingerprint in before.classes.items():
        now = after.classes.get(name, {})
        if now != fingerprint:
            keys = sorted(k for k in set(fingerprint) | set(now)
                          if fingerprint.get(k) != now.get(k))
            changes.append(f'class attributes of {name} changed: {keys[:5]}')
    if after.modules - before.modules:
        changes.append(f'modules imported: {sorted(after.modules - before.modules)[:8]}')
    if after.sys_path != before.sys_path:
        changes.append('sys.path changed')
    return changes


def _is_memory_error(error: BaseException) -> bool:
    """A ``MemoryError`` (or an out-of-memory error of torch or the OS), also as the cause or
    context of ``error``."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MemoryError):
            return True
        if isinstance(error, OSError) and error.errno == errno.ENOMEM:
            return True
        text = str(error)[:2000].lower()
        if type(error).__name__ == 'OutOfMemoryError' or any(
                s in text for s in ("can't allocate memory", 'cannot allocate memory',
                                    'not enough memory', 'out of memory',
                                    'unable to allocate', 'std::bad_alloc')):
            return True
        error = error.__cause__ or error.__context__
    return False


def _touch(obj: Any, limit: int = 200000) -> None:
    """Walk a loaded object as a user would: containers, instance ``__dict__``, the bytes of
    tensors' storages, numpy scalars and (object) arrays' elements and ``repr`` of small arrays
    (a crafted numpy scalar may only crash when it is looked at)."""
    np = sys.modules.get('numpy')
    torch = sys.modules.get('torch')
    stack, seen = [obj], set()
    while stack and len(seen) < limit:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (str, bytes, int, float, bool, type(None))):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
            if getattr(item, '__dict__', None):
                stack.append(vars(item))
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif torch is not None and isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            if storage.nbytes() and storage.device.type == 'cpu':
                view = torch.empty(0, dtype=torch.uint8).set_(storage)
                int(view.sum())
        elif np is not None and isinstance(item, np.ndarray):
            if item.dtype.hasobject and item.size <= limit:
                stack.extend(item.ravel().tolist())
            elif item.size <= 10000:
                repr(item)
            else:
                zlib.crc32(item.tobytes())
        elif np is not None and isinstance(item, (np.generic, np.dtype)):
            repr(item)
        elif not isinstance(item, type) and hasattr(item, '__dict__'):
            stack.append(vars(item))


def _exception_outcome(error: BaseException, path: str) -> str:
    if _is_memory_error(error):
        return 'over_cap'
    if not isinstance(error, Exception):
        return 'crash'  # SystemExit, KeyboardInterrupt, ...: would end the process
    try:
        text = str(error)
    except Exception:
        return 'unnamed_error'
    return 'named_error' if (path in text or osp.basename(path) in text) else 'unnamed_error'


def _set_address_cap(cap: int | None) -> None:
    import resource
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if cap is None:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    else:
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY
                                                else min(cap, hard), hard))


def _load_one(loader: Callable, path: str, budget: int, folders: Sequence[str],
              classes: dict[str, Any], emit: Callable[..., None], file_id: int,
              loader_name: str) -> dict:
    before = _snapshot(folders, classes)
    emit(ev='start', id=file_id, loader=loader_name)
    phase, error, result = 'load', None, None
    _set_address_cap(_vm_size() + budget)
    try:
        result = loader(path)
        phase = 'touch'
        emit(ev='loaded', id=file_id, loader=loader_name)
        _touch(result)
    except BaseException as exc:  # noqa: B036 - SystemExit etc. are outcomes too
        error = exc
    finally:
        _set_address_cap(None)
    record: dict[str, Any] = dict(loader=loader_name, phase=phase)
    if error is not None:
        outcome = _exception_outcome(error, path)
        record.update(error=f'{type(error).__module__}.{type(error).__qualname__}',
                      message=_short(error),
                      traceback=''.join(traceback.format_exception(error))[-2000:])
    else:
        outcome = 'ok'
    del result, error
    gc.collect()
    changes = _compare(before, _snapshot(folders, classes))
    if changes:
        record['side_effects'] = changes
        if _SEVERITY[outcome] < _SEVERITY['side_effect']:
            outcome = 'side_effect'
    record['outcome'] = outcome
    return record


def _short(error: BaseException, limit: int = 600) -> str:
    try:
        text = str(error)
    except Exception as exc:  # a crafted object may fail in __str__
        text = f'<str() failed: {type(exc).__name__}>'
    return text if len(text) <= limit else text[:limit] + '...'


def worker_main(config_path: str, proto_fd: int) -> None:
    """The worker loop: ``{"id", "path", "loaders"}`` lines on stdin, events on ``proto_fd``."""
    import faulthandler
    import resource
    faulthandler.enable()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    proto = os.fdopen(proto_fd, 'w', buffering=1)

    def emit(**event: Any) -> None:
        proto.write(json.dumps(event) + '\n')
        proto.flush()

    with open(config_path) as f:
        config = json.load(f)
    for module in config.get('preload', ()):
        importlib.import_module(module)
    torch = sys.modules.get('torch')
    if torch is not None:
        torch.set_num_threads(1)
    loaders = {name: _resolve(name) for name in config['loaders']}
    for name, path in config.get('warmup', ()):
        try:
            _touch(loaders[name](path))
        except Exception:
            pass
    classes = {}
    for name in WATCHED_CLASSES:  # those of imported modules (importing one is a side effect)
        if name.partition(':')[0] in sys.modules:
            try:
                classes[name] = _resolve(name)
            except Exception:
                pass
    budget = int(config['budget'])
    folders = [os.getcwd(), config['canary']]
    gc.collect()
    gc.freeze()  # the imports' objects: later collections (one per file) only see new ones
    emit(ev='ready', pid=os.getpid(), vm=_vm_size())
    for line in sys.stdin:
        request = json.loads(line)
        path = request['path']
        worst = None
        for name in request['loaders']:
            if name not in loaders:
                loaders[name] = _resolve(name)
            record = _load_one(loaders[name], path, budget,
                               folders + [osp.dirname(path)], classes, emit, request['id'], name)
            if worst is None or _SEVERITY[record['outcome']] > _SEVERITY[worst['outcome']]:
                worst = record
            if record['outcome'] in ('side_effect', 'over_cap', 'crash'):
                break
        emit(ev='done', id=request['id'], **worst)
        if worst['outcome'] in ('side_effect', 'over_cap', 'crash'):
            return  # the process may be polluted: the parent starts a fresh one


# --------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """The outcome of one case."""
    kind: str
    index: int
    name: str
    mutation: str
    outcome: str
    seconds: float
    detail: dict
    kept: str | None = None


class _Worker:
    def __init__(self, slot: int, root: str, config_path: str, env: dict[str, str]):
        self.slot = slot
        self.cwd = osp.join(root, f'w{slot}', 'cwd')
        self.inbox = osp.join(root, f'w{slot}', 'in')
        for folder in (self.cwd, self.inbox):
            os.makedirs(folder, exist_ok=True)
        read_fd, write_fd = os.pipe()
        self.log_path = osp.join(root, 'logs', f'w{slot}.log')
        os.makedirs(osp.dirname(self.log_path), exist_ok=True)
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', MODULE, '--worker', config_path, str(write_fd)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, cwd=self.cwd, env=env,
            pass_fds=(write_fd,), start_new_session=True)
        log.close()
        os.close(write_fd)
        self.fd = read_fd
        os.set_blocking(read_fd, False)
        self.buffer = b''
        self.ready = False
        self.started = time.monotonic()
        self.case: Case | None = None
        self.path: str | None = None
        self.deadline: float = self.started + WORKER_STARTUP_S
        self.last_event: dict = {}
        self.files = 0
        self.eof = False

    def send(self, case: Case, file_id: int, timeout: float) -> None:
        self.case = case
        self.path = osp.join(self.inbox, case.name)
        with open(self.path, 'wb') as f:
            f.write(case.data)
        self.last_event = {}
        self.sent = time.monotonic()
        self.deadline = self.sent + timeout
        self.files += 1
        self.proc.stdin.write((json.dumps(dict(id=file_id, path=self.path,
                                               loaders=list(case.loaders))) + '\n').encode())
        self.proc.stdin.flush()

    def events(self) -> list[dict]:
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                    break
                self.buffer += chunk
        except BlockingIOError:
            pass
        *lines, self.buffer = self.buffer.split(b'\n')
        return [json.loads(line) for line in lines if line.strip()]

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.close()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass

    def log_tail(self, limit: int = 3000) -> str:
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    here = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    paths = [here, os.getcwd()] + [p for p in sys.path if p and osp.isdir(p)]
    env['PYTHONPATH'] = os.pathsep.join(dict.fromkeys(paths))
    env.update({CANARY_ENV: CANARY_VALUE, 'PYTHONDONTWRITEBYTECODE': '1', 'OMP_NUM_THREADS': '1',
                'MKL_NUM_THREADS': '1', 'PYTHONFAULTHANDLER': '1'})
    return env


def run_cases(cases: Iterable[Case], out_dir: str, *, workers: int = 1, mem_mib: int = 512,
              timeout: float = 10.0, warmup: Sequence[tuple[str, bytes, str]] = (),
              preload: Sequence[str] = (), on_result: Callable[[Result], None] | None = None,
              keep_defects: bool = True) -> list[Result]:
    """Load every case in worker processes and classify it (see the module docstring).

    Args:
        cases: the files (may be a generator: files are made as workers become free).
        out_dir: scratch space (``work/``, removed at the end) and the kept defect files
            (``defects/<kind>/<outcome>/<name>`` and ``<name>.json``).
        workers: worker processes. mem_mib: the allocation budget above a worker's address
            space before each file. timeout: seconds per file and loader.
        warmup: (loader, data, suffix): loaded by each worker before it reports ready (imports
            the loaders' lazy dependencies, so that they do not count as side effects).
        preload: modules every worker imports first.
        on_result: called with each result (e.g. a progress bar).
        keep_defects: copy every defect's file to ``out_dir/defects``.

    Returns:
        The results, in the order of ``cases``.
    """
    os.makedirs(out_dir, exist_ok=True)
    root = tempfile.mkdtemp(prefix='work-', dir=out_dir)
    canary = osp.join(root, 'canary')
    os.makedirs(canary)
    with open(osp.join(canary, 'canary.txt'), 'w') as f:
        f.write(CANARY_VALUE)
    warm_paths = []
    os.makedirs(osp.join(root, 'warmup'))
    for k, (loader, data, suffix) in enumerate(warmup):
        path = osp.join(root, 'warmup', f'warm{k}{suffix}')
        with open(path, 'wb') as f:
            f.write(data)
        warm_paths.append((loader, path))
    loaders = sorted({name for name, _ in warm_paths})
    config_path = osp.join(root, 'config.json')
    with open(config_path, 'w') as f:
        json.dump(dict(loaders=loaders, warmup=warm_paths, budget=mem_mib << 20, canary=canary,
                       preload=list(preload)), f)
    env = _worker_env()
    pending = iter(enumerate(cases))
    results: dict[int, Result] = {}
    pool: list[_Worker] = []
    selector = selectors.DefaultSelector()
    exhausted = False
    spawned = 0

    def spawn(slot: int) -> _Worker:
        nonlocal spawned
        spawned += 1
        worker = _Worker(slot, root, config_path, env)
        selector.register(worker.fd, selectors.EVENT_READ, worker)
        return worker

    def retire(worker: _Worker, kill: bool) -> None:
        selector.unregister(worker.fd)
        if kill:
            worker.kill()
        else:
            try:
                worker.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
            worker.close()

    def finish(worker: _Worker, outcome: str, detail: dict) -> None:
        case, file_id = worker.case, worker.file_id
        seconds = time.monotonic() - worker.sent
        kept = None
        if outcome in DEFECTS and keep_defects:
            folder = osp.join(out_dir, 'defects', case.kind, outcome)
            os.makedirs(folder, exist_ok=True)
            kept = osp.join(folder, case.name)
            with open(kept, 'wb') as f:
                f.write(case.data)
        result = Result(case.kind, case.index, case.name, case.mutation, outcome,
                        round(seconds, 3), detail, kept)
        if kept:
            with open(kept + '.json', 'w') as f:
                json.dump(dataclasses.asdict(result) | dict(loaders=list(case.loaders)), f,
                          indent=1, default=str)
        results[file_id] = result
        worker.case = None
        try:
            os.remove(worker.path)
        except OSError:
            pass
        if on_result is not None:
            on_result(result)

    def feed(worker: _Worker) -> bool:
        nonlocal exhausted
        if exhausted:
            return False
        try:
            file_id, case = next(pending)
        except StopIteration:
            exhausted = True
            return False
        worker.file_id = file_id
        worker.send(case, file_id, timeout)
        return True

    def idle(worker: _Worker) -> None:
        worker.deadline = float('inf')
        try:
            worker.proc.stdin.close()  # the worker's loop ends
        except OSError:
            pass

    def handle(worker: _Worker, events: list[dict]) -> None:
        for event in events:
            worker.last_event = event
            if event['ev'] == 'ready':
                worker.ready = True
                if not feed(worker):
                    idle(worker)
            elif event['ev'] == 'start' and worker.case is not None:
                worker.deadline = time.monotonic() + timeout
            elif event['ev'] == 'done' and worker.case is not None:
                detail = {k: v for k, v in event.items() if k not in ('ev', 'id', 'outcome')}
                finish(worker, event['outcome'], detail)
                if event['outcome'] in ('side_effect', 'over_cap', 'crash'):
                    worker.deadline = time.monotonic() + 30  # it exits by itself
                elif worker.files >= WORKER_MAX_FILES or not feed(worker):
                    idle(worker)

    try:
        pool = [spawn(slot) for slot in range(max(1, workers))]
        while pool:
            now = time.monotonic()
            wait = max(0.0, min(w.deadline for w in pool) - now)
            for key, _ in selector.select(timeout=min(wait, 1.0)):
                handle(key.data, key.data.events())
            now = time.monotonic()
            for worker in list(pool):
                dead = worker.eof or worker.proc.poll() is not None
                if dead:
                    worker.proc.wait()
                    handle(worker, worker.events())  # e.g. 'done' written just before exiting
                late = not dead and now > worker.deadline
                if not dead and not late:
                    continue
                if worker.case is not None:
                    phase = 'touch' if worker.last_event.get('ev') == 'loaded' else 'load'
                    detail = dict(loader=worker.last_event.get('loader'), phase=phase)
                    if late:
                        detail['after_s'] = timeout
                        finish(worker, 'hang', detail)
                    else:
                        code = worker.proc.returncode
                        detail.update(returncode=code, log=worker.log_tail(1500))
                        if code is not None and code < 0:
                            detail['signal'] = signal.Signals(-code).name
                        finish(worker, 'crash', detail)
                elif not worker.ready:
                    retire(worker, kill=True)
                    pool.remove(worker)
                    raise RuntimeError(f'fuzz worker did not start: {worker.log_tail()}')
                retire(worker, kill=not dead)
                pool.remove(worker)
                if not exhausted:
                    pool.append(spawn(worker.slot))
    finally:
        for worker in pool:
            retire(worker, kill=True)
        selector.close()
        shutil.rmtree(root, ignore_errors=True)
    return [results[k] for k in sorted(results)]


def summarize(results: Iterable[Result]) -> dict[str, dict[str, int]]:
    """{kind: {'runs': n, outcome: count for every outcome}}."""
    table: dict[str, dict[str, int]] = {}
    for result in results:
        row = table.setdefault(result.kind, dict(runs=0, **{o: 0 for o in OUTCOMES}))
        row['runs'] += 1
        row[result.outcome] += 1
    return table


def format_table(table: dict[str, dict[str, int]]) -> str:
    columns = ('kind', 'runs') + OUTCOMES
    rows = [columns] + [(kind,) + tuple(str(row[c]) for c in columns[1:])
                        for kind, row in table.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    return '\n'.join('  '.join(cell.rjust(w) for cell, w in zip(r, widths)) for r in rows)


def fuzz(kinds: Sequence[str] = tuple(KINDS), runs: int = 100, seed: int = 0, workers: int = 1,
         mem_mib: int = 512, timeout: float = 10.0, out_dir: str = 'work_dirs/fuzz_inputs',
         loaders: dict[str, Sequence[str]] | None = None, on_result: Callable | None = None,
         start: int = 0) -> dict:
    """Fuzz the loaders of ``kinds`` with ``runs`` mutated files each; write and return the
    summary (``<out_dir>/summary.json``): config, the outcome table and every defect.

    Args:
        loaders: per kind, ``'module:function'`` loaders replacing the kind's own.
    """
    loaders = dict(loaders or {})
    seeds = {kind: KINDS[kind].seeds() for kind in kinds}
    bomb_bytes = (mem_mib << 20) + (256 << 20)
    kind_loaders = {kind: tuple(loaders.get(kind, KINDS[kind].loaders)) for kind in kinds}
    warmup = []
    for kind in kinds:
        spec = KINDS[kind]
        broken = [b'', b'\x80\x02garbage', seeds[kind][0][:len(seeds[kind][0]) // 2]]
        for loader in kind_loaders[kind]:
            warmup += [(loader, data, spec.suffix) for data in seeds[kind] + broken]

    def cases() -> Iterator[Case]:
        for kind in kinds:
            for case in generate_cases(kind, runs, seed, seeds[kind], bomb_bytes, start):
                case.loaders = kind_loaders[kind]
                yield case

    began = time.monotonic()
    results = run_cases(cases(), out_dir, workers=workers, mem_mib=mem_mib, timeout=timeout,
                        warmup=warmup, preload=('numpy', 'torch', 'mmengine.logging'),
                        on_result=on_result)
    table = summarize(results)
    summary = dict(
        config=dict(kinds=list(kinds), runs=runs, seed=seed, start=start, workers=workers,
                    mem_mib=mem_mib, timeout=timeout, loaders={k: list(v) for k, v in
                                                               kind_loaders.items()}),
        seconds=round(time.monotonic() - began, 1), table=table,
        defects=[dataclasses.asdict(r) for r in results if r.outcome in DEFECTS])
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1, default=str)
    return summary


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--worker':
        worker_main(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit('usage: python -m mmdet3d.testing.input_fuzzing --worker CONFIG FD '
                 '(use tools/misc/fuzz_inputs.py)')
