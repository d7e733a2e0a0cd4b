"""The original PyTorch architectures, written from the facts of their code,
so the tests can save random weights in the original key layout and check
that our converted models compute the same tag scores.

- `MusicTaggingTransformer`: minzwon/semi-supervised-music-tagging-transformer
  (src/models.py, src/modules.py), front end as torchaudio's MelSpectrogram
  (buffers `spec.spectrogram.window`, `spec.mel_scale.fb`) + AmplitudeToDB.
- `ReleasedSelfAttention`: minzwon/self-attention-music-tagging,
  visualize/vismodel.py `MTSA` (conv_channels 8, BERT embeddings with a
  learned table), fed librosa-style features (`librosa_log_mel`).
- `ShortChunkCNN`, `ShortChunkCNNRes`, `FCN`: minzwon/sota-music-tagging-
  models (training/model.py, training/modules.py Conv_2d / Res_2d), front
  end as torchaudio's MelSpectrogram (16 kHz, n_fft 512) + AmplitudeToDB.

Only imported by test modules that have already skipped when torch is missing.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


# ---------------------------------------------------------------- mel front ends
def _hz_to_mel(f, scale):
    f = torch.as_tensor(f, dtype=torch.float64)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    linear = f / (200.0 / 3)
    logarithmic = 15.0 + torch.log(torch.clamp(f, min=1000.0) / 1000.0) / (math.log(6.4) / 27)
    return torch.where(f >= 1000.0, logarithmic, linear)


def _mel_to_hz(m, scale):
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    linear = (200.0 / 3) * m
    logarithmic = 1000.0 * torch.exp((math.log(6.4) / 27) * (m - 15.0))
    return torch.where(m >= 15.0, logarithmic, linear)


def mel_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, scale="htk", norm=None,
               dtype=torch.float32):
    """torchaudio.functional.melscale_fbanks / librosa.filters.mel: (n_freqs, n_mels).
    torchaudio computes in float32 (its bank differs from a float64 one by up
    to about 2e-5, which the converter must accept); librosa in float64, cast
    to float32 at the end."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=dtype)
    m_pts = torch.linspace(float(_hz_to_mel(f_min, scale)), float(_hz_to_mel(f_max, scale)),
                           n_mels + 2, dtype=dtype)
    f_pts = _mel_to_hz(m_pts, scale)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp(torch.minimum(down, up), min=0.0)
    if norm == "slaney":
        fb = fb * (2.0 / (f_pts[2:n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)
    return fb.float()


class _Spectrogram(nn.Module):
    def __init__(self, n_fft, hop, power):
        super().__init__()
        self.n_fft, self.hop, self.power = n_fft, hop, power
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, x):  # (b, samples) -> (b, freq, time)
        spec = torch.stft(x, self.n_fft, self.hop, self.n_fft, self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        return spec.abs().pow(self.power)


class _MelScale(nn.Module):
    def __init__(self, fb):
        super().__init__()
        self.register_buffer("fb", fb)

    def forward(self, spec):
        return torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)


class MelSpectrogram(nn.Module):
    """torchaudio.transforms.MelSpectrogram's structure and state-dict keys."""

    def __init__(self, sample_rate=22050, n_fft=1024, f_min=0.0, f_max=None, n_mels=128,
                 power=2.0, scale="htk", norm=None, hop=None, dtype=torch.float32):
        super().__init__()
        f_max = f_max if f_max is not None else sample_rate // 2
        self.spectrogram = _Spectrogram(n_fft, hop or n_fft // 2, power)
        self.mel_scale = _MelScale(mel_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels,
                                              sample_rate, scale, norm, dtype))

    def forward(self, x):
        return self.mel_scale(self.spectrogram(x))


def amplitude_to_db(x):
    """torchaudio AmplitudeToDB() on power: 10 log10(max(x, 1e-10)), no top_db."""
    return 10.0 * torch.log10(torch.clamp(x, min=1e-10))


def librosa_log_mel(x, sample_rate=16000):
    """preprocessing/mtat/preprocess.py: librosa amplitude_to_db(melspectrogram(
    x, sr 16000, n_fft 512, hop 256, n_mels 96)) per clip: Slaney mel, Slaney
    norm, power 2; 20 log10(max(S, 1e-5)), clamped 80 dB below the peak."""
    mel = MelSpectrogram(sample_rate, 512, 0.0, sample_rate / 2, 96, 2.0, "slaney",
                         "slaney", hop=256, dtype=torch.float64)(x)
    db = 20.0 * torch.log10(torch.clamp(mel, min=1e-5))
    peak = db.amax(dim=(1, 2), keepdim=True)
    return torch.maximum(db, peak - 80.0)  # (b, 96, frames)


# ---------------------------------------------------------- Music Tagging Transformer
class Res2DMaxPoolModule(nn.Module):
    def __init__(self, input_channels, output_channels, pooling=2):
        super().__init__()
        self.conv_1 = nn.Conv2d(input_channels, output_channels, 3, padding=1)
        self.bn_1 = nn.BatchNorm2d(output_channels)
        self.conv_2 = nn.Conv2d(output_channels, output_channels, 3, padding=1)
        self.bn_2 = nn.BatchNorm2d(output_channels)
        self.relu = nn.ReLU()
        self.mp = nn.MaxPool2d(pooling)
        self.diff = input_channels != output_channels
        if self.diff:
            self.conv_3 = nn.Conv2d(input_channels, output_channels, 3, padding=1)
            self.bn_3 = nn.BatchNorm2d(output_channels)

    def forward(self, x):
        out = self.bn_2(self.conv_2(self.relu(self.bn_1(self.conv_1(x)))))
        if self.diff:
            x = self.bn_3(self.conv_3(x))
        return self.mp(self.relu(x + out))


class ResFrontEnd(nn.Module):
    def __init__(self, conv_ndim, attention_ndim, nfreq):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1)
        self.layer1 = Res2DMaxPoolModule(1, conv_ndim, pooling=(2, 2))
        self.layer2 = Res2DMaxPoolModule(conv_ndim, conv_ndim, pooling=(2, 2))
        self.layer3 = Res2DMaxPoolModule(conv_ndim, conv_ndim, pooling=(2, 1))
        self.fc = nn.Linear(nfreq // 8 * conv_ndim, attention_ndim)

    def forward(self, x):
        out = self.layer3(self.layer2(self.layer1(self.input_bn(x))))
        b, c, f, t = out.shape
        out = out.permute(0, 3, 1, 2).contiguous().view(b, t, -1)  # (b, t, c * f)
        return self.fc(out)


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head, dropout):
        super().__init__()
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, dim_head * heads * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim_head * heads, dim), nn.Dropout(dropout))

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3)  # 'b n (h d) -> b h n d'
                   for t in self.to_qkv(x).chunk(3, dim=-1))
        attn = (torch.einsum("bhid,bhjd->bhij", q, k) * self.scale).softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v).permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.to_out(out)


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout):
        super().__init__()
        self.layers = nn.ModuleList([nn.ModuleList([
            Residual(PreNorm(dim, Attention(dim, heads, dim_head, dropout))),
            Residual(PreNorm(dim, FeedForward(dim, mlp_dim, dropout)))])
            for _ in range(depth)])

    def forward(self, x):
        for attn, ff in self.layers:
            x = ff(attn(x))
        return x


