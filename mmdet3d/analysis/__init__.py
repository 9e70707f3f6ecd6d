"""Analysis helpers of the tools: what a tool computes that is neither a metric nor drawing.

- :mod:`.training_diagnostics`, :mod:`.free_space`: ``tools/analysis_tools/diagnose_training.py``.
- :mod:`.flow_mechanism`: ``tools/analysis_tools/flow_mechanism.py``.
- :mod:`.prior_baseline`: ``tools/eval_prior.py``.
- :mod:`.class_frequencies`: ``tools/misc/class_frequencies.py``.
- :mod:`.training_sample`, :mod:`.render_inspection`: one training-pipeline sample, the model
  built from a config, and the rendering of its LiDAR rays (``tools/visualize_render.py``,
  ``diagnose_training.py``).

May import every other package of ``mmdet3d`` but ``testing``; only the tools (and tests) import
it (docs/architecture.md, "Import rules"). Nothing is imported here: import the module you need.
"""
