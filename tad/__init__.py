"""tad: transfer anomaly detection with pretrained CNN features, after Ono & Mori.

Pipeline: `tad.data` (images; `tad.download` fetches MVTec AD) -> `tad.backbones` + `tad.features`
(pooled activations, cached) -> `tad.reduce` (PCA / NPCA) -> `tad.estimators` (MVG, k-NN, flow) ->
`tad.evaluate` (AUROC); `tad.sweep` runs trials and grids, `tad.cli` from the shell.
"""

__version__ = "0.1.0"
