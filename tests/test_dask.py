"""Batches on real dask.distributed clusters: a LocalCluster of worker
processes, and a scheduler with two workers started here as separate
processes on 127.0.0.1. Same bytes as a local run; a worker killed mid-run
loses no file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq import batch
from kmq._cli import main

distributed = pytest.importorskip("distributed")


def crops(photo, n):
    return [np.ascontiguousarray(np.roll(photo, 5 * i, axis=1)[: 40 + i, :56]) for i in range(n)]


def visible(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


@pytest.fixture
def images(tmp_path, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, image in enumerate(crops(photo, 8)):
        Image.fromarray(image).save(folder / f"c{i}.png")
    return folder


@pytest.fixture(scope="module")
def local_client():
    cluster = distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_local_cluster_writes_the_same_bytes_as_a_local_run(tmp_path, images, local_client):
    names = sorted(str(p) for p in images.iterdir())
    here = batch.compress_many(names, k=8, seed=1, output_dir=tmp_path / "local", jobs=1, progress=False)
    there = batch.compress_many(
        names, k=8, seed=1, output_dir=tmp_path / "dask", client=local_client, progress=False,
        manifest=tmp_path / "run.jsonl",
    )
    assert here.exit_code == there.exit_code == 0
    assert visible(tmp_path / "local") == visible(tmp_path / "dask")
    assert len(visible(tmp_path / "dask")) == 8
    rows = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert sorted(r["input"] for r in rows) == names and {r["status"] for r in rows} == {"ok"}
    # The workers ran it: their process ids are not ours.
    assert os.getpid() not in set(local_client.run(os.getpid).values())


def test_shared_palette_on_the_cluster_is_the_local_one(images, local_client):
    from kmq.palette import fit_palette

    names = sorted(str(p) for p in images.iterdir())
    there, n_there, colours_there = fit_palette(names, 8, seed=0, client=local_client)
    here, n_here, colours_here = fit_palette(names, 8, seed=0, jobs=1)
    assert np.array_equal(there, here) and (n_there, colours_there) == (n_here, colours_here) == (8, colours_here)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def process_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (no nanny, so a
    killed worker stays dead), stopped at the end."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = open(tmp_path / "cluster.log", "wb")
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"],
        stdout=logs, stderr=subprocess.STDOUT,
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
             "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
            stdout=logs, stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    try:
        client = distributed.Client(address, timeout="60s")
        client.wait_for_workers(2, timeout=120)
        yield address, client, workers
        client.close()
    finally:
        for process in [*workers, scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*workers, scheduler]:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        logs.close()


def test_cli_on_a_scheduler_and_two_worker_processes(capsys, tmp_path, images, process_cluster, monkeypatch):
    address, client, workers = process_cluster
    monkeypatch.chdir(tmp_path)
    code = main(["compress", "in", "-k", "8", "--seed", "2", "-o", "remote", "--format", "png", "--scheduler", address])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[-1].startswith("kmq: 8 images: 8 written, 0 skipped, 0 failed in ")
    code = main(["compress", "in", "-k", "8", "--seed", "2", "-o", "here", "--format", "png", "-j", "1", "-q"])
    assert code == 0
    assert visible(tmp_path / "remote") == visible(tmp_path / "here")


def test_a_worker_killed_mid_run_loses_no_file(tmp_path, photo, process_cluster):
    address, client, workers = process_cluster
    folder = tmp_path / "many"
    folder.mkdir()
    for i, image in enumerate(crops(photo, 16)):
        Image.fromarray(image).save(folder / f"m{i:02d}.png")
    names = sorted(str(p) for p in folder.iterdir())
    killed = []

    def kill_one(record):
        if not killed:
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            killed.append(record["input"])

    result = batch.compress_many(
        names, k=8, seed=4, output_dir=tmp_path / "out", client=client, progress=False,
        manifest=tmp_path / "run.csv", on_result=kill_one,
    )
    assert killed and workers[0].returncode == -signal.SIGKILL
    assert [r["status"] for r in result.records] == ["ok"] * 16, [r["error"] for r in result.records]
    expected = {f"m{i:02d}-k8.kmq": kmq.compress(folder / f"m{i:02d}.png", 8, seed=4).to_bytes() for i in range(16)}
    assert visible(tmp_path / "out") == expected
    lines = (tmp_path / "run.csv").read_text().splitlines()
    assert lines[0] == ",".join(batch.MANIFEST_FIELDS)
    assert sorted(line.split(",")[0] for line in lines[1:]) == names  # one row each, none twice
    # The survivor did the rest.
    assert len(client.scheduler_info()["workers"]) == 1
