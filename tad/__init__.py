"""tad: transfer anomaly detection with pretrained CNN features, after Ono & Mori.

Pipeline: `tad.data` (images; `tad.download` fetches MVTec AD) -> `tad.backbones` + `tad.features`
(activations pooled or kept as maps, cached by `tad.cache`) -> `tad.reduce` (PCA / NPCA) ->
`tad.estimators` (MVG, k-NN, flow) -> `tad.evaluate` (AUROC, PRO, operating points). Around it: `tad.stats`
(intervals, comparisons, verdicts), `tad.selection` (choices made from training images only), `tad.maps`
(per-position scores), `tad.baselines`, `tad.analysis` (why NPCA works), `tad.cost`; `tad.trial` turns
configurations into scores and result rows, `tad.sweep` runs grids of them (on Dask) into `tad.results`;
`tad.presets` holds the paper's study; `tad.scorecard` says which of the paper's claims replicate; `tad.shift`
tests training against test images for acquisition shifts; `tad.patch` holds PaDiM and PatchCore. `tad.book`
(the page kit: setup, glue, formats, rankings and the sentences a page builds from its numbers) and
`tad.plots` serve the book's pages; `tad.cli` the shell. `tad.Detector` (`tad.detector`, thresholds from
`tad.calibrate`) fits once, saves and scores new images.
"""

__all__ = ["Detector", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``tad.Detector``, imported on first use so that ``import tad`` stays free of torch."""
    if name == "Detector":
        from tad.detector import Detector

        return Detector
    raise AttributeError(f"module 'tad' has no attribute {name!r}")
