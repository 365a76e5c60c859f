from guardrail.checks.config_lock import diff_settings, lock_finding, split_by_overrides


def test_diff_lists_changed_added_and_removed_keys():
    changes = diff_settings({"a": 1, "b": True, "c": "x"}, {"a": 1, "b": False, "d": 2}, "config")
    assert [str(c) for c in changes] == ["b: true → false", "c: x → (absent)", "d: (absent) → 2"]


def test_yaml_change_is_refused_even_with_overrides_elsewhere():
    changes = diff_settings({"data.shuffle_before_split": False},
                            {"data.shuffle_before_split": True}, "config")
    refused, allowed = split_by_overrides(changes, ["data.batch_size=8", "trainer.max_epochs=3"])
    assert [c.key for c in refused] == ["data.shuffle_before_split"] and allowed == []


def test_effective_change_under_an_override_is_allowed_and_other_changes_are_not():
    changes = diff_settings(
        {"optimizer.param_groups.0.lr": 0.001, "train_dataloader.sampler": "SequentialSampler"},
        {"optimizer.param_groups.0.lr": 0.01, "train_dataloader.sampler": "RandomSampler"},
        "effective")
    refused, allowed = split_by_overrides(changes, ["module.lr=0.01"])
    assert [c.key for c in allowed] == ["optimizer.param_groups.0.lr"]
    assert [c.key for c in refused] == ["train_dataloader.sampler"]


def test_finding_names_every_key_and_the_approval_command():
    changes = diff_settings({"data.shuffle_before_split": False, "train_dataloader.shuffle": False},
                            {"data.shuffle_before_split": True, "train_dataloader.shuffle": True},
                            "config")
    finding = lock_finding(changes, "est", "guardrail approve recipe=est")
    assert finding.check == "config.lock" and finding.severity.value == "error"
    assert finding.where == "data.shuffle_before_split"
    assert "data.shuffle_before_split: false → true" in finding.message
    assert "train_dataloader.shuffle: false → true" in finding.message
    assert "`guardrail approve recipe=est`" in finding.hint


def test_no_change_no_finding():
    assert lock_finding([], "est", "x") is None


def test_a_seed_override_allows_the_seed_it_passes_on_and_nothing_else():
    changes = diff_settings({"data_hparams.seed": 42, "data_hparams.n_frames": 500},
                            {"data_hparams.seed": 0, "data_hparams.n_frames": 400}, "effective")
    refused, allowed = split_by_overrides(changes, ["seed=0"])
    assert [c.key for c in allowed] == ["data_hparams.seed"]
    assert [c.key for c in refused] == ["data_hparams.n_frames"]
