"""Channel Space Gridization: CSG-AE with PIDA training, its baselines and the high-level gridizer."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "baselines": ("BASELINES", "GridEstimate", "run_baseline"),
    "gridizer": ("ChannelSpaceGridizer", "check_rsrp_dbm"),
    "model": ("CsgAutoencoder", "LscmDecoder"),
    "training": ("STRATEGIES", "CsgHistory", "CsgTraining", "train_csg"),
})