class MusicTaggingTransformer(nn.Module):
    def __init__(self, conv_ndim=128, n_mels=128, sample_rate=22050, n_fft=1024, f_min=0,
                 f_max=11025, attention_ndim=256, attention_nheads=8, attention_nlayers=4,
                 attention_max_len=512, dropout=0.1, n_seq_cls=50):
        super().__init__()
        self.spec = MelSpectrogram(sample_rate, n_fft, f_min, f_max, n_mels, power=2.0)
        self.frontend = ResFrontEnd(conv_ndim, attention_ndim, n_mels)
        self.pos_embedding = nn.Parameter(torch.randn(1, attention_max_len + 1, attention_ndim))
        self.cls_token = nn.Parameter(torch.randn(attention_ndim))
        self.transformer = Transformer(attention_ndim, attention_nlayers, attention_nheads,
                                       attention_ndim // attention_nheads, attention_ndim * 4,
                                       dropout)
        self.dropout = nn.Dropout(dropout)
        self.mlp_head = nn.Sequential(nn.LayerNorm(attention_ndim),
                                      nn.Linear(attention_ndim, n_seq_cls))

    def forward(self, x):  # (b, samples)
        x = amplitude_to_db(self.spec(x)).unsqueeze(1)
        x = self.frontend(x)
        x = torch.cat((self.cls_token.repeat(x.shape[0], 1, 1), x), dim=1)
        x = x + self.pos_embedding[:, :x.size(1)]
        x = self.transformer(self.dropout(x))
        return torch.sigmoid(self.mlp_head(x[:, 0]))


