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
