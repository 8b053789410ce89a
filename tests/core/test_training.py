import torch

from chanlab.core.checkpoint import Checkpointer
from chanlab.core.training import ResumableTraining


def _fit(run, history, n_epochs, stop_after=None):
    model = run.model
    for epoch in run.epochs(n_epochs):
        order = torch.randperm(8, generator=run.generator)
        loss = model(torch.arange(8.0)[order, None]).square().mean()
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
        history.append(float(loss.detach()))
        run.keep_if_best(epoch, float(loss.detach()) if epoch != 1 else -1.0)  # epoch 1 is "best"
        run.save(epoch, {"losses": list(history)})
        if stop_after is not None and epoch + 1 == stop_after:
            return None
    return run.finish(n_epochs, -1)


def test_resume_gives_the_uninterrupted_run_and_best_weights(tmp_path):
    def fresh(folder):
        torch.manual_seed(0)
        model = torch.nn.Linear(1, 1)
        return ResumableTraining(model, torch.optim.SGD(model.parameters(), lr=0.01), seed=3,
                                 checkpointer=Checkpointer(folder))

    full = fresh(tmp_path / "a")
    losses_full = []
    assert _fit(full, losses_full, 4) == -1
    half = fresh(tmp_path / "b")
    losses_half = []
    _fit(half, losses_half, 4, stop_after=2)
    resumed = fresh(tmp_path / "b")
    assert resumed.start == 2 and resumed.history == {"losses": losses_half}
    losses = list(resumed.history["losses"])
    _fit(resumed, losses, 4)
    assert losses == losses_full
    # Both hold the weights of the "best" epoch 1.
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert not full.model.training


def test_without_validation_the_last_weights_stay():
    model = torch.nn.Linear(1, 1)
    run = ResumableTraining(model, torch.optim.SGD(model.parameters(), lr=0.1), seed=0)
    assert list(run.epochs(3)) == [0, 1, 2]
    assert run.finish(3, -1) == 2
