"""Channel physics and data: arrays, beams, angular-delay transforms, generators, store, loaders.

Names are exported lazily, so Sionna, h5py and SciPy load only when something needs them.
"""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "angular_delay": ("from_angular_delay", "from_unit_interval", "to_angular_delay", "to_unit_interval",
                      "unit_interval_scale"),
    "arrays": ("ula_response", "upa_response"),
    "beams": ("beam_gains", "dft_codebook", "upa_dft_codebook"),
    "beam_patterns": ("WALKING_TEST_PATTERNS", "BeamPattern", "pattern_family", "power_limited"),
    "geometric_paths": ("StochasticSite", "loop_route", "stochastic_paths"),
    "cellfree": ("CellFreeDrop", "generate_cellfree", "sample_bounded_error"),
    "lscm": ("LscmPanel", "angular_grid", "beam_pattern_matrix", "dbm_to_mw", "element_gain_3gpp", "lscm_steering",
             "measure_rsrp", "mw_to_dbm", "sample_rsrp"),
    "loaders": ("load_cost2100", "load_mat_channels", "load_multiuser", "read_mat"),
    "paths": ("bin_caps", "rsrp_from_paths"),
    "raytracing": ("RtSite", "jitter_route", "outdoor_mask", "route_loop", "rt_status", "trace_paths"),
    "sionna_phy": ("generate_cdl", "generate_multiuser", "generate_scenario"),
    "synthetic_caps": ("SyntheticCaps", "synthetic_caps", "truncated_normal"),
    "store": ("cache_dir", "cached_dataset", "dataset_info", "read_dataset", "write_dataset"),
    "walking_test": ("WalkingTest", "WalkingTestConfig", "generate_walking_test", "load_walking_test"),
})
