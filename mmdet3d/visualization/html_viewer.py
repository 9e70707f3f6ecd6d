"""Interactive occupancy viewer: one self-contained HTML file per sample (plotly, WebGL).

Each layer (prediction, ground truth, disagreement) holds one ``Mesh3d`` per class built from
the exposed faces of that class's voxels (a face is kept when its neighbour is not of the same
class), so a class can be hidden from the legend without opening holes in the others. The
buttons switch layers, a legend click toggles a class in every layer (one ``legendgroup`` per
class). plotly.js is inlined: the page needs no server and no network.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from mmdet3d.structures.occ3d import CLASS_NAMES, POINT_CLOUD_RANGE
from mmdet3d.utils.file_io import atomic_open

from .occ_palette import OCC3D_PALETTE
from .voxel_faces import (FACE_SHADE, QUAD_TRIANGLES, VoxelFaces, exposed_faces, merge_face_runs,
                          occupied_voxels)
from .voxel_view import (DISAGREEMENT_NAMES, DISAGREEMENT_PALETTE, EGO_BOX, EGO_COLOR,
                         disagreement_volume)

#: Plotly camera of the initial view: behind and above the ego vehicle (scene-box units).
INITIAL_CAMERA = dict(eye=dict(x=-1.1, y=0.0, z=0.55), center=dict(x=0.0, y=0.0, z=-0.15),
                      up=dict(x=0.0, y=0.0, z=1.0))


def _rgb(color: np.ndarray, scale: float = 1.0) -> str:
    r, g, b = (int(round(float(c) * scale)) for c in color)
    return f'rgb({r},{g},{b})'


def faces_mesh(faces: VoxelFaces, color: np.ndarray, name: str, group: str,
               visible: bool) -> go.Mesh3d:
    """One ``Mesh3d`` of quads in one colour, shaded per face direction.

    Shared corners are merged; the per-triangle ``intensity`` is the face's
    :data:`~.voxel_faces.FACE_SHADE` and the two-stop colour scale maps it to the shaded colour.

    Args:
        faces: the faces (F quads). color: (3,) uint8 RGB. name: legend entry.
        group: legend group (a click toggles every trace of the group). visible: shown at first.
    """
    corners = np.round(faces.corners.reshape(-1, 3), 4).astype(np.float32)
    vertices, index = np.unique(corners, axis=0, return_inverse=True)
    triangles = index.reshape(-1, 4)[:, QUAD_TRIANGLES].reshape(-1, 3).astype(np.int32)
    shade = np.repeat(FACE_SHADE[faces.directions], len(QUAD_TRIANGLES)).astype(np.float32)
    low = float(FACE_SHADE.min())
    return go.Mesh3d(
        x=vertices[:, 0], y=vertices[:, 1], z=vertices[:, 2],
        i=triangles[:, 0], j=triangles[:, 1], k=triangles[:, 2],
        intensity=shade, intensitymode='cell', cmin=low, cmax=1.0, showscale=False,
        colorscale=[[0.0, _rgb(color, low)], [1.0, _rgb(color)]],
        flatshading=True, lighting=dict(ambient=1.0, diffuse=0.0, specular=0.0, fresnel=0.0),
        name=name, legendgroup=group, showlegend=True, visible=visible, hoverinfo='name')


def layer_meshes(volume: np.ndarray, occupied: np.ndarray, palette: np.ndarray,
                 names: Sequence[str], pc_range: Sequence[float], visible: bool
                 ) -> list[go.Mesh3d]:
    """One mesh per label present in ``volume[occupied]`` (labels index ``palette``/``names``);
    rows of coplanar faces are merged (:func:`~.voxel_faces.merge_face_runs`)."""
    meshes = []
    for label in np.unique(volume[occupied]):  # loop over the classes present
        faces = merge_face_runs(exposed_faces(volume, occupied & (volume == label), pc_range))
        name = names[label]
        meshes.append(faces_mesh(faces, palette[label], name, name, visible))
    return meshes


def occupancy_figure(pred: np.ndarray, gt: np.ndarray | None = None,
                     mask: np.ndarray | None = None, title: str = '',
                     pc_range: Sequence[float] = POINT_CLOUD_RANGE) -> go.Figure:
    """The viewer's figure: layer buttons, class legend, the ego vehicle as a dark box.

    Args:
        pred: (X, Y, Z) predicted labels (17 = free). gt: (X, Y, Z) GT labels or None.
        mask: (X, Y, Z) visibility applied to every layer, or None. Defaults to None.
        title: figure title. Defaults to ''.
        pc_range: metric extent of the volumes. Defaults to the Occ3D range.
    """
    class_names = [f'{c} {n}' for c, n in enumerate(CLASS_NAMES)]
    layers = {'prediction': layer_meshes(pred, occupied_voxels(pred, mask), OCC3D_PALETTE,
                                         class_names, pc_range, visible=True)}
    if gt is not None:
        layers['ground truth'] = layer_meshes(gt, occupied_voxels(gt, mask), OCC3D_PALETTE,
                                              class_names, pc_range, visible=False)
        codes = disagreement_volume(gt, pred, mask)
        layers['disagreement'] = layer_meshes(codes, codes > 0, DISAGREEMENT_PALETTE,
                                              DISAGREEMENT_NAMES, pc_range, visible=False)
    ego = exposed_faces(np.zeros((1, 1, 1), np.uint8), np.ones((1, 1, 1), bool), EGO_BOX)
    traces = [faces_mesh(ego, EGO_COLOR, 'ego vehicle', 'ego vehicle', True)]
    owner = [None]
    for name, meshes in layers.items():
        traces += meshes
        owner += [name] * len(meshes)
    buttons = [dict(label=name, method='update',
                    args=[dict(visible=[o is None or o == name for o in owner])])
               for name in layers]
    x0, y0, z0, x1, y1, z1 = pc_range
    axis = dict(showbackground=False, gridcolor='rgb(220,220,220)')
    fig = go.Figure(traces)
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)), paper_bgcolor='white',
        margin=dict(l=0, r=0, t=40, b=0), legend=dict(title=dict(text='class (click: toggle)')),
        updatemenus=[dict(type='buttons', direction='right', buttons=buttons, x=0.0, y=1.0,
                          xanchor='left', yanchor='top', showactive=True)],
        scene=dict(xaxis=dict(title='x forward [m]', range=[x0, x1], **axis),
                   yaxis=dict(title='y left [m]', range=[y0, y1], **axis),
                   zaxis=dict(title='z [m]', range=[z0, z1], **axis),
                   aspectmode='manual', aspectratio=dict(x=1.0, y=(y1 - y0) / (x1 - x0),
                                                         z=2 * (z1 - z0) / (x1 - x0)),
                   camera=INITIAL_CAMERA))
    return fig


def write_occupancy_html(path: str, pred: np.ndarray, gt: np.ndarray | None = None,
                         mask: np.ndarray | None = None, title: str = '',
                         pc_range: Sequence[float] = POINT_CLOUD_RANGE) -> str:
    """Write :func:`occupancy_figure` as one self-contained HTML file (atomically).

    Heights are exaggerated 2x. Returns ``path``.
    """
    fig = occupancy_figure(pred, gt, mask, title, pc_range)
    html = fig.to_html(include_plotlyjs=True, full_html=True, default_height='96vh',
                       config=dict(displaylogo=False, responsive=True))
    with atomic_open(path) as f:
        f.write(html.encode('utf-8'))
    return path
