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

    public LoraTrainingHooks(IEnumerable<(nn.Module<Tensor, Tensor> Layer, TrainableNetworkModule Lora)> targets)
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
    }

    public void Dispose()
    {
        foreach (var remove in _removers) remove();
        _removers.Clear();
    }
}
