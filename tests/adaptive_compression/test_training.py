"""train_rd on the training engine: a killed run resumes to exactly the uninterrupted one."""

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from chanlab.adaptive_compression.codec import csi_to_real
from chanlab.adaptive_compression.model import CompressorSpec, RDCompressor
from chanlab.adaptive_compression.training import train_rd
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import SimulatedKill, kill_after_epochs

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("variant", ["validated", "quantized-substitute"])
def test_a_killed_run_resumes_to_the_uninterrupted_run(tmp_path, low_rank_csi, variant):
    h = low_rank_csi(40)
    x = csi_to_real(h) / float(h.abs().square().mean().sqrt())
    x_train, x_val = x[:24], (x[24:] if variant == "validated" else None)

    def run(folder):
        torch.manual_seed(3)                        # the weights' init and the latent noise
        model = RDCompressor(CompressorSpec.for_size(16, 16))
        substitute = None
        if variant == "quantized-substitute":       # fine-tuning's θ_0 + Q(θ − θ_0), inside the step
            theta_0 = {n: p.detach().clone() for n, p in model.decoder_side_parameters()}

            def substitute():
                return {n: theta_0[n] + torch.round((p - theta_0[n]) / 1e-3) * 1e-3 +
                        ((p - theta_0[n]) - (p - theta_0[n]).detach())
                        for n, p in model.decoder_side_parameters()}

        ck = Checkpointer(tmp_path / folder, "x.pt", every_epochs=2, every_seconds=None)
        hist = train_rd(model, x_train, x_val, 100.0, epochs=5, batch_size=10, lr=3e-3, prior_lr_scale=10.0,
                        seed=2, substitute=substitute, checkpointer=ck)
        return model, hist

    full, full_hist = run("a")
    with pytest.raises(SimulatedKill), kill_after_epochs(3):
        run("b")
    resumed, resumed_hist = run("b")
    assert resumed_hist == full_hist and len(full_hist.train_loss) == 5
    assert len(full_hist.val_loss) == (5 if variant == "validated" else 0)
    assert full_hist.best_epoch == (min(range(5), key=full_hist.val_loss.__getitem__) if x_val is not None else 4)
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_the_prior_learns_at_its_own_rate_through_a_constant_schedule():
    torch.manual_seed(0)
    model = RDCompressor(CompressorSpec.for_size(16, 16))
    x = torch.randn(8, 2, 16, 16)
    seen = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append([g["lr"] for g in opt.param_groups]))
    try:
        train_rd(model, x, None, 10.0, epochs=2, batch_size=4, lr=1e-3, prior_lr_scale=10.0)
    finally:
        handle.remove()
    assert seen == [[1e-3, pytest.approx(1e-2)]] * 4
