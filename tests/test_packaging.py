"""The installed package, outside the checkout: a wheel carries the configs, and the documented
commands run from an empty directory with the bundled configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from avssl.cli import main
from avssl.cli.bundled import CONFIG_DIR, bundled_configs, resolve
from avssl.errors import ConfigError
from tests.conftest import TINY_DATA_ARGS

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_configs_are_found_by_name_and_a_path_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve("simclr.yaml") == resolve("simclr") == resolve("configs/simclr.yaml") == CONFIG_DIR / "simclr.yaml"
    assert resolve("paper/table2") == CONFIG_DIR / "paper" / "table2"
    (tmp_path / "simclr.yaml").write_text("model: {}\n")
    assert resolve("simclr.yaml") == Path("simclr.yaml")  # a file in the working directory wins
    with pytest.raises(ConfigError, match="no bundled config"):
        resolve("nosuch.yaml")
    assert {"simclr.yaml", "linear.yaml", "base.yaml", "paper/table2/control.yaml"} <= set(bundled_configs())


@pytest.mark.parametrize("method", ["simclr", "byol", "mocov3", "simsiam", "supervised"])
def test_method_configs_hold_only_the_method_and_log_under_its_name(method, tiny_root):
    """The shared trainer comes from the bundled base; heads are the classes' defaults (the
    paper's), so a method file names its class and nothing else."""
    import yaml

    from avssl.cli import instantiate

    assert set(yaml.safe_load((CONFIG_DIR / f"{method}.yaml").read_text())) == {"model"}
    model, _, trainer = instantiate(["--config", f"{method}.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}"])
    assert trainer.logger.name == method and trainer.max_epochs == 500 and model.hparams.backbone["width"] == 64


def test_configs_command_lists_and_prints(capsys):
    main(["configs"])
    out = capsys.readouterr().out
    assert "simclr.yaml" in out and "paper/table2/" in out and "13 cells" in out
    main(["configs", "byol"])
    assert capsys.readouterr().out == (CONFIG_DIR / "byol.yaml").read_text()


@pytest.mark.slow
def test_a_wheel_installed_outside_the_checkout_runs_the_bundled_configs(tmp_path, tiny_root):
    """Build a wheel, install it into a fresh virtual environment (its dependencies taken from the
    running one), and from an empty directory pre-train one step with the bundled ``simclr.yaml``
    and evaluate the checkpoint with the bundled ``linear.yaml``."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(wheels.glob("avssl-*.whl"))
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip()
    )
    # the dependencies (torch, Lightning, PyAV, ...) from this environment, not avssl itself: its
    # editable install is a finder in a .pth file, which a path added this way does not run
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], check=True)
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": "", "AVSSL_CACHE": str(tmp_path / "cache")}
    where = subprocess.check_output([str(python), "-c", "import avssl; print(avssl.__file__)"], cwd=work, env=env, text=True)
    assert where.startswith(str(env_dir)), where  # the installed wheel, not the checkout
    avssl = [str(env_dir / "bin" / "avssl")]
    small = [
        "--model.init_args.backbone.width=8",
        "--model.init_args.backbone.layers=[1, 1, 1, 1]",
        "--data.short_side=40",
        "--data.sample_rate=16000",
    ]
    fit = [
        *avssl,
        "fit",
        "--config",
        "simclr.yaml",
        *TINY_DATA_ARGS,
        f"--data.synthetic_root={tiny_root}",
        *small,
        "--model.init_args.proj_hidden_dim=32",
        "--model.init_args.proj_dim=16",
        "--data.augment.crop_size=32",
        "--trainer.max_steps=1",
        "--trainer.accelerator=cpu",
        "--trainer.callbacks.init_args.dirpath=ckpt",
    ]
    subprocess.run(fit, cwd=work, env=env, check=True, capture_output=True)
    test = [
        *avssl,
        "test",
        "--config",
        "configs/linear.yaml",
        "--model.encoder_ckpt=ckpt/last.ckpt",
        "--model.init_args.mode=knn",
        "--model.init_args.output_dir=probe",
        "--data.batch_size=4",
        "--data.num_workers=0",
        "--data.short_side=40",
        "--data.eval_clips=1",
        "--data.augment.crop_size=32",
        "--data.augment.eval_crop_size=32",
        "--trainer.accelerator=cpu",
    ]
    subprocess.run(test, cwd=work, env=env, check=True, capture_output=True)
    results = json.loads((work / "probe" / "results.json").read_text())
    assert results["mode"] == "knn" and results["num_test_videos"] > 0 and len(results["encoder_sha256"]) == 64