# ---------------------------------------------------- self-attention tagger (release)
class VerticalConv(nn.Module):
    def __init__(self, output_channels, filter_shape):
        super().__init__()
        self.conv = nn.Conv2d(1, output_channels, filter_shape,
                              padding=(0, filter_shape[1] // 2))
        self.bn = nn.BatchNorm2d(output_channels)

    def forward(self, x):
        # max over every remaining frequency position
        return torch.relu(self.bn(self.conv(x))).amax(dim=2)


class HorizontalConv(nn.Module):
    def __init__(self, output_channels, filter_length):
        super().__init__()
        self.conv = nn.Conv1d(1, output_channels, filter_length, padding=filter_length // 2)
        self.bn = nn.BatchNorm1d(output_channels)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x.mean(dim=2))))  # average over frequency


class PonsConvModule(nn.Module):
    def __init__(self, c, attention_channels, n_mels=96):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1)
        high, low = int(0.9 * n_mels), int(0.4 * n_mels)
        self.layers = nn.ModuleList(
            [VerticalConv(c * m, (h, w)) for h in (high, low) for w, m in ((7, 1), (3, 2), (1, 4))]
            + [HorizontalConv(c * m, k) for k, m in ((165, 1), (129, 2), (65, 4), (33, 8))])
        self.conv1x1 = nn.Conv1d(c * 29, attention_channels, 1)
        self.bn = nn.BatchNorm1d(attention_channels)

    def forward(self, x):
        x = self.input_bn(x)
        out = torch.cat([layer(x) for layer in self.layers], dim=1)
        return torch.relu(self.bn(self.conv1x1(out)))


class BertLayerNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-12):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.eps = eps

    def forward(self, x):
        u = x.mean(-1, keepdim=True)
        s = (x - u).pow(2).mean(-1, keepdim=True)
        return self.weight * (x - u) / torch.sqrt(s + self.eps) + self.bias


class _Linear(nn.Module):  # holds `dense` (+ LayerNorm) as the BERT modules name them
    def __init__(self, d_in, d_out, norm=False):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        if norm:
            self.LayerNorm = BertLayerNorm(d_out)


class BertSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = (t(x).view(b, n, self.heads, -1).permute(0, 2, 1, 3)
                   for t in (self.query, self.key, self.value))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        context = torch.matmul(scores.softmax(dim=-1), v)
        return context.permute(0, 2, 1, 3).reshape(b, n, d)


class BertAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.self = BertSelfAttention(d, heads)
        self.output = _Linear(d, d, norm=True)

    def forward(self, x):
        return self.output.LayerNorm(self.output.dense(self.self(x)) + x)


class BertLayer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.attention = BertAttention(d, heads)
        self.intermediate = _Linear(d, 4 * d)
        self.output = _Linear(4 * d, d, norm=True)

    def forward(self, x):
        a = self.attention(x)
        h = self.intermediate.dense(a)
        h = h * 0.5 * (1.0 + torch.erf(h / math.sqrt(2.0)))  # BERT's exact GELU
        return self.output.LayerNorm(self.output.dense(h) + a)


class BertEmbeddings(nn.Module):
    def __init__(self, d, max_positions):
        super().__init__()
        self.position_embeddings = nn.Embedding(max_positions, d)
        self.LayerNorm = BertLayerNorm(d)

    def forward(self, x):
        positions = torch.arange(x.size(1))
        return self.LayerNorm(x + self.position_embeddings(positions)[None])


class _Encoder(nn.Module):
    def __init__(self, d, heads, layers):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(d, heads) for _ in range(layers)])


class AttentionModule(nn.Module):
    def __init__(self, d, heads, layers, max_positions):
        super().__init__()
        self.embedding = BertEmbeddings(d, max_positions)
        self.encoder = _Encoder(d, heads, layers)
        self.pooler = _Linear(d, d)

    def forward(self, x):
        x = self.embedding(x)
        for layer in self.encoder.layer:
            x = layer(x)
        return torch.tanh(self.pooler.dense(x[:, 0]))


class ReleasedSelfAttention(nn.Module):
    """vismodel.py MTSA: input (b, 96, frames) log-mel."""

    def __init__(self, conv_channels=8, attention_channels=512, attention_layers=2,
                 attention_heads=8, attention_length=271, num_class=50):
        super().__init__()
        self.front_end = PonsConvModule(conv_channels, attention_channels)
        self.back_end = AttentionModule(attention_channels, attention_heads,
                                        attention_layers, attention_length)
        self.classifier = nn.Linear(attention_channels, num_class)
        np.random.seed(0)
        self.vec_cls = torch.Tensor(np.random.random((1, attention_channels)))  # not a parameter

    def forward(self, x):
        out = self.front_end(x.unsqueeze(1)).permute(0, 2, 1)  # (b, frames, channels)
        cls = self.vec_cls.unsqueeze(0).expand(out.shape[0], 1, -1)
        out = self.back_end(torch.cat([cls, out], dim=1))
        return torch.sigmoid(self.classifier(out))


