"""The input fuzz harness (issue 29 item 6): a fixed-seed run over the real loaders, and
self-tests proving that the harness does see crashes, hangs, allocations beyond the cap, side
effects and errors that do not name the file."""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from mmdet3d.testing import input_fuzzing as fuzzing

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / 'tools' / 'misc'))
FAKE = f'{fuzzing.MODULE}:_fake_'
RUNS_PER_KIND = 200


def test_fixed_seed_run_has_no_defects(tmp_path, capsys):
    """Mutated info pkls, checkpoints and label files load or fail with an error naming the
    file: no crash, hang, allocation beyond the cap, side effect or unnamed error."""
    import fuzz_inputs
    out = tmp_path / 'fuzz'
    status = fuzz_inputs.main(['--runs', str(RUNS_PER_KIND), '--seed', '0', '--workers', '1',
                               '--mem-mib', '512', '--timeout', '10', '--out', str(out),
                               '--no-progress'])
    printed = capsys.readouterr().out
    summary = json.loads((out / 'summary.json').read_text())
    assert set(summary['table']) == {'info', 'ckpt', 'labels'}
    for kind, row in summary['table'].items():
        assert row['runs'] == RUNS_PER_KIND, kind
        assert row['ok'] + row['named_error'] > 0, kind
    found = [f"{d['kind']} #{d['index']} {d['outcome']} ({d['mutation']}; "
             f"{d['detail'].get('loader')}: {d['detail'].get('message') or d['detail']})"
             for d in summary['defects']]
    assert not found, printed + '\n'.join(found)
    assert status == 0


def test_harness_classifies_fake_loaders(tmp_path):
    """Each fake loader gives the outcome it is made to give; defects keep their file."""
    expected = dict(ok='ok', named_error='named_error', unnamed_error='unnamed_error',
                    crash='crash', hang='hang', over_cap='over_cap',
                    wrapped_memory_error='over_cap', exit='crash',
                    class_attribute='side_effect', cwd_file='side_effect',
                    environ='side_effect', thread='side_effect')
    cases = [fuzzing.Case('self', k, f'self-{name}.bin', b'fuzz', (FAKE + name,), name)
             for k, name in enumerate(expected)]
    results = fuzzing.run_cases(cases, str(tmp_path), workers=1, timeout=2, mem_mib=512,
                                preload=('mmengine.logging.history_buffer',))
    got = {r.mutation: r.outcome for r in results}
    assert got == expected
    by_name = {r.mutation: r for r in results}
    assert by_name['crash'].detail['signal'] == 'SIGSEGV'
    assert 'HistoryBuffer' in ' '.join(by_name['class_attribute'].detail['side_effects'])
    assert 'fuzz-side-effect.txt' in ' '.join(by_name['cwd_file'].detail['side_effects'])
    for result in results:
        assert (result.kept is not None) == (result.outcome in fuzzing.DEFECTS)
        if result.kept:
            assert Path(result.kept).read_bytes() == b'fuzz'
            assert json.loads(Path(result.kept + '.json').read_text())['outcome'] == result.outcome
    table = fuzzing.summarize(results)
    assert table['self']['runs'] == len(expected) and table['self']['side_effect'] == 4


def test_harness_sees_code_run_by_unsafe_loaders(tmp_path):
    """The crafted payloads do run, and are seen, when a loader unpickles without limits."""
    seeds = fuzzing.info_seeds()
    wanted = {'os_system': 'side_effect', 'environ_setitem': 'side_effect',
              'hb_setattr': 'side_effect', 'hb_register_statistics': 'side_effect',
              'messagehub_class_build': 'side_effect',
              'ordereddict_class_build': 'named_error',
              'bytearray_bomb': 'over_cap'}
    cases = []
    for k, name in enumerate(wanted):
        data, _ = fuzzing.inject_payload(seeds[0], random.Random(k), name)
        cases.append(fuzzing.Case('info', k, f'unsafe-{k}.pkl', data,
                                  (f'{fuzzing.MODULE}:_unsafe_pickle_load',), name))
    results = fuzzing.run_cases(cases, str(tmp_path), workers=1, timeout=10,
                                preload=('numpy', 'mmengine.logging'))
    got = {r.mutation: r.outcome for r in results}
    # a plain pickle names no file: errors are unnamed, still not side effects
    wanted['ordereddict_class_build'] = 'unnamed_error'
    assert got == wanted
    effects = ' '.join(' '.join(r.detail.get('side_effects', ())) for r in results)
    assert 'fuzz-os-system' in effects and fuzzing.CANARY_ENV in effects
    assert 'HistoryBuffer changed' in effects and 'MessageHub changed' in effects


