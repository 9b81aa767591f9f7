"The benchmark scripts in bench/ run end to end on a tiny setting and write the JSON they promise."
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ig_speed_writes_json(tmp_path):
    out = tmp_path/'ig.json'
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'ig_speed.py'), '--scale', 'quick', '--tiles', '2', '--repeats', '1',
                        '--train_epochs', '1', '--device', 'cpu', '--out', str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res['scale'] == 'quick' and res['tiles'] == 2 and res['device'] == 'cpu'
    names = [row['setting'] for row in res['rows']]
    assert names[0].startswith('captum default') and len(names) == 6  # no bf16 rows on CPU
    for row in res['rows']:
        assert row['seconds_per_tile'] > 0 and -1 <= row['corr_vs_256'] <= 1 and row['rel_error_vs_256'] >= 0
    assert res['rows'][1]['corr_vs_256'] > 0.99  # 50 steps agree with 256 steps whatever the batching
    assert 'IG per tile' in r.stdout and 'written:' in r.stdout


def test_screen_speed_writes_json(tmp_path):
    out = tmp_path/'screen.json'
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'screen_speed.py'), '--scale', 'quick', '--side', '1024', '--iters', '2',
                        '--ig_tiles', '1', '--repeats', '1', '--workers', '1', '--device', 'cpu', '--readers', 'process,thread', '--reads', 'block,tile',
                        '--slide', str(tmp_path/'bench.tif'), '--out', str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res['device'] == 'cpu' and res['tile'] == 128 and res['backbone'] == 'tiny_resnet'
    assert [row['mode'] for row in res['model_only']] == ['float32 eager'] and res['model_only'][0]['tiles_per_s'] > 0
    e2e = res['end_to_end']
    assert [(row['readers'], row['reads'], row['slide']) for row in e2e] == [(r, b, s) for r in ('process', 'thread') for b in ('block', 'tile')
                                                                             for s in ('bench-quarter.tif', 'bench.tif')]
    assert [row['grid_tiles'] for row in e2e] == [16, 64] * 4                            # 512 and 1024 px at 10X in 128-px tiles
    assert len({row['selected_tiles'] for row in e2e[1::2]}) == 1 and e2e[1]['selected_tiles'] > 0  # every way reads the same tiles
    assert all(row['peak_host_mb'] > 0 for row in e2e)
    assert [row['setting'] for row in res['integrated_gradients']][0].startswith('captum default')
    assert 'end to end (thread readers, tile reads)' in r.stdout and 'written:' in r.stdout


def test_gpu_suite_tiny_on_cpu(tmp_path):
    "Every step of the GPU suite at toy sizes on the CPU: the command the device runs, checked before any device time."
    import os
    out = tmp_path/'suite.json'
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'gpu_suite.py'), '--tiny', '--device', 'cpu', '--out', str(out)],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, 'CERVIX_DATA': str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [(e['readers'], e['reads']) for e in res['end_to_end']] == [(a, b) for a in ('process', 'thread')
                                                                       for b in ('block', 'tile')]
    assert all(e['selected_tiles_per_s'] > 0 for e in res['end_to_end'])
    b = res['breakdown']
    assert b['read_decode_tiles_per_s'] > 0 and b['host_to_device_tiles_per_s'] > 0 and b['model_tiles_per_s'] > 0
    assert res['trained_ig']['ig'][0]['setting'].startswith('captum default') and res['trained_ig']['tiles'] > 0
    assert res['precision'] == {'skipped': 'bf16 runs on CUDA only'}
    s3 = res['section3']
    assert [row['pipeline'] for row in s3['table']] == ['classifier', 'regressor', 'regression constraint']
    assert 'written:' in r.stdout and 'end to end' in r.stdout
