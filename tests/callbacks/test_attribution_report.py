import json

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from guardrail import GuardrailModule
from guardrail.attribution import LOSS_COPIES, explain
from guardrail.callbacks import AttributionReport, RunReport
from guardrail.checks.attribution import attribution_findings
from guardrail.errors import ConfigError
from guardrail.report.run import rerender

RELEVANT = ["income", "debt", "age", "tenure", "usage"]
NOISE = [f"noise_{i}" for i in range(5)]


class Known(pl.LightningDataModule):
    """y depends on the first five of ten features (two of them nonlinearly), not the rest."""

    def __init__(self, n: int = 3000) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        x = torch.randn(n, 10, generator=g)
        y = (1.5 * x[:, 0] - x[:, 1] + torch.sin(2 * x[:, 2]) + 0.8 * x[:, 3] * x[:, 4]
             + 0.05 * torch.randn(n, generator=g))
        cut = n * 5 // 6
        self.train_set = TensorDataset(x[:cut], y[:cut])
        self.val_set = TensorDataset(x[cut:], y[cut:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=100, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=100)

    test_dataloader = val_dataloader


def mlp_module(names=RELEVANT + NOISE, lr=1e-2) -> GuardrailModule:
    net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 1))
    return GuardrailModule(net, lr=lr, feature_names=names)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained on Known, its AttributionReport and the run directory."""
    pl.seed_everything(0, verbose=False)
    run_dir = tmp_path_factory.mktemp("run")
    report = AttributionReport(dirpath=run_dir)
    quiet_trainer(callbacks=[report], max_epochs=8, default_root_dir=run_dir).fit(
        mlp_module(), datamodule=Known())
    return report, run_dir


def test_top_features_recover_the_relevant_ones(trained):
    report, run_dir = trained
    top = report.result["ranking"][: len(RELEVANT)]
    assert len(set(top) & set(RELEVANT)) / len(RELEVANT) >= 0.8
    saved = json.loads((run_dir / "attribution" / "attribution.json").read_text())
    assert saved["ranking"] == report.result["ranking"]
    assert (run_dir / "attribution" / "global_importance.png").stat().st_size > 1000


def test_healthy_model_passes_the_sanity_check_and_methods_agree(trained):
    report, _ = trained
    assert report.result["sanity"]["passed"] is True
    assert report.result["agreement"]["features"] > 0.5
    assert report.result["methods"]["integrated_gradients"]["completeness_error"] < 0.05
    assert not [f for f in report.findings if f.severity != "info"]


def test_model_with_randomised_weights_fails_the_sanity_check(tmp_path):
    report = AttributionReport(dirpath=tmp_path)
    quiet_trainer(callbacks=[report], max_steps=1).fit(mlp_module(lr=0.0), datamodule=Known())
    assert report.result["sanity"]["passed"] is False
    [finding] = [f for f in report.findings if f.check == "attribution.sanity_failed"]
    assert "no better than copies with random weights" in finding.message


def test_markup_in_a_feature_name_is_shown_as_text(tmp_path):
    names = ["<script>alert(1)</script>", *RELEVANT[1:], *NOISE]
    quiet_trainer(callbacks=[AttributionReport(dirpath=tmp_path, randomisations=0),
                             RunReport(tmp_path)], max_epochs=1).fit(
        mlp_module(names), datamodule=Known(600))
    page = (tmp_path / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "What the model relies on" in page and "data:image/png;base64," in page
    (tmp_path / "report.html").unlink()
    assert rerender(tmp_path).read_text() == page  # `guardrail report RUN_DIR` re-renders it


def test_findings_made_after_the_best_checkpoint_survive_testing_it(tmp_path):
    """Testing the best checkpoint restores callback state from before the attribution."""
    data = Known(600)
    callbacks = [ModelCheckpoint(dirpath=tmp_path, monitor="val/loss"),
                 AttributionReport(dirpath=tmp_path, samples=100, randomisations=0,
                                   thresholds={"max_completeness_error": -1.0}),  # an info finding
                 RunReport(tmp_path)]
    trainer = quiet_trainer(callbacks=callbacks, max_epochs=2, enable_checkpointing=True)
    module = mlp_module()
    trainer.fit(module, datamodule=data)
    made = {f.check for f in callbacks[1].findings}
    trainer.test(module, datamodule=data, ckpt_path="best", verbose=False)
    lines = (tmp_path / "findings.jsonl").read_text().splitlines()
    assert made and made <= {json.loads(line)["check"] for line in lines}


class IdsOnly(nn.Module):
    """Scores (user, item) id pairs, as REC's collaborative part does; returns a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.users, self.items = nn.Embedding(20, 4), nn.Embedding(30, 4)

    def forward(self, users, items):
        return (self.users(users) * self.items(items)).sum(1), "aux"


