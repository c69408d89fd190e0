"""The photo pipeline (colorizer_lib.photos): planning names, sorting finished work, running with
events, and what the notebook gains from it (batching, resume, protected inputs).

The command line's behaviour on top of it is tested in test_cli*.py; the pipelined path against the
simple one in test_photos_gpu.py and test_speed_paths.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from colorizer_lib import notebook, photos
from colorizer_lib.errors import InputError
from colorizer_lib.io import read_provenance
from colorizer_lib.jobs import FileJob
from tests.browser.support import grey_photo, is_tinted, tint_colorizer


@pytest.fixture(scope="module")
def colorizer():
    return tint_colorizer()


def test_one_policy_and_one_batch_size_default():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert photos.default_batch_size(cpu) == 1 and photos.default_batch_size(cuda) == 8
    assert photos.use_pipeline("auto", cuda, photos.PIPELINE_MIN_IMAGES)
    assert not photos.use_pipeline("auto", cuda, photos.PIPELINE_MIN_IMAGES - 1)
    with pytest.raises(InputError, match="pipeline must be"):
        photos.use_pipeline("fast", cpu, 3)


def test_claim_job_takes_the_first_name_free_of_other_inputs(tmp_path, colorizer):
    a, b = grey_photo(tmp_path / "a.png"), grey_photo(tmp_path / "b.png", size=(40, 30))
    out = tmp_path / "out"

    def names(stem="x"):
        return (out / f"{s}.png" for s in photos.numbered(stem))

    claimed: set[Path] = set()
    first = photos.claim_job(str(a), names(), claimed, colorizer.name, 6)
    second = photos.claim_job(str(a), names(), claimed, colorizer.name, 6)  # taken in this run
    assert (first.output.name, second.output.name) == ("x.png", "x_2.png")
    photos.run_jobs(colorizer, [first], render_factor=6)
    # a later run: the same input finds its result (resume), another input the next free name
    assert photos.claim_job(str(a), names(), set(), colorizer.name, 6).output.name == "x.png"
    assert photos.claim_job(str(b), names(), set(), colorizer.name, 6).output.name == "x_2.png"
    # other settings for the same input: the name is kept (the front end decides to replace it)
    assert photos.claim_job(str(a), names(), set(), "other-model", 6).output.name == "x.png"
    Image.new("RGB", (8, 8)).save(out / "y.png")  # not ours: never taken
    assert photos.claim_job(str(a), names("y"), set(), colorizer.name, 6).output.name == "y_2.png"


def test_sort_jobs_skips_finished_work_and_refuses_what_is_not_ours(tmp_path, colorizer):
    photo = grey_photo(tmp_path / "p.png")
    out = tmp_path / "out"
    jobs = photos.plan_jobs([str(photo)], str(out))
    first = photos.sort_jobs(jobs, colorizer.name, 6, overwrite=False)
    assert first.todo == jobs and not first.skipped and not first.refused
    photos.run_jobs(colorizer, first.todo, render_factor=6)
    again = photos.sort_jobs(photos.plan_jobs([str(photo)], str(out)), colorizer.name, 6, overwrite=False)
    assert not again.todo and len(again.skipped) == 1
    other = photos.sort_jobs(photos.plan_jobs([str(photo)], str(out)), colorizer.name, 7, overwrite=False)
    assert other.failures and "Pass --overwrite" in other.failures[0][1]
    assert other.refused[0][0].output == out / "p.png"


def test_run_jobs_reports_every_job_once_through_events(tmp_path, colorizer):
    good = grey_photo(tmp_path / "good.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture")
    jobs = [FileJob(str(good), tmp_path / "out" / "g.jpg"), FileJob(str(bad), tmp_path / "out" / "b.jpg"),
            FileJob(str(good), tmp_path / "out" / "g2.png")]
    events = []
    report = photos.run_jobs(colorizer, jobs, render_factor=6, batch_size=2, on_event=events.append)
    assert [(e.kind, e.job.output.name, e.finished, e.total) for e in events] == [
        ("failed", "b.jpg", 1, 3), ("done", "g.jpg", 2, 3), ("done", "g2.png", 3, 3)]
    assert events[1].result is not None and events[1].path == report.outputs[0]
    assert [p.name for p in report.outputs] == ["g.jpg", "g2.png"] and report.failures[0][0] == str(bad)
    assert not report.pipelined and report.stats is None


def test_the_pipelined_path_emits_the_same_events(tmp_path, colorizer):
    good = grey_photo(tmp_path / "good.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture")
    jobs = [FileJob(str(good), tmp_path / "out" / "g.jpg"), FileJob(str(bad), tmp_path / "out" / "b.jpg")]
    events = []
    report = photos.run_jobs(colorizer, jobs, render_factor=6, pipeline="on", workers=2, on_event=events.append)
    assert report.pipelined and sorted((e.kind, e.job.output.name) for e in events) == [
        ("done", "g.jpg"), ("failed", "b.jpg")]
    assert sorted(e.finished for e in events) == [1, 2]
    result = photos.read_result(jobs[0], colorizer.name, 6)  # the picture back from the files
    assert result.image.size == (96, 64) and is_tinted(result.image) and result.original.size == (96, 64)


def test_options_of_the_pipelined_path_are_refused_on_the_simple_one(tmp_path, colorizer):
    with pytest.raises(TypeError, match="workers"):
        photos.run_jobs(colorizer, [], pipeline="off", workers=2)


# -- what the notebook gets from the pipeline --------------------------------------------------------


def make_ui(tmp_path, colorizer, **kwargs):
    return notebook.ImageColorizerUI(model="artistic", output_dir=tmp_path / "out", factory=lambda name: colorizer,
                                     render_factor=6, **kwargs)


def test_the_notebook_resumes_finished_photos_and_still_shows_them(tmp_path, colorizer, monkeypatch):
    photo = grey_photo(tmp_path / "scan.png")
    ui = make_ui(tmp_path, colorizer, sources=str(photo))
    [first] = ui.colorize()
    written = first.path.stat().st_mtime_ns
    ran = []
    real = photos.run_jobs
    monkeypatch.setattr(photos, "run_jobs", lambda col, jobs, **kw: ran.append(len(jobs)) or real(col, jobs, **kw))
    [again] = ui.colorize()
    assert ran == [0] and again.path == first.path and first.path.stat().st_mtime_ns == written
    assert is_tinted(again.result.image) and again.result.original.size == (96, 64)
    assert "Done: 1 photo colorized" in ui.status.text and not ui.status.is_error


def test_the_notebook_batches_photos_and_never_writes_over_an_input(tmp_path, colorizer, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    # a photo of the user's (an input too) where x.png's result would go: read, never replaced
    source = grey_photo(folder / "x_colorized_rf6.png")
    before = source.read_bytes()
    others = [grey_photo(tmp_path / "x.png")] + [grey_photo(tmp_path / f"p{i}.png") for i in range(2)]
    calls = []
    real = type(colorizer).colorize_batch
    monkeypatch.setattr(type(colorizer), "colorize_batch",
                        lambda self, items, *a, **kw: calls.append(len(items)) or real(self, items, *a, **kw))
    ui = make_ui(tmp_path, colorizer, sources="\n".join(str(p) for p in [source, *others]))
    outcomes = ui.colorize()
    assert source.read_bytes() == before
    assert [o.path.name for o in outcomes] == ["x_colorized_rf6_colorized_rf6.png", "x_2_colorized_rf6.png",
                                               "p0_colorized_rf6.png", "p1_colorized_rf6.png"]
    assert read_provenance(outcomes[1].path)["colorizer:model"] == colorizer.name
    assert sum(calls) == 4  # one forward pass per batch (batch 1 on a CPU), every photo once


def test_an_interrupted_batch_resumes(tmp_path, colorizer, monkeypatch):
    album = tmp_path / "album"
    album.mkdir()
    for name in ("a.png", "b.png"):
        grey_photo(album / name)
    zip_path = tmp_path / "out" / "album.zip"
    first = notebook.colorize_to_zip(colorizer, album, zip_path, 6)
    assert first.done == ["a.png", "b.png"] and (tmp_path / "out" / "album" / "a_colorized.png").is_file()
    grey_photo(album / "c.png")
    ran = []
    real = photos.run_jobs
    monkeypatch.setattr(photos, "run_jobs", lambda col, jobs, **kw: ran.append([j.source for j in jobs])
                        or real(col, jobs, **kw))
    second = notebook.colorize_to_zip(colorizer, album, zip_path, 6)
    assert ran == [[str(album / "c.png")]] and second.done == ["a.png", "b.png", "c.png"]
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["a_colorized.png", "b_colorized.png", "c_colorized.png"]


def test_zip_members_with_one_result_name_are_both_kept_and_paths_stay_inside(tmp_path, colorizer):
    archive = tmp_path / "in.zip"
    photo = grey_photo(tmp_path / "p.png")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(photo, "a.png")
        zf.write(photo, "a.gif")  # a GIF's result is a PNG: the same name as a.png's
        zf.write(photo, "../../escape.png")
    report = notebook.colorize_to_zip(colorizer, archive, tmp_path / "out" / "r.zip", 6)
    assert not report.failed
    with zipfile.ZipFile(report.zip_path) as zf:
        assert sorted(zf.namelist()) == ["a_2_colorized.png", "a_colorized.png", "escape_colorized.png"]
    assert not (tmp_path.parent / "escape_colorized.png").exists()


def test_the_notebook_on_the_pipelined_path_shows_and_counts_every_photo(tmp_path, colorizer, monkeypatch):
    """On a GPU the notebook's photos take the pipelined path, whose events come from worker threads:
    forced here on the CPU, every photo is written, shown from its file and counted, and the failure of
    one is reported without stopping the others."""
    from colorizer_lib.photos import run as photo_run

    monkeypatch.setattr(photo_run, "use_pipeline", lambda choice, device, n: True)
    pipelined = []
    real = photo_run.colorize_jobs_pipelined
    monkeypatch.setattr(photo_run, "colorize_jobs_pipelined",
                        lambda col, jobs, **kw: pipelined.append(len(jobs)) or real(col, jobs, **kw))
    good = [grey_photo(tmp_path / f"p{i}.png") for i in range(3)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(good[0].read_bytes()[:60])  # a PNG cut inside its first chunk
    ui = make_ui(tmp_path, colorizer, sources="\n".join(str(p) for p in [*good, broken]))
    outcomes = ui.colorize()
    assert [o.path.name for o in outcomes] == [f"p{i}_colorized_rf6.png" for i in range(3)]
    assert all(is_tinted(o.result.image) and o.result.original.size == (96, 64) for o in outcomes)
    assert ui.status.is_error and "Done: 3 photos colorized" in ui.status.text and "broken" in ui.status.text
    assert not (tmp_path / "out" / "broken_colorized_rf6.png").exists()
    assert pipelined == [4]
