"""The project's file formats: one module per kind of file, its reader(s), writer and checks.

- :mod:`.info_pkl`: the BEVDet/OccFlowNet info pkls (plain-data reader, atomic writer).
- :mod:`.occ3d_labels`: the Occ3D ground truth ``labels.npz`` (checked reader, header check).
- :mod:`.occ_predictions`: the predicted volumes ``<out>/<scene>/<token>.npz`` and their folder.
- :mod:`.flow_rows`: the occupancy-flow ground truth ``<flow_root>/<scene>/<token>.npz``.

Imports only :mod:`mmdet3d.structures` and :mod:`mmdet3d.utils`, so that ``datasets``,
``evaluation``, ``engine`` and the tools read and write the files without importing each other
(docs/architecture.md, "Import rules"). Nothing is imported here: import the module you need.
Named ``formats``, not ``io`` (the standard-library module these readers use for ``BytesIO``) nor
``fileio`` (mmengine's storage back-ends, another concept).
"""
