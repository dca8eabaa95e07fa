using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Encoders;

/// <summary>
/// Every hidden state of a text transformer: index 0 = embeddings, i = output of layer i (no final norm), as
/// transformers' <c>hidden_states</c>; callers pick last / penultimate / clip-skip N and apply the final norm if wanted.
/// </summary>
public sealed class TextEncoderOutput : IDisposable
{
    public TextEncoderOutput(IReadOnlyList<Tensor> hiddenStates) => HiddenStates = hiddenStates;

    /// <summary>[L + 1] tensors of [B, T, W].</summary>
    public IReadOnlyList<Tensor> HiddenStates { get; }

    /// <summary>Python-style index: −1 = last layer's output, −2 = penultimate.</summary>
    public Tensor FromEnd(int n) => HiddenStates[HiddenStates.Count - n];

    public void Dispose()
    {
        foreach (var t in HiddenStates) t.Dispose();
    }
}
