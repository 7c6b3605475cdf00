"""The cache verifies itself: a damaged entry is reported, discarded and recomputed, never served."""

from __future__ import annotations

import json
import os

import torch

from harbench.results.store import Store
from harbench.run import Runner
from harbench.run.cache import WeightCache
from harbench.suite import parse_suite

from .conftest import tiny_suite

TEXT = tiny_suite(methods="[generic, {name: finetune-last, params: {epochs: 2}}]")
ACC = ("acc_seen", "acc_unseen", "f1_seen")


def run(registry, folder):
    runner = Runner(parse_suite(TEXT, "tiny.yaml", registry), registry, Store(folder))
    summary = runner.run()
    rows = Store(folder).job_rows(summary.run_id)
    return runner, {(r["method"], r["user"]): tuple(r[m] for m in ACC) for r in rows}


def test_damaged_json_tensor_and_truncated_entries_are_discarded_and_recomputed(registry, tmp_path, capsys):
    _, reference = run(registry, tmp_path)
    cache = tmp_path / "cache"
    job = sorted(cache.glob("job-*.json"))[0]
    doc = json.loads(job.read_text())
    doc["payload"]["metrics"]["acc_seen"] = 0.123456  # one value changed, the digest not
    job.write_text(json.dumps(doc))
    generic = next(cache.glob("generic-*.safetensors"))
    data = bytearray(generic.read_bytes())
    data[-3] ^= 0x40  # an exponent bit of the last weight
    generic.write_bytes(bytes(data))
    for prepare in cache.glob("prepare-*.safetensors"):  # truncated (only the damaged job's method reads its own)
        prepare.write_bytes(prepare.read_bytes()[:40])
    (cache / ".999999999-leftover.tmp").write_text("half a write")
    runner, again = run(registry, tmp_path)
    err = capsys.readouterr().err
    assert err.count("is damaged") == 3 and "discarded, it will be recomputed" in err
    assert again == reference  # the damaged job was recomputed, not served
    assert runner.cache.damaged == 3 and runner.counters.generic_trained == 1
    assert not (cache / ".999999999-leftover.tmp").exists()
    _, third = run(registry, tmp_path)  # and the recomputed entries are good again
    assert third == reference and "damaged" not in capsys.readouterr().err


def test_digest_covers_names_shapes_and_bytes(tmp_path):
    cache = WeightCache(tmp_path, on_damage=lambda msg: None)
    cache.put("x", "k", {"w": torch.arange(6.0).reshape(2, 3)}, {"a": 1})
    tensors, meta = cache.get("x", "k")
    assert meta == {"a": 1} and torch.equal(tensors["w"], torch.arange(6.0).reshape(2, 3))
    cache.put_json("j", "k", {"v": 0.25})
    assert cache.get_json("j", "k") == {"v": 0.25}
    path = tmp_path / "j-k.json"
    path.write_text(path.read_text().replace("0.25", "0.35"))
    assert cache.get_json("j", "k") is None and not path.exists() and cache.damaged == 1
    live = tmp_path / f".{os.getpid()}-mine.tmp"
    live.write_text("")
    assert cache.clean() == 0 and live.exists()  # this process's own write in flight stays
