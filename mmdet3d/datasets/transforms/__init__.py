"""Data pipeline transforms (spec 4.3; contracts in docs/data_flow.md section 2).

Training order: PrepareImageInputs -> [LoadOccGTFromFile] -> LoadPointsFromFile ->
PointToMultiViewDepth -> GenerateRays -> [LoadFlowGT] -> LoadAnnotationsBEVDepth (the BEV
augmentation of all ground truth) -> PackOccInputs.
"""
