"""Quantized CSI feedback with bit allocation, adaptive weights and log loss."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "baselines": ("PcaFeedback",),
    "data": ("ENVIRONMENTS", "FeedbackSplits", "feedback_csi", "find_cost2100", "load_cost2100_splits", "make_splits", "nmse_db", "rho"),
    "ranges": ("normalized_std", "range_report"),
    "model": ("SCHEMES", "FeedbackAutoencoder", "Scheme", "get_scheme"),
    "training": ("FeedbackHistory", "FeedbackTraining", "evaluate_feedback", "fit_lloyd", "train_feedback"),
})
