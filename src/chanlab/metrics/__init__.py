"""Pure metric functions: distortion, clustering, center distances, rates, FLOPs (exported lazily)."""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "centers": ("sample_mean_nmse",),
    "clustering": ("clustering_scores",),
    "distortion": ("cosine_similarity", "mae_db", "nmse", "nmse_db", "nmse_per_sample", "to_db"),
    "flops": ("count_flops",),
    "rates": ("sinr", "sum_rate", "user_rates"),
    "wasserstein": ("center_wasserstein",),
})
