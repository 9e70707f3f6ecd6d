"""HTML viewer: self-contained page, traces per class and layer; loads in headless Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from mmdet3d.structures.occ3d import FREE_LABEL, GRID_SHAPE
from mmdet3d.visualization.html_viewer import occupancy_figure, write_occupancy_html

CAR, TRUCK, ROAD = 4, 10, 11
BROWSERS = ('chromium', 'chromium-browser', 'google-chrome')
# Reports page errors (console.error, uncaught exceptions, failed resources, rejected promises)
# and what was drawn, as one console line, 2 s after the load event.
ERROR_HOOK = """<script>
window.__viewerErrors = [];
const __consoleError = console.error;
console.error = (...a) => { window.__viewerErrors.push(a.map(String).join(' '));
                            __consoleError(...a); };
window.addEventListener('error', e => window.__viewerErrors.push(
    'error: ' + (e.message || (e.target && (e.target.src || e.target.href)) || 'resource')), true);
window.addEventListener('unhandledrejection', e => window.__viewerErrors.push(
    'rejection: ' + e.reason));
window.addEventListener('load', () => setTimeout(() => {
  const plot = document.querySelector('.js-plotly-plot');
  console.log('VIEWER_CHECK ' + JSON.stringify({errors: window.__viewerErrors,
    traces: plot && plot.data ? plot.data.length : 0,
    canvases: document.querySelectorAll('canvas').length}));
}, 2000));
</script>"""


def _street() -> tuple[np.ndarray, np.ndarray]:
    """(200, 200, 16) GT and prediction: road, a car (predicted as a truck), a wall."""
    gt = np.full(GRID_SHAPE, FREE_LABEL, np.uint8)
    gt[..., 1] = ROAD
    gt[120:135, 95:105, 2:6] = CAR
    gt[60:180, 150:153, 2:12] = 15
    pred = gt.copy()
    pred[pred == CAR] = TRUCK
    return gt, pred


def test_figure_layers_and_legend_groups():
    gt = np.full((10, 10, 4), FREE_LABEL, np.uint8)
    gt[..., 0] = ROAD
    gt[4:6, 4:6, 1:3] = CAR
    pred = gt.copy()
    pred[pred == CAR] = TRUCK
    fig = occupancy_figure(pred, gt, np.ones_like(gt), title='t', pc_range=(0, 0, 0, 10, 10, 4))
    names = [(t.name, t.visible) for t in fig.data]
    assert names[0] == ('ego vehicle', True)
    assert ('4 car', False) in names and ('10 truck', True) in names  # GT hidden at first
    assert ('11 driveable_surface', True) in names and ('11 driveable_surface', False) in names
    assert ('wrong class', False) in names
    assert {t.legendgroup for t in fig.data if t.name == '11 driveable_surface'} == \
        {'11 driveable_surface'}  # one group per class: a legend click toggles all layers
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ['prediction', 'ground truth', 'disagreement']
    gt_visible = buttons[1].args[0]['visible']
    assert gt_visible == [True] + [layer == 'gt' for layer in
                                   ['pred'] * 2 + ['gt'] * 2 + ['dis']]
    car = next(t for t in fig.data if t.name == '4 car')
    # a 2x2x2 block: 24 unit faces merged into rows of 2 -> 12 quads -> 24 triangles
    assert len(car.i) == 24 and np.asarray(car.x).min() == 4 and np.asarray(car.z).max() == 3


def test_page_is_self_contained(tmp_path):
    gt, pred = _street()
    path = write_occupancy_html(str(tmp_path / 'sample.html'), pred, gt, None, 'street')
    html = open(path, encoding='utf-8').read()
    assert not re.search(r'<script[^>]+src=', html)  # plotly.js inlined, nothing fetched
    assert 'Plotly.newPlot' in html
    assert os.path.getsize(path) < 12e6  # ~4.8 MB plotly.js + the merged faces
    assert not [p for p in os.listdir(tmp_path) if p != 'sample.html']  # no temporary left


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f'no headless browser ({", ".join(BROWSERS)}) on PATH; install one, e.g. '
                '`apt-get install -y chromium`, to run the browser test')


def screenshot_page(browser: str, page: str, png: str, user_dir: str,
                    size: tuple[int, int] = (1280, 800)) -> str:
    """Load ``page`` in headless Chromium without network, screenshot it; returns the log."""
    cmd = [browser, '--headless', '--no-sandbox', '--disable-gpu', '--use-angle=swiftshader',
           '--host-resolver-rules=MAP * ~NOTFOUND',  # any network request fails (and reports)
           '--enable-unsafe-swiftshader', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run',
           '--hide-scrollbars', f'--user-data-dir={user_dir}', '--enable-logging=stderr',
           '--v=0', f'--window-size={size[0]},{size[1]}', '--virtual-time-budget=20000',
           f'--screenshot={png}', f'file://{page}']
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert os.path.isfile(png), f'no screenshot; chromium said:\n{done.stderr[-3000:]}'
    return done.stderr


def test_page_loads_in_a_browser_without_errors(tmp_path):
    browser = _browser()
    gt, pred = _street()
    path = write_occupancy_html(str(tmp_path / 'sample.html'), pred, gt, None, 'street')
    html = open(path, encoding='utf-8').read()
    checked = tmp_path / 'checked.html'
    checked.write_text(html.replace('<head>', '<head>' + ERROR_HOOK, 1), encoding='utf-8')
    start = time.perf_counter()
    log = screenshot_page(browser, str(checked), str(tmp_path / 'shot.png'),
                          str(tmp_path / 'profile'))
    elapsed = time.perf_counter() - start
    reports = re.findall(r'VIEWER_CHECK (\{.*?\})"', log)
    assert reports, f'the page never reported (did it load?); chromium said:\n{log[-3000:]}'
    report = json.loads(reports[-1].replace('\\"', '"').replace("\\'", "'"))
    assert report['errors'] == []
    assert report['traces'] == 1 + 3 + 3 + 1  # ego, pred (road, wall, truck), GT, wrong class
    assert report['canvases'] >= 1
    assert elapsed < 60  # a few seconds for a 200x200x16 volume
    shot = np.asarray(Image.open(tmp_path / 'shot.png').convert('RGB')).astype(int)
    plot = shot[100:700, 100:1000]
    assert plot.std() > 10  # not blank
    magenta = (plot[..., 0] > 120) & (plot[..., 1] < 60) & (plot[..., 2] > 120)
    assert magenta.sum() > 1000  # the road (driveable surface) was drawn by WebGL
