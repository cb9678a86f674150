"""The GPU path, proven on CPU: a training step reads nothing back from the device outside
Lightning's logging steps, the augmentation runs on (fake) CUDA tensors without host reads,
blocking copies or device mixing, and the losses stay float32 under bf16 autocast."""

from __future__ import annotations

import traceback

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

import avssl
from avssl import losses
from avssl.augment.audio import SpectrogramConfig, overlap_add_istft
from avssl.augment.pipeline import AugmentConfig, AVTransform
from avssl.cli import instantiate
from avssl.reliability.finite import FiniteGuard, NonFiniteLossError
from tests.conftest import TINY, TINY_DATA_ARGS

# ops whose result the host must wait for: a scalar read, or an output shape that depends on the data
HOST_READS = {"_local_scalar_dense", "item", "nonzero", "unique", "_unique", "_unique2", "unique_dim", "unique_consecutive"}
HOST_READS |= {"equal", "is_nonzero", "masked_select"}
METHODS = ["simclr", "mocov3", "byol", "simsiam", "supervised", "vicreg", "barlow_twins", "cross_modal", "cavmae"]
TINY_VIT = {"encoder": "vit", "dim": 16, "depth": 1, "heads": 2, "patch_size": 8, "shared_depth": 1, "fusion": "joint"}
TINY_DECODER = {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}


def _where() -> str:
    frames = [f for f in traceback.extract_stack()[:-2] if "/avssl/" in f.filename or "pytorch_lightning" in f.filename]
    return " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in frames[-3:][::-1])


class HostReads(TorchDispatchMode):
    """Records every host-reading op with the training step it belongs to."""

    def __init__(self):
        super().__init__()
        self.step, self.reads = 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in HOST_READS:
            self.reads.append((self.step, func.overloadpacket.__name__, _where()))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", METHODS)
def test_training_steps_read_nothing_back_from_the_device(method, tiny_root, tmp_path):
    """Steps 1-2 of a real ``trainer.fit`` as ``avssl fit`` configures it (batch fetch, transfer,
    the default augmentations with pitch shift, forward, backward, optimiser, EMA, logging), with no
    logging step among them: zero host reads."""
    assert AugmentConfig().audio.pitch_p > 0 and AugmentConfig().temporal  # the defaults exercised
    import pytorch_lightning as pl

    # the method's bundled config with the default augmentations (colour, pitch shift, RE), tiny sizes
    args = ["--config", f"configs/{method}.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}", "--trainer.accelerator=cpu"]
    args += ["--model.init_args.backbone.width=4", "--model.init_args.backbone.layers=[1,1,1,1]", "--data.short_side=40"]
    args += ["--data.sample_rate=16000", "--data.spectrogram.n_fft=512", "--data.spectrogram.n_mels=32", "--data.augment.crop_size=32"]
    args += ["--data.num_workers=1", "--data.batch_size=2", "--trainer.max_epochs=1", "--trainer.limit_train_batches=4"]
    args += ["--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0", "--trainer.log_every_n_steps=1000"]
    args += [f"--trainer.logger.init_args.save_dir={tmp_path}", f"--trainer.callbacks.init_args.dirpath={tmp_path / 'ckpt'}"]
    if method in ("vicreg", "barlow_twins"):  # their 3 x 8192 heads are minutes of CPU; the step's code is the same
        args += ["--model.init_args.proj_hidden_dim=64", "--model.init_args.proj_dim=64"]
    if method == "cavmae":  # ViT-B and its decoder at test size
        args += [f"--model.init_args.backbone.{k}={v}" for k, v in TINY_VIT.items()]
        args += [f"--model.init_args.{k}={v}" for k, v in TINY_DECODER.items()]
    model, data, trainer = instantiate(args)
    recorder = HostReads()

    class Marker(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            recorder.step = batch_idx + 1  # what follows belongs to the next step

    trainer.callbacks.append(Marker())
    with recorder:
        trainer.fit(model, data)
    assert trainer.global_step == 4
    in_steps = [r for r in recorder.reads if r[0] in (1, 2)]
    assert not in_steps, "\n".join(f"step {s}: {op} at {where}" for s, op, where in in_steps[:10])
    assert any(r[0] > 2 for r in recorder.reads)  # the recorder sees the reads that do happen (epoch end)


def test_eval_views_read_nothing_back(tiny_root):
    transform = AVTransform(16000, AugmentConfig(crop_size=32), SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32))
    batch = {"video": torch.zeros(2, 2, 4, 40, 48, 3, dtype=torch.uint8), "audio": torch.randn(2, 2, 16000), "label": torch.zeros(2)}
    batch["extent"] = torch.tensor([[40, 48], [36, 40]])
    recorder = HostReads()
    with recorder:
        transform.eval_views(batch, [0.0, 0.5, 1.0])
        transform.eval_views({k: v for k, v in batch.items() if k != "extent"})
    assert not recorder.reads, recorder.reads