def test_harness_sees_a_crafted_checkpoint_crash(tmp_path):
    """An array whose dtype holds objects that its BUILD state hides loads with torch's
    unpickler and segfaults when it is looked at: outcome crash, in the touch phase."""
    seed = fuzzing.checkpoint_seeds()[1]
    entries = fuzzing.read_zip(seed)
    k = next(k for k, e in enumerate(entries) if e.name.endswith('/data.pkl'))
    payload = {'fuzz': fuzzing.PAYLOADS['ndarray_fields_O_bytes']}
    entries[k] = entries[k]._replace(data=fuzzing.assemble_pickle(payload))
    case = fuzzing.Case('ckpt', 0, 'crash.pth', fuzzing.write_zip(entries),
                        (f'{fuzzing.MODULE}:_unsafe_torch_load',), 'ndarray_fields_O_bytes')
    [result] = fuzzing.run_cases([case], str(tmp_path), timeout=20, preload=('numpy', 'torch'))
    assert result.outcome == 'crash', result
    assert result.detail['signal'] == 'SIGSEGV' and result.detail['phase'] == 'touch'


def test_cases_are_deterministic_and_cover_the_mutations():
    """Case i depends only on (seed, kind, i); the directed cases cover every payload."""
    seeds = {kind: spec.seeds() for kind, spec in fuzzing.KINDS.items()}
    for kind in fuzzing.KINDS:
        first = list(fuzzing.generate_cases(kind, 60, 3, seeds[kind], bomb_bytes=64 << 20))
        again = list(fuzzing.generate_cases(kind, 5, 3, seeds[kind], bomb_bytes=64 << 20,
                                            start=50))
        assert [c.data for c in first[50:55]] == [c.data for c in again]
        assert [c.mutation for c in first[50:55]] == [c.mutation for c in again]
        assert len({c.data for c in first}) > 50
    mutations = ' '.join(c.mutation for c in fuzzing.generate_cases('ckpt', 45, 0, seeds['ckpt']))
    assert all(f'payload:{name}' in mutations for name in fuzzing.PAYLOADS)


def test_pickle_assembler_and_zip_writer_round_trip():
    import io
    import pickle
    import zipfile
    value = {'a': [1, 2 ** 70, -3, 1.5, None, True], 'b': (b'x', 'y'), 'c': {}}
    assert pickle.loads(fuzzing.assemble_pickle(value)) == value
    entries = [fuzzing.ZipEntry('a/data.pkl', b'abc'), fuzzing.ZipEntry('a/data/0', b'\0' * 100,
                                                                        zipfile.ZIP_DEFLATED)]
    with zipfile.ZipFile(io.BytesIO(fuzzing.write_zip(entries))) as archive:
        assert archive.read('a/data.pkl') == b'abc' and archive.read('a/data/0') == b'\0' * 100
    raw, crc = fuzzing.deflate_bomb(b'head', (3 << 20) + 5)
    import zlib
    data = zlib.decompress(raw, -15)
    assert data == b'head' + bytes((3 << 20) + 5) and zlib.crc32(data) == crc


@pytest.mark.parametrize('argv', [['--runs', '1', '--kinds', 'nope'],
                                  ['--runs', '1', '--loader', 'info']])
def test_cli_rejects_bad_arguments(argv):
    import fuzz_inputs
    with pytest.raises(SystemExit):
        fuzz_inputs.main(argv + ['--no-progress'])
