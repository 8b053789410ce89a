"""Robust joint AP clustering and beamforming (RJAPCBN) for cell-free downlinks with bounded CSI error,
and our unfolded robust ascent (:mod:`chanlab.cellfree.unfolded`)."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "model": ("PAPER_K", "PAPER_KERNEL", "PAPER_LAMBDA", "PAPER_N_UNITS", "RJAPCBN",
              "RJAPCBNOutput", "SharedThreshold", "SlackVariables", "SpatialAttentionThreshold",
              "ap_power", "beamforming_conversion", "csi_conversion", "differentiable_threshold",
              "hard_threshold", "loss_eq32", "project_per_ap_power", "rms_pool",
              "sparsity_penalty", "update_slack_variables"),
    "training": ("DEFAULT_LR", "PAPER_BATCH_SIZE", "PAPER_LR", "PAPER_N_TEST", "PAPER_N_TRAIN",
                 "TrainHistory", "evaluate_rjapcbn", "fit_unfolded", "train_rjapcbn"),
    "unfolded": ("UnfoldedRobustAscent", "per_ap_mrt", "top_links"),
    "two_stage_cnn": ("TwoStageCNN", "TwoStageCNNSpec", "TwoStageHistory", "MultiBranchResidualCNN",
                      "train_two_stage_cnn", "predict_beamformers", "evaluate_sum_rate",
                      "gain_fraction_clusters", "link_gains"),
    "compare": ("METHODS", "Baselines", "Setting", "Training", "compare_methods", "draw_drops", "measure"),
})