class BlockingCopies(TorchDispatchMode):
    """Host-to-device copies that the host waits for (``non_blocking=False``)."""

    def __init__(self):
        super().__init__()
        self.copies = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket.__name__ in ("_to_copy", "copy_"):
            source = args[1] if func.overloadpacket.__name__ == "copy_" else args[0]
            target = args[0].device if func.overloadpacket.__name__ == "copy_" else kwargs.get("device")
            blocking = not kwargs.get("non_blocking", args[2] if len(args) > 2 and func.overloadpacket.__name__ == "copy_" else False)
            if source.device.type == "cpu" and target is not None and torch.device(target).type == "cuda" and blocking:
                self.copies.append(_where())
        return func(*args, **kwargs)


@pytest.fixture
def fake_cuda(monkeypatch):
    """Fake CUDA tensors on a CPU-only machine: generators and pinned memory stand in on the CPU."""
    real = torch.Generator

    class CPUGenerator:
        def __new__(cls, device=None):
            return real()

    monkeypatch.setattr(torch, "Generator", CPUGenerator)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: self)
    return FakeTensorMode(allow_non_fake_inputs=True)


@pytest.mark.parametrize("method", METHODS)
def test_augmentation_and_loss_on_fake_cuda_have_no_host_reads_blocking_copies_or_cpu_tensors(method, fake_cuda):
    """Fake tensors raise on a host read or on CPU / CUDA mixing; blocking copies are recorded."""
    transform = AVTransform(16000, AugmentConfig(crop_size=32), SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32))
    cls = {"simclr": avssl.SimCLR, "mocov3": avssl.MoCoV3, "byol": avssl.BYOL, "simsiam": avssl.SimSiam, "supervised": avssl.Supervised}
    cls |= {"vicreg": avssl.VICReg, "barlow_twins": avssl.BarlowTwins, "cross_modal": avssl.CrossModal, "cavmae": avssl.CAVMAE}
    kwargs = {"num_classes": 4} if method == "supervised" else {}
    kwargs |= {"proj_hidden_dim": 64, "proj_dim": 64} if method in ("vicreg", "barlow_twins") else {}  # not 3 x 8192 on the CPU
    backbone = avssl.BackboneConfig(**TINY_VIT) if method == "cavmae" else avssl.BackboneConfig(width=4, layers=(1, 1, 1, 1))
    model = cls[method](backbone=backbone, **kwargs, **(TINY_DECODER if method == "cavmae" else {}))
    generator = torch.Generator().manual_seed(0)
    model.mask_generator = lambda device: generator  # CAV-MAE's masks: the trainer's per-batch generator
    copies = BlockingCopies()
    with fake_cuda:
        transform, model = transform.to("cuda"), model.to("cuda")
        batch = {
            "video": torch.zeros(4, 2, 4, 40, 48, 3, dtype=torch.uint8, device="cuda"),
            "audio": torch.zeros(4, 2, 16000, device="cuda"),
        }
        batch |= {"label": torch.zeros(4, dtype=torch.long, device="cuda"), "extent": torch.full((4, 2), 40, device="cuda")}
        batch |= {"index": torch.arange(4, device="cuda")}
        with copies:  # the step: augmentation, forward, loss
            views = transform.train_views(batch, generator)
            transform.eval_views(batch, [0.0, 0.5, 1.0])
            loss, *_ = model.objective(views)
    assert loss.device.type == "cuda" and not copies.copies, copies.copies


def test_the_blocking_copy_recorder_catches_a_list_copied_to_the_device(fake_cuda):
    copies = BlockingCopies()
    with fake_cuda, copies:
        x = torch.zeros(3, device="cuda")
        x * torch.tensor([1.0, 2.0, 3.0], device=x.device)  # what normalisation did with its mean / std
    assert copies.copies


@pytest.mark.parametrize("n_fft, hop", [(512, 128), (256, 64)])
@pytest.mark.parametrize("length", [16000, 13451, 19027])
def test_overlap_add_istft_equals_torch_istft(n_fft, hop, length):
    window = torch.hann_window(n_fft)
    spec = torch.stft(torch.randn(3, 16000, generator=torch.Generator().manual_seed(1)), n_fft, hop, window=window, return_complex=True)
    spec = spec * torch.exp(1j * torch.rand(spec.shape, generator=torch.Generator().manual_seed(2)))  # not a consistent STFT
    expected = torch.istft(spec, n_fft, hop, window=window, length=length)
    torch.testing.assert_close(overlap_add_istft(spec, n_fft, hop, window, length), expected, atol=1e-5, rtol=1e-5)


