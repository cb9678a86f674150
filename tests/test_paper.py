"""configs/paper (one file per table cell), the grid runner and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from avssl.cli import instantiate, main
from avssl.errors import ConfigError
from avssl.paper.cells import CELLS, PAPER, write_configs
from avssl.paper.report import collect, figure3_matrix, means, write_report
from avssl.paper.stats import paired_difference
from tests.conftest import TINY_DATA_ARGS

SMALL = ["--model.init_args.backbone.width=4", "--model.init_args.backbone.layers=[1, 1, 1, 1]"]
ALL_CELLS = [(table, cell) for table, cells in CELLS.items() for cell in cells]


def test_cell_files_are_in_sync_with_avssl_paper(tmp_path):
    written = {p.relative_to(tmp_path) for p in write_configs(tmp_path)}
    shipped = {p.relative_to("configs/paper") for p in Path("configs/paper").rglob("*.yaml")}
    assert written == shipped and len(written) == 103
    for rel in written:
        assert (tmp_path / rel).read_text() == (Path("configs/paper") / rel).read_text(), rel


def test_cell_counts_match_the_paper():
    sizes = {table: len(cells) for table, cells in CELLS.items()}
    # T1 2 audio augs x 2 places; T2 4 x 3 alphas + control; F3 12 ordered pairs + 4 singles + control;
    # T3 2 x 4 locations + control; T4 (4 frames + 4 hops + 4 rates) x with/without RE; T5 5 x 4 epochs;
    # beyond the paper: (5 + 3 methods) x with/without RE
    assert sizes == {"table1": 4, "table2": 13, "figure3": 17, "table3": 9, "table4": 24, "table5": 20, "methods": 16}
    assert all(cell in CELLS[table] for table, cells in PAPER.items() for cell in cells)


@pytest.mark.parametrize("table, cell", ALL_CELLS, ids=[f"{t}/{c}" for t, c in ALL_CELLS])
def test_every_cell_instantiates_its_model_and_data(table, cell, tiny_root):
    args = [
        "--config=configs/simclr.yaml",
        f"--config=configs/paper/{table}/{cell}.yaml",
        *TINY_DATA_ARGS,
        f"--data.synthetic_root={tiny_root}",
        *SMALL,
    ]
    model, data, _ = instantiate(args)
    override = yaml.safe_load(Path(f"configs/paper/{table}/{cell}.yaml").read_text())
    temporal = override.get("data", {}).get("augment", {}).get("temporal")
    if temporal is not None:
        assert [(t.name, t.alpha, t.streams) for t in data.views.augment.temporal] == [
            (t["name"], t["alpha"], t["streams"]) for t in temporal
        ]
    if "num_frames" in override.get("data", {}):
        assert data.clip.num_frames == override["data"]["num_frames"]
    if "model" in override:
        assert override["model"]["class_path"].endswith(type(model).__name__)


def tiny_extra(tmp_path, tiny_root):
    extra = tmp_path / "tiny.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "trainer": {"limit_val_batches": 1, "log_every_n_steps": 1},
                "model": {"init_args": {"backbone": {"width": 4, "layers": [1, 1, 1, 1]}, "proj_hidden_dim": 16, "proj_dim": 8}},
                "data": {
                    "synthetic": {"num_classes": 4, "videos_per_class": 6, "duration": 3.0, "size": 48, "seed": 1},
                    "synthetic_root": str(tiny_root),
                    "num_workers": 0,
                    "batch_size": 4,
                    "short_side": 40,
                    "sample_rate": 16000,
                    "augment": {"crop_size": 32},
                },
            }
        )
    )
    linear = tmp_path / "tiny_linear.yaml"
    linear.write_text(
        yaml.safe_dump(
            {
                "trainer": {"max_epochs": 2},
                "model": {"init_args": {"train_clips": 1}},
                "data": {
                    "eval_clips": 1,
                    "eval_crops": 1,
                    "short_side": 40,
                    "num_workers": 0,
                    "batch_size": 4,
                    "augment": {"crop_size": 32, "eval_crop_size": 32},
                },
            }
        )
    )
    return extra, linear


def test_grid_dry_run_prints_every_command(capsys):
    main(["grid", "configs/paper/table2", "--dry-run", "--epochs", "100", "--data-root", "/data/AVE", "--devices", "4", "--seeds", "0,1"])
    out = capsys.readouterr().out
    fits = [line for line in out.splitlines() if line.startswith("avssl fit")]
    tests = [line for line in out.splitlines() if line.startswith("avssl test")]
    assert len(fits) == len(tests) == 13 * 2
    assert all("--trainer.max_epochs=100" in f and "--data.root=/data/AVE" in f and "--trainer.devices=4" in f for f in fits)
    assert all("--model.init_args.mode=full" in t for t in tests)  # the paper's protocol by default
    assert "--seed_everything=1" in out and "--data.seed=1" in out
    assert "configs/paper/table2/re_a075.yaml" in out and "runs/grid/table2/re_a075/seed1/checkpoints/last.ckpt" in out
    assert not any("--data." in t for t in tests)  # the evaluation takes the encoder's data settings from its checkpoint


def test_grid_takes_comma_separated_configs_and_checks_them_before_any_run(capsys, tmp_path):
    main(["grid", "configs/paper/table2/control.yaml", "--dry-run", "--linear", "linear.yaml,demo_linear.yaml", "--extra", "demo.yaml"])
    tests = [line for line in capsys.readouterr().out.splitlines() if line.startswith("avssl test")]
    assert tests and all("--config=linear.yaml --config=demo_linear.yaml" in t for t in tests)
    with pytest.raises(SystemExit) as exit_:
        main(["grid", "configs/paper/table2/control.yaml", "--out", str(tmp_path), "--linear", "linear.yaml,nothere.yaml"])
    assert exit_.value.code == 2 and "grid: --linear nothere.yaml: no such file" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before pre-training anything


def test_report_lists_plain_evaluations_beside_the_cells(tmp_path):
    """A plain ``avssl test`` run's results.json (outside the paper's cells) gets a row of its own."""
    run = tmp_path / "linear" / "version_0"
    run.mkdir(parents=True)
    metrics = {
        "pretrained/cached/fused": {"top1": 87.5},
        "random-init/cached/fused": {"top1": 61.25},
        "pretrained/cached/audio": {"top1": 70.0},
    }
    (run / "results.json").write_text(json.dumps({"mode": "cached", "dataset": "synthetic", "metrics": metrics}))
    text = write_report(tmp_path).read_text()
    assert "## Other evaluations" in text
    row = next(line for line in text.splitlines() if line.startswith("| linear/version_0/results.json"))
    assert "| cached | synthetic | 87.50 | 70.00 | — | 61.25 |" in row, row


def test_grid_runs_cells_and_seeds_resumably_and_report_shows_them(tmp_path, tiny_root, capsys):
    extra, linear = tiny_extra(tmp_path, tiny_root)
    out = tmp_path / "grid"
    cells = ["configs/paper/table2/control.yaml", "configs/paper/table2/re_a075.yaml"]
    args = ["grid", *cells, "--out", str(out), "--extra", str(extra), "--linear", "configs/linear.yaml", "--linear", str(linear)]
    args += ["--epochs", "1", "--seeds", "0,1", "--modes", "full,cached"]
    main(args)
    for cell in ("control", "re_a075"):
        for seed in (0, 1):
            for mode in ("full", "cached"):
                results = json.loads((out / "table2" / cell / f"seed{seed}" / f"linear_{mode}" / "results.json").read_text())
                assert results["mode"] == mode and results["evaluation_data"]["sample_rate"] == 16000  # from the checkpoint
    main(args)
    assert capsys.readouterr().out.count("done, skipped") == 4
    main(["report", str(out)])
    report = (out / "report" / "report.md").read_text()
    full, cached = report.split("# Mode `cached`")
    assert "(65.42)" in full and "(58.70)" in full and "(n=2)" in full and "difference from the control" in full
    assert "(65.42)" not in cached and "fast mode" in cached  # no paper numbers beside a fast mode
    collected = collect(out)
    assert set(collected) == {"full", "cached"} and set(collected["full"]["table2"]) == {"control", "re_a075"}
    assert set(collected["full"]["table2"]["control"]) == {0, 1}
    assert (out / "report" / "figure3.png").stat().st_size > 0 and (out / "report" / "table4.png").stat().st_size > 0


def result(root, table, cell, top1, mode="full", seed=0):
    path = root / table / cell / f"seed{seed}" / f"linear_{mode}" / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mode": mode, "metrics": {f"pretrained/{mode}/fused": {"top1": top1}}}))


def test_report_never_fills_missing_cells_and_keeps_modes_apart(tmp_path):
    result(tmp_path, "table2", "re_a075", 62.0)
    result(tmp_path, "table2", "re_a075", 61.0, mode="cached")
    for first in ("re", "fd", "tm"):
        result(tmp_path, "figure3", first, 50.0)
        result(tmp_path, "figure3", first, 52.0, seed=1)
    result(tmp_path, "figure3", "re_fd", 54.0)
    result(tmp_path, "table2", "control", 58.0)
    result(tmp_path, "table2", "control", 60.0, seed=1)
    write_report(tmp_path)
    report = (tmp_path / "report" / "report.md").read_text()
    full, cached = report.split("# Mode `cached`")
    assert "62.00 (65.42)" in full and "61.00" in cached and "61.00 (" not in cached
    assert "— (49.75)" in full  # FD alpha 0.25: not run, paper number shown, nothing invented
    assert "59.00 ± 1.41 (n=2) (58.70)" in full  # mean ± sd over seeds
    matrix = figure3_matrix(means(collect(tmp_path)["full"]))
    assert matrix[0][0] == 51.0 and matrix[0][1] == 54.0 and matrix[0][4] is None  # RE row incomplete: no mean
    assert matrix[4][4] is None  # control not run
    assert "RE + TS" in report and "64.7" in report and "64.18" in report  # the quoted Figure 3 value and its conflict


def test_report_of_one_streams_readout(tmp_path):
    for seed, (fused, video) in enumerate([(62.0, 40.0), (64.0, 44.0)]):
        path = tmp_path / "table3" / "re_video" / f"seed{seed}" / "linear_full" / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        metrics = {"pretrained/full/fused": {"top1": fused}, "pretrained/full/video": {"top1": video}}
        path.write_text(json.dumps({"mode": "full", "metrics": metrics}))
    assert collect(tmp_path, "video")["full"]["table3"]["re_video"] == {0: 40.0, 1: 44.0}
    assert collect(tmp_path, "audio") == {}  # no audio readout in these results: nothing invented
    path = write_report(tmp_path, readout="video")
    assert path.name == "report_video.md"
    report = path.read_text()
    assert "video encoder alone" in report and "42.00 ± 2.83 (n=2)" in report
    assert "(59.95)" not in report and "Not comparable" in report  # the paper has no per-stream numbers
    assert not (tmp_path / "report" / "report.md").exists()
    with pytest.raises(ConfigError, match="readout"):
        write_report(tmp_path, readout="both")


def test_report_lays_out_every_method_with_and_without_re(tmp_path):
    for seed, (none, re_) in enumerate([(50.0, 53.0), (52.0, 56.0), (51.0, 55.0)]):
        result(tmp_path, "methods", "vicreg_none", none, seed=seed)
        result(tmp_path, "methods", "vicreg_re", re_, seed=seed)
    result(tmp_path, "methods", "cross_modal_re", 40.0)
    report = (write_report(tmp_path)).read_text()
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
    assert "51.00 ± 1.00 (n=3)" in rows["vicreg"] and "54.67 ± 1.53 (n=3)" in rows["vicreg"]
    assert "+3.67 [+2.23, +5.10] (n=3)" in rows["vicreg"]  # paired by seed: differences 3, 4, 4
    assert rows["cross_modal"].count("—") == 2 and "40.00" in rows["cross_modal"]  # no control run: no difference
    assert all(method in rows for method in ("simclr", "mocov3", "byol", "simsiam", "supervised", "barlow_twins"))


def test_paired_difference_and_its_confidence_interval():
    mean, half, n = paired_difference({0: 60.0, 1: 62.0, 2: 61.0, 3: 70.0}, {0: 58.0, 1: 59.0, 2: 60.0})
    assert n == 3 and mean == pytest.approx(2.0)  # seed 3 has no control: left out
    assert half == pytest.approx(4.303 * 1.0 / 3**0.5)  # t(0.975, 2) x sd / sqrt(n)
    assert paired_difference({0: 1.0}, {1: 2.0}) is None
