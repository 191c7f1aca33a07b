import pytest
import torch

from course_lib import env


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert env.profile().name == "cpu"
    monkeypatch.setenv("COURSE_PROFILE", " Smoke ")
    assert env.profile().name == "smoke"


def test_profile_auto_without_variable(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert env.profile().name == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_profile_lists_valid_names(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        env.profile()


def test_profiles_grow_from_smoke_to_gpu():
    smoke, cpu, gpu = (env.profile(n) for n in env.PROFILE_NAMES)
    assert smoke.dataset == "mnist-sample" and cpu.dataset == gpu.dataset == "mnist"
    assert 3 <= smoke.seeds <= cpu.seeds <= gpu.seeds          # every claim is measured over seeds
    lenet_steps = [p.lenet_epochs * (4_000 if p.dataset == "mnist-sample" else 60_000) // p.batch_size
                   for p in (smoke, cpu, gpu)]     # the cpu recipe takes fewer epochs than smoke, of more digits
    assert lenet_steps == sorted(set(lenet_steps)), lenet_steps
    assert smoke.alexnet_epochs < cpu.alexnet_epochs < gpu.alexnet_epochs


def test_seed_everything_makes_runs_repeatable():
    env.seed_everything(3)
    a = torch.randn(5)
    env.seed_everything(3)
    assert torch.equal(a, torch.randn(5))


def test_describe_names_profile_and_device(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    line = env.describe()
    assert "profile=smoke" in line and f"device={env.device().type}" in line and "torch=" in line
