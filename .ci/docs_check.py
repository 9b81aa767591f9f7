#!/usr/bin/env python
"""Docs check without Quarto: nbdev_proc_nbs, every processed notebook to HTML with nbconvert, then headless Chromium.

Usage: python .ci/docs_check.py [--no-browser]
Writes _docs/<output-file>.html (the name Quarto would give) and _docs/screenshots/*.png.
Fails (exit 1) when a notebook does not convert, a page has no title heading, or Chromium cannot render
the index page and one section page. Without Chromium it fails under CI=true and otherwise warns.
"""
import html, os, re, shutil, subprocess, sys, tempfile
from pathlib import Path

import nbformat, yaml
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor
import nbdev.quarto

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT/'_docs'
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars', '--window-size=1280,1600']

def proc_nbs() -> Path:
    "Run nbdev_proc_nbs as nbdev_docs would, minus its Quarto download (Quarto is not used to process notebooks)."
    nbdev.quarto._ensure_quarto = lambda: None
    os.chdir(ROOT)
    nbdev.quarto.nbdev_proc_nbs.__wrapped__()
    return ROOT/'_proc'

def front_matter(nb) -> dict:
    "The YAML front matter nbdev puts in a processed notebook's first raw cell."
    cell = nb.cells[0] if nb.cells else None
    if cell is None or cell.cell_type != 'raw' or not cell.source.lstrip().startswith('---'): return {}
    return yaml.safe_load(cell.source.strip().strip('-')) or {}

QUARTO_ATTRS = re.compile(r'\{(?:target|style|\.)[^}\n]*\}')

def quarto_like(cell):
    "Apply what Quarto would of a cell's `#|` options: hide the source of `echo: false` cells, drop the option lines and Quarto's link attributes."
    if cell.cell_type == 'code':
        lines = cell.source.splitlines()
        opts = [l[3:].strip() for l in lines if l.startswith('#| ')]
        cell.source = '\n'.join(l for l in lines if not l.startswith('#| '))
        if 'echo: false' in opts: cell.metadata.setdefault('tags', []).append('remove_input')
        for out in cell.get('outputs', []):
            data = out.get('data', {})
            if 'text/markdown' in data: data['text/markdown'] = QUARTO_ATTRS.sub('', data['text/markdown'])
    elif cell.cell_type == 'markdown': cell.source = QUARTO_ATTRS.sub('', cell.source)
    return cell

def to_html(src: Path) -> tuple:
    "One processed notebook -> (output file name, HTML), with the front matter's title as the page's H1."
    nb = nbformat.read(src, as_version=4)
    fm = front_matter(nb)
    title = fm.get('title')
    if not title: raise ValueError(f"{src.name}: no title (the notebook must open with '# Title' then '> subtitle')")
    head = f"# {title}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
    nb.cells = [nbformat.v4.new_markdown_cell(head)] + [quarto_like(c) for c in nb.cells[1:]]
    exporter = HTMLExporter(template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': title}})
    return fm.get('output-file', src.stem + '.html'), body

def has_title_heading(page: str) -> bool:
    m = re.search(r'<h1[^>]*>(.*?)</h1>', page, flags=re.S)
    return bool(m and re.sub(r'<[^>]+>', '', html.unescape(m.group(1))).strip(' ¶\n'))

def find_chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name): return shutil.which(name)

def browse(chromium: str, page: Path, shot: Path) -> None:
    "Render `page` headless: the DOM must hold a title heading and the screenshot must be a PNG."
    with tempfile.TemporaryDirectory() as prof:
        flags = CHROMIUM_FLAGS + [f'--user-data-dir={prof}']
        dom = subprocess.run([chromium, *flags, '--dump-dom', page.as_uri()], capture_output=True, text=True, timeout=120).stdout
        if not has_title_heading(dom): raise RuntimeError(f"{page.name}: Chromium rendered no title heading")
        subprocess.run([chromium, *flags, f'--screenshot={shot}', page.as_uri()], capture_output=True, timeout=120)
    if not shot.exists() or shot.read_bytes()[:4] != b'\x89PNG': raise RuntimeError(f"{page.name}: no screenshot from Chromium")

def main(browser=True) -> int:
    proc = proc_nbs()
    shutil.rmtree(OUT, ignore_errors=True); (OUT/'screenshots').mkdir(parents=True)
    notebooks = sorted(proc.glob('*.ipynb'))
    errors, pages = [], {}
    for src in notebooks:
        try:
            name, page = to_html(src)
            if not has_title_heading(page): raise ValueError(f"{src.name}: page has no title heading")
            (OUT/name).write_text(page, encoding='utf-8'); pages[src.stem] = OUT/name
        except Exception as e: errors.append(f"{src.name}: {e}")
    print(f"docs: {len(pages)} of {len(notebooks)} notebooks converted to HTML in {OUT.relative_to(ROOT)}/")
    sections = [s for s in pages if s != 'index']
    chromium = find_chromium() if browser else None
    if browser and not chromium:
        msg = "docs: Chromium not found (Debian: apt-get install chromium); pages not rendered in a browser"
        if os.environ.get('CI', '').lower() == 'true': errors.append(msg)
        else: print("WARNING " + msg)
    elif chromium:
        for stem in [s for s in ['index'] if s in pages] + sections[:1]:
            try:
                browse(chromium, pages[stem], OUT/'screenshots'/f'{stem}.png')
                print(f"docs: Chromium rendered {pages[stem].name} -> _docs/screenshots/{stem}.png")
            except Exception as e: errors.append(str(e))
        if 'index' not in pages: errors.append('index.ipynb: no docs home page')
    for e in errors: print('docs check FAILED:', e, file=sys.stderr)
    if not errors: print('docs check passed')
    return 1 if errors else 0

if __name__ == '__main__': sys.exit(main(browser='--no-browser' not in sys.argv))
