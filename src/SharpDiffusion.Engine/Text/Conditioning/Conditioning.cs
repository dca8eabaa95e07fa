using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Conditioning;

/// <summary>What the UNet is conditioned on: cross-attention context [B, 77·k, C] and, for SDXL, the vector [B, adm].</summary>
public sealed class Conditioning : IDisposable
{
    public Conditioning(Tensor crossAttention, Tensor? vector = null)
    {
        CrossAttention = crossAttention;
        Vector = vector;
    }

    public Tensor CrossAttention { get; }
    public Tensor? Vector { get; }

    public void Dispose()
    {
        CrossAttention.Dispose();
        Vector?.Dispose();
    }
}
