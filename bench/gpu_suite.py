#!/usr/bin/env python
"""The GPU suite: one command that measures what only a GPU can settle, and writes one JSON and a table.

1. End to end on the bench slide at 800 px (§4's tile) and 256 px (our paper-scale 10X tile): block vs tile reads,
   reader processes vs threads, the compiled bf16 model; selected and grid tiles/s, peak host and GPU memory.
2. Where the time goes at 800 px: reading and decoding alone (the readers, no model), host-to-device copies of the
   read batches, the model alone; tiles/s each, so the next step is chosen from a measurement.
3. Integrated Gradients at 800 px on a *trained* model (the quick §5.1 architecture trained for `--train_s`
   seconds on 800-px tiles of a generated smear, labelled by the cells on them): s/tile for captum's default and our
   settings, with correlation and relative error against 256 steps and the completeness gap.
4. bf16 vs fp32 scores of that model on every selected tile of a few generated smears: the largest difference, the
   tiles whose flag changes at the count rule's tile threshold, the slides whose decision changes.
5. §3 at paper scale (ResNet-101, 224 px, 4 folds, 3 pipelines) with as many epochs as fit in `--s3_s` seconds:
   the Fig. 2 table and its wall time.

`--tiny` runs every step at toy sizes (CPU, about a minute): what the test suite calls. On a device machine:

    bash bench/gpu_suite.sh            # installs the carried wheels (.whl/), then this script; JSON under $OUT
"""
import argparse, json, os, sys, time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screen_speed import bench_slide, end_to_end, ig_bench, model_only, sync  # noqa: E402

from cervix_nb.core import atomic_write, get_device, get_scale, seed_everything, versions  # noqa: E402
from cervix_nb.herlev import (PIPELINES, RegressionConstraint, SeverityNet, cross_validate,  # noqa: E402
                              herlev_counts, herlev_index, load_cells, synthetic_herlev)
from cervix_nb.baselines import build_tile_backbone  # noqa: E402
from cervix_nb.wsi import Slide, TileBlocks, default_workers, mag_grid, tile_batches, write_slide  # noqa: E402
from cervix_nb.clinical import (BINARY_W_R, read_tiles, select_tiles, tile_cells,  # noqa: E402
                                train_tile_classifier)
from cervix_nb.cohort import SmearScene  # noqa: E402
from cervix_nb.screen import PAPER_COUNT_RULE, ScreenSettings, prepare_scorer, screen_tiles  # noqa: E402


def step_end_to_end(model, pipe, device, slide, tiles, batch, workers, compile_):
    "Step 1: end to end per tile size, reads and readers, with the fastest model preparation."
    rows = []
    for tile in tiles:
        scorer = prepare_scorer(model, device, 'auto', compile_)
        tps, warm = model_only(scorer, pipe, device, tile, batch, 5)
        for readers in ('process', 'thread'):
            for reads in ('block', 'tile'):
                r = end_to_end(slide, scorer, pipe, device, tile, batch, workers, readers, reads)
                rows.append(dict(tile=tile, model_tiles_per_s=tps, warmup_s=warm, **r))
    return rows


def step_breakdown(model, pipe, device, slide, tile, batch, workers):
    "Step 2: reading alone, host-to-device alone, model alone, at one tile size."
    with Slide(slide) as s:
        grid = mag_grid(s.dimensions, s.scan_power, tile, 10)
        regions = TileBlocks(s, grid[['x', 'y']].to_numpy(), tile, 10, workers=max(1, workers))
        readers = 'process' if device.type == 'cuda' else 'thread'
        t0, n, kept = time.perf_counter(), 0, []
        for x, flat, idx in tile_batches(regions, batch, workers, readers, device.type == 'cuda'):
            n += len(idx)
            if len(kept) < 8: kept.append(x)
        read_s = time.perf_counter() - t0
    t0 = time.perf_counter(); moved = 0
    for _ in range(3):
        for x in kept: x.to(device, non_blocking=True); moved += len(x)
    sync(device); h2d_s = time.perf_counter() - t0
    tps, _ = model_only(prepare_scorer(model, device), pipe, device, tile, batch, 5)
    return dict(tile=tile, grid_tiles=n, read_decode_tiles_per_s=n / read_s,
                host_to_device_tiles_per_s=moved / max(h2d_s, 1e-9), model_tiles_per_s=tps)


