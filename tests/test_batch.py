"""Batches: no input ever overwritten, in place on request (atomically, even
when killed), workers, naming, recursion, manifest and resume."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq import batch
from kmq._cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def only_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def snapshot(folder):
    """Every file under folder -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def crops(photo, n):
    """n distinct small images made from the photo crop."""
    return [np.ascontiguousarray(np.roll(photo, 7 * i, axis=1)[: 48 + i, :64]) for i in range(n)]


# -- no input is ever overwritten ---------------------------------------------------


def test_issue_data_loss_case_is_refused_before_any_work(capsys, in_tmp, photo):
    # kmq compress b/b.png b/b-k16.png -k 16 --format png -o b -f: b.png's
    # output is b-k16.png, the second input.
    (in_tmp / "b").mkdir()
    Image.fromarray(photo).save(in_tmp / "b" / "b.png")
    Image.fromarray(photo[::-1]).save(in_tmp / "b" / "b-k16.png")
    before = snapshot(in_tmp)
    code, out, err = run(capsys, "compress", "b/b.png", "b/b-k16.png", "-k", "16", "--format", "png", "-o", "b", "-f")
    assert code == 5
    assert only_line(err) == (
        "kmq: error: refusing to overwrite the input b/b-k16.png: it would be the output of b/b.png; "
        "choose another output folder (-o)"
    )
    assert snapshot(in_tmp) == before


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_an_output_linked_to_another_input_is_refused(capsys, in_tmp, photo, link):
    Image.fromarray(photo).save("a.png")
    Image.fromarray(photo[::-1]).save("b.png")
    (in_tmp / "out").mkdir()
    # out/a-k4.png, a's output, is another name of the input b.png.
    (os.link if link == "hard" else os.symlink)(in_tmp / "b.png", in_tmp / "out" / "a-k4.png")
    before = snapshot(in_tmp)
    code, _, err = run(capsys, "compress", "a.png", "b.png", "-k", "4", "--format", "png", "-o", "out", "-f")
    assert code == 5
    assert only_line(err).startswith("kmq: error: refusing to overwrite the input b.png: it would be the output of a.png")
    assert snapshot(in_tmp) == before


def test_plan_checks_identity_not_spelling(in_tmp, photo):
    (in_tmp / "pics").mkdir()
    Image.fromarray(photo).save("pics/a.png")
    Image.fromarray(photo).save("pics/a-k4.png")
    with pytest.raises(kmq.OutputError, match=r"refusing to overwrite the input ./pics/../pics/a-k4.png: it would be the output of pics/a.png"):
        batch.plan(["pics/a.png", "./pics/../pics/a-k4.png"], k=4, format="png", output_dir="./pics/", force=True)


# -- in place ---------------------------------------------------------------------


def test_in_place_replaces_each_input(capsys, in_tmp, photo):
    images = crops(photo, 3)
    for i, image in enumerate(images):
        Image.fromarray(image).save(f"p{i}.png")
    os.chmod("p1.png", 0o600)
    code, out, err = run(capsys, "compress", "p0.png", "p1.png", "p2.png", "-k", "8", "--seed", "0", "--ext", ".png", "--force")
    assert code == 0, err
    for i, image in enumerate(images):
        assert (in_tmp / f"p{i}.png").read_bytes() == kmq.compress(image, 8, seed=0).to_bytes("png")
    assert os.stat("p1.png").st_mode & 0o777 == 0o600  # permissions kept
    assert sorted(p.name for p in in_tmp.iterdir()) == ["p0.png", "p1.png", "p2.png"]  # no temporary file left
    assert out.splitlines()[-1].startswith("kmq: 3 images: 3 written, 0 skipped, 0 failed in ")


def test_in_place_needs_force(capsys, in_tmp, photo):
    Image.fromarray(photo).save("p.png")
    before = snapshot(in_tmp)
    code, _, err = run(capsys, "compress", "p.png", "-k", "8", "--ext", ".png")
    assert code == 5
    assert only_line(err) == "kmq: error: p.png would be replaced in place by its output; add --force (-f) to do so"
    assert snapshot(in_tmp) == before


