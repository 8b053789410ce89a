"""Non-learned algorithms and baselines: PCA codec, linear precoders, WMMSE family, robust worst-case bounds."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "channel_estimation": ("dft_pilots", "lmmse_estimate", "lmmse_mse", "receive_pilots", "sample_covariance"),
    "linear_precoding": ("equal_power_columns", "mrt", "rzf", "scale_to_power", "zf"),
    "nr_codebooks": ("TypeISinglePanel", "subband_gain"),
    "pca_codec": ("PcaCodec",),
    "robust_ascent": ("robust_gradient_ascent",),
    "robust_sinr": ("aggregate_error_radius", "worst_case_sinr", "worst_case_sinr_cvxpy", "worst_case_sum_rate",
                    "worst_case_terms"),
    "sparse_recovery": ("nnls_small", "nomp", "nomp_reference_loop", "omp", "wnomp"),
    # `wmmse` itself is not re-exported: the name is its module's (chanlab.classical.wmmse.wmmse).
    "wmmse": ("average_serving_aps", "iterations_run", "project_per_ap_power", "serving_aps", "sparse_wmmse", "wmmse_reference_loop"),
})
