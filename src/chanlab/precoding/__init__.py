"""Scalable FDD multi-user transceiver (fdd-scalable-precoding-rvq-egat.txt): learned pilots, a shared
feature extractor with residual-VQ feedback (NSVQ), the EGAT precoder, progressive training and the
paper's baselines."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "baselines": ("LloydRvqZf", "LmmseZf", "wmmse_csit", "zf_csit"),
    "data": ("ChannelSplits", "MAX_USERS", "make_splits", "normalize_users", "umi_drops"),
    "model": ("FddTransceiver", "PilotNetwork", "feature_extractor"),
    "scalable": ("ScalableTransceiver",),
    "sohrabi": ("SohrabiTransceiver", "binarize_ste"),
    "training": ("StageHistory", "TransceiverTraining", "evaluate_sum_rate", "noise_power", "pick_users",
                 "train_expansion", "train_sum_rate_model", "train_transceiver", "transceiver_sum_rate",
                 "warmup_cosine"),
})