def test_in_place_through_a_symbolic_link_replaces_the_file(capsys, in_tmp, photo):
    Image.fromarray(photo).save("real.png")
    os.symlink("real.png", "link.png")
    code, _, err = run(capsys, "compress", "link.png", "-k", "4", "--seed", "0", "--ext", ".png", "-f", "-q")
    assert code == 0, err
    assert os.path.islink("link.png") and os.readlink("link.png") == "real.png"
    assert (in_tmp / "real.png").read_bytes() == kmq.compress(photo, 4, seed=0).to_bytes("png")


def test_in_place_skip_if_larger_keeps_the_original(capsys, in_tmp, photo):
    # A flat image saved optimally: its quantized PNG is no smaller.
    Image.new("RGB", (8, 8), (9, 9, 9)).save("flat.png", optimize=True)
    Image.fromarray(photo).save("photo.bmp")
    flat = (in_tmp / "flat.png").read_bytes()
    code, out, err = run(capsys, "compress", "flat.png", "-k", "2", "--ext", ".png", "-f", "--skip-if-larger", "--json")
    assert code == 98
    assert (in_tmp / "flat.png").read_bytes() == flat
    [record] = json.loads(out)
    assert record["status"] == "skipped" and record["bytes_out"] >= record["bytes_in"] == len(flat)


