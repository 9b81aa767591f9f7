#!/usr/bin/env python
"""Integrated Gradients speed and accuracy, per tile, for the §4.4 regression-constraint tile model.

For each setting (captum's default call one tile at a time, tiles batched, fewer Gauss-Legendre steps,
the trapezoid rule, bf16 autocast on CUDA) it measures the seconds per tile (median of --repeats timed
runs after one warm-up) and the agreement with a 256-step Gauss-Legendre float32 reference on the same
tiles: Pearson correlation of the attribution maps, relative error ||a - ref|| / ||ref||, and the
completeness gap |sum(a) - (F(x) - F(baseline))| relative to |F(x) - F(baseline)|.

The model is the scale's tile model with the regression-constraint head: loaded from --weights (a
state_dict saved with torch.save, read with weights_only=True), or else trained here for
--train_epochs on the scale's §4.1 train tiles (generated on first use). Prints a table and writes JSON.

    python bench/ig_speed.py                       # quick scale, CPU
    CERVIX_SCALE=paper python bench/ig_speed.py --train_epochs 1 --tiles 16   # on a GPU
"""
import argparse, json, platform, statistics, time
from pathlib import Path

import numpy as np
import torch

from cervix_nb.core import get_scale, get_device, out_dir, atomic_write, seed_everything, environment
from cervix_nb.herlev import integrated_gradients, predict_outputs, train_model
from cervix_nb.tiles import synthetic_tiles, load_tiles
from cervix_nb.baselines import make_tile_model, RegressionConstraint

def settings(device: torch.device) -> list:
    "(name, steps, method, tiles per call, bf16) of every setting measured."
    s = [('captum default (50 steps, 1 tile per call)', 50, 'gausslegendre', 1, False),
         ('50 steps, 8 tiles per call', 50, 'gausslegendre', 8, False),
         ('16 steps Gauss-Legendre, 1 tile per call', 16, 'gausslegendre', 1, False),
         ('16 steps Gauss-Legendre, 8 tiles per call', 16, 'gausslegendre', 8, False),
         ('8 steps Gauss-Legendre, 8 tiles per call', 8, 'gausslegendre', 8, False),
         ('16 steps trapezoid, 8 tiles per call', 16, 'riemann_trapezoid', 8, False)]
    if device.type == 'cuda':
        s += [('50 steps, 8 tiles per call, bf16', 50, 'gausslegendre', 8, True),
              ('16 steps Gauss-Legendre, 8 tiles per call, bf16', 16, 'gausslegendre', 8, True)]
    return s

def run_ig(model, pipe, x, steps, method, per_call, bf16, device):
    ctx = torch.autocast('cuda', dtype=torch.bfloat16) if bf16 else torch.autocast('cpu', enabled=False)
    with ctx:
        a, d = integrated_gradients(model, pipe, x, steps=steps, batch_size=per_call, device=device, method=method)
    if device.type == 'cuda': torch.cuda.synchronize()
    return a.float(), d.float()

def agreement(a, ref):
    a, ref = a.flatten(1).double(), ref.flatten(1).double()
    corr = [float(np.corrcoef(u.numpy(), v.numpy())[0, 1]) for u, v in zip(a, ref)]
    rel = ((a - ref).norm(dim=1) / ref.norm(dim=1)).numpy()
    return float(np.mean(corr)), float(np.median(rel))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--scale', default=None, help="'quick' or 'paper' (default $CERVIX_SCALE, else quick)")
    ap.add_argument('--tiles', type=int, default=8, help='test tiles explained per setting')
    ap.add_argument('--repeats', type=int, default=3, help='timed runs per setting (after one warm-up)')
    ap.add_argument('--weights', default=None, help='state_dict of a trained regression-constraint tile model')
    ap.add_argument('--train_epochs', type=int, default=None, help='epochs to train here when --weights is not given (default: the scale\'s)')
    ap.add_argument('--device', default=None)
    ap.add_argument('--out', default=None, help='JSON file (default data/outputs/bench/ig_speed-<scale>-<device>.json)')
    args = ap.parse_args()
    scale, device = get_scale(args.scale), get_device(args.device)
    pipe = RegressionConstraint((1, 2, 3, 4, 5))
    root = synthetic_tiles(scale)
    test = load_tiles(root, 'test')
    x = test['x'][:args.tiles]
    seed_everything(0)
    model = make_tile_model(pipe, scale)
    if args.weights:
        model.load_state_dict(torch.load(args.weights, map_location='cpu', weights_only=True)); trained = f'weights {Path(args.weights).name}'
    else:
        epochs = args.train_epochs or scale.tile_epochs
        train = load_tiles(root, 'train')
        t0 = time.time()
        train_model(model, pipe, train['x'], train['severity'], epochs, scale.batch_size, scale.lr, seed=0, device=device, desc='training')
        trained = f'trained here: {epochs} epochs on {len(train["x"])} tiles in {time.time() - t0:.0f} s'
    model.to(device).eval()
    # the value IG must account for: F(x) - F(white) for the predicted class
    out, out_w = predict_outputs(model, x, device=device), predict_outputs(model, torch.full_like(x[:1], 255), device=device)
    k = pipe.predict(out) - 1
    dF = (pipe.explained(out)[torch.arange(len(k)), k] - pipe.explained(out_w)[0, k]).abs().double()
    ref, ref_d = run_ig(model, pipe, x, 256, 'gausslegendre', 8, False, device)
    rows = []
    for name, steps, method, per_call, bf16 in settings(device):
        run_ig(model, pipe, x[:per_call], steps, method, per_call, bf16, device)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter(); a, d = run_ig(model, pipe, x, steps, method, per_call, bf16, device); times.append(time.perf_counter() - t0)
        corr, rel = agreement(a, ref)
        rows.append(dict(setting=name, steps=steps, method=method, tiles_per_call=per_call, bf16=bf16,
                         seconds_per_tile=statistics.median(times) / len(x), corr_vs_256=corr, rel_error_vs_256=rel,
                         completeness_gap_rel=float((d.abs().double() / dF.clamp(min=1e-12)).median())))
    base = rows[0]['seconds_per_tile']
    for r in rows: r['speedup_vs_default'] = base / r['seconds_per_tile']
    res = dict(scale=scale.name, tile_px=scale.tile_size, backbone=scale.backbone, device=str(device),
               device_name=torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine(),
               threads=torch.get_num_threads(), tiles=len(x), repeats=args.repeats, model=trained,
               reference='256 steps Gauss-Legendre, float32', reference_completeness_gap_rel=float((ref_d.abs().double() / dF.clamp(min=1e-12)).median()),
               rows=rows, environment=environment())
    print(f"IG per tile: {scale.name} scale, {scale.backbone} on {scale.tile_size} px tiles, {device} ({res['device_name']}), {len(x)} tiles; model {trained}")
    print(f"{'setting':52s} {'s/tile':>8s} {'speedup':>8s} {'corr':>7s} {'rel err':>8s} {'gap':>8s}")
    for r in rows:
        print(f"{r['setting']:52s} {r['seconds_per_tile']:8.4f} {r['speedup_vs_default']:8.1f} {r['corr_vs_256']:7.4f} {r['rel_error_vs_256']:8.4f} {r['completeness_gap_rel']:8.4f}")
    print(f"reference (256 steps) completeness gap, relative: {res['reference_completeness_gap_rel']:.4f}")
    dest = Path(args.out) if args.out else out_dir('bench')/f'ig_speed-{scale.name}-{device.type}.json'
    atomic_write(dest, json.dumps(res, indent=1, default=str))
    print(f'written: {dest}')

if __name__ == '__main__': main()