def _bf16_close(fn, *tensors, **kwargs):
    exact = fn(*(t.float() for t in tensors), **kwargs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = fn(*(t.bfloat16() for t in tensors), **kwargs)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, atol=1e-6, rtol=1e-6)


def test_losses_are_float32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 128, generator=g), torch.randn(256, 128, generator=g)
    # the embeddings come in bf16; the loss of their float32 values must come out, in float32
    a, b = a.bfloat16().float(), b.bfloat16().float()
    _bf16_close(losses.info_nce, a, b)
    _bf16_close(losses.byol_loss, a, b)
    _bf16_close(losses.simsiam_loss, a, b)
    _bf16_close(losses.cross_modal_nce, a, b)
    queue = torch.randn(4096, 128, generator=g).bfloat16().float()
    _bf16_close(lambda q, k, qu: losses.moco_loss(q, k, queue=qu), a, b, queue)


def test_finite_guard_names_the_first_bad_step_when_it_checks():
    guard = FiniteGuard("training loss", "resume")
    for step, value in enumerate([1.0, float("nan"), 2.0, float("inf")]):
        guard.record(torch.tensor(value), step, [f"clip{step}"])
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss at step 1, batch of videos \['clip1'\]"):
        guard.check()
    guard.record(torch.tensor(1.0), 4)
    guard.check()  # checked and reset: a finite step passes


TINY_ARCH = avssl.BackboneConfig(width=4, layers=(1, 1, 1, 1))


def _views(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 2, 3, 4, 32, 32, generator=g), torch.randn(2, 2, 1, 32, 64, generator=g)


def test_channels_last_gives_the_same_features_in_the_other_memory_format():
    video, spec = _views()
    model = avssl.SimCLR(backbone=TINY_ARCH, proj_hidden_dim=16, proj_dim=8, channels_last=True).eval()
    expected = {k: v.detach() for k, v in model.encode_streams(video, spec).items()}
    model.configure_model()
    conv = next(m for m in model.backbone.video.modules() if isinstance(m, torch.nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    for key, value in model.encode_streams(video, spec).items():
        torch.testing.assert_close(value, expected[key], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compile_keeps_the_checkpoint_keys_and_the_gradients():
    video, spec = _views(1)
    eager = avssl.SimCLR(backbone=TINY_ARCH, proj_hidden_dim=16, proj_dim=8)
    compiled = avssl.SimCLR(backbone=TINY_ARCH, proj_hidden_dim=16, proj_dim=8, compile=True)
    compiled.load_state_dict(eager.state_dict())
    compiled.configure_model()
    assert list(compiled.state_dict()) == list(eager.state_dict())  # no _orig_mod. prefixes
    for model in (eager, compiled):
        model.encode(video, spec).square().mean().backward()
    for (name, a), (_, b) in zip(eager.backbone.named_parameters(), compiled.backbone.named_parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-4, rtol=1e-3, msg=name)


def test_prefetch_factor_reaches_the_worker_loaders(tiny_root):
    from avssl.errors import ConfigError

    data = avssl.AVDataModule(synthetic=TINY, synthetic_root=str(tiny_root), num_workers=1, prefetch_factor=4, batch_size=2, short_side=112)

    loader = data.loader(data.dataset("test", train=False), shuffle=False)
    assert loader.prefetch_factor == 4
    with pytest.raises(ConfigError, match="data.prefetch_factor must be >= 1"):
        avssl.AVDataModule(prefetch_factor=0)


def test_the_command_line_shows_the_logged_metrics_on_logging_steps_only(tiny_root, tmp_path):
    from avssl.callbacks import LoggingStepProgressBar

    args = ["--config", "simclr.yaml", "--config", "demo.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}"]
    _, _, trainer = instantiate([*args, f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert isinstance(trainer.progress_bar_callback, LoggingStepProgressBar)
    _, _, quiet = instantiate([*args, "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert quiet.progress_bar_callback is None


def test_the_bar_shows_the_step_a_run_ends_at_between_two_refreshes(tiny_root, tmp_path):
    """max_steps ends the run at step 3 of the epoch while the bar refreshes every 50 steps: the
    closed bar says 3, not 0."""
    args = ["--config", "simclr.yaml", "--config", "demo.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}"]
    args += ["--trainer.max_steps=3", "--trainer.log_every_n_steps=50", "--data.batch_size=2", f"--trainer.default_root_dir={tmp_path}"]
    model, data, trainer = instantiate(
        [*args, f"--trainer.logger.init_args.save_dir={tmp_path}", f"--trainer.callbacks.init_args.dirpath={tmp_path}"]
    )
    trainer.fit(model, data)
    bar = trainer.progress_bar_callback._train_progress_bar
    assert trainer.global_step == 3 and bar.n == 3 and bar.total > 3
