"""Diagnose §5.1 tile-classifier shortcuts on the quick synthetic cohort (issue 20, work in progress).

Trains the quick tile classifier on the cohort's train slides with HED jitter of the given strengths, two seeds
each, and prints the tile AUC on the val + test slides and the median tile score of every held-out slide: a
classifier that learnt slide stain instead of cells flags whole normal slides (medians near 1).
Usage: python bench/stain_shortcut.py 0.1 0.2   (run `make reproduce` or 05_clinical once first)
"""
import sys, numpy as np, pandas as pd, torch
from pathlib import Path
from cervix_nb.core import get_scale
from cervix_nb.clinical import *
from cervix_nb.baselines import predict_outputs
scale = get_scale('quick'); T = 128
sl = read_slides_table(Path('data/synthetic/cohort-8192px-12-seed0-v3/slides.csv'), training=False)
grids = {}
for r in sl.itertuples():
    with open_slide(r) as s: grids[r.slide_id] = select_tiles(s, T)
t = tile_table(sl, grids); x = read_tiles(t, sl, T)
tr, te = (t.split == 'train').to_numpy(), (t.split != 'train').to_numpy()
for sig in map(float, sys.argv[1:]):
    for seed in (0, 1):
        m, p, _ = train_tile_classifier(x[tr], t.label[tr], scale, seed=seed, stain_sigma=sig)
        s = p.score(predict_outputs(m, x, batch_size=32)).numpy()
        med = pd.Series(s[te]).groupby(t.slide_id[te].values).median()
        print('sigma', sig, 'seed', seed, 'AUC val+test', round(binary_metrics(t.label[te], s[te])['auc'], 3), 'normal slide medians', med[[i for i in med.index if i.startswith('normal')]].round(2).tolist(), flush=True)