def test_integer_inputs_and_tuple_outputs_are_attributed_through_their_embeddings(tmp_path):
    users, items = torch.randint(20, (400,)), torch.randint(30, (400,))
    data = DataLoader(TensorDataset(users, items, torch.randn(400)), batch_size=50)

    class Module(GuardrailModule):
        def forward(self, u, i):
            return self.net(u, i)[0]

    report = AttributionReport(dirpath=tmp_path)
    quiet_trainer(callbacks=[report], max_epochs=1, limit_val_batches=0).fit(
        Module(IdsOnly(), feature_names=["user", "item"]), train_dataloaders=data)
    assert sorted(report.result["ranking"]) == ["item", "user"]
    layer_ig = report.result["methods"]["integrated_gradients"]
    assert all(v > 0 for v in layer_ig["importance"])  # both ids, through their embeddings
    assert layer_ig["completeness_error"] is None  # defined for float inputs only
    checks = [(f.check, f.severity) for f in report.findings]
    assert ("attribution.skipped", "info") in checks  # said what it could not do


def test_a_model_it_cannot_call_gives_an_info_and_training_completes(tmp_path):
    class DictInputs(GuardrailModule):
        def split_batch(self, batch):
            return ({"x": batch[0]},), batch[1]  # inputs the report cannot attribute

        def forward(self, inputs):
            return self.net(inputs["x"]).squeeze(-1)

    report = AttributionReport(dirpath=tmp_path)
    trainer = quiet_trainer(callbacks=[report], max_epochs=1)
    trainer.fit(DictInputs(nn.Linear(10, 1)), datamodule=Known(600))
    assert trainer.state.finished
    assert [f.check for f in report.findings] == ["attribution.skipped"]


def test_samples_far_from_the_training_data_are_flagged_and_near_ones_are_not():
    net = nn.Linear(3, 1)
    reference = torch.randn(300, 3)
    near, far = torch.randn(20, 3) * 0.5, torch.randn(20, 3) + 12.0
    flagged = {}
    for name, x in (("near", near), ("far", far)):
        result, _ = explain(net, (x,), (reference,), randomisations=0)
        flagged[name] = [f for f in attribution_findings(result)
                         if f.check == "attribution.low_support"]
    assert flagged["near"] == []
    assert flagged["far"][0].evidence["count"] == 20


def test_too_few_integration_steps_are_reported_and_enough_are_not():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1))
    with torch.no_grad():
        net[0].weight.mul_(4)
    x, reference = torch.randn(32, 4) * 2, torch.randn(200, 4)
    checks = {}
    for steps in (2, 64):
        result, _ = explain(net, (x,), (reference,), n_steps=steps, randomisations=0)
        checks[steps] = {f.check for f in attribution_findings(result)}
    assert "attribution.incomplete" in checks[2]
    assert "attribution.incomplete" not in checks[64]


def test_disagreeing_methods_are_reported_and_agreeing_ones_are_not():
    agree = {"agreement": {"features": 0.9, "features_compared": 10}}
    disagree = {"agreement": {"features": -0.1, "features_compared": 10}}
    assert attribution_findings(agree) == []
    [finding] = attribution_findings(disagree)
    assert (finding.check, finding.where) == ("attribution.methods_disagree", "features")