def smear_tiles(side, tile, seeds):
    "Tiles (uint8, N x 3 x S x S) of generated smears at 10X, labelled 1 where an abnormal cell lies on them."
    xs, ys, slides = [], [], []
    for k, seed in enumerate(seeds):
        scene = SmearScene(side, side, seed=seed, abnormal_share=0.3 if k % 2 else 0.0)
        path = Path(os.environ.get('CERVIX_DATA', 'data'))/'outputs'/'bench'/f'suite-{side}-{seed}.svs'
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_slide(path, scene.render, side, side, desc='suite smear')
        with Slide(path) as s: grid = select_tiles(s, tile)
        grid = grid[grid.selected]
        cells = scene.cells()
        ys += [int((tile_cells(cells, r.x, r.y, r.size0, tile).severity > 1).any()) for r in grid.itertuples()]
        xs.append(read_tiles(grid.assign(slide_id='s'), {'s': path}, tile))
        slides.append((path, k % 2))
    return torch.cat(xs), np.array(ys), slides


def step_trained_ig(device, side, tile, seconds, ig_tiles, repeats, compile_):
    "Step 3: a quick-architecture classifier trained on 800-px smear tiles, then IG speed and fidelity."
    x, y, slides = smear_tiles(side, tile, seeds=(1, 2))
    scale = get_scale('quick')
    t0, epochs = time.time(), 1
    model, pipe, _ = train_tile_classifier(x, y, replace(scale, tile_epochs=1), device=device)
    per_epoch = time.time() - t0
    epochs = max(1, int(seconds / max(per_epoch, 1e-6)))
    if epochs > 1:
        model, pipe, _ = train_tile_classifier(x, y, replace(scale, tile_epochs=epochs), device=device)
    pick = torch.from_numpy(np.r_[np.flatnonzero(y == 1)[:ig_tiles // 2], np.flatnonzero(y == 0)[:ig_tiles]])
    rows = ig_bench(model.to(device), pipe, x[pick[:ig_tiles]], device, repeats, compiled=compile_)
    return model, pipe, slides, dict(tiles=len(x), abnormal=int(y.sum()), epochs=epochs,
                                     train_seconds=time.time() - t0, ig=rows)


def step_precision(model, pipe, slides, device, tile):
    "Step 4: bf16 vs fp32 scores of the trained model; flags and decisions that change."
    if device.type != 'cuda': return dict(skipped='bf16 runs on CUDA only')
    out, rule = [], PAPER_COUNT_RULE
    settings = ScreenSettings(tile=tile, workers=0)
    for path, label in slides:
        with Slide(path) as s:
            g32 = screen_tiles(s, prepare_scorer(model, device, 'fp32'), pipe, settings)
            g16 = screen_tiles(s, prepare_scorer(model, device, 'bf16'), pipe, settings)
        a, b = g32.score[g32.selected].to_numpy(), g16.score[g16.selected].to_numpy()
        flag32, flag16 = a >= rule['tile_threshold'], b >= rule['tile_threshold']
        out.append(dict(slide=Path(path).name, tiles=len(a), max_abs_diff=float(np.abs(a - b).max()),
                        flags_changed=int((flag32 != flag16).sum()),
                        decision_changed=bool((flag32.sum() >= rule['n_tiles']) != (flag16.sum() >= rule['n_tiles']))))
    return dict(slides=out, decisions_changed=sum(r['decision_changed'] for r in out))


def step_section3(device, seconds, tiny):
    "Step 5: §3 at paper scale with the epochs that fit in `seconds` (timed on one epoch first)."
    scale = get_scale('quick' if tiny else 'paper')
    scale = replace(scale, herlev_cells=70, herlev_folds=2, herlev_img=32) if tiny else scale
    cells = load_cells(herlev_index(synthetic_herlev(herlev_counts(scale.herlev_cells))), scale.herlev_img,
                       masks=False)
    pipelines = {k: P() for k, P in PIPELINES.items()}
    t0 = time.time()
    cross_validate(cells, {'classifier': pipelines['classifier']}, replace(scale, herlev_folds=2, herlev_epochs=1),
                   device=device)
    per_epoch = (time.time() - t0) / 2  # one epoch of one pipeline on one fold
    epochs = max(1, min(scale.herlev_epochs, int(seconds / (per_epoch * scale.herlev_folds * len(pipelines)))))
    t0 = time.time()
    per_fold, _, _ = cross_validate(cells, pipelines, replace(scale, herlev_epochs=epochs), device=device)
    table = per_fold.groupby('pipeline', sort=False)[['accuracy', 'binary_accuracy', 'auc', 'mse']].mean()
    return dict(scale=scale.name, backbone=scale.backbone, img=scale.herlev_img, folds=scale.herlev_folds,
                epochs=epochs, seconds=time.time() - t0, data='synthetic',
                table=table.round(4).reset_index().to_dict('records'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--tiny', action='store_true', help='every step at toy sizes (CPU, about a minute)')
    ap.add_argument('--device', default=None)
    ap.add_argument('--side', type=int, default=None, help='bench slide side at 10X (default 48000; tiny 1024)')
    ap.add_argument('--train_s', type=float, default=120, help='seconds of training for the IG model (step 3)')
    ap.add_argument('--s3_s', type=float, default=150, help='seconds for §3 at paper scale (step 5)')
    ap.add_argument('--out', default=None, help='JSON file (default $OUT/gpu_suite.json, else data/outputs/bench/)')
    a = ap.parse_args()
    device, t_start = get_device(a.device), time.time()
    tiny, cuda = a.tiny, get_device(a.device).type == 'cuda'
    side = a.side or (1024 if tiny else 48_000)
    tiles = (64,) if tiny else (800, 256)
    batch, workers = (8 if tiny else 64), (1 if tiny else default_workers())
    data = Path(os.environ.get('CERVIX_DATA', 'data'))
    slide = bench_slide(data/'outputs'/'bench'/f'bench-{side}px-10x.tif', side)
    seed_everything(0)
    pipe = RegressionConstraint(BINARY_W_R)
    big = SeverityNet(build_tile_backbone('tiny_resnet' if tiny else 'resnet101', pretrained=False), 2).eval()
    res = dict(device=str(device), device_name=torch.cuda.get_device_name(device) if cuda else 'cpu',
               cpu_cores=len(os.sched_getaffinity(0)), tiny=tiny, versions=versions(), slide_side=side)
    steps = [('end_to_end', lambda: step_end_to_end(big, pipe, device, slide, tiles, batch, workers, cuda)),
             ('breakdown', lambda: step_breakdown(big, pipe, device, slide, tiles[0], batch, workers))]
    for name, run in steps:
        t0 = time.time(); res[name] = run(); res[f'{name}_seconds'] = time.time() - t0
        print(f'{name}: done in {res[name + "_seconds"]:.0f} s', flush=True)
    t0 = time.time()
    model, tpipe, slides, res['trained_ig'] = step_trained_ig(
        device, 1024 if tiny else 16384, 64 if tiny else 800, 5 if tiny else a.train_s, 2 if tiny else 8,
        1 if tiny else 3, cuda)
    res['precision'] = step_precision(model, tpipe, slides, device, 64 if tiny else 800)
    res['section3'] = step_section3(device, 10 if tiny else a.s3_s, tiny)
    res['total_seconds'] = time.time() - t_start
    out = Path(a.out) if a.out else (Path(os.environ['OUT']) if os.environ.get('OUT') else data/'outputs'/'bench')
    out = out/'gpu_suite.json' if out.suffix != '.json' else out
    atomic_write(out, json.dumps(res, indent=1, default=str))
    print_table(res); print(f'written: {out}')


def print_table(res):
    "The suite's figures beside the targets."
    print(f"{res['device_name']}, {res['cpu_cores']} cores{' (tiny)' if res['tiny'] else ''}")
    for r in res['end_to_end']:
        print(f"  end to end {r['tile']:>4} px, {r['readers']:>7} readers, {r['reads']:>5} reads: "
              f"{r['selected_tiles_per_s']:8.1f} selected tiles/s (target 1,000; stretch 2,000)")
    b = res['breakdown']
    print(f"  at {b['tile']} px: read+decode {b['read_decode_tiles_per_s']:.0f}, host-to-device "
          f"{b['host_to_device_tiles_per_s']:.0f}, model {b['model_tiles_per_s']:.0f} tiles/s")
    for r in res['trained_ig']['ig']:
        print(f"  IG {r['setting']:<52} {r['seconds_per_tile']:.4f} s/tile (target 0.1; stretch 0.05), "
              f"corr vs 256 steps {r['corr_vs_256']:.3f}")
    p = res['precision']
    print('  bf16 vs fp32:', p.get('skipped') or f"{p['decisions_changed']} slide decisions changed, largest "
          f"score difference {max(r['max_abs_diff'] for r in p['slides']):.4f}")
    s = res['section3']
    print(f"  §3 at {s['scale']} scale ({s['backbone']}, {s['img']} px, {s['folds']} folds, {s['epochs']} epochs): "
          f"{s['seconds']:.0f} s")


if __name__ == '__main__':
    main()