# ---------------------------------------------- Won et al. 2020 (sota-music-tagging-models)
class Conv2dBlock(nn.Module):
    """modules.py Conv_2d: conv (padding shape // 2) -> BN -> ReLU -> max-pool."""

    def __init__(self, input_channels, output_channels, shape=3, stride=1, pooling=2):
        super().__init__()
        self.conv = nn.Conv2d(input_channels, output_channels, shape, stride=stride,
                              padding=shape // 2)
        self.bn = nn.BatchNorm2d(output_channels)
        self.relu = nn.ReLU()
        self.mp = nn.MaxPool2d(pooling)

    def forward(self, x):
        return self.mp(self.relu(self.bn(self.conv(x))))


class Res2dBlock(nn.Module):
    """modules.py Res_2d: two 3x3 convs, the first strided, plus a strided
    conv + BN shortcut where the stride or the channels change."""

    def __init__(self, input_channels, output_channels, shape=3, stride=2):
        super().__init__()
        self.conv_1 = nn.Conv2d(input_channels, output_channels, shape, stride=stride,
                                padding=shape // 2)
        self.bn_1 = nn.BatchNorm2d(output_channels)
        self.conv_2 = nn.Conv2d(output_channels, output_channels, shape, padding=shape // 2)
        self.bn_2 = nn.BatchNorm2d(output_channels)
        self.diff = stride != 1 or input_channels != output_channels
        if self.diff:
            self.conv_3 = nn.Conv2d(input_channels, output_channels, shape, stride=stride,
                                    padding=shape // 2)
            self.bn_3 = nn.BatchNorm2d(output_channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.bn_2(self.conv_2(self.relu(self.bn_1(self.conv_1(x)))))
        if self.diff:
            x = self.bn_3(self.conv_3(x))
        return self.relu(x + out)


class _SotaSpectrogram(nn.Module):
    """The three models' `spec` (torchaudio MelSpectrogram at 16 kHz, n_fft
    512, 0-8000 Hz), AmplitudeToDB, unsqueeze and `spec_bn`."""

    def __init__(self, n_mels):
        super().__init__()
        self.spec = MelSpectrogram(16000, 512, 0.0, 8000.0, n_mels, power=2.0)
        self.spec_bn = nn.BatchNorm2d(1)

    def image(self, x):  # (b, samples) -> (b, 1, mel, time)
        return self.spec_bn(amplitude_to_db(self.spec(x)).unsqueeze(1))


class ShortChunkCNN(_SotaSpectrogram):
    """model.py ShortChunkCNN (block "conv") and, with `res=True`,
    ShortChunkCNN_Res: seven blocks of n_channels x (1, 1, 2, 2, 2, 2, 4),
    max over the frames left, dense1 -> bn -> ReLU -> dropout -> dense2."""

    def __init__(self, n_channels=128, n_mels=128, n_class=50, res=False):
        super().__init__(n_mels)
        units = (1, 1, 2, 2, 2, 2, 4)
        previous = 1
        for i, unit in enumerate(units, start=1):
            block = Res2dBlock(previous, unit * n_channels, stride=2) if res else \
                Conv2dBlock(previous, unit * n_channels, pooling=2)
            setattr(self, f"layer{i}", block)
            previous = unit * n_channels
        self.dense1 = nn.Linear(previous, previous)
        self.bn = nn.BatchNorm1d(previous)
        self.dense2 = nn.Linear(previous, n_class)
        self.dropout = nn.Dropout(0.5)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.image(x)
        for i in range(1, 8):
            x = getattr(self, f"layer{i}")(x)
        x = x.squeeze(2)  # (b, C, time): one mel bin left
        if x.size(-1) != 1:
            x = nn.MaxPool1d(x.size(-1))(x)
        x = x.squeeze(2)
        x = self.dropout(self.relu(self.bn(self.dense1(x))))
        return torch.sigmoid(self.dense2(x))


def ShortChunkCNNRes(n_channels=128, n_mels=128, n_class=50):  # noqa: N802
    return ShortChunkCNN(n_channels, n_mels, n_class, res=True)


class FCN(_SotaSpectrogram):
    """model.py FCN: five Conv_2d of n_channels x (1, 2, 2, 2, 1) with
    poolings (2,4), (2,4), (2,4), (3,5), (4,4); flatten -> dropout -> dense."""

    def __init__(self, n_channels=64, n_mels=96, n_class=50):
        super().__init__(n_mels)
        previous = 1
        for i, (unit, pool) in enumerate(((1, (2, 4)), (2, (2, 4)), (2, (2, 4)),
                                          (2, (3, 5)), (1, (4, 4))), start=1):
            setattr(self, f"layer{i}", Conv2dBlock(previous, unit * n_channels, pooling=pool))
            previous = unit * n_channels
        self.dense = nn.Linear(previous, n_class)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = self.image(x)
        for i in range(1, 6):
            x = getattr(self, f"layer{i}")(x)
        x = x.view(x.size(0), -1)
        return torch.sigmoid(self.dense(self.dropout(x)))


# ------------------------------------------------------------------------ helpers
def randomise(model, calibrate_with, seed=0):
    """Random weights everywhere (layer norms and batch-norm affines too), then
    batch-norm statistics measured on `calibrate_with` so activations stay in
    a range where the sigmoid outputs are not saturated."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
                module.reset_running_stats()
                module.momentum = None  # cumulative: one batch sets the statistics
            elif isinstance(module, (nn.LayerNorm, BertLayerNorm)):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
        for name, param in model.named_parameters():
            if name.endswith(("pos_embedding", "cls_token", "position_embeddings.weight")):
                param.copy_(0.5 * torch.randn(param.shape, generator=generator))
        model.train()
        model(calibrate_with)
        model.eval()
    return model


def saved_originals(folder, constructors, input_length):
    """{name: (best_model.pth, module)}: each of `constructors` (name ->
    callable giving a fresh original) randomised with its position as the
    seed, calibrated on gliding tones of `input_length` samples (an int, or
    name -> int) and saved as folder/name/best_model.pth, the release's
    layout (torch.save of the state dict)."""
    from tests.checks import gliding_tones

    found = {}
    for seed, (name, constructor) in enumerate(constructors.items()):
        length = input_length[name] if isinstance(input_length, dict) else input_length
        torch.manual_seed(seed)
        module = randomise(constructor(), torch.from_numpy(gliding_tones(length, 4, seed=1)),
                           seed)
        path = folder / name / "best_model.pth"
        path.parent.mkdir()
        torch.save(module.state_dict(), path)
        found[name] = (path, module)
    return found


def convert_zoo(path, family, tmp_path, capsys, dataset="mtat"):
    """(model, info, stdout) of `convert_weights --from zoo` on `path`,
    which must succeed, read back from the .keras it wrote."""
    from tagger.commands import convert_weights
    from tagger.models.saved import load_tagger
    from tests.checks import call_main

    out = tmp_path / f"{family}.keras"
    code, stdout, err = call_main(convert_weights.main, capsys, path, "--from", "zoo",
                                  "--model", family, "--dataset", dataset, "--out", out)
    assert code == 0, err
    model, info = load_tagger(str(out))
    return model, info, stdout


def assert_same_scores(model, original, x):
    """Our model and the original give the same (2, 50) tag scores, within
    1e-4, on `x` (a batch of 2 waveforms, or a length: gliding tones of that
    many samples), where the original's are not saturated."""
    from tests.checks import gliding_tones

    x = gliding_tones(x) if isinstance(x, int) else x
    with torch.no_grad():
        expected = original(torch.from_numpy(x)).numpy()
    got = np.asarray(model(x, training=False))
    assert expected.shape == got.shape == (2, 50)
    assert 0.02 < expected.std() and 0.05 < expected.mean() < 0.95  # not saturated
    assert np.abs(got - expected).max() < 1e-4


def reference_counts(module):
    """(parameters, batch-norm running statistics) of `module`, the two
    counts ../shared/reference/sota_zoo.md gives per release."""
    norms = (nn.BatchNorm1d, nn.BatchNorm2d)
    statistics = sum(m.running_mean.numel() + m.running_var.numel()
                     for m in module.modules() if isinstance(m, norms))
    return sum(p.numel() for p in module.parameters()), statistics


def assert_refused(state, argv, fragments, tmp_path, capsys):
    """`state` saved as bad.pth and converted with `argv` (after --from zoo)
    fails with one line holding every fragment and writes nothing."""
    from tagger.commands import convert_weights
    from tests.checks import call_main, one_line_error

    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    out = tmp_path / "model.keras"
    code, _, err = call_main(convert_weights.main, capsys, bad, "--from", "zoo", *argv,
                             "--out", out)
    one_line_error(code, err, *fragments)
    assert list(tmp_path.iterdir()) == [bad]
