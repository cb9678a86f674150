import copy

import torch

from avssl.models.backbone import BackboneConfig, TwoStreamBackbone
from avssl.models.video import VideoResNet3d


def test_backbone_shapes_and_streams():
    m = TwoStreamBackbone(BackboneConfig(width=8, layers=(1, 1, 1, 1))).eval()
    out = m.forward_streams(torch.randn(2, 3, 8, 32, 32), torch.randn(2, 1, 32, 50))
    assert out["video"].shape == (2, 64) and out["audio"].shape == (2, 64) and out["fused"].shape == (2, 128)
    torch.testing.assert_close(out["fused"], torch.cat([out["video"], out["audio"]], 1))


def test_video_encoder_keeps_time_and_uses_cvrl_kernels():
    m = VideoResNet3d(width=8, layers=(1, 1, 1, 1)).eval()
    assert m.stem[0].kernel_size == (5, 7, 7) and m.stem[0].stride == (1, 2, 2)
    kernels = [stage[0].conv1.kernel_size[0] for stage in m.stages]
    assert kernels == [1, 1, 3, 3]
    shapes = []
    hook = m.stages[-1].register_forward_hook(lambda mod, i, o: shapes.append(o.shape))
    m(torch.randn(1, 3, 8, 32, 32))
    hook.remove()
    assert shapes[0][2] == 8  # no temporal stride anywhere


def test_resnet18_parameter_counts():
    m = TwoStreamBackbone()
    assert sum(p.numel() for p in m.video.parameters()) == 20_061_504
    assert sum(p.numel() for p in m.audio.parameters()) == 11_170_240


def test_audio_encoder_max_pools_over_time():
    """An event gives the same vector wherever it happens (shifts by the encoder's stride of 32)."""
    m = TwoStreamBackbone(BackboneConfig(width=8, layers=(1, 1, 1, 1))).audio.eval()
    quiet = torch.zeros(1, 1, 32, 256)
    early, late = quiet.clone(), quiet.clone()
    early[..., 64:72] = 5.0
    late[..., 128:136] = 5.0
    torch.testing.assert_close(m(early), m(late), atol=1e-4, rtol=1e-3)
    assert m(early).abs().sum() > 0


def test_norm_statistics_are_re_estimated_on_the_views():
    """The first batch norm of each stream sees the stem's output directly: its running mean after
    two equal batches is the mean over both; the layers' momentum and eval mode are restored."""
    torch.manual_seed(0)
    backbone = TwoStreamBackbone(BackboneConfig(width=4, layers=[1, 1, 1, 1]))
    views = [{"video": torch.randn(2, 2, 3, 4, 16, 16) + 3.0, "spec": torch.randn(2, 2, 1, 32, 24) - 2.0} for _ in range(2)]
    fresh = copy.deepcopy(backbone)  # the initial statistics
    stems = {"video": (backbone.video.stem[0], backbone.video.stem[1]), "audio": (backbone.audio.stem[0], backbone.audio.stem[1])}
    with torch.no_grad():
        expected = {
            name: conv(torch.cat([v[key].flatten(0, 1) for v in views])).transpose(0, 1).flatten(1).mean(1)
            for (name, (conv, _)), key in zip(stems.items(), ("video", "spec"), strict=True)
        }
    assert backbone.estimate_norm_statistics(views) is backbone and not backbone.training
    for name, (_, norm) in stems.items():
        assert norm.momentum == 0.1
        assert torch.allclose(norm.running_mean, expected[name], atol=1e-5), name
    other = [{"video": torch.randn(2, 2, 3, 4, 16, 16), "spec": torch.randn(2, 2, 1, 32, 24)}]
    backbone.estimate_norm_statistics(other)  # reset, not accumulated with the first call's
    fresh.estimate_norm_statistics(other)
    assert torch.allclose(backbone.video.stem[1].running_mean, fresh.video.stem[1].running_mean)
