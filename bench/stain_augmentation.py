"""Issue 20 work in progress: does a random slide stain (`stain_matrix`, the generator's own stain model) as
training augmentation remove the quick §5.1 classifier's stain shortcut? Prints the tile AUC on the val + test
slides and the median score of every held-out normal slide. EP sets the epochs (default: the quick scale's).
Usage: EP=15 python bench/stain_augmentation.py 2.0
"""
import sys, numpy as np, pandas as pd, torch
from pathlib import Path
from cervix_nb.core import get_scale
from cervix_nb.clinical import *
from cervix_nb.herlev import RegressionConstraint, train_model
from cervix_nb.baselines import make_tile_model, predict_outputs
from cervix_nb.core import seed_everything
from dataclasses import replace
scale = replace(get_scale('quick'), tile_epochs=int(__import__('os').environ.get('EP', 15))); T = 128
sl = read_slides_table(Path('data/synthetic/cohort-8192px-12-seed0-v3/slides.csv'), training=False)
grids = {}
for r in sl.itertuples():
    with open_slide(r) as s: grids[r.slide_id] = select_tiles(s, T)
t = tile_table(sl, grids); x = read_tiles(t, sl, T)
tr, te = (t.split == 'train').to_numpy(), (t.split != 'train').to_numpy()
def stain_aug(strength):
    def f(xb, g):
        rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g)))
        M = torch.from_numpy(np.stack([stain_matrix(rng, strength) for _ in range(len(xb))])).to(xb.device)
        y = torch.einsum('nij,njhw->nihw', M, xb).clamp(0, 1)
        return hed_jitter(y, g, STAIN_SIGMA)
    return f
for strength in map(float, sys.argv[1:]):
    for seed in (0,):
        pipe = RegressionConstraint(BINARY_W_R); seed_everything(seed); model = make_tile_model(pipe, scale)
        idx = torch.from_numpy(oversample(t.label[tr].to_numpy(), seed))
        y = torch.as_tensor(t.label[tr].to_numpy(), dtype=torch.long)[idx] + 1
        train_model(model, pipe, x[tr][idx], y, scale.tile_epochs, scale.batch_size, scale.lr, seed=seed, desc='aug', transform=stain_aug(strength))
        s = pipe.score(predict_outputs(model.cpu(), x, batch_size=32)).numpy()
        med = pd.Series(s[te]).groupby(t.slide_id[te].values).median()
        print('RESULT strength', strength, seed, 'AUC', round(binary_metrics(t.label[te], s[te])['auc'], 3), med[[i for i in med.index if i.startswith('normal')]].round(2).tolist(), flush=True)
