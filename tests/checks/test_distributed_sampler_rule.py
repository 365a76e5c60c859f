"""The config lock's DistributedSampler rule: Lightning's swap is no change; forced shuffling is."""

from guardrail.checks.config_lock import diff_settings, distributed_sampler_findings


def judge(locked, current):
    return distributed_sampler_findings(diff_settings(locked, current, "effective"), locked,
                                        current)


def loader(name, sampler, shuffle):
    return {f"{name}_dataloader.sampler": sampler, f"{name}_dataloader.shuffle": shuffle}


def test_swap_that_shuffles_alike_is_dropped_with_one_info():
    locked = {**loader("train", "RandomSampler", True), **loader("val", "SequentialSampler",
                                                                False)}
    now = {**loader("train", "DistributedSampler", True), **loader("val", "DistributedSampler",
                                                                   False)}
    changes, findings = judge(locked, now)
    assert changes == []
    assert [(f.check, f.severity, f.evidence["loaders"]) for f in findings] == [
        ("config.distributed_sampler", "info", ["train_dataloader", "val_dataloader"])]


def test_lock_written_under_ddp_compared_with_a_single_process_run():
    changes, findings = judge(loader("train", "DistributedSampler", True),
                              loader("train", "RandomSampler", True))
    assert changes == [] and [f.check for f in findings] == ["config.distributed_sampler"]
    assert "DDP" in findings[0].message


def test_forced_shuffling_keeps_the_changes_and_warns():
    changes, findings = judge(loader("train", "SequentialSampler", False),
                              loader("train", "DistributedSampler", True))
    assert [c.key for c in changes] == ["train_dataloader.sampler", "train_dataloader.shuffle"]
    (finding,) = findings
    assert (finding.check, finding.severity, finding.where) == (
        "config.distributed_shuffle", "warning", "train_dataloader.shuffle")
    assert "#10170" in finding.message and "use_distributed_sampler=false" in finding.hint


def test_other_changes_pass_through_untouched():
    locked = {**loader("train", "RandomSampler", True), "optimizer.param_groups.0.lr": 0.1}
    now = {**loader("train", "RandomSampler", True), "optimizer.param_groups.0.lr": 0.2}
    changes, findings = judge(locked, now)
    assert [c.key for c in changes] == ["optimizer.param_groups.0.lr"] and findings == []
    custom = judge(loader("train", "MyBucketSampler", None),
                   loader("train", "DistributedSampler", True))
    assert "train_dataloader.sampler" in [c.key for c in custom[0]] and not custom[1]
