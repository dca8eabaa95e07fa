using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// ldm model.AttnBlock: single-head self-attention over the h·w positions with 1×1 conv q, k, v, proj_out,
/// softmax(q·k^T / sqrt(C))·v, residual. GroupNorm(32, eps 1e-6).
/// </summary>
public sealed class VaeAttnBlock : NamedModule
{
    private readonly GroupNorm32 _norm;
    private readonly Conv2d _q, _k, _v, _projOut;

    public VaeAttnBlock(LayerFactory f, int channels) : base("AttnBlock")
    {
        _norm = Child("norm", f.GroupNorm(channels, 1e-6));
        _q = Child("q", f.Conv(channels, channels, 1));
        _k = Child("k", f.Conv(channels, channels, 1));
        _v = Child("v", f.Conv(channels, channels, 1));
        _projOut = Child("proj_out", f.Conv(channels, channels, 1));
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var n = _norm.Forward(x);
        // [B, C, H, W] -> [B, 1, H·W, C]: one head over all positions.
        Tensor Seq(Tensor t) => t.reshape(b, 1, c, h * w).transpose(2, 3);
        var o = F.scaled_dot_product_attention(Seq(_q.forward(n)), Seq(_k.forward(n)), Seq(_v.forward(n)));
        var image = o.transpose(2, 3).reshape(b, c, h, w);
        return _projOut.forward(image).add_(x).MoveToOuterDisposeScope();
    }
}