def test_grids_get_heat_maps_from_two_methods(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    x, reference = torch.randn(6, 2, 16, 16), torch.randn(20, 2, 16, 16)
    result, arrays = explain(net, (x,), (reference,), names=["t2m", "sst"], randomisations=0)
    assert [f["name"] for f in result["features"]] == ["t2m", "sst"]
    assert arrays["ig_maps"][0].shape == (6, 16, 16)
    assert arrays["occlusion_maps"][0].shape == (4, 16, 16)  # occlusion_samples
    assert result["agreement"]["pixels"] is not None


def test_one_hot_columns_named_alike_are_one_feature():
    torch.manual_seed(0)
    colour = torch.nn.functional.one_hot(torch.randint(3, (200,)), 3).float()
    x = torch.cat([colour, torch.randn(200, 2)], 1)
    net = nn.Linear(5, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[2.0, -2.0, 0.0, 0.1, 0.0]]))
    names = ["colour", "colour", "colour", "size", "weight"]
    result, _ = explain(net, (x[:64],), (x[64:],), names=names, randomisations=0)
    assert [f["name"] for f in result["features"]] == ["colour", "size", "weight"]
    assert result["features"][0]["index"] == (0, 1, 2)
    assert result["ranking"][0] == "colour"


def test_stage_test_explains_the_tested_weights_under_inference_mode(tmp_path):
    data = Known(600)
    report = AttributionReport(dirpath=tmp_path, randomisations=0, stage="test")
    trainer = quiet_trainer(callbacks=[ModelCheckpoint(dirpath=tmp_path, monitor="val/loss"),
                                       report], max_epochs=2, enable_checkpointing=True)
    module = mlp_module()
    trainer.fit(module, datamodule=data)
    assert report.result is None  # not at the end of fit
    trainer.test(module, datamodule=data, ckpt_path="best", verbose=False)
    assert report.result["ranking"] and not [f for f in report.findings
                                             if f.check == "attribution.skipped"]


def test_unknown_stage_is_a_config_error():
    with pytest.raises(ConfigError, match=r"stage='predict'.*fit, test"):
        AttributionReport(stage="predict")


def test_a_classifier_is_judged_by_ranking_not_by_an_overconfident_loss():
    from guardrail.attribution.task import model_error

    x = torch.randn(400, 3)
    y = (x[:, 0] > 0).float()
    sharp = nn.Linear(3, 1)
    with torch.no_grad():  # ranks perfectly, but 60x too confident, and wrong on a margin
        sharp.weight.copy_(torch.tensor([[60.0, 0.0, 0.0]]))
        sharp.bias.fill_(-30.0)
    module = GuardrailModule(sharp, task="binary")
    error = model_error(module, [x], y)
    loss = float(module.compute_loss(module(x), y))
    assert error(module) < 0.01 and loss > 1.0  # the loss would call it worse than random


def test_a_short_run_gets_a_lowered_explanation_and_says_what_was_lowered(tmp_path):
    report = AttributionReport(dirpath=tmp_path)
    quiet_trainer(callbacks=[report], max_steps=2).fit(mlp_module(), datamodule=Known(600))
    budget = json.loads((tmp_path / "attribution" / "attribution.json").read_text())["budget"]
    assert budget["fit_s"] > 0 and budget["share"] == report.budget_share  # the default
    lowered = budget["reduced"]["n_steps"]
    assert lowered["from"] == 32 and lowered["to"] < 32
    assert "lowered" in budget["why"] and report.result["settings"]["n_steps"] == lowered["to"]
    assert report.result["ranking"] and report.result["sanity"] is not None  # floors kept
    # however few copies are explained, the error ratio is judged against several
    assert report.result["sanity"]["loss_copies"] == LOSS_COPIES > 1


def test_without_a_share_the_explanation_runs_as_configured(tmp_path):
    report = AttributionReport(dirpath=tmp_path, budget_share=None, randomisations=0)
    quiet_trainer(callbacks=[report], max_steps=2).fit(mlp_module(), datamodule=Known(600))
    assert report.result["budget"]["reduced"] == {}
    assert report.result["settings"]["n_steps"] == 32


def test_the_task_comes_from_the_argument_the_module_or_the_outputs(tmp_path):
    class Plain(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(10, 3)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, i):
            return self(batch[0]).logsumexp(1).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    sources = []
    for module, report in ((Plain(), AttributionReport(tmp_path, randomisations=0)),
                           (Plain(), AttributionReport(tmp_path, randomisations=0,
                                                       task="regression")),
                           (mlp_module(), AttributionReport(tmp_path, randomisations=0))):
        quiet_trainer(callbacks=[report], max_steps=1, limit_val_batches=0).fit(
            module, datamodule=Known(300))
        sources.append(report.result["task"])
    assert sources == [{"task": "multiclass", "source": "inferred"},
                       {"task": "regression", "source": "argument"},
                       {"task": "regression", "source": "module"}]
