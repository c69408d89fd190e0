"""Shared fixtures: the DeOldify numerical reference and tiny models built from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tests.architectures  # noqa: F401  (registers the test-only architectures, e.g. deoldify-deep-tiny)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"  # what each file is and where it came from: fixtures/README.md
BW_EXAMPLES = REPO / "examples"  # the nine public-domain historical photos the README shows


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never read or write the user's real weight cache from a test."""
    monkeypatch.setenv("COLORIZER_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session", autouse=True)
def _cpu_without_native_bf16():
    """Run every test on the float32 CPU path, whatever the host processor: the tolerances of the
    numerical tests are float32's, and the suite must behave alike on every machine. The default CPU
    dtype follows torch's AVX512-BF16 / AMX checks (``accel.cpu_has_native_bf16``), so those are
    answered "no" here; ``tests/test_cpu_precision.py`` sets them either way. Session-scoped, so it is
    in force before any module- or session-scoped fixture builds a Colorizer."""
    from colorizer_lib import accel

    with pytest.MonkeyPatch.context() as patch:
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            patch.setattr(torch.cpu, name, lambda: False, raising=False)
        accel.cpu_has_native_bf16.cache_clear()
        yield
    accel.cpu_has_native_bf16.cache_clear()


@pytest.fixture(autouse=True)
def _cpu_capability_answer_is_not_carried_over():
    """A test that mocks the CPU's capabilities (tests/test_cpu_precision.py) leaves no cached answer."""
    from colorizer_lib import accel

    yield
    accel.cpu_has_native_bf16.cache_clear()


@pytest.fixture(scope="session")
def tiny_reference() -> dict:
    """``deoldify_tiny_reference.pt``: state dicts, inputs and outputs of the original code."""
    return torch.load(FIXTURES / "deoldify_tiny_reference.pt", map_location="cpu", weights_only=True)


@pytest.fixture()
def tiny_deep(tiny_reference):
    """The reference's tiny deep U-Net with its reference weights, in eval mode."""
    from colorizer_lib.models import build_generator

    model = build_generator("deoldify-deep-tiny")
    model.load_state_dict(tiny_reference["deep"]["state_dict"])
    return model.eval()


@pytest.fixture()
def tiny_colorizer(tiny_deep):
    from colorizer_lib.colorizer import Colorizer

    return Colorizer.from_model(tiny_deep, name="tiny", default_render_factor=4, device="cpu")


@pytest.fixture()
def tiny_weights_file(tmp_path, tiny_reference) -> Path:
    """The tiny deep state dict saved as a bare ``.pth`` file."""
    path = tmp_path / "tiny_deep.pth"
    torch.save(tiny_reference["deep"]["state_dict"], path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    """The path of a saved tiny DeOldify state dict (``tests.test_video_support.tiny_model``), for the
    video tests' `--model` (one per test module)."""
    from tests.test_video_support import tiny_model

    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    torch.save(tiny_model().state_dict(), path)
    return str(path)