_KILL_SCRIPT = r"""
import os, sys, time
real_replace = os.replace
when, marker = os.environ["KMQ_TEST_KILL_AT"], os.environ["KMQ_TEST_MARKER"]
def replace(src, dst):
    if when == "before":
        open(marker, "w").close(); time.sleep(120)
    real_replace(src, dst)
    if when == "after":
        open(marker, "w").close(); time.sleep(120)
os.replace = replace
from kmq._cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start_in_place(tmp_path, when):
    env = {**os.environ, "KMQ_TEST_KILL_AT": when, "KMQ_TEST_MARKER": str(tmp_path / "marker")}
    return subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, "compress", "p.png", "-k", "8", "--seed", "0", "--ext", ".png", "-f", "-j", "1", "-q"],
        cwd=tmp_path / "work", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@pytest.fixture
def in_place_setup(tmp_path, photo):
    (tmp_path / "work").mkdir()
    Image.fromarray(photo).save(tmp_path / "work" / "p.png")
    original = (tmp_path / "work" / "p.png").read_bytes()
    new = kmq.compress(photo, 8, seed=0).to_bytes("png")
    return tmp_path, original, new


def _wait_for(path, process):
    while not path.exists():
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)


@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_at_the_replace_leaves_the_original_or_the_new_file(in_place_setup, when):
    tmp_path, original, new = in_place_setup
    process = _start_in_place(tmp_path, when)
    try:
        _wait_for(tmp_path / "marker", process)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert (tmp_path / "work" / "p.png").read_bytes() == (original if when == "before" else new)


def test_killed_at_random_points_never_loses_the_file(in_place_setup):
    tmp_path, original, new = in_place_setup
    rng = random.Random(13)
    for attempt in range(3):
        process = _start_in_place(tmp_path, "never")
        time.sleep(rng.uniform(0.2, 1.5))
        process.kill()
        process.wait()
        content = (tmp_path / "work" / "p.png").read_bytes()
        assert content in (original, new), f"attempt {attempt}: neither the original nor the new file"
        (tmp_path / "work" / "p.png").write_bytes(original)


# -- workers ------------------------------------------------------------------------


def test_two_workers_write_the_same_bytes_as_one(capsys, in_tmp, photo):
    (in_tmp / "in").mkdir()
    for i, image in enumerate(crops(photo, 6)):
        Image.fromarray(image).save(in_tmp / "in" / f"c{i}.png")
    for jobs in ("1", "2"):
        code, _, err = run(capsys, "compress", "in", "-k", "16", "--seed", "3", "-o", f"out{jobs}", "-j", jobs, "-q")
        assert code == 0, err
    assert snapshot(in_tmp / "out1") == snapshot(in_tmp / "out2")
    assert len(snapshot(in_tmp / "out1")) == 6
    expected = kmq.compress(in_tmp / "in" / "c4.png", 16, seed=3).to_bytes()
    assert (in_tmp / "out2" / "c4-k16.kmq").read_bytes() == expected


def test_jobs_are_cores_shared_between_processes_and_threads(monkeypatch):
    """-j N is N cores: a worker per file up to N, the rest as threads; the
    workers really run with their thread limit, and -j 1 in this process
    runs on one thread."""
    from kmq import _files
    from kmq._engine import _parallel

    assert _files._split_cores(2, 100) == (2, 1)
    assert _files._split_cores(1, 100) == (1, 1)
    assert _files._split_cores(4, 1) == (1, 4)
    assert _files._split_cores(5, 2) == (2, 2)
    executor = _files._pool(2, 1)
    try:
        assert [executor.submit(_parallel.cores).result() for _ in range(2)] == [1, 1]
    finally:
        executor.shutdown()
    seen = []
    monkeypatch.setattr(batch, "run_task", lambda task, settings: seen.append(_parallel.cores()) or {})
    batch._run_local(["a", "b"], None, 1, lambda record: None)
    batch._run_local(["a"], None, 3, lambda record: None)
    assert seen == [1, 1, 3]
    assert _parallel._thread_limit is None  # restored after the run


def test_jobs_on_one_image_is_its_threads(capsys, in_tmp, photo):
    # -j on one image names no batch: -o may be a file, and the bytes are
    # those of a run on all cores.
    Image.fromarray(photo).save("one.png")
    for jobs in ("1", "2"):
        code, _, err = run(capsys, "compress", "one.png", "-k", "16", "-o", f"j{jobs}.png", "-j", jobs, "-q")
        assert code == 0, err
    code, _, err = run(capsys, "compress", "one.png", "-k", "16", "-o", "all.png", "-q")
    assert code == 0, err
    assert (in_tmp / "j1.png").read_bytes() == (in_tmp / "j2.png").read_bytes() == (in_tmp / "all.png").read_bytes()


def test_manifest_psnr_is_of_what_is_seen(in_tmp, photo):
    """The manifest's PSNR is the report's: on an image with alpha, of its
    composites, so colour hidden under transparent pixels does not count."""
    from kmq import metrics

    rgba = np.dstack([photo, np.where(np.arange(photo.shape[1]) < 40, 0, 255).astype(np.uint8)[None].repeat(photo.shape[0], 0)])
    rgba[:, :40, :3] = np.random.default_rng(0).integers(0, 256, (photo.shape[0], 40, 3))  # hidden noise
    Image.fromarray(rgba, "RGBA").save("a.png")
    Image.fromarray(photo).save("b.png")
    result = batch.compress_many(["a.png", "b.png"], k=8, seed=0, output_dir="out", jobs=1, progress=False)
    for record, name in zip(result.records, ("a.png", "b.png")):
        source = np.asarray(Image.open(name))
        rebuilt = kmq.load(record["output"]).reconstruct()
        assert record["psnr"] == pytest.approx(metrics.psnr_seen(source, rebuilt), rel=1e-12)
    assert result.records[0]["psnr"] > metrics.psnr(rgba, kmq.load(result.records[0]["output"]).reconstruct()) + 3


def test_library_call_reports_in_input_order(in_tmp, photo):
    for i, image in enumerate(crops(photo, 4)):
        Image.fromarray(image).save(f"c{i}.png")
    seen = []
    result = batch.compress_many(
        [f"c{i}.png" for i in range(4)] + ["missing.png"], k=4, seed=0, output_dir="out", jobs=2,
        progress=False, on_result=lambda r: seen.append(r["input"]),
    )
    assert seen == ["c0.png", "c1.png", "c2.png", "c3.png", "missing.png"]
    assert [r["status"] for r in result.records] == ["ok"] * 4 + ["failed"]
    assert result.records[-1]["error"] == "no such file: missing.png" and result.exit_code == 3
    assert all(r["bytes_out"] == os.path.getsize(r["output"]) for r in result.records[:4])


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys, in_tmp, photo):
    for i, image in enumerate(crops(photo, 2)):
        Image.fromarray(image).save(f"c{i}.png")
    batch.compress_many(["c0.png", "c1.png"], k=4, output_dir="o1", jobs=1, progress=True)
    assert "0/2 [" in capsys.readouterr().err  # the bar, drawn at the start
    # stderr is not a terminal here: no bar by default.
    code, out, err = run(capsys, "compress", "c0.png", "c1.png", "-k", "4", "-o", "o2", "-j", "1")
    assert code == 0 and err == ""


# -- names and folders --------------------------------------------------------------


def test_same_stem_gets_distinct_names(capsys, in_tmp, photo):
    Image.fromarray(photo).save("a.png")
    Image.fromarray(photo[::-1]).save("a.jpg", quality=95)
    code, out, err = run(capsys, "compress", ".", "-k", "4", "--format", "png", "-o", "out", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (in_tmp / "out").iterdir()) == ["a-k4.png", "a.jpg-k4.png"]
    # With .kmq output neither extension matches: both take their whole name.
    code, out, err = run(capsys, "compress", "a.png", "a.jpg", "-k", "4", "-o", "kmqs", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (in_tmp / "kmqs").iterdir()) == ["a.jpg-k4.kmq", "a.png-k4.kmq"]


@pytest.fixture
def tree(in_tmp, photo):
    images = crops(photo, 3)
    (in_tmp / "pics" / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(images[0]).save(in_tmp / "pics" / "a.png")
    Image.fromarray(images[1]).save(in_tmp / "pics" / "sub" / "b.png")
    Image.fromarray(images[2]).save(in_tmp / "pics" / "sub" / "deeper" / "c.png")
    (in_tmp / "pics" / "notes.txt").write_text("not an image")
    return in_tmp


def test_recursive_mirrors_the_tree_and_creates_folders(capsys, tree):
    code, out, err = run(capsys, "compress", "-r", "pics", "-k", "4", "-o", "small/new", "--format", "png", "-j", "1")
    assert code == 0, err
    assert sorted(snapshot(tree / "small" / "new")) == ["a-k4.png", "sub/b-k4.png", "sub/deeper/c-k4.png"]
    assert out.splitlines()[-1].startswith("kmq: 3 images: 3 written, 0 skipped, 0 failed in ")
    assert out.splitlines()[-1].endswith("; 1 file that is not an image skipped")


def test_without_recursive_subfolders_are_counted(capsys, tree):
    code, out, err = run(capsys, "compress", "pics", "-k", "4", "-o", "flat", "-j", "1")
    assert code == 0, err
    assert sorted(snapshot(tree / "flat")) == ["a-k4.kmq"]
    last = out.splitlines()[-1]
    assert last.startswith("kmq: 1 image: 1 written, 0 skipped, 0 failed in ")
    assert last.endswith("; 1 file that is not an image skipped; 1 sub-folder not entered (-r enters them)")


# -- manifest and resume ------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest_rows_and_resume(capsys, in_tmp, photo, suffix):
    for i, image in enumerate(crops(photo, 3)):
        Image.fromarray(image).save(f"c{i}.png")
    (in_tmp / "bad.png").write_text("not a png")
    names = ["c0.png", "bad.png", "c1.png", "c2.png"]
    manifest = f"run{suffix}"
    code, out, err = run(capsys, "compress", *names, "-k", "4", "--seed", "0", "-o", "out", "--manifest", manifest, "-q")
    assert code == 4

    def rows():
        with open(manifest, newline="") as handle:
            if suffix == ".csv":
                return list(csv.DictReader(handle))
            return [json.loads(line) for line in handle]

    first = rows()
    assert sorted(r["input"] for r in first) == sorted(names)
    assert list(first[0]) == list(batch.MANIFEST_FIELDS)
    by_input = {r["input"]: r for r in first}
    assert by_input["bad.png"]["status"] == "failed"
    assert by_input["bad.png"]["error"] == "bad.png is not an image kmq can read (PNG, JPEG, BMP, TIFF, WebP, GIF)"
    ok = by_input["c1.png"]
    assert ok["status"] == "ok" and ok["output"] == os.path.join("out", "c1-k4.kmq")
    assert int(ok["bytes_out"]) == os.path.getsize("out/c1-k4.kmq") and int(ok["k"]) == 4
    assert int(ok["bytes_in"]) == os.path.getsize("c1.png") and float(ok["psnr"]) > 20 and float(ok["seconds"]) >= 0

    # An interrupted run: one output lost, one cut short. --resume redoes
    # those and the failed file, and skips the one recorded and complete.
    os.remove("out/c0-k4.kmq")
    with open("out/c2-k4.kmq", "r+b") as handle:
        handle.truncate(10)
    kept = os.stat("out/c1-k4.kmq").st_mtime_ns
    (in_tmp / "bad.png").unlink()
    Image.fromarray(photo).save("bad.png")
    code, out, err = run(capsys, "compress", *names, "-k", "4", "--seed", "0", "-o", "out", "--manifest", manifest, "--resume", "-f")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("kmq: 4 images: 3 written, 0 skipped, 0 failed, 1 already done (--resume) in ")
    assert os.stat("out/c1-k4.kmq").st_mtime_ns == kept
    for i in range(3):
        assert kmq.load(f"out/c{i}-k4.kmq") == kmq.compress(f"c{i}.png", 4, seed=0)
    second = rows()[len(first):]
    assert sorted(r["input"] for r in second) == ["bad.png", "c0.png", "c2.png"]
    assert all(r["status"] == "ok" for r in second)


def test_resume_needs_a_manifest(capsys, in_tmp, photo):
    Image.fromarray(photo).save("a.png")
    code, _, err = run(capsys, "compress", "a.png", "--resume", "-k", "4")
    assert code == 2
    assert only_line(err) == "kmq: error: --resume needs --manifest FILE (the record of the earlier run)"


def test_manifest_extension_is_checked(capsys, in_tmp, photo):
    Image.fromarray(photo).save("a.png")
    code, _, err = run(capsys, "compress", "a.png", "--manifest", "run.txt", "-k", "4")
    assert code == 2
    assert only_line(err) == "kmq: error: --manifest must end in .csv or .jsonl, got 'run.txt'"
    assert not os.path.exists("run.txt")


def test_rerun_without_force_accepts_only_identical_outputs(capsys, in_tmp, photo):
    # A task run twice (its first result lost with a Dask worker) finds its
    # own output: the same bytes, so nothing to do. Anything else needs -f.
    for i, image in enumerate(crops(photo, 2)):
        Image.fromarray(image).save(f"c{i}.png")
    args = ["compress", "c0.png", "c1.png", "-k", "4", "--seed", "0", "-o", "out", "-j", "1", "-q"]
    assert run(capsys, *args)[0] == 0
    assert run(capsys, *args)[0] == 0
    (in_tmp / "out" / "c1-k4.kmq").write_bytes(b"someone else's file")
    code, _, err = run(capsys, *args)
    assert code == 5
    assert only_line(err) == "kmq: error: c1.png: out/c1-k4.kmq already exists; use --force (-f) to overwrite it"
    assert (in_tmp / "out" / "c1-k4.kmq").read_bytes() == b"someone else's file"
