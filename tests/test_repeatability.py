"Repeatability and safety: the same seed gives the same numbers on CPU; checkpoints load without running code; ids never leave the output folder."
import ast, json, os, pickle, subprocess, sys
from pathlib import Path

import pandas as pd, pytest, torch

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CPU = {**os.environ, 'CERVIX_DEVICE': 'cpu', 'CERVIX_SCALE': 'quick'}
TINY = {**CPU, 'CERVIX_SCALE': 'tiny'}  # the plumbing scale: a whole section in seconds


def test_section_repeats_exactly(tmp_path):
    "§3 (01_herlev: three pipelines trained with cross-validation, IG nucleus shares) run twice from the command line on CPU (tiny scale: the same cells as quick, fewer cells and epochs): identical results and tables."
    for run in 'ab':
        r = subprocess.run([str(BIN/'cervix-reproduce'), '--sections', '01_herlev', '--out', str(tmp_path/run)],
                           capture_output=True, text=True, env={**TINY, 'CERVIX_DATA': str(tmp_path/'data')}, cwd=ROOT)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    a, b = (pd.read_csv(tmp_path/run/'summary.csv') for run in 'ab')
    assert len(a) >= 10 and a.ours.notna().all()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    tables = sorted(p.relative_to(tmp_path/'a') for p in (tmp_path/'a').rglob('*.csv')
                    if p.name != 'trainings.csv')  # each training's seconds and memory: not a result
    assert len(tables) >= 2
    for p in tables: assert (tmp_path/'a'/p).read_bytes() == (tmp_path/'b'/p).read_bytes(), f'{p} differs between two runs'


# §5.1 in small: a generated smear, tiles labelled by the cells they hold, the binary tile classifier under regression
# constraint trained with one seed, then §5.2-5.3's screening of the slide. Run twice in fresh processes.
TRAIN_AND_SCREEN = r'''
import dataclasses, hashlib, sys
from pathlib import Path
import numpy as np, torch
from cervix_nb.core import get_scale
from cervix_nb.wsi import Slide, write_slide
from cervix_nb.cohort import SmearScene
from cervix_nb.clinical import (select_tiles, read_tiles, tile_cells, train_tile_classifier,
                                binary_metrics)
from cervix_nb.screen import ScreenSettings, prepare_scorer, screen_tiles
slide, out = Path(sys.argv[1]), Path(sys.argv[2])
scene = SmearScene(2048, 2048, seed=5, abnormal_share=0.4)
if not slide.exists(): write_slide(slide, scene.render, 2048, 2048)
with Slide(slide) as s: grid = select_tiles(s, 64, 10)
cells = scene.cells()
y = np.array([int((tile_cells(cells, r.x, r.y, r.size0, 64).severity > 1).any()) for r in grid.itertuples()])
x = read_tiles(grid.assign(slide_id='s'), {'s': slide}, 64)
model, pipe, losses = train_tile_classifier(x, y, dataclasses.replace(get_scale('quick'), tile_epochs=2), seed=3, device='cpu')
with Slide(slide) as s: tiles = screen_tiles(s, prepare_scorer(model, 'cpu'), pipe, ScreenSettings(tile=64, workers=0))
tiles.to_csv(out/'tiles.csv', index=False)
state = b''.join(v.numpy().tobytes() for v in model.state_dict().values())
m = binary_metrics(y[tiles.selected], tiles.score[tiles.selected])
(out/'run.txt').write_text(f"{hashlib.sha256(state).hexdigest()} {losses} {sorted(m.items())} {y.sum()} {len(y)}")
'''


def test_tile_scores_repeat_exactly(tmp_path):
    "The §5.1 tile classifier trained twice with the same seed on the same tiles: the same weights, losses, metrics and every tile score."
    for run in 'ab':
        (tmp_path/run).mkdir()
        r = subprocess.run([sys.executable, '-c', TRAIN_AND_SCREEN, str(tmp_path/'smear.svs'), str(tmp_path/run)],
                           capture_output=True, text=True, env=CPU)
        assert r.returncode == 0, r.stderr[-3000:]
    a, b = ((tmp_path/run/'run.txt').read_text() for run in 'ab')
    assert a == b
    n_abnormal, n = map(int, a.split()[-2:])
    assert 0 < n_abnormal < n                                           # both classes were there to learn
    ta, tb = (pd.read_csv(tmp_path/run/'tiles.csv') for run in 'ab')
    assert ta.selected.sum() > 10 and ta.score.notna().sum() == ta.selected.sum()
    pd.testing.assert_frame_equal(ta, tb, check_exact=True)


def _load_calls(tree):
    "Every call of torch.load in a parsed module, with whether it passes weights_only=True."
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'load' \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == 'torch':
            yield node.lineno, any(k.arg == 'weights_only' and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords)


def test_torch_load_only_with_weights_only():
    "Every torch.load in the library, the notebooks, the benches, the CI scripts and the tests passes weights_only=True."
    sources = {p: p.read_text() for p in [*(ROOT/'cervix_nb').glob('*.py'), *(ROOT/'bench').glob('*.py'), *(ROOT/'.ci').glob('*.py'), *(ROOT/'tests').glob('*.py')]}
    for nb in (ROOT/'nbs').glob('*.ipynb'):
        cells = json.loads(nb.read_text())['cells']
        sources[nb] = '\n'.join(''.join(l for l in c['source'] if not l.lstrip().startswith(('%', '!')))
                                for c in cells if c['cell_type'] == 'code')
    calls = {(p.name, line): ok for p, src in sources.items() for line, ok in _load_calls(ast.parse(src))}
    assert any(p == 'clinical.py' for p, _ in calls), 'load_checkpoint should be among the calls found'
    assert all(calls.values()), f'torch.load without weights_only=True: {[k for k, ok in calls.items() if not ok]}'


class _Payload:
    "A pickle that runs code when it is loaded with full unpickling: what a tampered checkpoint could hold."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.write_text, (Path(self.marker), 'code ran'))


def test_checkpoint_with_code_is_refused_without_running_it(tmp_path):
    from cervix_nb.clinical import load_checkpoint
    marker = tmp_path/'ran.txt'
    ck, raw = tmp_path/'model.pt', tmp_path/'raw.pt'
    torch.save({'state_dict': {}, 'meta': _Payload(marker)}, ck)        # torch's zip format
    with open(raw, 'wb') as f: pickle.dump({'state_dict': {}, 'meta': _Payload(marker)}, f)  # a bare pickle named .pt
    for p in (ck, raw):
        with pytest.raises(Exception) as e: load_checkpoint(p)
        assert str(p) in str(e.value) and 'not a checkpoint torch can load safely' in str(e.value)
    assert not marker.exists()                                          # nothing in either file was executed
    with open(raw, 'rb') as f: pickle.load(f)                           # ... which a plain pickle load does
    assert marker.read_text() == 'code ran'


def test_slide_ids_never_leave_the_output_folder(tmp_path):
    "An id from a slides table, a slide's file name or a screening call that would name a folder outside `out` is refused before anything is written."
    from cervix_nb.core import CervixError
    from cervix_nb.core import safe_slide_id
    for bad in ['../../x', '..', '.', 'a/b', 'a\\b', '', ' x', '.hidden', 'x\0y']:
        with pytest.raises(CervixError, match='a slide id must be a plain name'): safe_slide_id(bad)
    assert safe_slide_id('S-01_a.b') == 'S-01_a.b'
    assert list(tmp_path.iterdir()) == []
