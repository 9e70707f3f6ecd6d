"""What the tests and the benchmarks share; never imported by the package itself.

- :mod:`.geometry`: the paper's scene geometry with overrides (``occ3d_geometry``).
- :mod:`.occ_inputs`: a ray-cast toy world as geometrically consistent detector inputs.
- :mod:`.tiny_model`: the golden tiny OccFlowNet, built from its config with overrides.
- :mod:`.flow_oracle`: the original flow-GT algorithm, directly (the oracle of ``sample_flow``).
- :mod:`.toy_occ`: a toy dataset and model for the runner, hook and tool tests (registered on
  import, e.g. ``custom_imports=dict(imports=['mmdet3d.testing.toy_occ'])``).
"""
