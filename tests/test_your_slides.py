"""A user's own slides through §5: a slides table laid out as a user writes it (relative paths, QuPath point
GeoJSON, train / val / test splits, no ground truth beside the slides), run by `cervix-reproduce` for 05 and 06."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np, pandas as pd

BIN = Path(sys.executable).parent


def test_sections_05_06_on_a_users_slides_table(tmp_path):
    from cervix_nb.cohort import write_cohort
    gen = tmp_path/'generated'
    write_cohort(gen, 3, 2048, seed=7, abnormal_cells=(8, 12))
    mine = tmp_path/'my slides'; (mine/'scans').mkdir(parents=True)
    t = pd.read_csv(gen/'slides.csv').fillna('')
    for r in t.itertuples():   # only what a user has: the slides and the points, no per-cell truth
        shutil.copy(gen/r.path, mine/'scans'/r.path)
        if r.annotations: shutil.copy(gen/r.annotations, mine/'scans'/r.annotations)
    t['split'] = t.slide_id.str[-1].map({'0': 'train', '1': 'val', '2': 'test'})
    t['path'] = 'scans/' + t.path
    t['annotations'] = np.where(t.annotations != '', 'scans/' + t.annotations, '')
    t.to_csv(mine/'slides.csv', index=False)
    env = {**os.environ, 'CERVIX_SLIDES': str(mine/'slides.csv'), 'CERVIX_SCALE': 'tiny'}  # plumbing scale
    r = subprocess.run([str(BIN/'cervix-reproduce'), '--sections', '05_clinical,06_slides', '--out', str(tmp_path/'run')],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    summary = pd.read_csv(tmp_path/'run'/'summary.csv')
    assert set(summary.section) == {'05_clinical', '06_slides'} and set(summary.data) == {'real'}, summary
    log05 = (tmp_path/'run'/'05_clinical'/'run.log').read_text()
    assert '6 real slides from' in log05 and 'Faster R-CNN: not trained' in log05
    log06 = (tmp_path/'run'/'06_slides'/'run.log').read_text()
    assert 'stitching: skipped' in log06 and 'prevalence sweep: skipped' in log06
    from cervix_nb.clinical import load_checkpoint
    meta = load_checkpoint(tmp_path/'run'/'05_clinical'/'tile_classifier.pt')[2]
    assert meta['extra']['data'] == 'real' and str(mine/'slides.csv') in meta['extra']['slides']
