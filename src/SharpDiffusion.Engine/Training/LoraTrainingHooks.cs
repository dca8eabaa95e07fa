using SharpDiffusion.Engine.Text.Encoders;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// Puts trainable LoRA branches into the forward pass of frozen Linear/Conv2d layers, as kohya's <c>apply_to</c> does
/// (<c>org_forward(x) + lora(x)</c>), through TorchSharp forward hooks. This is the training path: gradients reach
/// <c>lora_down</c>/<c>lora_up</c>. Generation keeps patching weights in place (Networks/NetworkPatcher); the two never mix.
/// Disposing removes every hook.
/// </summary>
public sealed class LoraTrainingHooks : IDisposable
{
    private readonly List<Action> _removers = new();

    /// <param name="targets">Linear/Conv2d layers and the module whose branch joins each one's output.</param>
    /// <param name="packed">OpenCLIP resblocks whose packed q/k/v projection gets the branches of up to three modules (rows q, k, v; null: none).</param>
    public LoraTrainingHooks(IEnumerable<(nn.Module<Tensor, Tensor> Layer, TrainableNetworkModule Lora)> targets,
        IEnumerable<(OpenClipTextModel Encoder, int Layer, TrainableNetworkModule?[] Slices)>? packed = null)
    {
        foreach (var (layer, lora) in targets)
        {
            var handle = layer.register_forward_hook((_, input, output) =>
            {
                using var branch = lora.Branch(input);
                var sum = output.add(branch.to(output.dtype));
                output.Dispose(); // the layer's own result lives on in the graph, not in this handle
                return sum;
            });
            _removers.Add(handle.remove);
        }
        foreach (var (encoder, layer, slices) in packed ?? [])
        {
            long width = slices.First(m => m != null)!.Layer.OutFeatures;
            encoder.SetInProjectionBranch(layer, x =>
            {
                using var scope = NewDisposeScope();
                var parts = slices.Select(m => m?.Branch(x)).ToArray();
                var dtype = parts.First(p => p is not null)!.dtype;
                var filled = parts.Select(p => p ?? zeros([.. x.shape[..^1], width], dtype, x.device)).ToArray();
                return cat(filled, -1).MoveToOuterDisposeScope();
            });
            _removers.Add(() => encoder.SetInProjectionBranch(layer, null));
        }
    }

    public void Dispose()
    {
        foreach (var remove in _removers) remove();
        _removers.Clear();
    }
}
